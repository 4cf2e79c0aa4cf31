"""The Problem every method takes: graph + platform + proxy + objective + constraints.

Building it turns the platform's cost models into per-unit option tables (a unit is a layer or a
group of layers that map together; an option is an accelerator and operating point) and per-edge
transition costs. Formulations, baselines and the evaluator all read these tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import networkx as nx

from milp_map.core.graph import Layer, LayerGraph
from milp_map.core.platform import Accelerator, OperatingPoint, Platform
from milp_map.core.scores import Sensitivity
from milp_map.defaults import QUANTITIES
from milp_map.errors import MilpMapError

Objective = Literal["latency", "energy"]
OBJECTIVES: tuple[str, ...] = ("latency", "energy")

FEASIBILITY_RTOL = 1e-6
"""A bound holds when value <= bound + FEASIBILITY_RTOL * scale of the quantity."""


@dataclass(frozen=True)
class Option:
    """One way to run a unit: accelerator and operating point, with its costs."""

    accelerator: str
    operating_point: str | None
    latency_s: float
    energy_j: float
    """Dynamic energy only; static power is charged on the whole latency."""
    proxy: float
    precision: str

    @property
    def label(self) -> str:
        return (
            self.accelerator
            if self.operating_point is None
            else (f"{self.accelerator}@{self.operating_point}")
        )


@dataclass(frozen=True)
class Unit:
    """Layers mapped as one (a single layer, or a measured layer group)."""

    name: str
    layers: tuple[str, ...]
    options: tuple[Option, ...]


@dataclass(frozen=True)
class UnitEdge:
    """Tensors flowing from unit `src` to unit `dst`, and what crossing accelerators costs."""

    src: int
    dst: int
    elems: int
    costs: Mapping[tuple[str, str], tuple[float, float]]
    """(from accelerator, to accelerator) -> (latency_s, energy_j); absent pairs cost nothing."""
    bytes_latency: Mapping[tuple[str, str], float] = field(default_factory=dict)
    """The part of each pair's latency that is bytes / bytes_per_s (scales with the share of
    the tensor that crosses, in channel-split mode)."""


MAX_BOUNDS = {"max_latency_s": 1e9, "max_energy_j": 1e9}
"""Largest latency (s) and energy (J) bound taken: 30 years, a gigajoule; a larger one can
only be a way of saying "no bound" and would overflow the solvers' scaled rows."""


MAX_UNIT_S, MAX_UNIT_J = 3600.0, 1e6
"""Most one unit may cost, whatever the cost model: the measured tables' row limits, for
analytical models too (a 1e12 x 1e12 ONNX input made rooflines of 6e16 s)."""

MAX_COST_SPREAD = 1e4
"""Most a problem's worst-case latency or energy may exceed its best case (every unit at its
cheapest option), and one unit's worst proxy the rest of the network's together. Solvers
normalise by the worst case and hold bounds and gaps to a fraction of it, so past this the best
mappings sink below their resolution: one 1e9 s row beside 4 ms ones had HiGHS, CP-SAT and CBC
each claim a wrong optimum. The presets span at most 90, 56 real networks 41, tests' random
instances 1,400."""


def normalised_limit(bound: float, scale: float) -> float:
    """A bound as a solver row's right-hand side: divided by its worst-case scale (every
    mapping is at most 1 there, so anything above 2 binds nothing and is held at 2, far
    from overflow) plus the feasibility tolerance."""
    return min(bound / scale, 2.0) + FEASIBILITY_RTOL


@dataclass(frozen=True)
class Constraints:
    max_latency_s: float | None = None
    max_energy_j: float | None = None
    max_proxy: float | None = None
    max_proxy_fraction: float | None = None

    def __post_init__(self) -> None:
        flags = {
            "max_latency_s": "--max-latency",
            "max_energy_j": "--max-energy",
            "max_proxy": "--max-proxy",
        }
        for name, flag in flags.items():
            value = getattr(self, name)
            if value is not None and not 0 <= value < math.inf:
                raise MilpMapError(
                    f"{flag} must be a finite number >= 0, got {value} (leave it out for no bound)"
                )
            cap = MAX_BOUNDS.get(name)
            if value is not None and cap is not None and value > cap:
                raise MilpMapError(
                    f"{flag} {value:g} is beyond any mapping (at most {cap:g}); "
                    "leave it out for no bound"
                )
        f = self.max_proxy_fraction
        if f is not None and not 0.0 <= f <= 1.0:
            raise MilpMapError(f"--max-proxy-fraction must be in [0, 1], got {f}")


