from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from services.common.schemas import JsonObject, RequestModel
from services.selection.mc.records import MAX_LENGTH

Name = Annotated[str, Field(min_length=1, max_length=MAX_LENGTH["name"])]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Distance = Annotated[float, Field(ge=0, allow_inf_nan=False)]


def _well_formed_profile(value: list[float] | None) -> list[float] | None:
    """A profile whose header does not match its length is refused here (422), not at use."""
    if value is not None:
        import numpy as np

        from services.selection.mc.profile import unpack_blocks

        unpack_blocks(np.asarray(value, dtype=float))  # ValueError -> a validation error
    return value


PROFILE_DOC = ("Packed profile: [-k, d_1..d_k, mu_1, cov_1 (row-major), ..., mu_k, cov_k], one Gaussian per "
               "modality (image, captions); the older single-Gaussian layout [d, mu, cov] is read too.")
ProfileIn = Annotated[list[float] | None, AfterValidator(_well_formed_profile)]


class ModelIn(RequestModel):
    name: Name
    ref: str | None = Field(None, max_length=MAX_LENGTH["ref"], description="Hub id or local path.")
    family: str | None = Field(None, max_length=MAX_LENGTH["family"])
    architecture: str | None = Field(None, max_length=MAX_LENGTH["architecture"])
    num_parameters: float | None = Field(None, ge=0)
    resolution: float | None = Field(None, ge=0)
    pretraining_data: str | None = Field(None, max_length=MAX_LENGTH["pretraining_data"])
    metadata: JsonObject = Field(default_factory=dict)
    features: dict[str, float] = Field(default_factory=dict, description="Numeric features for the predictor.")


class ModelPatch(RequestModel):
    ref: str | None = Field(None, max_length=MAX_LENGTH["ref"])
    family: str | None = Field(None, max_length=MAX_LENGTH["family"])
    architecture: str | None = Field(None, max_length=MAX_LENGTH["architecture"])
    num_parameters: float | None = Field(None, ge=0)
    resolution: float | None = Field(None, ge=0)
    pretraining_data: str | None = Field(None, max_length=MAX_LENGTH["pretraining_data"])
    metadata: JsonObject | None = None
    features: dict[str, float] | None = None


class ModelOut(ModelIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore", allow_inf_nan=True)  # a response
    id: str
    created_at: datetime


class DatasetIn(RequestModel):
    name: Name
    uri: str | None = Field(None, max_length=1000, description="Image folder (imagefolder layout).")
    size: float | None = Field(None, ge=0)
    modality: str = Field("image", max_length=50)
    caption_stats: dict[str, float] = Field(default_factory=dict)
    metadata: JsonObject = Field(default_factory=dict)
    profile: ProfileIn = Field(None, max_length=100_000, description=PROFILE_DOC)


class DatasetPatch(RequestModel):
    uri: str | None = Field(None, max_length=1000)
    size: float | None = Field(None, ge=0)
    modality: str | None = Field(None, max_length=50)
    caption_stats: dict[str, float] | None = None
    metadata: JsonObject | None = None


class DatasetOut(DatasetIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore", allow_inf_nan=True)
    id: str
    created_at: datetime
    profile: list[float] | None = Field(None, description=PROFILE_DOC)  # as stored: not re-validated


class ResultIn(RequestModel):
    model: Name = Field(description="Model id or name.")
    dataset: Name = Field(description="Dataset id or name.")
    metric: str = Field("eval_accuracy", min_length=1, max_length=MAX_LENGTH["metric"])
    value: float = Field(allow_inf_nan=False)
    higher_is_better: bool = True
    config: JsonObject = Field(default_factory=dict)
    source: Literal["imported", "measured"] = "imported"
    job_id: str | None = Field(None, max_length=32)


class ResultOut(BaseModel):
    id: str
    model: str
    dataset: str
    metric: str
    value: float
    higher_is_better: bool
    config: dict[str, Any]
    source: str
    job_id: str | None
    created_at: datetime


class SimilarityIn(RequestModel):
    dataset_a: Name
    dataset_b: Name
    value: float = Field(ge=0, allow_inf_nan=False, description="A distance: smaller = more similar.")
    method: str = Field("user", min_length=1, max_length=MAX_LENGTH["method"])


class ImportReportOut(BaseModel):
    imported: int
    created_models: list[str] = Field(default_factory=list)
    created_datasets: list[str] = Field(default_factory=list)
    skipped: list[dict[str, Any]] = Field(default_factory=list)
    duplicates: int = 0
    unmatched: dict[str, list[str]] = Field(default_factory=dict)
    renamed: dict[str, str] = Field(default_factory=dict)
    degenerate: dict[str, str] = Field(default_factory=dict)


class InlineDataset(RequestModel):
    name: str = Field("new-dataset", max_length=300)
    profile: ProfileIn = Field(None, max_length=100_000, description=PROFILE_DOC)
    distances: dict[str, Distance] | None = Field(None, max_length=100_000,
                                                  description="Distance to known datasets by name.")
    metadata: dict[str, FiniteFloat] = Field(default_factory=dict, description="e.g. size, number_of_classes")

    @model_validator(mode="after")
    def _needs_profile_or_distances(self):
        if not self.profile and not self.distances:
            raise ValueError("an inline dataset needs a profile or distances to known datasets")
        return self


class RankRequest(RequestModel):
    dataset: str | None = Field(None, max_length=300, description="A registered dataset, by id or name.")
    inline: InlineDataset | None = None
    candidates: list[str] | None = Field(None, max_length=10_000, description="Model ids or names.")
    k: int = Field(10, ge=1, le=10_000)

    @model_validator(mode="after")
    def _one_target(self):
        if (self.dataset is None) == (self.inline is None):
            raise ValueError("give exactly one of `dataset` or `inline`")
        return self


class RankedModelOut(BaseModel):
    model: str
    model_id: str | None
    rank: int
    score: float
    explanation: dict[str, Any]


class RankResponse(BaseModel):
    dataset: str
    predictor_version: str
    graph_version_id: str
    graph_stale: bool
    ranking: list[RankedModelOut]


class FitRequest(RequestModel):
    embedding: Literal["gat", "sage", "node2vec", "none"] = "gat"
    objective: Literal["regression", "lambdarank"] = "regression"
    evaluate: bool = Field(True, description="Also run the leave-one-dataset-out evaluation.")
    seed: int = 0
    members: int = Field(3, ge=1, le=10, description="Rankers fitted with seeds seed, seed+1, …; their scores are "
                                                     "averaged (fewer: a faster fit, a noisier ranking).")


class ProfileRequest(RequestModel):
    dataset: str = Field(max_length=300, description="Dataset id or name; its `uri` is the image folder.")
    max_items: int = Field(512, ge=1, le=100_000)


class GraphVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    training_hash: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    created_at: datetime
    job_id: str | None


class GraphOut(BaseModel):
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    version: GraphVersionOut | None
    stale: bool
