"""Channel-group split tables (ODiMO's fine-grain mapping): what each share of a layer costs.

A splittable layer (conv or gemm with groups = 1) may give `n` of its output channels to each
accelerator, `n` a multiple of the group size; the parts run in parallel. For every
(unit, accelerator) this module lists the admissible parts with their latency and dynamic
energy, and the proxy as a function of the channel counts (formulations/channel_split.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from milp_map.core.graph import Layer
from milp_map.core.platform import Accelerator, OperatingPoint
from milp_map.core.problem import Problem
from milp_map.defaults import DEFAULT_GROUP_SIZE
from milp_map.errors import MilpMapError

SPLITTABLE_OPS = frozenset({"conv", "gemm"})


@dataclass(frozen=True)
class PartOption:
    """`channels` output channels of a unit on one accelerator at one operating point."""

    operating_point: str | None
    channels: int
    latency_s: float
    energy_j: float


@dataclass(frozen=True)
class ChannelProxy:
    """Proxy of a split layer as a function of how many channels run at each precision.

    With per-channel scores and two precisions `low`/`high`, the best n channels to run at
    `low` are the n with the smallest score increase, so proxy(n) = base + prefix[n].
    Without per-channel scores a part of n channels at precision p costs n/C * score(l, p).
    """

    layer_scores: Mapping[str, float]
    """precision -> whole-layer score (used when there are no per-channel scores)."""
    low: str | None = None
    base: float = 0.0
    prefix: np.ndarray | None = None
    """prefix[n] = sum of the n smallest increases (score at low - score at high)."""
    order: np.ndarray | None = None
    """channel indices sorted by increasing score increase (the first n run at `low`)."""


@dataclass(frozen=True)
class SplitUnit:
    index: int
    channels: int
    """C: output channels of the layer; 1 for units that cannot split (they map whole)."""
    group_size: int
    splittable: bool
    parts: Mapping[str, tuple[PartOption, ...]]
    """accelerator -> admissible parts with channels > 0."""
    precision: Mapping[str, str]
    proxy: ChannelProxy


@dataclass(frozen=True)
class SplitProblem:
    """A layer-wise Problem refined with channel-group parts; same bounds and objective."""

    base: Problem
    group_size: int
    units: tuple[SplitUnit, ...]

    @property
    def objective(self) -> str:
        return self.base.objective

    @property
    def static_power_w(self) -> float:
        return self.base.static_power_w

    def bound(self, quantity: str) -> float | None:
        """Bounds are the layer-wise problem's (the proxy fraction uses its range)."""
        return self.base.bound(quantity)

    @cached_property
    def scales(self) -> dict[str, float]:
        """Worst-case magnitudes (every part at its costliest) for normalisation."""
        base = self.base.scales
        latency = sum(
            max(p.latency_s for parts in u.parts.values() for p in parts) for u in self.units
        )
        latency += sum(
            max((c[0] for c in e.costs.values()), default=0.0) * len(e.costs)
            for e in self.base.edges
        )
        dynamic = sum(
            sum(max(p.energy_j for p in parts) for parts in u.parts.values()) for u in self.units
        )
        dynamic += sum(sum(c[1] for c in e.costs.values()) for e in self.base.edges)
        energy = dynamic + self.static_power_w * latency
        return {
            "latency": latency or base["latency"],
            "energy": energy or base["energy"],
            "proxy": max(base["proxy"], self.proxy_high),
        }

    @cached_property
    def proxy_high(self) -> float:
        total = 0.0
        for unit in self.units:
            if unit.proxy.prefix is not None:
                total += unit.proxy.base + max(0.0, float(unit.proxy.prefix.max()))
            else:
                total += max(unit.proxy.layer_scores.values())
        return total

    def tolerance(self, quantity: str) -> float:
        from milp_map.core.problem import FEASIBILITY_RTOL

        return FEASIBILITY_RTOL * self.scales[quantity]

    @property
    def splittable_count(self) -> int:
        return sum(u.splittable for u in self.units)


def build_split_problem(problem: Problem, group_size: int = DEFAULT_GROUP_SIZE) -> SplitProblem:
    """Per-unit part tables for `--granularity channel --group-size G`."""
    if group_size < 1:
        raise MilpMapError(f"--group-size must be >= 1, got {group_size}")
    units = tuple(_split_unit(problem, i, group_size) for i in range(len(problem.units)))
    return SplitProblem(problem, group_size, units)


