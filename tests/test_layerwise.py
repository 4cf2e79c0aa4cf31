"""Cross-checks of the exact layer-wise models: CP-SAT = HiGHS = brute force = evaluator."""

from __future__ import annotations

import math

import pytest

from milp_map.evaluation.evaluator import choice_of, evaluate, evaluate_choice, violations
from milp_map.exact import bruteforce
from milp_map.formulations import layerwise
from milp_map.io.synthetic import InstanceSpec, random_problem
from milp_map.solvers import SolverSettings

SPECS = [
    InstanceSpec(n_layers=5, n_accelerators=3, shape="residual"),
    InstanceSpec(n_layers=6, n_accelerators=2, shape="inception"),
    InstanceSpec(n_layers=4, n_accelerators=3, shape="chain", operating_points=2),
    InstanceSpec(n_layers=7, n_accelerators=2, shape="residual", p_transition=1.0),
    InstanceSpec(n_layers=3, n_accelerators=4, shape="inception", operating_points=2),
]
CASES = [(seed, spec) for seed in range(12) for spec in SPECS]  # 60 random instances


def _close(a: float, b: float, scale: float) -> bool:
    return abs(a - b) <= 1e-6 * scale


@pytest.mark.parametrize(("seed", "spec"), CASES, ids=[f"{s}-{p.shape}" for s, p in CASES])
def test_exact_methods_agree_with_brute_force(seed: int, spec: InstanceSpec) -> None:
    problem = random_problem(seed, spec)
    reference = bruteforce.solve(problem)
    scale = problem.scales[problem.objective]
    for solver in ("cpsat", "highs"):
        solution = layerwise.solve(problem, solver)
        assert solution.status == reference.status, solver
        if reference.status == "infeasible":
            continue
        assert _close(solution.objective_value, reference.objective_value, scale), solver
        # the evaluator, fed the solver's mapping, reproduces the reported metrics
        again = evaluate(problem, solution.mapping).metrics
        assert again == solution.metrics
        assert not violations(problem, again)
        assert solution.best_bound <= reference.objective_value + 1e-6 * scale
        assert solution.status == "optimal"


def test_some_instances_are_infeasible_and_some_constrained() -> None:
    """The random set must exercise both infeasible budgets and binding ones."""
    statuses = [bruteforce.solve(random_problem(s, p)).status for s, p in CASES]
    assert "infeasible" in statuses
    assert statuses.count("optimal") >= 40


def test_cbc_agrees_on_a_few_instances() -> None:
    for seed, spec in CASES[:5]:
        problem = random_problem(seed, spec)
        reference = bruteforce.solve(problem)
        solution = layerwise.solve(problem, "cbc")
        assert solution.status == reference.status
        if reference.objective_value is not None:
            scale = problem.scales[problem.objective]
            assert _close(solution.objective_value, reference.objective_value, scale)


def test_hint_does_not_change_the_optimum() -> None:
    problem = random_problem(3, SPECS[0])
    plain = layerwise.solve(problem, "cpsat")
    hinted = layerwise.solve(problem, "cpsat", hint=[0] * len(problem.units))
    assert math.isclose(plain.objective_value, hinted.objective_value, rel_tol=1e-6)


def test_time_limit_never_claims_optimal_without_proof() -> None:
    """A solve cut short reports feasible or time_limit, and its bound stays below the value."""
    spec = InstanceSpec(n_layers=120, n_accelerators=4, shape="inception", operating_points=2)
    problem = random_problem(7, spec)
    # CP-SAT only: HiGHS 1.16 has spun for minutes inside a time-limited solve here (0.01 s
    # and 0.2 s limits, after many earlier solves in the same process); see the closing note
    for solver, limit in (("cpsat", 0.01),):
        solution = layerwise.solve(problem, solver, SolverSettings(time_limit_s=limit))
        assert solution.status in ("optimal", "feasible", "time_limit")
        if solution.status == "optimal":
            assert solution.gap is not None and solution.gap <= 1e-6
        if solution.metrics is not None and solution.best_bound is not None:
            assert solution.best_bound <= solution.objective_value + 1e-12


def test_evaluator_sums_options_and_transitions_by_hand() -> None:
    problem = random_problem(
        11, InstanceSpec(n_layers=4, shape="chain", p_transition=1.0, budgets=False)
    )
    choice = [len(u.options) - 1 for u in problem.units]
    latency = sum(u.options[c].latency_s for u, c in zip(problem.units, choice, strict=True))
    energy = sum(u.options[c].energy_j for u, c in zip(problem.units, choice, strict=True))
    for edge in problem.edges:
        a = problem.units[edge.src].options[choice[edge.src]].accelerator
        b = problem.units[edge.dst].options[choice[edge.dst]].accelerator
        lat, en = edge.costs.get((a, b), (0.0, 0.0))
        latency += lat
        energy += en
    metrics = evaluate_choice(problem, choice)
    assert math.isclose(metrics.latency_s, latency)
    assert math.isclose(metrics.energy_j, energy + problem.static_power_w * latency)
    from milp_map.evaluation.evaluator import mapping_of

    assert choice_of(problem, mapping_of(problem, choice)) == choice


def test_presolve_keeps_exactly_the_non_dominated_options() -> None:
    """Every removed option has a kept replacement no worse in all three quantities."""
    spec = InstanceSpec(n_layers=8, n_accelerators=4, shape="chain", p_transition=0.0)
    removed = 0
    for seed in range(5):
        problem = random_problem(seed, spec)
        keep = layerwise.dominators(problem)
        for unit, row in zip(problem.units, keep, strict=True):
            for o, k in enumerate(row):
                assert row[k] == k  # replacements are kept options
                if k != o:
                    removed += 1
                    a, b = unit.options[k], unit.options[o]
                    assert a.latency_s <= b.latency_s and a.energy_j <= b.energy_j
                    assert a.proxy <= b.proxy
    assert removed > 0


@pytest.mark.parametrize(
    ("seed", "spec"),
    [
        (157, InstanceSpec(n_layers=4, n_accelerators=2, shape="residual", operating_points=2)),
        (223, InstanceSpec(n_layers=4, n_accelerators=2, shape="residual", operating_points=2)),
    ],
)
def test_cbc_reports_no_false_optimum_where_its_preprocessing_did(seed, spec) -> None:
    """With CBC's preprocessing on, these came back 'optimal' 1.10x and 1.04x above brute
    force (2 of 800 random instances; 0 of 800 with it off)."""
    problem = random_problem(seed, spec)
    reference = bruteforce.solve(problem)
    solution = layerwise.solve(problem, "cbc")
    scale = problem.scales[problem.objective]
    assert solution.status == reference.status == "optimal"
    assert _close(solution.objective_value, reference.objective_value, scale)
