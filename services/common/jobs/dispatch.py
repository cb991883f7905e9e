"""Getting a job to a worker: Celery when a broker is configured, else the in-process worker."""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from typing import Protocol

from sqlalchemy import select

from services.common.db import session_scope
from services.common.jobs.models import Job, JobStatus
from services.common.settings import get_settings

log = logging.getLogger("atelier.jobs")


class Dispatcher(Protocol):
    def submit(self, job: Job) -> None: ...
    def revoke(self, job_id: str) -> None: ...
    def ready(self) -> bool: ...


class CeleryDispatcher:
    def __init__(self) -> None:
        from services.common.celery_app import celery_app

        self.app = celery_app()

    def submit(self, job: Job) -> None:
        # task_id = job id, so a revoke names the job.
        self.app.send_task(job.kind, args=[job.id], task_id=job.id, queue=job.queue, retry=False)

    def revoke(self, job_id: str) -> None:
        # Without terminate: the running handler stops cooperatively; a redelivery is discarded.
        self.app.control.revoke(job_id)

    def ready(self) -> bool:
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            return True
        except Exception:
            return False


class EmbeddedWorker:
    """Threads that take queued jobs from the database and run them in this process."""

    def __init__(self, threads: int = 1, poll_s: float = 0.5) -> None:
        self.threads = threads
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        from services.common.jobs.registry import load_task_modules
        from services.common.jobs.runner import recover_orphaned_jobs

        load_task_modules()
        recover_orphaned_jobs(requeue=lambda job: self._wake.set())
        for i in range(self.threads):
            thread = threading.Thread(target=self._loop, daemon=True, name=f"atelier-worker-{i}")
            thread.start()
            self._workers.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._workers:
            thread.join(timeout=10)

    @property
    def alive(self) -> bool:
        return any(t.is_alive() for t in self._workers)

    def submit(self, job: Job) -> None:
        self._wake.set()

    def revoke(self, job_id: str) -> None:
        """Nothing to revoke: a running job sees its cancel flag at its next step."""

    def ready(self) -> bool:
        return self.alive

    def _next_job_id(self) -> str | None:
        with self._lock, session_scope() as session:
            return session.scalar(
                select(Job.id).where(Job.status == JobStatus.queued, Job.cancel_requested.is_(False),
                                    Job.waiting.is_(False))
                .order_by(Job.created_at).limit(1))

    def _loop(self) -> None:
        from services.common.jobs.runner import execute_job

        while not self._stop.is_set():
            try:
                job_id = self._next_job_id()
                if job_id is None:
                    self._wake.wait(self.poll_s)
                    self._wake.clear()
                    continue
                execute_job(job_id)
            except Exception:
                log.exception("embedded worker loop error")
                self._stop.wait(1.0)


_embedded: EmbeddedWorker | None = None


def embedded_worker() -> EmbeddedWorker:
    global _embedded
    if _embedded is None:
        _embedded = EmbeddedWorker(threads=get_settings().embedded_worker_threads)
    return _embedded


@lru_cache
def _celery_dispatcher() -> CeleryDispatcher:
    return CeleryDispatcher()


def get_dispatcher() -> Dispatcher:
    if get_settings().embedded:
        return embedded_worker()
    return _celery_dispatcher()
