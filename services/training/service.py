"""Training service functions: resolve refs (through the selection service), validate, record."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common.clients import call_service
from services.common.settings import get_settings


@dataclass(frozen=True)
class Resolved:
    value: str  # the model ref or dataset folder to use
    selection_name: str | None  # set when registered with the selection service


def _lookup(kind: str, ident: str, owner: str | None) -> dict | None:
    """A selection model/dataset by id or name, or None (also when selection is unreachable)."""
    if "/" in ident and Path(ident).expanduser().exists():
        return None  # a path is a path, even if a row shares its name
    try:
        response = call_service("selection", "GET", f"/v1/selection/{kind}/{ident}", owner=owner, scope="read",
                                timeout_s=10)
    except Exception:
        return None
    return response.json() if response.status_code == 200 else None


def resolve_model(ident: str, *, owner: str | None = None) -> Resolved:
    row = _lookup("models", ident, owner)
    if row is None:
        return Resolved(ident, None)
    return Resolved(row.get("ref") or ident, row["name"])


def resolve_dataset(ident: str, *, owner: str | None = None) -> Resolved:
    row = _lookup("datasets", ident, owner)
    if row is None:
        return Resolved(ident, None)
    if not row.get("uri"):
        raise ValueError(f"dataset {row['name']!r} is registered without a uri (image folder)")
    return Resolved(row["uri"], row["name"])


def checkpoint_of(job_id: str) -> Path:
    return get_settings().resolved_artifact_root / "jobs" / job_id / "checkpoint"


def record_with_selection(*, model: str, dataset: str, value: float, config: dict[str, Any], job_id: str,
                          owner: str | None) -> dict[str, Any]:
    """Post the run's quality as a measured fine-tuning result (a graph edge for M&C)."""
    body = {"model": model, "dataset": dataset, "metric": "val_loss", "value": value, "higher_is_better": False,
            "config": config, "source": "measured", "job_id": job_id}
    response = call_service("selection", "POST", "/v1/selection/results", owner=owner, json=body)
    if response.status_code != 201:
        return {"recorded": False, "status": response.status_code, "detail": response.text[:500]}
    return {"recorded": True, "result_id": response.json()[0]["id"]}
