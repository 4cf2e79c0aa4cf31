"""The chain dynamic programme, CP-SAT and HiGHS agree on random chains (a third exact method)."""

from __future__ import annotations

import numpy as np
import pytest

from milp_map.core.problem import Constraints, build_problem
from milp_map.core.scores import Sensitivity
from milp_map.errors import MilpMapError
from milp_map.exact import chain_dp
from milp_map.formulations import layerwise
from milp_map.io.synthetic import InstanceSpec, random_problem


def _integer_scores_chain(seed: int, n_layers: int, budget_fraction: float | None):
    """A random chain whose proxy scores are whole numbers, so the DP grid of 1 is exact."""
    spec = InstanceSpec(
        n_layers=n_layers, n_accelerators=3, shape="chain", operating_points=2, budgets=False
    )
    base = random_problem(seed, spec)
    rng = np.random.default_rng(seed)
    scores = {key: float(rng.integers(0, 10)) for key in base.sensitivity.scores}
    sensitivity = Sensitivity(scores, "integer", "random")
    problem = build_problem(base.graph, base.platform, sensitivity, base.objective)
    if budget_fraction is None:
        return problem
    low, high = problem.proxy_range
    budget = float(np.floor(low + budget_fraction * (high - low)))
    return build_problem(
        base.graph, base.platform, sensitivity, base.objective, Constraints(max_proxy=budget)
    )


@pytest.mark.parametrize("seed", range(25))
def test_dp_equals_cpsat_and_highs_on_random_chains(seed: int) -> None:
    problem = _integer_scores_chain(seed, 4 + seed % 9, [None, 0.2, 0.5, 0.8][seed % 4])
    dp = chain_dp.solve(problem, resolution=1.0)
    scale = problem.scales[problem.objective]
    for solver in ("cpsat", "highs"):
        exact = layerwise.solve(problem, solver)
        assert exact.status == dp.status == "optimal"
        assert abs(exact.objective_value - dp.objective_value) <= 1e-6 * scale


def test_dp_rejects_a_dag_and_latency_bounds() -> None:
    dag = random_problem(1, InstanceSpec(n_layers=8, shape="inception", budgets=False))
    if any(e.dst != e.src + 1 for e in dag.edges):
        with pytest.raises(MilpMapError, match="chain"):
            chain_dp.solve(dag)
    chain = _integer_scores_chain(2, 5, None)
    with pytest.raises(MilpMapError, match="proxy budget only"):
        chain_dp.solve(chain, bounds={"latency": 1.0})


def test_off_grid_scores_are_not_called_optimal() -> None:
    problem = random_problem(3, InstanceSpec(n_layers=6, shape="chain"), objective="latency")
    solution = chain_dp.solve(problem, resolution=0.37)
    assert solution.status in ("feasible", "error")
