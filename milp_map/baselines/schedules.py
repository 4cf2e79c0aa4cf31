"""Serial reference schedules for --schedule concurrent: what the joint optimum is measured
against (each accelerator alone, and the best sequential mapping, as HaX-CoNN reports them)."""

from __future__ import annotations

from collections.abc import Sequence

from milp_map.baselines.single import single_accelerator
from milp_map.core.schedule import ScheduleProblem, ScheduleSolution
from milp_map.evaluation.timeline import check_schedule, evaluate_schedule, objective_value, serial
from milp_map.formulations import layerwise
from milp_map.solvers import SolverSettings


def reference_schedules(
    problem: ScheduleProblem, settings: SolverSettings
) -> list[ScheduleSolution]:
    """Serial references: each accelerator alone (`all-X` / `mostly-X`, networks one after
    another) and the best sequential mapping (each network's layer-wise optimum for latency, or
    for energy under the energy objective; networks shortest first)."""
    references = []
    singles = [single_accelerator(p, "latency") for p in problem.networks]
    for acc in problem.platform.accelerator_names:
        picks = [next((s for s in sols if s.method.endswith(f"-{acc}")), None) for sols in singles]
        if any(p is None for p in picks):
            continue
        mostly = any(p.method.startswith("mostly") for p in picks)  # type: ignore[union-attr]
        choices = [p.extra["choice"] for p in picks]  # type: ignore[union-attr]
        references.append(
            _serial_solution(problem, f"{'mostly' if mostly else 'all'}-{acc}", choices)
        )
    objective = "energy" if problem.objective == "energy" else "latency"
    optima = [layerwise.solve(p, "highs", settings, objective=objective) for p in problem.networks]
    if all(o.metrics is not None for o in optima):
        order = sorted(range(len(optima)), key=lambda n: optima[n].metrics.latency_s)  # type: ignore[union-attr]
        choices = [o.extra["choice"] for o in optima]
        references.append(_serial_solution(problem, "best sequential", choices, order))
    return references


def _serial_solution(
    problem: ScheduleProblem,
    method: str,
    choices: Sequence[Sequence[int]],
    order: Sequence[int] | None = None,
) -> ScheduleSolution:
    timeline = serial(problem, choices, order)
    metrics = evaluate_schedule(problem, timeline)
    return ScheduleSolution(
        method=method,
        status="feasible",
        objective=problem.objective,
        schedule=timeline,
        metrics=metrics,
        objective_value=objective_value(problem, metrics),
        extra={"violations": check_schedule(problem, timeline)},
    )
