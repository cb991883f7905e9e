from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.quantization.mpq.pipeline import QuantizationConfig


class QuantizationJobRequest(QuantizationConfig):
    """What to quantize and how: MPQ-Diff's config plus the model reference."""

    model: str = Field(min_length=1, max_length=1000,
                       description='A model ref: "tiny:unet2d-condition", a local folder, or a cached hub id.')


class QuantizedModelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    job_id: str
    model_ref: str
    signal: str
    avg_weight_bits: float
    weight_bytes_before: int
    weight_bytes_after: float
    bytes_on_disk: int
    quality: dict[str, Any]
    artifact_id: str
    created_at: datetime
