from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

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

    def to_dict(self) -> dict[str, Any]:
        avg_act_bits = self.avg_act_bits

        avg_weight_bits = self.avg_weight_bits

        calibration_samples = self.calibration_samples

        num_inference_steps = self.num_inference_steps

        sampled_steps = self.sampled_steps

        signal = self.signal

        field_dict: dict[str, Any] = {}

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

        return quantization_budget
