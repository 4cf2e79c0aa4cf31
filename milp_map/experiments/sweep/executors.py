"""Executors of a sweep: the same `run_cell` task on local processes or a Dask cluster.

Every executor takes the cells and the solver threads per task and yields one `CellOutcome`
per cell as cells finish (any order); `close(abort=True)` drops the cells not yet finished.
Dask is optional and imported only here, only when asked for.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, Protocol

from milp_map.errors import MilpMapError
from milp_map.experiments.sweep.cell import CellOutcome, failed_outcome, run_cell
from milp_map.experiments.sweep.grid import Cell


class WorkerLost(RuntimeError):
    """A local worker process died (killed, out of memory): the pool cannot go on."""


class Executor(Protocol):
    description: str

    def run(self, cells: Sequence[Cell], threads: int) -> Iterator[CellOutcome]: ...

    def close(self, abort: bool = False) -> None: ...


class InProcess:
    """Cells one after another in this process (`--jobs 0`): for debugging and notebooks."""

    description = "this process"

    def run(self, cells: Sequence[Cell], threads: int) -> Iterator[CellOutcome]:
        for cell in cells:
            yield run_cell(cell, threads)

    def close(self, abort: bool = False) -> None:
        pass


class LocalProcesses:
    """A pool of `jobs` spawned processes (concurrent.futures); the default executor."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.description = f"{jobs} local process{'es' if jobs > 1 else ''}"
        self._pool: ProcessPoolExecutor | None = None

    def run(self, cells: Sequence[Cell], threads: int) -> Iterator[CellOutcome]:
        if not cells:
            return
        # spawn, not fork: the parent holds solver libraries and threads (tqdm's monitor)
        self._pool = ProcessPoolExecutor(
            max_workers=min(self.jobs, len(cells)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(os.getpid(),),
        )
        with _sigint_ignored():  # the pool spawns its processes here
            futures: dict[Future[CellOutcome], Cell] = {
                self._pool.submit(run_cell, cell, threads): cell for cell in cells
            }
        for future in as_completed(futures):
            exc = future.exception()
            if isinstance(exc, BrokenProcessPool):
                raise WorkerLost(f"a worker process died ({exc})")
            yield failed_outcome(futures[future], threads, exc) if exc else future.result()

    def close(self, abort: bool = False) -> None:
        if self._pool is None:
            return
        # concurrent.futures has no public way to stop running tasks before Python 3.14
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=not abort, cancel_futures=True)
        if abort:
            for process in processes:
                if process.is_alive():
                    process.terminate()
            for process in processes:
                process.join(timeout=5)
        self._pool = None


class DaskCluster:
    """Dask distributed: an existing scheduler (`--scheduler`) or a loopback LocalCluster of
    `local_workers` single-threaded worker processes (`--dask-local N`)."""

    def __init__(self, scheduler: str | None = None, local_workers: int | None = None) -> None:
        distributed = _import_distributed()
        self._as_completed = distributed.as_completed
        self._cluster: Any = None
        self._futures: list[Any] = []
        if scheduler is not None:
            try:
                self._client = distributed.Client(scheduler, timeout="10s")
            except (OSError, TimeoutError, ValueError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                reason = first or type(exc).__name__
                raise MilpMapError(
                    f"cannot reach the Dask scheduler at {scheduler} ({reason})"
                ) from None
            self.description = f"Dask scheduler {scheduler}"
        else:
            with _sigint_ignored():
                self._cluster = distributed.LocalCluster(
                    n_workers=local_workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            self._client = distributed.Client(self._cluster)
            self.description = f"Dask LocalCluster of {local_workers} worker(s) on 127.0.0.1"

    def run(self, cells: Sequence[Cell], threads: int) -> Iterator[CellOutcome]:
        futures = {self._client.submit(run_cell, cell, threads, pure=False): cell for cell in cells}
        self._futures = list(futures)
        for future in self._as_completed(futures):
            if future.status == "finished":
                yield future.result()
            elif future.status == "error":  # e.g. KilledWorker: the cell crashed its workers
                yield failed_outcome(futures[future], threads, future.exception())
            future.release()

    def close(self, abort: bool = False) -> None:
        if abort and self._futures:
            self._client.cancel(self._futures)
        self._futures = []
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(
    jobs: int, scheduler: str | None = None, dask_local: int | None = None
) -> Executor:
    """The executor the command line asks for: Dask if named, else local processes."""
    if scheduler is not None or dask_local is not None:
        return DaskCluster(scheduler, dask_local)
    return InProcess() if jobs == 0 else LocalProcesses(jobs)


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise MilpMapError(
            "--scheduler and --dask-local need Dask: pip install 'milp_map[dask]'"
        ) from None
    return distributed


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Processes started in this block inherit an ignored SIGINT (through exec): Ctrl-C in
    the terminal reaches the whole process group, but it is the parent's to handle (it
    cancels the cells and stops the workers), not each worker's to die of mid-import."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


PARENT_POLL_S = 0.5
"""How often a worker checks that the sweep that started it is still alive."""


def _start_worker(parent_pid: int) -> None:
    """Workers leave Ctrl-C to the parent, which stops them (solvers catch it themselves and
    return early; such a result is marked interrupted and not recorded), and end themselves
    when the parent is gone (SIGKILL, out of memory): no orphan keeps solving."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watchdog = threading.Thread(
        target=_exit_when_orphaned, args=(parent_pid,), name="parent-watchdog", daemon=True
    )
    watchdog.start()


def _exit_when_orphaned(parent_pid: int) -> None:
    """Poll the parent pid; once this process has been re-parented, exit at once (os._exit:
    the solver in the main thread cannot be asked nicely, and nothing is left to report to)."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
    os._exit(EXIT_ORPHANED)


EXIT_ORPHANED = 3
"""Exit code of a worker that ended itself because its sweep was gone."""
