"""Baselines on small random instances: valid, honest, never better than the proven optimum.

Every baseline's mapping is re-scored by the evaluator and checked against its own metrics and
the bounds; its objective must not beat brute force (a baseline that did would expose an
evaluator or solver bug); seeded searches must repeat exactly.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from functools import cache

import numpy as np
import pytest

from milp_map.baselines.common import CostTables, Target
from milp_map.baselines.genetic import nsga2
from milp_map.baselines.gradient import gradient_search
from milp_map.baselines.greedy import RULES, greedy
from milp_map.baselines.random_search import random_search
from milp_map.baselines.single import best_single, maeg_gain
from milp_map.core.problem import Problem
from milp_map.core.solution import Solution
from milp_map.core.split import SplitProblem
from milp_map.errors import MilpMapError
from milp_map.evaluation.evaluator import evaluate, evaluate_choice, evaluate_split, violations
from milp_map.exact import bruteforce, bruteforce_split
from milp_map.exact.pareto import hypervolume_2d
from milp_map.io.synthetic import InstanceSpec, random_problem, random_split_problem

LAYER_SPECS = [
    InstanceSpec(n_layers=5, n_accelerators=3, shape="residual"),
    InstanceSpec(n_layers=4, n_accelerators=3, shape="chain", operating_points=2),
    InstanceSpec(n_layers=6, n_accelerators=2, shape="inception"),
]
SPLIT_SPECS = [
    {},
    {"transitions": True, "per_channel": True},
    {"n_layers": 2, "n_accelerators": 3, "p_table": 0.3, "transitions": True},
    {"n_layers": 2, "operating_points": 2, "channels": (6, 8), "group_size": 4},
]
SEEDS = range(8)
FAST_GA = {"population": 16, "generations": 12}
FAST_GRADIENT = {"lambdas": 8, "steps": 60}

Method = Callable[[Target, int], Solution]
METHODS: dict[str, Method] = {
    **{f"greedy-{rule}": (lambda t, seed, rule=rule: greedy(t, rule)) for rule in RULES},
    "random": lambda t, seed: random_search(t, evaluations=300, seed=seed),
    "nsga2": lambda t, seed: nsga2(t, seed=seed, **FAST_GA),
    "gradient": lambda t, seed: gradient_search(t, seed=seed, **FAST_GRADIENT),
}
SEEDED = ("random", "nsga2", "gradient")


@cache
def _layer_case(seed: int) -> tuple[Problem, Solution]:
    problem = random_problem(seed, LAYER_SPECS[seed % len(LAYER_SPECS)])
    return problem, bruteforce.solve(problem)


@cache
def _split_case(seed: int) -> tuple[SplitProblem, Solution]:
    problem = random_split_problem(seed, **SPLIT_SPECS[seed % len(SPLIT_SPECS)])
    return problem, bruteforce_split.solve(problem)


def _check(target: Target, optimum: Solution, solution: Solution) -> None:
    """Feasible answers carry the evaluator's metrics, meet the bounds, never beat the optimum."""
    assert solution.status in ("feasible", "time_limit"), solution.status
    if solution.status != "feasible":
        assert solution.mapping is None and solution.metrics is None
        return
    assert solution.mapping is not None and solution.metrics is not None
    if isinstance(target, SplitProblem):
        truth = evaluate_split(target, solution.mapping).metrics
    else:
        truth = evaluate(target, solution.mapping).metrics
    for q in ("latency", "energy", "proxy"):
        assert truth.value(q) == pytest.approx(solution.metrics.value(q), rel=1e-9, abs=1e-15)
    assert not violations(target, truth)  # type: ignore[arg-type]
    assert optimum.status == "optimal", "a baseline found a mapping the exact method missed"
    value, best = truth.value(target.objective), optimum.objective_value
    assert value >= best - target.tolerance(target.objective), (solution.method, value, best)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", list(METHODS))
def test_layerwise_baseline_valid_and_never_beats_optimum(name: str, seed: int) -> None:
    problem, optimum = _layer_case(seed)
    _check(problem, optimum, METHODS[name](problem, seed))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", ["greedy-fastest", "greedy-transitions", "random", "gradient"])