@dataclass(frozen=True)
class Problem:
    """Immutable input of every mapping method (exact or baseline)."""

    graph: LayerGraph
    platform: Platform
    sensitivity: Sensitivity
    objective: Objective
    constraints: Constraints
    units: tuple[Unit, ...]
    edges: tuple[UnitEdge, ...]
    unit_of_layer: Mapping[str, int] = field(repr=False)

    @property
    def static_power_w(self) -> float:
        return self.platform.static_power_w

    @cached_property
    def proxy_range(self) -> tuple[float, float]:
        """Lowest and highest achievable proxy (each unit at its best / worst option)."""
        low = sum(min(o.proxy for o in u.options) for u in self.units)
        high = sum(max(o.proxy for o in u.options) for u in self.units)
        return low, high

    @cached_property
    def proxy_budget(self) -> float | None:
        """The effective absolute proxy budget from --max-proxy and --max-proxy-fraction."""
        budgets = []
        if self.constraints.max_proxy is not None:
            budgets.append(self.constraints.max_proxy)
        if self.constraints.max_proxy_fraction is not None:
            low, high = self.proxy_range
            budgets.append(low + self.constraints.max_proxy_fraction * (high - low))
        return min(budgets) if budgets else None

    def bound(self, quantity: str) -> float | None:
        """The upper bound on latency, energy or proxy, or None."""
        return {
            "latency": self.constraints.max_latency_s,
            "energy": self.constraints.max_energy_j,
            "proxy": self.proxy_budget,
        }[quantity]

    @cached_property
    def scales(self) -> dict[str, float]:
        """A worst-case magnitude per quantity (every unit and edge at its most costly choice).

        Solvers normalise by it and tolerances are relative to it.
        """
        lat = sum(max(o.latency_s for o in u.options) for u in self.units)
        lat += sum(max((c[0] for c in e.costs.values()), default=0.0) for e in self.edges)
        dyn = sum(max(o.energy_j for o in u.options) for u in self.units)
        dyn += sum(max((c[1] for c in e.costs.values()), default=0.0) for e in self.edges)
        proxy = self.proxy_range[1]
        energy = dyn + self.static_power_w * lat
        return {
            "latency": lat if lat > 0 else 1.0,
            "energy": energy if energy > 0 else 1.0,
            "proxy": proxy if proxy > 0 else 1.0,
        }

    def tolerance(self, quantity: str) -> float:
        return FEASIBILITY_RTOL * self.scales[quantity]

    def option_index(self, unit: int, accelerator: str, operating_point: str | None) -> int:
        for i, option in enumerate(self.units[unit].options):
            if option.accelerator == accelerator and option.operating_point == operating_point:
                return i
        where = accelerator if operating_point is None else f"{accelerator}@{operating_point}"
        raise MilpMapError(f"unit '{self.units[unit].name}' cannot run on {where}")


def active_bounds(problem: Problem | object) -> dict[str, float]:
    """{quantity: upper bound} for every bound the problem sets (any object with `bound`)."""
    return {q: b for q in QUANTITIES if (b := problem.bound(q)) is not None}  # type: ignore[attr-defined]


