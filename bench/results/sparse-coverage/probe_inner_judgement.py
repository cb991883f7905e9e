"""The inner judgement of a first pick against the target's, on the zoo's records.

usage (from the repo root, on bench/data/t2i-zoo): python bench/results/sparse-coverage/probe_inner_judgement.py KEEP SEED

For each target, leave-one-dataset-out with the bench's harness (KEEP: the share of the other
datasets' results kept, as `--keep-fraction`; SEED: `--keep-seed`): the rel@1 of four orderings
judged as the inner CV judges them (per training dataset, the first pick among the models with a
result there, the ordering computed without that dataset) and at the target (the first pick among
all models with a result, against the hidden truth). Orderings: the pretraining match alone (P),
best-on-average (E), z(E) + z(P) and z(E) + 4 z(P). Prints each target and the means over targets.
"""

import sys

import numpy as np
import pandas as pd

from services.selection.bench import load_benchmark_dir
from services.selection.mc.evaluate import _Harness
from services.selection.mc.predictor import _z, pretrain_match, pretraining_distance, relative_quality


def first_pick_rel1(tables, dataset: str, context: list[str], truth: pd.Series) -> dict[str, float]:
    """rel@1 of each ordering's first pick among the models with a value in `truth`."""
    values = truth.to_numpy(dtype=float)
    ok = np.isfinite(values)
    p = pretrain_match(pretraining_distance(tables, dataset))[ok]
    e = tables.norm[context].mean(axis=1).to_numpy()[ok]
    p, e = np.nan_to_num(p, nan=np.nanmin(p)), np.nan_to_num(e, nan=np.nanmean(e))
    orderings = {"P": p, "E": e, "E+P": _z(e) + _z(p), "E+4P": _z(e) + 4 * _z(p)}
    return {name: float(relative_quality(values[ok][np.argmax(s)], values[ok])) for name, s in orderings.items()}


def main(keep: float, seed: int) -> None:
    zoo, report = load_benchmark_dir("bench/data/t2i-zoo")
    harness = _Harness(zoo, {}, tuple(sorted(report.degenerate)), keep, seed)
    inner_means, at_targets = [], []
    for target in sorted({r.dataset for r in zoo.results}):
        tables, train, _ = harness.tables(target)
        inner = pd.DataFrame([first_pick_rel1(tables, d, [c for c in train if c != d], tables.quality[d])
                              for d in train]).mean()
        at_target = first_pick_rel1(tables, target, train, harness.truth_tables.quality[target].reindex(tables.models))
        inner_means.append(inner)
        at_targets.append(at_target)
        print(f"{target:32s} inner " + " ".join(f"{k} {v:.3f}" for k, v in inner.items())
              + " | target " + " ".join(f"{k} {v:.3f}" for k, v in at_target.items()))
    print("MEAN inner", pd.DataFrame(inner_means).mean().round(3).to_dict(),
          "target", pd.DataFrame(at_targets).mean().round(3).to_dict())


if __name__ == "__main__":
    main(float(sys.argv[1]), int(sys.argv[2]))
