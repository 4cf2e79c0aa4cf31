"""Layer-wise mapping, exact (formulations/layerwise.md): each unit on one accelerator option.

Sets U (units), O_u (options of unit u), E (unit edges with transition costs), A (accelerators).
x[u,o] in {0,1} picks an option; y[e,a,b] linearises "src of e on a and dst on b" through
marginal equalities (tight: integral on chains without budgets). Costs are normalised by the
problem's worst-case scale before they reach the backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from milp_map.core.problem import Problem, active_bounds, normalised_limit
from milp_map.core.solution import Solution, proven_solution
from milp_map.evaluation.evaluator import evaluate_choice, mapping_of
from milp_map.solvers import SolverSettings, make_backend
from milp_map.solvers.base import Backend, Terms


@dataclass(frozen=True)
class LayerwiseModel:
    """Handles to the variables, for hints and reading back."""

    backend: Backend
    x: list[list[Any]]
    y: dict[tuple[int, str, str], Any]


def build(
    problem: Problem,
    backend: Backend,
    objective: str,
    bounds: Mapping[str, float],
) -> LayerwiseModel:
    """Variables, constraints and objective on `backend`; bounds in natural units."""
    scales = problem.scales
    keep = dominators(problem)

    # variables: one boolean per (unit, option) that no other option dominates (presolve);
    # one pair variable per costly edge
    x = [
        [
            backend.binary(f"x_{u}_{o}") if keep[u][o] == o else None
            for o in range(len(unit.options))
        ]
        for u, unit in enumerate(problem.units)
    ]
    y: dict[tuple[int, str, str], Any] = {}
    for e, edge in enumerate(problem.edges):
        if not edge.costs:
            continue
        for a in _accelerators(problem, edge.src):
            for b in _accelerators(problem, edge.dst):
                y[(e, a, b)] = backend.implied_binary(f"y_{e}_{a}_{b}")

    # constraints: one option per unit; pair variables agree with both ends
    for row in x:
        backend.add_exactly_one([v for v in row if v is not None])
    for e, edge in enumerate(problem.edges):
        if not edge.costs:
            continue
        for a in _accelerators(problem, edge.src):
            pairs = [(y[(e, a, b)], 1) for b in _accelerators(problem, edge.dst)]
            backend.add_equal(pairs + [(v, -1) for v in _on(problem, x, edge.src, a)], 0)
        for b in _accelerators(problem, edge.dst):
            pairs = [(y[(e, a, b)], 1) for a in _accelerators(problem, edge.src)]
            backend.add_equal(pairs + [(v, -1) for v in _on(problem, x, edge.dst, b)], 0)
    for quantity, bound in bounds.items():
        limit = normalised_limit(bound, scales[quantity])
        backend.add_at_most(_expression(problem, x, y, quantity), limit)

    # objective
    backend.minimize(_expression(problem, x, y, objective))
    return LayerwiseModel(backend, x, y)


def hint_values(problem: Problem, model: LayerwiseModel, choice: Sequence[int]) -> dict[Any, int]:
    """A full assignment of the model's variables for a known mapping (warm start)."""
    keep = dominators(problem)
    choice = [keep[u][o] for u, o in enumerate(choice)]
    values = {
        var: int(o == choice[u])
        for u, row in enumerate(model.x)
        for o, var in enumerate(row)
        if var is not None
    }
    for (e, a, b), var in model.y.items():
        edge = problem.edges[e]
        on_a = problem.units[edge.src].options[choice[edge.src]].accelerator == a
        on_b = problem.units[edge.dst].options[choice[edge.dst]].accelerator == b
        values[var] = int(on_a and on_b)
    return values


