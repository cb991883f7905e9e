import numpy as np
import pytest
import torch

from services.quantization.mpq.allocate import BudgetError, greedy_allocation, solve_allocation, weight_bytes_for
from services.quantization.mpq.quantizers import (
    calibrate_act_range,
    pack_codes,
    quantize_weight,
    unpack_codes,
)


def test_milp_meets_budget_and_beats_greedy():
    # knapsack-like case where "best cost per byte first" is myopic
    names = ["big", "s1", "s2"]
    n_params = {"big": 100, "s1": 50, "s2": 50}
    choices = [2, 4, 8]
    cost = np.array(
        [
            [10.0, 0.0, 0.0],  # big: 2 bits is expensive, 4 bits is free
            [6.0, 0.0, 0.0],
            [6.0, 0.0, 0.0],
        ]
    )
    budget = 100 * 4 / 8 + 50 * 4 / 8 + 50 * 2 / 8  # = 87.5 bytes
    greedy = greedy_allocation(names, n_params, choices, cost, budget_bytes=budget)
    alloc = solve_allocation(
        names, n_params, choices, cost, [8], np.zeros((3, 1)), budget_bytes=budget, avg_act_bits=8
    )
    assert alloc.weight_bytes <= budget + 1e-9
    assert weight_bytes_for(n_params, greedy) <= budget + 1e-9

    def total(bits):
        return sum(cost[i, choices.index(bits[n])] for i, n in enumerate(names))

    assert total(alloc.weight_bits) == pytest.approx(6.0)
    assert total(alloc.weight_bits) < total(greedy)


def test_activation_budget_and_pins_and_groups():
    names = [f"l{i}" for i in range(6)]
    n_params = {n: 10 for n in names}
    wcost = np.tile(np.array([[3.0, 1.0, 0.0]]), (6, 1))
    acost = np.stack([np.tile(np.array([[5.0, 2.0, 0.0]]), (6, 1)) * (g + 1) for g in range(2)])
    acost[1, 2] = [100.0, 100.0, 0.0]  # layer 2 needs 16-bit activations in group 1 only
    alloc = solve_allocation(
        names, n_params, [2, 4, 8], wcost, [4, 8, 16], acost,
        budget_bytes=6 * 10 * 4 / 8, avg_act_bits=8, pinned={"l0": 8},
    )
    assert alloc.weight_bits["l0"] == 8 and alloc.act_bits[0]["l0"] == 8
    assert alloc.weight_bytes <= 30 + 1e-9
    assert len(alloc.act_bits) == 2
    for group in alloc.act_bits:
        assert sum(group.values()) / 6 <= 8 + 1e-9
    assert alloc.act_bits[1]["l2"] == 16


def test_unreachable_budget_raises():
    with pytest.raises(BudgetError, match="unreachable"):
        solve_allocation(
            ["a", "b"], {"a": 8, "b": 8}, [4, 8], np.zeros((2, 2)), [8], np.zeros((2, 1)),
            budget_bytes=7, avg_act_bits=8,
        )
    with pytest.raises(BudgetError, match="activation"):
        solve_allocation(
            ["a", "b"], {"a": 8, "b": 8}, [4, 8], np.zeros((2, 2)), [8, 16], np.zeros((2, 2)),
            budget_bytes=100, avg_act_bits=6,
        )
    with pytest.raises(ValueError, match="unknown layer"):
        solve_allocation(
            ["a"], {"a": 8}, [4, 8], np.zeros((1, 2)), [8], np.zeros((1, 1)),
            budget_bytes=100, avg_act_bits=8, pinned={"zzz": 8},
        )


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_clipping_search_lowers_mse(bits):
    torch.manual_seed(0)
    # heavy-tailed weights: clipping the outliers pays off
    w = torch.distributions.StudentT(3.0).sample((16, 64))
    err_clip = ((quantize_weight(w, bits).dequantize() - w) ** 2).mean()
    err_plain = ((quantize_weight(w, bits, clip_search=False).dequantize() - w) ** 2).mean()
    assert err_clip < err_plain


@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8])
def test_packing_round_trip(bits):
    torch.manual_seed(bits)
    w = torch.randn(7, 3, 3, 5)
    qw = quantize_weight(w, bits)
    packed = pack_codes(qw.codes, bits)
    assert packed.dtype == np.uint8
    assert packed.nbytes == int(np.ceil(w.numel() * bits / 8))
    assert torch.equal(unpack_codes(packed, bits, tuple(w.shape)), qw.codes)
    assert qw.codes.min() >= -(2 ** (bits - 1)) and qw.codes.max() <= 2 ** (bits - 1) - 1


def test_activation_quantizer_asymmetric_range():
    x = torch.rand(5000) * 3 + 1.0  # all positive: asymmetric range matters
    act = calibrate_act_range(x, 4)
    err = ((act.fake_quant(x) - x) ** 2).mean()
    assert err < (3.0 / 15) ** 2  # within one step of a 16-level grid over the data range
    assert torch.allclose(calibrate_act_range(x, 16).fake_quant(x), x, atol=1e-3)
