from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.training_job_request_attention_precision import TrainingJobRequestAttentionPrecision
from ..models.training_job_request_lr_schedule import TrainingJobRequestLrSchedule
from ..models.training_job_request_mode import TrainingJobRequestMode
from ..models.training_job_request_optimizer import TrainingJobRequestOptimizer
from ..types import UNSET, Unset

T = TypeVar("T", bound="TrainingJobRequest")


@_attrs_define
class TrainingJobRequest:
    """
    Attributes:
        dataset (str): An image folder (imagefolder + metadata.jsonl), or a dataset registered with the selection
            service (its uri is used).
        model (str): A model ref (tiny:…, a local folder, a cached hub id) or a model registered with the selection
            service (its ref is used).
        attention_precision (TrainingJobRequestAttentionPrecision | Unset): What the attention core computes in under
            the bf16 modes (amp, memlean). auto: fp32 on a CPU, whose bf16 attention kernel is several times slower than its
            fp32 one; bf16 on a GPU. Default: TrainingJobRequestAttentionPrecision.AUTO.
        batch_size (int | Unset):  Default: 4.
        eval_repeats (int | Unset): (noise, timestep) draws per held-out image. Default: 4.
        eval_seed (int | Unset):  Default: 0.
        eval_size (int | Unset):  Default: 8.
        grad_accumulation (int | Unset):  Default: 1.
        gradient_checkpointing (bool | Unset):  Default: False.
        lr (float | Unset):  Default: 0.0001.
        lr_schedule (TrainingJobRequestLrSchedule | Unset):  Default: TrainingJobRequestLrSchedule.CONSTANT.
        max_grad_norm (float | None | Unset):
        max_images (int | None | Unset): Use only the dataset's first N images (held-out evaluation images included).
        mode (TrainingJobRequestMode | Unset):  Default: TrainingJobRequestMode.MEMLEAN.
        num_samples (int | Unset):  Default: 8.
        optimizer (TrainingJobRequestOptimizer | Unset):  Default: TrainingJobRequestOptimizer.ADAMW.
        record_result (bool | Unset): Record the result with the selection service when the model and dataset are
            registered there. Default: True.
        resolution (int | None | Unset): Side of the training images. Default: the model's image size (the denoiser's
            sample size; times the VAE's factor for a latent model).
        resume_from_job (None | str | Unset): A cancelled training job whose checkpoint to continue.
        sample_steps (int | Unset):  Default: 20.
        seed (int | Unset):  Default: 0.
        steps (int | Unset):  Default: 100.
        warmup_steps (int | Unset):  Default: 0.
    """

    dataset: str
    model: str
    attention_precision: TrainingJobRequestAttentionPrecision | Unset = TrainingJobRequestAttentionPrecision.AUTO
    batch_size: int | Unset = 4
    eval_repeats: int | Unset = 4
    eval_seed: int | Unset = 0
    eval_size: int | Unset = 8
    grad_accumulation: int | Unset = 1
    gradient_checkpointing: bool | Unset = False
    lr: float | Unset = 0.0001
    lr_schedule: TrainingJobRequestLrSchedule | Unset = TrainingJobRequestLrSchedule.CONSTANT
    max_grad_norm: float | None | Unset = UNSET
    max_images: int | None | Unset = UNSET
    mode: TrainingJobRequestMode | Unset = TrainingJobRequestMode.MEMLEAN
    num_samples: int | Unset = 8
    optimizer: TrainingJobRequestOptimizer | Unset = TrainingJobRequestOptimizer.ADAMW
    record_result: bool | Unset = True
    resolution: int | None | Unset = UNSET
    resume_from_job: None | str | Unset = UNSET
    sample_steps: int | Unset = 20
    seed: int | Unset = 0
    steps: int | Unset = 100
    warmup_steps: int | Unset = 0

    def to_dict(self) -> dict[str, Any]:
        dataset = self.dataset

        model = self.model

        attention_precision: str | Unset = UNSET
        if not isinstance(self.attention_precision, Unset):
            attention_precision = self.attention_precision.value

        batch_size = self.batch_size

        eval_repeats = self.eval_repeats

        eval_seed = self.eval_seed

        eval_size = self.eval_size

        grad_accumulation = self.grad_accumulation

        gradient_checkpointing = self.gradient_checkpointing

        lr = self.lr

        lr_schedule: str | Unset = UNSET
        if not isinstance(self.lr_schedule, Unset):
            lr_schedule = self.lr_schedule.value

        max_grad_norm: float | None | Unset
        if isinstance(self.max_grad_norm, Unset):
            max_grad_norm = UNSET
        else:
            max_grad_norm = self.max_grad_norm

        max_images: int | None | Unset
        if isinstance(self.max_images, Unset):
            max_images = UNSET
        else:
            max_images = self.max_images

        mode: str | Unset = UNSET
        if not isinstance(self.mode, Unset):
            mode = self.mode.value

        num_samples = self.num_samples

        optimizer: str | Unset = UNSET
        if not isinstance(self.optimizer, Unset):
            optimizer = self.optimizer.value

        record_result = self.record_result

        resolution: int | None | Unset
        if isinstance(self.resolution, Unset):
            resolution = UNSET
        else:
            resolution = self.resolution

        resume_from_job: None | str | Unset
        if isinstance(self.resume_from_job, Unset):
            resume_from_job = UNSET
        else:
            resume_from_job = self.resume_from_job

        sample_steps = self.sample_steps

        seed = self.seed

        steps = self.steps

        warmup_steps = self.warmup_steps

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "dataset": dataset,
                "model": model,
            }
        )
        if attention_precision is not UNSET:
            field_dict["attention_precision"] = attention_precision
        if batch_size is not UNSET:
            field_dict["batch_size"] = batch_size
        if eval_repeats is not UNSET:
            field_dict["eval_repeats"] = eval_repeats
        if eval_seed is not UNSET:
            field_dict["eval_seed"] = eval_seed
        if eval_size is not UNSET:
            field_dict["eval_size"] = eval_size
        if grad_accumulation is not UNSET:
            field_dict["grad_accumulation"] = grad_accumulation
        if gradient_checkpointing is not UNSET:
            field_dict["gradient_checkpointing"] = gradient_checkpointing
        if lr is not UNSET:
            field_dict["lr"] = lr
        if lr_schedule is not UNSET:
            field_dict["lr_schedule"] = lr_schedule
        if max_grad_norm is not UNSET:
            field_dict["max_grad_norm"] = max_grad_norm
        if max_images is not UNSET:
            field_dict["max_images"] = max_images
        if mode is not UNSET:
            field_dict["mode"] = mode
        if num_samples is not UNSET:
            field_dict["num_samples"] = num_samples
        if optimizer is not UNSET:
            field_dict["optimizer"] = optimizer
        if record_result is not UNSET:
            field_dict["record_result"] = record_result
        if resolution is not UNSET:
            field_dict["resolution"] = resolution
        if resume_from_job is not UNSET:
            field_dict["resume_from_job"] = resume_from_job
        if sample_steps is not UNSET:
            field_dict["sample_steps"] = sample_steps
        if seed is not UNSET:
            field_dict["seed"] = seed
        if steps is not UNSET:
            field_dict["steps"] = steps
        if warmup_steps is not UNSET:
            field_dict["warmup_steps"] = warmup_steps

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        dataset = d.pop("dataset")

        model = d.pop("model")

        _attention_precision = d.pop("attention_precision", UNSET)
        attention_precision: TrainingJobRequestAttentionPrecision | Unset
        if isinstance(_attention_precision, Unset):
            attention_precision = UNSET
        else:
            attention_precision = TrainingJobRequestAttentionPrecision(_attention_precision)

        batch_size = d.pop("batch_size", UNSET)

        eval_repeats = d.pop("eval_repeats", UNSET)

        eval_seed = d.pop("eval_seed", UNSET)

        eval_size = d.pop("eval_size", UNSET)

        grad_accumulation = d.pop("grad_accumulation", UNSET)

        gradient_checkpointing = d.pop("gradient_checkpointing", UNSET)

        lr = d.pop("lr", UNSET)

        _lr_schedule = d.pop("lr_schedule", UNSET)
        lr_schedule: TrainingJobRequestLrSchedule | Unset
        if isinstance(_lr_schedule, Unset):
            lr_schedule = UNSET
        else:
            lr_schedule = TrainingJobRequestLrSchedule(_lr_schedule)

        def _parse_max_grad_norm(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        max_grad_norm = _parse_max_grad_norm(d.pop("max_grad_norm", UNSET))

        def _parse_max_images(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        max_images = _parse_max_images(d.pop("max_images", UNSET))

        _mode = d.pop("mode", UNSET)
        mode: TrainingJobRequestMode | Unset
        if isinstance(_mode, Unset):
            mode = UNSET
        else:
            mode = TrainingJobRequestMode(_mode)

        num_samples = d.pop("num_samples", UNSET)

        _optimizer = d.pop("optimizer", UNSET)
        optimizer: TrainingJobRequestOptimizer | Unset
        if isinstance(_optimizer, Unset):
            optimizer = UNSET
        else:
            optimizer = TrainingJobRequestOptimizer(_optimizer)

        record_result = d.pop("record_result", UNSET)

        def _parse_resolution(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        resolution = _parse_resolution(d.pop("resolution", UNSET))

        def _parse_resume_from_job(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        resume_from_job = _parse_resume_from_job(d.pop("resume_from_job", UNSET))

        sample_steps = d.pop("sample_steps", UNSET)

        seed = d.pop("seed", UNSET)

        steps = d.pop("steps", UNSET)

        warmup_steps = d.pop("warmup_steps", UNSET)

        training_job_request = cls(
            dataset=dataset,
            model=model,
            attention_precision=attention_precision,
            batch_size=batch_size,
            eval_repeats=eval_repeats,
            eval_seed=eval_seed,
            eval_size=eval_size,
            grad_accumulation=grad_accumulation,
            gradient_checkpointing=gradient_checkpointing,
            lr=lr,
            lr_schedule=lr_schedule,
            max_grad_norm=max_grad_norm,
            max_images=max_images,
            mode=mode,
            num_samples=num_samples,
            optimizer=optimizer,
            record_result=record_result,
            resolution=resolution,
            resume_from_job=resume_from_job,
            sample_steps=sample_steps,
            seed=seed,
            steps=steps,
            warmup_steps=warmup_steps,
        )

        return training_job_request
