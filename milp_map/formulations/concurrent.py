"""Concurrent schedule, exact on CP-SAT (formulations/concurrent.md): option and start per job.

Sets J (jobs: units of all networks), O_j (options), E (edges), A (accelerators), N (networks).
x[j,o] picks an option; one optional interval per (job, option) shares the job's start and end;
AddNoOverlap per accelerator; precedence on every edge plus the transition delay of the chosen
pair. Time is integer ticks of a power-of-ten `tick_s` (>= 1e9 ticks per horizon); rounding is
measured and charged to the reported bound, and every answer is re-timed exactly in seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from ortools.sat.python import cp_model

from milp_map.core.schedule import Schedule, ScheduleProblem, ScheduleSolution, undominated_options
from milp_map.evaluation.timeline import retime, solution_of
from milp_map.solvers import SolverSettings, make_backend
from milp_map.solvers.base import SCHEDULING

if TYPE_CHECKING:
    from milp_map.solvers.cpsat import CpSatBackend

TICKS_PER_HORIZON = 1e9
"""The tick is the largest power of ten with at least this many ticks in the horizon (all jobs
at their slowest one after another): decimal data (HaX-CoNN's 0.01 ms) stays exact."""
OBJECTIVE_UNITS = 1e9
"""Integer objective resolution: about this many units in the objective's worst-case scale."""
MAX_OBJECTIVE_UNITS = 1e11
"""Cap on that count when the time term forces a finer unit (energy with a small static power)."""
BOUND_UNITS = 1e9
"""Resolution of proxy and energy bounds (units per worst-case scale)."""


# ----------------------------------------------------------------------------- data: time grid


@dataclass(frozen=True)
class TimeGrid:
    """Integer time: `ticks(s)` rounds seconds to ticks; `error_s` bounds how far any schedule's
    completion times move by rounding (sum of every job's and edge's rounding error)."""

    tick_s: float
    error_s: float

    def ticks(self, seconds: float) -> int:
        """Nearest tick; a positive duration keeps at least one tick (it still takes the slot)."""
        t = round(seconds / self.tick_s)
        return max(t, 1) if seconds > 0 else 0


def time_grid(problem: ScheduleProblem) -> TimeGrid:
    tick = 10.0 ** math.floor(math.log10(problem.horizon_s / TICKS_PER_HORIZON))
    grid = TimeGrid(tick, 0.0)
    error = 0.0
    for job in problem.jobs:
        values = [o.latency_s * f for o in job.options for f in {1.0, job.slowdown}]
        error += max(abs(v - grid.ticks(v) * tick) for v in values)
    for edge in problem.edges:
        error += max((abs(c[0] - grid.ticks(c[0]) * tick) for c in edge.costs.values()), default=0)
    exact = error <= 1e-6 * tick * (len(problem.jobs) + len(problem.edges))
    return TimeGrid(tick, 0.0 if exact else error)


# ----------------------------------------------------------------------------- model


@dataclass
class ConcurrentModel:
    """Handles to the variables, for hints and reading back."""

    model: cp_model.CpModel
    grid: TimeGrid
    keep: list[list[int]]
    """Per job, the options that get a variable (presolve drops dominated ones)."""
    x: list[dict[int, Any]]
    start: list[Any]
    end: list[Any]
    slowed: dict[int, Any] = field(default_factory=dict)
    objective_unit: float = 1.0
    """Natural units (s, J or normalised) per integer objective unit."""
    objective_error: float = 0.0
    """Largest gap, natural units, between any schedule's model objective and true objective."""


def build(problem: ScheduleProblem, grid: TimeGrid, model: cp_model.CpModel) -> ConcurrentModel:
    """Variables, constraints and objective of the concurrent schedule, on a native CP-SAT model
    (the backend's scheduling capability: intervals and no-overlap)."""
    jobs, ticks = problem.jobs, grid.ticks
    keep = undominated_options(problem)
    horizon = sum(
        max(ticks(o.latency_s * job.slowdown) for o in job.options) for job in jobs
    ) + sum(max((ticks(c[0]) for c in e.costs.values()), default=0) for e in problem.edges)

    # variables: option choice, start and end per job; slowed flag per job under contention
    x = [{o: model.new_bool_var(f"x_{j}_{o}") for o in keep[j]} for j in range(len(jobs))]
    start = [model.new_int_var(0, horizon, f"start_{j}") for j in range(len(jobs))]
    end = [model.new_int_var(0, horizon, f"end_{j}") for j in range(len(jobs))]
    slowed = {
        j: model.new_bool_var(f"slowed_{j}") for j, job in enumerate(jobs) if job.slowdown != 1.0
    }
    on = [_on_accelerator(model, problem, x, j) for j in range(len(jobs))]

    # constraints: one option per job; its interval on its accelerator; no overlap
    intervals: dict[str, list[Any]] = {a: [] for a in problem.accelerators}
    work = []
    for j, job in enumerate(jobs):
        model.add_exactly_one(x[j].values())
        for o, chosen in x[j].items():
            option = job.options[o]
            base = ticks(option.latency_s)
            size: Any = base
            if j in slowed:
                size = base + (ticks(option.latency_s * job.slowdown) - base) * slowed[j]
            interval = model.new_optional_interval_var(start[j], size, end[j], chosen, f"i_{j}_{o}")
            if option.latency_s > 0:
                intervals[option.accelerator].append(interval)
            work.append((base, chosen))
    for acc_intervals in intervals.values():
        model.add_no_overlap(acc_intervals)

    # constraints: precedence on every edge, plus the transition delay of the chosen pair
    for edge in problem.edges:
        model.add(start[edge.dst] >= end[edge.src])
        for (a, b), (latency, _) in edge.costs.items():
            delay = ticks(latency)
            if delay and a in on[edge.src] and b in on[edge.dst]:
                model.add(start[edge.dst] >= end[edge.src] + delay).only_enforce_if(
                    [on[edge.src][a], on[edge.dst][b]]
                )

    # completion per network and makespan; redundant work bounds help the LP relaxation
    completion = []
    for n, members in enumerate(problem.jobs_of):
        done = model.new_int_var(0, horizon, f"completion_{n}")
        for j in members:
            model.add(done >= end[j])
        completion.append(done)
    makespan = model.new_int_var(0, horizon, "makespan")
    for done in completion:
        model.add(makespan >= done)
    model.add(len(problem.accelerators) * makespan >= sum(t * v for t, v in work))
    for a in problem.accelerators:
        model.add(
            makespan
            >= sum(
                ticks(jobs[j].options[o].latency_s) * v
                for j in range(len(jobs))
                for o, v in x[j].items()
                if jobs[j].options[o].accelerator == a
            )
        )

    # constraints: contention, budgets, deadlines, switch limits, makespan and energy bounds
    if slowed:
        _contention(model, problem, x, start, end, slowed)
    _proxy_budgets(model, problem, x)
    for n, deadline in enumerate(problem.deadlines_s):
        if deadline is not None:
            model.add(completion[n] <= _latency_limit(problem, grid, deadline))
    if problem.max_makespan_s is not None:
        model.add(makespan <= _latency_limit(problem, grid, problem.max_makespan_s))
    if problem.max_switches is not None:
        _switch_limits(model, problem, on)
    pairs = _pair_literals(model, problem, on)
    if problem.max_energy_j is not None:
        _energy_bound(model, problem, grid, x, pairs, makespan)

    # objective
    cm = ConcurrentModel(model, grid, keep, x, start, end, slowed)
    _objective(cm, problem, makespan, completion, pairs)
    return cm


def solve(
    problem: ScheduleProblem,
    settings: SolverSettings | None = None,
    hint: Schedule | None = None,
) -> ScheduleSolution:
    """Build, solve and read back: the schedule re-timed in seconds, the bound made valid."""
    settings = settings or SolverSettings()
    grid = time_grid(problem)
    backend = cast("CpSatBackend", make_backend("cpsat", needs=frozenset({SCHEDULING})))
    cm = build(problem, grid, backend.model)
    if hint is not None:
        _hint(cm, hint)
    result = backend.solve_native(settings)
    extra = {"tick_s": grid.tick_s, "rounding_s": grid.error_s}
    if result.values is None:
        return ScheduleSolution(
            "cpsat",
            result.status,
            problem.objective,
            solve_time_s=result.solve_time_s,
            detail=result.detail,
            extra=extra,
        )
    values = result.values
    choice = [max(row, key=lambda o, row=row: values[row[o]]) for row in cm.x]
    starts = [values[s] * grid.tick_s for s in cm.start]
    slowed = [j in cm.slowed and bool(values[cm.slowed[j]]) for j in range(len(choice))]
    schedule = retime(problem, choice, starts, slowed)
    bound = result.bound * cm.objective_unit - cm.objective_error
    return solution_of(
        problem, "cpsat", result.status, schedule, bound, result.solve_time_s, result.detail, extra
    )


# ----------------------------------------------------------------------------- pieces


def _on_accelerator(
    model: cp_model.CpModel, problem: ScheduleProblem, x: list[dict[int, Any]], j: int
) -> dict[str, Any]:
    """A literal per accelerator job j can use: true iff its option is on that accelerator."""
    by_acc: dict[str, list[Any]] = {}
    for o, var in x[j].items():
        by_acc.setdefault(problem.jobs[j].options[o].accelerator, []).append(var)
    on = {}
    for acc, variables in by_acc.items():
        if len(variables) == 1:
            on[acc] = variables[0]
        else:
            on[acc] = model.new_bool_var(f"on_{j}_{acc}")
            model.add(on[acc] == sum(variables))
    return on


def _contention(
    model: cp_model.CpModel,
    problem: ScheduleProblem,
    x: list[dict[int, Any]],
    start: list[Any],
    end: list[Any],
    slowed: dict[int, Any],
) -> None:
    """ov[i,j] = 0 forces i and j apart in time; a job is slowed if any ov with it is 1.

    Pairs: jobs with no path between them, at least one with a slowdown, both able to take
    time. Two jobs on one accelerator are apart anyway; on two they must either be apart or
    both pay (the one with a slowdown pays): exact, and pessimism never helps the objective.
    """
    jobs = problem.jobs
    takes_time = [any(jobs[j].options[o].latency_s > 0 for o in x[j]) for j in range(len(jobs))]
    for i in range(len(jobs)):
        for j in range(i + 1, len(jobs)):
            if not (takes_time[i] and takes_time[j]) or not (i in slowed or j in slowed):
                continue
            if not problem.may_overlap(i, j):
                continue
            overlap = model.new_bool_var(f"ov_{i}_{j}")
            before = model.new_bool_var(f"before_{i}_{j}")
            model.add(end[i] <= start[j]).only_enforce_if([~overlap, before])
            model.add(end[j] <= start[i]).only_enforce_if([~overlap, ~before])
            for k in (i, j):
                if k in slowed:
                    model.add_implication(overlap, slowed[k])


MAX_ROW_UNITS = 2**53
"""Largest right-hand side of an integer time or energy row: a bound past it (a huge
--max-latency or --max-energy) binds nothing, and CP-SAT takes 64-bit integers only."""


def _latency_limit(problem: ScheduleProblem, grid: TimeGrid, bound_s: float) -> int:
    """A time bound in ticks: held to the checker's tolerance (FEASIBILITY_RTOL of the scale,
    as every mode) and relaxed by the tick rounding, so no schedule the checker accepts is cut
    off (also when bound / tick lands just below an integer in floating point)."""
    ticks = math.floor((bound_s + problem.tolerance("latency") + grid.error_s) / grid.tick_s)
    return min(ticks, MAX_ROW_UNITS)


def _proxy_budgets(
    model: cp_model.CpModel, problem: ScheduleProblem, x: list[dict[int, Any]]
) -> None:
    """Per network: sum of chosen proxies <= budget, integer-scaled and relaxed by its rounding."""
    for n, budget in enumerate(problem.proxy_budgets):
        if budget is None:
            continue
        members = problem.jobs_of[n]
        unit = problem.networks[n].scales["proxy"] / BOUND_UNITS
        terms = [
            (round(problem.jobs[j].options[o].proxy / unit), var)
            for j in members
            for o, var in x[j].items()
        ]
        slack = 0.5 * len(members) + FEASIBLE_SLACK_UNITS
        limit = budget + problem.networks[n].tolerance("proxy")  # the checker's tolerance
        model.add(sum(c * v for c, v in terms) <= math.floor(limit / unit + slack))


FEASIBLE_SLACK_UNITS = 1.0
"""Bounds are relaxed by their rounding plus this many units, so no truly feasible schedule
is cut off; the evaluator then checks them to FEASIBILITY_RTOL, a thousand times coarser."""


def _switch_limits(
    model: cp_model.CpModel, problem: ScheduleProblem, on: list[dict[str, Any]]
) -> None:
    """cross[e] = 1 exactly when the ends of e run on different accelerators (>= on[src,a] -
    on[dst,a], and 0 when both are on a); at most K per network."""
    crossings: list[list[Any]] = [[] for _ in problem.networks]
    for e, edge in enumerate(problem.edges):
        accs = set(on[edge.src]) | set(on[edge.dst])
        if len(accs) < 2:
            continue
        cross = model.new_bool_var(f"cross_{e}")
        for a in accs:
            model.add(cross >= on[edge.src].get(a, 0) - on[edge.dst].get(a, 0))
            if a in on[edge.src] and a in on[edge.dst]:  # and 0 when both ends share a
                model.add_bool_or([~on[edge.src][a], ~on[edge.dst][a], ~cross])
        crossings[problem.jobs[edge.src].network].append(cross)
    for crosses in crossings:
        if crosses:
            model.add(sum(crosses) <= problem.max_switches)


def _pair_literals(
    model: cp_model.CpModel, problem: ScheduleProblem, on: list[dict[str, Any]]
) -> list[tuple[Any, float]]:
    """(y, energy_j) for every edge pair with a transition energy: y >= on[src,a] + on[dst,b] - 1.

    y only costs, so a minimum sets it to the product; only built when energy counts."""
    if problem.objective not in ("energy", "weighted") and problem.max_energy_j is None:
        return []
    pairs = []
    for e, edge in enumerate(problem.edges):
        for (a, b), (_, energy) in edge.costs.items():
            if energy > 0 and a in on[edge.src] and b in on[edge.dst]:
                y = model.new_bool_var(f"y_{e}_{a}_{b}")
                model.add(y >= on[edge.src][a] + on[edge.dst][b] - 1)
                pairs.append((y, energy))
    return pairs


def _energy_bound(
    model: cp_model.CpModel,
    problem: ScheduleProblem,
    grid: TimeGrid,
    x: list[dict[int, Any]],
    pairs: list[tuple[Any, float]],
    makespan: Any,
) -> None:
    """static power x makespan + dynamic + transition energy <= bound, in integer units;
    relaxed by every rounding so no truly feasible schedule is cut off."""
    scale = problem.scales["energy"]
    coef, unit, _ = _integer_units(problem.static_power_w * grid.tick_s, scale, BOUND_UNITS)
    terms = [
        (round(problem.jobs[j].options[o].energy_j / unit), var)
        for j in range(len(problem.jobs))
        for o, var in x[j].items()
    ] + [(round(energy / unit), y) for y, energy in pairs]
    slack = 0.5 * (len(problem.jobs) + len(pairs)) + FEASIBLE_SLACK_UNITS
    slack += coef * grid.error_s / grid.tick_s
    model.add(
        coef * makespan + sum(c * v for c, v in terms)
        <= min(
            math.floor((problem.max_energy_j + problem.tolerance("energy")) / unit + slack),
            MAX_ROW_UNITS,
        )
    )


def _integer_units(alpha: float, total: float, resolution: float) -> tuple[int, float, bool]:
    """(coef, unit, dropped): an integer unit for a linear form alpha * T + ... whose worst
    case is `total`, with the time coefficient alpha / unit = coef exact.

    About `resolution` units in `total`; finer (up to MAX_OBJECTIVE_UNITS) when alpha is
    small; if alpha is below even that, the time term is dropped (coef 0, dropped True).
    """
    target = total / resolution
    if alpha >= target:
        coef = round(alpha / target)
        return coef, alpha / coef, False
    if alpha > 0 and total / alpha <= MAX_OBJECTIVE_UNITS:
        return 1, alpha, False
    return 0, target, alpha > 0


def _objective(
    cm: ConcurrentModel,
    problem: ScheduleProblem,
    makespan: Any,
    completion: list[Any],
    pairs: list[tuple[Any, float]],
) -> None:
    """min alpha * T + sum beta * x + sum gamma * y in integer units (module docstring).

    T is the makespan (or the sum of completions) in ticks. The unit v is chosen so that the
    time coefficient alpha / v is an exact integer; the other coefficients are rounded. The
    model objective of any schedule then differs from its true objective by at most
    `objective_error` (time rounding times alpha, plus half a unit per rounded term), which
    `solve` subtracts from CP-SAT's bound so the reported bound stays valid.
    """
    grid = cm.grid
    scales = problem.scales
    objective = problem.objective
    times = completion if objective == "completion" else [makespan]
    w = problem.weight
    if objective in ("makespan", "completion"):
        alpha, beta_scale = grid.tick_s, 0.0
    elif objective == "energy":
        alpha, beta_scale = problem.static_power_w * grid.tick_s, 1.0
    else:
        alpha = w * grid.tick_s / scales["latency"]
        alpha += (1 - w) * problem.static_power_w * grid.tick_s / scales["energy"]
        beta_scale = (1 - w) / scales["energy"]
    total = alpha * problem.horizon_s / grid.tick_s * len(times) + beta_scale * (
        scales["energy"] - problem.static_power_w * problem.horizon_s
    )
    coef, unit, dropped = _integer_units(alpha, total, OBJECTIVE_UNITS)
    error = alpha * problem.horizon_s / grid.tick_s * len(times) if dropped else 0.0
    terms = [(coef, t) for t in times]
    rounded = 0
    if beta_scale:
        for j, job in enumerate(problem.jobs):
            for o, var in cm.x[j].items():
                c = round(beta_scale * job.options[o].energy_j / unit)
                if c:
                    terms.append((c, var))
            rounded += 1
        for y, energy in pairs:
            terms.append((round(beta_scale * energy / unit), y))
            rounded += 1
    error += 0.5 * unit * rounded + alpha / grid.tick_s * grid.error_s * len(times)
    cm.model.minimize(sum(c * v for c, v in terms))
    cm.objective_unit = unit
    cm.objective_error = error


def _hint(cm: ConcurrentModel, schedule: Schedule) -> None:
    """Warm start from a known schedule (options, starts; a dominated option hints nothing)."""
    cm.model.clear_hints()
    for j, run in enumerate(schedule.runs):
        for o, var in cm.x[j].items():
            cm.model.add_hint(var, int(o == run.option))
        cm.model.add_hint(cm.start[j], round(run.start_s / cm.grid.tick_s))
