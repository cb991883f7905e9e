"""`atelier`: serve, worker, db, keys, bench."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(help="Atelier: adapt text-to-image diffusion models to your data.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks (measured on this machine, printed as tables).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
zoo_app = typer.Typer(help="The T2I zoo: 10 tiny models x 32 targets measured through the platform.",
                      no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(zoo_app, name="zoo")


def _logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request at INFO: the gateway's forwarding and the services' calls would
    # bury the server's own lines (uvicorn's access log already shows each incoming call).
    logging.getLogger("httpx").setLevel(logging.NOTSET if level.upper() == "DEBUG" else logging.WARNING)
    _quiet_progress_bars()


def _quiet_progress_bars() -> None:
    """A server's log is not a terminal: transformers' "Loading weights" and "Writing model shards"
    bars would write carriage-return lines into it at every job. Its bars follow huggingface_hub's
    switch when transformers is imported later; one imported already has its own."""
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()


@app.command()
def serve(host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
          admin_key: Annotated[bool, typer.Option(help="Create and print an admin key at start.")] = False,
          demo: Annotated[bool, typer.Option(help="Seed a small demo (tiny zoo + one adapt run) once up.")] = False,
          migrate: Annotated[bool, typer.Option(help="Apply migrations first.")] = True) -> None:
    """Run the gateway (and every service without a URL) in this process.

    With no configuration this is the embedded default: SQLite under ./.atelier/ and an
    in-process worker that runs jobs.
    """
    import uvicorn

    from services.common.migrate import upgrade, wait_for_database
    from services.common.settings import get_settings
    from services.gateway.app import create_app

    _logging()
    settings = get_settings()
    if migrate:
        wait_for_database()
        upgrade()
    key = _print_new_key("admin", "created by atelier serve") if admin_key or demo else None
    if demo:
        _seed_demo_when_up(f"http://{host}:{port}", key, settings.home / "demo-data")
    mode = ("embedded (in-process worker)" if settings.embedded
            else f"Celery on {_safe_url(settings, settings.broker_url)}")
    typer.echo(f"Atelier on http://{host}:{port}  (jobs: {mode}; database: {_safe_url(settings)})")
    uvicorn.run(create_app(settings, start_embedded_worker=True), host=host, port=port, log_level="info")


def _seed_demo_when_up(base: str, key: str, data_root: Path) -> None:
    """Seed the demo from a background thread once the server answers."""
    import threading
    import time

    import httpx

    from services.gateway.demo import seed_demo

    def run() -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            for _ in range(120):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.5)
            try:
                seed_demo(client, data_root, say=lambda line: typer.echo(line))
            except Exception as exc:  # the platform keeps running; the user sees why the demo did not
                typer.echo(f"demo: failed: {exc}", err=True)

    threading.Thread(target=run, daemon=True, name="atelier-demo").start()


@app.command("serve-service")
def serve_service(name: Annotated[str, typer.Argument(help="selection | quantization | training")],
                  host: str = "0.0.0.0", port: int = 8000) -> None:
    """Run one service alone (the distributed deployment)."""
    import uvicorn

    from services.common.clients import APP_FACTORIES, load_app

    _logging()
    if name not in APP_FACTORIES:
        raise typer.BadParameter(f"unknown service {name!r}")
    uvicorn.run(load_app(APP_FACTORIES[name]), host=host, port=port)


@app.command()
def worker(queues: Annotated[str, typer.Option(help="Comma-separated queues: cpu,gpu.")] = "cpu,gpu",
           concurrency: Annotated[int, typer.Option(help="Processes (ignored with the solo pool).")] = 1,
           pool: Annotated[Optional[str], typer.Option(help="prefork | solo | threads; gpu defaults to solo.")] = None,
           loglevel: str = "INFO") -> None:
    """Run a Celery worker for the given queues."""
    from services.common.celery_app import celery_app

    _quiet_progress_bars()  # Celery sets up its own logging from --loglevel

    names = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = set(names) - {"cpu", "gpu"}
    if unknown:
        raise typer.BadParameter(f"unknown queue(s): {', '.join(sorted(unknown))}")
    # CUDA cannot be re-initialised in a forked child, so GPU workers run jobs in the main process.
    chosen_pool = pool or ("solo" if "gpu" in names else "prefork")
    argv = ["worker", f"--queues={','.join(names)}", f"--pool={chosen_pool}", f"--loglevel={loglevel}",
            "--without-gossip", "--without-mingle"]
    if chosen_pool != "solo":
        argv.append(f"--concurrency={concurrency}")
    celery_app().worker_main(argv)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (waits for the database first)."""
    from services.common.migrate import upgrade, wait_for_database

    wait_for_database()
    upgrade(revision)
    typer.echo(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str = "base") -> None:
    """Revert migrations down to REVISION."""
    from services.common.migrate import downgrade

    downgrade(revision)
    typer.echo(f"database at {revision}")


