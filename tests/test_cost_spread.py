"""Costs or scores spread past what the solvers resolve are refused; within it every solver
still finds brute force's optimum (one 1e9 s row beside 4 ms ones made HiGHS, CP-SAT and CBC
each claim a wrong optimum)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from milp_map.core.platform import Platform
from milp_map.core.problem import MAX_COST_SPREAD, Problem, build_problem
from milp_map.core.scores import Sensitivity
from milp_map.errors import MilpMapError
from milp_map.exact import bruteforce
from milp_map.formulations import layerwise
from milp_map.io.synthetic import InstanceSpec, random_problem

SPREAD = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
SPEC = InstanceSpec(n_layers=4, n_accelerators=2, shape="residual", operating_points=2)


def _with_outlier(problem: Problem, row: int, column: int, factor: float) -> Problem:
    """`problem` rebuilt with one cost-table cell (latency 0, energy 1) multiplied by `factor`."""
    table = problem.platform.accelerators[0].table
    assert table is not None
    rows = dict(table.rows)
    key = sorted(rows)[row % len(rows)]
    cost = list(rows[key])
    cost[column] *= factor
    rows[key] = (cost[0], cost[1])
    table = dataclasses.replace(table, rows=rows)
    platform: Platform = dataclasses.replace(
        problem.platform,
        accelerators=tuple(
            dataclasses.replace(a, table=table) for a in problem.platform.accelerators
        ),
    )
    return build_problem(
        problem.graph, platform, problem.sensitivity, problem.objective, problem.constraints
    )


@SPREAD
@given(
    seed=st.integers(0, 10_000),
    row=st.integers(0, 100),
    column=st.sampled_from([0, 1]),
    exponent=st.floats(0.0, 12.0),
)
def test_an_outlier_cost_is_refused_or_solved_exactly(
    seed: int, row: int, column: int, exponent: float
) -> None:
    base = random_problem(seed, SPEC)
    try:
        problem = _with_outlier(base, row, column, 10.0**exponent)
    except MilpMapError as exc:
        event("refused")
        message = str(exc)
        refusals = ("the solvers resolve", "(at most 3600 s, 1e+06 J for one unit)")
        assert len(message.splitlines()) == 1 and any(r in message for r in refusals)
        assert f"platform '{base.platform.name}'" in message
        return
    event("solved")
    reference = bruteforce.solve(problem)
    for solver in ("cpsat", "highs"):
        solution = layerwise.solve(problem, solver)
        if reference.status == "infeasible":
            assert solution.status == "infeasible", solver
            continue
        # "optimal" is brute force's value to a tolerance of the optimum, not of the worst
        # case; an honest "feasible" (a bound the solver could not close) is allowed
        assert solution.status in ("optimal", "feasible"), solver
        if solution.status == "optimal":
            optimum = reference.objective_value
            assert solution.objective_value <= optimum * (1 + 1e-5) + 1e-15, solver


def test_the_refusal_names_the_costliest_option() -> None:
    base = random_problem(3, SPEC)
    with pytest.raises(MilpMapError, match=r"unit '.+' on .+ costs .+ the solvers resolve"):
        _with_outlier(base, 0, 0, 3 * MAX_COST_SPREAD * len(base.units))


def test_a_score_that_dwarfs_the_network_is_refused() -> None:
    base = random_problem(5, SPEC)
    scores = dict(base.sensitivity.scores)
    key = max(scores, key=lambda k: scores[k])
    scores[key] = 1e12
    sensitivity = Sensitivity(scores, "hostile.csv", "file")
    with pytest.raises(MilpMapError, match=r"scores 'hostile.csv': unit '.+' scores up to 1e\+12"):
        build_problem(base.graph, base.platform, sensitivity, base.objective, base.constraints)
