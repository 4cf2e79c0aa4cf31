"""The label DP's front equals brute force and the CP-SAT epsilon-constraint sweep, on chains
and on residual and inception DAGs; its completion bounds never exceed the best completion."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from milp_map.cli.solve import main
from milp_map.core.problem import QUANTITIES, Constraints, Problem, active_bounds
from milp_map.core.solution import Solution
from milp_map.errors import MilpMapError
from milp_map.evaluation.evaluator import evaluate_choice
from milp_map.exact import label_front
from milp_map.exact.pareto import Front, exact_front
from milp_map.formulations import channel_split, layerwise
from milp_map.io.synthetic import InstanceSpec, random_problem, random_split_problem

PAIRS = [("latency", "energy"), ("energy", "proxy"), ("latency", "proxy")]
SEEDS = range(20)
TIGHT = 1e-9
"""Float agreement, as a fraction of each quantity's scale (sums in another order)."""


SIZES = [(4, 3, 3), (5, 3, 2), (5, 2, 3), (6, 2, 2), (4, 2, 3)]
"""(layers, accelerators, DVFS levels): at most 7,776 mappings to enumerate."""

GRAPHS = ["chain", "residual", "inception"]


def _instance(seed: int, shape: str = "chain") -> tuple[Problem, np.ndarray]:
    """A random problem (transitions, DVFS levels) of the given graph shape and the
    (latency, energy, proxy) of every mapping within its bounds. Bounds by seed: none,
    proxy, proxy and latency, proxy and energy; a latency or energy bound sits at a random
    quantile, so it binds but is met."""
    layers, accelerators, levels = SIZES[seed % len(SIZES)]
    spec = InstanceSpec(
        n_layers=layers,
        n_accelerators=accelerators,
        shape=shape,
        operating_points=levels,
        budgets=False,
    )
    free = random_problem(seed, spec)
    every = _all_values(free)
    kind = seed % 4
    if kind == 0:
        return free, every
    rng = np.random.default_rng(seed)
    bounds: dict[str, float] = {"max_proxy_fraction": float(rng.uniform(0.3, 0.9))}
    if kind > 1:
        column = every[:, 0 if kind == 2 else 1]
        name = "max_latency_s" if kind == 2 else "max_energy_j"
        bounds[name] = float(np.quantile(column, rng.uniform(0.2, 0.8)))
    problem = dataclasses.replace(free, constraints=Constraints(**bounds))  # type: ignore[arg-type]
    within = np.ones(len(every), dtype=bool)
    for q, bound in active_bounds(problem).items():
        within &= every[:, QUANTITIES.index(q)] <= bound + problem.tolerance(q)
    return problem, every[within]


def _all_values(problem: Problem) -> np.ndarray:
    """(latency, energy, proxy) of every mapping, from the evaluator."""
    choices = itertools.product(*(range(len(u.options)) for u in problem.units))
    rows = [list(evaluate_choice(problem, choice).as_dict().values()) for choice in choices]
    return np.array(rows).reshape(-1, 3)


def _brute_front(values: np.ndarray, f1: str, f2: str) -> list[tuple[float, float]]:
    pairs = sorted({(v[QUANTITIES.index(f1)], v[QUANTITIES.index(f2)]) for v in values})
    front: list[tuple[float, float]] = []
    for x, y in pairs:
        if not front or y < front[-1][1]:
            front.append((x, y))
    return front


def _cpsat(problem: Problem):
    def solve(objective: str, bounds: Mapping[str, float], hint: Any) -> Solution:
        return layerwise.solve(problem, "cpsat", objective=objective, bounds=bounds, hint=hint)

    return solve


def _no_solver(objective: str, bounds: Mapping[str, float], hint: Any) -> Solution:
    raise AssertionError("the label DP must not call the solver")


def _close(a: tuple[float, float], b: tuple[float, float], problem: Problem, front: Front) -> bool:
    return all(
        abs(x - y) <= TIGHT * problem.scales[q]
        for x, y, q in zip(a, b, front.quantities, strict=True)
    )


