"""Job bookkeeping: submit, read, list, cancel. Keyword-only, session passed in."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common.db import utcnow
from services.common.errors import Problem, not_found
from services.common.jobs.models import Job, JobStatus
from services.common.jobs.registry import get_kind


def fingerprint(kind: str, params: dict[str, Any]) -> str:
    canonical = json.dumps({"kind": kind, "params": params}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def create(*, db_session: Session, kind: str, params: dict[str, Any], owner: str | None,
           idempotency_key: str | None = None, parent_id: str | None = None) -> tuple[Job, bool]:
    """Insert a queued job, or return the earlier one for a repeated idempotency key.

    Returns (job, created). The same key with a different request is a 422.
    """
    job_kind = get_kind(kind)
    if job_kind is None:
        raise Problem(422, f"unknown job kind {kind!r}")
    fp = fingerprint(kind, params)
    if idempotency_key is not None:
        earlier = _by_idempotency_key(db_session=db_session, owner=owner, key=idempotency_key)
        if earlier is not None:
            return _replay(earlier, fp, idempotency_key), False
    job = Job(kind=kind, queue=job_kind.queue, params=params, owner=owner, idempotency_key=idempotency_key,
              fingerprint=fp, parent_id=parent_id, detail={})
    db_session.add(job)
    try:
        db_session.commit()
    except IntegrityError:
        # A concurrent request with the same key won the race.
        db_session.rollback()
        earlier = _by_idempotency_key(db_session=db_session, owner=owner, key=idempotency_key)
        if earlier is None:
            raise
        return _replay(earlier, fp, idempotency_key), False
    return job, True


def _by_idempotency_key(*, db_session: Session, owner: str | None, key: str) -> Job | None:
    owner_clause = Job.owner.is_(None) if owner is None else Job.owner == owner
    return db_session.scalar(select(Job).where(owner_clause, Job.idempotency_key == key))


def _replay(earlier: Job, fp: str, key: str) -> Job:
    if earlier.fingerprint != fp:
        raise Problem(422, f"Idempotency-Key {key!r} was already used with a different request",
                      title="Idempotency key reused")
    return earlier


def get(*, db_session: Session, job_id: str, owner: str | None = None, see_all: bool = True) -> Job:
    job = db_session.get(Job, job_id)
    if job is None or (not see_all and job.owner != owner):
        raise not_found("job", job_id)
    return job


def _encode_cursor(job: Job) -> str:
    raw = json.dumps([job.created_at.isoformat(), job.id])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, job_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(created), str(job_id)
    except Exception as exc:
        raise Problem(422, "cursor is not valid") from exc


def list_jobs(*, db_session: Session, owner: str | None, see_all: bool, kind: str | None = None,
              status: str | None = None, parent_id: str | None = None, cursor: str | None = None,
              limit: int = 50) -> tuple[list[Job], str | None]:
    """Newest first; the cursor is the (created_at, id) of the last item of the previous page."""
    query = select(Job)
    if not see_all:
        query = query.where(Job.owner == owner)
    if kind:
        query = query.where(Job.kind == kind)
    if status:
        query = query.where(Job.status == status)
    if parent_id:
        query = query.where(Job.parent_id == parent_id)
    if cursor:
        created, job_id = _decode_cursor(cursor)
        query = query.where(or_(Job.created_at < created, and_(Job.created_at == created, Job.id < job_id)))
    rows = list(db_session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)))
    next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def request_cancel(*, db_session: Session, job: Job) -> Job:
    """A queued job is cancelled at once; a running one is flagged and stops at its next step."""
    if JobStatus(job.status).terminal:
        raise Problem(409, f"job {job.id} is already {job.status}")
    _flag_cancel(db_session, job)
    db_session.commit()
    return job


def _flag_cancel(db_session: Session, job: Job) -> None:
    """Cancel a job and, for a parent, every child that has not ended."""
    job.cancel_requested = True
    if job.status == JobStatus.queued:
        job.status = JobStatus.cancelled
        job.stage = "cancelled"
        job.waiting = False
        job.finished_at = utcnow()
    children = db_session.scalars(select(Job).where(
        Job.parent_id == job.id, Job.status.in_([JobStatus.queued, JobStatus.running])))
    for child in children:
        _flag_cancel(db_session, child)


def delete_unsent(*, db_session: Session, job: Job) -> None:
    """Forget a job whose message never reached the broker, so a retry starts clean."""
    db_session.delete(job)
    db_session.commit()
