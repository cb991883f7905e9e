"""The quantization service's FastAPI app factory."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.api import create_service_app
from services.quantization.routes import router


def create_app() -> FastAPI:
    return create_service_app("quantization", [router], title="Atelier quantization service",
                              description="MPQ-Diff mixed-precision post-training quantization.")
