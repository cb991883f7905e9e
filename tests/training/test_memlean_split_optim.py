"""Exactness of the bf16 + int16 split and of the split optimizers."""

from __future__ import annotations

import pytest
import torch

from services.training.memlean.split import (
    rebuild_fp32,
    split_fp32,
    stochastic_round_to_bf16_,
)
from services.training.memlean.optim import SplitAdamW, SplitSGD


def _bits(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous().view(torch.int32)


def _awkward_values(n: int = 200_000, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    normal = torch.randn(n, generator=g) * torch.exp(torch.randn(n, generator=g) * 8)
    random_bits = torch.randint(-(2**31), 2**31 - 1, (n,), generator=g, dtype=torch.int32)
    random_bits = random_bits.view(torch.float32)
    random_bits = random_bits[torch.isfinite(random_bits)]
    special = torch.tensor(
        [0.0, -0.0, 1.0, -1.0, 3.4e38, -3.4e38, 1e-45, -1e-45, 1.17e-38, float("inf"), -float("inf")]
    )
    return torch.cat([normal, random_bits, special])


def test_split_round_trips_exactly_and_hi_is_nearest_bf16():
    x = _awkward_values()
    hi, lo = split_fp32(x)
    assert hi.dtype == torch.bfloat16 and lo.dtype == torch.int16
    assert torch.equal(_bits(rebuild_fp32(hi, lo)), _bits(x))
    cast = x.to(torch.bfloat16)
    # The ordinary cast rounds ties to even, ours away from zero: ties are the only difference.
    tie = (_bits(x) & 0xFFFF) == 0x8000
    differ = _bits(hi.float()) != _bits(cast.float())
    assert not (differ & ~tie).any()


def test_split_ties_round_away_from_zero_and_still_rebuild():
    base = torch.tensor([1.0, -1.0, 3.0, -7.5], dtype=torch.float32)
    x = (_bits(base) | 0x8000).view(torch.float32)  # exactly half-way between two bf16
    hi, lo = split_fp32(x)
    assert torch.equal(_bits(rebuild_fp32(hi, lo)), _bits(x))
    assert (hi.float().abs() > base.abs()).all()


def test_stochastic_rounding_is_unbiased_and_brackets_the_value():
    value = torch.full((100_000,), 1.0 + 2**-9)  # a quarter of the way from 1.0 to the next bf16
    target = torch.empty_like(value, dtype=torch.bfloat16)
    stochastic_round_to_bf16_(value.clone(), target, torch.Generator().manual_seed(0))
    got = target.float()
    assert set(got.unique().tolist()) == {1.0, 1.0 + 2**-7}
    assert abs(got.mean().item() - (1.0 + 2**-9)) < 6e-5  # about 5 standard errors


def _reference_and_split(shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    masters = [torch.randn(s, generator=g) for s in shapes]
    ref = [torch.nn.Parameter(m.clone()) for m in masters]
    split_params, remainders = [], {}
    for m in masters:
        hi, lo = split_fp32(m)
        p = torch.nn.Parameter(hi)
        split_params.append(p)
        remainders[p] = lo
    return ref, split_params, remainders


SHAPES = [(37, 11), (5,), (3, 4, 3, 3), (70_001,)]  # the last one spans several chunks


@pytest.mark.parametrize("chunk", [1 << 15, 1000])
def test_adamw_is_bit_identical_to_torch(chunk):
    ref, params, remainders = _reference_and_split(SHAPES)
    ours = SplitAdamW(
        params, lr=3e-3, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1,
        remainders=remainders, chunk_elements=chunk,
    )
    theirs = torch.optim.AdamW(ref, lr=3e-3, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1, foreach=False)
    g = torch.Generator().manual_seed(1)
    for _ in range(12):
        for p, r in zip(params, ref):
            grad = torch.randn(r.shape, generator=g) * 1e-2
            r.grad = grad
            ours.step_param(p, grad.clone())  # fp32 gradients are accepted as-is
        theirs.step()
    for p, r in zip(params, ref):
        assert torch.equal(_bits(ours.master_fp32(p)), _bits(r.detach()))
        assert torch.equal(p.detach(), split_fp32(r.detach())[0])


def test_adamw_with_bf16_gradients_matches_torch_fed_the_upcast_gradient():
    ref, params, remainders = _reference_and_split(SHAPES[:2], seed=3)
    ours = SplitAdamW(params, lr=1e-2, remainders=remainders)
    theirs = torch.optim.AdamW(ref, lr=1e-2, foreach=False)
    g = torch.Generator().manual_seed(4)
    for _ in range(5):
        for p, r in zip(params, ref):
            grad = torch.randn(r.shape, generator=g).bfloat16()
            p.grad = grad
            r.grad = grad.float()
        ours.step()
        theirs.step()
    for p, r in zip(params, ref):
        assert torch.equal(_bits(ours.master_fp32(p)), _bits(r.detach()))


@pytest.mark.parametrize("nesterov,dampening,wd", [(False, 0.0, 0.0), (True, 0.0, 1e-2), (False, 0.3, 1e-3)])
def test_sgd_momentum_is_bit_identical_to_torch(nesterov, dampening, wd):
    ref, params, remainders = _reference_and_split(SHAPES, seed=5)
    kw = dict(lr=5e-2, momentum=0.9, dampening=dampening, weight_decay=wd, nesterov=nesterov)
    ours = SplitSGD(params, remainders=remainders, chunk_elements=4096, **kw)
    theirs = torch.optim.SGD(ref, foreach=False, **kw)
    g = torch.Generator().manual_seed(6)
    for _ in range(8):
        for p, r in zip(params, ref):
            grad = torch.randn(r.shape, generator=g)
            r.grad = grad
            ours.step_param(p, grad.clone())
        theirs.step()
    for p, r in zip(params, ref):
        assert torch.equal(_bits(ours.master_fp32(p)), _bits(r.detach()))


@pytest.mark.parametrize("cls", [SplitAdamW, SplitSGD])
def test_bf16_states_track_fp32_states_closely(cls):
    ref, params, remainders = _reference_and_split([(20_000,)], seed=7)
    _, params_b, remainders_b = _reference_and_split([(20_000,)], seed=7)
    exact = cls(params, lr=1e-3, remainders=remainders)
    lean = cls(params_b, lr=1e-3, remainders=remainders_b, state_dtype=torch.bfloat16)
    for state in lean.state.values():
        assert all(v.dtype != torch.float32 for v in state.values() if isinstance(v, torch.Tensor))
    g = torch.Generator().manual_seed(8)
    start = exact.master_fp32(params[0])
    for _ in range(20):
        grad = torch.randn(20_000, generator=g).bfloat16()
        params[0].grad, params_b[0].grad = grad.clone(), grad.clone()
        exact.step()
        lean.step()
    moved = (exact.master_fp32(params[0]) - start).abs().mean()
    gap = (exact.master_fp32(params[0]) - lean.master_fp32(params_b[0])).abs().mean()
    state = lean.state[params_b[0]]
    moments = [v for k, v in state.items() if k in ("exp_avg", "exp_avg_sq", "momentum_buffer")]
    assert moments and all(m.dtype == torch.bfloat16 for m in moments)
    assert gap < 0.05 * moved


def test_lr_scheduler_drives_the_learning_rate():
    _, params, remainders = _reference_and_split([(10,)])
    opt = SplitSGD(params, lr=1.0, momentum=0.0, remainders=remainders)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (step + 1))
    before = opt.master_fp32(params[0])
    lrs = []
    for _ in range(3):
        params[0].grad = torch.ones(10, dtype=torch.bfloat16)
        after_prev = opt.master_fp32(params[0])
        opt.step()
        lrs.append((after_prev - opt.master_fp32(params[0])).mean().item())
        sched.step()
    assert lrs == pytest.approx([1.0, 0.5, 1 / 3], rel=1e-2)
    assert opt.step_count == 3
    assert before is not None


def test_rejects_non_bf16_parameters_and_bad_hyperparameters():
    with pytest.raises(TypeError):
        SplitAdamW([torch.nn.Parameter(torch.zeros(3))])
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.bfloat16))
    with pytest.raises(ValueError):
        SplitAdamW([p], lr=0.0)
    with pytest.raises(ValueError):
        SplitSGD([p], lr=1e-3, state_dtype=torch.float16)


