"""Exhaustive enumeration of layer-wise mappings: the reference the exact models are checked on."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping

from milp_map.core.problem import Problem, active_bounds
from milp_map.core.solution import Solution
from milp_map.errors import MilpMapError
from milp_map.evaluation.evaluator import evaluate_choice, mapping_of

MAX_COMBINATIONS = 200_000


def solve(
    problem: Problem,
    objective: str | None = None,
    bounds: Mapping[str, float] | None = None,
    max_combinations: int = MAX_COMBINATIONS,
) -> Solution:
    """Evaluate every mapping with the evaluator; keep the best that meets the bounds."""
    objective = objective or problem.objective
    if bounds is None:
        bounds = active_bounds(problem)
    count = math.prod(len(u.options) for u in problem.units)
    if count > max_combinations:
        raise MilpMapError(
            f"brute force would evaluate {count} mappings (limit {max_combinations}); "
            "use cpsat or highs"
        )
    start = time.perf_counter()
    best_value, best_choice = math.inf, None
    for choice in itertools.product(*(range(len(u.options)) for u in problem.units)):
        metrics = evaluate_choice(problem, choice)
        if any(metrics.value(q) > b + problem.tolerance(q) for q, b in bounds.items()):
            continue
        value = metrics.value(objective)
        if value < best_value:
            best_value, best_choice = value, choice
    elapsed = time.perf_counter() - start
    if best_choice is None:
        return Solution("bruteforce", "infeasible", objective, solve_time_s=elapsed)
    metrics = evaluate_choice(problem, best_choice)
    return Solution(
        method="bruteforce",
        status="optimal",
        objective=objective,
        mapping=mapping_of(problem, best_choice),
        metrics=metrics,
        best_bound=metrics.value(objective),
        solve_time_s=elapsed,
        extra={"choice": tuple(best_choice)},
    )
