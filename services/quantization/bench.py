"""MPQ-Diff benchmark: every allocator at equal weight bytes on denoisers trained in-process.

What it measures (all on the device given, torch threads = 1 on CPU):
  * a small UNet2DModel trained on generated 16x16 "shapes" images (cached under
    $ATELIER_CACHE or ~/.cache/atelier, bench/quantization/), with FID of its samples against the data
    next to an untrained copy's, to show it learned something;
  * at average 4 and 3 weight bits (first/last layer at 8, activations at 8 bits, equal weight bytes =
    the fixed-precision allocation's bytes), each allocator's final-sample error against the FP samples
    on the same seeds after T-step DDIM: MSE, PSNR, FID (FP samples as reference);
  * Spearman(orthogonality importance, measured sensitivity) over the layers where both are defined;
  * profiling cost (Gram capture + metric) at K uniformly sampled steps vs all T, and the Spearman
    between the two importance vectors.
Several runs (models x calibration/eval seeds) are averaged; their spread is reported.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from services.common.hardware import describe_device
from services.quantization.mpq.allocate import budget_to_bytes, solve_allocation, weight_bytes_for
from services.quantization.mpq.calibrate import calibrate
from services.quantization.mpq.importance import QuantTables, compute_signal, orthogonality_matrix
from services.quantization.mpq.pipeline import (
    DEFAULT_SIGNAL,
    QuantizationConfig,
    build_spec,
    image_metrics,
    layer_layout,
    pinned_layers,
    quantized_copy,
)

WEIGHT_BITS = [2, 3, 4, 6, 8]
ACT_BITS = [8]
BUDGETS = (4, 3)
MODEL_CONFIG = {"block_out_channels": (16, 32), "down_block_types": ("DownBlock2D", "AttnDownBlock2D"),
                "up_block_types": ("AttnUpBlock2D", "UpBlock2D")}
DOMAIN = "shapes"


@dataclass(frozen=True)
class BenchSizes:
    """How much the benchmark does: models trained, calibration/evaluation runs, steps and samples."""

    model_seeds: tuple[int, ...] = (0, 1)
    run_seeds: tuple[int, ...] = (1, 2, 3)
    train_steps: int = 1500  # the same cached model for quick and full runs
    t_steps: int = 50
    k_steps: int = 8
    eval_samples: int = 32
    random_draws: int = 5
    calibration_samples: int = 8
    quality_samples: int = 32  # FID of the trained model against the data
    profiling_samples: int = 8


FULL = BenchSizes()
QUICK = replace(FULL, model_seeds=(0,), run_seeds=(1, 2), eval_samples=16, random_draws=3)


def _cache_root() -> Path:
    return Path(os.environ.get("ATELIER_CACHE", "~/.cache/atelier")).expanduser() / "bench" / "quantization"


def _say(enabled: bool, msg: str) -> None:
    if enabled:
        print(f"[bench quantization] {msg}", flush=True)


def train_denoiser(seed: int, *, steps: int, device: str, say=lambda m: None) -> tuple[object, dict]:
    """Train (or load from cache) the benchmark UNet on generated data. Returns (bundle, info)."""
    from services.common.diffusion import build_tiny, load_bundle, render_synthetic

    cache = _cache_root() / f"unet16-32_{DOMAIN}_seed{seed}_steps{steps}_ema"
    meta_file = cache / "train.json"
    if meta_file.is_file():
        info = json.loads(meta_file.read_text())
        info["cached"] = True
        return load_bundle(str(cache), device=device), info
    bundle = build_tiny("unet2d", seed=seed, **MODEL_CONFIG).to(device)
    images, _ = render_synthetic(DOMAIN, n=4096, seed=seed, resolution=16)
    data = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).to(device)
    gen = torch.Generator().manual_seed(seed)
    model = bundle.denoiser
    model.train()
    # EMA weights are what gets sampled: on short CPU runs they give much cleaner samples
    ema = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.995))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.05)
    n_train = bundle.scheduler.config.num_train_timesteps
    start, losses = time.perf_counter(), []
    for step in range(steps):
        idx = torch.randint(0, data.shape[0], (64,), generator=gen)
        x0 = data[idx.to(device)]
        noise = torch.randn(x0.shape, generator=gen).to(device)
        t = torch.randint(0, n_train, (x0.shape[0],), generator=gen).to(device)
        loss = torch.nn.functional.mse_loss(bundle.predict_noise(bundle.scheduler.add_noise(x0, noise, t), t), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        ema.update_parameters(model)
        losses.append(float(loss.detach()))
        if (step + 1) % 100 == 0:
            say(f"train seed {seed}: step {step + 1}/{steps} loss {np.mean(losses[-100:]):.4f}")
    with torch.no_grad():
        for p, p_ema in zip(model.parameters(), ema.module.parameters()):
            p.copy_(p_ema)
        for b, b_ema in zip(model.buffers(), ema.module.buffers()):
            b.copy_(b_ema)
    model.eval()
    info = {"ema_decay": 0.995, "seed": seed, "train_steps": steps, "final_loss": float(np.mean(losses[-100:])),
            "train_seconds": time.perf_counter() - start, "parameters": bundle.num_parameters(), "domain": DOMAIN}
    bundle.save(cache)
    meta_file.write_text(json.dumps(info, indent=2))
    info["cached"] = False
    return bundle, info


def _data_quality(bundle, seed: int, n: int, steps: int) -> dict:
    """FID against the training distribution of the trained model and of an untrained copy."""
    from services.common.diffusion import build_tiny, render_synthetic, sample

    images, _ = render_synthetic(DOMAIN, n=n, seed=10_000 + seed, resolution=16)
    real = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    seeds = list(range(50_000, 50_000 + n))
    trained = sample(bundle, seeds=seeds, num_inference_steps=steps).cpu()
    untrained = sample(build_tiny("unet2d", seed=seed, **MODEL_CONFIG).to(bundle.device), seeds=seeds,
                       num_inference_steps=steps).cpu()
    return {"fid_vs_data": image_metrics(real, trained)["fid"], "fid_untrained_vs_data": image_metrics(real, untrained)["fid"],
            "_grid": torch.cat([trained[:16], real[:16]])}


def _save_grid(images: torch.Tensor, path: Path) -> None:
    """Rows of 8: the model's samples, then data, for a look at what was trained."""
    from PIL import Image

    x = ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    rows = [np.concatenate(list(x[i : i + 8]), 1) for i in range(0, len(x), 8)]
    Image.fromarray(np.concatenate(rows, 0)).resize((8 * 64, len(rows) * 64), Image.NEAREST).save(path)


