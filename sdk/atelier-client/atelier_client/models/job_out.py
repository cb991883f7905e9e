from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.job_out_status import JobOutStatus

if TYPE_CHECKING:
    from ..models.job_out_detail import JobOutDetail
    from ..models.job_out_error_type_0 import JobOutErrorType0
    from ..models.job_out_params import JobOutParams
    from ..models.job_out_result_type_0 import JobOutResultType0


T = TypeVar("T", bound="JobOut")


@_attrs_define
class JobOut:
    """
    Attributes:
        attempts (int):
        cancel_requested (bool):
        created_at (datetime.datetime):
        detail (JobOutDetail):
        error (JobOutErrorType0 | None):
        finished_at (datetime.datetime | None):
        id (str):
        idempotency_key (None | str):
        kind (str):
        params (JobOutParams):
        parent_id (None | str):
        progress (float):
        queue (str):
        result (JobOutResultType0 | None):
        stage (str):
        started_at (datetime.datetime | None):
        status (JobOutStatus):
    """

    attempts: int
    cancel_requested: bool
    created_at: datetime.datetime
    detail: JobOutDetail
    error: JobOutErrorType0 | None
    finished_at: datetime.datetime | None
    id: str
    idempotency_key: None | str
    kind: str
    params: JobOutParams
    parent_id: None | str
    progress: float
    queue: str
    result: JobOutResultType0 | None
    stage: str
    started_at: datetime.datetime | None
    status: JobOutStatus
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.job_out_error_type_0 import JobOutErrorType0  # noqa: PLC0415
        from ..models.job_out_result_type_0 import JobOutResultType0  # noqa: PLC0415

        attempts = self.attempts

        cancel_requested = self.cancel_requested

        created_at = self.created_at.isoformat()

        detail = self.detail.to_dict()

        error: dict[str, Any] | None
        if isinstance(self.error, JobOutErrorType0):
            error = self.error.to_dict()
        else:
            error = self.error

        finished_at: None | str
        if isinstance(self.finished_at, datetime.datetime):
            finished_at = self.finished_at.isoformat()
        else:
            finished_at = self.finished_at

        id = self.id

        idempotency_key: None | str
        idempotency_key = self.idempotency_key

        kind = self.kind

        params = self.params.to_dict()

        parent_id: None | str
        parent_id = self.parent_id

        progress = self.progress

        queue = self.queue

        result: dict[str, Any] | None
        if isinstance(self.result, JobOutResultType0):
            result = self.result.to_dict()
        else:
            result = self.result

        stage = self.stage

        started_at: None | str
        if isinstance(self.started_at, datetime.datetime):
            started_at = self.started_at.isoformat()
        else:
            started_at = self.started_at

        status = self.status.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "attempts": attempts,
                "cancel_requested": cancel_requested,
                "created_at": created_at,
                "detail": detail,
                "error": error,
                "finished_at": finished_at,
                "id": id,
                "idempotency_key": idempotency_key,
                "kind": kind,
                "params": params,
                "parent_id": parent_id,
                "progress": progress,
                "queue": queue,
                "result": result,
                "stage": stage,
                "started_at": started_at,
                "status": status,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.job_out_detail import JobOutDetail  # noqa: PLC0415
        from ..models.job_out_error_type_0 import JobOutErrorType0  # noqa: PLC0415
        from ..models.job_out_params import JobOutParams  # noqa: PLC0415
        from ..models.job_out_result_type_0 import JobOutResultType0  # noqa: PLC0415

        d = dict(src_dict)
        attempts = d.pop("attempts")

        cancel_requested = d.pop("cancel_requested")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        detail = JobOutDetail.from_dict(d.pop("detail"))

        def _parse_error(data: object) -> JobOutErrorType0 | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                error_type_0 = JobOutErrorType0.from_dict(data)

                return error_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobOutErrorType0 | None, data)

        error = _parse_error(d.pop("error"))

        def _parse_finished_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                finished_at_type_0 = datetime.datetime.fromisoformat(data)

                return finished_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        finished_at = _parse_finished_at(d.pop("finished_at"))

        id = d.pop("id")

        def _parse_idempotency_key(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        idempotency_key = _parse_idempotency_key(d.pop("idempotency_key"))

        kind = d.pop("kind")

        params = JobOutParams.from_dict(d.pop("params"))

        def _parse_parent_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        parent_id = _parse_parent_id(d.pop("parent_id"))

        progress = d.pop("progress")

        queue = d.pop("queue")

        def _parse_result(data: object) -> JobOutResultType0 | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                result_type_0 = JobOutResultType0.from_dict(data)

                return result_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobOutResultType0 | None, data)

        result = _parse_result(d.pop("result"))

        stage = d.pop("stage")

        def _parse_started_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                started_at_type_0 = datetime.datetime.fromisoformat(data)

                return started_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        started_at = _parse_started_at(d.pop("started_at"))

        status = JobOutStatus(d.pop("status"))

        job_out = cls(
            attempts=attempts,
            cancel_requested=cancel_requested,
            created_at=created_at,
            detail=detail,
            error=error,
            finished_at=finished_at,
            id=id,
            idempotency_key=idempotency_key,
            kind=kind,
            params=params,
            parent_id=parent_id,
            progress=progress,
            queue=queue,
            result=result,
            stage=stage,
            started_at=started_at,
            status=status,
        )

        job_out.additional_properties = d
        return job_out

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
