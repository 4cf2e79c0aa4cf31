"""`python -m milp_map.sweep grid.yaml --out results/`: one solve per cell of a grid.

A grid (models x platforms and their variants x granularities x objectives x budgets x
methods) runs on local processes or a Dask cluster through the same per-cell task; every
finished cell is saved at once, so a rerun after a crash or Ctrl-C runs only what is
missing (milp_map/experiments/sweep/). The table, results.csv, has every input parameter,
the status, metrics, bound, gap, times and the mapping file of each cell.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from milp_map.cli import common
from milp_map.errors import MilpMapError

RESUME = "; finished cells are saved, rerun to resume"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.new_parser(
        "sweep",
        "Run every cell of a grid of mapping problems (resumable); results go to "
        "OUT/results.csv, one mapping JSON per cell to OUT/mappings/.",
    )
    parser.add_argument("grid", help="grid YAML (see examples/grid.yaml)")
    parser.add_argument("--out", default="results", help="results folder (default: results)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="local worker processes (default: CPU cores / --threads-per-task; 0 = run "
        "the cells in this process)",
    )
    where.add_argument(
        "--scheduler", metavar="tcp://HOST:PORT", help="run on this Dask distributed scheduler"
    )
    where.add_argument(
        "--dask-local",
        type=int,
        metavar="N",
        help="run on a Dask LocalCluster of N worker processes on 127.0.0.1",
    )
    parser.add_argument(
        "--threads-per-task",
        type=int,
        default=1,
        metavar="T",
        help="solver threads per cell (default 1); keep jobs x T <= cores",
    )
    parser.add_argument(
        "--retry-failed", action="store_true", help="run again the cells whose status is error"
    )
    parser.add_argument("--dry-run", action="store_true", help="count the cells to run, then stop")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from milp_map.experiments.sweep.executors import WorkerLost

    return common.run(
        lambda: _run(args),
        interrupted="interrupted" + RESUME,
        also={WorkerLost: (common.EXIT_INCOMPLETE, RESUME)},
    )


def _run(args: argparse.Namespace) -> int:
    from milp_map.experiments.sweep.executors import make_executor
    from milp_map.experiments.sweep.grid import expand_grid, load_grid
    from milp_map.experiments.sweep.run import default_jobs, run_cells
    from milp_map.experiments.sweep.store import ResultStore, count_failed

    _check_counts(args)
    grid = load_grid(args.grid)
    cells = expand_grid(grid)
    with ResultStore(args.out) as store:
        store.order = [cell.key for cell in cells]
        finished = store.finished(args.retry_failed)
        todo = [cell for cell in cells if cell.key not in finished]
        jobs = args.jobs if args.jobs is not None else default_jobs(args.threads_per_task)
        if args.dry_run:
            print(f"{len(cells)} cells, {len(cells) - len(todo)} in {args.out}, {len(todo)} to run")
            return common.EXIT_OK
        executor = make_executor(jobs, args.scheduler, args.dask_local) if todo else None
        print(
            f"{len(cells)} cells, {len(cells) - len(todo)} already in {args.out}; running "
            f"{len(todo)}" + (f" on {executor.description}" if executor else ""),
            file=sys.stderr,
        )
        try:
            run_cells(todo, executor, store, args.threads_per_task, args.quiet)
        finally:
            store.write_table()
        in_grid = [store.rows[c.key] for c in cells if c.key in store.rows]
        failed = count_failed({r["key"]: r for r in in_grid})
        print(
            f"{len(in_grid) - failed} solved, {failed} failed, {len(cells) - len(in_grid)} "
            f"missing; wrote {store.table_path}"
        )
    return common.EXIT_OK


def _check_counts(args: argparse.Namespace) -> None:
    if args.threads_per_task < 1:
        raise MilpMapError(f"--threads-per-task must be >= 1, got {args.threads_per_task}")
    if args.jobs is not None and args.jobs < 0:
        raise MilpMapError(f"--jobs must be >= 0, got {args.jobs}")
    if args.dask_local is not None and args.dask_local < 1:
        raise MilpMapError(f"--dask-local must be >= 1, got {args.dask_local}")


if __name__ == "__main__":
    raise SystemExit(main())
