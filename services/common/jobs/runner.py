"""Worker-side execution shared by Celery and the embedded worker.

`execute_job` is safe to call for any delivery of a job message: it claims the
row (counting the attempt), skips work that is already finished, gives up after
the redelivery cap, and writes the outcome only if the row is still ours.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from services.common.db import session_scope, utcnow
from services.common.jobs.models import Job, JobStatus
from services.common.jobs.registry import get_kind
from services.common.settings import get_settings

log = logging.getLogger("atelier.jobs")
HEARTBEAT_S = 5.0


class JobCancelled(Exception):
    """Raised inside a handler when the job's cancellation was requested."""


class JobInputError(ValueError):
    """The job's input is unusable (bad model ref, bad dataset): fail with a 4xx-style problem."""


class JobWaiting(Exception):
    """Raised by a parent job's handler: park until these child jobs end, then run again.

    The handler must be resumable: it keeps what it decided in `ctx.state` and submits
    children with idempotency keys, so a re-run finds them instead of starting new ones.
    """

    def __init__(self, child_ids: list[str], stage: str = "waiting for child jobs") -> None:
        super().__init__(stage)
        self.child_ids = list(child_ids)
        self.stage = stage


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _worker_is_dead(identity: str | None) -> bool:
    """True when the recorded worker process is known to be gone (same host only)."""
    if not identity or ":" not in identity:
        return True
    host, pid = identity.rsplit(":", 1)
    if host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False


class JobContext:
    """What a handler sees: its params, progress reporting, cancellation and artifacts."""

    def __init__(self, job: Job) -> None:
        self.job_id = job.id
        self.kind = job.kind
        self.params: dict[str, Any] = dict(job.params or {})
        self.attempt = job.attempts
        self.owner = job.owner
        self.previous_detail: dict[str, Any] = dict(job.detail or {})
        self.state: dict[str, Any] = dict(job.state or {})
        self._last_write = 0.0
        self._last_stage = ""
        self._cancel_checked = 0.0
        self._cancelled = False

    def artifact_dir(self) -> Path:
        path = get_settings().resolved_artifact_root / "jobs" / self.job_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def progress(self, fraction: float, stage: str, **detail: Any) -> None:
        """Record progress (throttled) and stop here if cancellation was requested."""
        self.report(fraction, stage, **detail)
        self.raise_if_cancelled()

    def report(self, fraction: float, stage: str, **detail: Any) -> None:
        """Record progress without raising: for cores that poll `cancel_requested` themselves
        (a trainer that must write a checkpoint before it stops)."""
        now = time.monotonic()
        if stage != self._last_stage or now - self._last_write >= 0.5 or fraction >= 1.0:
            self._last_write, self._last_stage = now, stage
            with session_scope() as session:
                session.execute(
                    update(Job).where(Job.id == self.job_id, Job.status == JobStatus.running).values(
                        progress=max(0.0, min(1.0, float(fraction))), stage=stage[:200],
                        detail=_json_safe(detail), heartbeat_at=utcnow()))
                self._cancelled = bool(session.scalar(select(Job.cancel_requested).where(Job.id == self.job_id)))
                self._cancel_checked = now

    def save_state(self) -> None:
        """Persist `state` now, so a crash or a park resumes from here."""
        with session_scope() as session:
            session.execute(update(Job).where(Job.id == self.job_id).values(state=_json_safe(self.state)))

    def cancel_requested(self) -> bool:
        now = time.monotonic()
        if now - self._cancel_checked >= 0.5:
            with session_scope() as session:
                self._cancelled = bool(session.scalar(select(Job.cancel_requested).where(Job.id == self.job_id)))
            self._cancel_checked = now
        return self._cancelled

    def raise_if_cancelled(self) -> None:
        if self.cancel_requested():
            raise JobCancelled(self.job_id)


