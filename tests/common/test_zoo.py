"""The T2I zoo (services.common.diffusion.zoo): specs, sizes, target datasets, pretraining."""
import dataclasses
import hashlib
import json

import pytest
import torch

from services.common.diffusion import (
    SYNTHETIC_DOMAINS,
    load_bundle,
    load_imagefolder,
    render_synthetic,
    zoo,
)

torch.set_num_threads(1)


def _digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# ------------------------------------------------------------------------------------------- models
def test_ten_models_with_unique_names_kinds_and_distinct_sources():
    assert len(zoo.ZOO_MODELS) == 10
    assert len({m.name for m in zoo.ZOO_MODELS}) == 10
    assert len({m.seed for m in zoo.ZOO_MODELS}) == 10
    # one denoiser family, so pretraining data, not the family, decides (5 DiTs lost even at home)
    assert {m.kind for m in zoo.ZOO_MODELS} == {"unet2d-condition"}
    sources = [d for m in zoo.ZOO_MODELS for d in m.source_domains]
    assert len(sources) == len(set(sources)) == 10
    assert all(d in SYNTHETIC_DOMAINS for d in sources)
    assert len({m.architecture for m in zoo.ZOO_MODELS}) == 10
    # several families, not ten palettes of one
    assert len({SYNTHETIC_DOMAINS[d].family for d in sources}) >= 6
    # architectures differ: no two denoiser configs are the same
    configs = {json.dumps(m.to_dict()["overrides"], sort_keys=True) + m.kind for m in zoo.ZOO_MODELS}
    assert len(configs) == 10


def test_parameter_counts_within_30_percent_and_in_range():
    totals = {m.name: zoo.parameter_counts(m)["total"] for m in zoo.ZOO_MODELS}
    assert all(500_000 <= n <= 2_000_000 for n in totals.values()), totals
    assert max(totals.values()) <= 1.3 * min(totals.values()), totals


@pytest.mark.parametrize("spec", zoo.ZOO_MODELS, ids=lambda m: m.name)
def test_each_model_builds_deterministically_and_predicts_noise(spec):
    a, b = zoo.build_zoo_model(spec), zoo.build_zoo_model(spec)
    assert a.conditional and a.kind == spec.kind and a.image_size == zoo.RESOLUTION
    sa, sb = a.denoiser.state_dict(), b.denoiser.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        cond = a.encode_prompts(["a red circle on a blue background", "3 wavy horizontal red and orange bands"])
        eps = a.predict_noise(x, torch.tensor([10, 700]), cond)
    assert eps.shape == x.shape and torch.isfinite(eps).all()


def test_different_seeds_give_different_weights_for_equal_configs():
    spec = zoo.model_spec("zoo-unet-heads16")
    other = dataclasses.replace(spec, name="zoo-unet-heads16-reseeded", seed=spec.seed + 1000)
    assert zoo.parameter_counts(spec)["total"] == zoo.parameter_counts(other)["total"]
    pa = torch.cat([p.flatten() for p in zoo.build_zoo_model(spec).denoiser.parameters()])
    pb = torch.cat([p.flatten() for p in zoo.build_zoo_model(other).denoiser.parameters()])
    assert not torch.equal(pa, pb)


# ------------------------------------------------------------------------------------------ datasets
def test_32_targets_on_distinct_domains_none_a_source():
    targets = zoo.TARGET_DATASETS
    assert len(targets) == 32
    assert len({t.name for t in targets}) == 32
    domains = [t.domain for t in targets]
    assert len(set(domains)) == 32 and all(d in SYNTHETIC_DOMAINS for d in domains)
    assert not set(domains) & set(zoo.SOURCE_DOMAINS)
    near = [t for t in targets if t.near is not None]
    assert {t.near for t in near} == set(zoo.SOURCE_DOMAINS)  # every source has a nearby target
    assert 4 <= len(targets) - len(near)  # and some targets are far from every source
    for t in near:  # "near" means same renderer family
        assert SYNTHETIC_DOMAINS[t.domain].family == SYNTHETIC_DOMAINS[t.near].family


