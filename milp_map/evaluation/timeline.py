"""How a schedule (milp_map/core/schedule.py) is timed, scored and checked.

The evaluator of concurrent mode (formulations/concurrent.md, "Semantics"): every method's
answer is re-timed here from its assignment and job order (`retime`), scored by
`evaluate_schedule` and validated by `check_schedule` (precedence with transition delays, no
overlap on an accelerator, contention slowdowns, deadlines, budgets, switch limits).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from milp_map.core.schedule import (
    JobRun,
    Schedule,
    ScheduleMetrics,
    ScheduleProblem,
    ScheduleSolution,
)
from milp_map.core.solution import proves_optimal

STRUCTURE_RTOL = 1e-9
"""Precedence and no-overlap hold to this fraction of the horizon (re-timed schedules are exact
up to float rounding); bounds use the problems' FEASIBILITY_RTOL as everywhere else."""


# ----------------------------------------------------------------------------- semantics


def duration_s(problem: ScheduleProblem, job: int, option: int, slowed: bool = False) -> float:
    """Latency of a job with an option, times its slowdown while it overlaps others."""
    base = problem.jobs[job].options[option].latency_s
    return base * problem.jobs[job].slowdown if slowed else base


def accelerator(problem: ScheduleProblem, job: int, option: int) -> str:
    return problem.jobs[job].options[option].accelerator


def transition(problem: ScheduleProblem, edge: int, choice: Sequence[int]) -> tuple[float, float]:
    """(latency_s, energy_j) of moving edge's tensor between its ends' accelerators."""
    e = problem.edges[edge]
    pair = (accelerator(problem, e.src, choice[e.src]), accelerator(problem, e.dst, choice[e.dst]))
    return e.costs.get(pair, (0.0, 0.0))


def objective_value(problem: ScheduleProblem, metrics: ScheduleMetrics) -> float:
    """The problem's objective for these metrics (module docstring of milp_map.core.schedule)."""
    if problem.objective == "makespan":
        return metrics.makespan_s
    if problem.objective == "energy":
        return metrics.energy_j
    if problem.objective == "completion":
        return sum(metrics.completion_s)
    w = problem.weight
    scales = problem.scales
    return (
        w * metrics.makespan_s / scales["latency"] + (1 - w) * metrics.energy_j / scales["energy"]
    )


def evaluate_schedule(problem: ScheduleProblem, schedule: Schedule) -> ScheduleMetrics:
    """Makespan, energy (static power x makespan + dynamic + transitions), per-network
    completion, proxy and switches of a schedule."""
    runs = schedule.runs
    choice = schedule.choice
    n_networks = len(problem.networks)
    completion = [0.0] * n_networks
    proxy = [0.0] * n_networks
    switches = [0] * n_networks
    dynamic = 0.0
    for run in runs:
        job = problem.jobs[run.job]
        option = job.options[run.option]
        completion[job.network] = max(completion[job.network], run.end_s)
        proxy[job.network] += option.proxy
        dynamic += option.energy_j
    for e, edge in enumerate(problem.edges):
        dynamic += transition(problem, e, choice)[1]
        if accelerator(problem, edge.src, choice[edge.src]) != accelerator(
            problem, edge.dst, choice[edge.dst]
        ):
            switches[problem.jobs[edge.src].network] += 1
    makespan = max(completion, default=0.0)
    return ScheduleMetrics(
        makespan_s=makespan,
        energy_j=dynamic + problem.static_power_w * makespan,
        completion_s=tuple(completion),
        proxy=tuple(proxy),
        switches=tuple(switches),
    )


