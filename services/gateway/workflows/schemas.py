from __future__ import annotations

from pydantic import Field

from services.common.schemas import RequestModel


class TrainingBudget(RequestModel):
    steps: int = Field(50, ge=1, le=100_000)
    batch_size: int = Field(8, ge=1, le=1024)
    lr: float = Field(3e-4, gt=0, le=1, allow_inf_nan=False)
    seed: int = 0


class QuantizationBudget(RequestModel):
    avg_weight_bits: float = Field(4.0, ge=2, le=8)
    avg_act_bits: float = Field(8.0, ge=4, le=16)
    signal: str = Field("sensitivity", pattern="^(orthogonality|sensitivity|hybrid|uniform|random)$")
    num_inference_steps: int = Field(10, ge=2, le=1000)
    calibration_samples: int = Field(4, ge=2, le=256)
    sampled_steps: int = Field(4, ge=1, le=100)


class AdaptRequest(RequestModel):
    dataset: str = Field(min_length=1, max_length=1000,
                         description="A dataset registered with selection (id or name), or an image folder.")
    candidates: list[str] | None = Field(None, max_length=1000, description="Model ids or names to choose from.")
    top_k: int = Field(2, ge=1, le=20, description="How many ranked models to fine-tune.")
    training: TrainingBudget = Field(default_factory=TrainingBudget)
    quantization: QuantizationBudget = Field(default_factory=QuantizationBudget)
