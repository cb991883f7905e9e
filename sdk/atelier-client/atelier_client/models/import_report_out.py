from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.import_report_out_degenerate import ImportReportOutDegenerate
    from ..models.import_report_out_renamed import ImportReportOutRenamed
    from ..models.import_report_out_skipped_item import ImportReportOutSkippedItem
    from ..models.import_report_out_unmatched import ImportReportOutUnmatched


T = TypeVar("T", bound="ImportReportOut")


@_attrs_define
class ImportReportOut:
    """
    Attributes:
        imported (int):
        created_datasets (list[str] | Unset):
        created_models (list[str] | Unset):
        degenerate (ImportReportOutDegenerate | Unset):
        duplicates (int | Unset):  Default: 0.
        renamed (ImportReportOutRenamed | Unset):
        skipped (list[ImportReportOutSkippedItem] | Unset):
        unmatched (ImportReportOutUnmatched | Unset):
    """

    imported: int
    created_datasets: list[str] | Unset = UNSET
    created_models: list[str] | Unset = UNSET
    degenerate: ImportReportOutDegenerate | Unset = UNSET
    duplicates: int | Unset = 0
    renamed: ImportReportOutRenamed | Unset = UNSET
    skipped: list[ImportReportOutSkippedItem] | Unset = UNSET
    unmatched: ImportReportOutUnmatched | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        imported = self.imported

        created_datasets: list[str] | Unset = UNSET
        if not isinstance(self.created_datasets, Unset):
            created_datasets = self.created_datasets

        created_models: list[str] | Unset = UNSET
        if not isinstance(self.created_models, Unset):
            created_models = self.created_models

        degenerate: dict[str, Any] | Unset = UNSET
        if not isinstance(self.degenerate, Unset):
            degenerate = self.degenerate.to_dict()

        duplicates = self.duplicates

        renamed: dict[str, Any] | Unset = UNSET
        if not isinstance(self.renamed, Unset):
            renamed = self.renamed.to_dict()

        skipped: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.skipped, Unset):
            skipped = []
            for skipped_item_data in self.skipped:
                skipped_item = skipped_item_data.to_dict()
                skipped.append(skipped_item)

        unmatched: dict[str, Any] | Unset = UNSET
        if not isinstance(self.unmatched, Unset):
            unmatched = self.unmatched.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "imported": imported,
            }
        )
        if created_datasets is not UNSET:
            field_dict["created_datasets"] = created_datasets
        if created_models is not UNSET:
            field_dict["created_models"] = created_models
        if degenerate is not UNSET:
            field_dict["degenerate"] = degenerate
        if duplicates is not UNSET:
            field_dict["duplicates"] = duplicates
        if renamed is not UNSET:
            field_dict["renamed"] = renamed
        if skipped is not UNSET:
            field_dict["skipped"] = skipped
        if unmatched is not UNSET:
            field_dict["unmatched"] = unmatched

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.import_report_out_degenerate import ImportReportOutDegenerate  # noqa: PLC0415
        from ..models.import_report_out_renamed import ImportReportOutRenamed  # noqa: PLC0415
        from ..models.import_report_out_skipped_item import ImportReportOutSkippedItem  # noqa: PLC0415
        from ..models.import_report_out_unmatched import ImportReportOutUnmatched  # noqa: PLC0415

        d = dict(src_dict)
        imported = d.pop("imported")

        created_datasets = cast(list[str], d.pop("created_datasets", UNSET))

        created_models = cast(list[str], d.pop("created_models", UNSET))

        _degenerate = d.pop("degenerate", UNSET)
        degenerate: ImportReportOutDegenerate | Unset
        if isinstance(_degenerate, Unset):
            degenerate = UNSET
        else:
            degenerate = ImportReportOutDegenerate.from_dict(_degenerate)

        duplicates = d.pop("duplicates", UNSET)

        _renamed = d.pop("renamed", UNSET)
        renamed: ImportReportOutRenamed | Unset
        if isinstance(_renamed, Unset):
            renamed = UNSET
        else:
            renamed = ImportReportOutRenamed.from_dict(_renamed)

        _skipped = d.pop("skipped", UNSET)
        skipped: list[ImportReportOutSkippedItem] | Unset = UNSET
        if _skipped is not UNSET:
            skipped = []
            for skipped_item_data in _skipped:
                skipped_item = ImportReportOutSkippedItem.from_dict(skipped_item_data)

                skipped.append(skipped_item)

        _unmatched = d.pop("unmatched", UNSET)
        unmatched: ImportReportOutUnmatched | Unset
        if isinstance(_unmatched, Unset):
            unmatched = UNSET
        else:
            unmatched = ImportReportOutUnmatched.from_dict(_unmatched)

        import_report_out = cls(
            imported=imported,
            created_datasets=created_datasets,
            created_models=created_models,
            degenerate=degenerate,
            duplicates=duplicates,
            renamed=renamed,
            skipped=skipped,
            unmatched=unmatched,
        )

        import_report_out.additional_properties = d
        return import_report_out

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
