from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..models.key_create_scope import KeyCreateScope
from ..types import UNSET, Unset

T = TypeVar("T", bound="KeyCreate")


@_attrs_define
class KeyCreate:
    """
    Attributes:
        scope (KeyCreateScope):
        name (str | Unset):  Default: ''.
    """

    scope: KeyCreateScope
    name: str | Unset = ""

    def to_dict(self) -> dict[str, Any]:
        scope = self.scope.value

        name = self.name

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "scope": scope,
            }
        )
        if name is not UNSET:
            field_dict["name"] = name

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        scope = KeyCreateScope(d.pop("scope"))

        name = d.pop("name", UNSET)

        key_create = cls(
            scope=scope,
            name=name,
        )

        return key_create
