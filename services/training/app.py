"""The training service's FastAPI app factory."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.api import create_service_app
from services.training.routes import router


def create_app() -> FastAPI:
    return create_service_app("training", [router], title="Atelier training service",
                              description="Memory-lean fine-tuning of diffusion denoisers.")