def _assert_dp_front_is_brute_force(problem: Problem, values: np.ndarray) -> list[Front]:
    fronts = []
    for quantities in PAIRS:
        dp = exact_front(problem, _no_solver, quantities, progress=False)
        assert dp.method == "label-dp" and dp.complete and dp.delta == 0.0
        expected = _brute_front(values, *quantities)
        got = dp.values()
        assert len(got) == len(expected), (quantities, got, expected)
        assert all(_close(g, e, problem, dp) for g, e in zip(got, expected, strict=True))
        for point in dp.points:
            assert point.status == "optimal" and point.method == "label-dp"
            assert point.metrics == evaluate_choice(problem, point.extra["choice"])
            label = point.metrics.as_dict().values()
            for q, a, b in zip(QUANTITIES, point.extra["label"], label, strict=True):
                assert abs(a - b) <= TIGHT * problem.scales[q]
        fronts.append(dp)
    return fronts


@pytest.mark.parametrize("seed", SEEDS)
def test_dp_front_equals_brute_force_and_the_sweep(seed: int) -> None:
    problem, values = _instance(seed)
    assert max(len(f) for f in label_front.frontier(problem)) == 1 and len(values)
    for dp in _assert_dp_front_is_brute_force(problem, values):
        _assert_sweep_is_the_spaced_dp_front(problem, dp)


@pytest.mark.parametrize("shape", ["residual", "inception"])
@pytest.mark.parametrize("seed", range(12))
def test_dag_fronts_equal_brute_force(seed: int, shape: str) -> None:
    """Branches that stay open across several units: the DP remembers their accelerators."""
    problem, values = _instance(seed, shape)
    assert label_front.applies(problem) and len(values)
    fronts = _assert_dp_front_is_brute_force(problem, values)
    if seed < 3:
        _assert_sweep_is_the_spaced_dp_front(problem, fronts[0])


