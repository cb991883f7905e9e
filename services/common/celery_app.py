"""The one Celery factory: explicit cpu/gpu queues, late acks, one task per job kind."""

from __future__ import annotations

from functools import lru_cache

from celery import Celery
from celery.signals import worker_process_init, worker_ready
from kombu import Queue

from services.common.jobs.registry import QUEUES, all_kinds, load_task_modules
from services.common.settings import Settings, get_settings


def create_celery_app(settings: Settings | None = None, *, extra_task_modules: tuple[str, ...] = ()) -> Celery:
    settings = settings or get_settings()
    if settings.broker_url is None:
        raise RuntimeError("ATELIER_BROKER_URL is not set; the embedded worker runs jobs instead of Celery")
    load_task_modules(extra_task_modules)
    app = Celery("atelier", broker=settings.broker_url)
    app.conf.update(
        task_queues=[Queue(name) for name in QUEUES],
        task_create_missing_queues=False,
        task_default_queue="cpu",
        task_acks_late=True,  # safe: execute_job is idempotent per job row
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=settings.job_time_limit_s,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s,
                                  **({"global_keyprefix": settings.broker_key_prefix}
                                     if settings.broker_key_prefix else {})},
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,  # results live in the jobs table
        worker_hijack_root_logger=False,
        task_routes={kind.name: {"queue": kind.queue} for kind in all_kinds()},
    )
    for kind in all_kinds():
        _register_task(app, kind.name)
    return app


def _register_task(app: Celery, name: str) -> None:
    def run(self, job_id: str) -> str | None:
        from services.common.jobs.runner import execute_job

        try:
            return execute_job(job_id)
        except Exception as exc:
            # execute_job records every handler error itself; what escapes is infrastructure
            # (database or broker trouble). Send the message again rather than lose the job.
            raise self.retry(exc=exc, countdown=5)

    run.__name__ = name.replace(".", "_")
    app.task(name=name, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=60)(run)


@lru_cache
def celery_app() -> Celery:
    return create_celery_app()


@worker_process_init.connect
def _fresh_connections_in_child(**_):
    # A forked pool process must not share the parent's pooled database connections.
    from services.common.db import get_engine

    get_engine(get_settings().resolved_database_url).dispose(close=False)


@worker_ready.connect
def _recover_on_start(sender=None, **_):
    # A worker that died hard leaves its job 'running'; put such jobs back on start.
    from services.common.jobs.dispatch import get_dispatcher
    from services.common.jobs.runner import recover_orphaned_jobs

    recover_orphaned_jobs(requeue=get_dispatcher().submit)