def _safe_url(settings, url: str | None = None) -> str:
    """`url` (default: the database's) with its password masked, for printing."""
    from sqlalchemy.engine import make_url

    return make_url(url or settings.resolved_database_url).render_as_string(hide_password=True)


def _print_new_key(scope: str, name: str) -> str:
    from services.common.auth import create_key
    from services.common.db import session_scope

    with session_scope() as session:
        _, plaintext = create_key(db_session=session, scope=scope, name=name)
    typer.echo(f"New {scope} API key (shown once): {plaintext}")
    return plaintext


@keys_app.command("create")
def keys_create(scope: Annotated[str, typer.Option(help="read | write | admin")] = "admin",
                name: Annotated[str, typer.Option(help="A label for the key.")] = "") -> None:
    """Create a key and print it once; only its digest is stored."""
    from services.common.auth import SCOPES

    if scope not in SCOPES:
        raise typer.BadParameter(f"scope must be one of {', '.join(SCOPES)}")
    _print_new_key(scope, name)


def _share(value: float) -> float:
    if not 0.0 < value <= 1.0:
        raise typer.BadParameter(f"{value} is not in (0, 1]")
    return value


@bench_app.command("selection")
def bench_selection(
    data: Annotated[Path, typer.Option(help="A directory in the TransferGraph benchmark format.")],
    targets: Annotated[Optional[str], typer.Option(help="Comma-separated targets, or 'all'.")] = None,
    similarity: Annotated[Optional[Path], typer.Option(help="A corr_domain_similarity_*.csv to use.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write the JSON report here.")] = None,
    latency: Annotated[bool, typer.Option(help="Also time `rank` over 1,000 candidates.")] = False,
    ablations: Annotated[bool, typer.Option(help="Also run the ablations (feature families, embeddings).")] = False,
    ablation: Annotated[Optional[str], typer.Option(help="Also run only these ablations (comma-separated names, "
                                                         "e.g. mc_no_graph).")] = None,
    drop_degenerate: Annotated[bool, typer.Option(help="Drop datasets flagged degenerate.")] = False,
    jobs: Annotated[int, typer.Option(min=0, help="Worker processes over the targets (one torch thread "
                                                  "each; same results); 0: one per CPU core.")] = 0,
    keep_fraction: Annotated[float, typer.Option(callback=_share, help=(
        "Share of the other datasets' results the methods see, each (model, dataset) pair drawn by "
        "--keep-seed: sparse records, as a real matching graph has."))] = 1.0,
    keep_seed: Annotated[int, typer.Option(help="Which pairs --keep-fraction keeps.")] = 0,
) -> None:
    """Leave-one-dataset-out evaluation of M&C against the baselines."""
    import os

    from services.selection.bench import check_ablations, run_benchmark

    if not data.is_dir():
        raise typer.BadParameter(f"{data} is not a directory")
    try:  # checked before the data is loaded
        chosen = check_ablations([n.strip() for n in (ablation or "").split(",") if n.strip()])
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    try:
        run_benchmark(data_dir=data, targets=targets, similarity=similarity, out=out, latency=latency,
                      gateway_latency_fn=_gateway_rank_latency if latency else None, ablations=chosen or ablations,
                      drop_degenerate=drop_degenerate, jobs=jobs or os.cpu_count() or 1,
                      keep_fraction=keep_fraction, keep_seed=keep_seed)
    except ValueError as exc:  # the data cannot be evaluated: say why, without a traceback
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _gateway_rank_latency(zoo, ranker, target: str, candidates: list[str]) -> dict:
    from services.gateway.benchserver import RATE_LIMIT_OUT_OF_REACH, rank_latency_over_http, seeded_server

    # the same graph served with compiled LightGBM models (the default) and with LightGBM's own predict
    with seeded_server(zoo, ranker, env=RATE_LIMIT_OUT_OF_REACH) as compiled, \
            seeded_server(zoo, ranker, env=RATE_LIMIT_OUT_OF_REACH, compile_forests=False) as lightgbm:
        by_inference = rank_latency_over_http({"compiled": compiled, "lightgbm": lightgbm},
                                              {"dataset": target, "candidates": candidates, "k": 10})
    return {"inference": "compiled", **by_inference["compiled"], "by_inference": by_inference}