def _json_safe(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def _claim(job_id: str) -> Job | None:
    """Count a delivery and mark the job running; None when there is nothing to do."""
    settings = get_settings()
    me = worker_identity()
    with session_scope() as session:
        job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
        if job is None:
            log.warning("job %s: no such row; message dropped", job_id)
            return None
        status = JobStatus(job.status)
        if status.terminal:
            log.info("job %s already %s; redelivery ignored", job_id, status)
            return None
        if job.cancel_requested:
            _finish(job, JobStatus.cancelled, stage="cancelled")
            return None
        if job.waiting:
            log.info("job %s waits for its children; delivery ignored", job_id)
            return None
        if status == JobStatus.running and not _worker_is_dead(job.worker) and not _heartbeat_stale(job):
            log.info("job %s is running on %s; duplicate delivery ignored", job_id, job.worker)
            return None
        if job.attempts >= settings.job_max_attempts:
            _finish(job, JobStatus.failed, stage="failed", error={
                "type": "about:blank", "title": "Redelivery limit reached", "status": 500,
                "detail": f"job was delivered {job.attempts + 1} times and its worker died each time; "
                          f"giving up after {settings.job_max_attempts} attempts"})
            return None
        job.attempts += 1
        job.status = JobStatus.running
        job.worker = me
        job.heartbeat_at = utcnow()
        job.started_at = job.started_at or utcnow()
        job.stage = "started" if job.attempts == 1 else f"restarted (attempt {job.attempts})"
        session.flush()
        session.expunge(job)
        return job


def _heartbeat_stale(job: Job) -> bool:
    if job.heartbeat_at is None:
        return True
    return utcnow() - job.heartbeat_at > timedelta(seconds=get_settings().job_stale_after_s)


def _finish(job: Job, status: JobStatus, *, stage: str, result: dict | None = None,
            error: dict | None = None) -> None:
    job.status = status
    job.stage = stage
    job.finished_at = utcnow()
    if status == JobStatus.succeeded:
        job.progress = 1.0
    if result is not None:
        job.result = _json_safe(result)
    if error is not None:
        job.error = error


def _write_outcome(job_id: str, status: JobStatus, *, stage: str, result: dict | None = None,
                   error: dict | None = None) -> bool:
    """Write the outcome only while the row is still running under this worker (idempotent)."""
    with session_scope() as session:
        job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
        if job is None or job.status != JobStatus.running or job.worker != worker_identity():
            return False
        _finish(job, status, stage=stage, result=result, error=error)
        parent_id = job.parent_id
    if parent_id:
        wake_parent(parent_id)
    return True


def _park(job_id: str, waiting: JobWaiting, state: dict[str, Any]) -> None:
    """Hand the worker back: the job is queued again and flagged as waiting on its children.

    The delivery that parks is not a crash, so it does not count as an attempt."""
    with session_scope() as session:
        job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
        if job is None or job.status != JobStatus.running or job.worker != worker_identity():
            return
        job.status, job.waiting, job.worker = JobStatus.queued, True, None
        job.attempts = max(0, job.attempts - 1)
        job.stage = waiting.stage[:200]
        job.state = _json_safe({**state, "waiting_on": waiting.child_ids})
    wake_parent(job_id)  # the children may all have ended already


def wake_parent(parent_id: str) -> bool:
    """Re-dispatch a parked parent once none of its children is still queued or running."""
    from services.common.jobs.dispatch import get_dispatcher

    with session_scope() as session:
        parent = session.scalar(select(Job).where(Job.id == parent_id).with_for_update())
        if parent is None or not parent.waiting or parent.status != JobStatus.queued:
            return False
        pending = session.scalar(select(Job.id).where(
            Job.parent_id == parent_id, Job.status.in_([JobStatus.queued, JobStatus.running])).limit(1))
        if pending is not None:
            return False
        parent.waiting = False
        parent.stage = "resuming"
        session.flush()
        session.expunge(parent)
    get_dispatcher().submit(parent)
    return True


class _Heartbeat:
    """Keeps heartbeat_at fresh while a long step runs without reporting progress."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"heartbeat-{job_id[:8]}")

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                with session_scope() as session:
                    session.execute(update(Job).where(Job.id == self.job_id, Job.status == JobStatus.running)
                                    .values(heartbeat_at=utcnow()))
            except Exception:  # a missed beat is harmless; the next one retries
                log.debug("heartbeat failed for %s", self.job_id, exc_info=True)


def execute_job(job_id: str) -> str | None:
    """Run one delivery of a job. Returns the final status written, or None if skipped."""
    job = _claim(job_id)
    if job is None:
        return None
    kind = get_kind(job.kind)
    if kind is None:
        _write_outcome(job_id, JobStatus.failed, stage="failed", error={
            "type": "about:blank", "title": "Unknown job kind", "status": 500,
            "detail": f"this worker has no handler for {job.kind!r}"})
        return JobStatus.failed
    ctx = JobContext(job)
    try:
        with _Heartbeat(job_id):
            result = kind.handler(ctx)
    except JobWaiting as waiting:
        _park(job_id, waiting, ctx.state)
        return None
    except JobCancelled:
        partial = getattr(ctx, "partial_result", None)
        _write_outcome(job_id, JobStatus.cancelled, stage="cancelled", result=partial)
        return JobStatus.cancelled
    except JobInputError as exc:
        _write_outcome(job_id, JobStatus.failed, stage="failed", error={
            "type": "about:blank", "title": "Invalid job input", "status": 422, "detail": str(exc)})
        return JobStatus.failed
    except Exception as exc:
        log.exception("job %s (%s) failed", job_id, job.kind)
        _write_outcome(job_id, JobStatus.failed, stage="failed", error={
            "type": "about:blank", "title": "Job failed", "status": 500,
            "detail": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=8)})
        return JobStatus.failed
    written = _write_outcome(job_id, JobStatus.succeeded, stage="done", result=result or {})
    return JobStatus.succeeded if written else None


def recover_orphaned_jobs(*, requeue) -> list[str]:
    """Put back running jobs whose worker died (same host) or went silent; `requeue(job)` re-sends them."""
    recovered = []
    with session_scope() as session:
        running = list(session.scalars(select(Job).where(Job.status == JobStatus.running)))
        for job in running:
            if _worker_is_dead(job.worker) or _heartbeat_stale(job):
                job.status = JobStatus.queued
                job.stage = "re-queued after its worker was lost"
                job.worker = None
                recovered.append(job)
        session.flush()
        for job in recovered:
            session.expunge(job)
    for job in recovered:
        log.warning("re-queueing orphaned job %s (%s)", job.id, job.kind)
        requeue(job)
    return [job.id for job in recovered]
