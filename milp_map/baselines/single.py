"""Single-accelerator mappings: the reference MAEG measures multi-accelerator gain against.

Dagli & Belviranli (RSDHA 2021) compare every layer-to-PE mapping with "all layers on one PE".
"""

from __future__ import annotations

import time

from milp_map.core.problem import Option, Problem, active_bounds
from milp_map.core.solution import Metrics, Solution
from milp_map.evaluation.evaluator import evaluate_choice, mapping_of


def single_accelerator(problem: Problem, objective: str | None = None) -> list[Solution]:
    """Per accelerator, every unit it can run on it (best operating point for the objective).

    Units it cannot run (e.g. an add on DIANA's analog array) go to their best other option;
    such a mapping is named `mostly-<acc>` instead of `all-<acc>`.
    """
    objective = objective or problem.objective
    solutions = []
    for acc in problem.platform.accelerator_names:
        start = time.perf_counter()
        choice, fallbacks = [], 0
        for unit in problem.units:
            options = [i for i, o in enumerate(unit.options) if o.accelerator == acc]
            if not options:
                fallbacks += 1
                options = list(range(len(unit.options)))
            choice.append(
                min(options, key=lambda i, u=unit: _cost(problem, u.options[i], objective))
            )
        if fallbacks == len(problem.units):
            continue
        solutions.append(
            Solution(
                method=f"{'mostly' if fallbacks else 'all'}-{acc}",
                status="feasible",
                objective=objective,
                mapping=mapping_of(problem, choice),
                metrics=evaluate_choice(problem, choice),
                solve_time_s=time.perf_counter() - start,
                extra={"choice": tuple(choice), "units_elsewhere": fallbacks},
            )
        )
    return solutions


def _cost(problem: Problem, option: Option, objective: str) -> float:
    if objective == "latency":
        return option.latency_s
    return option.energy_j + problem.static_power_w * option.latency_s


def gain_percent(reference: float, value: float) -> float:
    """MAEG-style gain of `value` over `reference` in percent (positive = better)."""
    return 0.0 if reference == 0 else 100.0 * (reference - value) / reference


def best_single(problem: Problem, quantity: str) -> Solution | None:
    """MAEG's reference for `quantity` (latency or energy): the best single-accelerator
    mapping, among those within the problem's bounds if any is, else among all."""
    candidates = single_accelerator(problem, quantity)
    within = [s for s in candidates if s.metrics is not None and not _breaks(problem, s)]
    pool = within or [s for s in candidates if s.metrics is not None]
    return min(pool, key=lambda s: s.metrics.value(quantity)) if pool else None  # type: ignore[union-attr]


def maeg_gain(problem: Problem, metrics: Metrics) -> tuple[float | None, float | None]:
    """(latency gain %, energy gain %) of a mapping over the best single accelerator for each,
    as Dagli & Belviranli report multi-accelerator execution gain (positive = better)."""
    gains: list[float | None] = []
    for quantity in ("latency", "energy"):
        reference = best_single(problem, quantity)
        gains.append(
            None
            if reference is None or reference.metrics is None
            else gain_percent(reference.metrics.value(quantity), metrics.value(quantity))
        )
    return gains[0], gains[1]


def _breaks(problem: Problem, solution: Solution) -> bool:
    assert solution.metrics is not None
    return any(
        solution.metrics.value(q) > b + problem.tolerance(q)
        for q, b in active_bounds(problem).items()
    )
