"""Write a platform YAML (and its cost and transfer tables) with fitted adjustments applied.

The adjustment is what milp_map/evaluation/fit.py estimates from measured runs: a latency and an
energy scale per accelerator, a scale on transfers, a fixed cost per accelerator switch (from,
to) and the static power. The written platform is an ordinary preset: every solver, the
evaluator and `check` read it as they read the original, so they optimise the fitted model.
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from milp_map.core.costmodels import ANALYTICAL_MODELS
from milp_map.errors import MilpMapError
from milp_map.io.files import write_text_atomic
from milp_map.io.platforms import read_platform_yaml
from milp_map.io.tables import read_csv_checked

TABLE_FLOAT = "%.9g"
RATE_PARAMETERS: dict[str, dict[str, int]] = {
    "roofline": {"macs_per_s": -1, "bytes_per_s": -1, "overhead_s": 1},
    "diana_digital": {"freq_hz": -1},
}
"""Analytical models whose latency scales exactly with their parameters (x scale**power):
a latency scale lands there when the accelerator has no operating points. DIANA's analog
model has a fixed-time term, so only operating points can scale it."""


@dataclass(frozen=True)
class PlatformAdjustment:
    """Multipliers (1 = unchanged) and added costs; table rows change only for `networks`."""

    networks: frozenset[str]
    latency_scale: Mapping[str, float] = field(default_factory=dict)
    energy_scale: Mapping[str, float] = field(default_factory=dict)
    busy_power_w: Mapping[str, float] = field(default_factory=dict)
    """Power added while an accelerator computes, on its fitted latency: a board that draws
    about the same power whatever the level (a fused NPU run) rather than per-level power."""
    transfer_latency_scale: float = 1.0
    transfer_energy_scale: float = 1.0
    switch_s: Mapping[tuple[str, str], float] = field(default_factory=dict)
    """Latency added to every tensor that crosses from one accelerator to another."""
    static_power_w: float | None = None
    """None keeps the platform's static power."""


def write_adjusted_platform(
    source: Path, adjustment: PlatformAdjustment, out_yaml: Path, name: str, note: str
) -> Path:
    """Write `source` with `adjustment` applied as `out_yaml`; its tables go in a folder
    named after the platform beside it (costs.csv, costs_2.csv, ..., transfers.csv,
    groups.csv). Refuses to write over any file the source platform reads. Returns the path."""
    raw = read_platform_yaml(source)
    side = out_yaml.parent / name
    inputs = _input_files(source, raw)
    cost_tables = list(
        dict.fromkeys(_table_of(acc) for acc in raw["accelerators"] if _table_of(acc))
    )
    targets = {
        t: side / (f"costs_{k + 1}.csv" if k else "costs.csv") for k, t in enumerate(cost_tables)
    }
    planned = [out_yaml, *targets.values(), side / "transfers.csv", side / "groups.csv"]
    clash = sorted(str(p) for p in planned if p.resolve() in inputs)
    if clash:
        raise MilpMapError(
            f"{clash[0]}: the fitted platform would overwrite a file of the platform it is "
            "fitted from; choose another --out or --name"
        )
    side.mkdir(parents=True, exist_ok=True)
    raw["name"] = name
    raw["description"] = f"{str(raw.get('description', '')).strip()} {note}".strip()
    if adjustment.static_power_w is not None:
        raw["static_power_w"] = float(adjustment.static_power_w)
    # each accelerator its own copy: YAML anchors may share one cost or operating-point block
    raw["accelerators"] = [copy.deepcopy(acc) for acc in raw["accelerators"]]
    for acc in raw["accelerators"]:
        table = _table_of(acc)
        if table is None:
            _adjust_accelerator(acc, adjustment)
        else:
            acc["cost"] = {"table": f"{name}/{targets[table].name}"}
    for table, target in targets.items():
        _write_cost_table(source.parent / table, target, adjustment)
    if raw.get("transition_table"):
        _write_transfer_table(
            source.parent / raw["transition_table"], side / "transfers.csv", adjustment
        )
        raw["transition_table"] = f"{name}/transfers.csv"
    raw["transitions"] = _adjusted_transitions(raw.get("transitions") or [], adjustment)
    if isinstance(raw.get("groups"), str):
        shutil.copyfile(source.parent / raw["groups"], side / "groups.csv")
        raw["groups"] = f"{name}/groups.csv"
    write_text_atomic(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), out_yaml)
    return out_yaml


def remove_written(out_yaml: Path, name: str) -> None:
    """Delete what write_adjusted_platform wrote (a fitted platform that failed its check)."""
    out_yaml.unlink(missing_ok=True)
    shutil.rmtree(out_yaml.parent / name, ignore_errors=True)


def _table_of(acc: dict[str, Any]) -> str | None:
    cost = acc.get("cost")
    return cost.get("table") if isinstance(cost, dict) else None


