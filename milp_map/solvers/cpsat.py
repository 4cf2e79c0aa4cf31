"""OR-Tools CP-SAT backend: booleans, exactly-one, and costs scaled to integers.

CP-SAT needs integer coefficients. Normalised costs c (the worst-case total of a quantity is
<= 1) become round(c * R) with R = min(2 * K / RESOLUTION, MAX_SCALE), K the number of terms
active in any solution. The rounding then moves any solution's total by at most K / (2 R)
(RESOLUTION / 4 below the cap); bounds are relaxed by that much so no truly feasible mapping
is cut off, and the reported lower bound is lowered by it so it stays valid.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ortools.sat.python import cp_model

from milp_map.solvers.base import CAPABILITIES, SolveResult, SolverSettings, Terms, write_log

RESOLUTION = 1e-7
"""Relative resolution of CP-SAT's integer costs, as a fraction of the worst-case total.
It keeps coefficients near 1e7-1e9; at 1e-9 (~1e10) three test runs under load saw
'infeasible' on feasible random instances (not reproduced in isolation)."""

MAX_SCALE = 1e9
"""Integer units per normalised cost unit, at most: with ~10^4 active terms the resolution
alone asks for 2e11, and CP-SAT then claimed a wrong optimum (GoogLeNet split on
jetson-xavier: 'OPTIMAL' at 2.067 ms beside a feasible 1.966 ms; tests/test_solver_policy.py).
Above 2 * K / MAX_SCALE the rounding allowance exceeds RESOLUTION / 4 and the lowered bound
may leave a gap of a few 1e-6: such answers say `feasible`, never a false `optimal`."""

STATUS_OF_CODE = {
    cp_model.OPTIMAL: "optimal",
    cp_model.FEASIBLE: "feasible",
    cp_model.INFEASIBLE: "infeasible",
    cp_model.UNKNOWN: "time_limit",
    cp_model.MODEL_INVALID: "error",
}
"""CP-SAT's status codes in solution.STATUSES terms (every CP-SAT model reads them so)."""


class CpSatBackend:
    """Linear models through the Backend calls; scheduling models built on `model` directly
    (intervals, no-overlap, enforced rows) and solved by `solve_native`."""

    name = "cpsat"
    capabilities = CAPABILITIES["cpsat"]

    def __init__(self, max_active_terms: int) -> None:
        self.model = cp_model.CpModel()
        self.parameters: dict[str, Any] = {}
        """CP-SAT parameters a formulation sets for its model (e.g. linearization_level)."""
        self.active = max(1, max_active_terms)
        self.scale = min(2.0 * self.active / RESOLUTION, MAX_SCALE)
        self._objective: list[tuple[Any, int]] = []
        self._constant = 0.0

    def binary(self, name: str) -> Any:
        return self.model.new_bool_var(name)

    def implied_binary(self, name: str) -> Any:
        return self.model.new_bool_var(name)

    def add_exactly_one(self, variables: Sequence[Any]) -> None:
        self.model.add_exactly_one(variables)

    def add_equal(self, terms: Terms, rhs: int) -> None:
        self.model.add(sum(int(c) * v for v, c in terms) == int(rhs))

    def add_at_most_int(self, terms: Terms, rhs: int) -> None:
        self.model.add(sum(int(c) * v for v, c in terms) <= int(rhs))

    def add_at_most(self, terms: Terms, rhs: float, relax: bool = True) -> None:
        slack = self.active / 2.0 if relax else 0.0
        self.model.add(
            sum(self._int(c) * v for v, c in terms) <= math.floor(rhs * self.scale + slack)
        )

    def minimize(self, terms: Terms, constant: float = 0.0) -> None:
        self._objective = [(v, self._int(c)) for v, c in terms]
        self._constant = constant
        self.model.minimize(sum(c * v for v, c in self._objective))

    def hint(self, values: dict[Any, int]) -> None:
        self.model.clear_hints()
        for var, value in values.items():
            self.model.add_hint(var, value)

    def solve(self, settings: SolverSettings) -> SolveResult:
        native = self.solve_native(settings)
        rounding = self.active / 2.0

        def natural(value: float | None, shift: float = 0.0) -> float | None:
            return None if value is None else (value - shift) / self.scale + self._constant

        return dataclasses.replace(
            native, objective=natural(native.objective), bound=natural(native.bound, rounding)
        )

    def solve_native(self, settings: SolverSettings) -> SolveResult:
        """Solve `model` as built; objective and bound in the model's own integer units."""
        solver = configured_solver(settings, self.parameters)
        start = time.perf_counter()
        with _stopped_by(settings.stop, solver):
            code = solver.solve(self.model)  # CP-SAT stops itself on Ctrl-C (catch_sigint_signal)
        elapsed = time.perf_counter() - start
        status = STATUS_OF_CODE.get(code, "error")
        stopped = settings.stop is not None and settings.stop.is_set()
        interrupted = not stopped and _stopped_early(
            status, elapsed, solver.deterministic_time, settings
        )
        if status not in ("optimal", "feasible"):
            bound = solver.best_objective_bound if status == "time_limit" else math.nan
            return SolveResult(
                status,
                None,
                None,
                bound if math.isfinite(bound) else None,
                elapsed,
                solver.status_name(code),
                interrupted,
            )
        return SolveResult(
            status,
            _AllValues(solver),
            solver.objective_value,
            solver.best_objective_bound,
            elapsed,
            solver.status_name(code),
            interrupted,
        )

    def _int(self, coefficient: float) -> int:
        return round(coefficient * self.scale)


