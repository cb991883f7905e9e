"""Fused backward (optimizer step inside backward) and fp32 export/import."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from services.training.memlean.checkpoint import (
    export_fp32_state_dict,
    load_fp32_state_dict_,
    split_module_,
)
from services.training.memlean.fused import FusedBackward, FusedClippingError
from services.training.memlean.optim import SplitAdamW, SplitSGD


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.LayerNorm(32), nn.Linear(32, 4))


def _batches(n: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(6, 8, generator=g), torch.randn(6, 4, generator=g)) for _ in range(n)]


def _loss(model, x, y):
    return ((model(x.bfloat16()).float() - y) ** 2).mean()


def _split_model_and_opt(cls=SplitAdamW, **kw):
    model = _model()
    remainders = split_module_(model)
    return model, cls(model.parameters(), remainders=remainders, **kw)


def _bits(sd):
    return {k: v.view(torch.int32) for k, v in sd.items()}


def test_fused_equals_unfused_and_frees_every_gradient():
    fused_model, fused_opt = _split_model_and_opt(lr=1e-2, weight_decay=0.05)
    plain_model, plain_opt = _split_model_and_opt(lr=1e-2, weight_decay=0.05)
    fused = FusedBackward(fused_opt)
    seen_after_hook = []
    for p in fused_model.parameters():
        # Registered after the fused hook, so it observes the state right after the step.
        p.register_post_accumulate_grad_hook(lambda q: seen_after_hook.append(q.grad is None))
    for x, y in _batches(4):
        assert fused.backward(_loss(fused_model, x, y))
        fused_opt.step()
        _loss(plain_model, x, y).backward()
        plain_opt.step()
        plain_opt.zero_grad()
        assert all(p.grad is None for p in fused_model.parameters())
    assert seen_after_hook and all(seen_after_hook)
    a = export_fp32_state_dict(fused_model, fused_opt)
    b = export_fp32_state_dict(plain_model, plain_opt)
    assert all(torch.equal(a[k].view(torch.int32), b[k].view(torch.int32)) for k in a)
    assert fused_opt.step_count == 4
    # and training actually moved the weights
    assert not torch.equal(a["0.weight"], export_fp32_state_dict(*_split_model_and_opt())["0.weight"])


def test_global_clipping_in_fused_mode_raises_a_clear_error():
    _, opt = _split_model_and_opt()
    with pytest.raises(FusedClippingError, match="per-parameter"):
        FusedBackward(opt, global_clip_norm=1.0)


def test_per_param_clipping_is_identical_fused_and_unfused_and_clips():
    fused_model, fused_opt = _split_model_and_opt(SplitSGD, lr=0.1, momentum=0.0, max_grad_norm=1e-3)
    plain_model, plain_opt = _split_model_and_opt(SplitSGD, lr=0.1, momentum=0.0, max_grad_norm=1e-3)
    before = export_fp32_state_dict(plain_model, plain_opt)
    fused = FusedBackward(fused_opt)
    x, y = _batches(1)[0]
    fused.backward(_loss(fused_model, x, y) * 1000)
    fused_opt.step()
    (_loss(plain_model, x, y) * 1000).backward()
    plain_opt.step()
    a = export_fp32_state_dict(fused_model, fused_opt)
    b = export_fp32_state_dict(plain_model, plain_opt)
    for name, p in plain_model.named_parameters():
        assert torch.equal(a[name], b[name])
        step_norm = (b[name] - before[name]).norm().item()
        assert step_norm <= 0.1 * 1e-3 * 1.01  # lr * max_norm


def test_accumulation_steps_only_on_last_micro_batch_and_sums_gradients():
    fused_model, fused_opt = _split_model_and_opt(SplitSGD, lr=0.05, momentum=0.9)
    ref_model, ref_opt = _split_model_and_opt(SplitSGD, lr=0.05, momentum=0.9)
    start = export_fp32_state_dict(fused_model, fused_opt)
    fused = FusedBackward(fused_opt, accumulation_steps=3)
    batches = _batches(3)
    assert fused.backward(_loss(fused_model, *batches[0]) / 3) is False
    assert fused.backward(_loss(fused_model, *batches[1]) / 3) is False
    # nothing stepped yet, and the bf16 gradients were already freed
    assert all(torch.equal(v, start[k]) for k, v in export_fp32_state_dict(fused_model, fused_opt).items())
    assert all(p.grad is None for p in fused_model.parameters())
    with pytest.raises(RuntimeError, match="micro-batches"):
        fused_opt.step()
    assert fused.backward(_loss(fused_model, *batches[2]) / 3) is True
    fused_opt.step()
    with pytest.raises(RuntimeError):
        fused_opt.step()  # a second step without new micro-batches

    # Reference: fp32 sum of the three bf16 gradients, one ordinary step.
    sums = {}
    for x, y in batches:
        ref_opt.zero_grad()
        (_loss(ref_model, x, y) / 3).backward()
        for p in ref_model.parameters():
            sums[p] = sums.get(p, 0) + p.grad.float()
    for p in ref_model.parameters():
        ref_opt.step_param(p, sums[p])
    a = export_fp32_state_dict(fused_model, fused_opt)
    b = export_fp32_state_dict(ref_model, ref_opt)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_plain_backward_with_fused_hooks_is_refused_and_remove_restores_ordinary_steps():
    model, opt = _split_model_and_opt()
    fused = FusedBackward(opt)
    x, y = _batches(1)[0]
    with pytest.raises(RuntimeError, match="FusedBackward.backward"):
        _loss(model, x, y).backward()
    fused.remove()
    opt.zero_grad()
    _loss(model, x, y).backward()
    opt.step()
    assert all(p.grad is not None for p in model.parameters())


def test_split_module_export_and_fp32_load_are_exact():
    reference = _model(seed=3)
    fp32 = copy.deepcopy(reference.state_dict())
    model, opt = _model(seed=9), None
    remainders = split_module_(model)
    opt = SplitAdamW(model.parameters(), remainders=remainders)
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    load_fp32_state_dict_(model, opt, fp32)
    exported = export_fp32_state_dict(model, opt)
    assert set(exported) == set(fp32)
    assert all(torch.equal(exported[k].view(torch.int32), fp32[k].view(torch.int32)) for k in fp32)
    # the bf16 weights forward uses are the nearest bf16 values
    for name, p in model.named_parameters():
        assert torch.allclose(p.float(), fp32[name], rtol=2**-8, atol=0)
    # splitting a fresh fp32 module keeps every bit too
    fresh = _model(seed=3)
    rem = split_module_(fresh)
    assert all(
        torch.equal(export_fp32_state_dict(fresh, SplitAdamW(fresh.parameters(), remainders=rem))[k], fp32[k])
        for k in fp32
    )
    with pytest.raises(KeyError):
        load_fp32_state_dict_(model, opt, {"0.weight": fp32["0.weight"]})


def test_optimizer_state_dict_round_trip_resumes_exactly():
    def run(n_before, n_after, bf16_states, reload):
        model, opt = _split_model_and_opt(
            lr=1e-2, state_dtype=torch.bfloat16 if bf16_states else torch.float32
        )
        batches = _batches(n_before + n_after, seed=11)
        for x, y in batches[:n_before]:
            opt.zero_grad()
            _loss(model, x, y).backward()
            opt.step()
        if reload:
            model_sd = copy.deepcopy(model.state_dict())
            opt_sd = copy.deepcopy(opt.state_dict())
            model, opt = _split_model_and_opt(lr=1e-2, state_dtype=opt.state_dtype)
            model.load_state_dict(model_sd)
            opt.load_state_dict(opt_sd)
        for x, y in batches[n_before:]:
            opt.zero_grad()
            _loss(model, x, y).backward()
            opt.step()
        return export_fp32_state_dict(model, opt), opt

    for bf16_states in (False, True):
        straight, _ = run(3, 3, bf16_states, reload=False)
        resumed, opt = run(3, 3, bf16_states, reload=True)
        assert all(torch.equal(straight[k], resumed[k]) for k in straight)
        assert opt.step_count == 6
        dtypes = {v.dtype for s in opt.state.values() for v in s.values() if isinstance(v, torch.Tensor)}
        assert torch.int16 in dtypes
        assert (torch.bfloat16 if bf16_states else torch.float32) in dtypes

