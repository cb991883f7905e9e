"""In-memory rows of the matching graph and the importer for the benchmark format.

The rows map 1:1 onto the tables the service layer persists (models, datasets,
finetune_results, dataset_similarity). The importer never raises on bad input:
malformed rows are skipped and listed, with their 1-based data-row number, in an
`ImportReport`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

DEFAULT_METRIC = "eval_accuracy"
# The longest text each field may hold: the API's schemas and the tables use the same limits, so a
# row the importer accepts is one the database stores (PostgreSQL refuses a longer varchar).
MAX_LENGTH = {"name": 300, "ref": 1000, "family": 200, "architecture": 200, "pretraining_data": 300,
              "metric": 100, "method": 100}


# ---------------------------------------------------------------- rows


@dataclass
class ModelRow:
    name: str
    ref: str | None = None
    family: str | None = None
    architecture: str | None = None
    num_parameters: float | None = None
    resolution: float | None = None
    pretraining_data: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    features: dict[str, float] = field(default_factory=dict)


@dataclass
class DatasetRow:
    name: str
    uri: str | None = None
    size: float | None = None
    modality: str = "image"
    caption_stats: dict[str, float] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    profile: np.ndarray | None = None


@dataclass
class ResultRow:
    model: str
    dataset: str
    metric: str
    value: float
    higher_is_better: bool = True
    config: dict[str, Any] = field(default_factory=dict)
    source: str = "imported"  # imported | measured
    job_id: str | None = None


@dataclass
class SimilarityRow:
    """A distance between two datasets: smaller means more similar, 0 on the diagonal."""

    dataset_a: str
    dataset_b: str
    value: float
    method: str = "unknown"


@dataclass
class CoverageRow:
    """How poorly `reference`'s data covers `dataset`'s: a directed divergence (0 = fully covered),
    e.g. KL(dataset || reference) of their profile Gaussians (similarity.profile_coverage). A model
    pretrained on `reference` is judged by it: a target outside its pretraining data's support is
    far from it whatever their symmetric similarity."""

    dataset: str
    reference: str
    value: float
    method: str = "unknown"


@dataclass
class ImportReport:
    skipped: list[tuple[str, int, str]] = field(default_factory=list)  # (source, row, reason)
    duplicates: int = 0
    unmatched: dict[str, list[str]] = field(default_factory=dict)  # source -> names
    renamed: dict[str, str] = field(default_factory=dict)  # name in a file -> canonical name
    degenerate: dict[str, str] = field(default_factory=dict)  # dataset -> why
    dropped: list[str] = field(default_factory=list)

    def skip(self, source: str, row: int, reason: str) -> None:
        self.skipped.append((source, row, reason))

    def merge(self, other: "ImportReport") -> None:
        self.skipped += other.skipped
        self.duplicates += other.duplicates
        for k, v in other.unmatched.items():
            self.unmatched.setdefault(k, []).extend(v)
        self.renamed.update(other.renamed)
        self.degenerate.update(other.degenerate)
        self.dropped += other.dropped

    def to_dict(self) -> dict[str, Any]:
        return {
            "skipped": [{"source": s, "row": r, "reason": why} for s, r, why in self.skipped],
            "duplicates": self.duplicates,
            "unmatched": self.unmatched,
            "renamed": self.renamed,
            "degenerate": self.degenerate,
            "dropped": self.dropped,
        }

    def summary(self) -> str:
        lines = [f"skipped rows: {len(self.skipped)}", f"duplicate pairs merged: {self.duplicates}"]
        for s, r, why in self.skipped[:20]:
            lines.append(f"  {s} row {r}: {why}")
        if len(self.skipped) > 20:
            lines.append(f"  … {len(self.skipped) - 20} more")
        for src, names in self.unmatched.items():
            if names:
                lines.append(f"unmatched in {src}: {', '.join(sorted(names)[:15])}" + (" …" if len(names) > 15 else ""))
        for old, new in self.renamed.items():
            lines.append(f"matched name {old!r} -> {new!r}")
        for d, why in self.degenerate.items():
            lines.append(f"degenerate dataset {d}: {why}")
        if self.dropped:
            lines.append(f"dropped datasets: {', '.join(self.dropped)}")
        return "\n".join(lines)


# ---------------------------------------------------------------- the zoo


@dataclass
class Zoo:
    """Everything the matching graph is built from, as plain rows."""

    models: dict[str, ModelRow] = field(default_factory=dict)
    datasets: dict[str, DatasetRow] = field(default_factory=dict)
    results: list[ResultRow] = field(default_factory=list)
    similarities: list[SimilarityRow] = field(default_factory=list)
    coverages: list[CoverageRow] = field(default_factory=list)

    def copy(self) -> "Zoo":
        return Zoo(dict(self.models), dict(self.datasets), list(self.results), list(self.similarities),
                   list(self.coverages))

    def without_results_of(self, datasets: Iterable[str]) -> "Zoo":
        hidden = set(datasets)
        z = self.copy()
        z.results = [r for r in self.results if r.dataset not in hidden]
        return z

    def add_result(self, row: ResultRow) -> None:
        self.results.append(row)
        self.models.setdefault(row.model, ModelRow(name=row.model))
        self.datasets.setdefault(row.dataset, DatasetRow(name=row.dataset))

    def quality_matrix(self) -> pd.DataFrame:
        """Raw quality, oriented so that higher is better, models x datasets (NaN = no result).

        Each dataset uses its most frequent metric; several results of one pair keep the best.
        """
        if not self.results:
            return pd.DataFrame(index=sorted(self.models), columns=sorted(self.datasets), dtype=float)
        df = pd.DataFrame(
            {
                "model": [r.model for r in self.results],
                "dataset": [r.dataset for r in self.results],
                "metric": [r.metric for r in self.results],
                "v": [r.value if r.higher_is_better else -r.value for r in self.results],
            }
        )
        main_metric = df.groupby("dataset")["metric"].agg(lambda s: s.value_counts().index[0])
        df = df[df["metric"].to_numpy() == main_metric.reindex(df["dataset"]).to_numpy()]
        q = df.groupby(["model", "dataset"])["v"].max().unstack("dataset")
        return q.reindex(index=sorted(set(self.models) | set(q.index)), columns=sorted(set(self.datasets) | set(q.columns)))

    def coverage_matrix(self) -> pd.DataFrame:
        """Directed coverage divergences, covered dataset (rows) x reference (columns); the mean
        of several rows of one cell; empty without coverage rows."""
        if not self.coverages:
            return pd.DataFrame(dtype=float)
        df = pd.DataFrame({"d": [c.dataset for c in self.coverages], "r": [c.reference for c in self.coverages],
                           "v": [c.value for c in self.coverages]})
        return df.groupby(["d", "r"])["v"].mean().unstack("r").astype(float)

    def similarity_methods(self) -> list[str]:
        return sorted({s.method for s in self.similarities})

    def distance_matrix(self, *, include_external: bool = False, method: str | None = None) -> pd.DataFrame:
        """Symmetric dataset x dataset distances; NaN where unknown; mean of several methods' rows,
        or only `method`'s.

        include_external adds names that only appear in similarity rows (e.g. pretraining sets).
        """
        names = set(self.datasets)
        if include_external:
            names |= {n for s in self.similarities for n in (s.dataset_a, s.dataset_b)}
        names = sorted(names)
        names_set = set(names)
        pos = {n: i for i, n in enumerate(names)}
        arr = np.full((len(names), len(names)), np.nan)
        acc: dict[tuple[str, str], list[float]] = {}
        for s in self.similarities:
            if method is not None and s.method != method:
                continue
            if s.dataset_a in names_set and s.dataset_b in names_set:
                acc.setdefault((s.dataset_a, s.dataset_b), []).append(s.value)
                acc.setdefault((s.dataset_b, s.dataset_a), []).append(s.value)
        for (a, b), v in acc.items():
            arr[pos[a], pos[b]] = float(np.mean(v))
        np.fill_diagonal(arr, 0.0)
        return pd.DataFrame(arr, index=names, columns=names)


# ---------------------------------------------------------------- name matching


def canonical(name: str) -> str:
    """Key used to match dataset names across files: lower case, alphanumerics only."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


