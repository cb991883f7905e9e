from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.dataset_patch_caption_stats_type_0 import DatasetPatchCaptionStatsType0
    from ..models.dataset_patch_metadata_type_0 import DatasetPatchMetadataType0


T = TypeVar("T", bound="DatasetPatch")


@_attrs_define
class DatasetPatch:
    """
    Attributes:
        caption_stats (DatasetPatchCaptionStatsType0 | None | Unset):
        metadata (DatasetPatchMetadataType0 | None | Unset):
        modality (None | str | Unset):
        size (float | None | Unset):
        uri (None | str | Unset):
    """

    caption_stats: DatasetPatchCaptionStatsType0 | None | Unset = UNSET
    metadata: DatasetPatchMetadataType0 | None | Unset = UNSET
    modality: None | str | Unset = UNSET
    size: float | None | Unset = UNSET
    uri: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.dataset_patch_caption_stats_type_0 import DatasetPatchCaptionStatsType0  # noqa: PLC0415
        from ..models.dataset_patch_metadata_type_0 import DatasetPatchMetadataType0  # noqa: PLC0415

        caption_stats: dict[str, Any] | None | Unset
        if isinstance(self.caption_stats, Unset):
            caption_stats = UNSET
        elif isinstance(self.caption_stats, DatasetPatchCaptionStatsType0):
            caption_stats = self.caption_stats.to_dict()
        else:
            caption_stats = self.caption_stats

        metadata: dict[str, Any] | None | Unset
        if isinstance(self.metadata, Unset):
            metadata = UNSET
        elif isinstance(self.metadata, DatasetPatchMetadataType0):
            metadata = self.metadata.to_dict()
        else:
            metadata = self.metadata

        modality: None | str | Unset
        if isinstance(self.modality, Unset):
            modality = UNSET
        else:
            modality = self.modality

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

        field_dict.update({})
        if caption_stats is not UNSET:
            field_dict["caption_stats"] = caption_stats
        if metadata is not UNSET:
            field_dict["metadata"] = metadata
        if modality is not UNSET:
            field_dict["modality"] = modality
        if size is not UNSET:
            field_dict["size"] = size
        if uri is not UNSET:
            field_dict["uri"] = uri

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.dataset_patch_caption_stats_type_0 import DatasetPatchCaptionStatsType0  # noqa: PLC0415
        from ..models.dataset_patch_metadata_type_0 import DatasetPatchMetadataType0  # noqa: PLC0415

        d = dict(src_dict)

        def _parse_caption_stats(data: object) -> DatasetPatchCaptionStatsType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                caption_stats_type_0 = DatasetPatchCaptionStatsType0.from_dict(data)

                return caption_stats_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(DatasetPatchCaptionStatsType0 | None | Unset, data)

        caption_stats = _parse_caption_stats(d.pop("caption_stats", UNSET))

        def _parse_metadata(data: object) -> DatasetPatchMetadataType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                metadata_type_0 = DatasetPatchMetadataType0.from_dict(data)

                return metadata_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(DatasetPatchMetadataType0 | None | Unset, data)

        metadata = _parse_metadata(d.pop("metadata", UNSET))

        def _parse_modality(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        modality = _parse_modality(d.pop("modality", UNSET))

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

        dataset_patch = cls(
            caption_stats=caption_stats,
            metadata=metadata,
            modality=modality,
            size=size,
            uri=uri,
        )

        return dataset_patch
