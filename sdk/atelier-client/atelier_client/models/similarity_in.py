from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="SimilarityIn")


@_attrs_define
class SimilarityIn:
    """
    Attributes:
        dataset_a (str):
        dataset_b (str):
        value (float): A distance: smaller = more similar.
        method (str | Unset):  Default: 'user'.
    """

    dataset_a: str
    dataset_b: str
    value: float
    method: str | Unset = "user"
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        dataset_a = self.dataset_a

        dataset_b = self.dataset_b

        value = self.value

        method = self.method

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "dataset_a": dataset_a,
                "dataset_b": dataset_b,
                "value": value,
            }
        )
        if method is not UNSET:
            field_dict["method"] = method

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        dataset_a = d.pop("dataset_a")

        dataset_b = d.pop("dataset_b")

        value = d.pop("value")

        method = d.pop("method", UNSET)

        similarity_in = cls(
            dataset_a=dataset_a,
            dataset_b=dataset_b,
            value=value,
            method=method,
        )

        similarity_in.additional_properties = d
        return similarity_in

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
