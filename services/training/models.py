"""Training tables: one row per fine-tuning run a job finished."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.common.db import Base, new_id, utcnow

ARTIFACT_KIND = "finetuned-model"


class TrainingRun(Base):
    __tablename__ = "training_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(String(32), unique=True)
    model_ref: Mapped[str] = mapped_column(String(1000))
    dataset_uri: Mapped[str] = mapped_column(String(1000))
    mode: Mapped[str] = mapped_column(String(40))
    steps: Mapped[int] = mapped_column(Integer)
    final_val_loss: Mapped[float] = mapped_column(Float)
    peak_memory_bytes: Mapped[int] = mapped_column(BigInteger)
    median_step_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    quality: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    artifact_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
