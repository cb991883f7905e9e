from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="BudgetConfig")


@_attrs_define
class BudgetConfig:
    """
    Attributes:
        avg_act_bits (float | Unset):  Default: 8.0.
        avg_weight_bits (float | None | Unset):  Default: 4.0.
        weight_bytes (float | None | Unset): alternative to avg_weight_bits: packed-code bytes
    """

    avg_act_bits: float | Unset = 8.0
    avg_weight_bits: float | None | Unset = 4.0
    weight_bytes: float | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        avg_act_bits = self.avg_act_bits

        avg_weight_bits: float | None | Unset
        if isinstance(self.avg_weight_bits, Unset):
            avg_weight_bits = UNSET
        else:
            avg_weight_bits = self.avg_weight_bits

        weight_bytes: float | None | Unset
        if isinstance(self.weight_bytes, Unset):
            weight_bytes = UNSET
        else:
            weight_bytes = self.weight_bytes

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if avg_act_bits is not UNSET:
            field_dict["avg_act_bits"] = avg_act_bits
        if avg_weight_bits is not UNSET:
            field_dict["avg_weight_bits"] = avg_weight_bits
        if weight_bytes is not UNSET:
            field_dict["weight_bytes"] = weight_bytes

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        avg_act_bits = d.pop("avg_act_bits", UNSET)

        def _parse_avg_weight_bits(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        avg_weight_bits = _parse_avg_weight_bits(d.pop("avg_weight_bits", UNSET))

        def _parse_weight_bytes(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        weight_bytes = _parse_weight_bytes(d.pop("weight_bytes", UNSET))

        budget_config = cls(
            avg_act_bits=avg_act_bits,
            avg_weight_bits=avg_weight_bits,
            weight_bytes=weight_bytes,
        )

        return budget_config