def solution_of(
    problem: ScheduleProblem,
    method: str,
    status: str,
    schedule: Schedule,
    bound: float | None,
    solve_time_s: float,
    detail: str = "",
    extra: dict[str, Any] | None = None,
) -> ScheduleSolution:
    """A solver's schedule, scored by the evaluator; 'optimal' only if the bound proves it,
    and 'error' (schedule kept for inspection) if the checker finds it breaks a rule."""
    broken = check_schedule(problem, schedule)
    if broken:
        status = "error"
        detail = f"{detail}; the solver's schedule fails the checker: {'; '.join(broken[:3])}"
    metrics = evaluate_schedule(problem, schedule)
    value = objective_value(problem, metrics)
    if bound is not None:
        bound = min(bound, value)
    if status == "optimal" and not proves_optimal(value, bound, _objective_scale(problem)):
        status = "feasible"
    return ScheduleSolution(
        method=method,
        status=status,
        objective=problem.objective,
        schedule=schedule,
        metrics=metrics,
        objective_value=value,
        best_bound=bound,
        solve_time_s=solve_time_s,
        detail=detail,
        extra=extra or {},
    )


def _objective_scale(problem: ScheduleProblem) -> float:
    if problem.objective == "makespan":
        return problem.scales["latency"]
    if problem.objective == "completion":
        return problem.scales["latency"] * len(problem.networks)
    if problem.objective == "energy":
        return problem.scales["energy"]
    return 1.0


# ----------------------------------------------------------------------------- timing


def timed(
    problem: ScheduleProblem,
    choice: Sequence[int],
    arcs: Sequence[tuple[int, int]],
    slowed: Sequence[bool] | None = None,
) -> Schedule | None:
    """Earliest start of every job given its option, the DAG edges (plus transition delays)
    and extra "i before j" arcs; None if the arcs close a cycle.

    For regular objectives some optimal schedule is of this form (semi-active), which is what
    brute force enumerates and how every solver's answer is re-timed exactly.
    """
    n = len(problem.jobs)
    slowed = slowed or [False] * n
    dur = [duration_s(problem, j, choice[j], slowed[j]) for j in range(n)]
    successors: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    waiting = [0] * n
    for e, edge in enumerate(problem.edges):
        successors[edge.src].append((edge.dst, transition(problem, e, choice)[0]))
        waiting[edge.dst] += 1
    for i, j in arcs:
        successors[i].append((j, 0.0))
        waiting[j] += 1
    ready = [j for j in range(n) if waiting[j] == 0]
    start = [0.0] * n
    done = 0
    while ready:
        i = ready.pop()
        done += 1
        finish = start[i] + dur[i]
        for j, delay in successors[i]:
            start[j] = max(start[j], finish + delay)
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    if done < n:
        return None
    return Schedule(
        tuple(JobRun(j, choice[j], start[j], start[j] + dur[j], bool(slowed[j])) for j in range(n))
    )


def retime(
    problem: ScheduleProblem,
    choice: Sequence[int],
    starts: Sequence[float],
    slowed: Sequence[bool] | None = None,
) -> Schedule:
    """A solver's answer timed exactly in seconds: same options, same order of jobs on each
    accelerator and (contention) the same jobs kept apart, each job as early as these allow.

    Solvers work on rounded (CP-SAT ticks) or tolerance-blurred (MILP) times; this makes the
    reported schedule exact. Under contention, a slowed job that overlaps nothing is sped
    back up (only helps), until every slowdown is one the semantics require.
    """
    n = len(problem.jobs)
    slowed = list(slowed) if slowed is not None else [False] * n
    slowed = [s and problem.jobs[j].slowdown != 1.0 for j, s in enumerate(slowed)]
    key = [(starts[j], j) for j in range(n)]
    while True:
        arcs = _order_arcs(problem, choice, key, slowed)
        schedule = timed(problem, choice, arcs, slowed)
        assert schedule is not None, "orders taken from one timeline cannot form a cycle"
        lonely = [j for j in range(n) if slowed[j] and not _overlaps_other(problem, schedule, j)]
        if not lonely:
            return schedule
        for j in lonely:
            slowed[j] = False
        key = [(run.start_s, run.job) for run in schedule.runs]