def solve(
    problem: Problem,
    solver: str = "cpsat",
    settings: SolverSettings | None = None,
    objective: str | None = None,
    bounds: Mapping[str, float] | None = None,
    hint: Sequence[int] | None = None,
) -> Solution:
    """Solve the layer-wise model; objective/bounds default to the problem's own."""
    settings = settings or SolverSettings()
    objective = objective or problem.objective
    if bounds is None:
        bounds = active_bounds(problem)
    active_terms = len(problem.units) + sum(1 for e in problem.edges if e.costs)
    backend = make_backend(solver, active_terms)
    if bounds and isinstance(getattr(backend, "parameters", None), dict):
        # CP-SAT proves budgeted layer-wise models only with its LP relaxation in full
        # (1,000-layer chain: 8 s, against a 12.9% gap at 45 s with the default level)
        backend.parameters["linearization_level"] = 2  # type: ignore[attr-defined]
    model = build(problem, backend, objective, bounds)
    if hint is not None:
        backend.hint(hint_values(problem, model, hint))
    result = backend.solve(settings)
    scale = problem.scales[objective]
    if result.values is None:
        return Solution(
            method=solver,
            status=result.status,
            objective=objective,
            best_bound=None if result.bound is None else result.bound * scale,
            solve_time_s=result.solve_time_s,
            detail=result.detail,
            extra={"interrupted": result.interrupted},
        )
    choice = [
        max(
            (o for o, v in enumerate(row) if v is not None),
            key=lambda o, row=row: result.values[row[o]],
        )
        for row in model.x
    ]
    metrics = evaluate_choice(problem, choice)
    return proven_solution(
        solver,
        objective,
        result.status,
        result.bound,
        scale,
        settings.rel_gap,
        mapping=mapping_of(problem, choice),
        metrics=metrics,
        solve_time_s=result.solve_time_s,
        detail=result.detail,
        extra={"choice": tuple(choice), "interrupted": result.interrupted},
    )


def _accelerators(problem: Problem, unit: int) -> list[str]:
    seen: dict[str, None] = {}
    for option in problem.units[unit].options:
        seen.setdefault(option.accelerator, None)
    return list(seen)


def _on(problem: Problem, x: list[list[Any]], unit: int, accelerator: str) -> list[Any]:
    return [
        x[unit][o]
        for o, option in enumerate(problem.units[unit].options)
        if option.accelerator == accelerator and x[unit][o] is not None
    ]


def dominators(problem: Problem) -> list[list[int]]:
    """Presolve: per unit, each option's replacement (itself if no other option dominates it).

    o is dominated by o' when o' is no worse in latency, dynamic energy and proxy (and better
    in one, or equal and listed first) and swapping them cannot change a transition: same
    accelerator, or a unit none of whose edges costs anything. Bounds and objectives only ever
    prefer lower values of these three, so an optimum never needs a dominated option.
    """
    crossing = {end for e in problem.edges if e.costs for end in (e.src, e.dst)}
    result = []
    for u, unit in enumerate(problem.units):
        keys = [(o.latency_s, o.energy_j, o.proxy) for o in unit.options]
        row = []
        for o, option in enumerate(unit.options):
            replacement = o
            for k, other in enumerate(unit.options):
                if k == o or (u in crossing and other.accelerator != option.accelerator):
                    continue
                no_worse = all(a <= b for a, b in zip(keys[k], keys[o], strict=True))
                if no_worse and (keys[k] != keys[o] or k < o):
                    replacement = k
                    break
            row.append(replacement)
        result.append(_resolve(row))
    return result


def _resolve(row: list[int]) -> list[int]:
    """Follow replacement chains to an option that is kept."""
    resolved = []
    for o in row:
        seen = set()
        while row[o] != o and o not in seen:
            seen.add(o)
            o = row[o]
        resolved.append(o)
    return resolved


def _expression(
    problem: Problem, x: list[list[Any]], y: dict[tuple[int, str, str], Any], quantity: str
) -> Terms:
    """Normalised linear expression of latency, energy (incl. static share) or proxy."""
    scale = problem.scales[quantity]
    static = problem.static_power_w
    terms: list[tuple[Any, float]] = []
    for u, unit in enumerate(problem.units):
        for o, option in enumerate(unit.options):
            cost = {
                "latency": option.latency_s,
                "energy": option.energy_j + static * option.latency_s,
                "proxy": option.proxy,
            }[quantity]
            if cost and x[u][o] is not None:
                terms.append((x[u][o], cost / scale))
    if quantity == "proxy":
        return terms
    for (e, a, b), var in y.items():
        lat, energy = problem.edges[e].costs.get((a, b), (0.0, 0.0))
        cost = lat if quantity == "latency" else energy + static * lat
        if cost:
            terms.append((var, cost / scale))
    return terms
