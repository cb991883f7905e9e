from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.inline_dataset_distances_type_0 import InlineDatasetDistancesType0
    from ..models.inline_dataset_metadata import InlineDatasetMetadata


T = TypeVar("T", bound="InlineDataset")


@_attrs_define
class InlineDataset:
    """
    Attributes:
        distances (InlineDatasetDistancesType0 | None | Unset): Distance to known datasets by name.
        metadata (InlineDatasetMetadata | Unset): e.g. size, number_of_classes
        name (str | Unset):  Default: 'new-dataset'.
        profile (list[float] | None | Unset): Packed profile: [-k, d_1..d_k, mu_1, cov_1 (row-major), ..., mu_k, cov_k],
            one Gaussian per modality (image, captions); the older single-Gaussian layout [d, mu, cov] is read too.
    """

    distances: InlineDatasetDistancesType0 | None | Unset = UNSET
    metadata: InlineDatasetMetadata | Unset = UNSET
    name: str | Unset = "new-dataset"
    profile: list[float] | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.inline_dataset_distances_type_0 import InlineDatasetDistancesType0  # noqa: PLC0415

        distances: dict[str, Any] | None | Unset
        if isinstance(self.distances, Unset):
            distances = UNSET
        elif isinstance(self.distances, InlineDatasetDistancesType0):
            distances = self.distances.to_dict()
        else:
            distances = self.distances

        metadata: dict[str, Any] | Unset = UNSET
        if not isinstance(self.metadata, Unset):
            metadata = self.metadata.to_dict()

        name = self.name

        profile: list[float] | None | Unset
        if isinstance(self.profile, Unset):
            profile = UNSET
        elif isinstance(self.profile, list):
            profile = self.profile

        else:
            profile = self.profile

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if distances is not UNSET:
            field_dict["distances"] = distances
        if metadata is not UNSET:
            field_dict["metadata"] = metadata
        if name is not UNSET:
            field_dict["name"] = name
        if profile is not UNSET:
            field_dict["profile"] = profile

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.inline_dataset_distances_type_0 import InlineDatasetDistancesType0  # noqa: PLC0415
        from ..models.inline_dataset_metadata import InlineDatasetMetadata  # noqa: PLC0415

        d = dict(src_dict)

        def _parse_distances(data: object) -> InlineDatasetDistancesType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                distances_type_0 = InlineDatasetDistancesType0.from_dict(data)

                return distances_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(InlineDatasetDistancesType0 | None | Unset, data)

        distances = _parse_distances(d.pop("distances", UNSET))

        _metadata = d.pop("metadata", UNSET)
        metadata: InlineDatasetMetadata | Unset
        if isinstance(_metadata, Unset):
            metadata = UNSET
        else:
            metadata = InlineDatasetMetadata.from_dict(_metadata)

        name = d.pop("name", UNSET)

        def _parse_profile(data: object) -> list[float] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                profile_type_0 = cast(list[float], data)

                return profile_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[float] | None | Unset, data)

        profile = _parse_profile(d.pop("profile", UNSET))

        inline_dataset = cls(
            distances=distances,
            metadata=metadata,
            name=name,
            profile=profile,
        )

        return inline_dataset
