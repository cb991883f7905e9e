from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.result_out_config import ResultOutConfig


T = TypeVar("T", bound="ResultOut")


@_attrs_define
class ResultOut:
    """
    Attributes:
        config (ResultOutConfig):
        created_at (datetime.datetime):
        dataset (str):
        higher_is_better (bool):
        id (str):
        job_id (None | str):
        metric (str):
        model (str):
        source (str):
        value (float):
    """

    config: ResultOutConfig
    created_at: datetime.datetime
    dataset: str
    higher_is_better: bool
    id: str
    job_id: None | str
    metric: str
    model: str
    source: str
    value: float
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        config = self.config.to_dict()

        created_at = self.created_at.isoformat()

        dataset = self.dataset

        higher_is_better = self.higher_is_better

        id = self.id

        job_id: None | str
        job_id = self.job_id

        metric = self.metric

        model = self.model

        source = self.source

        value = self.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "config": config,
                "created_at": created_at,
                "dataset": dataset,
                "higher_is_better": higher_is_better,
                "id": id,
                "job_id": job_id,
                "metric": metric,
                "model": model,
                "source": source,
                "value": value,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.result_out_config import ResultOutConfig  # noqa: PLC0415

        d = dict(src_dict)
        config = ResultOutConfig.from_dict(d.pop("config"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        dataset = d.pop("dataset")

        higher_is_better = d.pop("higher_is_better")

        id = d.pop("id")

        def _parse_job_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        job_id = _parse_job_id(d.pop("job_id"))

        metric = d.pop("metric")

        model = d.pop("model")

        source = d.pop("source")

        value = d.pop("value")

        result_out = cls(
            config=config,
            created_at=created_at,
            dataset=dataset,
            higher_is_better=higher_is_better,
            id=id,
            job_id=job_id,
            metric=metric,
            model=model,
            source=source,
            value=value,
        )

        result_out.additional_properties = d
        return result_out

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
