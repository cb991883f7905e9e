from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

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

    def to_dict(self) -> dict[str, Any]:
        dataset_a = self.dataset_a

        dataset_b = self.dataset_b

        value = self.value

        method = self.method

        field_dict: dict[str, Any] = {}

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

        return similarity_in