def _split_unit(problem: Problem, index: int, group_size: int) -> SplitUnit:
    unit = problem.units[index]
    accs = {a.name: a for a in problem.platform.accelerators}
    precision = {o.accelerator: o.precision for o in unit.options}
    layer = problem.graph.layer(unit.layers[0]) if len(unit.layers) == 1 else None
    splitters = _splitting_accelerators(layer, unit.options, accs) if layer else []
    if layer is None or len(splitters) < 2:
        parts = {
            acc: tuple(
                PartOption(o.operating_point, 1, o.latency_s, o.energy_j)
                for o in unit.options
                if o.accelerator == acc
            )
            for acc in precision
        }
        proxy = ChannelProxy({precision[a]: _whole_proxy(unit, a) for a in precision})
        return SplitUnit(index, 1, 1, False, parts, precision, proxy)
    channels = layer.out_channels
    g = _group_size(channels, math.lcm(group_size, layer.channel_group))
    parts = {}
    for acc in precision:
        if acc in splitters:
            parts[acc] = _analytical_parts(layer, accs[acc], g)
        else:  # a table-costed accelerator only takes the whole layer
            parts[acc] = tuple(
                PartOption(o.operating_point, channels, o.latency_s, o.energy_j)
                for o in unit.options
                if o.accelerator == acc
            )
    proxy = _channel_proxy(problem, layer, precision)
    return SplitUnit(index, channels, g, True, parts, precision, proxy)


def _splitting_accelerators(
    layer: Layer, options: tuple, accs: Mapping[str, Accelerator]
) -> list[str]:
    """Accelerators whose analytical model can run a share of this layer's channels."""
    if layer.op not in SPLITTABLE_OPS or layer.groups != 1 or layer.out_channels < 2:
        return []
    names = []
    for acc in dict.fromkeys(o.accelerator for o in options):
        model = accs[acc].model
        if model is not None and model.latency_s(layer, 1) is not None:
            names.append(acc)
    return names


def _group_size(channels: int, requested: int) -> int:
    """G (made a multiple of the layer's channel group, e.g. a head's width), or C if smaller;
    gcd(G, C) when G does not divide C, so parts still sum to C."""
    if requested >= channels:
        return channels
    return requested if channels % requested == 0 else math.gcd(requested, channels)


def _analytical_parts(layer: Layer, acc: Accelerator, g: int) -> tuple[PartOption, ...]:
    assert acc.model is not None
    points = acc.operating_points or (OperatingPoint("", 1.0, acc.dynamic_power_w),)
    parts = []
    for point in points:
        for n in range(g, layer.out_channels + 1, g):
            base = acc.model.latency_s(layer, n)
            assert base is not None
            latency = base / point.freq_scale
            parts.append(
                PartOption(point.name or None, n, latency, point.dynamic_power_w * latency)
            )
    return tuple(parts)


def _whole_proxy(unit, acc: str) -> float:
    return next(o.proxy for o in unit.options if o.accelerator == acc)


def _channel_proxy(problem: Problem, layer: Layer, precision: Mapping[str, str]) -> ChannelProxy:
    sensitivity = problem.sensitivity
    distinct = sorted(set(precision.values()))
    layer_scores = {p: float(sensitivity.score(layer.name, p) or 0.0) for p in distinct}
    per_channel = {p: sensitivity.channel_scores.get((layer.name, p)) for p in distinct}
    if len(distinct) < 2 or any(v is None for v in per_channel.values()):
        if sensitivity.channel_scores and any(v is None for v in per_channel.values()):
            missing = [p for p, v in per_channel.items() if v is None]
            raise MilpMapError(
                f"{sensitivity.source}: no per-channel scores for layer '{layer.name}' at "
                f"{', '.join(missing)}; give channel rows for every precision it can run at"
            )
        return ChannelProxy(layer_scores)
    if len(distinct) > 2:
        raise MilpMapError(
            f"layer '{layer.name}' can run at {len(distinct)} precisions ({', '.join(distinct)}) "
            "with per-channel scores; channel splits support two precisions per layer"
        )
    high, low = _order_precisions(distinct, per_channel)
    for p in distinct:
        if len(per_channel[p]) != layer.out_channels:
            raise MilpMapError(
                f"{sensitivity.source}: layer '{layer.name}' has {layer.out_channels} output "
                f"channels but {len(per_channel[p])} per-channel scores at {p}"
            )
    increase = per_channel[low] - per_channel[high]
    order = np.argsort(increase, kind="stable")
    prefix = np.concatenate([[0.0], np.cumsum(increase[order])])
    return ChannelProxy(layer_scores, low, float(per_channel[high].sum()), prefix, order)


