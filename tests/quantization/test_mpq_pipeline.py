import json

import numpy as np
import pytest
import torch

from services.common.diffusion import build_tiny, initial_noise
from services.quantization.mpq import (
    BudgetError,
    CalibrationConfig,
    QuantizationCancelled,
    QuantizationConfig,
    load_quantized,
    run_quantization,
    validate_config,
)
from services.quantization.mpq.allocate import Allocation
from services.quantization.mpq.calibrate import calibrate, sample_step_indices
from services.quantization.mpq.export import export_quantized
from services.quantization.mpq.importance import QuantTables, compute_signal
from services.quantization.mpq.pipeline import build_spec, quantized_copy

torch.set_num_threads(1)


def _fast_config(**kw):
    base = dict(
        num_inference_steps=6,
        calibration=CalibrationConfig(n=4, sampled_steps=3, prompts=["a red circle", "a blue square"]),
        signal="orthogonality",
        eval_seeds=[11, 12],
    )
    base.update(kw)
    return QuantizationConfig(**base)


def test_step_sampling_is_uniform():
    assert sample_step_indices(50, 5) == [0, 12, 24, 37, 49]
    assert sample_step_indices(4, 10) == [0, 1, 2, 3]


def test_validate_config_rejects_unreachable_budget_and_unknown_layers():
    bundle = build_tiny("unet2d")
    with pytest.raises(BudgetError, match="unreachable"):
        validate_config(bundle, _fast_config(budget={"avg_weight_bits": 2.0}))  # first/last pinned at 8
    with pytest.raises(BudgetError):
        validate_config({"a": 100, "b": 100}, _fast_config(budget={"weight_bytes": 10}))
    with pytest.raises(ValueError, match="unknown layer"):
        validate_config(bundle, _fast_config(overrides={"no.such.layer": 8}))
    info = validate_config(bundle, _fast_config(overrides={"conv_in": 8}))
    assert info["first"] == "conv_in" and info["last"] == "conv_out"


def test_unconditional_calibration_modes_and_groups():
    bundle = build_tiny("unet2d")
    noise = initial_noise(bundle, [0, 1, 2])
    rec = calibrate(bundle, num_inference_steps=8, sampled_steps=4, noise=noise, timestep_groups=2)
    assert rec.grams.shape[:2] == (4, len(rec.layer_names)) and rec.grams.shape[2:] == (3, 3)
    assert rec.step_groups == [0, 0, 1, 1]
    assert all(len(v) == 2 and v[0].numel() > 1 and v[1].numel() > 1 for v in rec.act_samples.values())
    data = torch.rand(3, 3, 16, 16) * 2 - 1
    rec_data = calibrate(bundle, num_inference_steps=8, sampled_steps=4, data=data, mode="data")
    assert len(rec_data.fp_outputs) == 4 and rec_data.fp_outputs[0].shape == (3, 3, 16, 16)


def test_export_import_matches_simulated_model(tmp_path):
    bundle = build_tiny("unet2d-condition", seed=3)
    cond = bundle.encode_prompts(["a", "b", "c"])
    rec = calibrate(bundle, num_inference_steps=6, sampled_steps=3, noise=initial_noise(bundle, [0, 1, 2]),
                    cond=cond, timestep_groups=2)
    tables = QuantTables(bundle.denoiser, rec, [2, 3, 4, 6, 8], [4, 8, 16])
    choices = [2, 3, 4, 6, 8]
    bits = {n: choices[i % 5] for i, n in enumerate(rec.layer_names)}
    acts = [{n: [4, 8, 16][(i + g) % 3] for i, n in enumerate(rec.layer_names)} for g in range(2)]
    spec = build_spec(tables, Allocation(bits, acts, 0.0, 0.0), rec.groups)
    qbundle = quantized_copy(bundle, spec)
    info = export_quantized(qbundle, spec, tmp_path / "art")
    loaded = load_quantized(tmp_path / "art")
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for t in (rec.timesteps[0], rec.timesteps[-1]):  # one timestep from each group
            a = qbundle.predict_noise(x, t, cond)
            b = loaded.predict_noise(x, t, cond)
            assert torch.equal(a, b)
        fp = bundle.predict_noise(x, rec.timesteps[0], cond)
    assert not torch.equal(fp, qbundle.predict_noise(x, rec.timesteps[0], cond))
    # packed codes: about (sum of bits)/8 bytes, far below float32
    n_params = sum(rec.n_params.values())
    packed = sum(rec.n_params[n] * bits[n] / 8 for n in bits)
    assert info["bytes_on_disk"] < 4 * n_params
    assert info["bytes_on_disk"] > packed