def build_problem(
    graph: LayerGraph,
    platform: Platform,
    sensitivity: Sensitivity,
    objective: Objective = "latency",
    constraints: Constraints | None = None,
    groups: Mapping[str, str] | None = None,
) -> Problem:
    """Join graph, platform and scores into option tables; errors name what is missing."""
    if objective not in OBJECTIVES:
        raise MilpMapError(
            f"unknown objective '{objective}'; choose one of {', '.join(OBJECTIVES)}"
        )
    constraints = constraints or Constraints()
    _check_sensitivity_layers(graph, sensitivity)
    members = _unit_members(graph, platform, groups)
    unit_of_layer = {layer: i for i, (_, layers) in enumerate(members) for layer in layers}
    _check_table_networks(graph, platform)
    _check_table_units(graph, platform, {name for name, _ in members})
    options = {
        name: _options(graph, platform, sensitivity, name, layers) for name, layers in members
    }
    stranded = [
        f"'{name}'" if layers == (name,) else f"'{name}' (layers {', '.join(layers)})"
        for name, layers in members
        if not options[name]
    ]
    if stranded:
        raise MilpMapError(
            f"platform '{platform.name}' cannot run {_short_list(stranded, quote=False)} "
            f"of '{graph.name}' "
            "on any accelerator (no cost table row, or an op no accelerator lists); "
            "add cost rows or allow the op"
        )
    units = tuple(Unit(name, layers, options[name]) for name, layers in members)
    edges = _unit_edges(graph, platform, units, unit_of_layer)
    problem = Problem(
        graph=graph,
        platform=platform,
        sensitivity=sensitivity,
        objective=objective,
        constraints=constraints,
        units=units,
        edges=edges,
        unit_of_layer=unit_of_layer,
    )
    _check_finite(problem)
    _check_spread(problem)
    return problem


def _check_finite(problem: Problem) -> None:
    """Finite inputs can still overflow (1e308 bytes per element): name the first inf cost."""
    where = f"platform '{problem.platform.name}' ({problem.platform.source})"
    for unit in problem.units:
        for o in unit.options:
            if not all(math.isfinite(v) for v in (o.latency_s, o.energy_j, o.proxy)):
                raise MilpMapError(
                    f"{where}: unit '{unit.name}' on {o.label} costs latency {o.latency_s} s, "
                    f"energy {o.energy_j} J, proxy {o.proxy}; check the numbers for overflow"
                )
            if o.latency_s > MAX_UNIT_S or o.energy_j > MAX_UNIT_J:
                raise MilpMapError(
                    f"{where}: unit '{unit.name}' on {o.label} would take {o.latency_s:.3g} s "
                    f"and {o.energy_j:.3g} J (at most {MAX_UNIT_S:g} s, {MAX_UNIT_J:g} J for one "
                    "unit): check the model's shapes and the platform's rates"
                )
    for edge in problem.edges:
        for (a, b), (latency, energy) in edge.costs.items():
            if not (math.isfinite(latency) and math.isfinite(energy)):
                raise MilpMapError(
                    f"{where}: moving the output of '{problem.units[edge.src].name}' from {a} "
                    f"to {b} costs {latency} s, {energy} J; check the transition numbers"
                )
    for quantity, scale in problem.scales.items():
        if not math.isfinite(scale):
            raise MilpMapError(
                f"{where}: the worst-case {quantity} overflows to {scale}; check the numbers"
            )


def _check_spread(problem: Problem) -> None:
    """Refuse costs and scores spread wider than MAX_COST_SPREAD, naming the largest one: the
    solvers' answers would be wrong, not merely slow."""
    where = f"platform '{problem.platform.name}' ({problem.platform.source})"
    static = problem.static_power_w
    for quantity, unit in (("latency", "s"), ("energy", "J")):
        best = sum(
            min(_cost(o.latency_s, o.energy_j, quantity, static) for o in u.options)
            for u in problem.units
        )
        worst = problem.scales[quantity]
        if not (best > 0 and worst > MAX_COST_SPREAD * best):
            continue
        parts = [
            (_cost(o.latency_s, o.energy_j, quantity, static), f"unit '{u.name}' on {o.label}")
            for u in problem.units
            for o in u.options
        ] + [
            (
                _cost(*c, quantity, static),
                f"moving the output of '{problem.units[e.src].name}' from {a} to {b}",
            )
            for e in problem.edges
            for (a, b), c in e.costs.items()
        ]
        value, what = max(parts)
        raise MilpMapError(
            f"{where}: {what} costs {value:.3g} {unit}: the worst mapping's {quantity} is "
            f"{worst / best:.2g} times the best's ({best:.3g} {unit}), past the "
            f"{MAX_COST_SPREAD:g} the solvers resolve; check that cost"
        )
    scores = sorted(
        ((max(o.proxy for o in u.options), u.name) for u in problem.units), reverse=True
    )
    (top, name), rest = scores[0], sum(score for score, _ in scores[1:])
    if rest > 0 and top > MAX_COST_SPREAD * rest:
        raise MilpMapError(
            f"scores '{problem.sensitivity.source}': unit '{name}' scores up to {top:.3g}, "
            f"{top / rest:.2g} times all other units' worst scores together ({rest:.3g}); "
            f"a proxy budget resolves at most {MAX_COST_SPREAD:g}: check that score"
        )


