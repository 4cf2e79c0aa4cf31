"""MILP backend through PuLP: HiGHS in-process (highspy) by default, CBC available.

PuLP 3 reports 'Optimal' after a time limit; the status here comes from HiGHS's own model
status and dual bound (or PuLP's `sol_status` for CBC, which gives no bound).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from functools import cache
from typing import Any

import highspy
import pulp

from milp_map.errors import MilpMapError
from milp_map.solvers.base import (
    CAPABILITIES,
    WATCHDOG_GRACE_S,
    CtrlC,
    SolveResult,
    SolverSettings,
    Terms,
)

DEFAULT_REL_GAP = 1e-7
"""HiGHS and CBC stop at 1e-4 by default; proving optimality needs a far smaller gap."""

HIGHS_THREADS = 1
"""HiGHS's branch and bound is serial and its thread pool busy-waits: with 2 threads per solve
and other solves beside it on 2 cores, a solve with a 0.01 s time limit spun for minutes."""

OBJECTIVE_SCALE = 1e4
"""Normalised objectives total <= 1, so single costs can sit near HiGHS's 1e-7 dual
tolerance and be treated as ties; the objective is multiplied by this before solving."""


class PulpBackend:
    """A PuLP model solved by HiGHS (in-process) or CBC; it also takes continuous variables."""

    def __init__(self, solver: str) -> None:
        if solver not in ("highs", "cbc"):
            raise MilpMapError(f"unknown MILP solver '{solver}'; choose highs or cbc")
        self.name = solver
        self.capabilities = CAPABILITIES[solver]
        self.problem = pulp.LpProblem("milp_map", pulp.LpMinimize)
        self._count = 0
        self._constant = 0.0
        self._hint: dict[Any, int] = {}

    def binary(self, name: str) -> Any:
        return self._variable(name, cat=pulp.LpBinary)

    def implied_binary(self, name: str) -> Any:
        return self._variable(name, lowBound=0.0, upBound=1.0)

    def continuous(self, name: str, low: float, high: float) -> Any:
        """A continuous variable in [low, high], named `name` as given (keep it unique)."""
        return self._new(name, lowBound=low, upBound=high)

    def _variable(self, name: str, **kwargs: Any) -> Any:
        return self._new(self._unique(name), **kwargs)

    def _new(self, name: str, **kwargs: Any) -> Any:
        """PuLP 3.3+ and 4 attach variables to the problem; older PuLP builds them freely."""
        if hasattr(self.problem, "add_variable"):
            return self.problem.add_variable(name, **kwargs)
        return pulp.LpVariable(name, **kwargs)

    def add_exactly_one(self, variables: Sequence[Any]) -> None:
        self.problem += pulp.lpSum(variables) == 1

    def add_equal(self, terms: Terms, rhs: int) -> None:
        self.problem += pulp.lpSum(c * v for v, c in terms) == rhs

    def add_at_most_int(self, terms: Terms, rhs: int) -> None:
        self.problem += pulp.lpSum(c * v for v, c in terms) <= rhs

    def add_at_most(self, terms: Terms, rhs: float, relax: bool = True) -> None:
        self.problem += pulp.lpSum(c * v for v, c in terms) <= rhs

    def minimize(self, terms: Terms, constant: float = 0.0) -> None:
        self._constant = constant
        self.problem.setObjective(pulp.lpSum(OBJECTIVE_SCALE * c * v for v, c in terms))

    def hint(self, values: dict[Any, int]) -> None:
        self._hint = dict(values)

    def solve(self, settings: SolverSettings) -> SolveResult:
        gap = settings.rel_gap if settings.rel_gap is not None else DEFAULT_REL_GAP
        warm = bool(self._hint)
        for var, value in self._hint.items():
            var.setInitialValue(value)
        start = time.perf_counter()
        limit_s = settings.seconds_left()
        if self.name == "highs":
            _silence_highs_banner()
            deadline = None
            if limit_s is not None:
                deadline = start + limit_s + WATCHDOG_GRACE_S
            logging = highspy.cb.HighsCallbackType.kCallbackLogging
            interrupt = CtrlC(
                deadline_s=deadline,
                log_kind=logging if settings.log else None,
                stop=settings.stop,
            )
            log_options = {"log_to_console": False} if settings.log else {}
            solver = pulp.HiGHS(
                msg=settings.log,
                timeLimit=limit_s,
                gapRel=gap,
                gapAbs=1e-12,
                threads=HIGHS_THREADS,
                random_seed=settings.seed,
                callbackTuple=(interrupt.callback, None),
                callbacksToActivate=[*_INTERRUPT_CALLBACKS, *([logging] if settings.log else [])],
                **log_options,
            )
            with interrupt:
                self.problem.solve(solver)
            result = self._read_highs(time.perf_counter() - start)
            result = dataclasses.replace(result, interrupted=interrupt.pressed)
            if interrupt.overran:
                detail = f"{result.detail}; the watchdog stopped HiGHS past its time limit"
                result = dataclasses.replace(result, detail=detail)
        else:
            solver = _cbc()(
                msg=settings.log,
                timeLimit=limit_s,
                gapRel=gap,
                threads=settings.threads,
                warmStart=warm,
                # CBC's preprocessing reported wrong optima (1.10x the true one on 2 of 800
                # random instances, "cuts at root changed objective to -1.8e308"); without it
                # 0 of 800, and faster on them
                options=[f"randomSeed {settings.seed + 1}", "preprocess off"],
            )
            self.problem.solve(solver)
            result = self._read_cbc(time.perf_counter() - start)
        return result

    def _read_highs(self, elapsed: float) -> SolveResult:
        import highspy

        highs = self.problem.solverModel
        model_status = highs.getModelStatus()
        info = highs.getInfo()
        status_name = highs.modelStatusToString(model_status)
        has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
        if model_status == highspy.HighsModelStatus.kInfeasible:
            return SolveResult("infeasible", None, None, None, elapsed, status_name)
        if not has_solution:
            status = "time_limit" if model_status in _LIMITS else "error"
            bound = info.mip_dual_bound if status == "time_limit" else math.nan
            bound = bound / OBJECTIVE_SCALE + self._constant if math.isfinite(bound) else None
            return SolveResult(status, None, None, bound, elapsed, status_name)
        status = "optimal" if model_status == highspy.HighsModelStatus.kOptimal else "feasible"
        objective = self.problem.objective.value() / OBJECTIVE_SCALE + self._constant
        bound = info.mip_dual_bound / OBJECTIVE_SCALE + self._constant
        return SolveResult(status, _PulpValues(), objective, bound, elapsed, status_name)

    def _read_cbc(self, elapsed: float) -> SolveResult:
        status_name = pulp.LpStatus[self.problem.status]
        if self.problem.status == pulp.LpStatusInfeasible:
            return SolveResult("infeasible", None, None, None, elapsed, status_name)
        if self.problem.sol_status == pulp.LpSolutionOptimal:
            objective = self.problem.objective.value() / OBJECTIVE_SCALE + self._constant
            return SolveResult("optimal", _PulpValues(), objective, objective, elapsed, status_name)
        if self.problem.sol_status == pulp.LpSolutionIntegerFeasible:
            objective = self.problem.objective.value() / OBJECTIVE_SCALE + self._constant
            return SolveResult("feasible", _PulpValues(), objective, None, elapsed, status_name)
        return SolveResult("time_limit", None, None, None, elapsed, status_name)

    def _unique(self, name: str) -> str:
        self._count += 1
        return f"{name}_{self._count}"


def _cbc() -> Any:
    """PuLP's bundled CBC (PuLP 3) or a CBC found on the PATH (PuLP 4 dropped the bundle)."""
    bundled = getattr(pulp, "PULP_CBC_CMD", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if bundled is not None and bundled().available():
            return _quiet(bundled)
    if pulp.COIN_CMD().available():
        return pulp.COIN_CMD
    raise MilpMapError("CBC is not available: install it (`pip install pulp[cbc]`) or use highs")


def _quiet(cls: Any) -> Any:
    def make(**kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return cls(**kwargs)

    return make


@cache
def _silence_highs_banner() -> None:
    """HiGHS prints a copyright banner on its first construction in a process; swallow it."""
    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _limits() -> tuple[Any, ...]:
    import highspy

    s = highspy.HighsModelStatus
    return (s.kTimeLimit, s.kInterrupt, s.kIterationLimit, s.kSolutionLimit, s.kObjectiveBound)


_LIMITS = _limits()

_INTERRUPT_CALLBACKS = [
    highspy.cb.HighsCallbackType.kCallbackMipInterrupt,
    highspy.cb.HighsCallbackType.kCallbackSimplexInterrupt,
    highspy.cb.HighsCallbackType.kCallbackIpmInterrupt,
]
"""Where HiGHS asks whether to stop: branch and bound, and the LP solves inside it."""


class _PulpValues(dict):
    """Variable values read from PuLP variables after a solve."""

    def __missing__(self, var: Any) -> float:
        return float(var.varValue or 0.0)
