from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="TrainingBudget")


@_attrs_define
class TrainingBudget:
    """
    Attributes:
        batch_size (int | Unset):  Default: 8.
        lr (float | Unset):  Default: 0.0003.
        seed (int | Unset):  Default: 0.
        steps (int | Unset):  Default: 50.
    """

    batch_size: int | Unset = 8
    lr: float | Unset = 0.0003
    seed: int | Unset = 0
    steps: int | Unset = 50

    def to_dict(self) -> dict[str, Any]:
        batch_size = self.batch_size

        lr = self.lr

        seed = self.seed

        steps = self.steps

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if batch_size is not UNSET:
            field_dict["batch_size"] = batch_size
        if lr is not UNSET:
            field_dict["lr"] = lr
        if seed is not UNSET:
            field_dict["seed"] = seed
        if steps is not UNSET:
            field_dict["steps"] = steps

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        batch_size = d.pop("batch_size", UNSET)

        lr = d.pop("lr", UNSET)

        seed = d.pop("seed", UNSET)

        steps = d.pop("steps", UNSET)

        training_budget = cls(
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            steps=steps,
        )

        return training_budget