def test_pooled_rounding_noise_is_uniform_and_reproducible():
    from services.training.memlean.split import RoundingNoise

    draws = [RoundingNoise(3, torch.Generator().manual_seed(1)).draw(50_000) for _ in range(2)]
    assert torch.equal(draws[0], draws[1])
    noise = draws[0]
    assert noise.min() >= 0 and noise.max() < 2**16
    assert abs(noise.double().mean().item() / 2**16 - 0.5) < 0.01
    value = torch.full((50_000,), 1.0 + 2**-9)
    target = torch.empty_like(value, dtype=torch.bfloat16)
    stochastic_round_to_bf16_(value.clone(), target, noise=noise)
    assert abs(target.float().mean().item() - (1.0 + 2**-9)) < 1e-4


# ----------------------------------------------------------------------------- bucketed and compiled updates
BUCKET_SHAPES = [(37, 11), (5,), (3, 4, 3, 3), (70_001,), (1,), (300, 3)]


@pytest.mark.parametrize(
    "make_ours,make_theirs",
    [
        (lambda ps, rem: SplitAdamW(ps, lr=3e-3, weight_decay=0.1, remainders=rem, bucket_elements=4096),
         lambda ps: torch.optim.AdamW(ps, lr=3e-3, weight_decay=0.1, foreach=False)),
        (lambda ps, rem: SplitSGD(ps, lr=5e-2, momentum=0.9, nesterov=True, remainders=rem, bucket_elements=4096),
         lambda ps: torch.optim.SGD(ps, lr=5e-2, momentum=0.9, nesterov=True, foreach=False)),
        (lambda ps, rem: SplitSGD(ps, lr=5e-2, momentum=0.0, remainders=rem, bucket_elements=4096),
         lambda ps: torch.optim.SGD(ps, lr=5e-2, momentum=0.0, foreach=False)),
    ],
    ids=["adamw", "sgd-nesterov", "sgd-no-momentum"],
)
def test_bucketed_small_parameters_stay_bit_identical_to_torch(make_ours, make_theirs):
    """Small parameters gathered into one flat update (the GPU default) change no bit."""
    ref, params, remainders = _reference_and_split(BUCKET_SHAPES, seed=11)
    ours, theirs = make_ours(params, remainders), make_theirs(ref)
    g = torch.Generator().manual_seed(12)
    for _ in range(6):
        for p, r in zip(params, ref):
            r.grad = torch.randn(r.shape, generator=g) * 1e-2
            ours.step_param(p, r.grad.clone())
        assert ours._buckets, "small parameters should have been deferred to a bucket"
        ours.step()  # flushes the bucket
        theirs.step()
    for p, r in zip(params, ref):
        assert torch.equal(_bits(ours.master_fp32(p)), _bits(r.detach()))