def test_unet2d_condition_end_to_end(tmp_path):
    bundle = build_tiny("unet2d-condition")
    seen = []
    cfg = _fast_config(timestep_groups=2, budget={"avg_weight_bits": 4.0, "avg_act_bits": 8.0})
    out = run_quantization(bundle, cfg, artifact_dir=tmp_path / "q", progress=lambda f, s, i: seen.append((f, s)))
    stages = [s for _, s in seen]
    for stage in ("load", "calibrate", "metric", "allocate", "quantize", "evaluate", "export"):
        assert stage in stages
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert out.weight_bytes_after <= out.weight_budget_bytes + 1e-6
    assert out.avg_weight_bits <= 4.0 + 1e-9
    assert all(a <= 8.0 + 1e-9 for a in out.avg_act_bits)
    assert out.export_max_abs_diff == 0.0
    assert out.bytes_on_disk < out.weight_bytes_before
    assert {"mse", "psnr", "ssim", "fid"} <= set(out.quality)
    assert len(out.importance_matrix) == len(out.layers) and len(out.importance_matrix[0]) == 3
    pinned = {r["name"]: r["weight_bits"] for r in out.layers if r["pinned"]}
    assert pinned == {"conv_in": 8, "conv_out": 8}
    assert "time_embedding.linear_1" in out.undefined_orm_layers  # same timestep for all samples
    json.dumps(out.to_dict())  # serialisable for the job layer


def test_dit_quantizes_with_sensitivity(tmp_path):
    bundle = build_tiny("dit")
    cfg = _fast_config(signal="sensitivity", weight_bits=[3, 4, 8], act_bits=[8],
                       calibration=CalibrationConfig(n=2, sampled_steps=2, prompts=["x"]), eval_seeds=[5])
    out = run_quantization(bundle, cfg, artifact_dir=tmp_path / "dit")
    assert out.export_max_abs_diff == 0.0
    bits = {r["name"]: r["weight_bits"] for r in out.layers}
    assert any(n.endswith("attn1.to_q") for n in bits)
    assert out.weight_bytes_after <= out.weight_budget_bytes + 1e-6
    assert out.quality["mse"] > 0


def test_signals_produce_different_costs():
    bundle = build_tiny("unet2d")
    rec = calibrate(bundle, num_inference_steps=4, sampled_steps=2, noise=initial_noise(bundle, [0, 1, 2, 3]))
    tables = QuantTables(bundle.denoiser, rec, [2, 4, 8], [8])
    neg = compute_signal("orthogonality", bundle.denoiser, tables, sign="neg")
    pos = compute_signal("orthogonality", bundle.denoiser, tables, sign="pos")
    uni = compute_signal("uniform", bundle.denoiser, tables)
    assert neg.weight_cost.shape == (len(rec.layer_names), 3)
    assert np.all(np.diff(uni.weight_cost, axis=1) <= 1e-12)  # more bits never cost more error
    assert not np.allclose(neg.importance, pos.importance)


def test_cancellation(tmp_path):
    bundle = build_tiny("unet2d")
    with pytest.raises(QuantizationCancelled):
        run_quantization(bundle, _fast_config(calibration=CalibrationConfig(n=2, sampled_steps=2)),
                         artifact_dir=tmp_path / "c", should_stop=lambda: True)
    assert not (tmp_path / "c").exists()


def test_sensitivity_restores_weights_and_orders_bits():
    from services.quantization.mpq.quantizers import quantize_weight

    bundle = build_tiny("dit")
    cond = bundle.encode_prompts(["a", "b"])
    before = {k: v.clone() for k, v in bundle.denoiser.state_dict().items()}
    rec = calibrate(bundle, num_inference_steps=4, sampled_steps=2, noise=initial_noise(bundle, [0, 1]), cond=cond)
    assert len(rec.step_weights) == 2 and abs(sum(rec.step_weights) - 1) < 1e-9
    tables = QuantTables(bundle.denoiser, rec, [2, 8], [8])
    sens = compute_signal("sensitivity", bundle.denoiser, tables)
    after = bundle.denoiser.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # cached quantized weights come from the FP weights, not from a temporarily quantized layer
    name = rec.layer_names[3]
    assert torch.equal(tables.weight(name, 8).codes, quantize_weight(before[f"{name}.weight"], 8).codes)
    worse_at_2 = (sens.weight_cost[:, 0] > sens.weight_cost[:, 1]).mean()
    assert worse_at_2 > 0.9


