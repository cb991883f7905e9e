"""Import every ORM module so Base.metadata knows all tables (Alembic, tests)."""

from __future__ import annotations

import importlib

MODEL_MODULES = (
    "services.common.auth",
    "services.common.jobs.models",
    "services.common.artifacts",
    "services.selection.models",
    "services.quantization.models",
    "services.training.models",
)


def import_all_models():
    from services.common.db import Base

    for module in MODEL_MODULES:
        importlib.import_module(module)
    return Base.metadata
