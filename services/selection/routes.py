"""/v1/selection: the matching graph's rows, ranking, fitting and evaluation."""

from __future__ import annotations

import shutil
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile

from services.common.api import CallerDep, IdempotencyKeyDep, accept_job
from services.common.db import SessionDep
from services.common.errors import Problem
from services.common.jobs.schemas import JobOut
from services.common.settings import get_settings
from services.selection import service
from services.selection.models import Dataset, Model
from services.selection.schemas import (
    DatasetIn, DatasetOut, DatasetPatch, FitRequest, GraphOut, ImportReportOut, ModelIn, ModelOut, ModelPatch,
    ProfileRequest, RankRequest, RankResponse, ResultIn, ResultOut, SimilarityIn,
)

router = APIRouter(prefix="/v1/selection", tags=["selection"])
Offset = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=1000)]
ACCEPTED = {202: {"model": JobOut, "description": "Job accepted; follow Location."}}


def _model_out(model: Model) -> ModelOut:
    return ModelOut.model_validate({**{c: getattr(model, c) for c in ("id", "name", "created_at",
                                                                      *service.MODEL_FIELDS)},
                                    "metadata": model.meta})


def _dataset_out(dataset: Dataset) -> DatasetOut:
    return DatasetOut.model_validate({**{c: getattr(dataset, c) for c in ("id", "name", "created_at",
                                                                          *service.DATASET_FIELDS)},
                                      "metadata": dataset.meta})


async def _read_upload(upload: UploadFile) -> bytes:
    limit = get_settings().upload_max_bytes
    content = await upload.read(limit + 1)
    if len(content) > limit:
        raise Problem(413, f"upload exceeds {limit} bytes")
    if not content.strip():
        raise Problem(422, "the uploaded file is empty")
    return content


async def _read_text_upload(upload: UploadFile) -> bytes:
    """An upload that must be UTF-8 text (CSV or JSON records); the bytes are passed on as read."""
    content = await _read_upload(upload)
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as exc:  # refused whole: decoding with replacements would mangle names
        raise Problem(422, f"the file is not UTF-8 text (byte 0x{content[exc.start]:02x} at offset {exc.start}); "
                           "save it as UTF-8 (\"CSV UTF-8\" in a spreadsheet)") from None
    return content


# ---- models


@router.post("/models", response_model=ModelOut, status_code=201)
def create_model(body: ModelIn, db: SessionDep) -> ModelOut:
    return _model_out(service.create_model(db_session=db, body=body))


@router.get("/models", response_model=list[ModelOut])
def list_models(db: SessionDep, offset: Offset = 0, limit: Limit = 100) -> list[ModelOut]:
    return [_model_out(m) for m in service.list_rows(db_session=db, table=Model, offset=offset, limit=limit)]


@router.get("/models/{model_id}", response_model=ModelOut)
def get_model(model_id: str, db: SessionDep) -> ModelOut:
    return _model_out(service.get_model(db_session=db, ident=model_id))


@router.patch("/models/{model_id}", response_model=ModelOut)
def update_model(model_id: str, body: ModelPatch, db: SessionDep) -> ModelOut:
    return _model_out(service.update_model(db_session=db, ident=model_id, body=body))


@router.delete("/models/{model_id}", status_code=204)
def delete_model(model_id: str, db: SessionDep) -> None:
    service.delete_model(db_session=db, ident=model_id)


@router.post("/models/import", response_model=ImportReportOut)
async def import_models(db: SessionDep, file: Annotated[UploadFile, File()]) -> ImportReportOut:
    """Model metadata in the benchmark format (model_config_dataset.csv)."""
    content = await _read_text_upload(file)
    return service.import_models(db_session=db, content=content, filename=file.filename or "models.csv")


# ---- datasets


@router.post("/datasets", response_model=DatasetOut, status_code=201)
def create_dataset(body: DatasetIn, db: SessionDep) -> DatasetOut:
    return _dataset_out(service.create_dataset(db_session=db, body=body))