def test_sensitivity_candidates_sharing_a_pass_measure_what_one_pass_each_does():
    from services.quantization.mpq.calibrate import model_output
    from services.quantization.mpq.importance import measured_sensitivity

    bundle = build_tiny("unet2d-condition")
    rec = calibrate(bundle, num_inference_steps=4, sampled_steps=2, noise=initial_noise(bundle, [0, 1]),
                    cond=bundle.encode_prompts(["a red circle", "stripes"]), timestep_groups=2)
    tables = QuantTables(bundle.denoiser, rec, [2, 4, 8], [4, 8])
    layers = rec.layer_names[3:9]
    shared = measured_sensitivity(bundle.denoiser, tables, layers=layers)  # 3 weight candidates x 4 rows: one pass
    alone = measured_sensitivity(bundle.denoiser, tables, layers=layers, max_batch=1)  # one pass per candidate
    rows = slice(3, 9)
    for a, b, candidates in zip((shared[0][rows], shared[1][:, rows]), (alone[0][rows], alone[1][:, rows]), (1, 2)):
        # float32 kernels may round differently at another batch size: equal to that, in the same order
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-3 * np.abs(b).max())
        assert np.array_equal(np.argsort(a, axis=candidates), np.argsort(b, axis=candidates))
    # and both are the output error of the model with that layer's weight really replaced
    name, bits = rec.layer_names[5], 2
    layer = tables.layers[name]
    with torch.no_grad():
        layer.weight.copy_(tables.weight(name, bits).dequantize())
        for k in range(len(rec.replay)):
            args, kwargs = rec.replay[k]
            err = float(((model_output(bundle.denoiser(*args, **kwargs)).float() - rec.fp_outputs[k]) ** 2).mean())
            assert shared[0][5, 0, k] == pytest.approx(err, rel=1e-3)
        layer.weight.copy_(tables.fp_weights[name])


def test_sensitivity_passes_fall_back_to_one_candidate_where_a_layer_reads_rows_across_the_batch():
    from types import SimpleNamespace

    from services.quantization.mpq.importance import Replayer

    class SequenceFirst(torch.nn.Module):  # `inner` sees (sequence, batch, features): its rows are not the batch
        def __init__(self):
            super().__init__()
            self.inner, self.head = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)

        def forward(self, x):
            return self.head(self.inner(x.transpose(0, 1)).transpose(0, 1))

    torch.manual_seed(0)
    model = SequenceFirst().eval()
    x = torch.randn(2, 3, 4)
    with torch.no_grad():
        record = SimpleNamespace(replay=[((x,), {})], fp_outputs=[model(x)], step_groups=[0],
                                 groups=SimpleNamespace(n_groups=1))
        variants = [torch.randn(4, 4), torch.randn(4, 4)]
        for layer in (model.inner, model.head):
            expected = []
            for weight in variants:
                original = layer.weight.clone()
                layer.weight.copy_(weight)
                expected.append(float(((model(x) - record.fp_outputs[0]) ** 2).mean()))
                layer.weight.copy_(original)
            measured = Replayer(model, record).variant_errors(layer, [0], variants)[:, 0]
            np.testing.assert_allclose(measured, expected, rtol=1e-6)


def _tiny_dit_with_and_without_kernels(tmp_path, avg_weight_bits: float, device: str = "cpu"):
    """A tiny DiT quantized to 4/8-bit weights (16-bit activations), reloaded simulated and with
    torchao kernels."""
    pytest.importorskip("torchao")
    cfg = _fast_config(weight_bits=[4, 8], budget={"avg_weight_bits": avg_weight_bits, "avg_act_bits": 16.0}, act_bits=[16],
                       calibration=CalibrationConfig(n=2, sampled_steps=1, prompts=["x"]))
    run_quantization(build_tiny("dit"), cfg, artifact_dir=tmp_path / "k")
    return load_quantized(tmp_path / "k", device=device), load_quantized(tmp_path / "k", device=device, kernels=True)


def test_optional_torchao_kernels_close_to_simulated(tmp_path):
    simulated, fast = _tiny_dit_with_and_without_kernels(tmp_path, 8.0)
    assert fast.kernel_plan and set(fast.kernel_plan.values()) == {"Int8WeightOnlyConfig"}
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    cond = simulated.encode_prompts(["x", "y"])
    with torch.no_grad():
        a, b = simulated.predict_noise(x, 500, cond), fast.predict_noise(x, 500, cond)
    assert torch.allclose(a, b, atol=5e-2 * a.abs().max().item())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="torchao's int4 kernel runs on CUDA only")
