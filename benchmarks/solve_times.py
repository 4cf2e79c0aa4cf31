"""Solve time of the exact layer-wise models per zoo model, platform and solver.

    python benchmarks/solve_times.py [--platforms diana rockpi-n10] [--solvers cpsat highs]

Prints one row per (model, platform, objective, solver): units, status, objective, gap and
wall time, with the default accuracy budget (half of the proxy range).
"""

from __future__ import annotations

import argparse
import platform as host
import time

import pandas as pd

from milp_map.core.problem import Constraints, build_problem
from milp_map.errors import MilpMapError
from milp_map.formulations import layerwise
from milp_map.io.models import load_model
from milp_map.io.platforms import load_platform
from milp_map.io.scores import data_free_sensitivity, shipped_sensitivity
from milp_map.io.zoo import list_models
from milp_map.solvers import SolverSettings


def run(
    platforms: list[str], solvers: list[str], objectives: list[str], fraction: float
) -> pd.DataFrame:
    rows = []
    for platform_name in platforms:
        platform = load_platform(platform_name)
        precisions = sorted({a.precision for a in platform.accelerators})
        for model in list_models():
            graph = load_model(model)
            scores = shipped_sensitivity(model) or data_free_sensitivity(graph, precisions)
            for objective in objectives:
                try:
                    problem = build_problem(
                        graph, platform, scores, objective, Constraints(max_proxy_fraction=fraction)
                    )
                except MilpMapError as exc:
                    if "no cost rows for network" in str(exc):
                        break  # the measured table does not cover this model
                    raise
                for solver in solvers:
                    start = time.perf_counter()
                    solution = layerwise.solve(problem, solver, SolverSettings(time_limit_s=300))
                    rows.append(
                        {
                            "platform": platform_name,
                            "model": model,
                            "units": len(problem.units),
                            "objective": objective,
                            "solver": solver,
                            "status": solution.status,
                            "value": solution.objective_value,
                            "gap_pct": None if solution.gap is None else 100 * solution.gap,
                            "solve_s": solution.solve_time_s,
                            "wall_s": time.perf_counter() - start,
                        }
                    )
                    print(_line(rows[-1]), flush=True)
    return pd.DataFrame(rows)


def _line(row: dict) -> str:
    return (
        f"{row['platform']:<14} {row['model']:<20} {row['units']:>4} {row['objective']:<8} "
        f"{row['solver']:<6} {row['status']:<9} {row['value']:.6g} {row['wall_s']:8.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platforms", nargs="+", default=["diana", "rockpi-n10", "jetson-xavier"])
    parser.add_argument("--solvers", nargs="+", default=["cpsat", "highs"])
    parser.add_argument("--objectives", nargs="+", default=["latency", "energy"])
    parser.add_argument("--proxy-fraction", type=float, default=0.5)
    parser.add_argument("--csv", help="also write the table here")
    args = parser.parse_args()
    print(f"host: {host.processor() or host.machine()}, python {host.python_version()}")
    table = run(args.platforms, args.solvers, args.objectives, args.proxy_fraction)
    print()
    print(table.to_markdown(index=False, floatfmt=".4g"))
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
