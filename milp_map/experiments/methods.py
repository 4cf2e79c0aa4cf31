"""Every mapping method behind one signature: name -> callable(target, settings) -> Solution.

Each method of the seed papers (ODiMO's manual mappings and gradient search, MAEG's
single-accelerator reference, PiQi's NSGA-II, greedy rules, random search) and the exact
solve answer the same problem in the same `Solution` shape, so a comparison or a sweep is a
loop over names (`METHODS`, `run_method`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass

from milp_map import pipeline
from milp_map.baselines.common import evaluate_target, heuristic_solution
from milp_map.baselines.genetic import nsga2
from milp_map.baselines.greedy import greedy
from milp_map.baselines.manual import manual_mappings
from milp_map.baselines.random_search import random_search
from milp_map.baselines.single import single_accelerator
from milp_map.core.solution import Solution
from milp_map.core.split import Target, base_problem
from milp_map.defaults import (
    DEFAULT_EVALUATIONS,
    DEFAULT_GENERATIONS,
    DEFAULT_GRADIENT_STEPS,
    DEFAULT_LAMBDAS,
    DEFAULT_POPULATION,
    METHOD_NAMES,
)
from milp_map.errors import MilpMapError
from milp_map.exact.pareto import exact_front
from milp_map.solvers import SolverSettings


@dataclass(frozen=True)
class RunSettings:
    """What every method may read: seed, budget and, for fronts, the two quantities.

    `time_limit_s` limits the exact solver and random search; the other searches run their
    fixed budgets (generations, steps). Exact fronts run CP-SAT on one worker unless
    `solver` names a backend."""

    seed: int = 0
    threads: int = 1
    time_limit_s: float | None = None
    front: tuple[str, str] | None = None
    solver: str = "auto"
    population: int = DEFAULT_POPULATION
    generations: int = DEFAULT_GENERATIONS
    evaluations: int = DEFAULT_EVALUATIONS
    gradient_steps: int = DEFAULT_GRADIENT_STEPS
    lambdas: int = DEFAULT_LAMBDAS


MethodFn = Callable[[Target, RunSettings], Solution]


def _exact(target: Target, s: RunSettings) -> Solution:
    """The proven optimum (and, with `front`, the exact front in extra["front"])."""
    settings = SolverSettings(time_limit_s=s.time_limit_s, threads=s.threads, seed=s.seed)
    solution = pipeline.solve(target, s.solver, settings).solution
    if s.front is None or solution.extra.get("interrupted"):
        return solution
    # Sweeps run CP-SAT on one worker unless a solver is named: faster than HiGHS on fronts.
    sweep_solver = pipeline.resolve_solver(s.solver, target, front=True)
    threads = 1 if s.solver == "auto" else s.threads
    sweep_settings = dataclasses.replace(settings, threads=threads)
    front = exact_front(
        target,
        pipeline.make_solve_fn(target, sweep_solver, sweep_settings),
        s.front,
        progress=False,
        time_limit_s=s.time_limit_s,
    )
    extra = {
        **solution.extra,
        "front": list(front.points),
        "front_complete": front.complete,
        "interrupted": front.interrupted,
    }
    return dataclasses.replace(solution, extra=extra)


def _best_of(target: Target, method: str, candidates: list[Solution], s: RunSettings) -> Solution:
    """The best candidate within the bounds (scored on the target); front: the non-dominated."""
    start = time.perf_counter()
    scored = []
    for candidate in candidates:
        mapping, metrics = evaluate_target(target, candidate.extra["choice"])
        scored.append(
            heuristic_solution(
                target,
                method,
                mapping,
                metrics,
                start,
                {
                    "choice": candidate.extra["choice"],
                    "mapping_name": candidate.method,
                },
            )
        )
    within = [c for c in scored if c.metrics is not None]
    extra: dict = {}
    if s.front is not None:
        extra["front"] = _non_dominated(within, s.front)
    if not within:
        violating = min(scored, key=lambda c: c.extra["violating_metrics"].accuracy_proxy)
        return dataclasses.replace(violating, extra={**violating.extra, **extra})
    best = min(within, key=lambda c: c.metrics.value(target.objective))  # type: ignore[union-attr]
    return dataclasses.replace(best, extra={**best.extra, **extra})


def _non_dominated(solutions: list[Solution], quantities: tuple[str, str]) -> list[Solution]:
    f1, f2 = quantities
    kept: list[Solution] = []
    for s in sorted(solutions, key=lambda s: (s.metrics.value(f1), s.metrics.value(f2))):  # type: ignore[union-attr]
        if not kept or s.metrics.value(f2) < kept[-1].metrics.value(f2):  # type: ignore[union-attr]
            kept.append(s)
    return kept


def _single(target: Target, s: RunSettings) -> Solution:
    return _best_of(target, "single", single_accelerator(base_problem(target)), s)


def _manual(target: Target, s: RunSettings) -> Solution:
    return _best_of(target, "manual", manual_mappings(base_problem(target)), s)


def _greedy(rule: str) -> MethodFn:
    def run(target: Target, s: RunSettings) -> Solution:
        solution = greedy(target, rule)
        if s.front is not None and solution.metrics is not None:
            solution = dataclasses.replace(solution, extra={**solution.extra, "front": [solution]})
        return solution

    return run


def _random(target: Target, s: RunSettings) -> Solution:
    return random_search(target, s.evaluations, s.seed, s.front, s.time_limit_s)


def _nsga2(target: Target, s: RunSettings) -> Solution:
    return nsga2(target, s.population, s.generations, s.seed, s.front, front=s.front is not None)


def _gradient(target: Target, s: RunSettings) -> Solution:
    from milp_map.baselines.gradient import gradient_search

    return gradient_search(
        target, s.lambdas, s.gradient_steps, s.seed, s.front, front=s.front is not None
    )


METHODS: dict[str, MethodFn] = {
    "exact": _exact,
    "single": _single,
    "manual": _manual,
    "greedy-fastest": _greedy("fastest"),
    "greedy-least-energy": _greedy("least-energy"),
    "greedy-per-proxy": _greedy("per-proxy"),
    "greedy-transitions": _greedy("transitions"),
    "random": _random,
    "nsga2": _nsga2,
    "gradient": _gradient,
}


PAPERS = {
    "exact": "milp_map (CP-SAT / HiGHS, proven)",
    "single": "MAEG reference (Dagli & Belviranli, RSDHA 2021)",
    "manual": "ODiMO manual mappings (Risso et al., 2024)",
    "greedy-fastest": "per-layer rule",
    "greedy-least-energy": "per-layer rule",
    "greedy-per-proxy": "knapsack ratio rule",
    "greedy-transitions": "transition-aware rule",
    "random": "random search (Bergstra & Bengio, JMLR 2012)",
    "nsga2": "PiQi's NSGA-II (Aghapour et al., ISLPED 2024)",
    "gradient": "ODiMO's differentiable search (Risso et al., 2024)",
}


def not_applicable(name: str, target: Target) -> str | None:
    """Why a method cannot run on this problem, or None."""
    if name not in METHODS:
        raise MilpMapError(f"unknown method '{name}'; choose from {', '.join(METHOD_NAMES)}")
    if name == "manual" and not manual_mappings(base_problem(target)):
        return "needs two accelerator precisions"
    if name == "gradient" and importlib.util.find_spec("torch") is None:
        return "torch is not installed (pip install 'milp_map[torch]')"
    return None


def run_method(
    name: str,
    problem: Target,
    seed: int = 0,
    threads: int = 1,
    time_limit_s: float | None = None,
    **options: object,
) -> Solution:
    """Run one registered method; extra["wall_time_s"] holds its wall time.

    `options` are further RunSettings fields (front, solver, population, generations,
    evaluations, gradient_steps, lambdas).
    """
    reason = not_applicable(name, problem)
    if reason:
        raise MilpMapError(f"method '{name}' does not apply: {reason}")
    settings = RunSettings(seed=seed, threads=threads, time_limit_s=time_limit_s, **options)  # type: ignore[arg-type]
    return timed_run(name, problem, settings)


def timed_run(name: str, target: Target, settings: RunSettings) -> Solution:
    """Run one method; its wall time goes to extra["wall_time_s"]."""
    start = time.perf_counter()
    solution = METHODS[name](target, settings)
    wall = time.perf_counter() - start
    return dataclasses.replace(solution, extra={**solution.extra, "wall_time_s": wall})