@bench_app.command("zoo-holdout")
def bench_zoo_holdout(
    out: Annotated[Optional[Path], typer.Option(help="Write the JSON report here.")] = None,
    journal: Annotated[Optional[Path], typer.Option(
        help="The fine-tuned pairs (resumable); default bench/data/t2i-zoo-holdout/runs.jsonl.")] = None,
    data_dir: Annotated[Path, typer.Option(help="Where the datasets are generated.")] = Path(
        "~/.cache/atelier/t2i-zoo-holdout"),
    workers: Annotated[int, typer.Option(min=1, help="Fine-tuning processes (one torch thread each).")] = 2,
    ablation: Annotated[Optional[str], typer.Option(help="Also rank with these ablations of the primary "
                                                         "(comma-separated names, as for `bench selection`).")] = None,
    waves: Annotated[str, typer.Option(help="Which waves of ten new targets (comma-separated: 1, 2).")] = "1,2",
) -> None:
    """Selection on new zoo targets no committed record has seen: fine-tune the missing pairs, then rank."""
    import json

    from services.selection.bench import _device, check_ablations
    from services.selection.holdout import DEFAULT_JOURNAL, WAVES, evaluate, run_pairs, table

    try:  # checked before any fine-tuning
        chosen = check_ablations([n.strip() for n in (ablation or "").split(",") if n.strip()])
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    parts = [w.strip() for w in waves.split(",") if w.strip()]
    chosen_waves = sorted({int(w) for w in parts if w.isdigit()})
    if not parts or len(chosen_waves) != len(set(parts)) or not set(chosen_waves) <= set(WAVES):
        raise typer.BadParameter(f"--waves takes some of {', '.join(map(str, WAVES))}, not {waves!r}")
    data_dir, journal = data_dir.expanduser(), journal or DEFAULT_JOURNAL
    run_pairs(data_dir, journal, waves=chosen_waves, workers=workers, say=typer.echo)
    report = {**evaluate(data_dir, journal, waves=chosen_waves, ablations=chosen, say=typer.echo), "device": _device()}
    typer.echo(table(report))
    if out:
        out.write_text(json.dumps(report, indent=2) + "\n")


@bench_app.command("quantization")
def bench_quantization(quick: Annotated[bool, typer.Option(help="A ≤5-minute run that still measures all.")] = False,
                       device: Annotated[str, typer.Option(help="cpu | cuda")] = "cpu",
                       out: Annotated[Optional[Path], typer.Option(help="Write the JSON report here.")] = None) -> None:
    """MPQ-Diff allocators against fixed precision at equal weight bytes."""
    from services.quantization.bench import run_benchmark

    run_benchmark(quick=quick, device=device, out=out)


@bench_app.command("training")
def bench_training(quick: Annotated[bool, typer.Option(help="A ≤5-minute run that still measures all.")] = False,
                   device: Annotated[str, typer.Option(help="cpu | cuda")] = "cpu",
                   out: Annotated[Optional[Path], typer.Option(help="Write the JSON report here.")] = None) -> None:
    """Memory and step time of fp32, amp and memlean fine-tuning, each mode in a fresh process."""
    from services.training.bench import run_benchmark

    run_benchmark(quick=quick, device=device, out=out)


