"""The MPQ-Diff job: load, calibrate, metric, allocate, quantize, evaluate, export."""

from __future__ import annotations

from typing import Any

from services.common import artifacts
from services.common.db import session_scope
from services.common.jobs.registry import job_kind
from services.common.jobs.runner import JobCancelled, JobContext, JobInputError
from services.common.settings import resolve_device
from services.quantization.models import ARTIFACT_KIND, QuantizedModel
from services.quantization.schemas import QuantizationJobRequest


@job_kind("quantization.quantize", queue="gpu")
def run_quantize(ctx: JobContext) -> dict[str, Any]:
    from services.common.diffusion import ModelRefError, load_bundle
    from services.quantization.mpq.pipeline import QuantizationCancelled, run_quantization

    request = QuantizationJobRequest.model_validate(ctx.params)
    device = resolve_device()
    ctx.progress(0.0, "load", device=device)
    try:
        bundle = load_bundle(request.model, device=device)
    except ModelRefError as exc:
        raise JobInputError(str(exc)) from exc
    export_dir = ctx.artifact_dir() / "quantized"
    try:
        outcome = run_quantization(bundle, request, artifact_dir=export_dir,
                                   progress=lambda f, stage, info: ctx.report(f, stage, **info),
                                   should_stop=ctx.cancel_requested)
    except QuantizationCancelled as exc:
        raise JobCancelled(ctx.job_id) from exc
    except ValueError as exc:  # an unreachable budget or bad layer names found late
        raise JobInputError(str(exc)) from exc
    result = outcome.to_dict()
    with session_scope() as session:
        artifact = artifacts.register(db_session=session, path=export_dir, kind=ARTIFACT_KIND, job_id=ctx.job_id)
        if session.query(QuantizedModel).filter_by(job_id=ctx.job_id).one_or_none() is None:
            session.add(QuantizedModel(job_id=ctx.job_id, model_ref=request.model, signal=outcome.signal,
                                       avg_weight_bits=outcome.avg_weight_bits,
                                       weight_bytes_before=outcome.weight_bytes_before,
                                       weight_bytes_after=outcome.weight_bytes_after,
                                       bytes_on_disk=outcome.bytes_on_disk, quality=outcome.quality,
                                       artifact_id=artifact.id))
        result.update(artifact_id=artifact.id, artifact_url=f"/v1/quantization/artifacts/{artifact.id}",
                      device=device)
    result.pop("export_path", None)  # a worker-local path; the artifact URL replaces it
    return result
