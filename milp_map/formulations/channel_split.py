"""Channel-group splits, exact (formulations/channel_split.md): ODiMO's search space, solved.

Each unit gives n[u,a] output channels (a multiple of its group size) to each accelerator;
the parts run in parallel, so the unit takes T_u = max_a t_a(u, n[u,a]). Step-function costs
are tabulated: one boolean per (unit, accelerator, part option), T_u as a one-hot over the
unit's candidate part times, and `T_u >= t_a` as linear rows. No approximation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from milp_map.core.problem import active_bounds, normalised_limit
from milp_map.core.solution import Part, Solution, proven_solution
from milp_map.core.split import Configuration, SplitProblem, SplitUnit, configurations
from milp_map.evaluation.evaluator import evaluate_split
from milp_map.solvers import SolverSettings, make_backend
from milp_map.solvers.base import Backend, Terms

Selection = tuple[tuple[tuple[str, int], ...], ...]
"""Per unit, the chosen (accelerator, part option index) pairs: a solution's `choice`."""


@dataclass
class SplitModel:
    """Handles to the variables, for hints and reading back."""

    c: list[list[tuple[Configuration, Any]]]
    s: list[dict[str, list[Any]]]
    z: list[list[tuple[float, Any]]]
    r: list[list[tuple[int, Any]]]
    w: dict[tuple[int, str, str], Any]
    p: dict[tuple[int, str, int, str], Any]


def build(
    problem: SplitProblem, backend: Backend, objective: str, bounds: Mapping[str, float]
) -> SplitModel:
    """Variables, constraints and objective on `backend`; bounds in natural units."""
    scales = problem.scales
    base = problem.base
    configs = _configurations(problem)

    # variables: whole splits where enumerable and free of transitions, else parts,
    # makespan candidates, low-precision channel counts; transitions
    c = [
        [(config, backend.binary(f"c_{u}_{k}")) for k, config in enumerate(configs[u] or ())]
        for u in range(len(problem.units))
    ]
    by_parts = [configs[u] is None for u in range(len(problem.units))]
    s = [
        {
            acc: [backend.binary(f"s_{u}_{acc}_{j}") for j in range(len(parts))]
            for acc, parts in unit.parts.items()
        }
        if by_parts[u]
        else {}
        for u, unit in enumerate(problem.units)
    ]
    z = [
        [(t, backend.binary(f"z_{u}_{k}")) for k, t in enumerate(_candidate_times(unit))]
        if unit.splittable and by_parts[u]
        else []
        for u, unit in enumerate(problem.units)
    ]
    r = [
        [(m, backend.binary(f"r_{u}_{m}")) for m in range(0, unit.channels + 1, unit.group_size)]
        if unit.proxy.prefix is not None and by_parts[u]
        else []
        for u, unit in enumerate(problem.units)
    ]
    w: dict[tuple[int, str, str], Any] = {}
    p: dict[tuple[int, str, int, str], Any] = {}
    for e, edge in enumerate(base.edges):
        for a, b in edge.costs:
            w[(e, a, b)] = backend.implied_binary(f"w_{e}_{a}_{b}")
            if edge.bytes_latency.get((a, b), 0.0) and problem.units[edge.src].splittable:
                for j in range(len(problem.units[edge.src].parts[a])):
                    p[(e, a, j, b)] = backend.implied_binary(f"p_{e}_{a}_{j}_{b}")

    # constraints: one split per enumerated unit; else at most one part per accelerator,
    # channels add up
    for u, unit in enumerate(problem.units):
        if not by_parts[u]:
            backend.add_exactly_one([v for _, v in c[u]])
            continue
        for row in s[u].values():
            backend.add_at_most_int([(v, 1) for v in row], 1)
        backend.add_equal(
            [
                (v, unit.parts[acc][j].channels)
                for acc, row in s[u].items()
                for j, v in enumerate(row)
            ],
            unit.channels,
        )
    # makespan: T_u = sum_k t_k z_k, one candidate, at or above every part's time
    for u, unit in enumerate(problem.units):
        if not z[u]:
            continue
        backend.add_exactly_one([v for _, v in z[u]])
        makespan = [(v, -t / scales["latency"]) for t, v in z[u]]
        for acc, row in s[u].items():
            times = [
                (v, unit.parts[acc][j].latency_s / scales["latency"]) for j, v in enumerate(row)
            ]
            backend.add_at_most(times + makespan, 0.0, relax=False)
    # per-channel proxy: r picks how many channels run at the low precision
    for u, unit in enumerate(problem.units):
        if not r[u]:
            continue
        backend.add_exactly_one([v for _, v in r[u]])
        low = [
            (v, unit.parts[acc][j].channels)
            for acc, row in s[u].items()
            if unit.precision[acc] == unit.proxy.low
            for j, v in enumerate(row)
        ]
        backend.add_equal(low + [(v, -m) for m, v in r[u]], 0)
    # transitions: w = (src part on a) and (dst part on b); p = that for each src share
    for (e, a, b), var in w.items():
        edge = base.edges[e]
        backend.add_at_most_int(
            [(v, 1) for v in s[edge.src][a]] + [(v, 1) for v in s[edge.dst][b]] + [(var, -1)], 1
        )
    for (e, a, j, b), var in p.items():
        edge = base.edges[e]
        backend.add_at_most_int(
            [(s[edge.src][a][j], 1)] + [(v, 1) for v in s[edge.dst][b]] + [(var, -1)], 1
        )
    model = SplitModel(c, s, z, r, w, p)
    for quantity, bound in bounds.items():
        limit = normalised_limit(bound, scales[quantity])
        backend.add_at_most(_expression(problem, model, quantity), limit)

    # objective
    backend.minimize(_expression(problem, model, objective))
    return model