class NameMatcher:
    def __init__(self, known: Iterable[str]):
        self.exact = set(known)
        self.by_key: dict[str, str] = {}
        for n in self.exact:
            self.by_key.setdefault(canonical(n), n)

    def match(self, name: str) -> str | None:
        if name in self.exact:
            return name
        return self.by_key.get(canonical(name))


# ---------------------------------------------------------------- parsing helpers

MODEL_COLS = ("model", "model_name", "model_id", "model_ref")
DATASET_COLS = ("finetuned_dataset", "dataset", "finetune_dataset", "target", "dataset_name", "target_dataset")
VALUE_COLS = ("value", "eval_accuracy", "score", "accuracy", "metric_value", "test_accuracy")
TRUE_WORDS = {"1", "true", "t", "yes", "y", "higher"}
FALSE_WORDS = {"0", "false", "f", "no", "n", "lower"}


def _is_index_col(name: str) -> bool:
    return name.strip() == "" or name.startswith("Unnamed:")


def _pick(header: list[str], candidates: Iterable[str]) -> str | None:
    lower = {h.strip().lower(): h for h in header}
    for c in candidates:
        if c in lower:
            return lower[c]
    return None


def _to_float(x: Any) -> float | None:
    if x is None:
        return None
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        v = float(x)
    else:
        s = str(x).strip()
        if s == "":
            return None
        try:
            v = float(s)
        except ValueError:
            return None
    return v if math.isfinite(v) else None