def _order_arcs(
    problem: ScheduleProblem,
    choice: Sequence[int],
    key: Sequence[tuple[float, int]],
    slowed: Sequence[bool],
) -> list[tuple[int, int]]:
    """Consecutive jobs on each accelerator, and (contention) every job with a slowdown it does
    not pay against each job it could overlap on another accelerator, in the order of `key`."""
    n = len(problem.jobs)
    positive = [problem.jobs[j].options[choice[j]].latency_s > 0 for j in range(n)]
    arcs = []
    for acc in problem.accelerators:
        on = sorted(
            (key[j], j)
            for j in range(n)
            if positive[j] and accelerator(problem, j, choice[j]) == acc
        )
        arcs.extend((a[1], b[1]) for a, b in itertools.pairwise(on))
    if problem.contention:
        for i in range(n):
            for j in range(i + 1, n):
                unpaid = any(problem.jobs[k].slowdown != 1.0 and not slowed[k] for k in (i, j))
                if not (positive[i] and positive[j] and unpaid):
                    continue
                if accelerator(problem, i, choice[i]) == accelerator(problem, j, choice[j]):
                    continue
                if problem.may_overlap(i, j):
                    arcs.append((i, j) if key[i] <= key[j] else (j, i))
    return arcs


def _overlap_s(a: JobRun, b: JobRun) -> float:
    return min(a.end_s, b.end_s) - max(a.start_s, b.start_s)


def _overlaps_other(problem: ScheduleProblem, schedule: Schedule, j: int) -> bool:
    """Job j shares time (more than the structural tolerance) with a job on another accelerator."""
    tol = STRUCTURE_RTOL * problem.horizon_s
    runs = schedule.runs
    acc = accelerator(problem, j, runs[j].option)
    return any(
        k != j
        and accelerator(problem, k, runs[k].option) != acc
        and _overlap_s(runs[j], runs[k]) > tol
        for k in range(len(runs))
    )


def serial(
    problem: ScheduleProblem, choices: Sequence[Sequence[int]], order: Sequence[int] | None = None
) -> Schedule:
    """Units one at a time (layer-wise semantics): each network's units in topological order,
    networks one after another in `order`; a unit starts after the previous one ends plus the
    transitions into it, so a network's span is its layer-wise latency."""
    order = list(order) if order is not None else list(range(len(problem.networks)))
    choice = [0] * len(problem.jobs)
    for n, network_choice in enumerate(choices):
        for job, option in zip(problem.jobs_of[n], network_choice, strict=True):
            choice[job] = option
    incoming = [0.0] * len(problem.jobs)
    for e, edge in enumerate(problem.edges):
        incoming[edge.dst] += transition(problem, e, choice)[0]
    runs: dict[int, JobRun] = {}
    clock = 0.0
    for n in order:
        for job in problem.jobs_of[n]:
            start = clock + incoming[job]
            clock = start + duration_s(problem, job, choice[job])
            runs[job] = JobRun(job, choice[job], start, clock)
    return Schedule(tuple(runs[j] for j in range(len(problem.jobs))))


# ----------------------------------------------------------------------------- checking


