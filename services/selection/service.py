"""Selection service functions: rows in PostgreSQL <-> the M&C core. Keyword-only."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, defer

from services.common.errors import Problem, not_found
from services.common.settings import get_settings
from services.selection.mc.records import (
    MIN_COMPARING_DATASETS, CoverageRow, DatasetRow, ImportReport, ModelRow, NameMatcher, ResultRow, SimilarityRow, Zoo,
    parse_coverage_matrix, parse_datasets, parse_distance_matrix, parse_models, parse_results,
)
from services.selection.models import Dataset, DatasetCoverage, DatasetSimilarity, FinetuneResult, GraphVersion, Model
from services.selection.schemas import (
    DatasetIn, DatasetPatch, FitRequest, ImportReportOut, ModelIn, ModelPatch, RankRequest, ResultIn, SimilarityIn,
)

MODEL_FIELDS = ("ref", "family", "architecture", "num_parameters", "resolution", "pretraining_data", "features")
DATASET_FIELDS = ("uri", "size", "modality", "caption_stats", "profile")
NEVER_NULL = {"metadata", "caption_stats", "features"}


# ---------------------------------------------------------------- models and datasets


def _by_id_or_name(db_session: Session, table, ident: str):
    row = db_session.get(table, ident)
    if row is None:
        row = db_session.scalar(select(table).where(table.name == ident))
    return row


def get_model(*, db_session: Session, ident: str) -> Model:
    model = _by_id_or_name(db_session, Model, ident)
    if model is None:
        raise not_found("model", ident)
    return model


def get_dataset(*, db_session: Session, ident: str) -> Dataset:
    dataset = _by_id_or_name(db_session, Dataset, ident)
    if dataset is None:
        raise not_found("dataset", ident)
    return dataset


def _unique_name(db_session: Session, table, name: str, what: str) -> None:
    if db_session.scalar(select(table.id).where(table.name == name)) is not None:
        raise Problem(409, f"a {what} named {name!r} already exists")


def create_model(*, db_session: Session, body: ModelIn) -> Model:
    _unique_name(db_session, Model, body.name, "model")
    data = body.model_dump()
    model = Model(name=data.pop("name"), meta=data.pop("metadata"), **data)
    db_session.add(model)
    db_session.commit()
    return model


def update_model(*, db_session: Session, ident: str, body: ModelPatch) -> Model:
    model = get_model(db_session=db_session, ident=ident)
    for key, value in body.model_dump(exclude_unset=True).items():
        if value is None and key in NEVER_NULL:
            value = {}  # null clears a mapping; the column itself stays a mapping
        setattr(model, "meta" if key == "metadata" else key, value)
    db_session.commit()
    return model


def delete_model(*, db_session: Session, ident: str) -> None:
    db_session.delete(get_model(db_session=db_session, ident=ident))
    db_session.commit()


def list_rows(*, db_session: Session, table, offset: int, limit: int) -> list:
    return list(db_session.scalars(select(table).order_by(table.name).offset(offset).limit(limit)))


def create_dataset(*, db_session: Session, body: DatasetIn) -> Dataset:
    _unique_name(db_session, Dataset, body.name, "dataset")
    data = body.model_dump()
    dataset = Dataset(name=data.pop("name"), meta=data.pop("metadata"), **data)
    db_session.add(dataset)
    db_session.commit()
    return dataset


def update_dataset(*, db_session: Session, ident: str, body: DatasetPatch) -> Dataset:
    dataset = get_dataset(db_session=db_session, ident=ident)
    for key, value in body.model_dump(exclude_unset=True).items():
        if value is None and key in NEVER_NULL:
            value = {}  # null clears a mapping; the column itself stays a mapping
        setattr(dataset, "meta" if key == "metadata" else key, value)
    db_session.commit()
    return dataset


def replace_dataset_files(*, db_session: Session, dataset: Dataset, uri: str, size: int) -> Dataset:
    """New images: the old profile and the similarities and coverages measured on them no longer hold."""
    dataset.uri, dataset.size, dataset.profile = uri, float(size), None
    db_session.execute(delete(DatasetSimilarity).where(
        (DatasetSimilarity.dataset_a_id == dataset.id) | (DatasetSimilarity.dataset_b_id == dataset.id)))
    db_session.execute(delete(DatasetCoverage).where(
        (DatasetCoverage.dataset_id == dataset.id) | (DatasetCoverage.reference_id == dataset.id)))
    db_session.commit()
    return dataset


def delete_dataset(*, db_session: Session, ident: str) -> None:
    db_session.delete(get_dataset(db_session=db_session, ident=ident))
    db_session.commit()


# ---------------------------------------------------------------- results and similarities


def result_out(row: FinetuneResult) -> dict[str, Any]:
    return {"id": row.id, "model": row.model.name, "dataset": row.dataset.name, "metric": row.metric,
            "value": row.value, "higher_is_better": row.higher_is_better, "config": row.config,
            "source": row.source, "job_id": row.job_id, "created_at": row.created_at}


def add_result(*, db_session: Session, body: ResultIn) -> FinetuneResult:
    model = get_model(db_session=db_session, ident=body.model)
    dataset = get_dataset(db_session=db_session, ident=body.dataset)
    row = FinetuneResult(model=model, dataset=dataset, metric=body.metric, value=body.value,
                         higher_is_better=body.higher_is_better, config=body.config, source=body.source,
                         job_id=body.job_id)
    db_session.add(row)
    db_session.commit()
    return row


def list_results(*, db_session: Session, model: str | None, dataset: str | None, offset: int,
                 limit: int) -> list[FinetuneResult]:
    query = select(FinetuneResult)
    if model:
        query = query.where(FinetuneResult.model_id == get_model(db_session=db_session, ident=model).id)
    if dataset:
        query = query.where(FinetuneResult.dataset_id == get_dataset(db_session=db_session, ident=dataset).id)
    return list(db_session.scalars(query.order_by(FinetuneResult.created_at, FinetuneResult.id)
                                    .offset(offset).limit(limit)))


class _Nodes:
    """Finds or creates model/dataset rows by name while importing, matching names loosely."""

    def __init__(self, db_session: Session) -> None:
        self.db = db_session
        self.models = {m.name: m for m in db_session.scalars(select(Model))}
        self.datasets = {d.name: d for d in db_session.scalars(select(Dataset))}
        self.dataset_matcher = NameMatcher(self.datasets)
        self.created_models: list[str] = []
        self.created_datasets: list[str] = []

    def model(self, name: str) -> Model:
        if name not in self.models:
            self.models[name] = Model(name=name, meta={}, features={})
            self.db.add(self.models[name])
            self.created_models.append(name)
        return self.models[name]

    def dataset(self, name: str, *, create: bool = True) -> Dataset | None:
        matched = self.dataset_matcher.match(name) if name not in self.datasets else name
        if matched is not None and matched in self.datasets:
            return self.datasets[matched]
        if not create:
            return None
        self.datasets[name] = Dataset(name=name, meta={}, caption_stats={})
        self.db.add(self.datasets[name])
        self.dataset_matcher = NameMatcher(self.datasets)
        self.created_datasets.append(name)
        return self.datasets[name]


def _flag_degenerate(db_session: Session, report: ImportReport) -> None:
    """Datasets whose results carry no ranking signal are flagged (never dropped silently)."""
    from services.selection.mc.records import flag_degenerate

    zoo = load_zoo(db_session=db_session)
    classes = {d.name: d.metadata.get("number_of_classes") for d in zoo.datasets.values()}
    report.degenerate.update(flag_degenerate(zoo.quality_matrix(), {k: v for k, v in classes.items() if v}))


def _report(report: ImportReport, imported: int, nodes: _Nodes) -> ImportReportOut:
    data = report.to_dict()
    return ImportReportOut(imported=imported, created_models=nodes.created_models,
                           created_datasets=nodes.created_datasets, skipped=data["skipped"],
                           duplicates=data["duplicates"], unmatched=data["unmatched"], renamed=data["renamed"],
                           degenerate=data["degenerate"])


def import_results(*, db_session: Session, content: bytes, filename: str, source: str = "imported",
                   job_id: str | None = None) -> ImportReportOut:
    """Results in the benchmark format (CSV or JSON). Bad rows are reported, never raised."""
    fmt = "json" if filename.lower().endswith(".json") else None
    rows, report = parse_results(content, fmt=fmt, source_label=filename)
    nodes = _Nodes(db_session)
    for row in rows:
        db_session.add(FinetuneResult(model=nodes.model(row.model), dataset=nodes.dataset(row.dataset),
                                      metric=row.metric, value=row.value, higher_is_better=row.higher_is_better,
                                      config=row.config, source=source, job_id=job_id))
    db_session.commit()
    _flag_degenerate(db_session, report)
    return _report(report, len(rows), nodes)


def import_models(*, db_session: Session, content: bytes, filename: str) -> ImportReportOut:
    """Model metadata (e.g. model_config_dataset.csv): creates or updates models by name."""
    rows, report = parse_models(content, filename)
    nodes = _Nodes(db_session)
    for row in rows:
        model = nodes.model(row.name)
        for key in MODEL_FIELDS:
            if getattr(row, key) not in (None, {}):
                setattr(model, key, getattr(row, key))
        model.meta = {**(model.meta or {}), **row.metadata}
    db_session.commit()
    return _report(report, len(rows), nodes)


def import_datasets(*, db_session: Session, content: bytes, filename: str) -> ImportReportOut:
    """Dataset metadata (e.g. target_dataset_features.csv): creates or updates datasets by name."""
    rows, report = parse_datasets(content, filename)
    nodes = _Nodes(db_session)
    for row in rows:
        dataset = nodes.dataset(row.name)
        if row.name != dataset.name:
            report.renamed[row.name] = dataset.name
        if row.size is not None:
            dataset.size = row.size
        dataset.meta = {**(dataset.meta or {}), **row.metadata}
    db_session.commit()
    _flag_degenerate(db_session, report)
    return _report(report, len(rows), nodes)


def import_similarity_matrix(*, db_session: Session, content: bytes, filename: str,
                             method: str | None = None) -> ImportReportOut:
    """A square distance matrix. Rows for names that match no dataset are reported, not stored."""
    rows, report = parse_distance_matrix(content, method=method or filename.rsplit(".", 1)[0],
                                         source_label=filename)
    return _import_pairs(db_session, report, filename, [((r.dataset_a, r.dataset_b), r) for r in rows],
                         lambda a, b, r: _upsert_similarity(db_session, a, b, r.value, r.method))


def import_coverage_matrix(*, db_session: Session, content: bytes, filename: str,
                           method: str | None = None) -> ImportReportOut:
    """A directed coverage matrix (domain_coverage_*.csv: row = covered dataset, column =
    reference). Cells naming an unregistered dataset are reported, not stored."""
    rows, report = parse_coverage_matrix(content, method=method or filename.rsplit(".", 1)[0], source_label=filename)
    return _import_pairs(db_session, report, filename, [((r.dataset, r.reference), r) for r in rows],
                         lambda a, b, r: _upsert_coverage(db_session, a, b, r.value, r.method))


def _import_pairs(db_session: Session, report: ImportReport, filename: str, rows: list, store) -> ImportReportOut:
    """Store each ((name, name), row) whose two names are two registered datasets (store(a, b, row));
    the names that match none are reported under the file's name."""
    nodes = _Nodes(db_session)
    unmatched: set[str] = set()
    stored = 0
    for (first, second), row in rows:
        a, b = nodes.dataset(first, create=False), nodes.dataset(second, create=False)
        unmatched.update(raw for raw, found in ((first, a), (second, b)) if found is None)
        if a is None or b is None or a is b:
            continue
        store(a, b, row)
        stored += 1
    report.unmatched[filename] = sorted(unmatched)
    db_session.commit()
    return _report(report, stored, nodes)


