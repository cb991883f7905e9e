from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.ranked_model_out_explanation import RankedModelOutExplanation


T = TypeVar("T", bound="RankedModelOut")


@_attrs_define
class RankedModelOut:
    """
    Attributes:
        explanation (RankedModelOutExplanation):
        model (str):
        model_id (None | str):
        rank (int):
        score (float):
    """

    explanation: RankedModelOutExplanation
    model: str
    model_id: None | str
    rank: int
    score: float
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        explanation = self.explanation.to_dict()

        model = self.model

        model_id: None | str
        model_id = self.model_id

        rank = self.rank

        score = self.score

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "explanation": explanation,
                "model": model,
                "model_id": model_id,
                "rank": rank,
                "score": score,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.ranked_model_out_explanation import RankedModelOutExplanation  # noqa: PLC0415

        d = dict(src_dict)
        explanation = RankedModelOutExplanation.from_dict(d.pop("explanation"))

        model = d.pop("model")

        def _parse_model_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        model_id = _parse_model_id(d.pop("model_id"))

        rank = d.pop("rank")

        score = d.pop("score")

        ranked_model_out = cls(
            explanation=explanation,
            model=model,
            model_id=model_id,
            rank=rank,
            score=score,
        )

        ranked_model_out.additional_properties = d
        return ranked_model_out

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
