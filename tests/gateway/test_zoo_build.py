"""`atelier zoo build` on a reduced plan: jobs through the API, resumable journal, benchmark-format output."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from sqlalchemy import text

from services.common.diffusion import zoo
from services.gateway import zoobuild
from services.selection.mc.evaluate import selection_metrics
from services.selection.mc.records import load_benchmark_dir

pytestmark = pytest.mark.integration


def test_full_plan_puts_noise_targets_first_and_records_only_seed_zero():
    plan = zoobuild.make_plan()
    runs = plan.runs
    assert len(runs) == 10 * 32 + 10 * len(zoobuild.NOISE_TARGETS) * (len(zoobuild.NOISE_SEEDS) - 1)
    assert len(set(runs)) == len(runs)
    head = runs[: 10 * 3 * len(zoobuild.NOISE_TARGETS)]
    assert {r.dataset for r in head} == set(zoobuild.NOISE_TARGETS)
    assert [r for r in runs if r.recorded] == [r for r in runs if r.seed == 0]
    body = plan.training_body(runs[0])
    assert body["mode"] == "memlean" and body["max_images"] == zoo.TARGET_N and body["eval_repeats"] == 4
    # The same eval set and data order for every model within a seed: only model and seed vary.
    bodies = [plan.training_body(r) for r in runs if r.dataset == runs[0].dataset and r.seed == 0]
    assert len({tuple(sorted((k, v) for k, v in b.items() if k != "model")) for b in bodies}) == 1


def test_summary_counts_best_models_and_compares_noise_with_spread():
    plan = zoobuild.make_plan(models="zoo-unet-lowattn,zoo-unet-heads16", targets="target-shapes-warm,target-waves-cool")
    plan.noise_targets = ("target-shapes-warm",)
    rows = {}
    for seed, jitter in ((0, 0.0), (1, 0.001), (2, -0.001)):
        rows[("zoo-unet-lowattn", "target-shapes-warm", seed)] = {"value": 0.10 + jitter}
        rows[("zoo-unet-heads16", "target-shapes-warm", seed)] = {"value": 0.20 - jitter}
    rows[("zoo-unet-lowattn", "target-waves-cool", 0)] = {"value": 0.3}
    rows[("zoo-unet-heads16", "target-waves-cool", 0)] = {"value": 0.2}
    summary = zoobuild.summarise(rows, plan)
    assert summary["best_model_counts"] == {"zoo-unet-lowattn": 1, "zoo-unet-heads16": 1}
    assert summary["max_best_share"] == 0.5 and summary["non_trivial"] is False  # 50% > 40%
    noise = summary["noise"]["target-shapes-warm"]
    assert noise["best"] == "zoo-unet-lowattn" and noise["seeds"] == 3
    assert noise["repeat_std"] == pytest.approx(0.001)
    assert noise["gap_over_noise"] == pytest.approx(100.0)


def test_a_resumed_build_pretrains_only_models_with_pairs_left(tmp_path):
    plan = zoobuild.make_plan(models="zoo-unet-lowattn,zoo-unet-heads16", targets="target-shapes-warm",
                              pretrain_steps=1000, pretrain_rounds=1)
    plan.noise_targets = ()
    plan.runs = plan.pair_runs()
    journal = tmp_path / "runs.jsonl"
    journal.write_text(json.dumps({"model": "zoo-unet-lowattn", "dataset": "target-shapes-warm", "seed": 0,
                                   "value": 0.1}) + "\n")
    names = lambda specs: [m.name for m in specs]  # noqa: E731
    assert names(zoobuild.models_to_pretrain(plan, tmp_path / "models")) == ["zoo-unet-lowattn", "zoo-unet-heads16"]
    assert names(zoobuild.models_to_pretrain(plan, tmp_path / "models", journal)) == ["zoo-unet-heads16"]
    cached = tmp_path / "models" / "zoo-unet-heads16" / "zoo.json"
    cached.parent.mkdir(parents=True)
    cached.write_text(json.dumps({"spec": zoo.model_spec("zoo-unet-heads16").to_dict(),
                                  "pretraining": {"steps": 1000, "batch_size": 32, "lr": 0.001, "final_val_loss": 0.04,
                                                  "recognisability": {"recognisable": True}}}))
    assert zoobuild.models_to_pretrain(plan, tmp_path / "models", journal) == []
    # rows of a retired model stay in the journal but not in this plan's outputs
    rows = {("zoo-dit-wide", "target-shapes-warm", 0): {"value": 0.05},
            ("zoo-unet-lowattn", "target-shapes-warm", 0): {"value": 0.1}}
    assert list(zoobuild.plan_rows(rows, plan)) == [("zoo-unet-lowattn", "target-shapes-warm", 0)]


def test_pairs_and_cached_models_of_another_pretraining_recipe_are_not_reused(tmp_path):
    assert zoobuild.make_plan().pretrain_steps == zoo.PRETRAIN_STEPS == 4000
    assert zoobuild.make_plan().budget == zoo.recommended_budget()
    fifty = zoobuild.make_plan(models="zoo-unet-lowattn", targets="target-shapes-warm", pair_steps=50)
    assert fifty.budget.steps == 50 and fifty.budget_hash != zoobuild.make_plan().budget_hash
    plan = zoobuild.make_plan(models="zoo-unet-lowattn,zoo-unet-heads16", targets="target-shapes-warm",
                              pretrain_steps=1000, pretrain_rounds=1)
    plan.noise_targets = ()
    plan.runs = plan.pair_runs()
    budget = plan.budget.to_dict()
    legacy = {"model": "zoo-unet-lowattn", "dataset": "target-shapes-warm", "seed": 0, "value": 0.1, "budget": budget}
    journal = tmp_path / "runs.jsonl"
    journal.write_text(json.dumps(legacy) + "\n")
    # rows without a recipe were all measured with the 1000-step pretraining
    assert list(zoobuild.read_journal(journal, plan)) == [("zoo-unet-lowattn", "target-shapes-warm", 0)]
    longer = zoobuild.make_plan(models="zoo-unet-lowattn,zoo-unet-heads16", targets="target-shapes-warm",
                                pretrain_steps=4000)
    longer.noise_targets = ()
    longer.runs = longer.pair_runs()
    assert longer.recipe_hash("zoo-unet-lowattn") != plan.recipe_hash("zoo-unet-lowattn")
    assert zoobuild.read_journal(journal, longer) == {}
    assert [m.name for m in zoobuild.models_to_pretrain(longer, tmp_path / "models", journal)] == [
        "zoo-unet-lowattn", "zoo-unet-heads16"]
    # a row of the new recipe is the one that counts for it, even after the old row; the old plan keeps its own
    remeasured = {**legacy, "value": 0.08, "model_recipe": longer.recipe_hash("zoo-unet-lowattn")}
    with journal.open("a") as fh:
        fh.write(json.dumps(remeasured) + "\n")
    assert [r["value"] for r in zoobuild.read_journal(journal, longer).values()] == [0.08]
    assert [r["value"] for r in zoobuild.read_journal(journal, plan).values()] == [0.1]
    # another budget is another measurement
    other = {**legacy, "budget": {**budget, "steps": budget["steps"] + 1}}
    assert zoobuild.plan_rows({("zoo-unet-lowattn", "target-shapes-warm", 0): other}, plan) == {}
    # a cached model pretrained with other steps is pretrained again
    cached = tmp_path / "models" / "zoo-unet-heads16" / "zoo.json"
    cached.parent.mkdir(parents=True)
    cached.write_text(json.dumps({"spec": zoo.model_spec("zoo-unet-heads16").to_dict(),
                                  "pretraining": {"steps": 1000, "batch_size": 32, "lr": 0.001,
                                                  "recognisability": {"recognisable": True}}}))
    assert zoobuild.cached_as_planned(plan, tmp_path / "models", "zoo-unet-heads16")
    assert not zoobuild.cached_as_planned(longer, tmp_path / "models", "zoo-unet-heads16")
    # and so is one whose spec changed under the same name
    changed = tmp_path / "models" / "zoo-unet-lowattn" / "zoo.json"
    changed.parent.mkdir(parents=True)
    changed.write_text(json.dumps({"spec": {**zoo.model_spec("zoo-unet-lowattn").to_dict(), "seed": 1},
                                   "pretraining": {"steps": 1000, "batch_size": 32, "lr": 0.001}}))
    assert not zoobuild.cached_as_planned(plan, tmp_path / "models", "zoo-unet-lowattn")


def test_a_cached_model_counts_for_every_max_rounds_that_would_have_stopped_where_it_did(tmp_path):
    def cache(name, rounds):
        path = tmp_path / name / "zoo.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"spec": zoo.model_spec(name).to_dict(), "pretraining": {
            "steps": 4000, "batch_size": 32, "lr": 0.001, "max_rounds": len(rounds),
            "rounds": [{"recognisability": {"recognisable": ok}} for ok in rounds]}}))

    one, two = (zoobuild.make_plan(models="zoo-unet-lowattn,zoo-unet-heads16", targets="target-shapes-warm",
                                   pretrain_rounds=r) for r in (1, 2))
    assert one.pretraining["max_rounds"] == 1 and two.pretraining["max_rounds"] == 2 == zoo.PRETRAIN_MAX_ROUNDS
    assert one.recipe_hash("zoo-unet-lowattn") != two.recipe_hash("zoo-unet-lowattn")
    cache("zoo-unet-lowattn", [True])  # recognisable after round 1: the same model whatever the cap
    assert zoobuild.cached_as_planned(one, tmp_path, "zoo-unet-lowattn")
    assert zoobuild.cached_as_planned(two, tmp_path, "zoo-unet-lowattn")
    cache("zoo-unet-heads16", [False])  # stopped at a cap of 1: a cap of 2 trains it on
    assert zoobuild.cached_as_planned(one, tmp_path, "zoo-unet-heads16")
    assert not zoobuild.cached_as_planned(two, tmp_path, "zoo-unet-heads16")
    assert [m.name for m in zoobuild.models_to_pretrain(two, tmp_path)] == ["zoo-unet-heads16"]
    cache("zoo-unet-heads16", [False, False])  # two rounds are more than a cap of 1 makes
    assert zoobuild.cached_as_planned(two, tmp_path, "zoo-unet-heads16")
    assert not zoobuild.cached_as_planned(one, tmp_path, "zoo-unet-heads16")
    # the legacy rows (1000 steps, one round) count only for that recipe
    legacy = zoobuild.make_plan(models="zoo-unet-lowattn", targets="target-shapes-warm", pretrain_steps=1000,
                                pretrain_rounds=1)
    assert legacy.pretraining == zoobuild.LEGACY_PRETRAINING
    row = {"model": "zoo-unet-lowattn", "dataset": "target-shapes-warm", "seed": 0, "value": 0.1}
    assert legacy.measured_here(row)
    assert not zoobuild.make_plan(models="zoo-unet-lowattn", pretrain_steps=1000).measured_here(row)


def test_rel_at_1_of_a_lower_is_better_metric_is_best_loss_over_chosen_loss():
    loss = np.array([0.20, 0.10, 0.40])
    m = selection_metrics(np.array([1.0, 0.0, 0.5]), -loss)  # quality arrives oriented: -loss
    assert m["rel@1"] == pytest.approx(0.10 / 0.20)
    assert m["hit@1"] == 0.0
    assert selection_metrics(np.array([0.0, 1.0, 0.5]), -loss)["rel@1"] == pytest.approx(1.0)


def test_write_only_refuses_a_service_without_the_profiles_instead_of_writing_blanks(api, tmp_path):
    from services.common.db import session_scope

    with session_scope() as session:
        session.execute(text("TRUNCATE models, datasets, finetune_results, dataset_similarity, graph_versions CASCADE"))
    plan = zoobuild.make_plan(models="zoo-unet-deep3", targets="target-shapes-warm", pretrain_steps=1000)
    out = tmp_path / "out"
    out.mkdir()
    (out / "records.csv").write_text("kept\n")
    with pytest.raises(RuntimeError, match="not profiled"):
        zoobuild.write_outputs(out, plan, api, wall_seconds=None)
    assert (out / "records.csv").read_text() == "kept\n" and not (out / "summary.json").exists()


def test_reduced_build_through_the_api_is_resumable_and_loads_as_a_benchmark(api, celery_worker, tmp_path):
    from services.common.db import session_scope

    with session_scope() as session:
        session.execute(text("TRUNCATE models, datasets, finetune_results, dataset_similarity, graph_versions CASCADE"))
    plan = zoobuild.make_plan(models="zoo-unet-deep3mid,zoo-unet-deep3",
                              targets="target-shapes-warm,target-waves-cool")
    plan.budget = replace(plan.budget, steps=2, batch_size=4, eval_size=4, eval_repeats=1, n_images=24)
    plan.num_samples, plan.sample_steps = 4, 2
    plan.noise_targets, plan.noise_seeds = ("target-shapes-warm",), (0, 1)
    plan.runs = plan.pair_runs()
    models_dir = tmp_path / "models"
    for spec in plan.models:  # untrained weights are enough to exercise the pipeline
        zoo.build_zoo_model(spec).save(models_dir / spec.name)
    folders = zoobuild.ensure_datasets(plan, tmp_path / "data")
    assert set(folders) == {"target-shapes-warm", "target-waves-cool", "source-gradients", "source-digits"}

    zoobuild.register(api, plan, models_dir, folders)
    zoobuild.register(api, plan, models_dir, folders)  # idempotent
    zoobuild.profile_all(api, sorted(folders), say=lambda _: None)
    out = tmp_path / "out"
    out.mkdir()
    zoobuild.run_pairs(api, plan, out / "runs.jsonl", say=lambda _: None)
    journal = zoobuild.read_journal(out / "runs.jsonl")
    assert set(journal) == {(r.model, r.dataset, r.seed) for r in plan.runs} and len(journal) == 6
    assert all(row["fid"] is not None and row["value"] > 0 for row in journal.values())

    said = []
    zoobuild.run_pairs(api, plan, out / "runs.jsonl", say=said.append)  # a rerun submits nothing
    assert said == ["pairs: 6 planned, 6 already measured, 0 to run"]

    # Only seed 0 became graph edges.
    results = api.get("/v1/selection/results", params={"limit": 100}).json()
    assert len(results) == 4 and {r["source"] for r in results} == {"measured"}

    summary = zoobuild.write_outputs(out, plan, api, wall_seconds=1.0)
    assert summary["pairs_measured"] == 6 and "target-shapes-warm" in summary["noise"]
    loaded = load_benchmark_dir(out)
    zoo_rows = loaded[0] if isinstance(loaded, tuple) else loaded
    assert {(r.metric, r.higher_is_better) for r in zoo_rows.results} == {("val_loss", False)}
    assert len(zoo_rows.results) == 4
    assert zoo_rows.models["zoo-unet-deep3mid"].pretraining_data == "source-gradients"
    dist = zoo_rows.distance_matrix(include_external=True)
    assert np.isfinite(dist.loc["target-shapes-warm", "source-gradients"])
    # one file per profile modality beside the combined one, whose distance is their mean
    assert zoo_rows.similarity_methods() == ["atelier_profile", "atelier_profile_caption", "atelier_profile_image"]
    each = {m: zoo_rows.distance_matrix(include_external=True, method=m) for m in zoo_rows.similarity_methods()}
    pair = ("target-shapes-warm", "target-waves-cool")
    assert each["atelier_profile"].loc[pair] == pytest.approx(
        (each["atelier_profile_image"].loc[pair] + each["atelier_profile_caption"].loc[pair]) / 2, rel=1e-6)
    assert dist.loc[pair] == pytest.approx(each["atelier_profile"].loc[pair], rel=1e-6)


def test_committed_zoo_is_the_default_plan_measured_whole():
    """The committed models and records are what `atelier zoo build` with its defaults makes: a build
    on a fresh clone pretrains nothing and runs no pair (a spec, recipe or budget change without a
    rebuild fails here), and records.csv holds every seed-0 pair of the journal, metric and direction named."""
    import csv

    out = zoobuild.DEFAULT_OUT
    plan = zoobuild.make_plan()
    assert zoobuild.models_to_pretrain(plan, out / "models") == []
    assert all(zoobuild.cached_as_planned(plan, out / "models", m.name) for m in plan.models)
    measured = zoobuild.read_journal(out / "runs.jsonl", plan)
    assert set(measured) == {(r.model, r.dataset, r.seed) for r in plan.runs}
    with (out / "records.csv").open() as fh:
        records = list(csv.DictReader(fh))
    assert len(records) == len(plan.models) * len(plan.targets)
    assert {(r["metric"], r["higher_is_better"]) for r in records} == {(zoobuild.METRIC, "false")}
    journal_values = {(m, d): row["value"] for (m, d, s), row in measured.items() if s == 0}
    assert {(r["model"], r["finetuned_dataset"]): float(r["value"]) for r in records} == pytest.approx(journal_values)