def test_target_domains_render_differently():
    # distinct names could still hide identical renderers: the pixel statistics must differ too
    stats = {}
    for t in zoo.TARGET_DATASETS:
        arr, captions = render_synthetic(t.domain, n=6, seed=0, resolution=16)
        stats[t.domain] = arr.astype("float64").mean(axis=(0, 1, 2)).round(1).tobytes() + arr[0].tobytes()
        assert all(c and len(c.split()) >= 3 for c in captions)
    assert len(set(stats.values())) == 32


def test_captions_describe_content():
    _, caps = render_synthetic("digits-neon", n=8, seed=1)
    assert all("digit" in c and "black" in c for c in caps)
    _, caps = render_synthetic("photo-flower", n=8, seed=1)
    assert all("flower" in c for c in caps)
    _, caps = render_synthetic("waves-cool", n=8, seed=1)
    assert all("wavy" in c for c in caps)
    _, caps = render_synthetic("dots-dense-warm", n=8, seed=1)
    assert all("dots on a white background" in c for c in caps)


def test_target_generation_is_deterministic(tmp_path):
    spec = zoo.dataset_spec("target-photo-flower")
    small = zoo.ZooDataset(spec.name, spec.domain, 24, spec.seed)
    a = zoo.generate_target_dataset(small, tmp_path / "a")
    b = zoo.generate_target_dataset(small, tmp_path / "b")
    assert _digest(a) == _digest(b)
    ds = load_imagefolder(a, resolution=16)
    assert len(ds) == 24 and "flower" in ds.texts[0]
    other = zoo.generate_target_dataset(zoo.ZooDataset("x", spec.domain, 24, spec.seed + 1), tmp_path / "c")
    assert _digest(other) != _digest(a)


def test_all_targets_generate_at_full_size(tmp_path):
    spec = zoo.TARGET_DATASETS[-1]
    folder = zoo.generate_target_dataset(spec, tmp_path / "t")
    assert len(load_imagefolder(folder, resolution=16)) == spec.n == zoo.TARGET_N


# ---------------------------------------------------------------------------------------- pretraining
def test_short_pretrain_lowers_val_loss_and_writes_loadable_bundle(tmp_path):
    spec = zoo.model_spec("zoo-unet-deep3mid")  # the cheapest denoiser: no attention at 16x16
    stats = zoo.pretrain_zoo_model(spec, tmp_path / "model", steps=20, batch_size=8, lr=2e-3, n_source=64,
                                   eval_size=8, eval_repeats=2, check=False)
    assert stats["final_val_loss"] < stats["initial_val_loss"]
    assert stats["seconds"] > 0 and stats["parameters"]["total"] == zoo.parameter_counts(spec)["total"]
    loaded = load_bundle(str(tmp_path / "model"))
    assert loaded.kind == "unet2d-condition" and loaded.conditional
    meta = json.loads((tmp_path / "model" / "zoo.json").read_text())
    assert meta["spec"]["name"] == spec.name and meta["pretraining"]["steps"] == 20
    # the saved weights are the trained ones, not the random init
    init = zoo.build_zoo_model(spec).denoiser.state_dict()
    saved = loaded.denoiser.state_dict()
    assert any(not torch.equal(init[k], saved[k]) for k in init)


