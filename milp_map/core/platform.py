"""A platform as data: its accelerators, what precision each computes in, how long a layer
takes there (analytical model or measured table), and what moving a tensor costs.

Built from YAML by milp_map/io/platforms.py (which validates it) or by hand for tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from milp_map.core.costmodels import AnalyticalModel
from milp_map.errors import MilpMapError

ACTIVATION_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "fp16": 2.0,
    "bf16": 2.0,
    "int8": 1.0,
    "int4": 0.5,
    "ternary": 1.0,
}
"""Bytes per activation element by precision label; DIANA's analog unit keeps 7-bit activations."""


@dataclass(frozen=True)
class OperatingPoint:
    """One DVFS level: latency divides by `freq_scale`, power while busy is `dynamic_power_w`."""

    name: str
    freq_scale: float = 1.0
    dynamic_power_w: float = 0.0


@dataclass(frozen=True)
class CostTable:
    """Measured costs: (network, unit, accelerator, operating point) -> (latency_s, energy_j)."""

    path: Path
    rows: Mapping[tuple[str, str, str, str], tuple[float, float]]
    networks: frozenset[str]

    def operating_points(self, network: str, accelerator: str) -> list[str]:
        return self._points.get((network, accelerator), [])

    @cached_property
    def _points(self) -> dict[tuple[str, str], list[str]]:
        """(network, accelerator) -> operating points, indexed once (looked up per unit)."""
        found: dict[tuple[str, str], set[str]] = {}
        for network, _, accelerator, point in self.rows:
            found.setdefault((network, accelerator), set()).add(point)
        return {key: sorted(points, key=_natural_key) for key, points in found.items()}

    def units(self, network: str) -> set[str]:
        return {k[1] for k in self.rows if k[0] == network}


@dataclass(frozen=True)
class Accelerator:
    name: str
    precision: str
    ops: frozenset[str] | None
    dynamic_power_w: float
    operating_points: tuple[OperatingPoint, ...]
    model: AnalyticalModel | None = None
    table: CostTable | None = None

    def supports(self, op: str) -> bool:
        return self.ops is None or op in self.ops


@dataclass(frozen=True)
class Transition:
    latency_s: float = 0.0
    energy_j: float = 0.0
    bytes_per_s: float | None = None


@dataclass(frozen=True)
class Platform:
    """A validated platform: accelerators, static power, transition costs, layer groups."""

    name: str
    description: str
    static_power_w: float
    accelerators: tuple[Accelerator, ...]
    transitions: Mapping[tuple[str, str], Transition]
    transition_table: Mapping[tuple[str, str, str, str], tuple[float, float]] = field(
        default_factory=dict
    )
    groups: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """network (or '*' for any) -> layer name -> group name."""
    activation_bytes: Mapping[str, float] = field(default_factory=lambda: dict(ACTIVATION_BYTES))
    source: str = "<memory>"

    def accelerator(self, name: str) -> Accelerator:
        for acc in self.accelerators:
            if acc.name == name:
                return acc
        known = ", ".join(a.name for a in self.accelerators)
        raise MilpMapError(f"platform '{self.name}' has no accelerator '{name}'; known: {known}")

    @property
    def accelerator_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.accelerators)

    def bytes_per_element(self, precision: str) -> float:
        return self.activation_bytes.get(precision, 4.0)

    def groups_for(self, network: str) -> Mapping[str, str]:
        return self.groups.get(network) or self.groups.get("*") or {}


def _natural_key(text: str) -> tuple[Any, ...]:
    digits = "".join(c for c in text if c.isdigit())
    return (text.rstrip("0123456789"), int(digits) if digits else -1, text)
