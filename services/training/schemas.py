from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.common.schemas import RequestModel


class TrainingJobRequest(RequestModel):
    model: str = Field(min_length=1, max_length=1000,
                       description="A model ref (tiny:…, a local folder, a cached hub id) or a model "
                                   "registered with the selection service (its ref is used).")
    dataset: str = Field(min_length=1, max_length=1000,
                         description="An image folder (imagefolder + metadata.jsonl), or a dataset registered "
                                     "with the selection service (its uri is used).")
    mode: Literal["fp32", "amp", "memlean", "memlean_bf16_states"] = "memlean"
    steps: int = Field(100, ge=1, le=1_000_000)
    batch_size: int = Field(4, ge=1, le=4096)
    lr: float = Field(1e-4, gt=0, le=10, allow_inf_nan=False)
    lr_schedule: Literal["constant", "cosine", "linear"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    seed: int = 0
    attention_precision: Literal["auto", "fp32", "bf16"] = Field("auto", description=(
        "What the attention core computes in under the bf16 modes (amp, memlean). auto: fp32 on a CPU, "
        "whose bf16 attention kernel is several times slower than its fp32 one; bf16 on a GPU."))
    gradient_checkpointing: bool = False
    grad_accumulation: int = Field(1, ge=1, le=1024)
    max_grad_norm: float | None = Field(None, gt=0)
    resolution: int | None = Field(None, ge=8, le=1024, description=(
        "Side of the training images. Default: the model's image size (the denoiser's sample size; "
        "times the VAE's factor for a latent model)."))
    eval_seed: int = 0
    eval_size: int = Field(8, ge=1, le=10_000)
    eval_repeats: int = Field(4, ge=1, le=256, description="(noise, timestep) draws per held-out image.")
    max_images: int | None = Field(None, ge=2, description="Use only the dataset's first N images "
                                                             "(held-out evaluation images included).")
    num_samples: int = Field(8, ge=0, le=1024)
    sample_steps: int = Field(20, ge=1, le=1000)
    resume_from_job: str | None = Field(None, max_length=32,
                                        description="A cancelled training job whose checkpoint to continue.")
    record_result: bool = Field(True, description="Record the result with the selection service when the "
                                                  "model and dataset are registered there.")

    def trainer_config(self, device: str) -> dict[str, Any]:
        skip = {"model", "dataset", "resolution", "max_images", "resume_from_job", "record_result"}
        return {**self.model_dump(exclude=skip), "device": device}


class TrainingRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    job_id: str
    model_ref: str
    dataset_uri: str
    mode: str
    steps: int
    final_val_loss: float
    peak_memory_bytes: int
    median_step_seconds: float | None
    quality: dict[str, Any]
    artifact_id: str
    created_at: datetime
