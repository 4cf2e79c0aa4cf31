"""Cross-checks of the channel-split model: CP-SAT = HiGHS = brute force = evaluator."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from functools import cache

import pytest

from milp_map.core.graph import graph_from_layers
from milp_map.core.problem import QUANTITIES, Constraints, build_problem
from milp_map.core.scores import Sensitivity
from milp_map.core.solution import Solution
from milp_map.core.split import SplitProblem, build_split_problem
from milp_map.evaluation.evaluator import evaluate_choice, evaluate_split
from milp_map.evaluation.report import solution_json
from milp_map.exact import bruteforce, bruteforce_split
from milp_map.formulations import channel_split, layerwise
from milp_map.io.models import load_model
from milp_map.io.platforms import load_platform
from milp_map.io.scores import shipped_sensitivity
from milp_map.io.synthetic import conv_layer, random_split_problem

SPECS = {
    "layer": {},
    "channel": {"per_channel": True},
    "transitions": {"transitions": True},
    "channel+transitions": {"per_channel": True, "transitions": True},
    "3acc+table": {"n_layers": 2, "n_accelerators": 3, "p_table": 0.3, "transitions": True},
    "dvfs+gcd": {"n_layers": 2, "operating_points": 2, "channels": (6, 8), "group_size": 4},
    "3acc-channel": {
        "n_layers": 3,
        "n_accelerators": 3,
        "per_channel": True,
        "transitions": True,
        "channels": (4, 6),
    },
}
CASES = [(name, seed) for name in SPECS for seed in range(10)]  # 70 random instances
SOLVERS = ("cpsat", "highs")


@cache
def _instance(name: str, seed: int) -> tuple[SplitProblem, Solution]:
    problem = random_split_problem(seed, **SPECS[name])
    return problem, bruteforce_split.solve(problem)


def _close(a: float, b: float, scale: float) -> bool:
    return abs(a - b) <= 1e-6 * scale


def _is_split(solution: Solution) -> bool:
    return solution.mapping is not None and any(len(p) > 1 for p in solution.mapping.values())


def _meets_bounds(problem: SplitProblem, solution: Solution) -> bool:
    assert solution.metrics is not None
    return all(
        solution.metrics.value(q) <= b + problem.tolerance(q)
        for q in QUANTITIES
        if (b := problem.bound(q)) is not None
    )


def _check_indices(problem: SplitProblem, solution: Solution) -> None:
    """Every splittable unit lists channel indices that partition range(C), n per part."""
    assert solution.mapping is not None
    for unit in problem.units:
        parts = solution.mapping[problem.base.units[unit.index].name]
        if not unit.splittable:
            assert len(parts) == 1
            continue
        seen = []
        for part in parts:
            assert part.channel_indices is not None
            assert len(part.channel_indices) == part.channels
            assert part.channels % unit.group_size == 0
            seen.extend(part.channel_indices)
        assert sorted(seen) == list(range(unit.channels))


@pytest.mark.parametrize(("name", "seed"), CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_split_model_agrees_with_brute_force(name: str, seed: int) -> None:
    problem, reference = _instance(name, seed)
    scale = problem.scales[problem.objective]
    for solver in SOLVERS:
        solution = channel_split.solve(problem, solver)
        assert solution.status == reference.status, solver
        if reference.status == "infeasible":
            continue
        assert _close(solution.objective_value, reference.objective_value, scale), solver
        # the evaluator, fed the solver's mapping, reproduces the reported metrics
        assert evaluate_split(problem, solution.mapping).metrics == solution.metrics
        assert _meets_bounds(problem, solution)
        assert solution.best_bound <= reference.objective_value + 1e-6 * scale
        _check_indices(problem, solution)
    if reference.mapping is not None:
        assert evaluate_split(problem, reference.mapping).metrics == reference.metrics


def test_the_random_set_splits_binds_and_mixes_precisions() -> None:
    """Without real splits, infeasible budgets and per-channel mixes the cross-check is weak."""
    solved = [_instance(name, seed) for name, seed in CASES]
    statuses = [ref.status for _, ref in solved]
    assert statuses.count("infeasible") >= 5
    assert statuses.count("optimal") >= 45
    assert sum(_is_split(ref) for _, ref in solved) >= 15
    mixed = 0  # split units whose parts run at both precisions of per-channel scores
    for problem, ref in solved:
        for unit in problem.units:
            parts = (ref.mapping or {}).get(problem.base.units[unit.index].name, ())
            if unit.proxy.prefix is not None and len(parts) > 1:
                mixed += len({unit.precision[p.accelerator] for p in parts}) == 2
    assert mixed >= 5


@pytest.mark.parametrize("seed", range(8))
def test_proxy_objective_checks_the_channel_choice(seed: int) -> None:
    """Minimising the proxy under a latency budget: brute force tries every channel assignment,
    the model the n channels of smallest score increase."""
    name = ("channel", "channel+transitions", "3acc-channel")[seed % 3]
    problem, _ = _instance(name, seed)
    bounds = {"latency": 0.4 * problem.scales["latency"]}
    reference = bruteforce_split.solve(problem, "proxy", bounds)
    for solver in SOLVERS:
        solution = channel_split.solve(problem, solver, objective="proxy", bounds=bounds)
        assert solution.status == reference.status, solver
        if reference.status == "optimal":
            assert _close(
                solution.objective_value, reference.objective_value, problem.scales["proxy"]
            )
            assert evaluate_split(problem, solution.mapping).metrics == solution.metrics


def test_layerwise_hint_does_not_change_the_optimum() -> None:
    hinted_count = 0
    for name, seed in CASES[::5]:
        problem, reference = _instance(name, seed)
        best = layerwise.solve(problem.base, "cpsat")
        if best.status != "optimal":
            continue
        hint = channel_split.selection_from_layerwise(problem, best.extra["choice"])
        for solver in SOLVERS:
            solution = channel_split.solve(problem, solver, hint=hint)
            assert solution.status == reference.status == "optimal"
            scale = problem.scales[problem.objective]
            assert _close(solution.objective_value, reference.objective_value, scale)
        hinted_count += 1
    assert hinted_count >= 5


@pytest.mark.parametrize("name", list(SPECS))
def test_split_optimum_never_worse_than_layerwise(name: str) -> None:
    """Whole layers are splits too: same bounds, so the split optimum is at most the layer-wise
    one, and the evaluator scores a layer-wise mapping the same in both modes."""
    for seed in range(10):
        problem, split = _instance(name, seed)
        whole = bruteforce.solve(problem.base)
        if whole.status == "infeasible":
            continue
        assert split.status == "optimal"
        scale = problem.scales[problem.objective]
        assert split.objective_value <= whole.objective_value + 1e-6 * scale
        selection = channel_split.selection_from_layerwise(problem, whole.extra["choice"])
        as_split = evaluate_split(problem, channel_split.mapping_of(problem, selection)).metrics
        layer_wise = evaluate_choice(problem.base, whole.extra["choice"])
        for quantity in QUANTITIES:
            assert math.isclose(
                as_split.value(quantity), layer_wise.value(quantity), rel_tol=1e-9, abs_tol=1e-15
            )


@pytest.mark.parametrize("name", list(SPECS))
def test_part_tables_follow_the_cost_models(name: str) -> None:
    """Brute force trusts the part tables; check them against the accelerators' own models."""
    for seed in range(3):
        problem, _ = _instance(name, seed)
        platform = problem.base.platform
        for unit in problem.units:
            if not unit.splittable:
                continue
            layer = problem.base.graph.layer(problem.base.units[unit.index].layers[0])
            for accelerator, parts in unit.parts.items():
                acc = platform.accelerator(accelerator)
                if acc.model is None:  # table-costed: the whole layer only
                    assert {p.channels for p in parts} == {unit.channels}
                    continue
                points = {p.name: p for p in acc.operating_points}
                counts = range(unit.group_size, unit.channels + 1, unit.group_size)
                assert sorted({p.channels for p in parts}) == list(counts)
                for part in parts:
                    point = points.get(part.operating_point or "")
                    freq, power = (
                        (point.freq_scale, point.dynamic_power_w)
                        if point
                        else (1.0, acc.dynamic_power_w)
                    )
                    latency = acc.model.latency_s(layer, part.channels) / freq
                    assert math.isclose(part.latency_s, latency, rel_tol=1e-12)
                    assert math.isclose(part.energy_j, power * latency, rel_tol=1e-12)


