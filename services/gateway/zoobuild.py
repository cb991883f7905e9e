"""`atelier zoo build`: measure the T2I zoo through the platform; write it in the benchmark format.

Every (model, target) pair is a `POST /v1/training/jobs` job run by Celery workers (memlean, the fixed
`PairBudget`); the job records its held-out denoising loss with the selection service (a graph edge)
and reports FID/KID beside it. The driver only registers, submits, polls and writes files:

1. pretrain the 10 zoo models that are not in OUT/models yet (local subprocesses, one per worker), each
   in rounds until its samples are recognisable; the models are kept beside the records they measured;
2. generate the 32 targets and one sample of each model's source domain; register all of them
   and the models with the selection service; profile every dataset (jobs on the cpu queue);
3. submit every pair not in the journal (Idempotency-Key = pair + seed + budget + model recipe, so
   a restart finds its jobs again) and append each finished pair to `runs.jsonl`;
4. write `records.csv` (metric + higher_is_better columns), `model_config_dataset.csv`,
   `target_dataset_features.csv`, `corr_domain_similarity_atelier_profile[_image|_caption].csv`,
   `domain_coverage_atelier_profile.csv` (directed coverage divergences of the profiles) and
   `summary.json` (best-model distribution, repeat noise vs spread between models, wall time).

A sample of targets is fine-tuned with 3 seeds (seeds > 0 are not recorded as edges: they only
measure repeat noise). Within a seed every model sees the same data order, noises and timesteps,
and every run on a dataset is evaluated on the same held-out images, noises and timesteps.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from services.gateway.demo import wait_for_jobs

DEFAULT_OUT = Path("bench/data/t2i-zoo")
METRIC = "val_loss"
NOISE_SEEDS = (0, 1, 2)
NOISE_TARGETS = ("target-shapes-warm", "target-digits-gray", "target-waves-cool")  # near, near, far
SOURCE_SAMPLE = 512  # images of each model's source domain registered (and profiled) as a dataset
FINISHED = ("succeeded", "failed", "cancelled")
# The pretraining recipe of every row journalled before rows named theirs (`model_recipe`).
LEGACY_PRETRAINING = {"steps": 1000, "batch_size": 32, "lr": 1e-3, "max_rounds": 1}
Say = Callable[[str], None]


def zoo_cache() -> Path:
    return Path(os.environ.get("ATELIER_CACHE", "~/.cache/atelier")).expanduser() / "t2i-zoo"


def source_dataset_name(domain: str) -> str:
    return f"source-{domain}"


@dataclass(frozen=True)
class PairRun:
    model: str
    dataset: str
    seed: int

    @property
    def recorded(self) -> bool:
        """Only seed 0 becomes a graph edge; other seeds measure repeat noise."""
        return self.seed == 0

    def key(self, budget_hash: str, recipe_hash: str) -> str:
        return f"zoo:{self.model}:{self.dataset}:s{self.seed}:{budget_hash}:{recipe_hash}"


@dataclass
class Plan:
    models: list[Any]  # ZooModel
    targets: list[Any]  # ZooDataset
    budget: Any  # PairBudget
    noise_targets: tuple[str, ...] = NOISE_TARGETS
    noise_seeds: tuple[int, ...] = NOISE_SEEDS
    pretrain_steps: int = 4000  # make_plan sets zoo.PRETRAIN_STEPS
    pretrain_batch_size: int = 32
    pretrain_lr: float = 1e-3
    pretrain_max_rounds: int = 2  # make_plan sets zoo.PRETRAIN_MAX_ROUNDS
    num_samples: int = 16  # samples per run for FID/KID beside the loss
    sample_steps: int = 10
    runs: list[PairRun] = field(default_factory=list)

    @property
    def budget_hash(self) -> str:
        blob = json.dumps({"budget": self.budget.to_dict(), "samples": [self.num_samples, self.sample_steps]},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    @property
    def pretraining(self) -> dict[str, Any]:
        return {"steps": self.pretrain_steps, "batch_size": self.pretrain_batch_size, "lr": self.pretrain_lr,
                "max_rounds": self.pretrain_max_rounds}

    def model_recipe(self, name: str) -> dict[str, Any]:
        """What a measured pair's model is: its spec (architecture, source, seed) and pretraining."""
        spec = next(m for m in self.models if m.name == name)
        return {"spec": spec.to_dict(), "pretraining": self.pretraining}

    def recipe_hash(self, name: str) -> str:
        return hashlib.sha256(json.dumps(self.model_recipe(name), sort_keys=True).encode()).hexdigest()[:10]

    def measured_here(self, row: dict) -> bool:
        """Whether a journal row measured this plan's model under this plan's budget: a row of another
        pretraining recipe, spec or budget is not a finished pair of this plan (it stays in the journal).
        Rows from before rows named their recipe count only under the recipe they all used."""
        if "budget" in row and row["budget"] != self.budget.to_dict():
            return False
        if "model_recipe" in row:
            return row["model_recipe"] == self.recipe_hash(row["model"])
        return self.pretraining == LEGACY_PRETRAINING

    def pair_runs(self) -> list[PairRun]:
        """Noise targets first (all seeds), so the repeat noise is known early; then the rest at seed 0."""
        names = [t.name for t in self.targets]
        noisy = [n for n in self.noise_targets if n in names]
        order = noisy + [n for n in names if n not in noisy]
        runs = []
        for dataset in order:
            for seed in (self.noise_seeds if dataset in noisy else (0,)):
                runs.extend(PairRun(m.name, dataset, seed) for m in self.models)
        return runs

    def training_body(self, run: PairRun) -> dict[str, Any]:
        b = self.budget
        return {"model": run.model, "dataset": run.dataset, "mode": b.mode, "steps": b.steps,
                "batch_size": b.batch_size, "lr": b.lr, "seed": run.seed, "eval_seed": b.eval_seed,
                "eval_size": b.eval_size, "eval_repeats": b.eval_repeats, "max_images": b.n_images,
                "resolution": b.resolution, "num_samples": self.num_samples, "sample_steps": self.sample_steps,
                "attention_precision": b.attention_precision, "record_result": run.recorded}


