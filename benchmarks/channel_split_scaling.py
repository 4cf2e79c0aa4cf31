"""Channel-split scaling on DIANA: solve time and front size against the group size G.

    python benchmarks/channel_split_scaling.py [--models resnet20 resnet18] [--groups 32 16 8]
        [--solvers cpsat highs] [--front-groups 32 16 8] [--front-solvers cpsat]
        [--time-limit 120]

One row per (model, G, solver): number of binaries' worth of splits, status and time of one
optimal solve (min latency, proxy budget at half the layer-wise range), and, for G in
--front-groups and solver in --front-solvers, the exact latency-energy front under the same
budget: points and seconds.
"""

from __future__ import annotations

import argparse
import platform as host
import time

import pandas as pd

from milp_map.core.problem import Constraints, build_problem
from milp_map.core.split import build_split_problem, configurations
from milp_map.exact.pareto import exact_front
from milp_map.formulations import channel_split, layerwise
from milp_map.io.models import load_model
from milp_map.io.platforms import load_platform
from milp_map.io.scores import shipped_sensitivity
from milp_map.solvers import SolverSettings


def run(args: argparse.Namespace) -> pd.DataFrame:
    platform = load_platform("diana")
    rows = []
    for model in args.models:
        graph = load_model(model)
        problem = build_problem(
            graph,
            platform,
            shipped_sensitivity(model),
            "latency",
            Constraints(max_proxy_fraction=args.proxy_fraction),
        )
        layer_optimum = layerwise.solve(problem, "cpsat")
        for group_size in args.groups:
            split = build_split_problem(problem, group_size)
            splits = sum(len(configurations(u) or ()) for u in split.units)
            hint = channel_split.selection_from_layerwise(split, layer_optimum.extra["choice"])
            for solver in args.solvers:
                settings = SolverSettings(time_limit_s=args.time_limit)
                solution = channel_split.solve(split, solver, settings, hint=hint)
                row = {
                    "model": model,
                    "G": group_size,
                    "solver": solver,
                    "splits": splits,
                    "status": solution.status,
                    "latency_ms": 1e3 * solution.objective_value,
                    "vs_layerwise_pct": 100
                    * (1 - solution.objective_value / layer_optimum.objective_value),
                    "solve_s": solution.solve_time_s,
                    "front_points": None,
                    "front_s": None,
                }
                if group_size in args.front_groups and solver in args.front_solvers:
                    start = time.perf_counter()

                    def solve_fn(
                        objective, bounds, hint, split=split, solver=solver, settings=settings
                    ):
                        return channel_split.solve(split, solver, settings, objective, bounds, hint)

                    front = exact_front(split, solve_fn, ("latency", "energy"), progress=False)
                    row["front_points"] = len(front.points)
                    row["front_s"] = time.perf_counter() - start
                    row["front_complete"] = front.complete
                rows.append(row)
                print(_line(row), flush=True)
    return pd.DataFrame(rows)


def _line(row: dict) -> str:
    front = (
        f"front {row['front_points']} pts {row['front_s']:.1f} s"
        if row["front_points"] is not None
        else ""
    )
    return (
        f"{row['model']:<14} G={row['G']:<3} {row['solver']:<6} splits {row['splits']:>6} "
        f"{row['status']:<9} {row['latency_ms']:.4f} ms ({row['vs_layerwise_pct']:+.1f}% vs "
        f"layer-wise) {row['solve_s']:7.2f} s  {front}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", default=["resnet20", "resnet18", "mobilenet_v1", "resnet50"]
    )
    parser.add_argument("--groups", nargs="+", type=int, default=[32, 16, 8, 4, 1])
    parser.add_argument("--front-groups", nargs="*", type=int, default=[32, 16, 8])
    parser.add_argument("--solvers", nargs="+", default=["cpsat", "highs"])
    parser.add_argument("--front-solvers", nargs="*", default=["cpsat"])
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--proxy-fraction", type=float, default=0.5)
    parser.add_argument("--csv", help="also write the table here")
    args = parser.parse_args()
    print(f"host: {host.machine()}, python {host.python_version()}; time limit {args.time_limit} s")
    table = run(args)
    print()
    print(table.to_markdown(index=False, floatfmt=".4g"))
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
