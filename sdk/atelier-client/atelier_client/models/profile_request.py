from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="ProfileRequest")


@_attrs_define
class ProfileRequest:
    """
    Attributes:
        dataset (str): Dataset id or name; its `uri` is the image folder.
        max_items (int | Unset):  Default: 512.
    """

    dataset: str
    max_items: int | Unset = 512

    def to_dict(self) -> dict[str, Any]:
        dataset = self.dataset

        max_items = self.max_items

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "dataset": dataset,
            }
        )
        if max_items is not UNSET:
            field_dict["max_items"] = max_items

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        dataset = d.pop("dataset")

        max_items = d.pop("max_items", UNSET)

        profile_request = cls(
            dataset=dataset,
            max_items=max_items,
        )

        return profile_request
