"""The fine-tuning job: load, train (fp32 | amp | memlean), evaluate, save, record with selection."""

from __future__ import annotations

from typing import Any

from services.common import artifacts
from services.common.db import session_scope
from services.common.jobs.registry import job_kind
from services.common.jobs.runner import JobCancelled, JobContext, JobInputError
from services.common.settings import resolve_device
from services.training import service
from services.training.models import ARTIFACT_KIND, TrainingRun
from services.training.schemas import TrainingJobRequest


@job_kind("training.finetune", queue="gpu")
def run_finetune(ctx: JobContext) -> dict[str, Any]:
    from services.common.diffusion import DatasetError, ModelRefError, load_bundle, load_imagefolder
    from services.training.memlean.trainer import TrainingConfig, bf16_emulation_warning, run_training

    request = TrainingJobRequest.model_validate(ctx.params)
    device = resolve_device()
    warning = bf16_emulation_warning(request.mode, device)  # slow, not wrong: said, not refused
    ctx.progress(0.0, "load", device=device, **({"warning": warning} if warning else {}))
    model = service.resolve_model(request.model, owner=ctx.owner)
    try:
        bundle = load_bundle(model.value, device=device)
        dataset_ref = service.resolve_dataset(request.dataset, owner=ctx.owner)
        dataset = load_imagefolder(dataset_ref.value, resolution=request.resolution or bundle.image_size,
                                   channels=bundle.image_channels)
        if request.max_images is not None:
            dataset.records = dataset.records[: request.max_images]
        config = TrainingConfig.from_dict(request.trainer_config(device))
        config.validate()
    except (ModelRefError, DatasetError, ValueError) as exc:
        raise JobInputError(str(exc)) from exc
    resume = service.checkpoint_of(request.resume_from_job) if request.resume_from_job else None
    # A redelivered job continues from its own checkpoint when a crash left one.
    own_checkpoint = service.checkpoint_of(ctx.job_id)
    if resume is None and own_checkpoint.exists():
        resume = own_checkpoint
    outcome = run_training(bundle, dataset, config, artifact_dir=ctx.artifact_dir(),
                           progress=lambda f, message, info: ctx.report(f, message, **info),
                           should_stop=ctx.cancel_requested, resume_from=resume)
    if outcome.stopped:
        ctx.partial_result = {"stopped_at_step": outcome.steps_done, "checkpoint_job": ctx.job_id,
                              "resume_with": {"resume_from_job": ctx.job_id}}
        raise JobCancelled(ctx.job_id)
    result = outcome.to_dict()
    if warning:
        result["warnings"] = [warning]
    for key in ("checkpoint_path", "artifact_path", "samples_path"):
        result.pop(key, None)  # worker-local paths; the artifact URL replaces them
    with session_scope() as session:
        artifact = artifacts.register(db_session=session, path=outcome.artifact_path, kind=ARTIFACT_KIND,
                                      job_id=ctx.job_id)
        if session.query(TrainingRun).filter_by(job_id=ctx.job_id).one_or_none() is None:
            session.add(TrainingRun(job_id=ctx.job_id, model_ref=model.value, dataset_uri=dataset_ref.value,
                                    mode=request.mode, steps=outcome.steps_done,
                                    final_val_loss=outcome.final_val_loss,
                                    peak_memory_bytes=outcome.peak_memory_bytes,
                                    median_step_seconds=outcome.median_step_seconds,
                                    quality=outcome.quality or {}, artifact_id=artifact.id))
        result.update(artifact_id=artifact.id, artifact_url=f"/v1/training/artifacts/{artifact.id}",
                      model_ref=model.value, dataset_uri=dataset_ref.value)
    result["selection"] = {"recorded": False, "reason": "model or dataset not registered with selection"}
    if request.record_result and model.selection_name and dataset_ref.selection_name:
        ctx.progress(0.99, "recording the result with the selection service")
        result["selection"] = service.record_with_selection(
            model=model.selection_name, dataset=dataset_ref.selection_name, value=outcome.final_val_loss,
            config={"mode": request.mode, "steps": request.steps, "batch_size": request.batch_size,
                    "lr": request.lr, "seed": request.seed, "eval_seed": request.eval_seed},
            job_id=ctx.job_id, owner=ctx.owner)
    return result
