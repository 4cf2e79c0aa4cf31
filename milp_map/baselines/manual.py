"""ODiMO's hand-made DIANA mappings, generalised to any two-precision platform.

Risso et al. (ODiMO, 2024) compare against: all layers on the 8-bit digital unit; all on the
analog array except the depthwise convs it cannot run; first and last layer digital and the
rest analog. Here "digital" is the platform's highest-precision accelerator and "analog" its
lowest; a layer the low-precision unit cannot run stays on the high-precision one.
"""

from __future__ import annotations

import time

from milp_map.core.problem import Problem
from milp_map.core.solution import Solution
from milp_map.evaluation.evaluator import evaluate_choice, mapping_of

PRECISION_RANK = {"fp32": 6, "fp16": 5, "bf16": 5, "int8": 4, "int4": 3, "ternary": 2, "binary": 1}
"""Higher is more precise; unknown labels rank 0."""

MAC_OPS = frozenset({"conv", "dwconv", "gemm", "matmul"})


def manual_mappings(problem: Problem) -> list[Solution]:
    """ODiMO's three manual mappings, when the platform has two precisions to choose from."""
    accs = problem.platform.accelerators
    ranked = sorted(accs, key=lambda a: PRECISION_RANK.get(a.precision, 0), reverse=True)
    if len(accs) < 2 or ranked[0].precision == ranked[-1].precision:
        return []
    high, low = ranked[0].name, ranked[-1].name
    mac_units = [
        i
        for i, unit in enumerate(problem.units)
        if any(problem.graph.layer(n).op in MAC_OPS for n in unit.layers)
    ]
    edge_units = {mac_units[0], mac_units[-1]} if mac_units else set()
    plans = {
        f"all-{high}": lambda i: high,
        f"all-{low}-except-unsupported": lambda i: low,
        f"first-last-{high}-rest-{low}": lambda i: high if i in edge_units else low,
    }
    return [_solution(problem, name, plan, high) for name, plan in plans.items()]


def _solution(problem: Problem, name: str, plan, fallback: str) -> Solution:
    start = time.perf_counter()
    choice = []
    for i, unit in enumerate(problem.units):
        wanted = plan(i)
        options = [k for k, o in enumerate(unit.options) if o.accelerator == wanted]
        if not options:
            options = [k for k, o in enumerate(unit.options) if o.accelerator == fallback]
        options = options or list(range(len(unit.options)))
        choice.append(min(options, key=lambda k, u=unit: u.options[k].latency_s))
    return Solution(
        method=name,
        status="feasible",
        objective=problem.objective,
        mapping=mapping_of(problem, choice),
        metrics=evaluate_choice(problem, choice),
        solve_time_s=time.perf_counter() - start,
        extra={"choice": tuple(choice)},
    )