@cache
def _diana_mobilenet() -> tuple[SplitProblem, Solution]:
    graph = load_model("mobilenet_v1_025_96")
    sensitivity = shipped_sensitivity("mobilenet_v1_025_96")
    assert sensitivity is not None
    base = build_problem(
        graph, load_platform("diana"), sensitivity, "latency", Constraints(max_proxy_fraction=0.5)
    )
    problem = build_split_problem(base, group_size=8)
    return problem, channel_split.solve(problem, "cpsat")


def test_depthwise_and_grouped_stay_whole_on_diana() -> None:
    problem, solution = _diana_mobilenet()
    assert solution.status == "optimal"
    assert evaluate_split(problem, solution.mapping).metrics == solution.metrics
    graph = problem.base.graph
    depthwise = 0
    for unit in problem.units:
        layer = graph.layer(problem.base.units[unit.index].layers[0])
        parts = solution.mapping[layer.name]
        if layer.op == "dwconv" or layer.groups != 1:
            depthwise += 1
            assert not unit.splittable and len(parts) == 1, layer.name
        if unit.splittable and layer.out_channels % 8 == 0:
            assert unit.group_size == 8, layer.name
        for part in parts:
            assert part.channels is None or part.channels % unit.group_size == 0, layer.name
    assert depthwise >= 10
    assert sum(len(parts) > 1 for parts in solution.mapping.values()) >= 3
    highs = channel_split.solve(problem, "highs")
    assert _close(highs.objective_value, solution.objective_value, problem.scales["latency"])

    # a grouped (not depthwise) conv: no analog part, so it stays whole on the digital unit
    first = conv_layer("c0", 3, 16)
    grouped = replace(conv_layer("c1", 16, 16), groups=4, macs=first.macs // 4)
    graph = graph_from_layers("grouped", [first, grouped], [("c0", "c1")])
    scores = {(n, p): 0.1 for n in ("c0", "c1") for p in ("int8", "ternary")}
    base = build_problem(graph, load_platform("diana"), Sensitivity(scores, "test", "test"))
    split = build_split_problem(base, group_size=8)
    assert [u.splittable for u in split.units] == [True, False]
    assert list(split.units[1].parts) == ["digital"]


def test_json_mapping_partitions_channels() -> None:
    """The result file lists, per split layer, channel indices that partition range(C)."""
    problem, solution = _diana_mobilenet()
    others = [_instance(n, s) for n, s in CASES if n in ("channel", "3acc-channel")]
    for split, answer in [(problem, solution), *others]:
        if answer.mapping is None:
            continue
        data = json.loads(json.dumps(solution_json(split.base, answer)))
        for entry, unit in zip(data["layers"], split.units, strict=True):
            if not unit.splittable:
                assert "channels" not in entry
                continue
            indices = entry["channels"]
            assert set(indices) == set(entry["split"])
            assert {a: len(c) for a, c in indices.items()} == entry["split"]
            assert sorted(c for chunk in indices.values() for c in chunk) == list(
                range(unit.channels)
            )
