from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.result_in_source import ResultInSource
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.result_in_config import ResultInConfig


T = TypeVar("T", bound="ResultIn")


@_attrs_define
class ResultIn:
    """
    Attributes:
        dataset (str): Dataset id or name.
        model (str): Model id or name.
        value (float):
        config (ResultInConfig | Unset):
        higher_is_better (bool | Unset):  Default: True.
        job_id (None | str | Unset):
        metric (str | Unset):  Default: 'eval_accuracy'.
        source (ResultInSource | Unset):  Default: ResultInSource.IMPORTED.
    """

    dataset: str
    model: str
    value: float
    config: ResultInConfig | Unset = UNSET
    higher_is_better: bool | Unset = True
    job_id: None | str | Unset = UNSET
    metric: str | Unset = "eval_accuracy"
    source: ResultInSource | Unset = ResultInSource.IMPORTED

    def to_dict(self) -> dict[str, Any]:
        dataset = self.dataset

        model = self.model

        value = self.value

        config: dict[str, Any] | Unset = UNSET
        if not isinstance(self.config, Unset):
            config = self.config.to_dict()

        higher_is_better = self.higher_is_better

        job_id: None | str | Unset
        if isinstance(self.job_id, Unset):
            job_id = UNSET
        else:
            job_id = self.job_id

        metric = self.metric

        source: str | Unset = UNSET
        if not isinstance(self.source, Unset):
            source = self.source.value

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "dataset": dataset,
                "model": model,
                "value": value,
            }
        )
        if config is not UNSET:
            field_dict["config"] = config
        if higher_is_better is not UNSET:
            field_dict["higher_is_better"] = higher_is_better
        if job_id is not UNSET:
            field_dict["job_id"] = job_id
        if metric is not UNSET:
            field_dict["metric"] = metric
        if source is not UNSET:
            field_dict["source"] = source

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.result_in_config import ResultInConfig  # noqa: PLC0415

        d = dict(src_dict)
        dataset = d.pop("dataset")

        model = d.pop("model")

        value = d.pop("value")

        _config = d.pop("config", UNSET)
        config: ResultInConfig | Unset
        if isinstance(_config, Unset):
            config = UNSET
        else:
            config = ResultInConfig.from_dict(_config)

        higher_is_better = d.pop("higher_is_better", UNSET)

        def _parse_job_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        job_id = _parse_job_id(d.pop("job_id", UNSET))

        metric = d.pop("metric", UNSET)

        _source = d.pop("source", UNSET)
        source: ResultInSource | Unset
        if isinstance(_source, Unset):
            source = UNSET
        else:
            source = ResultInSource(_source)

        result_in = cls(
            dataset=dataset,
            model=model,
            value=value,
            config=config,
            higher_is_better=higher_is_better,
            job_id=job_id,
            metric=metric,
            source=source,
        )

        return result_in