def _cost(latency_s: float, energy_j: float, quantity: str, static_power_w: float) -> float:
    """Latency, or energy with its static share, of an option or a transition."""
    return latency_s if quantity == "latency" else energy_j + static_power_w * latency_s


# ----------------------------------------------------------------------------- units


def _unit_members(
    graph: LayerGraph, platform: Platform, groups: Mapping[str, str] | None
) -> list[tuple[str, tuple[str, ...]]]:
    """Units in topological order: layer groups from the platform (or `groups`), else layers."""
    group_of = dict(groups if groups is not None else platform.groups_for(graph.name))
    names = {layer.name for layer in graph.layers()}
    unknown = sorted(set(group_of) - names)
    if unknown:
        raise MilpMapError(
            f"layer groups for '{graph.name}' name layers the model does not have: "
            f"{_short_list(unknown)}"
        )
    order: list[str] = []
    layers_of: dict[str, list[str]] = {}
    for layer in graph.layers():
        unit = group_of.get(layer.name, layer.name)
        if unit not in layers_of:
            order.append(unit)
            layers_of[unit] = []
        layers_of[unit].append(layer.name)
    condensed = nx.DiGraph()
    condensed.add_nodes_from(order)
    for u, v in graph.edges():
        gu, gv = group_of.get(u, u), group_of.get(v, v)
        if gu != gv:
            condensed.add_edge(gu, gv)
    if not nx.is_directed_acyclic_graph(condensed):
        cycle = [str(e[0]) for e in nx.find_cycle(condensed)]
        path = " -> ".join([*cycle, cycle[0]])
        raise MilpMapError(
            f"layer groups of '{graph.name}' are not contiguous: units {path} form a cycle; "
            "a group must be entered and left once"
        )
    rank = {unit: i for i, unit in enumerate(order)}
    topo = list(nx.lexicographical_topological_sort(condensed, key=lambda u: rank[u]))
    return [(unit, tuple(layers_of[unit])) for unit in topo]


def _options(
    graph: LayerGraph,
    platform: Platform,
    sensitivity: Sensitivity,
    unit: str,
    layers: tuple[str, ...],
) -> tuple[Option, ...]:
    """Every (accelerator, operating point) that can run all `layers` of one unit."""
    options: list[Option] = []
    layer_objs = [graph.layer(name) for name in layers]
    for acc in platform.accelerators:
        if not all(acc.supports(layer.op) for layer in layer_objs):
            continue
        costs = _unit_costs(graph.name, acc, unit, layer_objs)
        if not costs:
            continue
        proxy = _unit_proxy(sensitivity, acc, layers)
        for point, (latency, energy) in costs:
            options.append(Option(acc.name, point, latency, energy, proxy, acc.precision))
    return tuple(options)


def _check_table_networks(graph: LayerGraph, platform: Platform) -> None:
    """A measured table that names networks must cover this one."""
    for acc in platform.accelerators:
        table = acc.table
        if table is not None and "*" not in table.networks and graph.name not in table.networks:
            raise MilpMapError(
                f"{table.path}: no cost rows for network '{graph.name}' (accelerator "
                f"'{acc.name}'); the table covers: {', '.join(sorted(table.networks))}"
            )


def _check_table_units(graph: LayerGraph, platform: Platform, units: set[str]) -> None:
    """Rows naming neither a layer of the model nor a group the platform declares are typos."""
    for acc in platform.accelerators:
        table = acc.table
        if table is None:
            continue
        network = graph.name if graph.name in table.networks else "*"
        declared = {g for groups in platform.groups.values() for g in groups.values()}
        layers = {layer.name for layer in graph.layers()}
        unknown = sorted(table.units(network) - units - layers - declared)
        if unknown:
            raise MilpMapError(
                f"{table.path}: rows name layers or groups that '{graph.name}' does not have: "
                f"{_short_list(unknown)}"
            )


