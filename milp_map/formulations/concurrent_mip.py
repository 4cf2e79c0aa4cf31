"""Concurrent schedule as a disjunctive big-M MILP (PuLP: HiGHS or CBC), the cross-check of
the CP-SAT model (formulations/concurrent.md, "Second formulation"). Small instances only:
one order variable per pair of jobs that may share an accelerator. No contention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from milp_map.core.problem import FEASIBILITY_RTOL, normalised_limit
from milp_map.core.schedule import ScheduleProblem, ScheduleSolution, undominated_options
from milp_map.errors import MilpMapError
from milp_map.evaluation.timeline import retime, solution_of
from milp_map.solvers import SolverSettings, make_backend
from milp_map.solvers.base import CONTINUOUS, Backend, ContinuousBackend


@dataclass(frozen=True)
class ScheduleMip:
    """Handles to the variables, and the objective's natural units per model unit."""

    x: list[dict[int, Any]]
    start: list[Any]
    objective_scale: float


def build(problem: ScheduleProblem, backend: ContinuousBackend) -> ScheduleMip:
    """Variables, constraints and objective; times are fractions of the horizon H (big-M = 1)."""
    jobs = problem.jobs
    horizon = problem.horizon_s
    keep = undominated_options(problem)

    # variables: option choice x, start s (fraction of H), pair y on costly edges, order z
    x = [{o: backend.binary(f"x_{j}_{o}") for o in keep[j]} for j in range(len(jobs))]
    s = [_time(backend, f"s_{j}") for j in range(len(jobs))]
    duration = [
        [(var, jobs[j].options[o].latency_s / horizon) for o, var in x[j].items()]
        for j in range(len(jobs))
    ]
    on = [_on(problem, x, j, positive_only=False) for j in range(len(jobs))]
    busy = [_on(problem, x, j, positive_only=True) for j in range(len(jobs))]
    y: dict[tuple[int, str, str], Any] = {}
    for e, edge in enumerate(problem.edges):
        if edge.costs:
            for a in on[edge.src]:
                for b in on[edge.dst]:
                    y[(e, a, b)] = backend.implied_binary(f"y_{e}_{a}_{b}")

    # constraints: one option per job; pair marginals (y = on[src,a] * on[dst,b])
    for row in x:
        backend.add_exactly_one(list(row.values()))
    for e, edge in enumerate(problem.edges):
        if not edge.costs:
            continue
        for a, terms in on[edge.src].items():
            pairs = [(y[(e, a, b)], 1) for b in on[edge.dst]]
            backend.add_equal(pairs + [(v, -1) for v, _ in terms], 0)
        for b, terms in on[edge.dst].items():
            pairs = [(y[(e, a, b)], 1) for a in on[edge.src]]
            backend.add_equal(pairs + [(v, -1) for v, _ in terms], 0)

    # constraints: precedence plus transition delay; every job ends within the horizon
    for e, edge in enumerate(problem.edges):
        delays = [
            (y[(e, a, b)], c[0] / horizon)
            for (a, b), c in edge.costs.items()
            if c[0] and (e, a, b) in y
        ]
        terms = [(s[edge.src], 1.0), *duration[edge.src], *delays, (s[edge.dst], -1.0)]
        backend.add_at_most(terms, 0.0)
    for j in range(len(jobs)):
        backend.add_at_most([(s[j], 1.0), *duration[j]], 1.0)

    # constraints: jobs that may overlap and both occupy an accelerator are ordered (big-M 1)
    for i in range(len(jobs)):
        for j in range(i + 1, len(jobs)):
            shared = set(busy[i]) & set(busy[j])
            if not shared or not problem.may_overlap(i, j):
                continue
            first = backend.binary(f"z_{i}_{j}")
            for a in shared:
                both = [(v, 1.0) for v, _ in busy[i][a]] + [(v, 1.0) for v, _ in busy[j][a]]
                # i before j unless z = 0 or one of them is elsewhere: s_i + d_i - s_j <= ...
                backend.add_at_most(
                    [(s[i], 1.0), *duration[i], (s[j], -1.0), (first, 1.0), *both], 3.0
                )
                backend.add_at_most(
                    [(s[j], 1.0), *duration[j], (s[i], -1.0), (first, -1.0), *both], 2.0
                )

    # completion per network, makespan; deadlines, budgets, switch limits, bounds
    completion = [_time(backend, f"c_{n}") for n in range(len(problem.networks))]
    makespan = _time(backend, "makespan")
    for n, members in enumerate(problem.jobs_of):
        for j in members:
            backend.add_at_most([(s[j], 1.0), *duration[j], (completion[n], -1.0)], 0.0)
        backend.add_at_most([(completion[n], 1.0), (makespan, -1.0)], 0.0)
        deadline = problem.deadlines_s[n] if problem.deadlines_s else None
        if deadline is not None:
            backend.add_at_most([(completion[n], 1.0)], deadline / horizon + FEASIBILITY_RTOL)
    if problem.max_makespan_s is not None:
        backend.add_at_most([(makespan, 1.0)], problem.max_makespan_s / horizon + FEASIBILITY_RTOL)
    for n, budget in enumerate(problem.proxy_budgets):
        if budget is not None:
            scale = problem.networks[n].scales["proxy"]
            terms = [
                (var, jobs[j].options[o].proxy / scale)
                for j in problem.jobs_of[n]
                for o, var in x[j].items()
            ]
            backend.add_at_most(terms, normalised_limit(budget, scale))
    if problem.max_switches is not None:
        _switch_limits(problem, backend, on)
    energy = _energy(problem, x, y, makespan)
    if problem.max_energy_j is not None:
        scale = problem.scales["energy"]
        backend.add_at_most(energy, normalised_limit(problem.max_energy_j, scale))

    # objective (normalised: time by H, energy by its worst case)
    objective = problem.objective
    if objective == "makespan":
        terms, scale = [(makespan, 1.0)], horizon
    elif objective == "completion":
        terms, scale = [(c, 1.0) for c in completion], horizon
    elif objective == "energy":
        terms, scale = energy, problem.scales["energy"]
    else:
        w = problem.weight
        terms = [(makespan, w * horizon / problem.scales["latency"])]
        terms += [(v, (1 - w) * c) for v, c in energy]
        scale = 1.0
    backend.minimize(terms)
    return ScheduleMip(x, s, scale)


