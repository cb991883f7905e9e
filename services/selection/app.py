"""The selection service's FastAPI app factory."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.api import create_service_app
from services.selection.routes import router


def create_app() -> FastAPI:
    return create_service_app("selection", [router], title="Atelier selection service",
                              description="M&C: rank pretrained models for a target dataset.")
