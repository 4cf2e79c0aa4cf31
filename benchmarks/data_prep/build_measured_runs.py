"""Convert PiQi's measured whole-network runs into milp_map's measured-runs CSV.

Source: Ehsan-aghapour/CO-UP-Profiling, Profiling/Data/Evaluations_{network}.csv (PiQi, ISLPED
2024): one row per run with the component of every layer group (`order`, B/L/G/N), the DVFS
level of every group (`freq`) and the measured `task_time` (ms, without image loading) and
`task_e` (mJ). See data/platforms/rockpi-n10/README.md, "Measured runs".

    python benchmarks/data_prep/build_measured_runs.py \
        --source PATH/TO/CO-UP-Profiling --out data/platforms/rockpi-n10/runs.csv

Rows are kept in source order; runs the preset cannot express are skipped and counted.
"""

from __future__ import annotations

import argparse
import ast
from collections import Counter
from pathlib import Path

import pandas as pd
from build_rockpi_n10 import ACCELERATORS, HOST_LEVEL, N_GROUPS, NETWORKS

TOP_LEVEL = {"B": 7, "L": 5, "G": 4, "N": 7}
"""Highest DVFS level per component in the data ('max' in a run's freq)."""
NPU_NETWORKS = {"MobileV1", "YOLOv3"}
"""The networks PiQi profiled per layer on the NPU (the preset has NPU costs for these only)."""


def levels(order: str, freq: str) -> list[tuple[int, int | None]] | str:
    """(level, GPU host level or None) per group, or why the run cannot be expressed."""
    text = "(('max',),)" if freq.strip() == "{{max}}" else freq
    parsed = ast.literal_eval(text)
    if len(parsed) == 1:
        parsed = parsed * len(order)
    if len(parsed) != len(order):
        return "freq and order differ in length"
    out: list[tuple[int, int | None]] = []
    for component, level in zip(order, parsed, strict=True):
        if level in (("max",), ("min",)):
            top = level == ("max",)
            if component == "G":
                level = (TOP_LEVEL["G"], HOST_LEVEL) if top else (0, 0)
            else:
                level = (TOP_LEVEL[component] if top else 0,)
        host = level[1] if component == "G" else None
        if component == "G" and host != HOST_LEVEL:
            return f"GPU host level {host} (the preset fixes it at {HOST_LEVEL})"
        out.append((int(level[0]), host))
    return out


def runs_of(graph: str, frame: pd.DataFrame, skipped: Counter) -> list[dict]:
    network = NETWORKS[graph]
    rows = []
    for index, rec in frame.iterrows():
        if pd.isna(rec["order"]) or pd.isna(rec["task_time"]):
            skipped["not measured (no task_time)"] += 1
            continue
        order = str(rec["order"])
        if len(order) != N_GROUPS[graph]:
            skipped[f"{len(order)} groups, not {N_GROUPS[graph]}"] += 1
            continue
        if "N" in order and graph not in NPU_NETWORKS:
            skipped["NPU run of a network without per-layer NPU data"] += 1
            continue
        found = levels(order, str(rec["freq"]))
        if isinstance(found, str):
            skipped[found] += 1
            continue
        mapping = " ".join(
            f"g{i}={ACCELERATORS[c]}@f{level}"
            for i, (c, (level, _)) in enumerate(zip(order, found, strict=True))
        )
        energy = rec.get("task_e")
        rows.append(
            {
                "network": network,
                "run": f"{graph}-{index + 2}",
                "mapping": mapping,
                "latency_s": "%.9g" % (float(rec["task_time"]) / 1e3),
                "energy_j": "" if pd.isna(energy) else "%.9g" % (float(energy) / 1e3),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="CO-UP-Profiling checkout")
    parser.add_argument("--out", type=Path, required=True, help="runs CSV to write")
    args = parser.parse_args()
    rows: list[dict] = []
    skipped: Counter = Counter()
    for graph in NETWORKS:
        path = args.source / "Profiling" / "Data" / f"Evaluations_{graph}.csv"
        rows += runs_of(graph, pd.read_csv(path), skipped)
    pd.DataFrame(rows).to_csv(args.out, index=False)
    kinds = Counter(r["network"] for r in rows)
    print(
        f"wrote {len(rows)} runs to {args.out}: " + ", ".join(f"{n} {k}" for n, k in kinds.items())
    )
    for reason, count in skipped.most_common():
        print(f"  skipped {count}: {reason}")


if __name__ == "__main__":
    main()
