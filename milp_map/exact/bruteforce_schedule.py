"""Exhaustive search of concurrent schedules: the reference CP-SAT and the MILP are checked on.

For makespan, completion and energy objectives (all nondecreasing in completion times) some
optimal schedule is semi-active: each job starts as soon as its predecessors (plus transition
delays) and the jobs before it on its accelerator allow. So it suffices to enumerate every
option choice, every set of slowed jobs (contention), and every orientation of the pairs that
must not overlap, and time each with `schedule.timed`. Tiny instances only.
"""

from __future__ import annotations

import itertools
import math
import time

from milp_map.core.schedule import ScheduleMetrics, ScheduleProblem, ScheduleSolution
from milp_map.errors import MilpMapError
from milp_map.evaluation.timeline import (
    evaluate_schedule,
    objective_value,
    retime,
    solution_of,
    timed,
)

MAX_CASES = 300_000


def solve(problem: ScheduleProblem, max_cases: int = MAX_CASES) -> ScheduleSolution:
    """The best schedule over all semi-active ones (weighted: same, it is regular too)."""
    jobs = problem.jobs
    n = len(jobs)
    slowable = [j for j, job in enumerate(jobs) if job.slowdown != 1.0]
    overlappable = [(i, j) for i in range(n) for j in range(i + 1, n) if problem.may_overlap(i, j)]
    cases = math.prod(len(job.options) for job in jobs) * 2 ** (len(slowable) + len(overlappable))
    if cases > max_cases:
        raise MilpMapError(
            f"brute force would time up to {cases} schedules (limit {max_cases}); use cpsat"
        )
    began = time.perf_counter()
    best_value, best = math.inf, None
    for choice in itertools.product(*(range(len(job.options)) for job in jobs)):
        if not _assignment_ok(problem, choice):
            continue
        for slowed_set in itertools.product((False, True), repeat=len(slowable)):
            slowed = [False] * n
            for j, flag in zip(slowable, slowed_set, strict=True):
                slowed[j] = flag
            pairs = _conflicts(problem, choice, slowed, overlappable)
            for orientation in itertools.product((False, True), repeat=len(pairs)):
                arcs = [
                    (j, i) if flip else (i, j)
                    for (i, j), flip in zip(pairs, orientation, strict=True)
                ]
                schedule = timed(problem, choice, arcs, slowed)
                if schedule is None:
                    continue
                metrics = evaluate_schedule(problem, schedule)
                if not _times_ok(problem, metrics):
                    continue
                value = objective_value(problem, metrics)
                if value < best_value:
                    best_value, best = value, schedule
    elapsed = time.perf_counter() - began
    if best is None:
        return ScheduleSolution("bruteforce", "infeasible", problem.objective, solve_time_s=elapsed)
    starts = [run.start_s for run in best.runs]
    schedule = retime(problem, best.choice, starts, [run.slowed for run in best.runs])
    value = objective_value(problem, evaluate_schedule(problem, schedule))
    return solution_of(problem, "bruteforce", "optimal", schedule, value, elapsed)


def _assignment_ok(problem: ScheduleProblem, choice: tuple[int, ...]) -> bool:
    """Proxy budgets and switch limits, which depend on the options alone."""
    for n, budget in enumerate(problem.proxy_budgets):
        if budget is None:
            continue
        proxy = sum(problem.jobs[j].options[choice[j]].proxy for j in problem.jobs_of[n])
        if proxy > budget + problem.networks[n].tolerance("proxy"):
            return False
    if problem.max_switches is not None:
        counts = [0] * len(problem.networks)
        for edge in problem.edges:
            a = problem.jobs[edge.src].options[choice[edge.src]].accelerator
            b = problem.jobs[edge.dst].options[choice[edge.dst]].accelerator
            counts[problem.jobs[edge.src].network] += a != b
        if max(counts) > problem.max_switches:
            return False
    return True


def _conflicts(
    problem: ScheduleProblem,
    choice: tuple[int, ...],
    slowed: list[bool],
    overlappable: list[tuple[int, int]],
) -> list[tuple[int, int]]:
    """Pairs that must not overlap: both take time, and they share an accelerator or one of
    them has a slowdown it is not paying."""
    jobs = problem.jobs
    pairs = []
    for i, j in overlappable:
        oi, oj = jobs[i].options[choice[i]], jobs[j].options[choice[j]]
        if oi.latency_s <= 0 or oj.latency_s <= 0:
            continue
        unpaid = any(jobs[k].slowdown != 1.0 and not slowed[k] for k in (i, j))
        if oi.accelerator == oj.accelerator or unpaid:
            pairs.append((i, j))
    return pairs


def _times_ok(problem: ScheduleProblem, metrics: ScheduleMetrics) -> bool:
    tolerance = problem.tolerance("latency")
    for deadline, done in zip(problem.deadlines_s, metrics.completion_s, strict=True):
        if deadline is not None and done > deadline + tolerance:
            return False
    if (
        problem.max_makespan_s is not None
        and metrics.makespan_s > problem.max_makespan_s + tolerance
    ):
        return False
    return problem.max_energy_j is None or metrics.energy_j <= (
        problem.max_energy_j + problem.tolerance("energy")
    )