def _upsert_coverage(db_session: Session, covered: Dataset, reference: Dataset, value: float, method: str) -> None:
    _upsert_pair(db_session, DatasetCoverage, value, method, dataset=covered, reference=reference)


def _upsert_similarity(db_session: Session, a: Dataset, b: Dataset, value: float, method: str) -> None:
    if a.name > b.name:  # stored once per unordered pair
        a, b = b, a
    _upsert_pair(db_session, DatasetSimilarity, value, method, dataset_a=a, dataset_b=b)


def _upsert_pair(db_session: Session, table, value: float, method: str, **datasets: Dataset) -> None:
    """The row of `table` for these datasets (relationship name -> dataset) and method: its value
    updated, or a new row."""
    db_session.flush()
    existing = db_session.scalar(select(table).filter_by(method=method, **{f"{k}_id": d.id for k, d in datasets.items()}))
    if existing is None:
        db_session.add(table(value=value, method=method, **datasets))
    else:
        existing.value = value


def add_similarity(*, db_session: Session, body: SimilarityIn) -> None:
    a = get_dataset(db_session=db_session, ident=body.dataset_a)
    b = get_dataset(db_session=db_session, ident=body.dataset_b)
    if a.id == b.id:
        raise Problem(422, "a similarity needs two different datasets")
    _upsert_similarity(db_session, a, b, body.value, body.method)
    db_session.commit()