def solve(
    problem: SplitProblem,
    solver: str = "cpsat",
    settings: SolverSettings | None = None,
    objective: str | None = None,
    bounds: Mapping[str, float] | None = None,
    hint: Selection | None = None,
) -> Solution:
    """Solve the split model; objective/bounds default to the problem's own."""
    return prepare(problem, solver, objective, bounds).run(settings or SolverSettings(), hint)


@dataclass
class Prepared:
    """A split model built once on one backend, to be solved one or more times (the
    portfolio's CP-SAT head start and its race reuse it: a ResNet-50 model per channel takes
    longer to build than to search)."""

    problem: SplitProblem
    solver: str
    objective: str
    backend: Backend
    model: SplitModel

    def run(self, settings: SolverSettings, hint: Selection | None = None) -> Solution:
        problem, objective = self.problem, self.objective
        if hint is not None:
            self.backend.hint(hint_values(problem, self.model, hint))
        result = self.backend.solve(settings)
        if result.values is None:
            bound = None if result.bound is None else result.bound * problem.scales[objective]
            return Solution(
                self.solver,
                result.status,
                objective,
                best_bound=bound,
                solve_time_s=result.solve_time_s,
                detail=result.detail,
                extra={"interrupted": result.interrupted},
            )
        model = self.model
        selection = tuple(
            next(config.parts for config, v in model.c[u] if result.values[v] > 0.5)
            if model.c[u]
            else tuple(
                (acc, j)
                for acc, row in model.s[u].items()
                for j, v in enumerate(row)
                if result.values[v] > 0.5
            )
            for u in range(len(problem.units))
        )
        mapping = mapping_of(problem, selection)
        metrics = evaluate_split(problem, mapping).metrics
        return proven_solution(
            self.solver,
            objective,
            result.status,
            result.bound,
            problem.scales[objective],
            settings.rel_gap,
            mapping=mapping,
            metrics=metrics,
            solve_time_s=result.solve_time_s,
            detail=result.detail,
            extra={"choice": selection, "interrupted": result.interrupted},
        )


def prepare(
    problem: SplitProblem,
    solver: str = "cpsat",
    objective: str | None = None,
    bounds: Mapping[str, float] | None = None,
) -> Prepared:
    """The split model on `solver`'s backend, built and ready to `run`."""
    objective = objective or problem.objective
    if bounds is None:
        bounds = active_bounds(problem)
    active = sum(len(u.parts) + 2 for u in problem.units) + 2 * sum(
        len(e.costs) for e in problem.base.edges
    )
    backend = make_backend(solver, active)
    model = build(problem, backend, objective, bounds)
    return Prepared(problem, solver, objective, backend, model)


def mapping_of(problem: SplitProblem, selection: Selection) -> dict[str, tuple[Part, ...]]:
    """Parts with channel indices: the n channels with the smallest score increase run at the
    low precision (per-channel scores); otherwise contiguous blocks in accelerator order."""
    mapping = {}
    for unit, chosen in zip(problem.units, selection, strict=True):
        name = problem.base.units[unit.index].name
        options = [(acc, unit.parts[acc][j]) for acc, j in chosen]
        if not unit.splittable:
            acc, option = options[0]
            mapping[name] = (Part(acc, option.operating_point),)
            continue
        order = _channel_order(unit)
        parts, start = [], 0
        for acc, option in sorted(options, key=lambda item: _low_first(unit, item[0])):
            indices = tuple(sorted(int(c) for c in order[start : start + option.channels]))
            start += option.channels
            parts.append(Part(acc, option.operating_point, option.channels, indices))
        mapping[name] = tuple(sorted(parts, key=lambda part: part.accelerator))
    return mapping


def selection_from_layerwise(problem: SplitProblem, choice: Sequence[int]) -> Selection:
    """The split selection equal to a layer-wise mapping (every unit whole on its option)."""
    selection = []
    for unit, index in zip(problem.units, choice, strict=True):
        option = problem.base.units[unit.index].options[index]
        parts = unit.parts[option.accelerator]
        j = next(
            k
            for k, part in enumerate(parts)
            if part.channels == unit.channels and part.operating_point == option.operating_point
        )
        selection.append(((option.accelerator, j),))
    return tuple(selection)