def _unit_costs(
    network: str, acc: Accelerator, unit: str, layers: list[Layer]
) -> list[tuple[str | None, tuple[float, float]]]:
    """(operating point, (latency_s, dynamic energy_j)) for each way `acc` can run the unit."""
    if acc.table is not None:
        key_net = network if network in acc.table.networks else "*"
        points = acc.table.operating_points(key_net, acc.name)
        found = []
        for point in points:
            row = acc.table.rows.get((key_net, unit, acc.name, point))
            if row is not None:
                found.append((point or None, row))
        return found
    assert acc.model is not None
    latencies = [acc.model.latency_s(layer) for layer in layers]
    if any(t is None for t in latencies):
        return []
    base = float(sum(latencies))  # type: ignore[arg-type]
    points = acc.operating_points or (OperatingPoint("", 1.0, acc.dynamic_power_w),)
    return [
        (p.name or None, (base / p.freq_scale, p.dynamic_power_w * base / p.freq_scale))
        for p in points
    ]


def _unit_proxy(sensitivity: Sensitivity, acc: Accelerator, layers: tuple[str, ...]) -> float:
    total = 0.0
    for layer in layers:
        score = sensitivity.score(layer, acc.precision)
        if score is None:
            raise MilpMapError(
                f"{sensitivity.source}: no score for layer '{layer}' at precision "
                f"'{acc.precision}' (accelerator '{acc.name}' can run it); add a row "
                f"'{layer},{acc.precision},<score>'"
            )
        total += score
    return total


def _check_sensitivity_layers(graph: LayerGraph, sensitivity: Sensitivity) -> None:
    unknown = sorted(sensitivity.layers - {layer.name for layer in graph.layers()})
    if unknown:
        raise MilpMapError(
            f"{sensitivity.source}: scores for layers that '{graph.name}' does not have: "
            f"{_short_list(unknown)}; is it the score file of another model?"
        )


# ----------------------------------------------------------------------------- edges


def _unit_edges(
    graph: LayerGraph,
    platform: Platform,
    units: tuple[Unit, ...],
    unit_of_layer: Mapping[str, int],
) -> tuple[UnitEdge, ...]:
    """One edge per (producer unit, consumer unit) pair, with the transition cost per pair."""
    elems: dict[tuple[int, int], int] = {}
    for u, v in graph.edges():
        key = (unit_of_layer[u], unit_of_layer[v])
        if key[0] != key[1]:
            elems[key] = elems.get(key, 0) + int(graph.dag.edges[u, v].get("elems", 0))
    accs = {a.name: a for a in platform.accelerators}
    edges = []
    for (src, dst), n_elems in sorted(elems.items()):
        costs: dict[tuple[str, str], tuple[float, float]] = {}
        bytes_latency: dict[tuple[str, str], float] = {}
        for a in {o.accelerator for o in units[src].options}:
            for b in {o.accelerator for o in units[dst].options}:
                if a == b:
                    continue
                cost, by_bytes = _transition_cost(
                    platform, graph.name, units[src].name, accs[a], b, n_elems
                )
                if cost != (0.0, 0.0):
                    costs[(a, b)] = cost
                if by_bytes:
                    bytes_latency[(a, b)] = by_bytes
        edges.append(UnitEdge(src, dst, n_elems, costs, bytes_latency))
    return tuple(edges)


def _transition_cost(
    platform: Platform, network: str, unit: str, src: Accelerator, dst: str, elems: int
) -> tuple[tuple[float, float], float]:
    """((latency_s, energy_j), the bytes/bytes_per_s part of that latency) of one crossing."""
    for net in (network, "*"):
        row = platform.transition_table.get((net, unit, src.name, dst))
        if row is not None:
            return row, 0.0
    t = platform.transitions.get((src.name, dst))
    if t is None:
        return (0.0, 0.0), 0.0
    by_bytes = 0.0
    if t.bytes_per_s:
        by_bytes = elems * platform.bytes_per_element(src.precision) / t.bytes_per_s
    return (t.latency_s + by_bytes, t.energy_j), by_bytes


def _short_list(items: list[str], limit: int = 5, quote: bool = True) -> str:
    shown = ", ".join(f"'{i}'" if quote else i for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