def store_profile_similarities(*, db_session: Session, dataset: Dataset, methods: dict[str, str]) -> int:
    """Distances from this dataset's profile to every other profiled dataset of the same layout:
    the combined one under methods["combined"] and, for an image + caption profile, each modality's
    under methods["image"] / methods["caption"] (a ranker may choose one by inner CV)."""
    from services.selection.mc.similarity import profile_distances

    others = db_session.scalars(select(Dataset).where(Dataset.id != dataset.id, Dataset.profile.is_not(None)))
    count = 0
    for other in others:
        try:
            values = profile_distances(np.asarray(dataset.profile), np.asarray(other.profile))
        except ValueError:  # profiled with other encoders (another layout): not comparable
            continue
        for label, value in values.items():
            _upsert_similarity(db_session, dataset, other, value, methods[label])
        count += 1
    db_session.commit()
    return count


# ---------------------------------------------------------------- the zoo for the core


def load_zoo(*, db_session: Session) -> Zoo:
    zoo = Zoo()
    for m in db_session.scalars(select(Model)):
        zoo.models[m.name] = ModelRow(name=m.name, ref=m.ref, family=m.family, architecture=m.architecture,
                                      num_parameters=m.num_parameters, resolution=m.resolution,
                                      pretraining_data=m.pretraining_data, metadata=m.meta or {},
                                      features=m.features or {})
    for d in db_session.scalars(select(Dataset)):
        zoo.datasets[d.name] = DatasetRow(name=d.name, uri=d.uri, size=d.size, modality=d.modality,
                                          caption_stats=d.caption_stats or {}, metadata=d.meta or {},
                                          profile=None if d.profile is None else np.asarray(d.profile))
    for r in db_session.scalars(select(FinetuneResult)):
        zoo.results.append(ResultRow(model=r.model.name, dataset=r.dataset.name, metric=r.metric, value=r.value,
                                     higher_is_better=r.higher_is_better, config=r.config or {}, source=r.source,
                                     job_id=r.job_id))
    for s in db_session.scalars(select(DatasetSimilarity)):
        zoo.similarities.append(SimilarityRow(s.dataset_a.name, s.dataset_b.name, s.value, s.method))
    for c in db_session.scalars(select(DatasetCoverage)):
        zoo.coverages.append(CoverageRow(c.dataset.name, c.reference.name, c.value, c.method))
    return zoo


