"""The generated SDK driven against the live gateway: requests it builds are accepted, answers it parses."""

from __future__ import annotations

import io
import time
import zipfile

import pytest

from tests.sdk.conftest import sdk_client

pytestmark = pytest.mark.integration

TERMINAL = ("succeeded", "failed", "cancelled")


def poll(sdk, job_id: str, *, until=TERMINAL, timeout: float = 300.0):
    from atelier_client.api.jobs import jobs_get_job
    from atelier_client.models import JobOut

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = jobs_get_job.sync(job_id, client=sdk)
        assert isinstance(job, JobOut), job
        if job.status in until:
            return job
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} still {job.status}")


@pytest.fixture(scope="module")
def suffix() -> str:
    return str(time.monotonic_ns())  # names unique to this run: other tests share the database


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> str:
    from services.common.diffusion import generate_synthetic_dataset

    return str(generate_synthetic_dataset(tmp_path_factory.mktemp("sdk-data") / "shapes", domain="shapes", n=16,
                                          seed=0, resolution=16, overwrite=True))


def test_errors_parse_as_problem_documents(gateway, sdk, suffix):
    from atelier_client.api.jobs import jobs_get_job
    from atelier_client.api.selection import selection_create_model, selection_rank
    from atelier_client.models import ModelIn, ModelOut, Problem, RankRequest

    missing = jobs_get_job.sync_detailed("no-such-job", client=sdk)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
    assert isinstance(missing.parsed, Problem) and missing.parsed.status == 404
    assert "no-such-job" in missing.parsed.detail

    invalid = selection_rank.sync(client=sdk, body=RankRequest(dataset="anything", k=0))
    assert isinstance(invalid, Problem) and invalid.status == 422
    assert any(error.loc[-1] == "k" for error in invalid.errors)

    assert isinstance(selection_create_model.sync(client=sdk, body=ModelIn(name=f"dup-{suffix}")), ModelOut)
    duplicate = selection_create_model.sync(client=sdk, body=ModelIn(name=f"dup-{suffix}"))
    assert isinstance(duplicate, Problem) and duplicate.status == 409

    anonymous = jobs_get_job.sync_detailed("no-such-job", client=sdk_client(gateway, None))
    assert anonymous.status_code == 401 and isinstance(anonymous.parsed, Problem)
    wrong_key = jobs_get_job.sync_detailed("no-such-job", client=sdk_client(gateway, "atl_nope_nope"))
    assert wrong_key.status_code == 401 and isinstance(wrong_key.parsed, Problem)


def test_register_add_results_fit_and_rank(sdk, celery_worker, suffix):
    from atelier_client.api.selection import (
        selection_add_results,
        selection_add_similarity,
        selection_create_dataset,
        selection_create_model,
        selection_fit,
        selection_get_model,
        selection_list_results,
        selection_rank,
    )
    from atelier_client.models import (
        DatasetIn,
        DatasetOut,
        FitRequest,
        FitRequestEmbedding,
        ModelIn,
        ModelOut,
        RankRequest,
        RankResponse,
        ResultIn,
        ResultOut,
        SimilarityIn,
    )

    # Models mA/mB excel on clusters A/B, mC is mediocre everywhere: the right ranking is known.
    models = {role: f"{role}-{suffix}" for role in ("mA", "mB", "mC")}
    for role, name in models.items():
        created = selection_create_model.sync(client=sdk, body=ModelIn(name=name, family=role, num_parameters=1e6))
        assert isinstance(created, ModelOut) and created.name == name
    fetched = selection_get_model.sync(models["mA"], client=sdk)
    assert isinstance(fetched, ModelOut) and fetched.family == "mA"
    clusters = {f"{c}{i}-{suffix}": c for c in "AB" for i in range(1, 5)}
    for name in clusters:
        created = selection_create_dataset.sync(client=sdk, body=DatasetIn(name=name, size=1000))
        assert isinstance(created, DatasetOut) and created.name == name
    quality = {"A": {"mA": 0.9, "mB": 0.5, "mC": 0.6}, "B": {"mA": 0.5, "mB": 0.9, "mC": 0.6}}
    results = [ResultIn(model=models[role], dataset=dataset, value=q + 0.005 * i)
               for i, (dataset, cluster) in enumerate(clusters.items()) for role, q in quality[cluster].items()]
    added = selection_add_results.sync(client=sdk, body=results)
    assert isinstance(added, list) and len(added) == len(results) and all(isinstance(r, ResultOut) for r in added)
    names = list(clusters)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            response = selection_add_similarity.sync_detailed(client=sdk, body=SimilarityIn(
                dataset_a=a, dataset_b=b, value=1.0 if clusters[a] == clusters[b] else 10.0))
            assert response.status_code == 204
    listed = selection_list_results.sync(client=sdk, dataset=names[0])
    assert {r.model for r in listed} == set(models.values())

    fit = selection_fit.sync(client=sdk, body=FitRequest(embedding=FitRequestEmbedding.SAGE, evaluate=False, members=1))
    fitted = poll(sdk, fit.id)
    assert fitted.status == "succeeded", fitted.error
    assert fitted.result["graph_version_id"]

    a_dataset = next(name for name, cluster in clusters.items() if cluster == "A")
    ranked = selection_rank.sync(client=sdk, body=RankRequest(dataset=a_dataset, candidates=list(models.values()),
                                                              k=3))
    assert isinstance(ranked, RankResponse), ranked
    assert ranked.ranking[0].model == models["mA"]
    assert [r.rank for r in ranked.ranking] == [1, 2, 3]
    assert ranked.predictor_version == ranked.ranking[0].explanation["predictor_version"]