def _fixed_bits(names, pinned, bits):
    return {n: pinned.get(n, bits) for n in names}


def _evaluate(bundle, tables, weight_bits, record, fp, eval_seeds, steps):
    from services.common.diffusion import sample

    from services.quantization.mpq.allocate import Allocation

    alloc = Allocation(weight_bits, [{n: 8 for n in weight_bits}], 0.0, 0.0)
    q = quantized_copy(bundle, build_spec(tables, alloc, record.groups))
    out = sample(q, seeds=eval_seeds, num_inference_steps=steps).cpu()
    m = image_metrics(fp, out)
    return {"weight_bytes": weight_bytes_for(record.n_params, weight_bits), "mse": m["mse"], "psnr": m["psnr"], "fid": m["fid"]}


def _profiling(bundle, noise, *, t_steps: int, k_steps: int, repeats: int = 3) -> dict:
    """Capture + metric overhead at K sampled steps against all T, and importance agreement."""
    out = {}
    for label, k in (("k", k_steps), ("t", t_steps)):
        seconds = []
        for _ in range(repeats):  # best of a few: the machine is shared, the minimum is the least disturbed
            rec = calibrate(bundle, num_inference_steps=t_steps, sampled_steps=k, noise=noise,
                            keep_acts=False, keep_replay=False)
            start = time.perf_counter()
            theta, defined = orthogonality_matrix(rec, beta=None, sign="neg")
            seconds.append(rec.capture_seconds + time.perf_counter() - start)
        out[label] = {"seconds": min(seconds), "theta": theta.mean(1), "defined": defined.all(1)}
    both = out["k"]["defined"] & out["t"]["defined"]
    rho = spearmanr(out["k"]["theta"][both], out["t"]["theta"][both]).statistic
    return {"k": k_steps, "t": t_steps, "seconds_k": out["k"]["seconds"], "seconds_t": out["t"]["seconds"],
            "cost_ratio": out["k"]["seconds"] / out["t"]["seconds"], "spearman": float(rho)}


