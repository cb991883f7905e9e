from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.graph_version_out_config import GraphVersionOutConfig
    from ..models.graph_version_out_metrics import GraphVersionOutMetrics


T = TypeVar("T", bound="GraphVersionOut")


@_attrs_define
class GraphVersionOut:
    """
    Attributes:
        config (GraphVersionOutConfig):
        created_at (datetime.datetime):
        id (str):
        job_id (None | str):
        metrics (GraphVersionOutMetrics):
        training_hash (str):
    """

    config: GraphVersionOutConfig
    created_at: datetime.datetime
    id: str
    job_id: None | str
    metrics: GraphVersionOutMetrics
    training_hash: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        config = self.config.to_dict()

        created_at = self.created_at.isoformat()

        id = self.id

        job_id: None | str
        job_id = self.job_id

        metrics = self.metrics.to_dict()

        training_hash = self.training_hash

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "config": config,
                "created_at": created_at,
                "id": id,
                "job_id": job_id,
                "metrics": metrics,
                "training_hash": training_hash,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.graph_version_out_config import GraphVersionOutConfig  # noqa: PLC0415
        from ..models.graph_version_out_metrics import GraphVersionOutMetrics  # noqa: PLC0415

        d = dict(src_dict)
        config = GraphVersionOutConfig.from_dict(d.pop("config"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        id = d.pop("id")

        def _parse_job_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        job_id = _parse_job_id(d.pop("job_id"))

        metrics = GraphVersionOutMetrics.from_dict(d.pop("metrics"))

        training_hash = d.pop("training_hash")

        graph_version_out = cls(
            config=config,
            created_at=created_at,
            id=id,
            job_id=job_id,
            metrics=metrics,
            training_hash=training_hash,
        )

        graph_version_out.additional_properties = d
        return graph_version_out

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
