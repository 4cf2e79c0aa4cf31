"""OR-Tools CP-SAT backend: booleans, exactly-one, and costs scaled to integers.

CP-SAT needs integer coefficients. Normalised costs c (the worst-case total of a quantity is
<= 1) become round(c * R) with R = min(2 * K / RESOLUTION, MAX_SCALE), K the number of terms
active in any solution. The rounding then moves any solution's total by at most K / (2 R)
(RESOLUTION / 4 below the cap); bounds are relaxed by that much so no truly feasible mapping
is cut off, and the reported lower bound is lowered by it so it stays valid. An answer that
breaks a relaxed bound in exact arithmetic (possible only within K / (2 R) of it) is solved
again with that bound tightened by as much, which admits only truly feasible mappings; the
relaxed solve's bound stays the proven one.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Sequence
from typing import Any

from ortools.sat.python import cp_model

from milp_map.solvers.base import (
    CAPABILITIES,
    MIN_SOLVE_S,
    CtrlC,
    SolveResult,
    SolverSettings,
    Terms,
    write_log,
)

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
        self._relaxed: list[_Row] = []
        """Bounds widened by the rounding allowance, checked again in exact arithmetic."""

    def binary(self, name: str) -> Any:
        return self.model.new_bool_var(name)

    def implied_binary(self, name: str) -> Any:
        return self.model.new_bool_var(name)

    def add_exactly_one(self, variables: Sequence[Any]) -> None:
        self.model.add_exactly_one(variables)

    def add_equal(self, terms: Terms, rhs: int) -> None:
        self.model.add(_weighted(terms, int) == int(rhs))

    def add_at_most_int(self, terms: Terms, rhs: int) -> None:
        self.model.add(_weighted(terms, int) <= int(rhs))

    def add_at_most(self, terms: Terms, rhs: float, relax: bool = True) -> None:
        slack = self.active / 2.0 if relax else 0.0
        self.model.add(_weighted(terms, self._int) <= math.floor(rhs * self.scale + slack))
        if relax:
            self._relaxed.append(_Row(tuple(terms), rhs))

    def minimize(self, terms: Terms, constant: float = 0.0) -> None:
        self._objective = [(v, self._int(c)) for v, c in terms]
        self._constant = constant
        self.model.minimize(sum(c * v for v, c in self._objective))

    def hint(self, values: dict[Any, int]) -> None:
        self.model.clear_hints()
        for var, value in values.items():
            self.model.add_hint(var, value)

    def solve(self, settings: SolverSettings) -> SolveResult:
        native = self._solve_within_bounds(settings)
        rounding = self.active / 2.0

        def natural(value: float | None, shift: float = 0.0) -> float | None:
            return None if value is None else (value - shift) / self.scale + self._constant

        return dataclasses.replace(
            native, objective=natural(native.objective), bound=natural(native.bound, rounding)
        )

    def _solve_within_bounds(self, settings: SolverSettings) -> SolveResult:
        """`solve_native`, again with tightened rows while an answer breaks a relaxed bound in
        exact arithmetic; the first (relaxed) solve's bound is kept: the tightened model may
        have cut off feasible mappings within the rounding allowance of a bound."""
        settings = settings.with_deadline()  # the re-solves share the solve's time limit
        # a model solved again after an earlier solve tightened a row proves no bound
        proven = not any(row.tightened for row in self._relaxed)
        first = result = self.solve_native(settings)
        if not proven:  # an unproven model proves nothing: no bound, no optimum, no infeasibility
            status = {"optimal": "feasible", "infeasible": "error"}.get(first.status, first.status)
            first = result = dataclasses.replace(first, bound=None, status=status)
        start = time.perf_counter()
        while result.values is not None:
            broken = [row for row in self._relaxed if not row.tightened and row.broken(result)]
            if not broken:
                break
            if result.interrupted or (settings.stop is not None and settings.stop.is_set()):
                return dataclasses.replace(
                    first, status="time_limit", values=None, objective=None, interrupted=True
                )
            for row in broken:
                row.tightened = True
                self.model.add(
                    sum(self._int(c) * v for v, c in row.terms)
                    <= math.floor(row.rhs * self.scale - self.active / 2.0)
                )
            self.model.clear_hints()
            remaining = _remaining(settings)
            if remaining is None:
                return dataclasses.replace(
                    first,
                    status="time_limit",
                    values=None,
                    objective=None,
                    detail=f"{first.detail}; its mapping broke a bound by CP-SAT's rounding",
                )
            result = self.solve_native(remaining)
            if result.status == "infeasible":
                return dataclasses.replace(
                    result,
                    status="error",
                    values=None,
                    objective=None,
                    bound=first.bound,
                    detail="CP-SAT's integer rounding cannot decide a bound this close to the "
                    "optimum; use --solver highs",
                )
        if result is first:
            return first
        return dataclasses.replace(
            result,
            # the narrowed model may have cut off mappings: its OPTIMAL is no proof
            status="feasible" if result.status == "optimal" else result.status,
            bound=first.bound,
            solve_time_s=first.solve_time_s + time.perf_counter() - start,
            detail=f"{result.detail} (a bound tightened by the rounding allowance)",
            interrupted=first.interrupted or result.interrupted,
        )

    def solve_native(self, settings: SolverSettings) -> SolveResult:
        """Solve `model` as built; objective and bound in the model's own integer units."""
        solver = configured_solver(settings, self.parameters)
        start = time.perf_counter()
        code, interrupted = _searched(solver, self.model, settings.stop)
        elapsed = time.perf_counter() - start
        status = STATUS_OF_CODE.get(code, "error")
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
    limit_s = settings.seconds_left()
    if limit_s is not None:
        params.max_time_in_seconds = limit_s
    if settings.deterministic_time is not None:
        params.max_deterministic_time = settings.deterministic_time
    if settings.rel_gap is not None:
        params.relative_gap_limit = settings.rel_gap
    params.log_search_progress = settings.log
    if settings.log:
        params.log_to_stdout = False
        solver.log_callback = write_log
    params.catch_sigint_signal = False  # Ctrl-C and SIGTERM: `_searched`
    return solver


