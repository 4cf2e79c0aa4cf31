"""Running a grid: every cell through an executor, each finished cell recorded at once, so a
rerun after a crash or Ctrl-C runs only what is missing."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from milp_map.experiments.sweep.executors import Executor
from milp_map.experiments.sweep.grid import Cell
from milp_map.experiments.sweep.store import ResultStore
from milp_map.solvers.base import CtrlC


def run_cells(
    cells: Sequence[Cell],
    executor: Executor | None,
    store: ResultStore,
    threads: int,
    quiet: bool = False,
) -> None:
    """Run `cells`, recording each as it finishes; Ctrl-C stops (KeyboardInterrupt)."""
    if not cells or executor is None:
        return
    done = failed = 0
    bar = tqdm(total=len(cells), unit="cell", file=sys.stderr, disable=quiet, dynamic_ncols=True)
    finished = False
    try:
        with _CtrlC() as ctrl_c:
            for outcome in executor.run(cells, threads):
                if outcome.interrupted or ctrl_c.pressed:
                    # a solver caught Ctrl-C and returned early: not a result, stop here
                    raise KeyboardInterrupt
                store.record(outcome)
                failed += outcome.failed
                done += not outcome.failed
                store.write_table(force=False)
                remaining = len(cells) - done - failed
                bar.set_postfix_str(
                    f"done {done}, failed {failed}, remaining {remaining}", refresh=False
                )
                bar.update()
        finished = True
    finally:
        bar.close()
        executor.close(abort=not finished)


class _CtrlC(CtrlC):
    """Ctrl-C raises KeyboardInterrupt and is remembered: Python drops an exception raised
    while a garbage-collector callback runs (Dask installs one), so the loop checks too."""

    def _press(self, signum: int, frame: Any) -> None:
        super()._press(signum, frame)
        raise KeyboardInterrupt


def default_jobs(threads_per_task: int) -> int:
    """Local worker processes: the usable cores shared out among tasks of T threads."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // threads_per_task)
