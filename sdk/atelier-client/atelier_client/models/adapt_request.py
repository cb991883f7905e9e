from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.quantization_budget import QuantizationBudget
    from ..models.training_budget import TrainingBudget


T = TypeVar("T", bound="AdaptRequest")


@_attrs_define
class AdaptRequest:
    """
    Attributes:
        dataset (str): A dataset registered with selection (id or name), or an image folder.
        candidates (list[str] | None | Unset): Model ids or names to choose from.
        quantization (QuantizationBudget | Unset):
        top_k (int | Unset): How many ranked models to fine-tune. Default: 2.
        training (TrainingBudget | Unset):
    """

    dataset: str
    candidates: list[str] | None | Unset = UNSET
    quantization: QuantizationBudget | Unset = UNSET
    top_k: int | Unset = 2
    training: TrainingBudget | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        dataset = self.dataset

        candidates: list[str] | None | Unset
        if isinstance(self.candidates, Unset):
            candidates = UNSET
        elif isinstance(self.candidates, list):
            candidates = self.candidates

        else:
            candidates = self.candidates

        quantization: dict[str, Any] | Unset = UNSET
        if not isinstance(self.quantization, Unset):
            quantization = self.quantization.to_dict()

        top_k = self.top_k

        training: dict[str, Any] | Unset = UNSET
        if not isinstance(self.training, Unset):
            training = self.training.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "dataset": dataset,
            }
        )
        if candidates is not UNSET:
            field_dict["candidates"] = candidates
        if quantization is not UNSET:
            field_dict["quantization"] = quantization
        if top_k is not UNSET:
            field_dict["top_k"] = top_k
        if training is not UNSET:
            field_dict["training"] = training

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.quantization_budget import QuantizationBudget  # noqa: PLC0415
        from ..models.training_budget import TrainingBudget  # noqa: PLC0415

        d = dict(src_dict)
        dataset = d.pop("dataset")

        def _parse_candidates(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                candidates_type_0 = cast(list[str], data)

                return candidates_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        candidates = _parse_candidates(d.pop("candidates", UNSET))

        _quantization = d.pop("quantization", UNSET)
        quantization: QuantizationBudget | Unset
        if isinstance(_quantization, Unset):
            quantization = UNSET
        else:
            quantization = QuantizationBudget.from_dict(_quantization)

        top_k = d.pop("top_k", UNSET)

        _training = d.pop("training", UNSET)
        training: TrainingBudget | Unset
        if isinstance(_training, Unset):
            training = UNSET
        else:
            training = TrainingBudget.from_dict(_training)

        adapt_request = cls(
            dataset=dataset,
            candidates=candidates,
            quantization=quantization,
            top_k=top_k,
            training=training,
        )

        return adapt_request