def _to_bool(x: Any) -> bool | None:
    if isinstance(x, bool):
        return x
    s = str(x).strip().lower()
    if s in TRUE_WORDS:
        return True
    if s in FALSE_WORDS:
        return False
    return None


def _read_text(source: str | Path | bytes | io.IOBase) -> str:
    """The text of a source; "utf-8-sig" drops the byte-order mark that spreadsheets write first."""
    if isinstance(source, bytes):
        return source.decode("utf-8-sig", errors="replace")
    if isinstance(source, io.IOBase):
        data = source.read()
        return data.decode("utf-8-sig", errors="replace") if isinstance(data, bytes) else data.lstrip("\ufeff")
    if isinstance(source, str) and ("\n" in source or source.lstrip("\ufeff ")[:1] in ("[", "{")):
        return source.lstrip("\ufeff")  # inline CSV/JSON text, not a path
    try:
        return Path(source).read_text(encoding="utf-8-sig", errors="replace")
    except OSError:
        return ""


def _delimiter(text: str) -> str:
    """"," unless the header line has none and has ";" or a tab (spreadsheets in locales whose
    decimal mark is a comma separate fields by semicolons)."""
    header = text.split("\n", 1)[0]
    if "," in header:
        return ","
    return max((";", "\t"), key=header.count) if (";" in header or "\t" in header) else ","


# a decimal comma, as a semicolon- or tab-separated file from such a locale writes numbers ("0,93")
_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d*,\d+(?:[eE][+-]?\d+)?\s*$")


def _decimal_point(cell: str) -> str:
    return cell.replace(",", ".") if _DECIMAL_COMMA.match(cell) else cell


def _too_long(**fields: str | None) -> str | None:
    """The reason a row cannot be stored, if one of its texts exceeds its MAX_LENGTH."""
    for key, value in fields.items():
        if value is not None and len(value) > MAX_LENGTH[key]:
            return f"{key} is {len(value)} characters long, at most {MAX_LENGTH[key]} are allowed"
    return None


def _csv_dicts(text: str) -> tuple[list[str], list[tuple[int, dict[str, str] | None, str]]]:
    """Rows as dicts keyed by header; a row whose width differs from the header, or that the csv
    module cannot read (e.g. a stray NUL or quote), is None with the reason."""
    delimiter = _delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return [], []
    except csv.Error as exc:
        return [], [(0, None, f"unreadable header: {exc}")]
    out: list[tuple[int, dict[str, str] | None, str]] = []
    i = 0
    while True:
        i += 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.append((i, None, f"unreadable row: {exc}"))
            continue
        if not row or all(c.strip() == "" for c in row):
            continue
        if len(row) != len(header):
            out.append((i, None, f"has {len(row)} fields, header has {len(header)}"))
            continue
        if delimiter != ",":  # only there is a comma in a number a decimal mark, not a separator
            row = [_decimal_point(cell) for cell in row]
        out.append((i, dict(zip(header, row)), ""))
    return header, out


