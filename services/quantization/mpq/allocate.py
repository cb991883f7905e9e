"""Exact bit-width allocation as a mixed-integer linear program (scipy.optimize.milp / HiGHS).

Variables: one binary x[i, b] per layer i and weight bit-width b, and one binary y[g, i, a] per
timestep group g, layer i and activation bit-width a.

Objective (documented; the importance signal only supplies the cost tables):
    minimise  sum_{i,b} x[i,b] * weight_cost[i,b]  +  sum_{g,i,a} y[g,i,a] * act_cost[g,i,a]
Cost tables are "expected error added by putting layer i at this bit-width": measured network
output error for the sensitivity signal, importance x relative quantization error otherwise.
Constraints:
    sum_b x[i,b] = 1 and sum_a y[g,i,a] = 1                       (one choice each)
    sum_{i,b} x[i,b] * n_params[i] * b / 8 <= weight byte budget   (packed codes; scales excluded)
    (1/L) sum_{i,a} y[g,i,a] * a <= average activation bits, per group
Pinned layers (first/last at 8 bits) are fixed by variable bounds.
Weights are stored once, so weight bits are shared by all timestep groups; activation bits and
ranges are chosen per group (they are switched at run time by the current timestep).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp


class BudgetError(ValueError):
    """The requested budget cannot be met with the allowed bit-widths."""


@dataclass
class Allocation:
    weight_bits: dict[str, int]
    act_bits: list[dict[str, int]]  # one dict per timestep group
    weight_bytes: float
    objective: float
    status: str = "optimal"
    extras: dict = field(default_factory=dict)


def weight_bytes_for(n_params: dict[str, int], bits: dict[str, int]) -> float:
    return float(sum(n_params[name] * bits[name] / 8 for name in n_params))


def budget_to_bytes(n_params: dict[str, int], *, avg_weight_bits: float | None, weight_bytes: float | None) -> float:
    if (avg_weight_bits is None) == (weight_bytes is None):
        raise ValueError("give exactly one of avg_weight_bits or weight_bytes")
    if weight_bytes is not None:
        return float(weight_bytes)
    return float(sum(n_params.values()) * avg_weight_bits / 8)


def check_budget(
    n_params: dict[str, int],
    weight_choices: list[int],
    act_choices: list[int],
    *,
    budget_bytes: float,
    avg_act_bits: float,
    pinned: dict[str, int] | None = None,
) -> None:
    """Raise BudgetError if no assignment can meet the budgets (cheap, before any heavy work)."""
    pinned = pinned or {}
    min_bytes = sum(n * (pinned.get(name) or min(weight_choices)) / 8 for name, n in n_params.items())
    if min_bytes > budget_bytes * (1 + 1e-9):
        total = sum(n_params.values())
        raise BudgetError(
            f"weight budget of {budget_bytes:.0f} bytes ({8 * budget_bytes / total:.3f} bits/param) is "
            f"unreachable: the smallest allowed assignment needs {min_bytes:.0f} bytes "
            f"({8 * min_bytes / total:.3f} bits/param) with choices {sorted(weight_choices)} and "
            f"{len(pinned)} layer(s) pinned to 8 bits"
        )
    act_pinned = [min([a for a in act_choices if a >= 8] or [max(act_choices)]) for _ in pinned]
    min_act = (sum(act_pinned) + (len(n_params) - len(pinned)) * min(act_choices)) / max(len(n_params), 1)
    if min_act > avg_act_bits + 1e-9:
        raise BudgetError(
            f"average activation budget {avg_act_bits} bits is unreachable: the smallest allowed "
            f"assignment averages {min_act:.3f} bits with choices {sorted(act_choices)}"
        )


def pinned_act_bits(act_choices: list[int]) -> int:
    """Activation bits for a pinned (first/last) layer: 8 if allowed, else the nearest above."""
    return min([a for a in act_choices if a >= 8] or [max(act_choices)])


def solve_allocation(
    names: list[str],
    n_params: dict[str, int],
    weight_choices: list[int],
    weight_cost: np.ndarray,
    act_choices: list[int],
    act_cost: np.ndarray,
    *,
    budget_bytes: float,
    avg_act_bits: float,
    pinned: dict[str, int] | None = None,
    time_limit: float = 60.0,
) -> Allocation:
    """Solve the MILP above. weight_cost: L x |B|; act_cost: G x L x |A|."""
    pinned = pinned or {}
    unknown = set(pinned) - set(names)
    if unknown:
        raise ValueError(f"unknown layer names: {sorted(unknown)}")
    check_budget(n_params, weight_choices, act_choices, budget_bytes=budget_bytes, avg_act_bits=avg_act_bits, pinned=pinned)
    n_layers, nb, na = len(names), len(weight_choices), len(act_choices)
    weight_cost = np.asarray(weight_cost, dtype=np.float64).reshape(n_layers, nb)
    act_cost = np.asarray(act_cost, dtype=np.float64)
    if act_cost.ndim == 2:
        act_cost = act_cost[None]
    n_groups = act_cost.shape[0]
    assert act_cost.shape == (n_groups, n_layers, na), act_cost.shape
    # scale costs to O(1) for the solver; the argmin is unchanged
    norm = max(np.abs(weight_cost).max(), np.abs(act_cost).max(), 1e-30)
    c = np.concatenate([weight_cost.reshape(-1), act_cost.reshape(-1)]) / norm
    nx, ny = n_layers * nb, n_groups * n_layers * na
    lower, upper = np.zeros(nx + ny), np.ones(nx + ny)
    pin_act = pinned_act_bits(act_choices)
    for i, name in enumerate(names):
        if name in pinned:
            if pinned[name] not in weight_choices:
                raise ValueError(f"pinned bits {pinned[name]} for {name} not among {weight_choices}")
            upper[i * nb : (i + 1) * nb] = 0
            lower[i * nb + weight_choices.index(pinned[name])] = upper[i * nb + weight_choices.index(pinned[name])] = 1
            for g in range(n_groups):
                base = nx + (g * n_layers + i) * na
                upper[base : base + na] = 0
                lower[base + act_choices.index(pin_act)] = upper[base + act_choices.index(pin_act)] = 1
    rows, lbs, ubs = [], [], []
    for i in range(n_layers):  # one weight choice per layer
        r = np.zeros(nx + ny)
        r[i * nb : (i + 1) * nb] = 1
        rows.append(r), lbs.append(1), ubs.append(1)
    for g in range(n_groups):  # one activation choice per layer and group
        for i in range(n_layers):
            r = np.zeros(nx + ny)
            base = nx + (g * n_layers + i) * na
            r[base : base + na] = 1
            rows.append(r), lbs.append(1), ubs.append(1)
    bytes_row = np.zeros(nx + ny)
    for i, name in enumerate(names):
        bytes_row[i * nb : (i + 1) * nb] = [n_params[name] * b / 8 for b in weight_choices]
    total = sum(n_params.values())
    rows.append(bytes_row / total), lbs.append(-np.inf), ubs.append(budget_bytes / total + 1e-9)
    for g in range(n_groups):
        r = np.zeros(nx + ny)
        for i in range(n_layers):
            base = nx + (g * n_layers + i) * na
            r[base : base + na] = np.asarray(act_choices, dtype=np.float64) / n_layers
        rows.append(r), lbs.append(-np.inf), ubs.append(avg_act_bits + 1e-9)
    result = milp(
        c,
        constraints=LinearConstraint(np.vstack(rows), lbs, ubs),
        integrality=np.ones(nx + ny),
        bounds=Bounds(lower, upper),
        options={"time_limit": time_limit},
    )
    if result.x is None:
        raise BudgetError(f"no feasible allocation found: {result.message}")
    x = np.round(result.x).astype(int)
    wbits = {name: weight_choices[int(np.argmax(x[i * nb : (i + 1) * nb]))] for i, name in enumerate(names)}
    abits = []
    for g in range(n_groups):
        abits.append(
            {
                name: act_choices[int(np.argmax(x[nx + (g * n_layers + i) * na : nx + (g * n_layers + i + 1) * na]))]
                for i, name in enumerate(names)
            }
        )
    return Allocation(
        weight_bits=wbits,
        act_bits=abits,
        weight_bytes=weight_bytes_for(n_params, wbits),
        objective=float(result.fun * norm),
        status="optimal" if result.status == 0 else result.message,
    )


def greedy_allocation(
    names: list[str],
    n_params: dict[str, int],
    weight_choices: list[int],
    weight_cost: np.ndarray,
    *,
    budget_bytes: float,
    pinned: dict[str, int] | None = None,
) -> dict[str, int]:
    """Baseline: start at the highest bits and repeatedly lower the layer with the smallest cost
    increase per byte saved until the budget is met (what a MILP should never do worse than)."""
    pinned = pinned or {}
    choices = sorted(weight_choices)
    idx = {n: len(choices) - 1 for n in names}
    for n, b in pinned.items():
        idx[n] = choices.index(b)
    cost = {n: dict(zip(weight_choices, weight_cost[i])) for i, n in enumerate(names)}

    def used() -> float:
        return sum(n_params[n] * choices[idx[n]] / 8 for n in names)

    while used() > budget_bytes + 1e-9:
        best, best_ratio = None, np.inf
        for n in names:
            if n in pinned or idx[n] == 0:
                continue
            hi, lo = choices[idx[n]], choices[idx[n] - 1]
            ratio = (cost[n][lo] - cost[n][hi]) / (n_params[n] * (hi - lo) / 8)
            if ratio < best_ratio:
                best, best_ratio = n, ratio
        if best is None:
            raise BudgetError("greedy allocation cannot meet the budget")
        idx[best] -= 1
    return {n: choices[idx[n]] for n in names}