def _order_precisions(
    distinct: list[str], per_channel: Mapping[str, np.ndarray | None]
) -> tuple[str, str]:
    """(high, low): the low precision is the one with the larger total score."""
    a, b = distinct
    total = {p: float(per_channel[p].sum()) for p in distinct}  # type: ignore[union-attr]
    return (a, b) if total[a] <= total[b] else (b, a)


@dataclass(frozen=True)
class Configuration:
    """One complete split of a unit: its parts and their combined costs."""

    parts: tuple[tuple[str, int], ...]
    """(accelerator, index into SplitUnit.parts[accelerator])."""
    latency_s: float
    energy_j: float
    proxy: float


MAX_CONFIGURATIONS = 50_000
"""Above this many splits per unit, the model keeps one boolean per part instead."""


def configurations(unit: SplitUnit) -> list[Configuration] | None:
    """Every admissible split of `unit`, minus the dominated ones; None if there are too many.

    Without transitions a unit's splits only differ in (latency, energy, proxy), so a split
    no better than another in all three is never needed (formulations/channel_split.md).
    """
    accs = list(unit.parts)
    found: list[Configuration] = []
    count = 0

    def extend(k: int, left: int, chosen: tuple[tuple[str, int], ...]) -> bool:
        nonlocal count
        if k == len(accs):
            if left == 0 and chosen:
                count += 1
                if count > MAX_CONFIGURATIONS:
                    return False
                found.append(_configuration(unit, chosen))
            return True
        if not extend(k + 1, left, chosen):
            return False
        for j, part in enumerate(unit.parts[accs[k]]):
            if part.channels <= left and not extend(
                k + 1, left - part.channels, (*chosen, (accs[k], j))
            ):
                return False
        return True

    if not extend(0, unit.channels, ()):
        return None
    return _non_dominated(found)


def _configuration(unit: SplitUnit, chosen: tuple[tuple[str, int], ...]) -> Configuration:
    parts = [(acc, unit.parts[acc][j]) for acc, j in chosen]
    latency = max(p.latency_s for _, p in parts)
    energy = sum(p.energy_j for _, p in parts)
    return Configuration(chosen, latency, energy, split_proxy(unit, parts))


def split_proxy(unit: SplitUnit, parts: list[tuple[str, PartOption]]) -> float:
    """Proxy of a split given its parts (the best channel choice with per-channel scores)."""
    if not unit.splittable:
        return unit.proxy.layer_scores[unit.precision[parts[0][0]]]
    if unit.proxy.prefix is not None:
        low = sum(p.channels for acc, p in parts if unit.precision[acc] == unit.proxy.low)
        return unit.proxy.base + float(unit.proxy.prefix[low])
    return sum(
        p.channels / unit.channels * unit.proxy.layer_scores[unit.precision[acc]]
        for acc, p in parts
    )


def _non_dominated(configs: list[Configuration]) -> list[Configuration]:
    """Keep splits not weakly dominated in (latency, energy, proxy); ties keep the first."""
    ordered = sorted(configs, key=lambda c: (c.latency_s, c.energy_j, c.proxy))
    kept: list[Configuration] = []
    for config in ordered:
        if not any(k.energy_j <= config.energy_j and k.proxy <= config.proxy for k in kept):
            kept.append(config)
    return kept


Target = Problem | SplitProblem
"""A layer-wise problem, or a channel-split one (its `base` is the layer-wise problem)."""


def base_problem(target: Target) -> Problem:
    """The layer-wise problem behind a target (a SplitProblem's `base`)."""
    return target.base if isinstance(target, SplitProblem) else target