def _input_files(source: Path, raw: dict[str, Any]) -> set[Path]:
    """Every file the source platform reads, resolved."""
    names = [_table_of(acc) for acc in raw.get("accelerators", ())]
    names += [raw.get("transition_table")]
    if isinstance(raw.get("groups"), str):
        names.append(raw["groups"])
    files = {(source.parent / n).resolve() for n in names if isinstance(n, str)}
    return files | {source.resolve()}


def _adjust_accelerator(acc: dict[str, Any], adjustment: PlatformAdjustment) -> None:
    """An analytical accelerator's latency scale lands on its operating points (freq_scale)
    or else on its model's rates; power scales by energy / latency scale, so that energy =
    power x latency scales by the energy scale; the busy power adds to every power."""
    cost = acc.get("cost", {})
    if "table" in cost:
        return
    name = acc["name"]
    lat = adjustment.latency_scale.get(name, 1.0)
    power = adjustment.energy_scale.get(name, 1.0) / lat
    busy = adjustment.busy_power_w.get(name, 0.0)
    acc["dynamic_power_w"] = float(float(acc.get("dynamic_power_w", 0.0)) * power + busy)
    points = acc.get("operating_points") or ()
    for point in points:
        point["freq_scale"] = float(float(point["freq_scale"]) / lat)
        point["dynamic_power_w"] = float(float(point.get("dynamic_power_w", 0.0)) * power + busy)
    if not points and lat != 1.0:
        defaults = dataclasses.fields(ANALYTICAL_MODELS[cost["model"]])
        given = {f.name: cost.get(f.name, f.default) for f in defaults}
        for parameter, power_of in RATE_PARAMETERS[cost["model"]].items():
            cost[parameter] = float(float(given[parameter]) * lat**power_of)


def _write_cost_table(path: Path, target: Path, adjustment: PlatformAdjustment) -> None:
    frame = read_csv_checked(path, ["layer", "accelerator", "latency_s", "energy_j"], "cost table")
    chosen = _rows_of(frame, adjustment.networks)

    def per_row(values: Mapping[str, float], default: float) -> Any:
        return frame["accelerator"].map(lambda a: values.get(a, default))

    latency = frame["latency_s"].astype(float)
    energy = frame["energy_j"].astype(float)
    latency = latency.where(~chosen, latency * per_row(adjustment.latency_scale, 1.0))
    fitted_energy = energy * per_row(adjustment.energy_scale, 1.0)
    fitted_energy += latency * per_row(adjustment.busy_power_w, 0.0)
    frame["latency_s"] = latency.map(lambda v: TABLE_FLOAT % v)
    frame["energy_j"] = energy.where(~chosen, fitted_energy).map(lambda v: TABLE_FLOAT % v)
    write_text_atomic(frame.to_csv(index=False), target)


def _write_transfer_table(path: Path, target: Path, adjustment: PlatformAdjustment) -> None:
    frame = read_csv_checked(
        path, ["layer", "from", "to", "latency_s", "energy_j"], "transition table"
    )
    chosen = _rows_of(frame, adjustment.networks)
    added = [
        adjustment.switch_s.get((a, b), 0.0)
        for a, b in zip(frame["from"], frame["to"], strict=True)
    ]
    latency = frame["latency_s"].astype(float)
    energy = frame["energy_j"].astype(float)
    latency = latency.where(~chosen, latency * adjustment.transfer_latency_scale + added)
    energy = energy.where(~chosen, energy * adjustment.transfer_energy_scale)
    frame["latency_s"] = latency.map(lambda v: TABLE_FLOAT % v)
    frame["energy_j"] = energy.map(lambda v: TABLE_FLOAT % v)
    write_text_atomic(frame.to_csv(index=False), target)


def _rows_of(frame: Any, networks: frozenset[str]) -> Any:
    """Rows that belong to a fitted network (rows without a network apply to every network)."""
    if "network" not in frame.columns:
        return frame["layer"].map(lambda _: True)
    return frame["network"].map(lambda n: n in networks or n in ("", "*"))


def _adjusted_transitions(
    transitions: list[dict[str, Any]], adjustment: PlatformAdjustment
) -> list[dict[str, Any]]:
    """Scaled `transitions` entries plus one per switch that has none (charged where no
    transfer-table row exists)."""
    out = []
    for t in transitions:
        entry = {("from" if k == "src" else "to" if k == "dst" else k): v for k, v in t.items()}
        pair = (entry["from"], entry["to"])
        latency = float(entry.get("latency_s", 0.0)) * adjustment.transfer_latency_scale
        entry["latency_s"] = float(latency + adjustment.switch_s.get(pair, 0.0))
        entry["energy_j"] = float(
            float(entry.get("energy_j", 0.0)) * adjustment.transfer_energy_scale
        )
        if entry.get("bytes_per_s"):
            entry["bytes_per_s"] = float(
                float(entry["bytes_per_s"]) / adjustment.transfer_latency_scale
            )
        out.append(entry)
    present = {(t["from"], t["to"]) for t in out}
    for (src, dst), seconds in sorted(adjustment.switch_s.items()):
        if seconds > 0 and (src, dst) not in present:
            out.append({"from": src, "to": dst, "latency_s": float(seconds)})
    return out