# ---------------------------------------------------------------- results


def parse_results(
    source: str | Path | bytes | io.IOBase,
    *,
    fmt: str | None = None,
    default_metric: str = DEFAULT_METRIC,
    default_higher_is_better: bool = True,
    source_label: str = "records",
) -> tuple[list[ResultRow], ImportReport]:
    """Parse fine-tuning results from CSV or JSON (a list of objects or {"records": [...]}).

    Duplicate (model, dataset, metric) rows keep the best value. Never raises on bad rows.
    """
    report = ImportReport()
    text = _read_text(source)
    if fmt is None:
        fmt = "json" if text.lstrip()[:1] in "[{" else "csv"
    items: list[tuple[int, dict[str, Any] | None, str]]
    if fmt == "json":
        try:
            # NaN and Infinity stay the words they are: a value is reported as not finite, and no
            # non-finite float reaches a json column (PostgreSQL refuses them)
            data = json.loads(text, parse_constant=str)
        except json.JSONDecodeError as e:
            report.skip(source_label, 0, f"not valid JSON: {e}")
            return [], report
        if isinstance(data, dict):
            data = data.get("records", data.get("results", []))
        if not isinstance(data, list):
            report.skip(source_label, 0, "JSON is not a list of records")
            return [], report
        items = [(i, d if isinstance(d, dict) else None, "not an object") for i, d in enumerate(data, start=1)]
        header = sorted({k for _, d, _ in items if d for k in d})
    else:
        header, items = _csv_dicts(text)
    mcol, dcol = _pick(header, MODEL_COLS), _pick(header, DATASET_COLS)
    metric_col = _pick(header, ("metric", "metric_name"))
    hib_col = _pick(header, ("higher_is_better", "higher_better"))
    vcol = _pick(header, ("value", "metric_value")) if metric_col else None
    if vcol is None:
        vcol = default_metric if default_metric in header else _pick(header, VALUE_COLS)
    if mcol is None or dcol is None or vcol is None:
        report.skip(source_label, 0, f"no model/dataset/value columns in header {header}")
        return [], report
    skip_cols = {mcol, dcol, vcol, metric_col, hib_col}
    best: dict[tuple[str, str, str], ResultRow] = {}
    for row_no, rec, why in items:
        if rec is None:
            report.skip(source_label, row_no, why)
            continue
        model, dataset = str(rec.get(mcol) or "").strip(), str(rec.get(dcol) or "").strip()
        if not model or not dataset:
            report.skip(source_label, row_no, "missing model or dataset")
            continue
        value = _to_float(rec.get(vcol))
        if value is None:
            report.skip(source_label, row_no, f"{vcol} is not a finite number: {rec.get(vcol)!r}")
            continue
        metric = str(rec.get(metric_col) or "").strip() if metric_col else ""
        metric = metric or (vcol if not metric_col else default_metric)
        if why := _too_long(name=model, metric=metric) or _too_long(name=dataset):
            report.skip(source_label, row_no, why)
            continue
        hib = _to_bool(rec.get(hib_col)) if hib_col and str(rec.get(hib_col) or "").strip() else None
        if hib_col and str(rec.get(hib_col) or "").strip() and hib is None:
            report.skip(source_label, row_no, f"higher_is_better is not a boolean: {rec.get(hib_col)!r}")
            continue
        config = {k: v for k, v in rec.items() if k not in skip_cols and not _is_index_col(str(k)) and v not in ("", None)}
        r = ResultRow(model, dataset, metric, value, default_higher_is_better if hib is None else hib, config)
        key = (model, dataset, metric)
        if key in best:
            report.duplicates += 1
            old = best[key]
            better = r.value > old.value if r.higher_is_better else r.value < old.value
            if better:
                best[key] = r
        else:
            best[key] = r
    return list(best.values()), report


# ---------------------------------------------------------------- models and datasets


def _first_list_item(s: Any) -> str | None:
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return None
    s = str(s).strip()
    m = re.match(r"^\[\s*['\"]?([^'\",\]]+)", s)
    return m.group(1) if m else (s or None)