def make_plan(*, models: str = "", targets: str = "", pretrain_steps: int | None = None,
              pretrain_rounds: int | None = None, pair_steps: int | None = None, mode: str = "memlean") -> Plan:
    """The plan of a build (pretraining steps and rounds default to zoo.PRETRAIN_STEPS and
    zoo.PRETRAIN_MAX_ROUNDS, pair steps to the recommended budget's; the pretraining batch size and
    learning rate are the fields' defaults)."""
    from services.common.diffusion.zoo import (
        PRETRAIN_MAX_ROUNDS,
        PRETRAIN_STEPS,
        TARGET_DATASETS,
        ZOO_MODELS,
        dataset_spec,
        model_spec,
        recommended_budget,
    )

    pretrain_steps = PRETRAIN_STEPS if pretrain_steps is None else pretrain_steps
    pick_m = [model_spec(n) for n in models.split(",") if n] or list(ZOO_MODELS)
    pick_t = [dataset_spec(n) for n in targets.split(",") if n] or list(TARGET_DATASETS)
    budget = replace(recommended_budget(), mode=mode)
    if pair_steps is not None:
        budget = replace(budget, steps=pair_steps)
    plan = Plan(pick_m, pick_t, budget, pretrain_steps=pretrain_steps,
                pretrain_max_rounds=PRETRAIN_MAX_ROUNDS if pretrain_rounds is None else pretrain_rounds)
    plan.runs = plan.pair_runs()
    return plan


# ----------------------------------------------------------------------------- local preparation
def models_to_pretrain(plan: Plan, models_dir: Path, journal: Path | None = None) -> list:
    """Models missing from the cache that still have pairs to run.

    A model whose every pair is in the journal is not pretrained again: a resumed build on a machine
    without the cache needs only the models that still have work.
    """
    done = read_journal(journal, plan) if journal is not None else {}
    needed = {r.model for r in plan.runs if (r.model, r.dataset, r.seed) not in done}
    return [m for m in plan.models if m.name in needed and not cached_as_planned(plan, models_dir, m.name)]