def test_split_baseline_valid_and_never_beats_optimum(name: str, seed: int) -> None:
    problem, optimum = _split_case(seed)
    _check(problem, optimum, METHODS[name](problem, seed))


@pytest.mark.parametrize("name", SEEDED)
@pytest.mark.parametrize("split", [False, True])
def test_seeded_baselines_repeat(name: str, split: bool) -> None:
    target = _split_case(1)[0] if split else _layer_case(1)[0]
    first, second = METHODS[name](target, 7), METHODS[name](target, 7)
    assert first.status == second.status
    assert first.mapping == second.mapping
    assert first.extra.get("choice") == second.extra.get("choice")


def test_greedy_meets_a_reachable_proxy_budget() -> None:
    """The repair step always reaches the least-proxy mapping, so with only a proxy budget
    every greedy rule returns a feasible mapping."""
    for seed in SEEDS:
        spec = InstanceSpec(n_layers=6, n_accelerators=3, operating_points=2)
        problem = random_problem(seed, spec)
        if problem.bound("latency") is None and problem.bound("energy") is None:
            for rule in RULES:
                assert greedy(problem, rule).status == "feasible"


def test_cost_tables_agree_with_the_evaluator() -> None:
    """The search-side batch scoring equals evaluate_choice on random mappings."""
    rng = np.random.default_rng(0)
    for seed in SEEDS:
        problem, _ = _layer_case(seed)
        tables = CostTables.of(problem)
        choices = np.floor(rng.random((50, len(problem.units))) * tables.n_options).astype(int)
        values = tables.metrics(choices)
        for choice, row in zip(choices, values, strict=True):
            m = evaluate_choice(problem, choice)
            assert row == pytest.approx([m.latency_s, m.energy_j, m.accuracy_proxy], rel=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_fronts_are_feasible_and_dominated_by_the_exact_front(seed: int) -> None:
    """Each method's front stays within the bounds and its hypervolume never exceeds the
    brute-force front's on a shared reference point."""
    problem = random_problem(seed, InstanceSpec(n_layers=4, n_accelerators=3, budgets=False))
    quantities = ("latency", "energy")
    fronts = {
        "random": random_search(problem, 200, seed, front=quantities).extra["front"],
        "nsga2": nsga2(problem, seed=seed, quantities=quantities, front=True, **FAST_GA).extra[
            "front"
        ],
        "gradient": gradient_search(
            problem, seed=seed, quantities=quantities, front=True, **FAST_GRADIENT
        ).extra["front"],
    }
    exact = _brute_front(problem, quantities)
    points = [p for f in fronts.values() for s in f for p in [_xy(s, quantities)]] + exact
    reference = tuple(1.1 * v for v in np.max(points, axis=0))
    exact_hv = hypervolume_2d(exact, reference)  # type: ignore[arg-type]
    for name, front in fronts.items():
        assert front, name
        for s in front:
            assert s.status == "feasible" and s.metrics is not None
        hv = hypervolume_2d([_xy(s, quantities) for s in front], reference)  # type: ignore[arg-type]
        assert hv <= exact_hv * (1 + 1e-9), name


def _xy(solution: Solution, quantities: tuple[str, str]) -> tuple[float, float]:
    assert solution.metrics is not None
    return solution.metrics.value(quantities[0]), solution.metrics.value(quantities[1])


def _brute_front(problem: Problem, quantities: tuple[str, str]) -> list[tuple[float, float]]:
    tables = CostTables.of(problem)
    grids = np.meshgrid(*(np.arange(n) for n in tables.n_options), indexing="ij")
    choices = np.stack([g.ravel() for g in grids], axis=1)
    values = tables.metrics(choices)[:, [0, 1]]
    front: list[tuple[float, float]] = []
    for x, y in sorted(map(tuple, values)):
        if not front or y < front[-1][1]:
            front.append((x, y))
    return front


def test_maeg_gain_of_the_best_single_accelerator_is_zero() -> None:
    problem, _ = _layer_case(0)
    reference = best_single(problem, "latency")
    assert reference is not None and reference.metrics is not None
    latency_gain, _ = maeg_gain(problem, reference.metrics)
    assert latency_gain == pytest.approx(0.0)


def test_gradient_without_torch_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_torch(name: str, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(MilpMapError, match="needs torch"):
        gradient_search(_layer_case(0)[0])