def test_optional_torchao_int4_and_int8_kernels_on_cuda(tmp_path):
    simulated, fast = _tiny_dit_with_and_without_kernels(tmp_path, 5.0, device="cuda")
    assert set(fast.kernel_plan.values()) == {"Int4WeightOnlyConfig", "Int8WeightOnlyConfig"}
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)).cuda()
    with torch.no_grad():
        a = simulated.predict_noise(x, 500, simulated.encode_prompts(["x", "y"]))
        b = fast.predict_noise(x, 500, fast.encode_prompts(["x", "y"]))
    assert b.dtype == a.dtype == torch.float32
    # torchao requantizes the 4-bit weights group-wise and computes in bfloat16: close, not equal
    relative_error = ((a - b).norm() / a.norm()).item()
    print(f"int4+int8 kernels vs simulated: relative L2 error {relative_error:.4f}")
    assert relative_error < 0.1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", ["unet2d", "dit"])
def test_quantization_job_core_runs_on_cuda_like_on_cpu(tmp_path, kind):
    """A GPU worker loads the model on CUDA: the whole pipeline (calibration, both signals, export and
    reload, metrics) must run there and agree with the CPU run."""
    cfg = _fast_config(signal="hybrid")
    on_cpu = run_quantization(build_tiny(kind), cfg, artifact_dir=tmp_path / "cpu")
    on_cuda = run_quantization(build_tiny(kind).to("cuda"), cfg, artifact_dir=tmp_path / "cuda")
    assert on_cuda.export_max_abs_diff == 0.0
    assert on_cuda.avg_weight_bits <= cfg.budget.avg_weight_bits + 1e-9
    assert on_cuda.sampled_steps == on_cpu.sampled_steps
    theta_cpu, theta_cuda = np.asarray(on_cpu.orthogonality_matrix), np.asarray(on_cuda.orthogonality_matrix)
    # cuDNN convolutions may run in TF32 on CUDA: close, not equal
    assert np.array_equal(np.isnan(theta_cpu), np.isnan(theta_cuda))
    assert np.nanmax(np.abs(theta_cpu - theta_cuda)) <= 0.02 * np.nanmax(np.abs(theta_cpu))
    assert np.isfinite(on_cuda.quality["mse"])


@pytest.mark.parametrize("kind, latent", [("unet2d", False), ("unet2d-condition", False), ("dit", False),
                                          ("unet2d-condition", True)])
def test_the_layout_traced_on_a_weightless_skeleton_is_the_loaded_models(kind, latent, tmp_path):
    from services.common.diffusion import load_bundle, skeleton_bundle
    from services.quantization.mpq.pipeline import layer_layout

    build_tiny(kind, latent=latent).save(tmp_path / "m")
    refs = [str(tmp_path / "m")] + ([] if latent else [f"tiny:{kind}"])
    for ref in refs:
        skeleton, cond = skeleton_bundle(ref)
        assert skeleton.device.type == "meta" and (cond is None) == (kind == "unet2d")
        expected = layer_layout(load_bundle(ref))
        traced = layer_layout(skeleton, cond)
        assert traced == expected and list(traced.n_params) == list(expected.n_params)


@pytest.mark.parametrize("latent", [False, True])
def test_data_mode_calibration_from_imagefolder(latent, tmp_path):
    from services.common.diffusion import generate_synthetic_dataset
    from services.quantization.mpq.pipeline import calibration_inputs

    folder = generate_synthetic_dataset(tmp_path / "data", domain="shapes", n=4, seed=0, resolution=16)
    bundle = build_tiny("unet2d", latent=latent)  # latent: 16x16 images, 4x8x8 latents
    cal = CalibrationConfig(n=4, sampled_steps=2, mode="data", dataset_path=str(folder))
    x0 = calibration_inputs(bundle, QuantizationConfig(calibration=cal))["data"]
    assert x0.shape == (4, bundle.in_channels, bundle.sample_size, bundle.sample_size)
    cfg = QuantizationConfig(num_inference_steps=6, signal="uniform", eval_seeds=[1, 2], budget={"avg_weight_bits": 6.0},
                             calibration=CalibrationConfig(n=4, sampled_steps=2, mode="data", dataset_path=str(folder)))
    out = run_quantization(bundle, cfg, artifact_dir=tmp_path / "q")
    assert out.sampled_steps == [0, 5] and out.export_max_abs_diff == 0.0
    assert out.avg_weight_bits <= 6.0 + 1e-9
    with pytest.raises(ValueError, match="dataset_path"):
        CalibrationConfig(mode="data")
