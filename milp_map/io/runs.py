"""Measured whole-network runs (CSV) -> MeasuredRun: what ran where, and what the board measured.

One row per run: `network,run,mapping,latency_s[,energy_j]`. `mapping` lists every unit once as
`unit=accelerator` or `unit=accelerator@operating_point`, separated by spaces, in any order.
`energy_j` may be empty. Read by milp_map/evaluation/fit.py (validate and fit a platform).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from milp_map.errors import MilpMapError
from milp_map.io.tables import cell_number, read_csv_checked

RUN_COLUMNS = ("network", "run", "mapping", "latency_s")
RUN_RANGES = {"latency_s": (1e-9, 1e6), "energy_j": (1e-12, 1e9)}
"""Plausible whole-network runs: 1 ns to 11 days, 1 pJ to 1 GJ; beyond is a unit mistake."""


@dataclass(frozen=True)
class MeasuredRun:
    """One measured inference: unit -> (accelerator, operating point or None), and its costs."""

    network: str
    run: str
    mapping: dict[str, tuple[str, str | None]]
    latency_s: float
    energy_j: float | None

    @property
    def accelerators(self) -> frozenset[str]:
        return frozenset(acc for acc, _ in self.mapping.values())


def read_runs(path: str | Path, network: str | None = None) -> list[MeasuredRun]:
    """The runs of a CSV (only `network`'s if given); errors name the file, row and column."""
    path = Path(path)
    frame = read_csv_checked(path, RUN_COLUMNS, "measured runs")
    runs: list[MeasuredRun] = []
    seen: set[tuple[str, str]] = set()
    for row, rec in enumerate(frame.to_dict("records"), start=2):
        if network is not None and rec["network"] != network:
            continue
        key = (rec["network"], rec["run"])
        if not all(key):
            raise MilpMapError(f"{path}: row {row}: empty 'network' or 'run'")
        if key in seen:
            raise MilpMapError(f"{path}: row {row}: run '{key[1]}' of {key[0]} appears twice")
        seen.add(key)
        energy = rec.get("energy_j", "")
        runs.append(
            MeasuredRun(
                network=key[0],
                run=key[1],
                mapping=_mapping(path, row, rec["mapping"]),
                latency_s=_positive(path, row, "latency_s", rec["latency_s"]),
                energy_j=_positive(path, row, "energy_j", energy) if energy else None,
            )
        )
    if not runs:
        which = f" of network '{network}'" if network else ""
        raise MilpMapError(f"{path}: no measured runs{which}")
    return runs


def _mapping(path: Path, row: int, text: str) -> dict[str, tuple[str, str | None]]:
    mapping: dict[str, tuple[str, str | None]] = {}
    for token in text.split():
        unit, sep, target = token.partition("=")
        acc, at, point = target.partition("@")
        if not sep or not unit or not acc or (at and not point):
            raise MilpMapError(
                f"{path}: row {row}: mapping entry '{token}' is not unit=accelerator[@point]"
            )
        if unit in mapping:
            raise MilpMapError(f"{path}: row {row}: mapping names unit '{unit}' twice")
        mapping[unit] = (acc, point or None)
    if not mapping:
        raise MilpMapError(f"{path}: row {row}: empty mapping")
    return mapping


def _positive(path: Path, row: int, column: str, text: str) -> float:
    value = cell_number(path, row, column, text)
    low, high = RUN_RANGES[column]
    if not (math.isfinite(value) and low <= value <= high):
        raise MilpMapError(
            f"{path}: row {row}: column '{column}' must be in {low:g} .. {high:g}, got {text}"
        )
    return value
