"""LightGBM forests compiled to machine code for the rank path.

LightGBM's own predict walks a tree at about 27 ns per row here: 4 ms for 1,000 candidates and
150 trees, three members to an ensemble, the largest single cost of a rank. lleaves compiles a
model's trees with LLVM into code that gives the same numbers about nine times faster. Compiling
takes seconds a model, so it is done once per (model, machine) and the object code cached on disk;
a model lleaves cannot compile, or whose compiled predictions differ from LightGBM's on a probe,
stays with LightGBM. Nothing here is needed for correctness: without lleaves every prediction is
LightGBM's.

lleaves 1.3.0, the latest release, still calls llvmlite's legacy pass manager, which llvmlite
0.45 removed (fixed upstream in siboehm/lleaves#97, not yet released): hence llvmlite < 0.45.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# LLVM's per-process state is set up by the first compile; one compile at a time keeps it simple
_compile_lock = threading.Lock()
ZERO_THRESHOLD = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (1e-35f)


class CompiledForest:
    """A compiled LightGBM model: predict(X) gives booster.predict(X) (to rounding) for the same X."""

    def __init__(self, model, cache_file: Path | None):
        self._model = model  # lleaves.Model: holds the execution engine, so the code stays mapped
        self.cache_file = cache_file

    def predict(self, X: np.ndarray) -> np.ndarray:
        # LightGBM reads a float32 matrix as float32 values widened to double; give lleaves the same
        # doubles, so every split compares exactly what LightGBM compares
        X = np.array(np.asarray(X, dtype=np.float32), dtype=np.float64, order="C")
        # LightGBM reads a dense row as sparse: |x| <= kZeroThreshold is dropped, i.e. zero; lleaves
        # takes x as it is
        X[np.abs(X) <= ZERO_THRESHOLD] = 0.0
        return self._model.predict(X, n_jobs=1)


@lru_cache(maxsize=1)  # fixed for the process
def _machine_and_versions() -> str:
    """What the object code depends on besides the model: the host CPU and the compiler versions."""
    from importlib.metadata import version

    import llvmlite.binding as llvm

    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:  # LLVM raises where it cannot detect them
        features = ""
    return "\x1f".join([version("lleaves"), version("llvmlite"), llvm.get_process_triple(), llvm.get_host_cpu_name(),
                        features])


def cache_key(model_text: str) -> str:
    return hashlib.sha256(f"{model_text}\x1e{_machine_and_versions()}".encode()).hexdigest()[:32]


def _splits(booster) -> dict[int, list]:
    """Feature index -> the thresholds its splits compare against (a number, or a categorical
    split's '1||3'), from the model's own dump."""
    out: dict[int, list] = {}
    stack = [tree["tree_structure"] for tree in booster.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            out.setdefault(node["split_feature"], []).append(node["threshold"])
            stack += [node["left_child"], node["right_child"]]
    return out


def probe_rows(booster, *, seed: int = 0) -> np.ndarray:
    """Rows that exercise both sides of every split: per feature, each threshold and its float32
    neighbours, the categories of categorical splits and theirs, plus zeros and missing values, in
    random combinations."""
    splits = _splits(booster)
    rng = np.random.default_rng(seed)
    rows = 512
    X = np.empty((rows, booster.num_feature()), dtype=np.float32)
    # LightGBM writes thresholds beyond float32's range (up to DBL_MAX); their float32 edge probes them
    largest = float(np.finfo(np.float32).max)
    for j in range(X.shape[1]):
        numeric = np.float64([t for t in splits.get(j, []) if not isinstance(t, str)])
        numeric = np.clip(numeric, -largest, largest).astype(np.float32)
        with np.errstate(over="ignore"):  # the edge's neighbour is infinity: a probe too
            around = np.concatenate([numeric, np.nextafter(numeric, np.float32(np.inf)),
                                     np.nextafter(numeric, np.float32(-np.inf))])
        cats = {int(c) for t in splits.get(j, []) if isinstance(t, str) for c in t.split("||") if c.isdigit()}
        cats = np.float32(sorted({c + d for c in cats for d in (-1, 0, 1) if c + d >= 0}))
        X[:, j] = rng.choice(np.concatenate([around, cats, np.float32([0.0, np.nan, -1.0, 1.0])]), size=rows)
    return X


def available() -> bool:
    """Whether lleaves is installed (it is not where llvmlite 0.44 has no wheels)."""
    import importlib.util

    return importlib.util.find_spec("lleaves") is not None


def compile_forest(booster, *, cache_dir: Path | None = None, cached_only: bool = False) -> CompiledForest | None:
    """`booster` compiled (or loaded from `cache_dir`, keyed by model, machine and versions), or None:
    lleaves missing, the model not compiled yet when `cached_only`, a failed compile, or predictions
    that differ from LightGBM's on probe_rows."""
    try:
        import lleaves
    except ImportError:
        return None
    text = booster.model_to_string()
    try:
        key = cache_key(text)
    except Exception as exc:  # llvmlite importable but unusable
        log.warning("compiled forests unavailable: %s", exc)
        return None
    cache_file = Path(cache_dir) / f"{key}.o" if cache_dir is not None else None
    cached = cache_file is not None and cache_file.exists()
    if cached_only and not cached:
        return None
    with tempfile.TemporaryDirectory(prefix="atelier-forest-") as tmp:
        model_file = Path(tmp) / "model.txt"
        model_file.write_text(text)
        fresh = Path(tmp) / "forest.o"  # lleaves writes its cache in place: moved into cache_dir whole
        try:
            with _compile_lock:
                model = lleaves.Model(model_file=str(model_file))
                model.compile(cache=str(cache_file if cached else fresh) if cache_file is not None else None)
        except Exception as exc:  # an objective or layout lleaves does not know: LightGBM stays
            log.warning("LightGBM model not compiled (%s: %s); LightGBM predicts", type(exc).__name__, exc)
            return None
        forest = CompiledForest(model, cache_file)
        probe = probe_rows(booster)
        expected = booster.predict(probe, num_threads=1)
        if not np.allclose(forest.predict(probe), expected, rtol=1e-9, atol=1e-9, equal_nan=True):
            log.warning("compiled LightGBM model differs from LightGBM on the probe; LightGBM predicts")
            return None
        if cache_file is not None and not cached and fresh.exists():
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            staged = cache_file.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            staged.write_bytes(fresh.read_bytes())
            os.replace(staged, cache_file)  # readers see the whole file or none
    return forest
