"""User-facing errors: one line that names the file, field or layer at fault and what to do."""

from __future__ import annotations


class MilpMapError(Exception):
    """An input or request problem the user can fix; the CLI prints it on one line, exit code 2."""


class InfeasibleError(MilpMapError):
    """No mapping meets the bounds; the message names the bound and the best value reachable."""
