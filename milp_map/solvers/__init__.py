"""Solver facade: formulations build against a `Backend`; results come back as `SolveResult`."""

from __future__ import annotations

from milp_map.defaults import SOLVERS
from milp_map.errors import MilpMapError
from milp_map.solvers.base import Backend, SolveResult, SolverSettings


def make_backend(solver: str, max_active_terms: int) -> Backend:
    """A fresh model for `solver`; optional solvers import lazily."""
    if solver == "cpsat":
        from milp_map.solvers.cpsat import CpSatBackend

        return CpSatBackend(max_active_terms)
    if solver in ("highs", "cbc"):
        from milp_map.solvers.mip import PulpBackend

        return PulpBackend(solver)
    raise MilpMapError(f"unknown solver '{solver}'; choose one of {', '.join(SOLVERS)}")


__all__ = ["SOLVERS", "Backend", "SolveResult", "SolverSettings", "make_backend"]
