"""Solver facade: formulations build against a `Backend`; results come back as `SolveResult`."""

from __future__ import annotations

from milp_map.defaults import SOLVERS
from milp_map.errors import MilpMapError
from milp_map.solvers.base import CAPABILITIES, LINEAR, Backend, SolveResult, SolverSettings


def make_backend(
    solver: str, max_active_terms: int = 1, needs: frozenset[str] = frozenset({LINEAR})
) -> Backend:
    """A fresh model for `solver` that offers the capabilities a formulation `needs`
    (solvers/base.py, CAPABILITIES); optional solvers import lazily."""
    if solver not in CAPABILITIES:
        raise MilpMapError(f"unknown solver '{solver}'; choose one of {', '.join(SOLVERS)}")
    missing = sorted(needs - CAPABILITIES[solver])
    if missing:
        able = [s for s, offered in CAPABILITIES.items() if needs <= offered]
        raise MilpMapError(
            f"solver '{solver}' cannot build a model that needs {', '.join(missing)}; "
            f"use {' or '.join(able)}"
        )
    if solver == "cpsat":
        from milp_map.solvers.cpsat import CpSatBackend

        return CpSatBackend(max_active_terms)
    from milp_map.solvers.mip import PulpBackend

    return PulpBackend(solver)


__all__ = ["SOLVERS", "Backend", "SolveResult", "SolverSettings", "make_backend"]
