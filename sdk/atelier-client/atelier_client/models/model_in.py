from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.model_in_features import ModelInFeatures
    from ..models.model_in_metadata import ModelInMetadata


T = TypeVar("T", bound="ModelIn")


@_attrs_define
class ModelIn:
    """
    Attributes:
        name (str):
        architecture (None | str | Unset):
        family (None | str | Unset):
        features (ModelInFeatures | Unset): Numeric features for the predictor.
        metadata (ModelInMetadata | Unset):
        num_parameters (float | None | Unset):
        pretraining_data (None | str | Unset):
        ref (None | str | Unset): Hub id or local path.
        resolution (float | None | Unset):
    """

    name: str
    architecture: None | str | Unset = UNSET
    family: None | str | Unset = UNSET
    features: ModelInFeatures | Unset = UNSET
    metadata: ModelInMetadata | Unset = UNSET
    num_parameters: float | None | Unset = UNSET
    pretraining_data: None | str | Unset = UNSET
    ref: None | str | Unset = UNSET
    resolution: float | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        architecture: None | str | Unset
        if isinstance(self.architecture, Unset):
            architecture = UNSET
        else:
            architecture = self.architecture

        family: None | str | Unset
        if isinstance(self.family, Unset):
            family = UNSET
        else:
            family = self.family

        features: dict[str, Any] | Unset = UNSET
        if not isinstance(self.features, Unset):
            features = self.features.to_dict()

        metadata: dict[str, Any] | Unset = UNSET
        if not isinstance(self.metadata, Unset):
            metadata = self.metadata.to_dict()

        num_parameters: float | None | Unset
        if isinstance(self.num_parameters, Unset):
            num_parameters = UNSET
        else:
            num_parameters = self.num_parameters

        pretraining_data: None | str | Unset
        if isinstance(self.pretraining_data, Unset):
            pretraining_data = UNSET
        else:
            pretraining_data = self.pretraining_data

        ref: None | str | Unset
        if isinstance(self.ref, Unset):
            ref = UNSET
        else:
            ref = self.ref

        resolution: float | None | Unset
        if isinstance(self.resolution, Unset):
            resolution = UNSET
        else:
            resolution = self.resolution

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "name": name,
            }
        )
        if architecture is not UNSET:
            field_dict["architecture"] = architecture
        if family is not UNSET:
            field_dict["family"] = family
        if features is not UNSET:
            field_dict["features"] = features
        if metadata is not UNSET:
            field_dict["metadata"] = metadata
        if num_parameters is not UNSET:
            field_dict["num_parameters"] = num_parameters
        if pretraining_data is not UNSET:
            field_dict["pretraining_data"] = pretraining_data
        if ref is not UNSET:
            field_dict["ref"] = ref
        if resolution is not UNSET:
            field_dict["resolution"] = resolution

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.model_in_features import ModelInFeatures  # noqa: PLC0415
        from ..models.model_in_metadata import ModelInMetadata  # noqa: PLC0415

        d = dict(src_dict)
        name = d.pop("name")

        def _parse_architecture(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        architecture = _parse_architecture(d.pop("architecture", UNSET))

        def _parse_family(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        family = _parse_family(d.pop("family", UNSET))

        _features = d.pop("features", UNSET)
        features: ModelInFeatures | Unset
        if isinstance(_features, Unset):
            features = UNSET
        else:
            features = ModelInFeatures.from_dict(_features)

        _metadata = d.pop("metadata", UNSET)
        metadata: ModelInMetadata | Unset
        if isinstance(_metadata, Unset):
            metadata = UNSET
        else:
            metadata = ModelInMetadata.from_dict(_metadata)

        def _parse_num_parameters(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        num_parameters = _parse_num_parameters(d.pop("num_parameters", UNSET))

        def _parse_pretraining_data(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        pretraining_data = _parse_pretraining_data(d.pop("pretraining_data", UNSET))

        def _parse_ref(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        ref = _parse_ref(d.pop("ref", UNSET))

        def _parse_resolution(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        resolution = _parse_resolution(d.pop("resolution", UNSET))

        model_in = cls(
            name=name,
            architecture=architecture,
            family=family,
            features=features,
            metadata=metadata,
            num_parameters=num_parameters,
            pretraining_data=pretraining_data,
            ref=ref,
            resolution=resolution,
        )

        return model_in
