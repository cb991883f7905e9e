"""The quantization service's FastAPI app factory."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.api import create_service_app


def create_app() -> FastAPI:
    return create_service_app("quantization", [], title="Atelier quantization service")
