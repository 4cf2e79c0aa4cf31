"""The evaluator: the single source of truth for a mapping's latency, energy and proxy.

Layer-wise semantics (formulations/layerwise.md): units run one at a time in topological
order; latency = unit latencies + transition latencies; energy = unit dynamic energies +
transition energies + static_power_w * latency; proxy = sum of the units' scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from milp_map.errors import MilpMapError
from milp_map.problem import QUANTITIES, Problem
from milp_map.solution import Metrics, Part, UnitMapping


@dataclass(frozen=True)
class Evaluation:
    metrics: Metrics
    units: pd.DataFrame
    """One row per unit: unit, layers, accelerator, operating_point, precision, latency_s,
    energy_j (dynamic), proxy, transition_latency_s, transition_energy_j (into the unit)."""


def evaluate_choice(problem: Problem, choice: Sequence[int]) -> Metrics:
    """Metrics of a layer-wise mapping given as one option index per unit."""
    latency = dynamic = proxy = 0.0
    for unit, index in zip(problem.units, choice, strict=True):
        option = unit.options[index]
        latency += option.latency_s
        dynamic += option.energy_j
        proxy += option.proxy
    for edge in problem.edges:
        pair = (
            problem.units[edge.src].options[choice[edge.src]].accelerator,
            problem.units[edge.dst].options[choice[edge.dst]].accelerator,
        )
        t_lat, t_energy = edge.costs.get(pair, (0.0, 0.0))
        latency += t_lat
        dynamic += t_energy
    return Metrics(latency, dynamic + problem.static_power_w * latency, proxy)


def choice_of(problem: Problem, mapping: UnitMapping) -> list[int]:
    """Option index per unit for a layer-wise mapping; errors name the unit at fault."""
    missing = [u.name for u in problem.units if u.name not in mapping]
    if missing:
        raise MilpMapError(f"mapping leaves unit(s) {missing[:5]} unmapped")
    extra = sorted(set(mapping) - {u.name for u in problem.units})
    if extra:
        raise MilpMapError(f"mapping names unit(s) the problem does not have: {extra[:5]}")
    choice = []
    for i, unit in enumerate(problem.units):
        parts = mapping[unit.name]
        if len(parts) != 1 or parts[0].channels not in (None, _out_channels(problem, i)):
            raise MilpMapError(
                f"unit '{unit.name}' is split across {len(parts)} parts; "
                "a layer-wise mapping puts each unit on exactly one accelerator"
            )
        choice.append(problem.option_index(i, parts[0].accelerator, parts[0].operating_point))
    return choice


def mapping_of(problem: Problem, choice: Sequence[int]) -> UnitMapping:
    """The layer-wise mapping for one option index per unit."""
    mapping: UnitMapping = {}
    for unit, index in zip(problem.units, choice, strict=True):
        option = unit.options[index]
        mapping[unit.name] = (Part(option.accelerator, option.operating_point),)
    return mapping


def evaluate(problem: Problem, mapping: UnitMapping) -> Evaluation:
    """Metrics and a per-unit breakdown of a layer-wise mapping."""
    choice = choice_of(problem, mapping)
    into: dict[int, tuple[float, float]] = {}
    for edge in problem.edges:
        pair = (
            problem.units[edge.src].options[choice[edge.src]].accelerator,
            problem.units[edge.dst].options[choice[edge.dst]].accelerator,
        )
        lat, energy = edge.costs.get(pair, (0.0, 0.0))
        old = into.get(edge.dst, (0.0, 0.0))
        into[edge.dst] = (old[0] + lat, old[1] + energy)
    rows = []
    for i, (unit, index) in enumerate(zip(problem.units, choice, strict=True)):
        option = unit.options[index]
        t_lat, t_energy = into.get(i, (0.0, 0.0))
        rows.append(
            {
                "unit": unit.name,
                "layers": len(unit.layers),
                "accelerator": option.accelerator,
                "operating_point": option.operating_point or "",
                "precision": option.precision,
                "latency_s": option.latency_s,
                "energy_j": option.energy_j,
                "proxy": option.proxy,
                "transition_latency_s": t_lat,
                "transition_energy_j": t_energy,
            }
        )
    return Evaluation(evaluate_choice(problem, choice), pd.DataFrame(rows))


def violations(problem: Problem, metrics: Metrics) -> list[str]:
    """Bounds the metrics break (beyond the problem's tolerance), as readable phrases."""
    broken = []
    for quantity in QUANTITIES:
        bound = problem.bound(quantity)
        if bound is not None and metrics.value(quantity) > bound + problem.tolerance(quantity):
            broken.append(f"{quantity} {metrics.value(quantity):.6g} > bound {bound:.6g}")
    return broken


def _out_channels(problem: Problem, unit: int) -> int | None:
    layers = problem.units[unit].layers
    return problem.graph.layer(layers[0]).out_channels if len(layers) == 1 else None
