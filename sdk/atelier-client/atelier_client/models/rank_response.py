from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.ranked_model_out import RankedModelOut


T = TypeVar("T", bound="RankResponse")


@_attrs_define
class RankResponse:
    """
    Attributes:
        dataset (str):
        graph_stale (bool):
        graph_version_id (str):
        predictor_version (str):
        ranking (list[RankedModelOut]):
    """

    dataset: str
    graph_stale: bool
    graph_version_id: str
    predictor_version: str
    ranking: list[RankedModelOut]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        dataset = self.dataset

        graph_stale = self.graph_stale

        graph_version_id = self.graph_version_id

        predictor_version = self.predictor_version

        ranking = []
        for ranking_item_data in self.ranking:
            ranking_item = ranking_item_data.to_dict()
            ranking.append(ranking_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "dataset": dataset,
                "graph_stale": graph_stale,
                "graph_version_id": graph_version_id,
                "predictor_version": predictor_version,
                "ranking": ranking,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.ranked_model_out import RankedModelOut  # noqa: PLC0415

        d = dict(src_dict)
        dataset = d.pop("dataset")

        graph_stale = d.pop("graph_stale")

        graph_version_id = d.pop("graph_version_id")

        predictor_version = d.pop("predictor_version")

        ranking = []
        _ranking = d.pop("ranking")
        for ranking_item_data in _ranking:
            ranking_item = RankedModelOut.from_dict(ranking_item_data)

            ranking.append(ranking_item)

        rank_response = cls(
            dataset=dataset,
            graph_stale=graph_stale,
            graph_version_id=graph_version_id,
            predictor_version=predictor_version,
            ranking=ranking,
        )

        rank_response.additional_properties = d
        return rank_response

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
