"""Layer-wise solve time, status, gap and peak memory as synthetic networks grow.

    python benchmarks/scaling.py [--sizes 10 100 1000 5000] [--shapes chain residual inception]
        [--solvers cpsat highs dp] [--time-limit 60]

Each case runs in a fresh process (so peak RSS is the solve's own): a random network of the
given shape and size on 4 accelerators with random costs and transitions, minimum latency
under a proxy budget at 30% of the achievable range. `dp` (the chain dynamic programme) runs
on chains only.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform as host
import resource
import time

import pandas as pd

from milp_map.core.problem import Constraints, build_problem
from milp_map.exact import chain_dp
from milp_map.formulations import layerwise
from milp_map.io.synthetic import InstanceSpec, random_problem
from milp_map.solvers import SolverSettings


def _case(size: int, shape: str, solver: str, time_limit: float, queue: mp.Queue) -> None:
    start = time.perf_counter()
    spec = InstanceSpec(n_layers=size, n_accelerators=4, shape=shape, budgets=False)
    base = random_problem(0, spec, objective="latency")
    problem = build_problem(
        base.graph, base.platform, base.sensitivity, "latency", Constraints(max_proxy_fraction=0.3)
    )
    built = time.perf_counter() - start
    if solver == "dp":
        solution = chain_dp.solve(problem)
    else:
        solution = layerwise.solve(problem, solver, SolverSettings(time_limit_s=time_limit))
    queue.put(
        {
            "shape": shape,
            "layers": size,
            "solver": solver,
            "status": solution.status,
            "gap_pct": None if solution.gap is None else 100 * solution.gap,
            "latency_s": solution.objective_value,
            "build_s": built,
            "solve_s": solution.solve_time_s,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[10, 100, 1000, 5000])
    parser.add_argument("--shapes", nargs="+", default=["chain", "residual", "inception"])
    parser.add_argument("--solvers", nargs="+", default=["cpsat", "highs", "dp"])
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--csv")
    args = parser.parse_args()
    print(f"host: {host.machine()}, python {host.python_version()}; time limit {args.time_limit} s")
    context = mp.get_context("spawn")
    rows = []
    for shape in args.shapes:
        for size in args.sizes:
            for solver in args.solvers:
                if solver == "dp" and shape != "chain":
                    continue
                queue = context.Queue()
                worker = context.Process(
                    target=_case, args=(size, shape, solver, args.time_limit, queue)
                )
                worker.start()
                row = queue.get()
                worker.join()
                rows.append(row)
                gap = "-" if row["gap_pct"] is None else f"{row['gap_pct']:.4g}%"
                print(
                    f"{shape:<10} {size:>5} {solver:<6} {row['status']:<9} gap {gap} "
                    f"solve {row['solve_s']:.2f} s  build {row['build_s']:.2f} s  "
                    f"peak {row['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
    table = pd.DataFrame(rows)
    print()
    print(table.to_markdown(index=False, floatfmt=".4g"))
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
