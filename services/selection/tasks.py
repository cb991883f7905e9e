"""Selection jobs: fit the matching graph; profile a dataset's image folder."""

from __future__ import annotations

from typing import Any

import numpy as np

from services.common.db import session_scope
from services.common.jobs.registry import job_kind
from services.common.jobs.runner import JobContext, JobInputError
from services.common.settings import get_settings
from services.selection import service
from services.selection.schemas import FitRequest


@job_kind("selection.fit", queue="cpu")
def run_fit(ctx: JobContext) -> dict[str, Any]:
    body = FitRequest.model_validate(ctx.params)
    with session_scope() as session:
        try:
            version = service.fit(db_session=session, body=body, job_id=ctx.job_id,
                                  progress=lambda f, msg: ctx.progress(f, msg))
        except ValueError as exc:
            raise JobInputError(str(exc)) from exc
        evaluation = version.evaluation or {}
        summary = {name: {k: v for k, v in m.items() if k != "per_target"}
                   for name, m in evaluation.get("methods", {}).items()}
        return {"graph_version_id": version.id, "metrics": version.metrics, "evaluation": summary}


def image_encoder():
    from services.selection.mc.profile import ClipImageEncoder, PixelStatsEncoder

    settings = get_settings()
    return ClipImageEncoder(settings.clip_path) if settings.clip_path else PixelStatsEncoder()


def caption_encoder():
    """The packaged offline sentence encoder when installed; else the core's hashed bag of words."""
    try:
        from services.selection.mc.profile import packaged_sentence_encoder
    except ImportError:
        return None
    return packaged_sentence_encoder()


@job_kind("selection.profile", queue="cpu")
def run_profile(ctx: JobContext) -> dict[str, Any]:
    from services.common.diffusion import DatasetError
    from services.selection.mc.profile import profile_imagefolder

    with session_scope() as session:
        dataset = session.get(service.Dataset, ctx.params["dataset_id"])
        if dataset is None:
            raise JobInputError("the dataset was deleted before it was profiled")
        uri = dataset.uri
    ctx.progress(0.1, "encoding images and captions")
    try:
        profile = profile_imagefolder(uri, image_encoder=image_encoder(), caption_encoder=caption_encoder(),
                                      max_items=ctx.params.get("max_items", 512))
    except DatasetError as exc:
        raise JobInputError(str(exc)) from exc
    ctx.progress(0.8, "computing similarities")
    from services.selection.mc.similarity import profile_methods

    methods = profile_methods(profile.image_encoder, profile.caption_encoder)
    with session_scope() as session:
        dataset = session.get(service.Dataset, ctx.params["dataset_id"])
        dataset.profile = np.asarray(profile.embedding, dtype=float).tolist()
        dataset.caption_stats = profile.caption_stats
        dataset.size = dataset.size or profile.num_items
        session.commit()
        count = service.store_profile_similarities(db_session=session, dataset=dataset, methods=methods)
    return {"dataset_id": ctx.params["dataset_id"], "profile_dim": len(profile.embedding),
            "similarities": count, "image_encoder": profile.image_encoder,
            "caption_encoder": profile.caption_encoder}
