from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..models.fit_request_embedding import FitRequestEmbedding
from ..models.fit_request_objective import FitRequestObjective
from ..types import UNSET, Unset

T = TypeVar("T", bound="FitRequest")


@_attrs_define
class FitRequest:
    """
    Attributes:
        embedding (FitRequestEmbedding | Unset):  Default: FitRequestEmbedding.GAT.
        evaluate (bool | Unset): Also run the leave-one-dataset-out evaluation. Default: True.
        members (int | Unset): Rankers fitted with seeds seed, seed+1, …; their scores are averaged (fewer: a faster
            fit, a noisier ranking). Default: 3.
        objective (FitRequestObjective | Unset):  Default: FitRequestObjective.REGRESSION.
        seed (int | Unset):  Default: 0.
    """

    embedding: FitRequestEmbedding | Unset = FitRequestEmbedding.GAT
    evaluate: bool | Unset = True
    members: int | Unset = 3
    objective: FitRequestObjective | Unset = FitRequestObjective.REGRESSION
    seed: int | Unset = 0

    def to_dict(self) -> dict[str, Any]:
        embedding: str | Unset = UNSET
        if not isinstance(self.embedding, Unset):
            embedding = self.embedding.value

        evaluate = self.evaluate

        members = self.members

        objective: str | Unset = UNSET
        if not isinstance(self.objective, Unset):
            objective = self.objective.value

        seed = self.seed

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if embedding is not UNSET:
            field_dict["embedding"] = embedding
        if evaluate is not UNSET:
            field_dict["evaluate"] = evaluate
        if members is not UNSET:
            field_dict["members"] = members
        if objective is not UNSET:
            field_dict["objective"] = objective
        if seed is not UNSET:
            field_dict["seed"] = seed

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        _embedding = d.pop("embedding", UNSET)
        embedding: FitRequestEmbedding | Unset
        if isinstance(_embedding, Unset):
            embedding = UNSET
        else:
            embedding = FitRequestEmbedding(_embedding)

        evaluate = d.pop("evaluate", UNSET)

        members = d.pop("members", UNSET)

        _objective = d.pop("objective", UNSET)
        objective: FitRequestObjective | Unset
        if isinstance(_objective, Unset):
            objective = UNSET
        else:
            objective = FitRequestObjective(_objective)

        seed = d.pop("seed", UNSET)

        fit_request = cls(
            embedding=embedding,
            evaluate=evaluate,
            members=members,
            objective=objective,
            seed=seed,
        )

        return fit_request
