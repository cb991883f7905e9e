from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.calibration_config_mode import CalibrationConfigMode
from ..types import UNSET, Unset

T = TypeVar("T", bound="CalibrationConfig")


@_attrs_define
class CalibrationConfig:
    """
    Attributes:
        dataset_path (None | str | Unset): imagefolder for mode='data' (x_0 forward-noised)
        mode (CalibrationConfigMode | Unset):  Default: CalibrationConfigMode.SAMPLING.
        n (int | Unset): calibration inputs (the ORM needs at least 2 samples) Default: 8.
        prompts (list[str] | None | Unset): conditional models: cycled to n; default empty prompt
        sampled_steps (int | Unset): K steps sampled uniformly from the T inference steps Default: 8.
        seed (int | Unset):  Default: 0.
        seeds (list[int] | None | Unset): noise seeds (sampling mode); default seed..seed+n-1
    """

    dataset_path: None | str | Unset = UNSET
    mode: CalibrationConfigMode | Unset = CalibrationConfigMode.SAMPLING
    n: int | Unset = 8
    prompts: list[str] | None | Unset = UNSET
    sampled_steps: int | Unset = 8
    seed: int | Unset = 0
    seeds: list[int] | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        dataset_path: None | str | Unset
        if isinstance(self.dataset_path, Unset):
            dataset_path = UNSET
        else:
            dataset_path = self.dataset_path

        mode: str | Unset = UNSET
        if not isinstance(self.mode, Unset):
            mode = self.mode.value

        n = self.n

        prompts: list[str] | None | Unset
        if isinstance(self.prompts, Unset):
            prompts = UNSET
        elif isinstance(self.prompts, list):
            prompts = self.prompts

        else:
            prompts = self.prompts

        sampled_steps = self.sampled_steps

        seed = self.seed

        seeds: list[int] | None | Unset
        if isinstance(self.seeds, Unset):
            seeds = UNSET
        elif isinstance(self.seeds, list):
            seeds = self.seeds

        else:
            seeds = self.seeds

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if dataset_path is not UNSET:
            field_dict["dataset_path"] = dataset_path
        if mode is not UNSET:
            field_dict["mode"] = mode
        if n is not UNSET:
            field_dict["n"] = n
        if prompts is not UNSET:
            field_dict["prompts"] = prompts
        if sampled_steps is not UNSET:
            field_dict["sampled_steps"] = sampled_steps
        if seed is not UNSET:
            field_dict["seed"] = seed
        if seeds is not UNSET:
            field_dict["seeds"] = seeds

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_dataset_path(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        dataset_path = _parse_dataset_path(d.pop("dataset_path", UNSET))

        _mode = d.pop("mode", UNSET)
        mode: CalibrationConfigMode | Unset
        if isinstance(_mode, Unset):
            mode = UNSET
        else:
            mode = CalibrationConfigMode(_mode)

        n = d.pop("n", UNSET)

        def _parse_prompts(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                prompts_type_0 = cast(list[str], data)

                return prompts_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        prompts = _parse_prompts(d.pop("prompts", UNSET))

        sampled_steps = d.pop("sampled_steps", UNSET)

        seed = d.pop("seed", UNSET)

        def _parse_seeds(data: object) -> list[int] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                seeds_type_0 = cast(list[int], data)

                return seeds_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[int] | None | Unset, data)

        seeds = _parse_seeds(d.pop("seeds", UNSET))

        calibration_config = cls(
            dataset_path=dataset_path,
            mode=mode,
            n=n,
            prompts=prompts,
            sampled_steps=sampled_steps,
            seed=seed,
            seeds=seeds,
        )

        return calibration_config
