"""Training-memory and step-time benchmark: fp32, amp, memlean, memlean with bf16 states.

Every mode trains the same model (a 27M-parameter UNet2DModel at 32x32, batch
2, gradient checkpointing on) on the same generated data with the same seed
and steps, each in a fresh subprocess so one mode's allocations cannot
influence another's peak:

    python -m services.training.bench [--quick] [--device cpu|cuda] [--out FILE.json]

Memory is training memory, parameters included:
* CUDA: ``torch.cuda.max_memory_allocated``.
* CPU: peak RSS (``VmHWM``) minus the RSS right after imports, with
  ``MALLOC_MMAP_THRESHOLD_`` set for the subprocess so that freed tensors
  leave the RSS.

Step time is the median over the timed steps.  On CPU the subprocesses use
one thread (``--threads``): with 2 threads on a shared machine step times are
erratic.  ``exact`` is the result of a bit-exactness check of the split
optimizers against ``torch.optim.AdamW/SGD(foreach=False)`` run here.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from services.common.hardware import describe_device

MODES = ("fp32", "amp", "memlean", "memlean_bf16_states")
# On CUDA memlean's AdamW runs as one compiled kernel per parameter; this row
# times the eager op-by-op update on the same run for comparison.
CUDA_EXTRA_MODES = ("memlean_eager_kernel",)
# Parameters and optimizer state dominate at this size (27.2M parameters, batch 2, 32x32).
BENCH_MODEL = dict(
    sample_size=32,
    block_out_channels=(64, 128, 256, 384),
    layers_per_block=1,
    down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
    norm_num_groups=32,
    attention_head_dim=64,
)
BATCH_SIZE = 2
RESOLUTION = 32
DATASET_SIZE = 24
# Configs tried on CUDA for "largest UNet2DConditionModel that trains at batch 1 in 24 GB".
GPU_BUDGET_BYTES = 24 * 1024**3
GPU_WIDTHS = (320, 384, 448, 512, 576, 640, 704)


def _steps(quick: bool) -> int:
    return 6 if quick else 20


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- one mode (subprocess)
def _one_mode(mode: str, *, steps: int, device: str, data_dir: Path, threads: int, model: dict) -> dict:
    import torch

    torch.set_num_threads(threads)
    from services.common.diffusion import build_tiny, load_imagefolder
    from services.training.memlean.memory import MemoryMeter, current_rss_bytes
    from services.training.memlean.trainer import TrainingConfig, run_training

    dataset = load_imagefolder(data_dir, resolution=RESOLUTION)
    if device == "cuda":
        torch.cuda.init()
        baseline = torch.cuda.memory_allocated()
    else:
        baseline = current_rss_bytes() or 0  # after imports, before the model exists
    bundle = build_tiny("unet2d", seed=0, **model)
    kernel = "auto"
    if mode == "memlean_eager_kernel":
        mode, kernel = "memlean", "eager"
    config = TrainingConfig(
        mode=mode, optimizer_kernel=kernel, steps=steps, batch_size=BATCH_SIZE, lr=1e-4, seed=0, gradient_checkpointing=True,
        eval_size=4, eval_repeats=2, num_samples=0, device=device,
    )
    with tempfile.TemporaryDirectory() as artifacts:
        outcome = run_training(
            bundle, dataset, config, artifact_dir=Path(artifacts),
            progress=lambda f, msg, info: _log(f"  [{mode}] {msg}") if "loss" in info else None,
        )
    meter = MemoryMeter(device)
    return {
        "mode": mode,
        "peak_bytes": outcome.peak_memory_bytes - baseline,
        "step_seconds": outcome.median_step_seconds,
        "step_cpu_seconds": outcome.median_step_cpu_seconds,
        "final_loss": outcome.final_val_loss,
        "final_val_losses": outcome.final_val_losses,
        "final_train_loss": outcome.loss_curve[-1]["loss"],
        "num_parameters": outcome.num_parameters,
        "peak_reset_supported": meter.is_cuda or meter.can_reset,
        "optimizer_kernel": outcome.optimizer_kernel,
        "optimizer_bucket_elements": outcome.optimizer_bucket_elements,
        "attention_precision": outcome.attention_precision,
    }


def _gpu_peak_for_width(mode: str, width: int) -> tuple[int, int]:
    """(parameters, peak bytes) of two batch-1 training steps of an SD-like UNet of this base width."""
    import torch

    from services.common.diffusion import build_tiny
    from services.training.memlean.trainer import TrainingConfig, _Engine

    overrides = dict(
        sample_size=64, in_channels=4, block_out_channels=(width, width * 2, width * 4, width * 4),
        layers_per_block=2, norm_num_groups=32, attention_head_dim=8, cross_attention_dim=768,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        text_encoder={"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12},
    )
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    with torch.device("cuda"):  # initialise on the GPU: a CPU init of billions of weights is slow
        bundle = build_tiny("unet2d-condition", seed=0, **overrides).to("cuda")
    bundle.denoiser.enable_gradient_checkpointing()
    engine = _Engine(bundle, TrainingConfig(mode=mode, steps=2, batch_size=1, device="cuda"), torch.device("cuda"))
    try:
        for _ in range(2):
            x = torch.randn(1, 4, 64, 64, device="cuda")
            t = torch.randint(0, 1000, (1,), device="cuda")
            with torch.no_grad():
                cond = bundle.encode_prompts(["a photo"])
            with engine.autocast():
                pred = bundle.predict_noise(x, t, cond)
            engine.backward(torch.nn.functional.mse_loss(pred.float(), x))
            engine.step()
            del pred  # its graph references the parameters
        return sum(p.numel() for p in bundle.denoiser.parameters()), torch.cuda.max_memory_allocated()
    finally:
        if engine.fused is not None:
            engine.fused.remove()


def _largest_gpu_config(mode: str) -> dict:
    """Widest UNet2DConditionModel (SD-like layout) whose batch-1 training step fits 24 GB."""
    import torch

    best = None
    for width in GPU_WIDTHS:
        try:
            params, peak = _gpu_peak_for_width(mode, width)
        except torch.cuda.OutOfMemoryError:
            break
        _log(f"  [{mode}] width {width}: {params / 1e9:.2f}B parameters, peak {peak / 2**30:.1f} GiB")
        if peak > GPU_BUDGET_BYTES:
            break
        best = {"block_out_channels_base": width, "parameters": params, "peak_bytes": peak}
    gc.collect()
    torch.cuda.empty_cache()
    return best or {}


# ----------------------------------------------------------------------------- exactness
def _reference_and_split(shapes, generator):
    """Random fp32 masters as torch parameters, and the same values split (bf16 + remainders)."""
    import torch

    from services.training.memlean.split import split_fp32

    masters = [torch.randn(s, generator=generator, device=generator.device) for s in shapes]
    ref = [torch.nn.Parameter(m.clone()) for m in masters]
    ours, remainders = [], {}
    for m in masters:
        hi, lo = split_fp32(m)
        ours.append(torch.nn.Parameter(hi))
        remainders[ours[-1]] = lo
    return ref, ours, remainders


def exactness_check(steps: int = 5) -> bool:
    """Split AdamW/SGD rebuilt weights vs torch (foreach=False) on fp32 masters: bit-identical?"""
    import torch

    from services.training.memlean.optim import SplitAdamW, SplitSGD

    shapes = [(64, 33), (129,), (8, 4, 3, 3), (50_000,)]
    results = []
    for make_ours, make_ref in (
        (lambda ps, rem: SplitAdamW(ps, lr=1e-3, weight_decay=0.05, remainders=rem),
         lambda ps: torch.optim.AdamW(ps, lr=1e-3, weight_decay=0.05, foreach=False)),
        (lambda ps, rem: SplitSGD(ps, lr=1e-2, momentum=0.9, weight_decay=1e-3, remainders=rem),
         lambda ps: torch.optim.SGD(ps, lr=1e-2, momentum=0.9, weight_decay=1e-3, foreach=False)),
    ):
        g = torch.Generator().manual_seed(0)
        ref, ours, rem = _reference_and_split(shapes, g)
        opt, ref_opt = make_ours(ours, rem), make_ref(ref)
        for _ in range(steps):
            for p, r in zip(ours, ref):
                r.grad = torch.randn(r.shape, generator=g) * 1e-2
                opt.step_param(p, r.grad)
            ref_opt.step()
        results.append(all(
            torch.equal(opt.master_fp32(p).view(torch.int32), r.detach().view(torch.int32))
            for p, r in zip(ours, ref)
        ))
    return all(results)


def cuda_kernel_agreement(steps: int = 5) -> dict:
    """On CUDA: eager split AdamW vs torch AdamW(foreach=False) (bit-identical?), and the
    compiled one-kernel update vs the same reference (how many elements differ, by how many ulps)."""
    import torch

    from services.training.memlean.optim import SplitAdamW

    shapes = [(320, 320, 3, 3), (1280,), (77, 768), (1_000_003,)]
    report: dict = {}
    for kernel in ("eager", "compiled"):
        g = torch.Generator(device="cuda").manual_seed(0)
        ref, ours, rem = _reference_and_split(shapes, g)
        opt = SplitAdamW(ours, lr=1e-3, weight_decay=0.05, remainders=rem, kernel=kernel)
        ref_opt = torch.optim.AdamW(ref, lr=1e-3, weight_decay=0.05, foreach=False)
        for _ in range(steps):
            for p, r in zip(ours, ref):
                r.grad = torch.randn(r.shape, generator=g, device="cuda") * 1e-2
                opt.step_param(p, r.grad)
            opt.step()
            ref_opt.step()
        diffs = [(opt.master_fp32(p).view(torch.int32) - r.detach().view(torch.int32)).abs()
                 for p, r in zip(ours, ref)]
        total = sum(d.numel() for d in diffs)
        report[kernel] = {
            "max_abs_diff": max(float((opt.master_fp32(p) - r.detach()).abs().max()) for p, r in zip(ours, ref)),
            "bit_identical": all(int(d.max()) == 0 for d in diffs),
            "max_ulp": max(int(d.max()) for d in diffs),
            "fraction_differing": sum(int((d > 0).sum()) for d in diffs) / total,
        }
    return report


# ----------------------------------------------------------------------------- driver
def _run_subprocess(mode: str, *, steps: int, device: str, data_dir: Path, threads: int, model: dict) -> dict:
    env = dict(os.environ)
    env.update({
        # Large blocks are mmap-ed and unmapped on free, so RSS follows live tensors.
        "MALLOC_MMAP_THRESHOLD_": "65536",
        "OMP_NUM_THREADS": str(threads),
        "HF_HUB_OFFLINE": "1",
    })
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        result_file = Path(fh.name)
    cmd = [sys.executable, "-m", "services.training.bench", "--one-mode", mode, "--steps", str(steps),
           "--device", device, "--data", str(data_dir), "--threads", str(threads),
           "--model", json.dumps(model), "--result", str(result_file)]
    repo_root = Path(__file__).resolve().parents[2]
    try:
        proc = subprocess.run(cmd, env=env, cwd=repo_root)
        if proc.returncode != 0:
            raise RuntimeError(f"benchmark subprocess for mode {mode!r} failed (exit {proc.returncode})")
        return json.loads(result_file.read_text())
    finally:
        result_file.unlink(missing_ok=True)


def _paired_difference(a: list[float], b: list[float]) -> tuple[float, float]:
    diffs = [x - y for x, y in zip(a, b)]
    mean = statistics.fmean(diffs)
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
    return mean, se


def format_table(result: dict) -> str:
    lines = [
        f"device={result['device']} threads={result['threads']} params={result['num_parameters']/1e6:.1f}M "
        f"batch={result['batch_size']} res={result['resolution']} steps={result['steps']} "
        f"grad_ckpt=on exact={result['exact']}",
        f"{'mode':<22}{'train mem MiB':>14}{'vs amp':>8}{'step s':>9}{'vs amp':>8}{'cpu s':>8}{'vs amp':>8}"
        f"{'val loss':>10}",
    ]
    amp = result["modes"].get("amp")
    for name, row in result["modes"].items():
        mem_ratio = row["peak_bytes"] / amp["peak_bytes"] if amp else float("nan")
        time_ratio = row["step_seconds"] / amp["step_seconds"] if amp else float("nan")
        cpu_ratio = row["step_cpu_seconds"] / amp["step_cpu_seconds"] if amp else float("nan")
        lines.append(
            f"{name:<22}{row['peak_bytes'] / 2**20:>14.1f}{mem_ratio:>8.3f}"
            f"{row['step_seconds']:>9.3f}{time_ratio:>8.3f}{row['step_cpu_seconds']:>8.3f}{cpu_ratio:>8.3f}"
            f"{row['final_loss']:>10.4f}"
        )
    for name, diff in result.get("loss_vs_amp", {}).items():
        lines.append(f"val loss {name} - amp (paired over eval items): {diff['mean']:+.5f} ± {diff['se']:.5f} (SE)")
    for kernel, row in result.get("cuda_kernel_agreement", {}).items():
        lines.append(
            f"CUDA split AdamW ({kernel}) vs torch AdamW(foreach=False): bit-identical={row['bit_identical']} "
            f"max ulp={row['max_ulp']} max abs={row['max_abs_diff']:.2e} differing={row['fraction_differing']:.2e}"
        )
    for mode, row in result.get("largest_in_24gb", {}).items():
        if row:
            lines.append(
                f"largest UNet2DConditionModel at batch 1 in 24 GB, {mode}: base width "
                f"{row['block_out_channels_base']}, {row['parameters'] / 1e9:.2f}B parameters, "
                f"peak {row['peak_bytes'] / 2**30:.1f} GiB"
            )
        else:
            lines.append(f"largest UNet2DConditionModel at batch 1 in 24 GB, {mode}: none of the widths tried fit")
    return "\n".join(lines)


def run_benchmark(*, quick: bool, device: str = "cpu", out: Path | None = None, threads: int = 1,
                  model: dict | None = None) -> dict:
    """Run every mode in its own subprocess and return the comparison (also written to ``out``).
    ``model`` (UNet2DModel config overrides) replaces BENCH_MODEL, e.g. for a test at a tiny size."""
    model = dict(BENCH_MODEL if model is None else model)
    if device not in ("cpu", "cuda"):
        raise ValueError("device must be 'cpu' or 'cuda'")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--device cuda requested but CUDA is not available")
    from services.common.diffusion import generate_synthetic_dataset

    steps = _steps(quick)
    started = time.perf_counter()
    modes: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = generate_synthetic_dataset(Path(tmp) / "data", domain="shapes", n=DATASET_SIZE, seed=0,
                                              resolution=RESOLUTION)
        run_modes = MODES + (CUDA_EXTRA_MODES if device == "cuda" else ())
        for i, mode in enumerate(run_modes, 1):
            _log(f"[{i}/{len(run_modes)}] {mode}: {steps} steps in a fresh process ...")
            modes[mode] = _run_subprocess(mode, steps=steps, device=device, data_dir=data_dir, threads=threads,
                                          model=model)
    _log("exactness check (split optimizers vs torch foreach=False) ...")
    exact = exactness_check()
    amp = modes["amp"]
    loss_vs_amp = {}
    for name in ("memlean", "memlean_bf16_states", "fp32"):
        mean, se = _paired_difference(modes[name]["final_val_losses"], amp["final_val_losses"])
        loss_vs_amp[name] = {"mean": mean, "se": se}
    result = {
        "modes": {name: {k: row[k] for k in ("peak_bytes", "step_seconds", "step_cpu_seconds", "final_loss",
                                             "optimizer_kernel", "optimizer_bucket_elements", "attention_precision")}
                  for name, row in modes.items()},
        "ratios": {
            "memlean_vs_amp_peak": modes["memlean"]["peak_bytes"] / amp["peak_bytes"],
            "memlean_vs_amp_time": modes["memlean"]["step_seconds"] / amp["step_seconds"],
            "memlean_bf16_states_vs_amp_peak": modes["memlean_bf16_states"]["peak_bytes"] / amp["peak_bytes"],
            "memlean_vs_amp_cpu_time": modes["memlean"]["step_cpu_seconds"] / amp["step_cpu_seconds"],
        },
        "exact": exact,
        "device": device,
        "device_name": describe_device(device),
        "threads": threads if device == "cpu" else None,
        "num_parameters": amp["num_parameters"],
        "model": model,
        "batch_size": BATCH_SIZE,
        "resolution": RESOLUTION,
        "steps": steps,
        "loss_vs_amp": loss_vs_amp,
        "memory_method": "cuda max_memory_allocated" if device == "cuda"
        else "peak RSS (VmHWM) minus RSS after imports, MALLOC_MMAP_THRESHOLD_=65536",
        "peak_reset_supported": all(row["peak_reset_supported"] for row in modes.values()),
    }
    if device == "cuda":
        _log("CUDA: eager and compiled split AdamW vs torch AdamW(foreach=False) ...")
        result["cuda_kernel_agreement"] = cuda_kernel_agreement()
        result["memlean_kernel"] = "compiled (torch.compile, one kernel per parameter)"
    if device == "cuda" and not quick:
        if out is not None:  # the search takes minutes: what is measured so far survives a stopped run
            Path(out).write_text(json.dumps(result, indent=2) + "\n")
        _log("largest UNet2DConditionModel at batch 1 within 24 GB, per mode ...")
        result["largest_in_24gb"] = {mode: _largest_gpu_config(mode) for mode in MODES}
    result["wall_seconds"] = time.perf_counter() - started
    table = format_table(result)
    print(table, flush=True)
    if out is not None:
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1)
    # internal: one mode in this process
    parser.add_argument("--one-mode", choices=MODES + CUDA_EXTRA_MODES, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--result", type=Path, default=None)
    parser.add_argument("--model", type=json.loads, default=None, help="UNet2DModel config overrides (JSON)")
    args = parser.parse_args(argv)
    if args.one_mode:
        row = _one_mode(args.one_mode, steps=args.steps, device=args.device, data_dir=args.data,
                        threads=args.threads, model=args.model or BENCH_MODEL)
        args.result.write_text(json.dumps(row))
        return 0
    run_benchmark(quick=args.quick, device=args.device, out=args.out, threads=args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