def _one_run(bundle, *, seed: int, n_cal: int, k_steps: int, t_steps: int, eval_seeds: list[int],
             n_random: int, say) -> dict:
    from services.common.diffusion import initial_noise, sample

    cfg = QuantizationConfig(weight_bits=WEIGHT_BITS, act_bits=ACT_BITS, num_inference_steps=t_steps)
    layout = layer_layout(bundle)
    pinned = pinned_layers(layout, cfg)
    noise = initial_noise(bundle, list(range(seed * 1000, seed * 1000 + n_cal)))
    start = time.perf_counter()
    record = calibrate(bundle, num_inference_steps=t_steps, sampled_steps=k_steps, noise=noise, seed=seed)
    tables = QuantTables(bundle.denoiser, record, WEIGHT_BITS, ACT_BITS)
    names = record.layer_names
    say(f"run seed {seed}: calibrated {len(record.step_indices)}/{t_steps} steps in {time.perf_counter() - start:.1f}s")
    signals, signal_seconds = {}, {}
    # orthogonality: the paper's sign (neg) and the flipped one at the default beta = 1/(L-1), plus the
    # paper's sign at beta = 1 on the raw sum (a much sharper importance spread)
    for name, signal, kw in (("uniform", "uniform", {}), ("orthogonality", "orthogonality", {"sign": "neg"}),
                             ("orthogonality_pos", "orthogonality", {"sign": "pos"}),
                             ("orthogonality_beta1", "orthogonality", {"sign": "neg", "beta": 1.0}),
                             ("sensitivity", "sensitivity", {}), ("hybrid", "hybrid", {"sign": "neg"})):
        start = time.perf_counter()
        signals[name] = compute_signal(signal, bundle.denoiser, tables, pinned=set(pinned), **kw)
        signal_seconds[name] = time.perf_counter() - start
        say(f"run seed {seed}: signal {name} in {signal_seconds[name]:.1f}s")
    for r in range(n_random):
        signals[f"random{r}"] = compute_signal("random", bundle.denoiser, tables, seed=seed * 100 + r)
    # Spearman(orthogonality importance, measured sensitivity) on layers where both are defined/measured
    sens_4bit = signals["sensitivity"].weight_cost[:, WEIGHT_BITS.index(4)]
    defined = signals["orthogonality"].extras["defined"].all(1)
    mask = defined & np.array([n not in pinned for n in names])
    rho = float(spearmanr(signals["orthogonality"].importance[mask], sens_4bit[mask]).statistic)

    fp = sample(bundle, seeds=eval_seeds, num_inference_steps=t_steps).cpu()
    results: dict[str, dict] = {}
    for bits in BUDGETS:
        fixed = _fixed_bits(names, pinned, bits)
        budget = budget_to_bytes(record.n_params, avg_weight_bits=None, weight_bytes=weight_bytes_for(record.n_params, fixed))
        per = {"fixed": _evaluate(bundle, tables, fixed, record, fp, eval_seeds, t_steps)}
        for name, sig in signals.items():
            alloc = solve_allocation(names, record.n_params, WEIGHT_BITS, sig.weight_cost, ACT_BITS, sig.act_cost,
                                     budget_bytes=budget, avg_act_bits=8.0, pinned=pinned)
            per[name] = _evaluate(bundle, tables, alloc.weight_bits, record, fp, eval_seeds, t_steps)
        randoms = [per.pop(f"random{r}") for r in range(n_random)]
        per["random"] = {k: float(np.mean([m[k] for m in randoms])) for k in randoms[0]}
        per["random"]["mse_std"] = float(np.std([m["mse"] for m in randoms]))
        results[str(bits)] = per
        say(f"run seed {seed}: {bits}-bit budget: " + ", ".join(f"{k} {v['mse']:.4g}" for k, v in per.items()))
    return {"budgets": results, "orm_vs_sensitivity_spearman": rho, "signal_seconds": signal_seconds,
            "undefined_orm_layers": signals["orthogonality"].extras["undefined_orm_layers"],
            "spearman_layers": int(mask.sum())}


def format_table(result: dict) -> str:
    lines = [f"MPQ-Diff allocators at equal weight bytes (device {result['device']}; "
             f"{result['runs']} runs; MSE/PSNR/FID of final samples vs FP samples, same seeds)"]
    header = f"{'allocator':<20}" + "".join(
        f"| {b}-bit: {'MSE':>9} {'x fixed':>7} {'PSNR':>6} {'FID':>7} " for b in result["budgets"])
    lines += [header, "-" * len(header)]
    names = list(result["budgets"][str(BUDGETS[0])])
    for name in names:
        row = f"{name + (' *' if name == result['primary'] else ''):<20}"
        for b, per in result["budgets"].items():
            m = per[name]
            ratio = m["mse"] / per["fixed"]["mse"]
            row += f"| {'':7}{m['mse']:>9.5f} {ratio:>7.2f} {m['psnr']:>6.2f} {m['fid']:>7.3f} "
        lines.append(row)
    p = result["profiling"]
    lines.append(f"* = Atelier default. Spearman(ORM importance, measured sensitivity) = {result['orm_vs_sensitivity_spearman']:+.3f}")
    lines.append(f"Profiling K={p['k']} of T={p['t']} steps: cost ratio {p['cost_ratio']:.3f}, importance Spearman {p['spearman']:.3f}")
    if "goals" in result:
        lines.append("Goals: " + ", ".join(f"{k}={'met' if v else 'MISSED'}" for k, v in result["goals"].items()))
    return "\n".join(lines)


