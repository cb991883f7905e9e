"""Job kinds: each service's tasks module registers the handlers it runs.

A handler is a plain function `handler(ctx: JobContext) -> dict`; the Celery
worker and the embedded worker call the same `execute_job`, which calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.common.jobs.runner import JobContext

QUEUES = ("cpu", "gpu")
Handler = Callable[["JobContext"], dict[str, Any]]


@dataclass(frozen=True)
class JobKind:
    name: str
    queue: str
    handler: Handler


_KINDS: dict[str, JobKind] = {}


def job_kind(name: str, *, queue: str) -> Callable[[Handler], Handler]:
    if queue not in QUEUES:
        raise ValueError(f"queue must be one of {QUEUES}, not {queue!r}")

    def register(handler: Handler) -> Handler:
        _KINDS[name] = JobKind(name=name, queue=queue, handler=handler)
        return handler

    return register


def get_kind(name: str) -> JobKind | None:
    if name not in _KINDS:
        load_task_modules()  # an API process learns the kinds (and their queues) on first use
    return _KINDS.get(name)


def all_kinds() -> list[JobKind]:
    return list(_KINDS.values())


# The modules whose import registers every production job kind.
TASK_MODULES = (
    "services.selection.tasks",
    "services.quantization.tasks",
    "services.training.tasks",
    "services.gateway.workflows.tasks",
)


def load_task_modules(extra: tuple[str, ...] = ()) -> None:
    """Import every module that registers job kinds; a missing plug-in module fails loudly."""
    import importlib

    from services.common.settings import get_settings

    for module in (*TASK_MODULES, *get_settings().extra_task_modules, *extra):
        importlib.import_module(module)