def cached_as_planned(plan: Plan, models_dir: Path, name: str) -> bool:
    """A cached model counts only if it was built from this spec with this pretraining recipe: the same
    steps, batch size and lr, and rounds that this plan's max_rounds would also have stopped after (a model
    recognisable after round 1 is the same model under any max_rounds)."""
    from services.common.diffusion.zoo import pretraining_settles

    try:
        saved = json.loads((models_dir / name / "zoo.json").read_text())
        pre = saved["pretraining"]
        recipe = {k: v for k, v in plan.pretraining.items() if k != "max_rounds"}
        return (saved["spec"] == plan.model_recipe(name)["spec"] and {k: pre[k] for k in recipe} == recipe
                and pretraining_settles(pre, max_rounds=plan.pretrain_max_rounds))
    except (OSError, ValueError, KeyError, TypeError):
        return False


def ensure_pretrained(plan: Plan, models_dir: Path, *, workers: int, say: Say, journal: Path | None = None) -> None:
    """Pretrain what models_to_pretrain names, `workers` single-thread processes at a time."""
    missing = models_to_pretrain(plan, models_dir, journal)
    if not missing:
        return
    say(f"pretraining {len(missing)} zoo model(s), rounds of {plan.pretrain_steps} steps until recognisable "
        f"(at most {plan.pretrain_max_rounds}), {workers} at a time")
    groups = [missing[i::workers] for i in range(workers) if missing[i::workers]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "services.common.diffusion.zoo", "--threads", "1", "pretrain",
                               str(models_dir), "--steps", str(plan.pretrain_steps),
                               "--batch-size", str(plan.pretrain_batch_size), "--lr", str(plan.pretrain_lr),
                               "--max-rounds", str(plan.pretrain_max_rounds),
                               "--models", ",".join(m.name for m in group)], env=env, stdout=subprocess.PIPE, text=True)
             for group in groups]
    for proc in procs:
        for line in proc.stdout:  # one JSON line per finished model
            stats = json.loads(line)
            rec = stats.get("recognisability", {})
            say(f"  pretrained {stats['name']}: val loss {stats['initial_val_loss']:.3f} -> "
                f"{stats['final_val_loss']:.4f} in {stats['train_seconds']:.0f}s; samples recognisable: "
                f"{rec.get('recognisable')} (own FID {rec.get('fid_own', float('nan')):.2f})")
        if proc.wait() != 0:
            raise RuntimeError(f"pretraining failed (exit {proc.returncode})")


def ensure_datasets(plan: Plan, data_dir: Path) -> dict[str, Path]:
    """Folders of the targets and of one sample of each model's source domain (generated once)."""
    from services.common.diffusion import generate_synthetic_dataset
    from services.common.diffusion.zoo import generate_target_dataset

    folders: dict[str, Path] = {}
    for spec in plan.targets:
        folder = data_dir / spec.name
        if not (folder / "metadata.jsonl").is_file():
            generate_target_dataset(spec, folder)
        folders[spec.name] = folder
    for model in plan.models:
        for domain in model.source_domains:
            name = source_dataset_name(domain)
            folder = data_dir / name
            if not (folder / "metadata.jsonl").is_file():
                generate_synthetic_dataset(folder, domain=domain, n=SOURCE_SAMPLE, seed=0, resolution=plan.budget.resolution,
                                           overwrite=True)
            folders[name] = folder
    return folders


