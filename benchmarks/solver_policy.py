"""Is `--solver auto` never worse than its best backend, with and without a time limit?

    python benchmarks/solver_policy.py [--time-limit 45] [--sizes 1000 5000] [--quick]

Two tables, every case in a fresh process killed after its limit plus a grace period:

1. Layer-wise: random networks on 4 accelerators with transitions and 2 DVFS levels, minimum
   latency under a proxy budget at 30% of the achievable range. Chains with integer scores
   0-9 (issue 15's instance), chains with arbitrary scores, and residual DAGs; each solved by
   auto, highs and dp (chains) without a limit; auto, cpsat (before: what auto took under a
   time limit) and portfolio with --time-limit.
2. Channel splits of zoo models (fine groups): cpsat with one and two workers, highs and the
   portfolio that auto runs, with --time-limit.

Columns: status, wall time of the solve (warm start included), and the mapping's objective as
a ratio to the best mapping any method found for that instance ("1" is the best; a stopped
search shows its gap). Measured side by side in one run, as ratios; the machine is shared.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform as host
import sys
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

GRACE_S = 60.0
"""A case's process is killed this long after its time limit (a method without a limit
gets twice the limit)."""


@dataclass(frozen=True)
class Case:
    instance: str
    solver: str
    time_limit_s: float | None
    threads: int = 1


def _layer_problem(instance: str):
    from milp_map.core.problem import Constraints, build_problem
    from milp_map.core.scores import Sensitivity
    from milp_map.io.synthetic import InstanceSpec, random_problem

    shape, layers, scores = instance.split("-")
    spec = InstanceSpec(
        n_layers=int(layers),
        n_accelerators=4,
        shape=shape,
        operating_points=2,
        budgets=False,
    )
    base = random_problem(0, spec, objective="latency")
    sensitivity = base.sensitivity
    if scores == "int":
        rng = np.random.default_rng(0)
        table = {key: float(rng.integers(0, 10)) for key in sorted(sensitivity.scores)}
        sensitivity = Sensitivity(table, "integer", "random")
    return build_problem(
        base.graph, base.platform, sensitivity, "latency", Constraints(max_proxy_fraction=0.3)
    )


def _split_problem(instance: str):
    from milp_map.io.problems import load_problem

    model, platform, group = instance.split("@")
    return load_problem(
        model, platform, granularity="channel", group_size=int(group), max_proxy_fraction=0.5
    )


def _run(case: Case, queue: mp.Queue) -> None:
    from milp_map import pipeline
    from milp_map.solvers import SolverSettings

    start = time.perf_counter()
    target = (
        _split_problem(case.instance) if "@" in case.instance else _layer_problem(case.instance)
    )
    built = time.perf_counter() - start
    settings = SolverSettings(time_limit_s=case.time_limit_s, threads=case.threads)
    start = time.perf_counter()
    solution = pipeline.solve(target, case.solver, settings).solution
    queue.put(
        {
            "status": solution.status,
            "method": solution.method,
            "value": solution.objective_value,
            "gap_pct": None if solution.gap is None else 100 * solution.gap,
            "build_s": built,
            "solve_s": time.perf_counter() - start,
        }
    )


def measure(case: Case, patience_s: float) -> dict:
    """One case in a fresh process; killed when it overruns (reported as `killed`)."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_run, args=(case, queue), daemon=True)
    process.start()
    deadline = time.perf_counter() + (case.time_limit_s or patience_s) + GRACE_S
    row: dict = {"status": "killed"}
    while time.perf_counter() < deadline:
        try:
            row = queue.get(timeout=0.5)
            break
        except Exception:
            if not process.is_alive():
                row = {"status": f"crashed ({process.exitcode})"}
                break
    process.kill()
    process.join()
    label = case.solver if case.threads == 1 else f"{case.solver} x{case.threads}"
    if case.time_limit_s is not None:
        label += f" --time-limit {case.time_limit_s:g}"
    return {"instance": case.instance, "run": label, **row}


def table(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    best = frame.groupby("instance")["value"].transform("min")
    frame["vs best"] = frame["value"] / best
    frame["result"] = [_cell(r) for _, r in frame.iterrows()]
    wide = frame.pivot(index="instance", columns="run", values="result")
    wide = wide[list(dict.fromkeys(frame["run"]))]
    return wide.reindex(list(dict.fromkeys(frame["instance"]))).fillna("")


def _cell(row: pd.Series) -> str:
    if row["status"] not in ("optimal", "feasible"):
        return str(row["status"])
    ratio = "" if abs(row["vs best"] - 1) < 1e-9 else f", x{row['vs best']:.3f}"
    if row["status"] == "optimal":
        gap = ""
    elif pd.isna(row["gap_pct"]):
        gap = ", no bound"
    else:
        gap = f", gap {row['gap_pct']:.2g}%"
    method = "" if row["method"] in row["run"] else f" ({row['method']})"
    return f"{row['status']} {row['solve_s']:.2g} s{method}{gap}{ratio}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=45.0, metavar="SECONDS")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1000, 5000])
    parser.add_argument("--quick", action="store_true", help="100 layers, one split model")
    parser.add_argument(
        "--sections", nargs="+", choices=("layer", "split"), default=["layer", "split"]
    )
    args = parser.parse_args()
    limit = args.time_limit
    sizes = [100] if args.quick else args.sizes
    layer_cases = []
    for size in sizes:
        for shape, scores in (("chain", "int"), ("chain", "real"), ("residual", "int")):
            instance = f"{shape}-{size}-{scores}"
            solvers = ["auto", "highs"] + (["dp"] if shape == "chain" else [])
            layer_cases += [Case(instance, solver, None) for solver in solvers]
            layer_cases += [Case(instance, name, limit) for name in ("auto", "cpsat", "portfolio")]
    splits = (
        ["resnet20@diana@1"]
        if args.quick
        else [
            "resnet18@diana@1",
            "resnet50@jetson-xavier@8",
            "googlenet@jetson-xavier@8",
            "mobilenet_v1@diana@1",
        ]
    )
    split_cases = []
    for instance in splits:
        split_cases += [
            Case(instance, "cpsat", limit),
            Case(instance, "cpsat", limit, threads=2),
            Case(instance, "highs", limit),
            Case(instance, "auto", limit),
        ]
    print(f"host: {host.machine()}, Python {host.python_version()}; time limit {limit:g} s\n")
    sections = {"layer": ("Layer-wise", layer_cases), "split": ("Channel splits", split_cases)}
    for title, cases in (sections[name] for name in args.sections):
        rows = []
        for k, case in enumerate(cases, 1):
            rows.append(measure(case, patience_s=2 * limit))
            done = rows[-1]
            print(
                f"[{k}/{len(cases)}] {done['instance']} {done['run']}: {done['status']}",
                flush=True,
                file=sys.stderr,
            )
        print(f"## {title}\n")
        print(table(rows).to_markdown())
        print()


if __name__ == "__main__":
    main()
