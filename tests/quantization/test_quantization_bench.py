"""`atelier bench quantization` end to end at a tiny size (the measured runs use QUICK or FULL)."""

from __future__ import annotations

import json

import pytest
import torch

from services.quantization import bench

TINY = bench.BenchSizes(model_seeds=(0,), run_seeds=(1,), train_steps=40, t_steps=4, k_steps=2, eval_samples=2,
                        random_draws=1, calibration_samples=2, quality_samples=4, profiling_samples=2)


def test_the_presets_are_the_sizes_the_committed_runs_used():
    assert bench.QUICK == bench.BenchSizes(model_seeds=(0,), run_seeds=(1, 2), train_steps=1500, t_steps=50, k_steps=8,
                                           eval_samples=16, random_draws=3, calibration_samples=8)
    assert bench.FULL.model_seeds == (0, 1) and bench.FULL.run_seeds == (1, 2, 3) and bench.FULL.eval_samples == 32


@pytest.fixture
def keeps_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # the bench sets one thread on CPU; the tests after this one keep theirs


@pytest.mark.timeout(300)
@pytest.mark.usefixtures("keeps_torch_threads")
def test_every_allocator_is_compared_at_the_fixed_allocation_bytes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ATELIER_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "q.json"
    result = bench.run_benchmark(quick=True, sizes=TINY, out=out)
    assert json.loads(out.read_text())["budgets"] == result["budgets"]
    assert result["settings"]["t_steps"] == 4 and result["runs"] == 1 and not result["models"][0]["cached"]
    assert (tmp_path / "q_model0_samples.png").is_file()
    for bits, per in result["budgets"].items():
        assert set(per) == {"fixed", "uniform", "orthogonality", "orthogonality_pos", "orthogonality_beta1",
                            "sensitivity", "hybrid", "random"}, bits
        for name, m in per.items():  # equal weight bytes: no allocator may spend more than fixed precision
            assert m["weight_bytes"] <= per["fixed"]["weight_bytes"], (bits, name)
            assert m["mse"] >= 0 and m["mse_ratio_to_fixed_per_run"][0] == pytest.approx(m["mse"] / per["fixed"]["mse"])
    assert set(result["goals"]) == {"default_le_half_fixed", "default_beats_all", "profiling_cost_ratio_le_0.2",
                                    "profiling_spearman_ge_0.95"}
    table = capsys.readouterr().out
    assert f"{bench.DEFAULT_SIGNAL} *" in table and "Goals:" in table
    again = bench.run_benchmark(quick=True, sizes=TINY, progress_print=False)  # the trained model is cached
    assert again["models"][0]["cached"]