@contextmanager
def local_platform(home: Path, *, workers: int, database_url: str, broker_url: str,
                   say: Say) -> Iterator[tuple[str, str]]:
    """The gateway (`atelier serve`, Celery dispatch) plus `workers` single-thread Celery workers."""
    from services.gateway.benchserver import local_server

    home.mkdir(parents=True, exist_ok=True)
    env = {"ATELIER_DATABASE_URL": database_url, "ATELIER_BROKER_URL": broker_url,
           "ATELIER_BROKER_KEY_PREFIX": "t2i-zoo:", "ATELIER_HOME": str(home / ".atelier"),
           "ATELIER_DEVICE": "cpu", "HF_HUB_OFFLINE": "1",
           "ATELIER_RATE_LIMIT_PER_MINUTE": "0"}  # the driver is a trusted local batch client
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    child_env.update({**env, "OMP_NUM_THREADS": "1",
                      "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    with local_server(home, env=env) as (base, key, _):
        procs = []
        try:
            for i in range(workers):
                log = (home / f"worker-{i}.log").open("a")
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "services.cli", "worker", "--queues", "gpu,cpu", "--pool", "solo",
                     "--loglevel", "WARNING"], env=child_env, cwd=home, stdout=log, stderr=subprocess.STDOUT))
            say(f"platform up at {base} with {workers} single-thread Celery worker(s); logs in {home}")
            yield base, key
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in `url` when it is missing (SQLite needs nothing)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        return
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}).first() is None:
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


# ----------------------------------------------------------------------------- through the API
def _check(response: httpx.Response, what: str) -> dict:
    if response.status_code >= 400:
        raise RuntimeError(f"{what}: {response.status_code} {response.text[:400]}")
    return response.json() if response.content else {}


def register(client: httpx.Client, plan: Plan, models_dir: Path, folders: dict[str, Path]) -> None:
    """Models and datasets with the selection service (created once; a rerun finds them)."""
    from services.common.diffusion.zoo import parameter_counts

    have_models = {m["name"] for m in _check(client.get("/v1/selection/models"), "list models")}
    for spec in plan.models:
        if spec.name in have_models:
            continue
        counts = parameter_counts(spec)
        _check(client.post("/v1/selection/models", json={
            "name": spec.name, "ref": str((models_dir / spec.name).resolve()), "family": spec.kind,
            "architecture": spec.architecture, "num_parameters": counts["total"], "resolution": plan.budget.resolution,
            "pretraining_data": source_dataset_name(spec.source_domains[0]),
            "metadata": {"zoo": spec.to_dict(), "latent": spec.latent}}), f"register {spec.name}")
    have_sets = {d["name"] for d in _check(client.get("/v1/selection/datasets"), "list datasets")}
    for name, folder in folders.items():
        if name not in have_sets:
            _check(client.post("/v1/selection/datasets", json={"name": name, "uri": str(folder)}), f"register {name}")


def profile_all(client: httpx.Client, names: list[str], *, say: Say) -> None:
    datasets = {d["name"]: d for d in _check(client.get("/v1/selection/datasets"), "list datasets")}
    todo = [n for n in names if not datasets[n].get("profile")]
    if not todo:
        return
    say(f"profiling {len(todo)} dataset(s)")
    ids = [_check(client.post("/v1/selection/datasets/profile", json={"dataset": n},
                              headers={"Idempotency-Key": f"zoo-profile:{n}"}), f"profile {n}")["id"] for n in todo]
    failed = [j for j in wait_for_jobs(client, ids, timeout_s=3600) if j["status"] != "succeeded"]
    if failed:
        raise RuntimeError(f"profiling failed: {[j['error'] for j in failed]}")


def read_journal(path: Path, plan: Plan | None = None) -> dict[tuple[str, str, int], dict]:
    """Journalled pairs by (model, dataset, seed), the last row of each; with `plan`, only the rows
    that plan measured (`plan_rows`), so a row of another recipe never hides one of this plan."""
    rows = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                key = (row["model"], row["dataset"], row["seed"])
                if plan is None or plan_rows({key: row}, plan):
                    rows[key] = row
    return rows


def plan_rows(rows: dict[tuple[str, str, int], dict], plan: Plan) -> dict[tuple[str, str, int], dict]:
    """The journal rows this plan measured: its models and targets, its budget and its models' recipes
    (a journal keeps rows of retired models and of earlier recipes)."""
    models, targets = {m.name for m in plan.models}, {t.name for t in plan.targets}
    return {k: r for k, r in rows.items() if k[0] in models and k[1] in targets and plan.measured_here(r)}


