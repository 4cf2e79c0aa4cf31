"""Every mapping method against the proven optimum: the README's experiment table.

ResNet-20 and MobileNetV1 on DIANA (layer-wise and channel splits) and MobileNetV1 on the
Rock Pi N10 (layer-wise, accelerator and DVFS level per layer group, int8 NPU under the
proxy budget): each method's gap to the optimum and wall time, min latency under half of
the proxy range; then, on the Rock Pi, the exact latency-energy front against NSGA-II at
PiQi's settings (population 200, 200 generations), with the hypervolume ratio.

    python benchmarks/compare_methods.py [--out table.md] [--seed 0]

Methods run one after another in this process (no --jobs), each on one thread (the
heuristics are single-threaded), so times do not overlap; torch is imported before timing.
(`-P` keeps this folder off sys.path: a benchmark script here named like a standard-library
package would otherwise shadow it.)
"""

from __future__ import annotations

import argparse
import importlib.util
import time

from milp_map.baselines.genetic import PIQI_GENERATIONS, PIQI_POPULATION
from milp_map.core.problem import Constraints, build_problem
from milp_map.core.split import build_split_problem
from milp_map.experiments.compare import METHOD_NAMES, RunSettings, compare
from milp_map.io.models import load_model
from milp_map.io.platforms import load_platform
from milp_map.io.scores import shipped_sensitivity

CASES = [
    ("resnet20", "diana", "layer"),
    ("resnet20", "diana", "channel"),
    ("mobilenet_v1", "diana", "layer"),
    ("mobilenet_v1", "diana", "channel"),
    ("mobilenet_v1", "rockpi-n10", "layer"),
]
FRONT_CASE = ("mobilenet_v1", "rockpi-n10")


def target(model: str, platform: str, granularity: str):
    problem = build_problem(
        load_model(model),
        load_platform(platform),
        shipped_sensitivity(model),
        "latency",
        Constraints(max_proxy_fraction=0.5),
    )
    return build_split_problem(problem, 8) if granularity == "channel" else problem


def cell(row) -> str:
    if not row["within_bounds"]:
        return f"over bounds ({row['wall_time_s']:.2f} s)"
    return f"{row['gap_pct']:.1f}% ({row['wall_time_s']:.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the Markdown here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if importlib.util.find_spec("torch") is not None:
        import torch  # noqa: F401  (import time is not the gradient search's)
    settings = RunSettings(
        seed=args.seed, threads=1, population=PIQI_POPULATION, generations=PIQI_GENERATIONS
    )
    columns, skipped = {}, set()
    for case in CASES:
        result = compare(target(*case), METHOD_NAMES, settings, progress=False)
        columns[case] = {row["method"]: cell(row) for _, row in result.table.iterrows()}
        skipped |= {f"{m} on {case[1]}" for m in result.skipped}
        print(f"done {case}", flush=True)
    header = [f"{m} / {p} ({g})" for m, p, g in CASES]
    lines = ["| method | " + " | ".join(header) + " |", "|---" * (len(CASES) + 1) + "|"]
    for method in METHOD_NAMES:
        cells = [columns[case].get(method, "n/a") for case in CASES]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")

    front_settings = RunSettings(
        seed=args.seed,
        threads=1,
        front=("latency", "energy"),
        population=PIQI_POPULATION,
        generations=PIQI_GENERATIONS,
    )
    start = time.perf_counter()
    front = compare(
        target(*FRONT_CASE, "layer"), ["exact", "nsga2"], front_settings, progress=False
    )
    rows = front.table.set_index("method")
    lines += [
        "",
        f"Latency-energy front, {FRONT_CASE[0]} / {FRONT_CASE[1]} (proxy budget 0.5):",
        "",
        "| method | points | wall time | hypervolume / exact |",
        "|---|---|---|---|",
    ]
    for method in ("exact", "nsga2"):
        r = rows.loc[method]
        label = f"NSGA-II {PIQI_POPULATION}x{PIQI_GENERATIONS}" if method == "nsga2" else method
        lines.append(
            f"| {label} | {r['front_points']} | {r['wall_time_s']:.1f} s | {r['hv_ratio']:.4f} |"
        )
    lines.append(f"\n(front comparison {time.perf_counter() - start:.1f} s in all)")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