def configured_solver(
    settings: SolverSettings, parameters: dict[str, Any] | None = None
) -> cp_model.CpSolver:
    """A CpSolver with the project's settings (every CP-SAT model is solved through this) and
    a formulation's own `parameters` (CP-SAT field name -> value)."""
    solver = cp_model.CpSolver()
    params = solver.parameters
    for name, value in (parameters or {}).items():
        setattr(params, name, value)
    # One worker (the default) is deterministic. More run CP-SAT's parallel portfolio: faster
    # on some hard models, but tied optima may differ between runs. Interleaved search
    # (deterministic in parallel) was 3-10x slower and aborted OR-Tools 9.15 on a hinted
    # infeasible model, so it is not used.
    params.num_workers = max(1, settings.threads)
    params.random_seed = settings.seed
    if settings.time_limit_s is not None:
        params.max_time_in_seconds = settings.time_limit_s
    if settings.deterministic_time is not None:
        params.max_deterministic_time = settings.deterministic_time
    if settings.rel_gap is not None:
        params.relative_gap_limit = settings.rel_gap
    params.log_search_progress = settings.log
    if settings.log:
        params.log_to_stdout = False
        solver.log_callback = write_log
    params.catch_sigint_signal = _owns_ctrl_c()
    return solver


@contextlib.contextmanager
def _stopped_by(stop: threading.Event | None, solver: cp_model.CpSolver) -> Iterator[None]:
    """While CP-SAT searches, a watcher thread ends the search when `stop` is set (asking
    again until the solve returns: a request that lands before the search starts is lost)."""
    if stop is None:
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if stop.wait(0.05):
                solver.stop_search()
                done.wait(0.05)

    watcher = threading.Thread(target=watch, name="cpsat-stop", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def _owns_ctrl_c() -> bool:
    """CP-SAT may install its Ctrl-C handler only where Ctrl-C is meant for this solve: the main
    thread of a process that has not ignored SIGINT. Sweep workers ignore it (the parent
    handles Ctrl-C) and Dask runs tasks in threads; there CP-SAT's handler crashed workers."""
    if threading.current_thread() is not threading.main_thread():
        return False
    return signal.getsignal(signal.SIGINT) is not signal.SIG_IGN


def _stopped_early(status: str, elapsed: float, work: float, settings: SolverSettings) -> bool:
    """CP-SAT ends without a proof only at a limit or on Ctrl-C, which its own C-level handler
    catches (Python never sees it): before the time limit and the work limit, that was
    Ctrl-C."""
    if status not in ("feasible", "time_limit"):
        return False
    if settings.deterministic_time is not None and work >= 0.98 * settings.deterministic_time:
        return False
    return settings.time_limit_s is None or elapsed < 0.98 * settings.time_limit_s


class _AllValues(dict):
    """Lazy value lookup on a finished CP-SAT solver (formulations read only what they need)."""

    def __init__(self, solver: cp_model.CpSolver) -> None:
        super().__init__()
        self._solver = solver

    def __missing__(self, var: Any) -> float:
        return float(self._solver.value(var))