@router.get("/datasets", response_model=list[DatasetOut])
def list_datasets(db: SessionDep, offset: Offset = 0, limit: Limit = 100) -> list[DatasetOut]:
    return [_dataset_out(d) for d in service.list_rows(db_session=db, table=Dataset, offset=offset, limit=limit)]


@router.get("/datasets/{dataset_id}", response_model=DatasetOut)
def get_dataset(dataset_id: str, db: SessionDep) -> DatasetOut:
    return _dataset_out(service.get_dataset(db_session=db, ident=dataset_id))


@router.patch("/datasets/{dataset_id}", response_model=DatasetOut)
def update_dataset(dataset_id: str, body: DatasetPatch, db: SessionDep) -> DatasetOut:
    return _dataset_out(service.update_dataset(db_session=db, ident=dataset_id, body=body))


@router.delete("/datasets/{dataset_id}", status_code=204)
def delete_dataset(dataset_id: str, db: SessionDep) -> None:
    service.delete_dataset(db_session=db, ident=dataset_id)


@router.post("/datasets/import", response_model=ImportReportOut)
async def import_datasets(db: SessionDep, file: Annotated[UploadFile, File()]) -> ImportReportOut:
    """Dataset metadata in the benchmark format (target_dataset_features.csv)."""
    content = await _read_text_upload(file)
    return service.import_datasets(db_session=db, content=content, filename=file.filename or "datasets.csv")


@router.post("/datasets/{dataset_id}/upload", response_model=DatasetOut)
async def upload_dataset(dataset_id: str, db: SessionDep, file: Annotated[UploadFile, File()]) -> DatasetOut:
    """A zip of the image folder (images + metadata.jsonl or metadata.csv with file_name and text).

    Unpacked into the platform's storage and checked first (size, file count, compression ratio, paths,
    image contents); the dataset's uri then points at it and its old profile is dropped.
    """
    from services.common.diffusion import DatasetError, load_imagefolder
    from services.common.uploads import UploadLimits, UploadRejected, extract_image_archive

    dataset = service.get_dataset(db_session=db, ident=dataset_id)
    content = await _read_upload(file)
    settings = get_settings()
    dest = settings.resolved_artifact_root / "datasets" / dataset.id
    limits = UploadLimits(settings.upload_max_files, settings.upload_max_unpacked_bytes, settings.upload_max_ratio)
    staging = dest.with_name(f"{dataset.id}.checking")
    try:
        extract_image_archive(content, staging, limits)
        size = len(load_imagefolder(staging, resolution=8))  # the same check a job would make
    except UploadRejected as exc:
        raise Problem(exc.status, exc.detail) from exc
    except DatasetError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise Problem(422, f"not a usable image folder: {exc}") from exc
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    return _dataset_out(service.replace_dataset_files(db_session=db, dataset=dataset, uri=str(dest), size=size))


@router.post("/datasets/profile", status_code=202, responses=ACCEPTED)
def profile_dataset(body: ProfileRequest, db: SessionDep, caller: CallerDep,
                    idempotency_key: IdempotencyKeyDep = None):
    """Profile a registered dataset's image folder (a job), then store its similarities."""
    from services.common.diffusion import DatasetError, load_imagefolder
    from services.selection.mc.profile import PROFILE_RESOLUTION

    dataset = service.get_dataset(db_session=db, ident=body.dataset)
    if not dataset.uri:
        raise Problem(422, f"dataset {dataset.name!r} has no uri (image folder) to profile")
    try:  # a 4xx now rather than a failed job, as a training request is checked
        load_imagefolder(dataset.uri, resolution=PROFILE_RESOLUTION)
    except DatasetError as exc:
        raise Problem(422, f"unusable dataset: {exc}", title="Unusable dataset") from exc
    return accept_job(db_session=db, kind="selection.profile", caller=caller, idempotency_key=idempotency_key,
                      params={"dataset_id": dataset.id, "max_items": body.max_items})


# ---- results and similarities