def parse_models(source: str | Path | bytes | io.IOBase, source_label: str = "models") -> tuple[list[ModelRow], ImportReport]:
    """Model metadata in the TransferGraph `model_config_dataset.csv` layout (or a subset of it)."""
    report = ImportReport()
    header, items = _csv_dicts(_read_text(source))
    mcol = _pick(header, MODEL_COLS)
    if mcol is None:
        report.skip(source_label, 0, f"no model column in header {header}")
        return [], report
    rows: dict[str, ModelRow] = {}
    for row_no, rec, why in items:
        if rec is None:
            report.skip(source_label, row_no, why)
            continue
        name = str(rec.get(mcol) or "").strip()
        if not name:
            report.skip(source_label, row_no, "missing model name")
            continue
        lower = {k.strip().lower(): v for k, v in rec.items() if not _is_index_col(k)}
        numeric = {}
        for k, v in lower.items():
            f = _to_float(v)
            if f is not None:
                numeric[k] = f
        row = ModelRow(
            name=name,
            ref=lower.get("ref") or name,
            family=(lower.get("model_type") or lower.get("family") or None),
            architecture=_first_list_item(lower.get("architectures") or lower.get("architecture")),
            num_parameters=numeric.get("number_of_parameters", numeric.get("num_parameters")),
            resolution=numeric.get("input_shape", numeric.get("resolution")),
            pretraining_data=(lower.get("dataset") or lower.get("pretraining_data") or None),
            metadata={k: v for k, v in lower.items() if v not in ("", None)},
            features=numeric,
        )
        if why := _too_long(name=row.name, ref=row.ref, family=row.family, architecture=row.architecture,
                            pretraining_data=row.pretraining_data):
            report.skip(source_label, row_no, why)
            continue
        if name in rows:
            report.duplicates += 1
        rows[name] = row
    return list(rows.values()), report


def parse_datasets(source: str | Path | bytes | io.IOBase, source_label: str = "datasets") -> tuple[list[DatasetRow], ImportReport]:
    report = ImportReport()
    header, items = _csv_dicts(_read_text(source))
    dcol = _pick(header, ("finetune_dataset",) + DATASET_COLS + ("name",))
    if dcol is None:
        report.skip(source_label, 0, f"no dataset column in header {header}")
        return [], report
    rows: dict[str, DatasetRow] = {}
    for row_no, rec, why in items:
        if rec is None:
            report.skip(source_label, row_no, why)
            continue
        name = str(rec.get(dcol) or "").strip()
        if not name:
            report.skip(source_label, row_no, "missing dataset name")
            continue
        if why := _too_long(name=name):
            report.skip(source_label, row_no, why)
            continue
        meta = {k.strip().lower(): v for k, v in rec.items() if k != dcol and not _is_index_col(k) and v != ""}
        numeric = {k: f for k, v in meta.items() if (f := _to_float(v)) is not None}
        rows[name] = DatasetRow(name=name, size=numeric.get("size"), metadata={**meta, **numeric})
    return list(rows.values()), report


def parse_distance_matrix(
    source: str | Path | bytes | io.IOBase, method: str | None = None, source_label: str = "similarity",
    directed: bool = False,
) -> tuple[list[SimilarityRow], ImportReport]:
    """A square CSV matrix of distances (first column = row names) into symmetric rows (one per
    pair, from the upper triangle), or with `directed` one row per off-diagonal cell (row -> column)."""
    report = ImportReport()
    label = method or (Path(source).stem if isinstance(source, (str, Path)) else source_label)
    if why := _too_long(method=label):
        report.skip(source_label, 0, why)
        return [], report
    text = _read_text(source)
    try:
        sep = _delimiter(text)
        df = pd.read_csv(io.StringIO(text), index_col=0, sep=sep, decimal="." if sep == "," else ",")
    except Exception as e:  # a corrupt matrix is reported, not raised
        report.skip(source_label, 0, f"unreadable matrix: {e}")
        return [], report
    out = []
    cols = [str(c) for c in df.columns]
    for i, (a, row) in enumerate(df.iterrows(), start=1):
        a = str(a)
        for b, v in zip(cols, row.to_numpy()):
            if not (a < b or (directed and a != b)):
                continue  # a symmetric matrix is read from its upper triangle
            f = _to_float(v)
            if f is None:
                if isinstance(v, str) and v.strip():  # an empty cell is a pair not measured
                    report.skip(source_label, i, f"distance {a!r}-{b!r} is not a number: {v!r}")
                continue
            if f < 0:
                report.skip(source_label, i, f"negative distance {a!r}-{b!r}")
                continue
            out.append(SimilarityRow(a, b, f, label))
    return out, report


