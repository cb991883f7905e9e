"""Quantization tables: one row per quantized model a job produced."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from services.common.db import Base, new_id, utcnow

ARTIFACT_KIND = "quantized-model"


class QuantizedModel(Base):
    __tablename__ = "quantized_models"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(String(32), unique=True)
    model_ref: Mapped[str] = mapped_column(String(1000))
    signal: Mapped[str] = mapped_column(String(50))
    avg_weight_bits: Mapped[float] = mapped_column(Float)
    weight_bytes_before: Mapped[int] = mapped_column(BigInteger)
    weight_bytes_after: Mapped[float] = mapped_column(Float)
    bytes_on_disk: Mapped[int] = mapped_column(BigInteger)
    quality: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    artifact_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
