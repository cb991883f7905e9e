from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="QuantizationBudget")


@_attrs_define
class QuantizationBudget:
    """
    Attributes:
        avg_act_bits (float | Unset):  Default: 8.0.
        avg_weight_bits (float | Unset):  Default: 4.0.
        calibration_samples (int | Unset):  Default: 4.
        num_inference_steps (int | Unset):  Default: 10.
        sampled_steps (int | Unset):  Default: 4.
        signal (str | Unset):  Default: 'sensitivity'.
    """

    avg_act_bits: float | Unset = 8.0
    avg_weight_bits: float | Unset = 4.0
    calibration_samples: int | Unset = 4
    num_inference_steps: int | Unset = 10
    sampled_steps: int | Unset = 4
    signal: str | Unset = "sensitivity"
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        avg_act_bits = self.avg_act_bits

        avg_weight_bits = self.avg_weight_bits

        calibration_samples = self.calibration_samples

        num_inference_steps = self.num_inference_steps

        sampled_steps = self.sampled_steps

        signal = self.signal

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if avg_act_bits is not UNSET:
            field_dict["avg_act_bits"] = avg_act_bits
        if avg_weight_bits is not UNSET:
            field_dict["avg_weight_bits"] = avg_weight_bits
        if calibration_samples is not UNSET:
            field_dict["calibration_samples"] = calibration_samples
        if num_inference_steps is not UNSET:
            field_dict["num_inference_steps"] = num_inference_steps
        if sampled_steps is not UNSET:
            field_dict["sampled_steps"] = sampled_steps
        if signal is not UNSET:
            field_dict["signal"] = signal

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        avg_act_bits = d.pop("avg_act_bits", UNSET)

        avg_weight_bits = d.pop("avg_weight_bits", UNSET)

        calibration_samples = d.pop("calibration_samples", UNSET)

        num_inference_steps = d.pop("num_inference_steps", UNSET)

        sampled_steps = d.pop("sampled_steps", UNSET)

        signal = d.pop("signal", UNSET)

        quantization_budget = cls(
            avg_act_bits=avg_act_bits,
            avg_weight_bits=avg_weight_bits,
            calibration_samples=calibration_samples,
            num_inference_steps=num_inference_steps,
            sampled_steps=sampled_steps,
            signal=signal,
        )

        quantization_budget.additional_properties = d
        return quantization_budget

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
