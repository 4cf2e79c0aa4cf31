"""`--solver auto`, the chain DP's exact grid and the CP-SAT / HiGHS portfolio: each choice is
exact (cross-checked against brute force and the other backends) and the race keeps the best
of both when stopped."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from milp_map import pipeline
from milp_map.core.problem import Constraints, active_bounds, build_problem
from milp_map.core.scores import Sensitivity
from milp_map.core.solution import Metrics, Solution
from milp_map.core.split import build_split_problem
from milp_map.errors import MilpMapError
from milp_map.evaluation.evaluator import (
    evaluate_choice,
    evaluate_split,
    mapping_of,
    violations,
)
from milp_map.exact import bruteforce, bruteforce_split, chain_dp
from milp_map.formulations import channel_split, layerwise
from milp_map.io.problems import load_problem
from milp_map.io.synthetic import InstanceSpec, random_problem, random_split_problem
from milp_map.solvers import SolverSettings, cpsat
from milp_map.solvers.base import MIN_SOLVE_S
from milp_map.solvers.portfolio import race


def _chain(seed: int, n_layers: int, step: float, budget_fraction: float | None):
    """A random chain whose scores are multiples of `step` (the DP's exact grid)."""
    spec = InstanceSpec(
        n_layers=n_layers, n_accelerators=3, shape="chain", operating_points=2, budgets=False
    )
    base = random_problem(seed, spec)
    rng = np.random.default_rng(seed)
    scores = {key: step * float(rng.integers(0, 10)) for key in base.sensitivity.scores}
    sensitivity = Sensitivity(scores, "grid", "random")
    problem = build_problem(base.graph, base.platform, sensitivity, base.objective)
    if budget_fraction is None:
        return problem
    low, high = problem.proxy_range
    budget = step * float(np.floor((low + budget_fraction * (high - low)) / step))
    return build_problem(
        base.graph, base.platform, sensitivity, base.objective, Constraints(max_proxy=budget)
    )


# ----------------------------------------------------------------------------- the DP's grid


@pytest.mark.parametrize("step", [1.0, 3.0, 0.25, 0.001])
def test_exact_resolution_is_the_scores_common_divisor(step: float) -> None:
    problem = _chain(4, 6, step, 0.5)
    resolution = chain_dp.exact_resolution(problem, active_bounds(problem))
    assert resolution is not None
    levels = [o.proxy / resolution for u in problem.units for o in u.options]
    assert all(abs(level - round(level)) < 1e-6 for level in levels)
    assert resolution >= step - 1e-12  # a multiple of the step: the coarsest exact grid


def test_no_exact_grid_for_thirds_dags_or_latency_bounds(monkeypatch) -> None:
    thirds = _chain(5, 6, 1 / 3, 0.5)
    assert chain_dp.exact_resolution(thirds, active_bounds(thirds)) is None
    chain = _chain(5, 6, 1.0, 0.5)
    assert chain_dp.exact_resolution(chain, {**active_bounds(chain), "latency": 1.0}) is None
    dag = random_problem(1, InstanceSpec(n_layers=8, shape="inception"))
    assert not chain_dp.is_chain(dag)
    assert chain_dp.exact_resolution(dag, {"proxy": 1.0}) is None
    monkeypatch.setattr(chain_dp, "MAX_TABLE_CELLS", 10)
    assert chain_dp.exact_resolution(chain, active_bounds(chain)) is None


@pytest.mark.parametrize("seed", range(12))
def test_auto_takes_the_dp_on_grid_chains_and_it_is_exact(seed: int) -> None:
    step = [1.0, 0.5, 0.125][seed % 3]
    problem = _chain(seed, 3 + seed % 5, step, [0.2, 0.5, 0.8][seed % 3])
    assert pipeline.resolve_solver("auto", problem) == "dp"
    solution = pipeline.solve(problem).solution
    reference = bruteforce.solve(problem)
    scale = problem.scales[problem.objective]
    assert solution.method == "chain-dp"
    assert solution.status == reference.status == "optimal"
    assert abs(solution.objective_value - reference.objective_value) <= 1e-9 * scale
    assert evaluate_choice(problem, solution.extra["choice"]) == solution.metrics
    highs = layerwise.solve(problem, "highs")
    assert abs(highs.objective_value - solution.objective_value) <= 1e-6 * scale


def test_auto_policy_by_structure() -> None:
    dag = random_problem(2, InstanceSpec(n_layers=6, shape="residual"))
    assert pipeline.resolve_solver("auto", dag) == "highs"
    # a time limit no longer switches layer-wise problems to CP-SAT (HiGHS has its watchdog)
    timed = pipeline.solve(dag, "auto", SolverSettings(time_limit_s=30)).solution
    assert timed.method == "highs"
    split = random_split_problem(3)
    assert pipeline.resolve_solver("auto", split) == "portfolio"
    assert pipeline.resolve_solver("auto", split, front=True) == "cpsat"
    assert pipeline.resolve_solver("auto", dag, front=True) == "cpsat"
    off_grid = _chain(3, 5, 1 / 3, 0.5)
    assert pipeline.resolve_solver("auto", off_grid) == "highs"
    assert pipeline.resolve_solver("cpsat", off_grid) == "cpsat"


def test_dp_and_portfolio_refuse_what_they_cannot_solve() -> None:
    with pytest.raises(MilpMapError, match="--solver dp maps whole layers"):
        pipeline.resolve_solver("dp", random_split_problem(1))
    dag = random_problem(1, InstanceSpec(n_layers=8, shape="inception", budgets=False))
    with pytest.raises(MilpMapError, match="chain"):
        pipeline.solve(dag, "dp")


@pytest.mark.parametrize("seed", range(8))
def test_dp_off_its_grid_says_feasible_and_keeps_the_budget(seed: int) -> None:
    problem = random_problem(seed, InstanceSpec(n_layers=12, shape="chain", budgets=False))
    low, high = problem.proxy_range
    budget = low + 0.4 * (high - low)
    solution = chain_dp.solve(problem, bounds={"proxy": budget}, resolution=budget / 7)
    assert solution.status in ("feasible", "error")
    if solution.metrics is not None:
        assert solution.metrics.accuracy_proxy <= budget + problem.tolerance("proxy")
        best = layerwise.solve(problem, "highs", bounds={"proxy": budget})
        assert solution.objective_value >= best.objective_value * (1 - 1e-9)


# ----------------------------------------------------------------------------- the portfolio

SPLIT_SPECS = (
    {},
    {"per_channel": True, "transitions": True},
    {"n_layers": 2, "n_accelerators": 3, "p_table": 0.3, "transitions": True},
    {"n_layers": 2, "operating_points": 2, "channels": (6, 8), "group_size": 4},
)


@pytest.mark.parametrize("head_start", [pipeline.HEAD_START, 1e-9])
@pytest.mark.parametrize("seed", range(16))
def test_portfolio_agrees_with_brute_force_on_splits(
    seed: int, head_start: float, monkeypatch
) -> None:
    """With CP-SAT's usual head start (these small splits end there) and with none (the race
    of both backends decides every one)."""
    monkeypatch.setattr(pipeline, "HEAD_START", head_start)
    problem = random_split_problem(seed, **SPLIT_SPECS[seed % len(SPLIT_SPECS)])
    reference = bruteforce_split.solve(problem)
    solution = pipeline.solve(problem, "portfolio").solution
    assert solution.status == reference.status
    if reference.status == "infeasible":
        return
    scale = problem.scales[problem.objective]
    assert abs(solution.objective_value - reference.objective_value) <= 1e-6 * scale
    assert evaluate_split(problem, solution.mapping).metrics == solution.metrics
    assert solution.method in ("cpsat", "highs")
    assert "portfolio" in solution.detail


@pytest.mark.parametrize("seed", range(12))
def test_portfolio_agrees_with_brute_force_layerwise(seed: int) -> None:
    spec = InstanceSpec(n_layers=4 + seed % 4, shape=["residual", "inception", "chain"][seed % 3])
    problem = random_problem(seed, spec)
    reference = bruteforce.solve(problem)
    solution = pipeline.solve(problem, "portfolio").solution
    assert solution.status == reference.status
    if reference.status == "optimal":
        scale = problem.scales[problem.objective]
        assert abs(solution.objective_value - reference.objective_value) <= 1e-6 * scale
        assert evaluate_choice(problem, solution.extra["choice"]) == solution.metrics


def _answer(status: str, value: float | None, bound: float | None, method: str) -> Solution:
    metrics = None if value is None else Metrics(value, 1.0, 0.0)
    return Solution(
        method,
        status,
        "latency",
        mapping={} if metrics else None,
        metrics=metrics,
        best_bound=bound,
        extra={"interrupted": False},
    )


def test_race_stops_the_other_run_after_a_proof() -> None:
    seen = {}

    def proves(settings: SolverSettings) -> Solution:
        return _answer("optimal", 2.0, 2.0, "fast")

    def waits(settings: SolverSettings) -> Solution:
        assert settings.stop is not None
        seen["stopped"] = settings.stop.wait(timeout=120)
        return _answer("feasible", 3.0, 1.0, "slow")

    answer = race({"fast": proves, "slow": waits}, SolverSettings())
    assert seen["stopped"] is True
    assert (answer.method, answer.status, answer.objective_value) == ("fast", "optimal", 2.0)
    assert "fast settled it first" in answer.detail


def test_race_without_a_proof_keeps_the_best_mapping_and_the_best_bound() -> None:
    runs = {
        "a": lambda settings: _answer("feasible", 5.0, 3.0, "a"),
        "b": lambda settings: _answer("feasible", 4.0, 2.0, "b"),
    }
    answer = race(runs, SolverSettings(time_limit_s=1))
    assert (answer.method, answer.status, answer.objective_value) == ("b", "feasible", 4.0)
    assert answer.best_bound == 3.0
    none = {
        "a": lambda settings: _answer("time_limit", None, 1.5, "a"),
        "b": lambda settings: _answer("time_limit", None, 2.5, "b"),
    }
    assert race(none, SolverSettings(time_limit_s=1)).best_bound == 2.5


def test_race_takes_a_gap_as_settled_and_ignores_a_failing_run() -> None:
    def fails(settings: SolverSettings) -> Solution:
        raise MilpMapError("backend broke")

    within = {"bad": fails, "good": lambda settings: _answer("feasible", 1.0, 0.99, "good")}
    answer = race(within, SolverSettings(rel_gap=0.05))
    assert answer.method == "good" and "good settled it first" in answer.detail
    with pytest.raises(MilpMapError, match="backend broke"):
        race({"bad": fails, "worse": fails}, SolverSettings())


@pytest.mark.parametrize("solver", ["cpsat", "highs"])
def test_a_set_stop_event_ends_a_long_search(solver: str) -> None:
    """ResNet-18 split at group size 1 takes either backend tens of seconds to prove; a stop
    event set before the solve must end it without a proof (the best mapping so far, or
    none), and it is not reported as Ctrl-C."""
    target = load_problem(
        "resnet18", "diana", granularity="channel", group_size=1, max_proxy_fraction=0.5
    )
    stop = threading.Event()
    stop.set()
    solution = channel_split.solve(target, solver, SolverSettings(stop=stop))
    assert solution.status in ("feasible", "time_limit")
    assert not solution.extra.get("interrupted")


def test_split_portfolio_on_a_zoo_model_matches_both_backends() -> None:
    target = build_split_problem(load_problem("resnet20", "diana"), 8)
    answers = [
        pipeline.solve(target, solver).solution for solver in ("portfolio", "cpsat", "highs")
    ]
    scale = target.scales[target.objective]
    assert {a.status for a in answers} == {"optimal"}
    values = [a.objective_value for a in answers]
    assert max(values) - min(values) <= 1e-6 * scale


def test_portfolio_answers_small_problems_the_same_every_time() -> None:
    """What CP-SAT proves within its deterministic head start does not depend on which
    thread would have won a race, so reruns (and sweeps) give identical mappings."""
    problem = random_split_problem(7, per_channel=True, transitions=True)
    answers = [pipeline.solve(problem, "portfolio").solution for _ in range(3)]
    assert all("head start" in a.detail for a in answers)
    assert answers[0].mapping == answers[1].mapping == answers[2].mapping


def test_cpsat_never_claims_a_worse_optimum_on_a_large_split() -> None:
    """GoogLeNet split on jetson-xavier: with its integer scale at 2e11, CP-SAT once said
    OPTIMAL at 2.067 ms beside HiGHS's proven 1.966 ms (its hint). Capped at MAX_SCALE it
    finds 1.966 ms; whatever it says, it never claims an optimum above a known mapping."""
    target = load_problem(
        "googlenet", "jetson-xavier", granularity="channel", group_size=8, max_proxy_fraction=0.5
    )
    proven = pipeline.solve(target, "highs").solution
    assert proven.status == "optimal"
    answer = pipeline.solve(target, "cpsat", SolverSettings(time_limit_s=120)).solution
    assert answer.objective_value <= proven.objective_value * (1 + 1e-6)
    if answer.best_bound is not None:
        assert answer.best_bound <= proven.objective_value * (1 + 1e-9)


@pytest.mark.parametrize("seed", range(10))
def test_dp_holds_the_budget_as_the_other_backends_do(seed: int) -> None:
    """A budget just below a grid point, within the feasibility tolerance every backend and
    the evaluator allow: the DP must not be stricter than brute force."""
    problem = _chain(seed, 6, 1.0, None)
    low, high = problem.proxy_range
    budget = float(np.floor((low + high) / 2)) - 0.5 * problem.tolerance("proxy")
    problem = build_problem(
        problem.graph,
        problem.platform,
        problem.sensitivity,
        problem.objective,
        Constraints(max_proxy=budget),
    )
    dp = pipeline.solve(problem, "dp").solution
    reference = bruteforce.solve(problem)
    scale = problem.scales[problem.objective]
    assert dp.status == reference.status == "optimal"
    assert abs(dp.objective_value - reference.objective_value) <= 1e-6 * scale


@pytest.mark.parametrize("seed", range(12))
def test_cpsat_at_a_coarse_scale_never_breaks_a_bound(monkeypatch, seed: int) -> None:
    """With the integer scale capped far below what the resolution asks (as on models with
    thousands of active terms), the relaxed budget row admits mappings over the budget; the
    answer must still keep it (the row is tightened and solved again), stay at or above brute
    force's optimum and keep a bound at or below it."""
    monkeypatch.setattr(cpsat, "MAX_SCALE", 300.0)
    spec = InstanceSpec(n_layers=5 + seed % 3, shape=["chain", "residual", "inception"][seed % 3])
    problem = random_problem(seed, spec)
    reference = bruteforce.solve(problem)
    answer = layerwise.solve(problem, "cpsat")
    if answer.metrics is None:
        assert answer.status != "optimal"
        return
    assert not violations(problem, answer.metrics)
    scale = problem.scales[problem.objective]
    assert reference.status in ("optimal", "feasible")
    assert answer.objective_value >= reference.objective_value - 1e-9 * scale
    if answer.best_bound is not None:
        assert answer.best_bound <= reference.objective_value + 1e-9 * scale


def test_the_coarse_scale_test_reaches_the_tightened_solve(monkeypatch) -> None:
    """The case above is not vacuous: some of its instances are solved again."""
    monkeypatch.setattr(cpsat, "MAX_SCALE", 300.0)
    details = []
    for seed in range(12):
        spec = InstanceSpec(
            n_layers=5 + seed % 3, shape=["chain", "residual", "inception"][seed % 3]
        )
        details.append(layerwise.solve(random_problem(seed, spec), "cpsat").detail)
    assert any("tightened" in detail for detail in details)


def test_an_answer_over_its_bound_is_an_error_never_feasible(monkeypatch) -> None:
    """Every backend's answer is re-checked by the evaluator: a mapping over the budget (a
    solver's numerical slip, simulated here) comes back as an error naming the bound."""
    problem = _chain(1, 6, 1.0, 0.3)
    choice = [
        max(range(len(u.options)), key=lambda o, u=u: u.options[o].proxy) for u in problem.units
    ]
    metrics = evaluate_choice(problem, choice)
    assert violations(problem, metrics)  # the most sensitive mapping breaks the budget
    slip = Solution(
        "highs",
        "optimal",
        problem.objective,
        mapping_of(problem, choice),
        metrics,
        extra={"choice": tuple(choice)},
    )
    monkeypatch.setattr(layerwise, "solve", lambda *args, **kwargs: slip)
    answer = pipeline.solve(problem, "highs").solution
    assert answer.status == "error" and answer.mapping is None
    assert "proxy" in answer.detail and "breaks a bound" in answer.detail


def test_a_run_shares_one_time_limit_across_its_solves() -> None:
    """--time-limit holds for the whole run: each solve gets what is left of the deadline."""
    assert SolverSettings().with_deadline().deadline_s is None
    settings = SolverSettings(time_limit_s=30.0).with_deadline()
    assert settings.deadline_s is not None
    assert settings.with_deadline().deadline_s == settings.deadline_s  # set once per run
    assert 29.0 < settings.seconds_left() <= 30.0
    late = dataclasses.replace(settings, deadline_s=settings.deadline_s - 60.0)
    assert late.seconds_left() == MIN_SOLVE_S


def test_race_honours_the_callers_stop() -> None:
    """A stop request from the caller (a sweep, an outer portfolio) ends every run."""
    caller = threading.Event()
    stopped = []

    def waits(settings: SolverSettings) -> Solution:
        assert settings.stop is not None
        stopped.append(settings.stop.wait(60))
        return _answer("time_limit", None, None, "cpsat")

    threading.Timer(0.2, caller.set).start()
    answer = race({"cpsat": waits, "highs": waits}, SolverSettings(stop=caller))
    assert answer.status == "time_limit"
    assert stopped == [True, True]


def test_the_dp_stops_at_its_deadline_and_the_warm_start_stands_in() -> None:
    problem = _chain(2, 40, 1.0, 0.5)
    stopped = chain_dp.solve(problem, deadline_s=0.0)  # a deadline long past
    assert stopped.status == "time_limit" and stopped.mapping is None
    assert "time limit at unit" in stopped.detail
    late = SolverSettings(time_limit_s=1.0, deadline_s=0.0)
    answer = pipeline.solve(problem, "dp", late).solution
    assert answer.status == "feasible" and answer.mapping is not None
    assert not violations(problem, answer.metrics)


def test_auto_leaves_fine_grids_to_highs(monkeypatch) -> None:
    """The DP's time grows with budget steps x option pairs: past AUTO_MAX_WORK auto takes
    HiGHS (3-decimal scores on 1,000 layers: 20 s of DP against 1 s), --solver dp still runs."""
    problem = _chain(3, 8, 0.001, 0.5)
    bounds = active_bounds(problem)
    resolution = chain_dp.exact_resolution(problem, bounds)
    assert resolution == pytest.approx(0.001)
    assert pipeline.resolve_solver("auto", problem) == "dp"
    monkeypatch.setattr(chain_dp, "AUTO_MAX_WORK", chain_dp.work(problem, bounds, resolution) - 1)
    assert pipeline.resolve_solver("auto", problem) == "highs"
    assert pipeline.solve(problem, "dp").solution.status == "optimal"


def test_exact_grid_for_all_zero_and_huge_scores() -> None:
    """All-zero scores need one budget step, not budget / 1; scores near the float range
    have no grid (no OverflowError)."""
    problem = _chain(4, 6, 1.0, None)
    zero = Sensitivity(dict.fromkeys(problem.sensitivity.scores, 0.0), "grid", "zero")
    flat = build_problem(
        problem.graph, problem.platform, zero, problem.objective, Constraints(max_proxy=1e6)
    )
    resolution = chain_dp.exact_resolution(flat, active_bounds(flat))
    assert resolution is not None and chain_dp.work(flat, active_bounds(flat), resolution) < 1000
    assert pipeline.solve(flat, "dp").solution.status == "optimal"
    # every score near the float range (one such score beside 0.3s is refused: it would
    # dwarf the rest of the network past MAX_COST_SPREAD)
    huge = Sensitivity(dict.fromkeys(problem.sensitivity.scores, 1e300), "grid", "huge")
    big = build_problem(
        problem.graph, problem.platform, huge, problem.objective, Constraints(max_proxy=3e300)
    )
    assert chain_dp.exact_resolution(big, active_bounds(big)) is None


def test_a_time_limit_during_the_split_model_build_returns_the_warm_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CP-SAT split model builds in the background; when the time limit passes first,
    the run returns at once and the layer-wise warm start is the answer (never nothing)."""
    split = random_split_problem(3, n_layers=3, transitions=True)
    release = threading.Event()
    real_prepare = channel_split.prepare

    def slow_prepare(*args, **kwargs):
        release.wait()  # held until the test ends: the build cannot win the race
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(channel_split, "prepare", slow_prepare)
    try:
        solved = pipeline.solve(split, "auto", SolverSettings(time_limit_s=0.3))
    finally:
        release.set()
    solution = solved.solution
    assert solution.status == "feasible" and solution.mapping is not None
    assert "still being built" in solution.detail
    assert solution.metrics == evaluate_split(split, solution.mapping).metrics