def run_pairs(client: httpx.Client, plan: Plan, journal: Path, *, say: Say, attempts: int = 2) -> None:
    """Submit every pair not in the journal, then follow them in order; append each as it finishes."""
    done = read_journal(journal, plan)
    todo = [r for r in plan.runs if (r.model, r.dataset, r.seed) not in done]
    say(f"pairs: {len(plan.runs)} planned, {len(plan.runs) - len(todo)} already measured, {len(todo)} to run")
    if not todo:
        return
    jobs: dict[PairRun, str] = {}
    tries: Counter = Counter()

    def submit(run: PairRun) -> None:
        key = run.key(plan.budget_hash, plan.recipe_hash(run.model)) + (f":retry{tries[run]}" if tries[run] else "")
        job = _check(client.post("/v1/training/jobs", json=plan.training_body(run), headers={"Idempotency-Key": key}),
                     f"submit {run}")
        jobs[run] = job["id"]

    for run in todo:
        submit(run)
    started, finished = time.monotonic(), 0
    pending = list(todo)
    while pending:
        progressed = False
        for run in list(pending[:8]):  # jobs run about in submission order: poll the front
            job = _check(client.get(f"/v1/jobs/{jobs[run]}"), "poll job")
            if job["status"] not in FINISHED:
                continue
            progressed = True
            if job["status"] != "succeeded":
                tries[run] += 1
                if tries[run] >= attempts:
                    raise RuntimeError(f"{run} failed {attempts} times: {job.get('error')}")
                say(f"  {run.model} x {run.dataset} seed {run.seed}: {job['status']}; resubmitting")
                submit(run)
                continue
            pending.remove(run)
            finished += 1
            result = job["result"]
            quality = result.get("quality") or {}
            row = {"model": run.model, "dataset": run.dataset, "seed": run.seed, "metric": METRIC,
                   "value": result["final_val_loss"], "higher_is_better": False,
                   "initial_val_loss": result.get("initial_val_loss"), "fid": quality.get("fid"),
                   "kid": quality.get("kid_mean"), "median_step_seconds": result.get("median_step_seconds"),
                   "job_seconds": _job_seconds(job), "recorded": bool(result.get("selection", {}).get("recorded")),
                   "job_id": job["id"], "budget": plan.budget.to_dict(),
                   "model_recipe": plan.recipe_hash(run.model), "pretraining": plan.pretraining}
            with journal.open("a") as fh:
                fh.write(json.dumps(row, sort_keys=True) + "\n")
            elapsed = time.monotonic() - started
            eta = elapsed / finished * len(pending)
            say(f"[{len(plan.runs) - len(pending)}/{len(plan.runs)}] {run.model} x {run.dataset} seed {run.seed}: "
                f"{METRIC} {row['value']:.5f}  (elapsed {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min)")
        if not progressed:
            time.sleep(2.0)