def check_schedule(problem: ScheduleProblem, schedule: Schedule) -> list[str]:
    """Every rule a schedule breaks, as readable phrases (empty: valid).

    Structure (to STRUCTURE_RTOL of the horizon): one run per job with a valid option, starts
    >= 0, durations as the option (and its slowdown exactly when it overlaps a job on another
    accelerator), precedence plus transition delay on every edge, no two jobs overlapping on
    one accelerator. Bounds (to FEASIBILITY_RTOL): deadlines, proxy budgets, switch limits,
    makespan and energy bounds.
    """
    jobs = problem.jobs
    runs = schedule.runs
    if len(runs) != len(jobs) or any(r.job != j for j, r in enumerate(runs)):
        return [f"the schedule must list each of the {len(jobs)} jobs once, in job order"]
    bad = [jobs[r.job].name for r in runs if not 0 <= r.option < len(jobs[r.job].options)]
    if bad:
        return [f"jobs {bad[:5]} name an option they do not have"]
    bad = [
        jobs[r.job].name for r in runs if not (math.isfinite(r.start_s) and math.isfinite(r.end_s))
    ]
    if bad:
        return [f"jobs {bad[:5]} have a start or end time that is not a finite number"]
    tol = STRUCTURE_RTOL * problem.horizon_s
    broken = []
    for j, run in enumerate(runs):
        name = jobs[j].name
        if run.start_s < -tol:
            broken.append(f"{name} starts at {run.start_s:.6g} s < 0")
        overlapping = jobs[j].slowdown != 1.0 and _overlaps_other(problem, schedule, j)
        if run.slowed and jobs[j].slowdown == 1.0:
            broken.append(f"{name} is marked slowed but has no slowdown")
        elif jobs[j].slowdown != 1.0 and run.slowed != overlapping:
            what = "overlaps a job on another accelerator" if overlapping else "overlaps nothing"
            broken.append(f"{name} {what} but runs {'slowed' if run.slowed else 'at base speed'}")
        expected = duration_s(problem, j, run.option, run.slowed)
        if abs(run.end_s - run.start_s - expected) > tol:
            broken.append(
                f"{name} lasts {run.end_s - run.start_s:.6g} s, its option {expected:.6g} s"
            )
    choice = schedule.choice
    for e, edge in enumerate(problem.edges):
        delay = transition(problem, e, choice)[0]
        if runs[edge.dst].start_s < runs[edge.src].end_s + delay - tol:
            broken.append(
                f"{jobs[edge.dst].name} starts at {runs[edge.dst].start_s:.6g} s, before "
                f"{jobs[edge.src].name} ends ({runs[edge.src].end_s:.6g} s) plus the "
                f"transition ({delay:.6g} s)"
            )
    for acc in problem.accelerators:
        on = sorted(
            (r.start_s, r.end_s, j)
            for j, r in enumerate(runs)
            if accelerator(problem, j, r.option) == acc and r.end_s - r.start_s > tol
        )
        for k, (_, end, j) in enumerate(on):
            for start2, _, j2 in on[k + 1 :]:
                if start2 >= end - tol:
                    break
                broken.append(f"{jobs[j].name} and {jobs[j2].name} overlap on {acc}")
    return broken + _bound_violations(problem, evaluate_schedule(problem, schedule))


def _bound_violations(problem: ScheduleProblem, metrics: ScheduleMetrics) -> list[str]:
    broken = []
    latency_tol = problem.tolerance("latency")
    for name, deadline, done in zip(
        problem.names, problem.deadlines_s, metrics.completion_s, strict=True
    ):
        if deadline is not None and done > deadline + latency_tol:
            broken.append(f"{name} completes at {done:.6g} s, after its deadline {deadline:.6g} s")
    for network, name, budget, proxy in zip(
        problem.networks, problem.names, problem.proxy_budgets, metrics.proxy, strict=True
    ):
        if budget is not None and proxy > budget + network.tolerance("proxy"):
            broken.append(f"{name}: proxy {proxy:.6g} > budget {budget:.6g}")
    if problem.max_switches is not None:
        for name, count in zip(problem.names, metrics.switches, strict=True):
            if count > problem.max_switches:
                broken.append(f"{name} switches accelerator {count} > {problem.max_switches} times")
    if problem.max_makespan_s is not None and metrics.makespan_s > (
        problem.max_makespan_s + latency_tol
    ):
        broken.append(f"makespan {metrics.makespan_s:.6g} s > bound {problem.max_makespan_s:.6g} s")
    if problem.max_energy_j is not None and metrics.energy_j > (
        problem.max_energy_j + problem.tolerance("energy")
    ):
        broken.append(f"energy {metrics.energy_j:.6g} J > bound {problem.max_energy_j:.6g} J")
    return broken