GRAPH_TABLES = (Model, Dataset, FinetuneResult, DatasetSimilarity, DatasetCoverage)


def data_revision(*, db_session: Session) -> str:
    """A cheap fingerprint of the graph's rows: counts and newest times of every table, in one
    statement (every rank asks: one round trip instead of five)."""
    return _graph_state(db_session)[0]


@lru_cache(maxsize=1)
def _graph_state_statement():
    """data_revision's counts and newest times, then the latest graph version's id: built once (a
    rank runs it; building the statement cost more than running it on SQLite)."""
    columns = [select(agg).scalar_subquery() for table in GRAPH_TABLES
               for agg in (func.count(table.id), func.max(table.updated_at))]
    latest = select(GraphVersion.id).order_by(GraphVersion.created_at.desc()).limit(1).scalar_subquery()
    return select(*columns, latest)


def _graph_state(db_session: Session) -> tuple[str, str | None]:
    """(data_revision, the latest graph version's id or None) in one round trip."""
    values = db_session.execute(_graph_state_statement()).one()
    parts = [f"{table.__tablename__}:{values[2 * i]}:{values[2 * i + 1]}" for i, table in enumerate(GRAPH_TABLES)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest(), values[-1]


def training_hash(zoo: Zoo) -> str:
    """Hash of exactly what a fit sees: results, similarities and metadata."""
    payload = {
        "results": sorted((r.model, r.dataset, r.metric, round(r.value, 9), r.higher_is_better) for r in zoo.results),
        "similarities": sorted((s.dataset_a, s.dataset_b, s.method, round(s.value, 9)) for s in zoo.similarities),
        "models": sorted((m.name, m.family, m.num_parameters, json.dumps(m.features, sort_keys=True))
                         for m in zoo.models.values()),
        "datasets": sorted((d.name, d.size, json.dumps(d.metadata, sort_keys=True, default=str))
                           for d in zoo.datasets.values()),
    }
    if zoo.coverages:  # only where there are any, so the hashes of graphs without them stay as they were
        payload["coverages"] = sorted((c.dataset, c.reference, c.method, round(c.value, 9)) for c in zoo.coverages)
    return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class _Loaded:
    zoo: Zoo
    tables: Any
    ranker: Any
    training_hash: str
    model_ids: dict[str, str]  # model name -> id
    model_names: dict[str, str]  # model id or name -> name: what a rank's candidates may say
    dataset_names: dict[str, str]  # dataset id or name -> name
    version_id: str
    version_training_hash: str  # what the version was trained on (differs from training_hash: stale)


class _ZooCache:
    """The graph rows, their tables (and what is memoised on them), the latest trained ranker and
    the model and dataset ids, reloaded only when the data or version change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, str | None] | None = None
        self._value: _Loaded | None = None

    def get(self, db_session: Session, revision: str, version_id: str) -> _Loaded:
        """What is loaded for (data_revision, version id); loaded now if either changed."""
        from services.selection.mc.graph import tables_from_zoo
        from services.selection.mc.predictor import Ranker

        key = (revision, version_id)
        with self._lock:
            if self._key != key or self._value is None:
                version = db_session.get(GraphVersion, version_id)
                zoo = load_zoo(db_session=db_session)
                ranker = Ranker.from_bytes(version.predictor)
                _compile_forests(ranker)
                model_ids = dict(db_session.execute(select(Model.name, Model.id)).all())
                dataset_ids = dict(db_session.execute(select(Dataset.name, Dataset.id)).all())
                self._value = _Loaded(zoo, tables_from_zoo(zoo), ranker, training_hash(zoo), model_ids,
                                      _by_id_and_name(model_ids), _by_id_and_name(dataset_ids), version.id,
                                      version.training_hash)
                self._key = key
            return self._value


def _by_id_and_name(ids: dict[str, str]) -> dict[str, str]:
    """name -> id as {id or name: name}: the two ways a request may name a row."""
    return {**{row_id: name for name, row_id in ids.items()}, **{name: name for name in ids}}


_cache = _ZooCache()


def forest_cache_dir(home: Path | None = None) -> Path:
    """Where compiled forests are cached: under ATELIER_HOME (this process's, or `home`)."""
    return (home or get_settings().home) / "cache" / "forests"


def _forests_wanted() -> bool:
    """Whether rank uses compiled forests here: the setting asks for them and lleaves is installed."""
    from services.selection.mc import forest

    return get_settings().compile_forests and forest.available()


def _compile_forests(ranker) -> threading.Thread | None:
    """Rank with the ranker's LightGBM models compiled (mc.forest): what is cached on this machine
    loads now; the rest compiles on a background thread (seconds a model), LightGBM predicting the
    same numbers meanwhile. Returns that thread, or None when nothing is left to compile."""
    if not _forests_wanted():
        return None
    cache_dir = forest_cache_dir()
    if ranker.compile_forests(cache_dir=cache_dir, cached_only=True):
        return None
    thread = threading.Thread(target=ranker.compile_forests, kwargs={"cache_dir": cache_dir}, name="forest-compile",
                              daemon=True)
    thread.start()
    return thread


def latest_version(*, db_session: Session) -> GraphVersion | None:
    """The newest graph version, without its predictor and evaluation (they load if read; the
    dashboard's graph reads neither; rank reads the predictor by id, see _ZooCache)."""
    return db_session.scalar(select(GraphVersion).options(defer(GraphVersion.predictor), defer(GraphVersion.evaluation))
                             .order_by(GraphVersion.created_at.desc()).limit(1))


def rank(*, db_session: Session, body: RankRequest) -> dict[str, Any]:
    revision, version_id = _graph_state(db_session)  # one round trip; the rest is in memory until they change
    if version_id is None:
        raise Problem(409, "no trained matching graph yet: run POST /v1/selection/fit first",
                      title="Graph not trained")
    loaded = _cache.get(db_session, revision, version_id)
    zoo, ranker = loaded.zoo, loaded.ranker
    distances: dict[str, float] | None = None
    metadata: dict[str, float] | None = None
    coverage: dict[str, float] | None = None
    if body.dataset is not None:
        target = loaded.dataset_names.get(body.dataset)
        if target is None:
            raise not_found("dataset", body.dataset)
    else:
        inline = body.inline
        target = inline.name
        if target in zoo.datasets:
            raise Problem(409, f"dataset {target!r} is registered; rank it by name or choose another inline name")
        distances = dict(inline.distances or {})
        if inline.profile:
            distances.update(_distances_from_profile(zoo, np.asarray(inline.profile), ranker.config.similarity))
            from services.selection.mc.graph import pretraining_coverage_of

            coverage = pretraining_coverage_of(zoo, np.asarray(inline.profile))
        unknown = sorted(set(distances) - set(zoo.datasets))
        if unknown:
            raise Problem(422, f"distances name unknown datasets: {', '.join(unknown[:10])}")
        if not distances:
            raise Problem(422, "the inline profile matches no profiled dataset (different encoder or none profiled)")
        metadata = inline.metadata
    candidates = None
    if body.candidates:
        candidates = _model_names(loaded.model_names, body.candidates)
    ranked = ranker.rank(loaded.tables, target, candidates=candidates, k=body.k, distances=distances, metadata=metadata,
                         coverage=coverage)
    ids = loaded.model_ids
    return {
        "dataset": target,
        "predictor_version": ranker.version,
        "graph_version_id": loaded.version_id,
        "graph_stale": loaded.training_hash != loaded.version_training_hash,
        "ranking": [{"model": r.model, "model_id": ids.get(r.model), "rank": r.rank, "score": r.score,
                     "explanation": r.evidence} for r in ranked],
    }


def _model_names(by_ident: dict[str, str], idents: list[str]) -> list[str]:
    """Resolve many model ids or names (a ranking may name thousands) against the loaded graph's
    models, without a query."""
    names = [by_ident.get(i) for i in idents]
    if None in names:
        unknown = [i for i, name in zip(idents, names) if name is None]
        raise Problem(404, f"unknown models: {', '.join(unknown[:10])}" + (" …" if len(unknown) > 10 else ""))
    return list(dict.fromkeys(names))  # a model named twice (by id and by name) is ranked once


def _comparable_distance(profile: np.ndarray, other, method: str = "") -> float | None:
    """profile_distance (or one modality's distance, for a per-modality method), or None where
    `other` was profiled with other encoders (another layout)."""
    from services.selection.mc.similarity import modality_of, profile_distances

    try:
        return profile_distances(profile, np.asarray(other)).get(modality_of(method) or "combined")
    except ValueError:
        return None


def _distances_from_profile(zoo: Zoo, profile: np.ndarray, method: str = "") -> dict[str, float]:
    """An inline profile's distances to the profiled datasets, in the measure of the ranker's
    similarity method (with_target lets them stand for every method's)."""
    distances = {d.name: _comparable_distance(profile, d.profile, method) for d in zoo.datasets.values()
                 if d.profile is not None}
    return {name: v for name, v in distances.items() if v is not None}


def unfit_reason(*, db_session: Session) -> str | None:
    """Why the rows cannot train a graph yet, or None. A dataset teaches the ranker only by comparing
    models on it, so it counts once it has results for two models; transfer needs two such."""
    comparing = (select(FinetuneResult.dataset_id).group_by(FinetuneResult.dataset_id)
                 .having(func.count(func.distinct(FinetuneResult.model_id)) >= 2).subquery())
    have = db_session.scalar(select(func.count()).select_from(comparing))
    if have < MIN_COMPARING_DATASETS:  # the rule of records.datasets_comparing_models, counted in SQL
        return (f"fitting needs {MIN_COMPARING_DATASETS} datasets with fine-tuning results for at least two "
                f"models each; {have} dataset{'' if have == 1 else 's'} {'has' if have == 1 else 'have'} that")
    return None


def fit(*, db_session: Session, body: FitRequest, job_id: str | None, progress) -> GraphVersion:
    """Train embeddings + predictor on every row; optionally evaluate leave-one-dataset-out."""
    from services.selection.mc.predictor import Ranker, RankerConfig

    if reason := unfit_reason(db_session=db_session):  # the rows may have changed since the request
        raise ValueError(reason)
    zoo = load_zoo(db_session=db_session)
    config = RankerConfig(embedding=body.embedding, objective=body.objective, seed=body.seed, members=body.members)
    progress(0.1, "training embeddings and predictor")
    ranker = Ranker(config).fit(zoo)
    evaluation = None
    if body.evaluate:
        evaluation = evaluate(zoo=zoo, config=config, progress=lambda f, msg: progress(0.4 + 0.55 * f, msg))
    version = store_version(db_session=db_session, zoo=zoo, ranker=ranker, job_id=job_id,
                            config=body.model_dump(exclude={"evaluate"}))
    version.evaluation = evaluation
    db_session.commit()
    if _forests_wanted():
        # where the worker shares ATELIER_HOME with the API (embedded; a shared volume), the API
        # loads this version's compiled forests from the cache on its first rank
        progress(0.98, "compiling the predictor's forests for ranking")
        ranker.compile_forests(cache_dir=forest_cache_dir())
    return version


def evaluate(*, zoo: Zoo, config, progress) -> dict[str, Any]:
    """Leave-one-dataset-out over every dataset with results, M&C against the baselines."""
    from services.selection.mc.evaluate import (
        best_on_average, leave_one_dataset_out, nearest_dataset, random_method, ranker_method, summarise,
    )

    targets = sorted({r.dataset for r in zoo.results})
    methods = {"mc": ranker_method(config), "best_on_average": best_on_average,
               "nearest_dataset": nearest_dataset, "random": random_method(0)}
    done = [0]

    def on_target(message: str) -> None:
        done[0] += 1
        progress(done[0] / len(targets), message[:180])

    results = leave_one_dataset_out(zoo, methods, targets, progress=on_target)
    return {"targets": targets, "methods": summarise(results), "primary": "mc"}


def graph(*, db_session: Session) -> dict[str, Any]:
    """Nodes and edges for the dashboard."""
    version = latest_version(db_session=db_session)
    nodes, edges = [], []
    for m in db_session.scalars(select(Model).order_by(Model.name)):
        nodes.append({"id": m.id, "type": "model", "name": m.name, "family": m.family})
    for d in db_session.scalars(select(Dataset).order_by(Dataset.name)):
        nodes.append({"id": d.id, "type": "dataset", "name": d.name, "profiled": d.profile is not None})
    for r in db_session.scalars(select(FinetuneResult)):
        edges.append({"type": "finetune", "source": r.model_id, "target": r.dataset_id, "metric": r.metric,
                      "value": r.value, "higher_is_better": r.higher_is_better, "source_kind": r.source})
    for s in db_session.scalars(select(DatasetSimilarity)):
        edges.append({"type": "similarity", "source": s.dataset_a_id, "target": s.dataset_b_id,
                      "value": s.value, "method": s.method})
    stale = True
    if version is not None:
        stale = training_hash(load_zoo(db_session=db_session)) != version.training_hash
    return {"nodes": nodes, "edges": edges, "version": version, "stale": stale}


def store_zoo(*, db_session: Session, zoo: Zoo) -> None:
    """Write an in-memory zoo as rows (bench servers, the T2I zoo build)."""
    nodes = _Nodes(db_session)
    for row in zoo.models.values():
        model = nodes.model(row.name)
        for key in MODEL_FIELDS:
            setattr(model, key, getattr(row, key) if key != "features" else dict(row.features))
        model.meta = dict(row.metadata)
    for row in zoo.datasets.values():
        dataset = nodes.dataset(row.name)
        dataset.uri, dataset.size, dataset.modality = row.uri, row.size, row.modality
        dataset.caption_stats, dataset.meta = dict(row.caption_stats), dict(row.metadata)
        dataset.profile = None if row.profile is None else np.asarray(row.profile, dtype=float).tolist()
    db_session.flush()
    for row in zoo.results:
        db_session.add(FinetuneResult(model=nodes.model(row.model), dataset=nodes.dataset(row.dataset),
                                      metric=row.metric, value=row.value, higher_is_better=row.higher_is_better,
                                      config=row.config, source=row.source, job_id=row.job_id))
    for row in zoo.similarities:
        a, b = nodes.dataset(row.dataset_a, create=False), nodes.dataset(row.dataset_b, create=False)
        if a is not None and b is not None and a is not b:
            lo, hi = (a, b) if a.name < b.name else (b, a)
            db_session.add(DatasetSimilarity(dataset_a=lo, dataset_b=hi, value=row.value, method=row.method))
    for row in zoo.coverages:
        covered, reference = nodes.dataset(row.dataset, create=False), nodes.dataset(row.reference, create=False)
        if covered is not None and reference is not None and covered is not reference:
            db_session.add(DatasetCoverage(dataset=covered, reference=reference, value=row.value, method=row.method))
    db_session.commit()


def store_version(*, db_session: Session, zoo: Zoo, ranker, config: dict[str, Any],
                  job_id: str | None = None) -> GraphVersion:
    version = GraphVersion(training_hash=training_hash(zoo), predictor=ranker.to_bytes(), config=config,
                           metrics={"inner_cv": ranker.cv, "trained_on": len(ranker.trained_on),
                                    "predictor_version": ranker.version}, job_id=job_id)
    db_session.add(version)
    db_session.commit()
    return version
