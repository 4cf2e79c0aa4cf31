"""Exact Pareto fronts: the epsilon-constraint sweep equals the brute-force non-dominated set."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from milp_map.baselines.single import single_accelerator
from milp_map.core.problem import QUANTITIES, Problem
from milp_map.core.solution import Metrics, Solution
from milp_map.errors import MilpMapError
from milp_map.evaluation.evaluator import evaluate_choice, mapping_of
from milp_map.evaluation.plots import plot_front, plot_mapping
from milp_map.evaluation.report import write_front
from milp_map.exact.pareto import Front, exact_front, hypervolume_2d, parse_quantities, thin
from milp_map.formulations import layerwise
from milp_map.io.synthetic import InstanceSpec, random_problem

PAIRS = [("latency", "energy"), ("energy", "proxy"), ("latency", "proxy")]
SPECS = [
    InstanceSpec(n_layers=5, n_accelerators=3, shape="residual", budgets=False),
    InstanceSpec(n_layers=6, n_accelerators=2, shape="inception", budgets=False),
    InstanceSpec(n_layers=4, n_accelerators=3, shape="chain", operating_points=2, budgets=False),
]
SEEDS = range(15)
SWEEP = "epsilon-constraint"
"""Narrow graphs would take the label DP (tests/test_label_front.py); these check the sweep."""


def _true_front(problem: Problem, f1: str, f2: str) -> list[tuple[float, float]]:
    """Every mapping evaluated; the non-dominated (f1, f2) values among those within bounds."""
    bounds = {q: b for q in QUANTITIES if (b := problem.bound(q)) is not None}
    values = set()
    for choice in itertools.product(*(range(len(u.options)) for u in problem.units)):
        m = evaluate_choice(problem, choice)
        if all(m.value(q) <= b + problem.tolerance(q) for q, b in bounds.items()):
            values.add((m.value(f1), m.value(f2)))
    front: list[tuple[float, float]] = []
    for x, y in sorted(values):
        if not front or y < front[-1][1]:
            front.append((x, y))
    return front


def _solve_fn(problem: Problem, solver: str = "cpsat"):
    def solve(objective: str, bounds: Mapping[str, float], hint: Any) -> Solution:
        return layerwise.solve(problem, solver, objective=objective, bounds=bounds, hint=hint)

    return solve


def _assert_same_front(problem: Problem, front: Front, expected: list[tuple[float, float]]) -> None:
    f1, f2 = front.quantities
    got = front.values()
    assert len(got) == len(expected), (got, expected)
    for (x, y), (ex, ey) in zip(got, expected, strict=True):
        assert abs(x - ex) <= 1e-6 * problem.scales[f1]
        assert abs(y - ey) <= 1e-6 * problem.scales[f2]


@pytest.mark.parametrize("seed", SEEDS)
def test_front_equals_brute_force(seed: int) -> None:
    problem = random_problem(seed, SPECS[seed % len(SPECS)])
    for quantities, solver in itertools.product(PAIRS, ("cpsat", "highs")):
        front = exact_front(
            problem, _solve_fn(problem, solver), quantities, progress=False, method=SWEEP
        )
        assert front.complete, (quantities, solver, front.detail)
        assert all(p.status == "optimal" for p in front.points)
        _assert_same_front(problem, front, _true_front(problem, *quantities))
        for point in front.points:  # the evaluator reproduces every point
            assert point.metrics == evaluate_choice(problem, point.extra["choice"])


@pytest.mark.parametrize("seed", range(4))
def test_problem_bounds_cut_the_front(seed: int) -> None:
    problem = random_problem(seed, InstanceSpec(n_layers=5, budgets=True))
    for quantities in PAIRS:
        front = exact_front(problem, _solve_fn(problem), quantities, progress=False, method=SWEEP)
        assert front.complete
        _assert_same_front(problem, front, _true_front(problem, *quantities))


class _Recorder:
    """Wraps layerwise CP-SAT; records calls and can replace the answer of chosen calls."""

    def __init__(self, problem: Problem, overrides: Mapping[int, str] | None = None) -> None:
        self.problem = problem
        self.calls: list[tuple[str, dict[str, float], Any]] = []
        self.overrides = dict(overrides or {})

    def __call__(self, objective: str, bounds: Mapping[str, float], hint: Any) -> Solution:
        self.calls.append((objective, dict(bounds), hint))
        what = self.overrides.get(len(self.calls))
        if what == "interrupt":
            raise KeyboardInterrupt
        solution = layerwise.solve(self.problem, objective=objective, bounds=bounds, hint=hint)
        if what == "feasible":
            return dataclasses.replace(solution, status="feasible")
        if what in ("time_limit", "infeasible"):
            return Solution("cpsat", what, objective)
        return solution


def _big_front_problem() -> Problem:
    problem = random_problem(1, SPECS[2])  # DVFS levels: 8 points
    assert len(_true_front(problem, "latency", "energy")) >= 6
    return problem


def test_each_step_is_hinted_with_the_last_mapping() -> None:
    problem = _big_front_problem()
    record = _Recorder(problem)
    front = exact_front(problem, record, ("latency", "energy"), progress=False, method=SWEEP)
    objectives = [objective for objective, _, _ in record.calls]
    assert objectives == ["latency", "energy"] * len(front.points) + ["latency"]
    assert record.calls[0][2] is None
    for k, point in enumerate(front.points):
        assert record.calls[2 * k + 1][2] is not None  # the lexicographic step
        assert record.calls[2 * k + 2][2] == point.extra["choice"]  # next sweep step
        assert point.metrics is not None
        bound = record.calls[2 * k + 2][1]["energy"]
        assert bound < point.metrics.energy_j


def test_unproven_step_keeps_the_point_and_flags_the_front() -> None:
    problem = _big_front_problem()
    record = _Recorder(problem, {3: "feasible"})
    front = exact_front(problem, record, ("latency", "energy"), progress=False, method=SWEEP)
    assert not front.complete
    assert [p.status for p in front.points].count("feasible") == 1
    _assert_same_front(problem, front, _true_front(problem, "latency", "energy"))


def test_time_limit_without_mapping_ends_the_sweep_incomplete() -> None:
    problem = _big_front_problem()
    front = exact_front(
        problem,
        _Recorder(problem, {5: "time_limit"}),
        ("latency", "energy"),
        progress=False,
        method=SWEEP,
    )
    assert not front.complete and "time_limit" in front.detail
    assert len(front.points) == 2


def test_ctrl_c_returns_the_points_found_so_far() -> None:
    problem = _big_front_problem()
    front = exact_front(
        problem,
        _Recorder(problem, {5: "interrupt"}),
        ("latency", "energy"),
        progress=False,
        method=SWEEP,
    )
    assert not front.complete and "interrupted" in front.detail
    assert len(front.points) == 2
    assert all(p.status == "optimal" for p in front.points)


def test_infeasible_problem_gives_an_empty_complete_front() -> None:
    problem = _big_front_problem()
    front = exact_front(
        problem,
        _Recorder(problem, {1: "infeasible"}),
        ("energy", "proxy"),
        progress=False,
        method=SWEEP,
    )
    assert front.complete and front.points == ()
    assert list(front.to_frame().columns) == [
        "latency_s",
        "energy_j",
        "accuracy_proxy",
        "status",
        "gap",
        "solve_time_s",
    ]


def test_coarse_delta_merges_close_points() -> None:
    problem = _big_front_problem()
    full = exact_front(problem, _solve_fn(problem), ("latency", "energy"), progress=False)
    spread = full.values()[0][1] - full.values()[-1][1]
    coarse = exact_front(
        problem, _solve_fn(problem), ("latency", "energy"), progress=False, delta=spread / 2
    )
    assert coarse.complete and 2 <= len(coarse.points) < len(full.points)
    assert coarse.values()[0] == pytest.approx(full.values()[0])
    energies = [e for _, e in coarse.values()]
    assert all(a - b >= spread / 2 for a, b in itertools.pairwise(energies))


# ----------------------------------------------------------------------------- hypervolume


def test_hypervolume_of_a_staircase_by_hand() -> None:
    assert hypervolume_2d([(1, 3), (2, 2), (3, 1)], (4, 4)) == pytest.approx(6.0)
    assert hypervolume_2d([(0, 0)], (2, 3)) == pytest.approx(6.0)
    # a dominated point, a duplicate and points beyond the reference add nothing
    more = [(3, 1), (1, 3), (2, 2), (2.5, 2.5), (2, 2), (5, 0), (0, 4)]
    assert hypervolume_2d(more, (4, 4)) == pytest.approx(6.0)
    assert hypervolume_2d([], (1, 1)) == 0.0


def test_hypervolume_equals_a_grid_count() -> None:
    """On integer points, the area is the number of unit cells some point dominates."""
    points = [(0, 7), (2, 4), (3, 2), (6, 0), (5, 3)]
    cells = sum(any(px <= x and py <= y for px, py in points) for x in range(8) for y in range(9))
    assert hypervolume_2d(points, (8, 9)) == pytest.approx(cells)


# ----------------------------------------------------------------------------- thinning


def _line_front(n: int) -> Front:
    points = tuple(
        Solution(
            "fake",
            "optimal",
            "energy",
            metrics=Metrics(latency_s=float(k), energy_j=float(n - k) ** 2, accuracy_proxy=0.0),
        )
        for k in range(n)
    )
    return Front(("latency", "energy"), points, complete=True, solve_time_s=1.0)


@pytest.mark.parametrize("n", [2, 3, 5, 11, 19])
def test_thin_keeps_n_points_and_both_extremes(n: int) -> None:
    front = _line_front(20)
    thinned = thin(front, n)
    assert len(thinned.points) == n
    assert thinned.points[0] is front.points[0] and thinned.points[-1] is front.points[-1]
    kept = [front.points.index(p) for p in thinned.points]
    assert kept == sorted(set(kept))
    assert not thinned.complete and "thinned" in thinned.detail
    assert thinned.thinned == front.complete


def test_thin_spreads_along_the_front_and_leaves_small_fronts_alone() -> None:
    front = _line_front(20)
    assert thin(front, 20) is front
    with pytest.raises(MilpMapError, match="--points"):
        thin(front, 1)
    # the steep start (large energy steps) keeps more points than the flat end
    kept = [front.points.index(p) for p in thin(front, 5).points]
    assert kept[1] < 10


def test_points_argument_thins_the_computed_front() -> None:
    problem = _big_front_problem()
    front = exact_front(problem, _solve_fn(problem), ("latency", "energy"), 3, progress=False)
    full = _true_front(problem, "latency", "energy")
    assert len(front.points) == 3 and not front.complete
    assert front.values()[0] == pytest.approx(full[0]) and front.values()[-1] == pytest.approx(
        full[-1]
    )


# ----------------------------------------------------------------------------- output


def test_write_front_files_reload(tmp_path: Path) -> None:
    problem = _big_front_problem()
    front = exact_front(problem, _solve_fn(problem), ("energy", "proxy"), progress=False)
    paths = write_front(problem, front, tmp_path / "front.json")
    assert [p.name for p in paths] == ["front.csv", "front.json"]
    table = pd.read_csv(paths[0])
    pd.testing.assert_frame_equal(table, front.to_frame(), check_dtype=False)
    data = json.loads(paths[1].read_text())
    assert data["quantities"] == ["energy", "proxy"] and data["complete"] is True
    assert len(data["points"]) == len(front.points)
    for entry, point in zip(data["points"], front.points, strict=True):
        assert point.metrics is not None
        assert entry["metrics"] == point.metrics.as_dict()
        assert len(entry["layers"]) == len(problem.graph)
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_write_front_names_a_missing_folder(tmp_path: Path) -> None:
    problem = _big_front_problem()
    front = _line_front(3)
    with pytest.raises(MilpMapError, match="does not exist"):
        write_front(problem, front, tmp_path / "nowhere" / "front")


def test_plots_write_png(tmp_path: Path) -> None:
    problem = _big_front_problem()
    front = exact_front(problem, _solve_fn(problem), ("latency", "energy"), progress=False)
    markers = single_accelerator(problem, "latency")
    path = tmp_path / "front.png"
    plot_front(front, markers, path, "latency vs energy")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    mapping = tmp_path / "mapping.png"
    choice = [0] * len(problem.units)
    solution = Solution("first", "feasible", "latency", mapping=mapping_of(problem, choice))
    plot_mapping(problem, solution, mapping)
    assert mapping.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_front_plot_zooms_on_the_front_and_says_which_references_break_a_bound(
    tmp_path: Path,
) -> None:
    """References over the proxy budget are hollow and labelled; those outside the front's
    box sit at the zoomed panel's edge and say so; the overview shows them where they are."""
    problem = _big_front_problem()
    front = exact_front(problem, _solve_fn(problem), ("latency", "energy"), progress=False)
    markers = [m for m in single_accelerator(problem, "latency") if m.metrics is not None]
    proxies = sorted(m.metrics.accuracy_proxy for m in markers)  # type: ignore[union-attr]
    budget = (proxies[0] + proxies[-1]) / 2  # at least one reference breaks it
    fig = plot_front(front, markers, tmp_path / "f.png", "t", {"proxy": budget})
    zoom, overview = fig.axes
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    over = [m for m in markers if m.metrics.accuracy_proxy > budget]  # type: ignore[union-attr]
    assert over and all(
        any(label.startswith(f"{m.method} (breaks the proxy budget)") for label in labels)
        for m in over
    )
    assert any("every front point meets proxy budget" in t.get_text() for t in fig.texts)
    xs = [x * 1e3 for x, _ in front.values()]
    ys = [y * 1e3 for _, y in front.values()]
    (x_lo, x_hi), (y_lo, y_hi) = zoom.get_xlim(), zoom.get_ylim()
    assert x_lo < min(xs) and max(xs) < x_hi and y_lo < min(ys) and max(ys) < y_hi
    for m in markers:
        x, y = m.metrics.latency_s * 1e3, m.metrics.energy_j * 1e3  # type: ignore[union-attr]
        off = not (x_lo <= x <= x_hi and y_lo <= y <= y_hi)
        assert any(m.method in label and ("off scale" in label) == off for label in labels)
    for collection, m in zip(overview.collections[1:], markers, strict=False):
        assert tuple(collection.get_offsets()[0]) == pytest.approx(
            (m.metrics.latency_s * 1e3, m.metrics.energy_j * 1e3)  # type: ignore[union-attr]
        )


def test_parse_quantities() -> None:
    assert parse_quantities("latency,energy") == ("latency", "energy")
    assert parse_quantities(" energy , proxy ") == ("energy", "proxy")
    for bad in ("latency", "latency,latency", "latency,power", "a,b,c"):
        with pytest.raises(MilpMapError, match="--pareto"):
            parse_quantities(bad)


def test_front_gap_column_is_the_worse_step() -> None:
    problem = _big_front_problem()
    front = exact_front(problem, _solve_fn(problem), ("latency", "proxy"), progress=False)
    table = front.to_frame()
    assert (table["status"] == "optimal").all()
    assert table["gap"].fillna(0).le(1e-6).all()
    assert math.isclose(table["solve_time_s"].sum(), sum(p.solve_time_s for p in front.points))