@router.post("/results", response_model=list[ResultOut], status_code=201)
def add_results(body: ResultIn | list[ResultIn], db: SessionDep) -> list[ResultOut]:
    """One result, or a list of them; every model and dataset must exist."""
    rows = [service.add_result(db_session=db, body=item) for item in (body if isinstance(body, list) else [body])]
    return [ResultOut.model_validate(service.result_out(r)) for r in rows]


@router.get("/results", response_model=list[ResultOut])
def list_results(db: SessionDep, model: Annotated[str | None, Query(max_length=300)] = None,
                 dataset: Annotated[str | None, Query(max_length=300)] = None,
                 offset: Offset = 0, limit: Limit = 100) -> list[ResultOut]:
    rows = service.list_results(db_session=db, model=model, dataset=dataset, offset=offset, limit=limit)
    return [ResultOut.model_validate(service.result_out(r)) for r in rows]


@router.post("/results/import", response_model=ImportReportOut)
async def import_results(db: SessionDep, file: Annotated[UploadFile, File()]) -> ImportReportOut:
    """Bulk results in the benchmark format, CSV or JSON. Malformed rows are reported by row number."""
    content = await _read_text_upload(file)
    return service.import_results(db_session=db, content=content, filename=file.filename or "records.csv")


@router.post("/similarities", status_code=204)
def add_similarity(body: SimilarityIn, db: SessionDep) -> None:
    service.add_similarity(db_session=db, body=body)


@router.post("/similarities/import", response_model=ImportReportOut)
async def import_similarities(db: SessionDep, file: Annotated[UploadFile, File()],
                              method: Annotated[str | None, Form(max_length=100)] = None) -> ImportReportOut:
    """A square distance matrix (corr_domain_similarity_*.csv)."""
    content = await _read_text_upload(file)
    return service.import_similarity_matrix(db_session=db, content=content,
                                            filename=file.filename or "similarity.csv", method=method)


@router.post("/coverage/import", response_model=ImportReportOut)
async def import_coverage(db: SessionDep, file: Annotated[UploadFile, File()],
                          method: Annotated[str | None, Form(max_length=100)] = None) -> ImportReportOut:
    """A directed coverage matrix (domain_coverage_*.csv: row = covered dataset, column = reference,
    e.g. a model's pretraining set). Profiled pairs need none: it is computed from their profiles."""
    content = await _read_text_upload(file)
    return service.import_coverage_matrix(db_session=db, content=content,
                                          filename=file.filename or "coverage.csv", method=method)


# ---- the graph


@router.post("/rank", response_model=RankResponse)
def rank(body: RankRequest, db: SessionDep) -> RankResponse:
    return RankResponse.model_validate(service.rank(db_session=db, body=body))


@router.post("/fit", status_code=202, responses=ACCEPTED)
def fit(body: FitRequest, db: SessionDep, caller: CallerDep, idempotency_key: IdempotencyKeyDep = None):
    """Train embeddings and predictor on the current rows; stores a new graph version."""
    if reason := service.unfit_reason(db_session=db):
        raise Problem(422, reason)
    return accept_job(db_session=db, kind="selection.fit", params=body.model_dump(), caller=caller,
                      idempotency_key=idempotency_key)


@router.get("/evaluation")
def get_evaluation(db: SessionDep) -> dict:
    """The latest leave-one-dataset-out report."""
    from sqlalchemy import select

    from services.selection.models import GraphVersion

    version = db.scalar(select(GraphVersion).where(GraphVersion.evaluation.is_not(None))
                        .order_by(GraphVersion.created_at.desc()).limit(1))
    if version is None:
        raise Problem(404, "no evaluation yet: run POST /v1/selection/fit with evaluate=true")
    return {"graph_version_id": version.id, "created_at": version.created_at.isoformat(), **version.evaluation}


@router.get("/graph", response_model=GraphOut)
def get_graph(db: SessionDep) -> GraphOut:
    return GraphOut.model_validate(service.graph(db_session=db))