def solve(
    problem: ScheduleProblem, solver: str = "highs", settings: SolverSettings | None = None
) -> ScheduleSolution:
    """Build, solve and read back: options, starts in seconds, the schedule re-timed exactly."""
    if problem.contention:
        raise MilpMapError("the MILP schedule model has no contention; use cpsat")
    settings = settings or SolverSettings()
    backend = cast("ContinuousBackend", make_backend(solver, needs=frozenset({CONTINUOUS})))
    model = build(problem, backend)
    result = backend.solve(settings)
    if result.values is None:
        return ScheduleSolution(
            solver,
            result.status,
            problem.objective,
            solve_time_s=result.solve_time_s,
            detail=result.detail,
        )
    values = result.values
    choice = [max(row, key=lambda o, row=row: values[row[o]]) for row in model.x]
    starts = [values[v] * problem.horizon_s for v in model.start]
    schedule = retime(problem, choice, starts)
    bound = None if result.bound is None else result.bound * model.objective_scale
    return solution_of(
        problem, solver, result.status, schedule, bound, result.solve_time_s, result.detail
    )


def _time(backend: ContinuousBackend, name: str) -> Any:
    """A time in [0, 1] (a fraction of the horizon)."""
    return backend.continuous(f"{name}_t", 0.0, 1.0)


def _on(
    problem: ScheduleProblem, x: list[dict[int, Any]], j: int, positive_only: bool
) -> dict[str, list[tuple[Any, float]]]:
    """accelerator -> [(x, 1)] of job j's options there (optionally only those taking time)."""
    by_acc: dict[str, list[tuple[Any, float]]] = {}
    for o, var in x[j].items():
        option = problem.jobs[j].options[o]
        if positive_only and option.latency_s <= 0:
            continue
        by_acc.setdefault(option.accelerator, []).append((var, 1.0))
    return by_acc


def _switch_limits(
    problem: ScheduleProblem,
    backend: Backend,
    on: list[dict[str, list[tuple[Any, float]]]],
) -> None:
    """cross[e] >= on[src,a] - on[dst,a] for every a; sum per network <= K."""
    crossings: list[list[tuple[Any, float]]] = [[] for _ in problem.networks]
    for e, edge in enumerate(problem.edges):
        accs = set(on[edge.src]) | set(on[edge.dst])
        if len(accs) < 2:
            continue
        cross = backend.implied_binary(f"cross_{e}")
        for a in accs:
            terms = [*on[edge.src].get(a, []), *((v, -1.0) for v, _ in on[edge.dst].get(a, []))]
            backend.add_at_most([*terms, (cross, -1.0)], 0.0)
        crossings[problem.jobs[edge.src].network].append((cross, 1.0))
    for terms in crossings:
        if terms:
            backend.add_at_most(terms, float(problem.max_switches))


def _energy(
    problem: ScheduleProblem,
    x: list[dict[int, Any]],
    y: dict[tuple[int, str, str], Any],
    makespan: Any,
) -> list[tuple[Any, float]]:
    """Energy / its worst case: static power x makespan + dynamic + transition energy."""
    scale = problem.scales["energy"]
    terms = [(makespan, problem.static_power_w * problem.horizon_s / scale)]
    for j, job in enumerate(problem.jobs):
        terms += [(var, job.options[o].energy_j / scale) for o, var in x[j].items()]
    for (e, a, b), var in y.items():
        energy = problem.edges[e].costs.get((a, b), (0.0, 0.0))[1]
        if energy:
            terms.append((var, energy / scale))
    return terms
