"""The evaluator: the single source of truth for a mapping's latency, energy and proxy.

Layer-wise semantics (formulations/layerwise.md): units run one at a time in topological
order; latency = unit latencies + transition latencies; energy = unit dynamic energies +
transition energies + static_power_w * latency; proxy = sum of the units' scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from milp_map.core.problem import Problem
from milp_map.core.solution import Metrics, Part, UnitMapping
from milp_map.core.split import PartOption, SplitProblem, SplitUnit
from milp_map.defaults import QUANTITIES
from milp_map.errors import MilpMapError


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


def violations(
    problem: Problem, metrics: Metrics, bounds: Mapping[str, float] | None = None
) -> list[str]:
    """Bounds the metrics break (beyond the problem's tolerance), as readable phrases;
    `bounds` (quantity -> bound) in place of the problem's own, e.g. a front step's."""
    broken = []
    for quantity in QUANTITIES:
        bound = problem.bound(quantity) if bounds is None else bounds.get(quantity)
        if bound is not None and metrics.value(quantity) > bound + problem.tolerance(quantity):
            broken.append(f"{quantity} {metrics.value(quantity):.6g} > bound {bound:.6g}")
    return broken


def _out_channels(problem: Problem, unit: int) -> int | None:
    layers = problem.units[unit].layers
    return problem.graph.layer(layers[0]).out_channels if len(layers) == 1 else None


# ----------------------------------------------------------------------------- channel splits


def evaluate_split(problem: SplitProblem, mapping: UnitMapping) -> Evaluation:
    """Metrics of a channel-split mapping (formulations/channel_split.md).

    A unit's parts run in parallel: T_u = max over parts; latency = sum_u T_u + transitions;
    energy = static_power_w * latency + parts' dynamic energy + transition energy.
    """
    base = problem.base
    shares: list[dict[str, float]] = []
    rows = []
    latency = dynamic = proxy = 0.0
    for split in problem.units:
        unit = base.units[split.index]
        parts = _split_parts(problem, split, mapping.get(unit.name))
        times = [option.latency_s for _, option in parts]
        unit_latency = max(times)
        unit_energy = sum(option.energy_j for _, option in parts)
        unit_proxy = _split_proxy(problem, split, mapping[unit.name])
        latency += unit_latency
        dynamic += unit_energy
        proxy += unit_proxy
        shares.append(
            {part.accelerator: option.channels / split.channels for part, option in parts}
        )
        rows.append(
            {
                "unit": unit.name,
                "split": {part.accelerator: part.channels for part, _ in parts},
                "latency_s": unit_latency,
                "energy_j": unit_energy,
                "proxy": unit_proxy,
            }
        )
    transition_latency, transition_energy = _split_transitions(base, shares)
    latency += transition_latency
    dynamic += transition_energy
    metrics = Metrics(latency, dynamic + base.static_power_w * latency, proxy)
    return Evaluation(metrics, pd.DataFrame(rows))


def _split_parts(
    problem: SplitProblem, split: SplitUnit, parts: tuple[Part, ...] | None
) -> list[tuple[Part, PartOption]]:
    """Match each part to its admissible option; errors name the unit and what is wrong."""
    name = problem.base.units[split.index].name
    if not parts:
        raise MilpMapError(f"mapping leaves unit '{name}' unmapped")
    accelerators = [p.accelerator for p in parts]
    if len(set(accelerators)) != len(accelerators):
        raise MilpMapError(f"unit '{name}' lists an accelerator twice: {accelerators}")
    matched = []
    for part in parts:
        count = split.channels if part.channels is None and len(parts) == 1 else part.channels
        count = 1 if not split.splittable else count
        options = split.parts.get(part.accelerator, ())
        option = next(
            (
                o
                for o in options
                if o.channels == count and o.operating_point == part.operating_point
            ),
            None,
        )
        if option is None:
            raise MilpMapError(
                f"unit '{name}' cannot run {count} channel(s) on {part.accelerator}"
                f"{'@' + part.operating_point if part.operating_point else ''} "
                f"(group size {split.group_size}, {split.channels} channels)"
            )
        matched.append((part, option))
    total = sum(option.channels for _, option in matched)
    if total != split.channels:
        raise MilpMapError(
            f"unit '{name}': parts hold {total} channels, the layer has {split.channels}"
        )
    return matched


def _split_proxy(problem: SplitProblem, split: SplitUnit, parts: tuple[Part, ...]) -> float:
    """From per-channel scores and the listed channel indices, or n/C of the layer score."""
    name = problem.base.units[split.index].name
    sensitivity = problem.base.sensitivity
    if not split.splittable:
        unit = problem.base.units[split.index]
        return next(o.proxy for o in unit.options if o.accelerator == parts[0].accelerator)
    if split.proxy.prefix is None:
        return sum(
            (split.channels if p.channels is None else p.channels)
            / split.channels
            * split.proxy.layer_scores[split.precision[p.accelerator]]
            for p in parts
        )
    seen: list[int] = []
    total = 0.0
    for part in parts:
        if part.channel_indices is None:
            raise MilpMapError(
                f"unit '{name}': per-channel scores need the channel indices of every part"
            )
        scores = sensitivity.channel_scores[(name, split.precision[part.accelerator])]
        total += float(sum(scores[c] for c in part.channel_indices))
        seen.extend(part.channel_indices)
    if sorted(seen) != list(range(split.channels)):
        raise MilpMapError(
            f"unit '{name}': channel indices must cover 0..{split.channels - 1} once"
        )
    return total


def _split_transitions(base: Problem, shares: list[dict[str, float]]) -> tuple[float, float]:
    """Parts on different accelerators exchange the producer part's share of the tensor."""
    latency = energy = 0.0
    for edge in base.edges:
        for a, share in shares[edge.src].items():
            for b in shares[edge.dst]:
                if a == b or (a, b) not in edge.costs:
                    continue
                pair_latency, pair_energy = edge.costs[(a, b)]
                by_bytes = edge.bytes_latency.get((a, b), 0.0)
                latency += pair_latency - by_bytes + share * by_bytes
                energy += pair_energy
    return latency, energy
