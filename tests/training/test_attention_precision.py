"""The bf16 modes' attention core in fp32 (``memlean.attention``)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from services.common.diffusion import build_tiny, generate_synthetic_dataset, load_imagefolder
from services.training.memlean.attention import Fp32Attention, resolve_attention_precision
from services.training.memlean.trainer import TrainingConfig, run_training


def _qkv(dtype, requires_grad=True):
    gen = torch.Generator().manual_seed(0)
    tensors = [torch.randn(2, 3, 24, 8, generator=gen).to(dtype) for _ in range(3)]
    return [t.requires_grad_(requires_grad) for t in tensors]


def test_bf16_attention_runs_in_fp32_forward_and_backward():
    q, k, v = _qkv(torch.bfloat16)
    with Fp32Attention():
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert out.dtype == torch.bfloat16
    out.float().square().sum().backward()

    ref_q, ref_k, ref_v = (t.detach().float().requires_grad_() for t in (q, k, v))
    ref = F.scaled_dot_product_attention(ref_q, ref_k, ref_v, is_causal=True)
    assert torch.equal(out, ref.to(torch.bfloat16))
    ref.to(torch.bfloat16).float().square().sum().backward()
    for got, want in ((q, ref_q), (k, ref_k), (v, ref_v)):
        assert torch.equal(got.grad, want.grad.to(torch.bfloat16))

    # Without the mode the bf16 kernel computes something else (it rounds inside).
    plain = F.scaled_dot_product_attention(q.detach(), k.detach(), v.detach(), is_causal=True)
    assert not torch.equal(plain, out.detach())


def test_autocast_does_not_cast_the_upcast_inputs_back_down():
    q, k, v = _qkv(torch.float32, requires_grad=False)
    mask = torch.zeros(24, 24)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = F.linear(q, torch.eye(8))  # bf16 under autocast, as amp's projections are
        with Fp32Attention():
            out = F.scaled_dot_product_attention(low, k.bfloat16(), v.bfloat16(), attn_mask=mask)
    ref = F.scaled_dot_product_attention(low.float(), k.bfloat16().float(), v.bfloat16().float(), attn_mask=mask)
    assert out.dtype == torch.bfloat16 and torch.equal(out, ref.to(torch.bfloat16))


def test_fp32_inputs_and_other_ops_pass_through_unchanged():
    q, k, v = _qkv(torch.float32, requires_grad=False)
    with Fp32Attention():
        out = F.scaled_dot_product_attention(query=q, key=k, value=v)
        added = q.bfloat16() + 1
    assert torch.equal(out, F.scaled_dot_product_attention(q, k, v))
    assert added.dtype == torch.bfloat16


def test_auto_is_fp32_on_cpu_and_bf16_on_a_gpu():
    assert resolve_attention_precision("auto", "cpu") == "fp32"
    assert resolve_attention_precision("auto", "cuda:0") == "bf16"
    assert resolve_attention_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="attention_precision"):
        resolve_attention_precision("fp8", "cpu")
    with pytest.raises(ValueError, match="attention_precision"):
        TrainingConfig(attention_precision="half").validate()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = generate_synthetic_dataset(
        tmp_path_factory.mktemp("data") / "shapes", domain="shapes", n=16, seed=0, resolution=16
    )
    return load_imagefolder(folder, resolution=16)


def _train(dataset, tmp_path, **kw):
    torch.set_num_threads(1)
    config = TrainingConfig(**{**dict(mode="memlean", steps=3, batch_size=4, lr=2e-3, eval_size=4,
                                      eval_repeats=2, num_samples=0), **kw})
    return run_training(build_tiny("unet2d-condition", seed=0), dataset, config, artifact_dir=tmp_path)


@pytest.mark.parametrize("mode", ["memlean", "amp"])
def test_training_reports_and_applies_its_attention_precision(mode, dataset, tmp_path):
    fp32 = _train(dataset, tmp_path / "fp32", mode=mode)  # auto on the CPU
    bf16 = _train(dataset, tmp_path / "bf16", mode=mode, attention_precision="bf16")
    assert (fp32.attention_precision, bf16.attention_precision) == ("fp32", "bf16")
    # the same run but for the attention core: close, not equal
    curve_fp32 = [p["loss"] for p in fp32.loss_curve]
    curve_bf16 = [p["loss"] for p in bf16.loss_curve]
    assert curve_fp32 != curve_bf16
    assert curve_fp32 == pytest.approx(curve_bf16, rel=0.05)
    # gradient checkpointing recomputes the forward inside backward, in the same precision
    checkpointed = _train(dataset, tmp_path / "ckpt", mode=mode, gradient_checkpointing=True)
    assert [p["loss"] for p in checkpointed.loss_curve] == pytest.approx(curve_fp32, rel=1e-3)


def test_fp32_mode_reports_fp32_attention(dataset, tmp_path):
    assert _train(dataset, tmp_path, mode="fp32", steps=1, attention_precision="bf16").attention_precision == "fp32"