def hint_values(problem: SplitProblem, model: SplitModel, selection: Selection) -> dict[Any, int]:
    """A full assignment of the model's variables for a known selection (warm start)."""
    values: dict[Any, int] = {}
    for u, unit in enumerate(problem.units):
        chosen = dict(selection[u])
        for config, var in model.c[u]:
            values[var] = int(sorted(config.parts) == sorted(selection[u]))
        for acc, row in model.s[u].items():
            for j, var in enumerate(row):
                values[var] = int(chosen.get(acc) == j)
        if model.z[u]:
            top = max(unit.parts[acc][j].latency_s for acc, j in chosen.items())
            for t, var in model.z[u]:
                values[var] = int(t == top)
        if model.r[u]:
            low = sum(
                unit.parts[acc][j].channels
                for acc, j in chosen.items()
                if unit.precision[acc] == unit.proxy.low
            )
            for m, var in model.r[u]:
                values[var] = int(m == low)
    for (e, a, b), var in model.w.items():
        edge = problem.base.edges[e]
        values[var] = int(a in dict(selection[edge.src]) and b in dict(selection[edge.dst]))
    for (e, a, j, b), var in model.p.items():
        edge = problem.base.edges[e]
        values[var] = int(dict(selection[edge.src]).get(a) == j and b in dict(selection[edge.dst]))
    return values


def _configurations(problem: SplitProblem) -> list[list[Configuration] | None]:
    """Enumerated, non-dominated splits for units without costly transitions, else None."""
    crossing = set()
    for edge in problem.base.edges:
        if edge.costs:
            crossing.update((edge.src, edge.dst))
    return [None if u in crossing else configurations(unit) for u, unit in enumerate(problem.units)]


def _candidate_times(unit: SplitUnit) -> list[float]:
    return sorted({part.latency_s for parts in unit.parts.values() for part in parts})


def _channel_order(unit: SplitUnit) -> list[int]:
    if unit.proxy.order is not None:
        return [int(c) for c in unit.proxy.order]
    return list(range(unit.channels))


def _low_first(unit: SplitUnit, acc: str) -> tuple[int, str]:
    return (0 if unit.precision[acc] == unit.proxy.low else 1, acc)


def _expression(problem: SplitProblem, model: SplitModel, quantity: str) -> Terms:
    """Normalised latency, energy (incl. static share) or proxy."""
    scale = problem.scales[quantity]
    static = problem.static_power_w
    base = problem.base
    terms: list[tuple[Any, float]] = []
    for u, unit in enumerate(problem.units):
        if model.c[u]:
            for config, v in model.c[u]:
                cost = {
                    "latency": config.latency_s,
                    "energy": config.energy_j + static * config.latency_s,
                    "proxy": config.proxy,
                }[quantity]
                terms.append((v, cost / scale))
            continue
        parts = [
            (unit.parts[acc][j], v, acc)
            for acc, row in model.s[u].items()
            for j, v in enumerate(row)
        ]
        if quantity == "proxy":
            if model.r[u]:
                prefix = unit.proxy.prefix
                assert prefix is not None
                terms += [(v, (unit.proxy.base + prefix[m]) / scale) for m, v in model.r[u]]
            else:
                terms += [
                    (
                        v,
                        part.channels
                        / unit.channels
                        * unit.proxy.layer_scores[unit.precision[acc]]
                        / scale,
                    )
                    for part, v, acc in parts
                ]
            continue
        makespan = (
            [(v, t) for t, v in model.z[u]]
            if model.z[u]
            else [(v, part.latency_s) for part, v, _ in parts]
        )
        if quantity == "latency":
            terms += [(v, t / scale) for v, t in makespan]
        else:
            terms += [(v, static * t / scale) for v, t in makespan]
            terms += [(v, part.energy_j / scale) for part, v, _ in parts]
    if quantity == "proxy":
        return [(v, c) for v, c in terms if c]
    for (e, a, b), var in model.w.items():
        edge = base.edges[e]
        latency, energy = edge.costs[(a, b)]
        by_bytes = edge.bytes_latency.get((a, b), 0.0)
        fixed = latency - by_bytes if problem.units[edge.src].splittable else latency
        cost = fixed if quantity == "latency" else energy + static * fixed
        terms.append((var, cost / scale))
    for (e, a, j, b), var in model.p.items():
        edge = base.edges[e]
        unit = problem.units[edge.src]
        share = unit.parts[a][j].channels / unit.channels
        by_bytes = share * edge.bytes_latency[(a, b)]
        cost = by_bytes if quantity == "latency" else static * by_bytes
        terms.append((var, cost / scale))
    return [(v, c) for v, c in terms if c]
