"""Selection tables: the matching graph's rows and its trained versions.

The graph's tables index `updated_at`: every rank reads each table's newest time (service.data_revision).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.common.db import Base, new_id, utcnow
from services.selection.mc.records import MAX_LENGTH


class Model(Base):
    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(MAX_LENGTH["name"]), unique=True)
    ref: Mapped[str | None] = mapped_column(String(MAX_LENGTH["ref"]), default=None)
    family: Mapped[str | None] = mapped_column(String(MAX_LENGTH["family"]), default=None)
    architecture: Mapped[str | None] = mapped_column(String(MAX_LENGTH["architecture"]), default=None)
    num_parameters: Mapped[float | None] = mapped_column(Float, default=None)
    resolution: Mapped[float | None] = mapped_column(Float, default=None)
    pretraining_data: Mapped[str | None] = mapped_column(String(MAX_LENGTH["pretraining_data"]), default=None)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    features: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(MAX_LENGTH["name"]), unique=True)
    uri: Mapped[str | None] = mapped_column(String(1000), default=None)
    size: Mapped[float | None] = mapped_column(Float, default=None)
    modality: Mapped[str] = mapped_column(String(50), default="image")
    caption_stats: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    profile: Mapped[list[float] | None] = mapped_column(JSON(none_as_null=True), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)


class FinetuneResult(Base):
    __tablename__ = "finetune_results"
    __table_args__ = (Index("ix_finetune_results_pair", "model_id", "dataset_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    metric: Mapped[str] = mapped_column(String(MAX_LENGTH["metric"]))
    value: Mapped[float] = mapped_column(Float)
    higher_is_better: Mapped[bool] = mapped_column(Boolean, default=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(20), default="imported")
    job_id: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)

    model: Mapped[Model] = relationship(lazy="joined")
    dataset: Mapped[Dataset] = relationship(lazy="joined")


class DatasetSimilarity(Base):
    """A distance between two datasets (smaller = more similar), stored once per unordered pair."""

    __tablename__ = "dataset_similarity"
    __table_args__ = (UniqueConstraint("dataset_a_id", "dataset_b_id", "method", name="uq_similarity_pair_method"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    dataset_a_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    dataset_b_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    value: Mapped[float] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(MAX_LENGTH["method"]))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)

    dataset_a: Mapped[Dataset] = relationship(foreign_keys=[dataset_a_id], lazy="joined")
    dataset_b: Mapped[Dataset] = relationship(foreign_keys=[dataset_b_id], lazy="joined")


class DatasetCoverage(Base):
    """How poorly `reference`'s data covers `dataset`'s: a directed divergence (records.CoverageRow),
    imported from a coverage matrix. Profiled pairs need no row: it is computed from the profiles."""

    __tablename__ = "dataset_coverage"
    __table_args__ = (UniqueConstraint("dataset_id", "reference_id", "method", name="uq_coverage_pair_method"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    reference_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    value: Mapped[float] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(MAX_LENGTH["method"]))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)

    dataset: Mapped[Dataset] = relationship(foreign_keys=[dataset_id], lazy="joined")
    reference: Mapped[Dataset] = relationship(foreign_keys=[reference_id], lazy="joined")


class GraphVersion(Base):
    __tablename__ = "graph_versions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    training_hash: Mapped[str] = mapped_column(String(64))
    predictor: Mapped[bytes] = mapped_column(LargeBinary)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    evaluation: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    job_id: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
