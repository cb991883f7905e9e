from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.dataset_in_caption_stats import DatasetInCaptionStats
    from ..models.dataset_in_metadata import DatasetInMetadata


T = TypeVar("T", bound="DatasetIn")


@_attrs_define
class DatasetIn:
    """
    Attributes:
        name (str):
        caption_stats (DatasetInCaptionStats | Unset):
        metadata (DatasetInMetadata | Unset):
        modality (str | Unset):  Default: 'image'.
        profile (list[float] | None | Unset): Packed profile: [-k, d_1..d_k, mu_1, cov_1 (row-major), ..., mu_k, cov_k],
            one Gaussian per modality (image, captions); the older single-Gaussian layout [d, mu, cov] is read too.
        size (float | None | Unset):
        uri (None | str | Unset): Image folder (imagefolder layout).
    """

    name: str
    caption_stats: DatasetInCaptionStats | Unset = UNSET
    metadata: DatasetInMetadata | Unset = UNSET
    modality: str | Unset = "image"
    profile: list[float] | None | Unset = UNSET
    size: float | None | Unset = UNSET
    uri: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        caption_stats: dict[str, Any] | Unset = UNSET
        if not isinstance(self.caption_stats, Unset):
            caption_stats = self.caption_stats.to_dict()

        metadata: dict[str, Any] | Unset = UNSET
        if not isinstance(self.metadata, Unset):
            metadata = self.metadata.to_dict()

        modality = self.modality

        profile: list[float] | None | Unset
        if isinstance(self.profile, Unset):
            profile = UNSET
        elif isinstance(self.profile, list):
            profile = self.profile

        else:
            profile = self.profile

        size: float | None | Unset
        if isinstance(self.size, Unset):
            size = UNSET
        else:
            size = self.size

        uri: None | str | Unset
        if isinstance(self.uri, Unset):
            uri = UNSET
        else:
            uri = self.uri

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "name": name,
            }
        )
        if caption_stats is not UNSET:
            field_dict["caption_stats"] = caption_stats
        if metadata is not UNSET:
            field_dict["metadata"] = metadata
        if modality is not UNSET:
            field_dict["modality"] = modality
        if profile is not UNSET:
            field_dict["profile"] = profile
        if size is not UNSET:
            field_dict["size"] = size
        if uri is not UNSET:
            field_dict["uri"] = uri

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.dataset_in_caption_stats import DatasetInCaptionStats  # noqa: PLC0415
        from ..models.dataset_in_metadata import DatasetInMetadata  # noqa: PLC0415

        d = dict(src_dict)
        name = d.pop("name")

        _caption_stats = d.pop("caption_stats", UNSET)
        caption_stats: DatasetInCaptionStats | Unset
        if isinstance(_caption_stats, Unset):
            caption_stats = UNSET
        else:
            caption_stats = DatasetInCaptionStats.from_dict(_caption_stats)

        _metadata = d.pop("metadata", UNSET)
        metadata: DatasetInMetadata | Unset
        if isinstance(_metadata, Unset):
            metadata = UNSET
        else:
            metadata = DatasetInMetadata.from_dict(_metadata)

        modality = d.pop("modality", UNSET)

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

        def _parse_size(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        size = _parse_size(d.pop("size", UNSET))

        def _parse_uri(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        uri = _parse_uri(d.pop("uri", UNSET))

        dataset_in = cls(
            name=name,
            caption_stats=caption_stats,
            metadata=metadata,
            modality=modality,
            profile=profile,
            size=size,
            uri=uri,
        )

        return dataset_in
