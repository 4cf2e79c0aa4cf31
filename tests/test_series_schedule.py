"""The series decomposition of one network's concurrent schedule (exact/series_schedule.py):
equal to brute force on small random DAGs and to CP-SAT's proven optimum on larger ones,
refused where it does not apply, and the default for one network (pipeline.schedule)."""

from __future__ import annotations

import dataclasses

import pytest
from test_concurrent import random_schedule_problem

from milp_map import pipeline
from milp_map.core.problem import Constraints, Option, Unit, UnitEdge
from milp_map.core.schedule import build_schedule_problem
from milp_map.errors import MilpMapError
from milp_map.evaluation.timeline import check_schedule, evaluate_schedule, objective_value
from milp_map.exact import bruteforce_schedule, series_schedule
from milp_map.formulations import concurrent
from milp_map.io.problems import load_problem
from milp_map.solvers import SolverSettings

CASES = [
    ("residual", dict(shapes=("residual",), n_layers=6)),
    ("inception", dict(shapes=("inception",), n_layers=6)),
    ("branches-3acc", dict(shapes=("chain2",), n_accelerators=3)),
    ("budgets-deadlines", dict(shapes=("inception",), n_layers=5, budgets=True, deadlines=True)),
    (
        "dvfs-completion",
        dict(shapes=("residual",), n_layers=5, operating_points=2, objective="completion"),
    ),
    ("chain", dict(shapes=("chain",), n_layers=6, budgets=True)),
]


def _same_optimum(problem, found, reference) -> None:
    assert found.status == reference.status, (found.status, found.detail)
    if reference.status == "infeasible":
        return
    assert found.status == "optimal"
    assert check_schedule(problem, found.schedule) == []
    assert evaluate_schedule(problem, found.schedule) == found.metrics
    assert objective_value(problem, found.metrics) == found.objective_value
    scale = problem.horizon_s
    assert abs(found.objective_value - reference.objective_value) <= 1e-9 * scale
    assert found.best_bound <= reference.objective_value + 1e-9 * scale


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize(("label", "kwargs"), CASES, ids=[c[0] for c in CASES])
def test_series_decomposition_equals_brute_force(seed: int, label: str, kwargs: dict) -> None:
    problem = random_schedule_problem(seed, **kwargs)
    assert series_schedule.reason_not_applicable(problem) is None
    _same_optimum(problem, series_schedule.solve(problem), bruteforce_schedule.solve(problem))


@pytest.mark.parametrize(
    ("model", "platform", "fraction"),
    [
        ("resnet20", "jetson-xavier", 0.3),
        ("squeezenet", "jetson-xavier", 0.5),
        ("resnet8", "diana", 1.0),
    ],
)
def test_series_decomposition_equals_cpsat_on_zoo_networks(model, platform, fraction) -> None:
    target = load_problem(model, platform, max_proxy_fraction=fraction)
    problem = build_schedule_problem([target], objective="makespan")
    cpsat = concurrent.solve(problem, SolverSettings(threads=2, time_limit_s=120))
    assert cpsat.status == "optimal", cpsat.status
    _same_optimum(problem, series_schedule.solve(problem), cpsat)


def test_cuts_split_the_network_where_every_path_passes() -> None:
    problem = random_schedule_problem(0, shapes=("chain2",))  # l0 -> (l1, l2) -> l3
    blocks = series_schedule._blocks(problem)
    assert [(b.entry, b.interior, b.exit) for b in blocks] == [
        (None, (), 0),
        (0, (1, 2), 3),
        (3, (), None),
    ]


def test_googlenet_alone_is_proven_and_no_worse_than_cpsat() -> None:
    target = load_problem("googlenet", "jetson-xavier", max_proxy_fraction=0.5)
    problem = build_schedule_problem([target], objective="makespan")
    found = series_schedule.solve(problem)
    assert found.status == "optimal" and found.gap == 0
    assert check_schedule(problem, found.schedule) == []
    cpsat = concurrent.solve(problem, SolverSettings(threads=1, time_limit_s=5))
    assert cpsat.best_bound <= found.objective_value <= cpsat.objective_value


def test_where_it_does_not_apply_it_says_why() -> None:
    two = random_schedule_problem(1, shapes=("chain", "chain"), n_layers=3)
    assert "one network" in series_schedule.reason_not_applicable(two)
    energy = random_schedule_problem(1, shapes=("residual",), n_layers=4, objective="energy")
    assert "energy" in series_schedule.reason_not_applicable(energy)
    slowed = random_schedule_problem(1, shapes=("residual",), n_layers=4, slowdown=True)
    assert "contention" in series_schedule.reason_not_applicable(slowed)
    limited = dataclasses.replace(random_schedule_problem(1, n_layers=4), max_switches=1)
    assert "switch" in series_schedule.reason_not_applicable(limited)
    with pytest.raises(MilpMapError, match="--solver dp cannot schedule this problem"):
        series_schedule.solve(two)
    found, _ = pipeline.schedule(two, "auto", SolverSettings(threads=1))
    assert found.method == "cpsat"


def test_auto_uses_it_for_one_network_and_dp_is_refused_for_two() -> None:
    one = random_schedule_problem(3, shapes=("inception",), n_layers=6)
    found, references = pipeline.schedule(one, "auto", SolverSettings(threads=1))
    assert found.method == "series-dp" and found.status == "optimal" and references
    two = random_schedule_problem(1, shapes=("chain", "chain"), n_layers=3)
    with pytest.raises(MilpMapError, match="one network"):
        pipeline.schedule(two, "dp", SolverSettings(threads=1))


def test_out_of_time_falls_back_to_cpsat_under_auto(monkeypatch) -> None:
    def never(problem, time_limit_s=None):
        raise series_schedule.OutOfTime

    monkeypatch.setattr(series_schedule, "solve", never)
    one = random_schedule_problem(3, shapes=("inception",), n_layers=6)
    found, _ = pipeline.schedule(one, "auto", SolverSettings(threads=1, time_limit_s=30))
    assert found.method == "cpsat" and found.status == "optimal"
    found, _ = pipeline.schedule(one, "dp", SolverSettings(threads=1, time_limit_s=30))
    assert found.method == "series-dp" and found.status == "time_limit"


def test_the_proxy_budget_is_held_to_the_same_tolerance_as_brute_force() -> None:
    """A budget 1e-7 below a mapping's proxy: within the checker's tolerance (1e-6 of the
    scale), so brute force takes the fast option; the DP once held 1e-9 and chose slower."""
    base = random_schedule_problem(0).networks[0]
    units = (
        Unit(
            "u0",
            ("u0",),
            (Option("acc0", None, 1e-3, 0.1, 1.0, "x"), Option("acc0", None, 2e-3, 0.1, 0.0, "x")),
        ),
        Unit("u1", ("u1",), (Option("acc0", None, 1e-3, 0.1, 0.0, "x"),)),
    )
    network = dataclasses.replace(
        base,
        units=units,
        edges=(UnitEdge(0, 1, 1, {}),),
        constraints=Constraints(max_proxy=1.0 - 1e-7),
    )
    problem = build_schedule_problem([network], objective="makespan")
    _same_optimum(problem, series_schedule.solve(problem), bruteforce_schedule.solve(problem))
