"""Solve one sweep cell: the function every executor (local processes, Dask) runs.

It builds the cell's problem, runs its method and returns the table row and the mapping JSON;
it never raises for a bad cell (bad model, infeasible budget, solver error): the row says
what went wrong in one line, so one cell cannot stop a sweep of thousands. Writing files is
left to the process that owns the results folder, so workers need no access to it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from milp_map import pipeline
from milp_map.core.platform import Platform
from milp_map.core.problem import Problem
from milp_map.core.solution import Solution
from milp_map.core.split import SplitProblem, Target, base_problem
from milp_map.errors import MilpMapError
from milp_map.evaluation.report import solution_json
from milp_map.experiments.methods import run_method
from milp_map.experiments.sweep.grid import EXACT_METHODS, Cell, compare_methods
from milp_map.io.platforms import PlatformSpec, platform_from_spec
from milp_map.io.problems import load_problem
from milp_map.solvers import SolverSettings

SOLVED = ("optimal", "feasible")
"""Statuses with a mapping; every other status counts as a failed cell."""


@dataclass(frozen=True)
class CellOutcome:
    """What a worker sends back: the row (inputs, results, run facts) and the mapping JSON."""

    key: str
    row: dict[str, Any]
    mapping: dict[str, Any] | None = None
    interrupted: bool = False
    """Ctrl-C stopped the solve early: not a result, the cell is not recorded."""

    @property
    def failed(self) -> bool:
        return self.row["status"] not in SOLVED


def run_cell(cell: Cell, threads: int) -> CellOutcome:
    """Solve `cell` with `threads` solver threads; errors become a row, never an exception."""
    start = time.perf_counter()
    try:
        target = cell_problem(cell)
        problem = base_problem(target)
        solution = solve_cell(cell, target, threads)
    except MilpMapError as exc:
        return _outcome(cell, threads, start, status="error", error=_one_line(exc))
    except Exception as exc:  # a bug or a library failure: still one row, not a dead sweep
        return _outcome(cell, threads, start, status="error", error=_one_line(exc, typed=True))
    extra: dict[str, Any] = {"granularity": cell.params["granularity"]}
    if isinstance(target, SplitProblem):
        extra["group_size"] = target.group_size
    extra["cell"] = {"key": cell.key, **cell.params}
    mapping = solution_json(problem, solution, extra) if solution.metrics is not None else None
    error = solution.detail if solution.status not in SOLVED else ""
    if solution.status == "infeasible":
        error = "no mapping meets the bounds"
    return _outcome(
        cell,
        threads,
        start,
        status=solution.status,
        error=error,
        solution=solution,
        problem=problem,
        mapping=mapping,
        interrupted=bool(solution.extra.get("interrupted")),
    )


def failed_outcome(cell: Cell, threads: int, exc: BaseException) -> CellOutcome:
    """The row of a cell whose task died outside `run_cell` (e.g. a Dask worker was lost)."""
    return _outcome(cell, threads, time.perf_counter(), status="error", error=_one_line(exc, True))


def cell_problem(cell: Cell) -> Target:
    """The cell's problem, as `python -m milp_map.solve` builds it (a split problem for
    channel granularity)."""
    p = cell.params
    return load_problem(
        cell.model_path,
        _platform(json.dumps(cell.platform_spec, sort_keys=True), cell.platform_file),
        objective=p["objective"],
        sensitivity=cell.sensitivity_path,
        max_latency_s=p["max_latency_s"],
        max_energy_j=p["max_energy_j"],
        max_proxy=p["max_proxy"],
        max_proxy_fraction=p["max_proxy_fraction"],
        granularity=p["granularity"],
        group_size=p["group_size"],
    )


def solve_cell(cell: Cell, target: Target, threads: int) -> Solution:
    """Run the cell's method on its problem: the solve pipeline, or a compared method."""
    p = cell.params
    if p["method"] not in EXACT_METHODS:
        return _run_compare_method(p, target, threads)
    settings = SolverSettings(
        time_limit_s=p["time_limit_s"], rel_gap=p["gap_limit"], threads=threads, seed=p["seed"]
    )
    return pipeline.solve(target, p["solver"], settings).solution


# ----------------------------------------------------------------------------- baselines


def _run_compare_method(
    p: dict[str, Any], target: Problem | SplitProblem, threads: int
) -> Solution:
    known = compare_methods()
    if p["method"] not in known:
        raise MilpMapError(
            f"unknown method '{p['method']}'; known: {', '.join((*EXACT_METHODS, *known))}"
        )
    return run_method(
        p["method"], target, seed=p["seed"], threads=threads, time_limit_s=p["time_limit_s"]
    )


# ----------------------------------------------------------------------------- rows


def _outcome(
    cell: Cell,
    threads: int,
    start: float,
    *,
    status: str,
    error: str,
    solution: Solution | None = None,
    problem: Problem | None = None,
    mapping: dict[str, Any] | None = None,
    interrupted: bool = False,
) -> CellOutcome:
    metrics = solution.metrics if solution is not None else None
    row: dict[str, Any] = {
        "key": cell.key,
        **cell.params,
        "status": status,
        "error": error or None,
        "backend": solution.method if solution is not None else None,
        "objective_value": solution.objective_value if solution is not None else None,
        "best_bound": solution.best_bound if solution is not None else None,
        "gap": solution.gap if solution is not None else None,
        "latency_s": metrics.latency_s if metrics else None,
        "energy_j": metrics.energy_j if metrics else None,
        "accuracy_proxy": metrics.accuracy_proxy if metrics else None,
        "proxy_budget": problem.proxy_budget if problem is not None else None,
        "units": len(problem.units) if problem is not None else None,
        "mapping_path": None,
        "threads": threads,
        "solve_time_s": solution.solve_time_s if solution is not None else None,
        "wall_time_s": time.perf_counter() - start,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return CellOutcome(cell.key, row, mapping, interrupted)


@lru_cache(maxsize=32)
def _platform(spec_json: str, source: str) -> Platform:
    """Platforms are rebuilt once per worker, not once per cell (cost tables are parsed)."""
    return platform_from_spec(PlatformSpec.model_validate(json.loads(spec_json)), Path(source))


def _one_line(exc: BaseException, typed: bool = False) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    if typed or not first:
        return f"{type(exc).__name__}: {first}".rstrip(": ")
    return first
