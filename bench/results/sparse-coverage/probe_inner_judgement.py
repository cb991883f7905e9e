"""The inner judgement of a first pick against the target's, on sparse zoo records.

usage: python probe_inner_judgement.py KEEP SEED  (from the repo root; bench/data/t2i-zoo)
For each target: rel@1 among each training dataset's observed models (inner) and among all models
at the target, for the pretraining match alone (P), best-on-average (E) and z(E) + k z(P)."""
import sys, numpy as np
from services.selection.bench import load_benchmark_dir
from services.selection.mc.evaluate import _Harness
from services.selection.mc.predictor import pretraining_distance, pretrain_match, relative_quality, _z
zoo, rep = load_benchmark_dir('bench/data/t2i-zoo')
keep = float(sys.argv[1]); seed = int(sys.argv[2])
h = _Harness(zoo, {}, tuple(sorted(rep.degenerate)), keep, seed)
targets = sorted({r.dataset for r in zoo.results})
def evalset(tables, d, others, truth_full=None):
    q = tables.quality[d] if truth_full is None else truth_full
    ok = np.isfinite(q.to_numpy(dtype=float))
    t = q.to_numpy(dtype=float)[ok]
    P = pretrain_match(pretraining_distance(tables, d))[ok]
    E = tables.norm[others].mean(axis=1).to_numpy()[ok]
    P = np.nan_to_num(P, nan=np.nanmin(P)); E = np.nan_to_num(E, nan=np.nanmean(E))
    out = {}
    for name, s in {"P": P, "E": E, "E+1P": _z(E)+_z(P), "E+4P": _z(E)+4*_z(P)}.items():
        out[name] = float(relative_quality(t[np.argmax(s)], t))
    return out, ok.sum()
inner_all = []; tgt_all = []
for tgt in targets[:int(sys.argv[3]) if len(sys.argv)>3 else 99]:
    tables, train, truth = h.tables(tgt)
    inner = []
    for d in train:
        o, n = evalset(tables, d, [x for x in train if x != d])
        inner.append(o)
    import pandas as pd
    tq = h.truth_tables.quality[tgt].reindex(tables.models)
    to, n = evalset(tables, tgt, train, tq)
    im = pd.DataFrame(inner).mean()
    inner_all.append(im); tgt_all.append(to)
    print(f"{tgt:32s} inner " + " ".join(f"{k} {v:.3f}" for k, v in im.items()) + " | target " + " ".join(f"{k} {v:.3f}" for k, v in to.items()))
print("MEAN inner", pd.DataFrame(inner_all).mean().round(3).to_dict(), "target", pd.DataFrame(tgt_all).mean().round(3).to_dict())