def run_benchmark(*, quick: bool, device: str = "cpu", out: Path | None = None, progress_print: bool = True,
                  sizes: BenchSizes | None = None) -> dict:
    """Run the benchmark; returns (and optionally writes as JSON) the result dict. `sizes` overrides the
    preset that `quick` picks (QUICK or FULL)."""
    if device == "cpu":
        torch.set_num_threads(1)
    elif device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but CUDA is not available")
    say = lambda m: _say(progress_print, m)  # noqa: E731
    wall = time.perf_counter()
    sizes = sizes or (QUICK if quick else FULL)
    t_steps, k_steps, n_eval, n_random = sizes.t_steps, sizes.k_steps, sizes.eval_samples, sizes.random_draws
    runs, models = [], []
    profiling = None
    for ms in sizes.model_seeds:
        bundle, info = train_denoiser(ms, steps=sizes.train_steps, device=device, say=say)
        say(f"model seed {ms}: {'loaded from cache' if info['cached'] else 'trained'} ({info['parameters']} params, loss {info['final_loss']:.4f})")
        info.update(_data_quality(bundle, ms, n=sizes.quality_samples, steps=t_steps))
        grid = info.pop("_grid")
        if out is not None:
            info["samples_png"] = str(Path(out).with_name(f"{Path(out).stem}_model{ms}_samples.png"))
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            _save_grid(grid, Path(info["samples_png"]))
        say(f"model seed {ms}: FID vs data {info['fid_vs_data']:.3f} (untrained: {info['fid_untrained_vs_data']:.3f})")
        models.append(info)
        if profiling is None:
            from services.common.diffusion import initial_noise

            profiling = _profiling(bundle, initial_noise(bundle, list(range(sizes.profiling_samples))),
                                   t_steps=t_steps, k_steps=k_steps)
            say(f"profiling: K={k_steps}/T={t_steps} cost ratio {profiling['cost_ratio']:.3f}, spearman {profiling['spearman']:.3f}")
        for rs in sizes.run_seeds:
            eval_seeds = list(range(rs * 10_000, rs * 10_000 + n_eval))
            runs.append(_one_run(bundle, seed=rs, n_cal=sizes.calibration_samples, k_steps=k_steps, t_steps=t_steps,
                                 eval_seeds=eval_seeds, n_random=n_random, say=say))
    budgets = {}
    for b in map(str, BUDGETS):
        budgets[b] = {}
        for name in runs[0]["budgets"][b]:
            ms = [r["budgets"][b][name] for r in runs]
            agg = {k: float(np.mean([m[k] for m in ms])) for k in ("weight_bytes", "mse", "psnr", "fid")}
            agg["mse_std_over_runs"] = float(np.std([m["mse"] for m in ms]))
            agg["mse_ratio_to_fixed_per_run"] = [m["mse"] / r["budgets"][b]["fixed"]["mse"] for m, r in zip(ms, runs)]
            budgets[b][name] = agg
    primary = {b: budgets[b][DEFAULT_SIGNAL]["mse"] for b in budgets}
    others_best = {b: min(m["mse"] for name, m in budgets[b].items() if name != DEFAULT_SIGNAL) for b in budgets}
    goals = {
        "default_le_half_fixed": all(primary[b] <= 0.5 * budgets[b]["fixed"]["mse"] for b in budgets),
        "default_beats_all": all(primary[b] < others_best[b] for b in budgets),
        "profiling_cost_ratio_le_0.2": profiling["cost_ratio"] <= 0.2,
        "profiling_spearman_ge_0.95": profiling["spearman"] >= 0.95,
    }
    result = {
        "budgets": budgets,
        "goals": goals,
        "primary": DEFAULT_SIGNAL,
        "orm_vs_sensitivity_spearman": float(np.mean([r["orm_vs_sensitivity_spearman"] for r in runs])),
        "orm_vs_sensitivity_spearman_per_run": [r["orm_vs_sensitivity_spearman"] for r in runs],
        "profiling": profiling,
        "device": describe_device(device, threads=1),
        "runs": len(runs),
        "models": models,
        "settings": {"quick": quick, **asdict(sizes), "weight_bits": WEIGHT_BITS, "act_bits": ACT_BITS,
                     "scheduler": "ddim"},
        "signal_seconds": runs[0]["signal_seconds"],
        "undefined_orm_layers": runs[0]["undefined_orm_layers"],
        "wall_seconds": time.perf_counter() - wall,
    }
    if progress_print:
        print(format_table(result), flush=True)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    run_benchmark(quick=args.quick, device=args.device, out=args.out)