def test_quantization_job_to_success_and_download(sdk, celery_worker):
    from atelier_client.api.jobs import jobs_job_events
    from atelier_client.api.quantization import quantization_create_quantization_job, quantization_download_artifact
    from atelier_client.models import (
        BudgetConfig,
        CalibrationConfig,
        JobOut,
        QuantizationJobRequest,
        QuantizationJobRequestSignal,
    )
    from atelier_client.types import File

    # The cheapest job that still exports a model: the SDK round trip is under test, not MPQ-Diff.
    body = QuantizationJobRequest(model="tiny:unet2d", num_inference_steps=2, eval_seeds=[1], weight_bits=[4, 8],
                                  act_bits=[8], calibration=CalibrationConfig(n=2, sampled_steps=1),
                                  signal=QuantizationJobRequestSignal.UNIFORM,
                                  budget=BudgetConfig(avg_weight_bits=6, avg_act_bits=8))
    accepted = quantization_create_quantization_job.sync_detailed(client=sdk, body=body)
    assert accepted.status_code == 202 and isinstance(accepted.parsed, JobOut)
    assert accepted.headers["location"] == f"/v1/jobs/{accepted.parsed.id}"
    job = poll(sdk, accepted.parsed.id)
    assert job.status == "succeeded", job.error
    assert job.kind == "quantization.quantize" and job.progress == pytest.approx(1.0)
    assert job.result["avg_weight_bits"] <= 6 + 1e-9

    artifact_id = job.result["artifact_url"].rsplit("/", 1)[-1]
    download = quantization_download_artifact.sync(artifact_id, client=sdk)
    assert isinstance(download, File)
    names = zipfile.ZipFile(io.BytesIO(download.payload.read())).namelist()
    assert any(name.endswith(".safetensors") for name in names)

    events = jobs_job_events.sync(job.id, client=sdk, poll_s=0.1)  # a finished job: the stream ends at once
    assert isinstance(events, str) and "event: progress" in events and "event: end" in events


def test_training_job_records_its_result(sdk, celery_worker, tiny_dataset, suffix):
    from atelier_client.api.selection import selection_create_dataset, selection_create_model, selection_list_results
    from atelier_client.api.training import training_create_training_job, training_list_training_runs
    from atelier_client.models import DatasetIn, JobOut, ModelIn, TrainingJobRequest, TrainingJobRequestMode

    model, dataset = f"tiny-cond-{suffix}", f"shapes-{suffix}"
    selection_create_model.sync(client=sdk, body=ModelIn(name=model, ref="tiny:unet2d-condition"))
    selection_create_dataset.sync(client=sdk, body=DatasetIn(name=dataset, uri=tiny_dataset))
    accepted = training_create_training_job.sync(client=sdk, body=TrainingJobRequest(
        model=model, dataset=dataset, mode=TrainingJobRequestMode.MEMLEAN, steps=2, batch_size=2, eval_size=2,
        num_samples=0))
    assert isinstance(accepted, JobOut) and accepted.status in ("queued", "running")
    job = poll(sdk, accepted.id)
    assert job.status == "succeeded", job.error
    assert job.result["steps_done"] == 2 and job.result["final_val_loss"] > 0
    recorded = selection_list_results.sync(client=sdk, dataset=dataset)
    assert [(r.model, r.metric, r.job_id) for r in recorded] == [(model, "val_loss", job.id)]
    runs = training_list_training_runs.sync(client=sdk)
    assert any(run.job_id == job.id for run in runs)


def test_cancel_a_job(sdk, celery_worker, tiny_dataset):
    from atelier_client.api.jobs import jobs_cancel_job
    from atelier_client.api.training import training_create_training_job
    from atelier_client.models import JobOut, Problem, TrainingJobRequest

    accepted = training_create_training_job.sync(client=sdk, body=TrainingJobRequest(
        model="tiny:unet2d", dataset=tiny_dataset, steps=400, batch_size=2, eval_size=2, num_samples=0))
    assert isinstance(accepted, JobOut)
    cancelled = jobs_cancel_job.sync_detailed(accepted.id, client=sdk)
    assert cancelled.status_code == 202 and isinstance(cancelled.parsed, JobOut)
    # Queued: cancelled at once; already running: asked to stop at its next step.
    assert cancelled.parsed.status == "cancelled" or cancelled.parsed.cancel_requested
    job = poll(sdk, accepted.id)
    assert job.status == "cancelled"
    again = jobs_cancel_job.sync(accepted.id, client=sdk)
    assert isinstance(again, Problem) and again.status == 409
