from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.quantization_job_request_sign import QuantizationJobRequestSign
from ..models.quantization_job_request_signal import QuantizationJobRequestSignal
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.budget_config import BudgetConfig
    from ..models.calibration_config import CalibrationConfig
    from ..models.quantization_job_request_overrides import QuantizationJobRequestOverrides


T = TypeVar("T", bound="QuantizationJobRequest")


@_attrs_define
class QuantizationJobRequest:
    """What to quantize and how: MPQ-Diff's config plus the model reference.

    Attributes:
        model (str): A model ref: "tiny:unet2d-condition", a local folder, or a cached hub id.
        act_bits (list[int] | Unset):
        beta (float | None | Unset): ORM temperature; None = 1/(defined layers - 1)
        budget (BudgetConfig | Unset):
        calibration (CalibrationConfig | Unset):
        eval_prompts (list[str] | None | Unset):
        eval_seeds (list[int] | Unset):
        keep_first_last_8bit (bool | Unset):  Default: True.
        num_inference_steps (int | Unset):  Default: 50.
        overrides (QuantizationJobRequestOverrides | Unset): layer name -> fixed weight bits
        scheduler (str | Unset):  Default: 'ddim'.
        seed (int | Unset):  Default: 0.
        sign (QuantizationJobRequestSign | Unset): 'neg' = paper: exp(-beta * sum ORM) Default:
            QuantizationJobRequestSign.NEG.
        signal (QuantizationJobRequestSignal | Unset):  Default: QuantizationJobRequestSignal.SENSITIVITY.
        timestep_groups (int | Unset):  Default: 1.
        weight_bits (list[int] | Unset):
    """

    model: str
    act_bits: list[int] | Unset = UNSET
    beta: float | None | Unset = UNSET
    budget: BudgetConfig | Unset = UNSET
    calibration: CalibrationConfig | Unset = UNSET
    eval_prompts: list[str] | None | Unset = UNSET
    eval_seeds: list[int] | Unset = UNSET
    keep_first_last_8bit: bool | Unset = True
    num_inference_steps: int | Unset = 50
    overrides: QuantizationJobRequestOverrides | Unset = UNSET
    scheduler: str | Unset = "ddim"
    seed: int | Unset = 0
    sign: QuantizationJobRequestSign | Unset = QuantizationJobRequestSign.NEG
    signal: QuantizationJobRequestSignal | Unset = QuantizationJobRequestSignal.SENSITIVITY
    timestep_groups: int | Unset = 1
    weight_bits: list[int] | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        model = self.model

        act_bits: list[int] | Unset = UNSET
        if not isinstance(self.act_bits, Unset):
            act_bits = self.act_bits

        beta: float | None | Unset
        if isinstance(self.beta, Unset):
            beta = UNSET
        else:
            beta = self.beta

        budget: dict[str, Any] | Unset = UNSET
        if not isinstance(self.budget, Unset):
            budget = self.budget.to_dict()

        calibration: dict[str, Any] | Unset = UNSET
        if not isinstance(self.calibration, Unset):
            calibration = self.calibration.to_dict()

        eval_prompts: list[str] | None | Unset
        if isinstance(self.eval_prompts, Unset):
            eval_prompts = UNSET
        elif isinstance(self.eval_prompts, list):
            eval_prompts = self.eval_prompts

        else:
            eval_prompts = self.eval_prompts

        eval_seeds: list[int] | Unset = UNSET
        if not isinstance(self.eval_seeds, Unset):
            eval_seeds = self.eval_seeds

        keep_first_last_8bit = self.keep_first_last_8bit

        num_inference_steps = self.num_inference_steps

        overrides: dict[str, Any] | Unset = UNSET
        if not isinstance(self.overrides, Unset):
            overrides = self.overrides.to_dict()

        scheduler = self.scheduler

        seed = self.seed

        sign: str | Unset = UNSET
        if not isinstance(self.sign, Unset):
            sign = self.sign.value

        signal: str | Unset = UNSET
        if not isinstance(self.signal, Unset):
            signal = self.signal.value

        timestep_groups = self.timestep_groups

        weight_bits: list[int] | Unset = UNSET
        if not isinstance(self.weight_bits, Unset):
            weight_bits = self.weight_bits

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "model": model,
            }
        )
        if act_bits is not UNSET:
            field_dict["act_bits"] = act_bits
        if beta is not UNSET:
            field_dict["beta"] = beta
        if budget is not UNSET:
            field_dict["budget"] = budget
        if calibration is not UNSET:
            field_dict["calibration"] = calibration
        if eval_prompts is not UNSET:
            field_dict["eval_prompts"] = eval_prompts
        if eval_seeds is not UNSET:
            field_dict["eval_seeds"] = eval_seeds
        if keep_first_last_8bit is not UNSET:
            field_dict["keep_first_last_8bit"] = keep_first_last_8bit
        if num_inference_steps is not UNSET:
            field_dict["num_inference_steps"] = num_inference_steps
        if overrides is not UNSET:
            field_dict["overrides"] = overrides
        if scheduler is not UNSET:
            field_dict["scheduler"] = scheduler
        if seed is not UNSET:
            field_dict["seed"] = seed
        if sign is not UNSET:
            field_dict["sign"] = sign
        if signal is not UNSET:
            field_dict["signal"] = signal
        if timestep_groups is not UNSET:
            field_dict["timestep_groups"] = timestep_groups
        if weight_bits is not UNSET:
            field_dict["weight_bits"] = weight_bits

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.budget_config import BudgetConfig  # noqa: PLC0415
        from ..models.calibration_config import CalibrationConfig  # noqa: PLC0415
        from ..models.quantization_job_request_overrides import QuantizationJobRequestOverrides  # noqa: PLC0415

        d = dict(src_dict)
        model = d.pop("model")

        act_bits = cast(list[int], d.pop("act_bits", UNSET))

        def _parse_beta(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        beta = _parse_beta(d.pop("beta", UNSET))

        _budget = d.pop("budget", UNSET)
        budget: BudgetConfig | Unset
        if isinstance(_budget, Unset):
            budget = UNSET
        else:
            budget = BudgetConfig.from_dict(_budget)

        _calibration = d.pop("calibration", UNSET)
        calibration: CalibrationConfig | Unset
        if isinstance(_calibration, Unset):
            calibration = UNSET
        else:
            calibration = CalibrationConfig.from_dict(_calibration)

        def _parse_eval_prompts(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                eval_prompts_type_0 = cast(list[str], data)

                return eval_prompts_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        eval_prompts = _parse_eval_prompts(d.pop("eval_prompts", UNSET))

        eval_seeds = cast(list[int], d.pop("eval_seeds", UNSET))

        keep_first_last_8bit = d.pop("keep_first_last_8bit", UNSET)

        num_inference_steps = d.pop("num_inference_steps", UNSET)

        _overrides = d.pop("overrides", UNSET)
        overrides: QuantizationJobRequestOverrides | Unset
        if isinstance(_overrides, Unset):
            overrides = UNSET
        else:
            overrides = QuantizationJobRequestOverrides.from_dict(_overrides)

        scheduler = d.pop("scheduler", UNSET)

        seed = d.pop("seed", UNSET)

        _sign = d.pop("sign", UNSET)
        sign: QuantizationJobRequestSign | Unset
        if isinstance(_sign, Unset):
            sign = UNSET
        else:
            sign = QuantizationJobRequestSign(_sign)

        _signal = d.pop("signal", UNSET)
        signal: QuantizationJobRequestSignal | Unset
        if isinstance(_signal, Unset):
            signal = UNSET
        else:
            signal = QuantizationJobRequestSignal(_signal)

        timestep_groups = d.pop("timestep_groups", UNSET)

        weight_bits = cast(list[int], d.pop("weight_bits", UNSET))

        quantization_job_request = cls(
            model=model,
            act_bits=act_bits,
            beta=beta,
            budget=budget,
            calibration=calibration,
            eval_prompts=eval_prompts,
            eval_seeds=eval_seeds,
            keep_first_last_8bit=keep_first_last_8bit,
            num_inference_steps=num_inference_steps,
            overrides=overrides,
            scheduler=scheduler,
            seed=seed,
            sign=sign,
            signal=signal,
            timestep_groups=timestep_groups,
            weight_bits=weight_bits,
        )

        return quantization_job_request