def parse_coverage_matrix(
    source: str | Path | bytes | io.IOBase, method: str | None = None, source_label: str = "coverage"
) -> tuple[list[CoverageRow], ImportReport]:
    """A CSV matrix of directed coverage divergences: row = the covered dataset, column = the
    reference (e.g. a pretraining set). Negative or unreadable cells are reported and skipped."""
    rows, report = parse_distance_matrix(source, method=method, source_label=source_label, directed=True)
    return [CoverageRow(r.dataset_a, r.dataset_b, r.value, r.method) for r in rows], report


def datasets_comparing_models(results: Iterable[ResultRow]) -> list[str]:
    """The datasets with results for at least two models: a dataset teaches a ranker only by how
    the models compare on it, and transfer needs two such (MIN_COMPARING_DATASETS)."""
    models: dict[str, set[str]] = {}
    for r in results:
        models.setdefault(r.dataset, set()).add(r.model)
    return sorted(d for d, ms in models.items() if len(ms) >= 2)


MIN_COMPARING_DATASETS = 2


# ---------------------------------------------------------------- whole directory


def flag_degenerate(q: pd.DataFrame, num_classes: dict[str, float] | None = None) -> dict[str, str]:
    """Datasets whose results carry no ranking signal: near-constant or mostly near chance."""
    out = {}
    for d in q.columns:
        v = q[d].dropna().to_numpy()
        if len(v) < 2:
            continue
        spread = np.nanpercentile(v, 90) - np.nanpercentile(v, 10)
        scale = max(abs(np.nanmedian(v)), 1e-12)
        if spread / scale < 1e-3:
            out[d] = f"near-constant results (10-90% spread {spread:.3g})"
            continue
        best = np.nanmax(v)
        if best > 0 and np.nanmin(v) >= 0 and np.median(v) < 0.1 * best:
            out[d] = f"most runs failed: median {np.median(v):.3g} is under a tenth of the best {best:.3g}"
            continue
        k = (num_classes or {}).get(d)
        if k and k > 1 and 0 <= v.min() and v.max() <= 1:
            chance = 1.0 / k
            frac = float(np.mean(v < 2 * chance))
            if frac > 0.5:
                out[d] = f"{frac:.0%} of results below twice chance ({chance:.3g}); median {np.median(v):.3g}"
    return out


