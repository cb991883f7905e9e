"""The training benchmark's own checks and report (the timed runs live behind `atelier bench training`)."""

from __future__ import annotations

import json

import pytest

from services.training import bench

# a UNet2DModel of a few hundred thousand parameters, so that the whole benchmark runs in seconds
TINY_MODEL = dict(sample_size=32, block_out_channels=(32, 64), layers_per_block=1,
                  down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                  norm_num_groups=8, attention_head_dim=16)


@pytest.mark.timeout(300)
def test_every_mode_runs_in_its_own_process_and_the_report_compares_them(tmp_path, capsys):
    out = tmp_path / "t.json"
    result = bench.run_benchmark(quick=True, out=out, model=TINY_MODEL)
    assert json.loads(out.read_text())["modes"] == result["modes"]
    assert set(result["modes"]) == set(bench.MODES) and result["exact"] is True
    assert result["num_parameters"] < 2_000_000 and tuple(result["model"]["block_out_channels"]) == (32, 64)
    for row in result["modes"].values():
        assert row["peak_bytes"] > 0 and row["step_seconds"] > 0 and row["final_loss"] > 0
    assert result["ratios"]["memlean_vs_amp_peak"] == pytest.approx(
        result["modes"]["memlean"]["peak_bytes"] / result["modes"]["amp"]["peak_bytes"])
    assert set(result["loss_vs_amp"]) == {"memlean", "memlean_bf16_states", "fp32"}
    table = capsys.readouterr().out
    assert all(any(line.startswith(mode) for line in table.splitlines()) for mode in bench.MODES)


def test_in_benchmark_exactness_check_passes():
    assert bench.exactness_check(steps=3) is True


def test_table_reports_ratios_cuda_agreement_and_the_24gb_probe():
    row = {"peak_bytes": 100 * 2**20, "step_seconds": 0.05, "step_cpu_seconds": 0.05, "final_loss": 0.43}
    result = {
        "device": "cuda", "threads": None, "num_parameters": 27_200_000, "batch_size": 2, "resolution": 32,
        "steps": 20, "exact": True,
        "modes": {"amp": row, "memlean": {**row, "peak_bytes": 75 * 2**20, "step_seconds": 0.045}},
        "loss_vs_amp": {"memlean": {"mean": -1e-4, "se": 1e-4}},
        "cuda_kernel_agreement": {
            "compiled": {"bit_identical": False, "max_ulp": 12, "max_abs_diff": 1e-7, "fraction_differing": 0.01},
        },
        "largest_in_24gb": {
            "memlean": {"block_out_channels_base": 448, "parameters": 1_670_000_000, "peak_bytes": 19.3 * 2**30},
            "amp": {},
        },
    }
    table = bench.format_table(result)
    memlean_line = next(line for line in table.splitlines() if line.startswith("memlean"))
    assert "0.750" in memlean_line and "0.900" in memlean_line  # memory and time vs amp
    assert "compiled) vs torch AdamW(foreach=False): bit-identical=False max ulp=12" in table
    assert "memlean: base width 448, 1.67B parameters, peak 19.3 GiB" in table
    assert "amp: none of the widths tried fit" in table