@bench_app.command("load")
def bench_load(
    clients: Annotated[int, typer.Option(help="Concurrent clients.", min=1, max=256)] = 32,
    seconds: Annotated[float, typer.Option(help="How long to send, in seconds.", min=0.1, max=600)] = 30.0,
    out: Annotated[Optional[Path], typer.Option(help="Write the JSON report here.")] = None,
    data: Annotated[Optional[Path], typer.Option(help="Zoo in the TransferGraph format; default: "
                                                      "../shared/benchmarks/transfergraph-image.")] = None,
    synthetic: Annotated[bool, typer.Option(help="Use a small synthetic zoo (quick to fit).")] = False,
    url: Annotated[Optional[str], typer.Option(help="A running loopback gateway instead of a fresh one.")] = None,
    key: Annotated[Optional[str], typer.Option(help="API key for --url.")] = None,
) -> None:
    """Throughput and latency of POST /v1/selection/rank under N concurrent clients, on loopback only."""
    from services.gateway.loadbench import LoadBenchError, run_load_bench

    try:
        run_load_bench(clients=clients, seconds=seconds, out=out, data=data, synthetic=synthetic, url=url, key=key,
                       say=typer.echo)
    except LoadBenchError as exc:
        raise typer.BadParameter(str(exc)) from exc




@zoo_app.command("build")
def zoo_build(
    out: Annotated[Path, typer.Option(help="Where the benchmark-format files go.")] = Path("bench/data/t2i-zoo"),
    workers: Annotated[int, typer.Option(help="Single-thread Celery workers (and pretraining processes).")] = 2,
    models: Annotated[str, typer.Option(help="Comma-separated zoo model names (default: all 10).")] = "",
    targets: Annotated[str, typer.Option(help="Comma-separated target names (default: all 32).")] = "",
    pretrain_steps: Annotated[Optional[int], typer.Option(
        help="Pretraining steps of each model (default: 4000, zoo.PRETRAIN_STEPS, as the committed "
             "records). Part of the model's recipe: pairs of another recipe are re-measured.")] = None,
    pretrain_rounds: Annotated[Optional[int], typer.Option(
        help="At most this many rounds of --pretrain-steps, until a model's samples are recognisable (default: "
             "2, zoo.PRETRAIN_MAX_ROUNDS, as the committed records). Part of the recipe.")] = None,
    pair_steps: Annotated[Optional[int], typer.Option(
        help="Fine-tuning steps of every pair (default: 35, zoo.recommended_budget(), as the committed "
             "records). Part of the budget: pairs of another budget are re-measured.")] = None,
    models_dir: Annotated[Optional[Path], typer.Option(
        help="Where the pretrained models are kept and looked for (default: OUT/models, committed with the "
             "records they measured).")] = None,
    database_url: Annotated[Optional[str], typer.Option(help="Database of the local platform.")] = None,
    broker_url: Annotated[Optional[str], typer.Option(help="Broker of the local platform.")] = None,
    url: Annotated[Optional[str], typer.Option(help="Use a running gateway instead of a local platform.")] = None,
    key: Annotated[Optional[str], typer.Option(help="Admin API key for --url.")] = None,
    mode: Annotated[str, typer.Option(help="Fine-tuning mode of every pair: memlean | fp32 | amp. memlean "
                                           "computes in bf16: use fp32 on a CPU without bf16 instructions, "
                                           "where bf16 is emulated (~8x slower).")] = "memlean",
    run: Annotated[bool, typer.Option("--run/--write-only", help="--write-only rewrites the files from the "
                                                                 "pairs measured so far.")] = True,
) -> None:
    """Pretrain the zoo, fine-tune every (model, target) pair as a job, write the records. Resumable."""
    from services.gateway.zoobuild import build

    build(out, workers=workers, models=models, targets=targets, pretrain_steps=pretrain_steps,
          pretrain_rounds=pretrain_rounds, pair_steps=pair_steps, models_dir=models_dir,
          database_url=database_url, broker_url=broker_url, url=url, key=key, mode=mode, run=run, say=typer.echo)


if __name__ == "__main__":  # pragma: no cover
    app()