@pytest.mark.parametrize("sketch", [1, 2])
@pytest.mark.parametrize("seed", range(8))
def test_a_thin_sketch_still_gives_the_whole_front(
    seed: int, sketch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one or two sketch labels per group the incumbents are poor: the exact pass must
    find the rest of the front itself, and never prune a point."""
    monkeypatch.setattr(label_front, "SKETCH_LABELS", sketch)
    problem, values = _instance(seed, GRAPHS[seed % 3])
    _assert_dp_front_is_brute_force(problem, values)


@pytest.mark.parametrize("seed", range(10))
def test_completion_bounds_never_exceed_the_best_completion(seed: int) -> None:
    """Every bound of a partial mapping (ideal point, each weighted sum) is at most the best
    feasible completion's value, for every prefix of every mapping."""
    problem, _ = _instance(seed, GRAPHS[seed % 3])
    quantities = PAIRS[seed % 3]
    search = label_front.Search.of(problem, quantities)
    rng = np.random.default_rng(seed)
    incumbents = rng.uniform(0, 1, size=(5, 2)) * search.scale
    prune = label_front.Prune.of(search, incumbents)
    choices = np.array(list(itertools.product(*(range(len(u.options)) for u in problem.units))))
    full = np.array([list(evaluate_choice(problem, tuple(c)).as_dict().values()) for c in choices])
    feasible = np.all(full <= search.limit, axis=1)
    for k in range(1, len(problem.units)):
        prefix = _prefix_values(problem, choices, k)
        for row in rng.choice(len(choices), size=12):
            same = np.all(choices[:, :k] == choices[row, :k], axis=1) & feasible
            if not same.any():
                continue
            spent = prefix[row : row + 1]
            for bound, column in zip(prune.ideal, search.columns, strict=True):
                assert bound.least(k, spent)[0] <= full[same, column].min() * (1 + 1e-9)
            for bound in prune.weighted:
                best = (full[same] @ bound.weight).min()
                assert bound.least(k, spent)[0] <= best * (1 + 1e-9) + 1e-15


def _prefix_values(problem: Problem, choices: np.ndarray, k: int) -> np.ndarray:
    """(latency, total energy, proxy) of units < k and the edges among them, per choice."""
    static = problem.static_power_w
    values = np.zeros((len(choices), 3))
    for u in range(k):
        for i, o in enumerate(problem.units[u].options):
            on = choices[:, u] == i
            values[on] += (o.latency_s, o.energy_j + static * o.latency_s, o.proxy)
    for e in problem.edges:
        if e.dst >= k:
            continue
        for (a, b), (latency, energy) in e.costs.items():
            src = [problem.units[e.src].options[c].accelerator == a for c in choices[:, e.src]]
            dst = [problem.units[e.dst].options[c].accelerator == b for c in choices[:, e.dst]]
            on = np.array(src) & np.array(dst)
            values[on] += (latency, energy + static * latency, 0.0)
    return values


def _assert_sweep_is_the_spaced_dp_front(problem: Problem, dp: Front) -> None:
    """Every sweep point is a DP point; a DP point the sweep lacks is one its resolution
    merges: less than delta below the last sweep point in f2, or less than the solver's
    bound slack tau below the next sweep point in f1 (pareto.md, Resolution and numerics)."""
    sweep = exact_front(
        problem, _cpsat(problem), dp.quantities, progress=False, method="epsilon-constraint"
    )
    assert sweep.method == "epsilon-constraint" and sweep.complete
    f1, f2 = dp.quantities
    exact, found = dp.values(), sweep.values()
    assert all(any(_close(s, d, problem, dp) for d in exact) for s in found), (found, exact)
    for d in exact:
        if any(_close(s, d, problem, dp) for s in found):
            continue
        before = [s for s in found if s[0] < d[0]]
        after = [s for s in found if s[0] > d[0]]
        within_delta = before and d[1] > before[-1][1] - sweep.delta - problem.tolerance(f2)
        within_tau = after and after[0][0] - d[0] <= problem.tolerance(f1)
        assert within_delta or within_tau, (d, found)


def test_dp_with_a_delta_returns_what_the_sweep_returns() -> None:
    problem = random_problem(1, InstanceSpec(n_layers=4, shape="chain", operating_points=2))
    full = exact_front(problem, _no_solver, ("latency", "energy"), progress=False)
    assert len(full.points) >= 4
    spread = full.values()[0][1] - full.values()[-1][1]
    delta = spread / 3
    dp = exact_front(problem, _no_solver, ("latency", "energy"), progress=False, delta=delta)
    sweep = exact_front(
        problem,
        _cpsat(problem),
        ("latency", "energy"),
        progress=False,
        delta=delta,
        method="epsilon-constraint",
    )
    assert dp.delta == delta and 2 <= len(dp.points) < len(full.points)
    assert len(dp.points) == len(sweep.points)
    assert all(_close(a, b, problem, dp) for a, b in zip(dp.values(), sweep.values(), strict=True))


def test_points_thins_the_dp_front() -> None:
    problem = random_problem(1, InstanceSpec(n_layers=4, shape="chain", operating_points=2))
    full = exact_front(problem, _no_solver, ("latency", "energy"), progress=False)
    thinned = exact_front(problem, _no_solver, ("latency", "energy"), 3, progress=False)
    assert len(thinned.points) == 3 and not thinned.complete and "thinned" in thinned.detail
    assert thinned.values()[0] == full.values()[0]
    assert thinned.values()[-1] == full.values()[-1]


def test_label_cap_falls_back_to_the_sweep(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    problem, values = _instance(1)
    monkeypatch.setattr(label_front, "MAX_LABELS", 3)
    front = exact_front(problem, _cpsat(problem), ("latency", "energy"), progress=False)
    assert front.method == "epsilon-constraint" and front.complete
    assert "falling back" in front.detail
    assert "falling back to the epsilon-constraint sweep" in capsys.readouterr().err
    expected = _brute_front(values, "latency", "energy")
    assert len(front.points) == len(expected)


def test_no_mapping_within_the_bounds_gives_an_empty_complete_front() -> None:
    problem = random_problem(2, InstanceSpec(n_layers=4, shape="chain"))
    tight = dataclasses.replace(problem, constraints=Constraints(max_latency_s=0.0))
    front = exact_front(tight, _no_solver, ("energy", "proxy"), progress=False)
    assert front.method == "label-dp" and front.complete and front.points == ()


def test_wide_graphs_take_the_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_STATES accelerator tuples per frontier, auto sweeps and label-dp refuses."""
    problem, values = _instance(3, "inception")
    assert max(len(f) for f in label_front.frontier(problem)) == 3  # 2 ** 3 tuples
    monkeypatch.setattr(label_front, "MAX_STATES", label_front.state_count(problem) - 1)
    front = exact_front(problem, _cpsat(problem), ("latency", "energy"), progress=False)
    assert front.method == "epsilon-constraint" and front.complete
    assert all(p.method != "label-dp" for p in front.points)
    assert len(front.points) <= len(_brute_front(values, "latency", "energy"))
    with pytest.raises(MilpMapError, match="accelerator tuples"):
        exact_front(problem, _cpsat(problem), ("latency", "energy"), method="label-dp")
    with pytest.raises(MilpMapError, match="MAX_STATES"):
        label_front.label_front(problem, ("latency", "energy"))


def test_frontier_remembers_the_units_whose_edges_are_still_open() -> None:
    """0 -> 1 -> 2 -> 3 with a skip 0 -> 3 and a skip 1 -> 3: unit 0 stays remembered up to
    unit 3, unit 1 from unit 2 on."""
    problem = random_problem(0, InstanceSpec(n_layers=4, shape="chain"))
    skips = [
        dataclasses.replace(problem.edges[0], src=0, dst=3),
        dataclasses.replace(problem.edges[0], src=1, dst=3),
    ]
    wider = dataclasses.replace(problem, edges=(*problem.edges, *skips))
    assert [e.src for e in problem.edges] == [0, 1, 2]
    assert label_front.frontier(wider) == [[], [0], [0, 1], [0, 1, 2]]
    backwards = dataclasses.replace(problem, edges=(dataclasses.replace(skips[0], src=3, dst=0),))
    with pytest.raises(MilpMapError, match="topological order"):
        label_front.frontier(backwards)


def test_channel_split_problems_never_take_the_dp() -> None:
    split = random_split_problem(0, n_layers=3, transitions=True)

    def solve(objective: str, bounds: Mapping[str, float], hint: Any) -> Solution:
        return channel_split.solve(split, "cpsat", objective=objective, bounds=bounds, hint=hint)

    front = exact_front(split, solve, ("latency", "energy"), progress=False)
    assert front.method == "epsilon-constraint" and front.points


def test_unknown_method_is_refused() -> None:
    problem = random_problem(0, InstanceSpec(n_layers=3, shape="chain"))
    with pytest.raises(MilpMapError, match="front method"):
        exact_front(problem, _no_solver, ("latency", "energy"), method="nsga2")


@pytest.mark.parametrize("columns", [2, 3])
def test_dominance_filter_equals_pairwise_comparison(columns: int) -> None:
    """Small integers make ties, duplicates and long blocks (past CHUNK rows) likely."""
    rng = np.random.default_rng(columns)
    values = rng.integers(0, 12, size=(3 * label_front.CHUNK + 7, columns)).astype(float)
    kept = set(label_front._pareto_rows(values).tolist())
    distinct = {tuple(v) for v in values}
    expected = {
        v for v in distinct if not any(w != v and all(np.less_equal(w, v)) for w in distinct)
    }
    assert {tuple(values[i]) for i in kept} == expected
    assert len(kept) == len(expected)  # one row per distinct point


def test_cli_pareto_method_picks_the_dp_or_the_sweep(tmp_path: Path) -> None:
    fronts = {}
    for method in ("auto", "epsilon-constraint"):
        out = tmp_path / f"{method}.json"
        argv = ["--model", "alexnet", "--platform", "rockpi-n10", "--pareto", "latency,energy"]
        argv += ["--pareto-method", method, "--solver", "cpsat", "--quiet", "--out", str(out)]
        assert main(argv) == 0
        fronts[method] = json.loads(out.read_text())
    assert fronts["auto"]["method"] == "label-dp"
    assert fronts["epsilon-constraint"]["method"] == "epsilon-constraint"
    values = {
        m: sorted((p["metrics"]["latency_s"], p["metrics"]["energy_j"]) for p in f["points"])
        for m, f in fronts.items()
    }
    assert len(values["auto"]) == len(values["epsilon-constraint"])
    for a, b in zip(values["auto"], values["epsilon-constraint"], strict=True):
        assert a == pytest.approx(b, rel=1e-6)


def test_a_time_limit_during_the_sketch_gives_an_empty_incomplete_front() -> None:
    problem, _ = _instance(1, "residual")
    front = exact_front(problem, _no_solver, ("latency", "energy"), progress=False, time_limit_s=0)
    assert front.method == "label-dp" and not front.complete and front.points == ()
    assert "time limit" in front.detail


def _stopped_on_call(real: Any, n: int, raised: type[BaseException] | None) -> Any:
    """`real`, except that its n-th call raises `raised` (or returns None when that is None,
    as a pass stopped by its deadline does)."""
    calls = []

    def stopped(*args: Any) -> Any:
        calls.append(args)
        if len(calls) == n:
            if raised is not None:
                raise raised
            return None
        return real(*args)

    return stopped


@pytest.mark.parametrize("stop", ["deadline", "ctrl-c"])
def test_a_stopped_exact_pass_returns_the_sketch_unproven(
    stop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sketch's non-dominated mappings come back feasible (no bound), the front is
    incomplete and says why; each point is a real mapping within the bounds."""
    problem, values = _instance(5, "inception")
    stopped = KeyboardInterrupt if stop == "ctrl-c" else None  # None: _run's past deadline
    monkeypatch.setattr(label_front, "_run", _stopped_on_call(label_front._run, 2, stopped))
    front = exact_front(problem, _no_solver, ("latency", "energy"), progress=False)
    assert front.method == "label-dp" and not front.complete and front.points
    assert ("interrupted" if stop == "ctrl-c" else "time limit") in front.detail
    for point in front.points:
        assert point.status == "feasible" and point.best_bound is None
        assert point.metrics == evaluate_choice(problem, point.extra["choice"])
        got = np.array(list(point.metrics.as_dict().values()))
        assert np.any(np.all(np.abs(values - got) <= 1e-9 * np.abs(values).max(), axis=1))


def test_weights_are_strictly_positive_even_for_an_almost_vertical_hull_edge() -> None:
    """A hull edge that rounds to weight (1, 0) would give 0 * inf = NaN at an open corner
    (found by review): such directions are dropped, the rest stay normalised."""
    stair = np.array([[0.0, 1.0], [1e-14, 0.5], [1.0, 0.0]])
    weights = label_front._weights(stair)
    assert len(weights) and np.all(weights > 0)
    assert np.allclose(weights.sum(axis=1), 1.0)


@pytest.mark.parametrize("method", ["label-dp", "epsilon-constraint"])
def test_ctrl_c_in_a_front_writes_what_it_has_and_exits_130(
    method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by a hostile sweep: an interrupted front exited 1 (incomplete), not 130."""
    from milp_map.exact import pareto

    if method == "label-dp":  # the exact pass
        stopped = _stopped_on_call(label_front._run, 2, KeyboardInterrupt)
        monkeypatch.setattr(label_front, "_run", stopped)
    else:  # the third lexicographic step
        stopped = _stopped_on_call(pareto._lexicographic_step, 3, KeyboardInterrupt)
        monkeypatch.setattr(pareto, "_lexicographic_step", stopped)
    out = tmp_path / "front.json"
    argv = ["--model", "mobilenet_v1", "--platform", "rockpi-n10", "--pareto", "latency,energy"]
    argv += ["--pareto-method", method, "--quiet", "--out", str(out)]
    assert main(argv) == 130
    data = json.loads(out.read_text())
    assert data["points"] and data["complete"] is False and "interrupted" in data["detail"]