def load_benchmark_dir(
    data_dir: str | Path,
    *,
    similarity: str | Path | Iterable[str | Path] | None = None,
    drop_degenerate: bool = False,
) -> tuple[Zoo, ImportReport]:
    """Load a TransferGraph-format directory into a `Zoo`, matching names across files."""
    data_dir = Path(data_dir)
    report = ImportReport()
    results, rep = parse_results(data_dir / "records.csv", source_label="records.csv")
    report.merge(rep)
    zoo = Zoo()
    for r in results:
        zoo.add_result(r)
    ds_matcher = NameMatcher(zoo.datasets)
    model_matcher = NameMatcher(zoo.models)

    mpath = data_dir / "model_config_dataset.csv"
    if mpath.exists():
        models, rep = parse_models(mpath, "model_config_dataset.csv")
        report.merge(rep)
        unmatched = []
        for m in models:
            name = model_matcher.match(m.name)
            if name is None:
                unmatched.append(m.name)  # metadata of a model with no result: still a node
                name = m.name
            elif name != m.name:
                report.renamed[m.name] = name
            m.name = name
            zoo.models[name] = m
        report.unmatched["model_config_dataset.csv (no results)"] = unmatched
        report.unmatched["records.csv models without metadata"] = sorted(
            n for n in zoo.models if not zoo.models[n].features
        )

    dpath = data_dir / "target_dataset_features.csv"
    if dpath.exists():
        datasets, rep = parse_datasets(dpath, "target_dataset_features.csv")
        report.merge(rep)
        unmatched = []
        for d in datasets:
            name = ds_matcher.match(d.name)
            if name is None:
                unmatched.append(d.name)
                name = d.name
            elif name != d.name:
                report.renamed[d.name] = name
            d.name = name
            zoo.datasets[name] = d
        report.unmatched["target_dataset_features.csv (no results)"] = unmatched
        have = {d.name for d in datasets}
        report.unmatched["datasets without metadata"] = sorted(set(zoo.datasets) - have)

    if similarity is None:
        sim_paths = sorted(data_dir.glob("corr_domain_similarity_*.csv"))
    elif isinstance(similarity, (str, Path)):
        sim_paths = [Path(p) for p in str(similarity).split(",")] if "," in str(similarity) else [Path(similarity)]
    else:
        sim_paths = [Path(p) for p in similarity]
    matcher = NameMatcher(zoo.datasets)
    for p in sim_paths:
        rows, rep = parse_distance_matrix(p, method=p.stem.replace("corr_domain_similarity_", ""), source_label=p.name)
        report.merge(rep)
        seen_unmatched: set[str] = set()
        for s in rows:
            a, b = matcher.match(s.dataset_a), matcher.match(s.dataset_b)
            for raw, got in ((s.dataset_a, a), (s.dataset_b, b)):
                if got is None:
                    seen_unmatched.add(raw)
                elif got != raw:
                    report.renamed[raw] = got
            if a is not None and b is not None and a != b:
                zoo.similarities.append(SimilarityRow(a, b, s.value, s.method))
        # names that match no dataset (label lists, pretraining sets) are kept as extra
        # similarity rows: a model's pretraining dataset may be one of them.
        for s in rows:
            if matcher.match(s.dataset_a) is None or matcher.match(s.dataset_b) is None:
                zoo.similarities.append(s)
        report.unmatched[p.name] = sorted(seen_unmatched)
        have = {matcher.match(n) for s in rows for n in (s.dataset_a, s.dataset_b)}
        report.unmatched[f"datasets missing from {p.name}"] = sorted(set(zoo.datasets) - have)

    # directed coverage divergences (optional): row = covered dataset, column = reference
    for p in sorted(data_dir.glob("domain_coverage_*.csv")):
        rows, rep = parse_coverage_matrix(p, method=p.stem.replace("domain_coverage_", ""), source_label=p.name)
        report.merge(rep)
        unmatched_cov: set[str] = set()
        for c in rows:
            got = matcher.match(c.dataset)
            if got is None:
                unmatched_cov.add(c.dataset)  # e.g. a pretraining set: kept under its own name
            elif got != c.dataset:
                report.renamed[c.dataset] = got
            ref = matcher.match(c.reference) or c.reference
            zoo.coverages.append(CoverageRow(got or c.dataset, ref, c.value, c.method))
        report.unmatched[p.name] = sorted(unmatched_cov)

    nc = {n: d.metadata.get("number_of_classes") for n, d in zoo.datasets.items()}
    report.degenerate = flag_degenerate(zoo.quality_matrix(), {k: v for k, v in nc.items() if v})
    if drop_degenerate and report.degenerate:
        bad = set(report.degenerate)
        zoo.results = [r for r in zoo.results if r.dataset not in bad]
        for b in bad:
            zoo.datasets.pop(b, None)
        report.dropped = sorted(bad)
    return zoo, report


def load_published(data_dir: str | Path) -> dict[str, dict[str, dict[str, float]]]:
    """Published per-target numbers beside a benchmark directory (TransferGraph's
    `published/<metric>_correlation.csv`: one row per method, one column per target, and an
    `average` column that is ignored): {metric: {method: {target: value}}}. Missing: {}."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for path in sorted((Path(data_dir) / "published").glob("*_correlation.csv")):
        try:
            df = pd.read_csv(path, index_col=0)
        except Exception:  # an unreadable file is no comparison, not a failed benchmark
            continue
        metric = path.name.removesuffix("_correlation.csv")
        out[metric] = {str(method): {str(t): f for t, v in row.items()
                                     if str(t) != "average" and (f := _to_float(v)) is not None}
                       for method, row in df.iterrows()}
    return out