def test_pretraining_runs_rounds_until_recognisable_and_a_later_call_continues_the_saved_model(tmp_path, monkeypatch):
    spec = zoo.model_spec("zoo-unet-deep3mid")
    verdicts = []  # the check's answers, in order (the real check is tested below; this tests the rounds)
    monkeypatch.setattr(zoo, "recognisability", lambda *a, **k: {"recognisable": verdicts.pop(0)})
    tiny = dict(steps=3, batch_size=4, lr=2e-3, n_source=16, eval_size=4, eval_repeats=1)
    with pytest.raises(ValueError, match="recognisability check"):
        zoo.pretrain_zoo_model(spec, tmp_path / "x", max_rounds=2, check=False, **tiny)

    verdicts[:] = [False]
    first = zoo.pretrain_zoo_model(spec, tmp_path / "resumed", max_rounds=1, **tiny)
    assert first["rounds_used"] == 1 and first["total_steps"] == 3 and not verdicts
    verdicts[:] = [False, True]
    later = zoo.pretrain_zoo_model(spec, tmp_path / "resumed", max_rounds=3, **tiny)
    assert later["rounds_used"] == 3 and later["recognisability"]["recognisable"] and not verdicts
    assert [r["seed"] for r in later["rounds"]] == [0, 1, 2]  # a new data order every round
    # round 2 started from the saved round-1 weights: its starting loss is round 1's final loss
    assert later["rounds"][1]["initial_val_loss"] == pytest.approx(later["rounds"][0]["final_val_loss"], rel=1e-6)
    assert zoo.pretraining_settles(later, max_rounds=3) and zoo.pretraining_settles(later, max_rounds=5)
    # nothing is left to do: no round runs, the saved stats come back
    again = zoo.pretrain_zoo_model(spec, tmp_path / "resumed", max_rounds=3, **tiny)
    assert again["rounds"] == later["rounds"]
    # another recipe starts afresh
    verdicts[:] = [True]
    other = zoo.pretrain_zoo_model(spec, tmp_path / "resumed", max_rounds=3, **{**tiny, "lr": 1e-3})
    assert other["rounds_used"] == 1 and other["rounds"][0]["seed"] == 0

    # one call of two rounds makes the same model as one round and a continuation
    verdicts[:] = [False, False]
    zoo.pretrain_zoo_model(spec, tmp_path / "straight", max_rounds=2, **tiny)
    verdicts[:] = [False]
    zoo.pretrain_zoo_model(spec, tmp_path / "split", max_rounds=1, **tiny)
    verdicts[:] = [False]
    zoo.pretrain_zoo_model(spec, tmp_path / "split", max_rounds=2, **tiny)
    straight = load_bundle(str(tmp_path / "straight")).denoiser.state_dict()
    split = load_bundle(str(tmp_path / "split")).denoiser.state_dict()
    assert all(torch.equal(straight[k], split[k]) for k in straight)


def test_samples_are_judged_by_the_source_they_resemble():
    shapes, _ = zoo._domain_images("shapes", 64, seed=5)  # stand-ins for a shapes model's samples
    verdict = zoo.judge_samples(shapes, ("shapes",), num_real=128)
    assert verdict["recognisable"] and verdict["fid_own"] < verdict["fid_nearest_other"]
    assert verdict["own_fraction"] > 2 / len(zoo.SOURCE_DOMAINS)  # per image: twice chance at least
    assert set(verdict["fid_by_domain"]) == set(zoo.SOURCE_DOMAINS)
    stripes, _ = zoo._domain_images("stripes", 64, seed=5)  # the same judge, samples of another source
    wrong = zoo.judge_samples(stripes, ("shapes",), num_real=128)
    assert not wrong["recognisable"] and wrong["nearest_other"] == "stripes"
    assert wrong["own_fraction"] < verdict["own_fraction"]


def test_budget_and_time_estimate_are_consistent():
    budget = zoo.recommended_budget()
    assert budget.mode == "memlean"
    cfg = budget.training_config(seed=3)
    cfg.validate()
    assert cfg.steps == budget.steps and cfg.eval_seed == budget.eval_seed and cfg.num_samples == 0
    assert cfg.device == "cpu" and budget.training_config(seed=3, device="cuda").device == "cuda"
    assert zoo.pair_run_minutes(budget, 30.0) == pytest.approx(320 * 30 / 2 / 60)