def _searched(
    solver: cp_model.CpSolver, model: cp_model.CpModel, stop: threading.Event | None
) -> tuple[Any, bool]:
    """CP-SAT's status code for `model`, and whether Ctrl-C (or SIGTERM, which the command
    lines turn into Ctrl-C) ended the search early.

    The search runs in a thread while this one waits: a Python signal handler runs only
    between bytecodes of the main thread, so a SIGTERM that lands while CP-SAT searches in
    the main thread would wait for the search to end (and CP-SAT's own Ctrl-C handler hides
    whether it fired). `stop` set by another thread ends the search too; the request is
    repeated until the search returns, as one that lands before it starts is lost.
    """
    codes: list[Any] = []
    errors: list[BaseException] = []

    def search() -> None:
        try:
            codes.append(solver.solve(model))
        except BaseException as exc:  # raised again in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=search, name="cpsat-search", daemon=True)
    with CtrlC(stop=stop) as ctrl_c:
        thread.start()
        while thread.is_alive():
            thread.join(0.05)
            if ctrl_c.pressed or (stop is not None and stop.is_set()):
                solver.stop_search()
    if errors:
        raise errors[0]
    return codes[0], ctrl_c.pressed


@dataclasses.dataclass
class _Row:
    """A bound row as built (float coefficients, normalised units), for the exact check."""

    terms: tuple[tuple[Any, float], ...]
    rhs: float
    tightened: bool = False

    def broken(self, result: SolveResult) -> bool:
        values = result.values
        assert values is not None
        return math.fsum(c * values[v] for v, c in self.terms) > self.rhs


def _remaining(settings: SolverSettings) -> SolverSettings | None:
    """`settings` for one more solve before their deadline (None: no time left)."""
    if settings.deadline_s is None:
        return settings
    left = settings.deadline_s - time.perf_counter()
    return dataclasses.replace(settings, time_limit_s=left) if left > MIN_SOLVE_S else None


class _AllValues(dict):
    """Lazy value lookup on a finished CP-SAT solver (formulations read only what they need)."""

    def __init__(self, solver: cp_model.CpSolver) -> None:
        super().__init__()
        self._solver = solver

    def __missing__(self, var: Any) -> float:
        return float(self._solver.value(var))


def _weighted(terms: Terms, coefficient: Any) -> Any:
    """sum c * v as one CP-SAT expression built in C++ (a Python `sum` of products builds a
    tree node per term: most of a ResNet-50 channel-split model's build time)."""
    variables = [v for v, _ in terms]
    return cp_model.LinearExpr.weighted_sum(variables, [coefficient(c) for _, c in terms])