def test_reading_weights_flushes_pending_bucketed_updates():
    ref, params, remainders = _reference_and_split([(10,), (20,)], seed=13)
    ours = SplitAdamW(params, lr=1e-2, remainders=remainders, bucket_elements=1 << 12)
    theirs = torch.optim.AdamW(ref, lr=1e-2, foreach=False)
    for p, r in zip(params, ref):
        r.grad = torch.ones(r.shape)
        ours.step_param(p, r.grad)
    theirs.step()
    # No step() yet: master_fp32 must still see the update.
    assert all(torch.equal(_bits(ours.master_fp32(p)), _bits(r.detach())) for p, r in zip(params, ref))


def _have_cpp_compiler() -> bool:
    import shutil

    return any(shutil.which(c) for c in ("g++", "c++", "clang++"))


@pytest.mark.skipif(not _have_cpp_compiler(), reason="TorchInductor's CPU backend needs a C++ compiler")
@pytest.mark.parametrize("bucket", [0, 1 << 16])
def test_compiled_kernel_matches_the_eager_update_to_rounding(bucket):
    """The one-kernel update (the CUDA default) computes the same AdamW: equal up to a few
    last-bit differences from a compiler's operation fusion, and its split stays exact."""
    _, params_e, rem_e = _reference_and_split(BUCKET_SHAPES, seed=14)
    _, params_c, rem_c = _reference_and_split(BUCKET_SHAPES, seed=14)
    eager = SplitAdamW(params_e, lr=3e-3, weight_decay=0.1, remainders=rem_e, kernel="eager")
    compiled = SplitAdamW(params_c, lr=3e-3, weight_decay=0.1, remainders=rem_c, kernel="compiled",
                          bucket_elements=bucket)
    g = torch.Generator().manual_seed(15)
    for _ in range(4):
        for pe, pc in zip(params_e, params_c):
            grad = (torch.randn(pe.shape, generator=g) * 1e-2).bfloat16()
            eager.step_param(pe, grad)
            compiled.step_param(pc, grad)
        eager.step()
        compiled.step()
    assert compiled.kernel == "compiled", compiled.kernel_fallback_reason
    for pe, pc in zip(params_e, params_c):
        a, b = eager.master_fp32(pe), compiled.master_fp32(pc)
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-9)
        # The bf16 weight is still the nearest bf16 to the kernel's own fp32 result.
        assert torch.equal(pc.detach(), split_fp32(b)[0])


def test_compiled_kernel_is_adamw_only_and_kernel_names_are_checked():
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="AdamW only"):
        SplitSGD([p], lr=1e-3, kernel="compiled")
    with pytest.raises(ValueError, match="kernel"):
        SplitAdamW([p], lr=1e-3, kernel="triton")
    assert SplitAdamW([p], lr=1e-3).kernel == "eager"  # auto on CPU