def _job_seconds(job: dict) -> float | None:
    from datetime import datetime

    try:
        return (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None


# ----------------------------------------------------------------------------- outputs
def write_outputs(out: Path, plan: Plan, client: httpx.Client, *, wall_seconds: float | None) -> dict:
    """The benchmark-format files plus summary.json, from the journal and the selection service."""
    from services.common.diffusion.zoo import parameter_counts

    datasets = {d["name"]: d for d in _check(client.get("/v1/selection/datasets"), "list datasets")}
    unprofiled = [n for n in [t.name for t in plan.targets] + [source_dataset_name(m.source_domains[0])
                                                              for m in plan.models]
                  if not (datasets.get(n) or {}).get("profile")]
    if unprofiled:  # e.g. --write-only against a fresh database: never overwrite the files with blanks
        raise RuntimeError(f"{len(unprofiled)} dataset(s) are not profiled in this selection service "
                           f"({', '.join(unprofiled[:3])}, ...): run the build without --write-only, which "
                           "registers and profiles them and runs no pair the journal already has")
    rows = read_journal(out / "runs.jsonl", plan)
    main = [r for (m, d, s), r in sorted(rows.items()) if s == 0]
    with (out / "records.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["model", "finetuned_dataset", "metric", "value", "higher_is_better", "fid", "kid", "steps",
                    "batch_size", "lr", "seed", "job_id"])
        for r in main:
            b = r["budget"]
            w.writerow([r["model"], r["dataset"], r["metric"], r["value"], "false", r["fid"], r["kid"], b["steps"],
                        b["batch_size"], b["lr"], r["seed"], r["job_id"]])
    with (out / "model_config_dataset.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["model", "architectures", "model_type", "number_of_parameters", "dataset", "input_shape",
                    "description"])
        for spec in plan.models:
            w.writerow([spec.name, spec.kind, "latent" if spec.latent else "pixel", parameter_counts(spec)["total"],
                        source_dataset_name(spec.source_domains[0]), plan.budget.resolution, spec.architecture])
    with (out / "target_dataset_features.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["finetune_dataset", "size", "caption_mean_words", "caption_vocabulary"])
        for spec in plan.targets:
            d = datasets.get(spec.name, {})
            w.writerow([spec.name, min(spec.n, plan.budget.n_images),
                        (d.get("caption_stats") or {}).get("mean_words", ""),
                        (d.get("caption_stats") or {}).get("vocabulary", "")])
    graph = _check(client.get("/v1/selection/graph"), "graph")
    names = {n["id"]: n["name"] for n in graph["nodes"] if n["type"] == "dataset"}
    order = sorted(names.values())
    # one file per similarity method the profiles gave: the combined distance, and each modality's
    # on its own (their mean is the combined one, so a loader that averages every file sees the
    # combined distances; a ranker may choose one by inner CV)
    from services.selection.mc.similarity import modality_of

    dist: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
    for e in graph["edges"]:
        if e["type"] == "similarity":
            a, b = names[e["source"]], names[e["target"]]
            label = modality_of(e.get("method") or "")
            suffix = f"_{label}" if label else ""
            dist[suffix][(a, b)] = dist[suffix][(b, a)] = e["value"]
    for suffix in sorted(set(dist) | {""}):
        _write_distances(out / f"corr_domain_similarity_atelier_profile{suffix}.csv", order, dist[suffix])
    write_coverage(out / "domain_coverage_atelier_profile.csv",
                   {n: d["profile"] for n, d in datasets.items() if d.get("profile")})
    summary = summarise(rows, plan)
    summary["wall_seconds"] = wall_seconds
    summary["command"] = (f"atelier zoo build --out {out} --pretrain-steps {plan.pretrain_steps} "
                          f"--pretrain-rounds {plan.pretrain_max_rounds} --pair-steps {plan.budget.steps}")
    summary["pretraining"] = plan.pretraining
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _write_distances(path: Path, order: list[str], dist: dict[tuple[str, str], float]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([""] + order)
        for a in order:
            w.writerow([a] + [0.0 if a == b else dist.get((a, b), "") for b in order])


def write_coverage(path: Path, profiles: dict[str, Any]) -> None:
    """The directed coverage divergences of the profiled datasets (row = covered, column =
    reference, similarity.profile_coverage), blank where two profiles are not comparable."""
    import numpy as np

    from services.selection.mc.similarity import comparable_coverage

    order = sorted(profiles)
    arrays = {n: np.asarray(profiles[n], dtype=float) for n in order}
    pairs = {(a, b): comparable_coverage(arrays[a], arrays[b]) for a in order for b in order if a != b}
    _write_distances(path, order, {k: v for k, v in pairs.items() if v is not None})


def summarise(rows: dict[tuple[str, str, int], dict], plan: Plan) -> dict:
    """Best-model distribution (seed 0) and, on the noise targets, repeat noise vs spread between models."""
    by_dataset: dict[str, dict[str, float]] = defaultdict(dict)
    for (m, d, s), r in rows.items():
        if s == 0:
            by_dataset[d][m] = r["value"]
    best = {d: min(v, key=v.get) for d, v in by_dataset.items() if v}
    counts = Counter(best.values())
    noise = {}
    for d in plan.noise_targets:
        per_model = defaultdict(list)
        for (m, dd, s), r in rows.items():
            if dd == d:
                per_model[m].append(r["value"])
        full = {m: v for m, v in per_model.items() if len(v) >= 2}
        if len(full) < 2:
            continue
        means = {m: statistics.fmean(v) for m, v in full.items()}
        ranked = sorted(means, key=means.get)
        repeat = statistics.fmean(statistics.stdev(v) for v in full.values())
        noise[d] = {"models": len(full), "seeds": max(len(v) for v in full.values()), "repeat_std": repeat,
                    "between_model_std": statistics.stdev(means.values()),
                    "best_second_gap": means[ranked[1]] - means[ranked[0]],
                    "gap_over_noise": (means[ranked[1]] - means[ranked[0]]) / repeat if repeat > 0 else None,
                    "spread_over_noise": statistics.stdev(means.values()) / repeat if repeat > 0 else None,
                    "best": ranked[0], "second": ranked[1]}
    n = max(1, len(best))
    seconds = [r["job_seconds"] for r in rows.values() if r.get("job_seconds")]
    return {"pairs_measured": len(rows), "datasets_with_results": len(by_dataset),
            "best_model_counts": dict(counts.most_common()),
            "max_best_share": max(counts.values()) / n if counts else None,
            "non_trivial": bool(counts) and max(counts.values()) / n <= 0.40,
            "noise": noise, "mean_job_seconds": statistics.fmean(seconds) if seconds else None,
            "budget": plan.budget.to_dict(), "metric": METRIC, "higher_is_better": False}


# ----------------------------------------------------------------------------- the whole run
def build(out: Path = DEFAULT_OUT, *, workers: int = 2, models: str = "", targets: str = "", pretrain_steps: int | None = None,
          pretrain_rounds: int | None = None, pair_steps: int | None = None, models_dir: Path | None = None,
          database_url: str | None = None, broker_url: str | None = None, url: str | None = None,
          key: str | None = None, mode: str = "memlean", run: bool = True, say: Say = print) -> dict:
    """Pretrain what is missing, measure every pair through the API, write the files. Resumable.

    run=False only (re)writes the files from the journal of the pairs measured so far.
    """
    plan = make_plan(models=models, targets=targets, pretrain_steps=pretrain_steps, pretrain_rounds=pretrain_rounds,
                     pair_steps=pair_steps, mode=mode)
    cache = zoo_cache()
    models_dir = out / "models" if models_dir is None else models_dir
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if run and not url:  # the local workers run here: the 90-minute plan assumes native bf16
        from services.common.settings import resolve_device
        from services.training.memlean.trainer import bf16_emulation_warning

        warning = bf16_emulation_warning(mode, resolve_device())
        if warning:
            say(f"warning: {warning}; `--mode fp32` measures fp32 pairs instead (other records)")
    if run:
        ensure_pretrained(plan, models_dir, workers=workers, say=say, journal=out / "runs.jsonl")
    folders = ensure_datasets(plan, cache / "data")
    say(f"zoo: {len(plan.models)} models x {len(plan.targets)} targets; budget {plan.budget.to_dict()}")

    def measure(base: str, api_key: str) -> dict:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {api_key}"}, timeout=60) as client:
            if run:
                register(client, plan, models_dir, folders)
                profile_all(client, sorted(folders), say=say)
                run_pairs(client, plan, out / "runs.jsonl", say=say)
            summary = write_outputs(out, plan, client, wall_seconds=None)
        return summary

    if url:
        if not key:
            raise ValueError("--url needs --key")
        summary = measure(url, key)
    else:
        database_url = database_url or "postgresql+psycopg://postgres@127.0.0.1:5432/atelier_zoo"
        ensure_database(database_url)
        with local_platform(cache / "platform", workers=workers if run else 0, database_url=database_url,
                            broker_url=broker_url or "redis://127.0.0.1:6379/0", say=say) as (base, api_key):
            summary = measure(base, api_key)
    wall = time.monotonic() - started
    timing_file = out / "timing.json"
    timings = json.loads(timing_file.read_text()) if timing_file.is_file() else {"sessions": []}
    timings["sessions"].append({"wall_seconds": wall, "pairs_total": len(plan.runs), "ran_pairs": run,
                                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    timing_file.write_text(json.dumps(timings, indent=2) + "\n")
    summary["wall_seconds_this_session"] = wall
    say(json.dumps({k: summary[k] for k in ("pairs_measured", "best_model_counts", "max_best_share", "non_trivial")}))
    return summary
