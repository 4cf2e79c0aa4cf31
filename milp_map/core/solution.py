"""What every method returns: a mapping, its metrics, and an honest solver status; and a front
of such answers for two quantities."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

STATUSES = ("optimal", "feasible", "infeasible", "time_limit", "error")
"""optimal: proven (within resolution); feasible: a mapping with a gap (time limit or --gap);
infeasible: proven that no mapping meets the bounds; time_limit: stopped with no mapping."""

OPTIMALITY_RTOL = 1e-6
OPTIMALITY_ATOL_OF_SCALE = 1e-7
"""A proven solution counts as optimal when value - bound <= max(OPTIMALITY_RTOL * |value|,
OPTIMALITY_ATOL_OF_SCALE * worst-case scale of the objective): a relative and an absolute
gap tolerance, as MILP solvers have; the absolute one covers CP-SAT's integer rounding."""


@dataclass(frozen=True)
class Part:
    """The share of one unit that runs on one accelerator."""

    accelerator: str
    operating_point: str | None = None
    channels: int | None = None
    """Output channels on this part; None means all of them (layer-wise mapping)."""
    channel_indices: tuple[int, ...] | None = None


UnitMapping = dict[str, tuple[Part, ...]]
"""unit name -> parts. Layer-wise mappings have one part per unit."""

MAPPING_COLUMNS = ("unit", "accelerator", "operating_point", "channels", "channel_indices")


@dataclass(frozen=True)
class Metrics:
    latency_s: float
    energy_j: float
    accuracy_proxy: float

    def value(self, quantity: str) -> float:
        return {"latency": self.latency_s, "energy": self.energy_j, "proxy": self.accuracy_proxy}[
            quantity
        ]

    def as_dict(self) -> dict[str, float]:
        return {
            "latency_s": self.latency_s,
            "energy_j": self.energy_j,
            "accuracy_proxy": self.accuracy_proxy,
        }


@dataclass(frozen=True)
class Solution:
    """A method's answer in one shape, whatever produced it."""

    method: str
    status: str
    objective: str
    mapping: UnitMapping | None = None
    metrics: Metrics | None = None
    best_bound: float | None = None
    solve_time_s: float = 0.0
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def objective_value(self) -> float | None:
        return None if self.metrics is None else self.metrics.value(self.objective)

    @property
    def gap(self) -> float | None:
        return relative_gap(self.objective_value, self.best_bound)

    @property
    def has_mapping(self) -> bool:
        return self.mapping is not None

    def to_frame(self) -> pd.DataFrame:
        """The mapping as a table, one row per part: unit, accelerator, operating_point,
        channels (None: the whole unit) and channel_indices; no rows without a mapping."""
        rows = [
            {
                "unit": unit,
                "accelerator": part.accelerator,
                "operating_point": part.operating_point,
                "channels": part.channels,
                "channel_indices": part.channel_indices,
            }
            for unit, parts in (self.mapping or {}).items()
            for part in parts
        ]
        return pd.DataFrame(rows, columns=list(MAPPING_COLUMNS))


def relative_gap(value: float | None, bound: float | None) -> float | None:
    """Relative gap between an objective value and its proven lower bound (None when there is
    no bound, or the value is 0 with a negative bound: no finite gap)."""
    if value is None or bound is None:
        return None
    if value == 0:
        return 0.0 if bound >= 0 else None
    return max(0.0, (value - bound) / abs(value))


def proves_optimal(value: float, bound: float | None, scale: float) -> bool:
    """Whether `bound` is within the optimality tolerances of `value` (see OPTIMALITY_RTOL)."""
    tolerance = max(OPTIMALITY_RTOL * abs(value), OPTIMALITY_ATOL_OF_SCALE * scale)
    return bound is not None and value - bound <= tolerance


def proven_solution(
    method: str,
    objective: str,
    result_status: str,
    result_bound: float | None,
    scale: float,
    requested_gap: float | None,
    **fields: Any,
) -> Solution:
    """A solver's answer as a Solution whose status says only what is proven.

    `result_bound` is in normalised units (times `scale`); a solver's "optimal" becomes
    "feasible" unless the bound is within the optimality tolerances of the mapping's value
    (or, with no bound at all, unless no looser gap than OPTIMALITY_RTOL was asked for).
    """
    metrics: Metrics = fields["metrics"]
    value = metrics.value(objective)
    bound = None if result_bound is None else min(result_bound * scale, value)
    unproven = bound is None and requested_gap is not None and requested_gap > OPTIMALITY_RTOL
    status = result_status
    if status == "optimal":  # the solver's own proof, within its numerics (portfolio.race)
        fields["extra"] = {**fields.get("extra", {}), "solver_proved": True}
    if status == "optimal" and (
        (bound is not None and not proves_optimal(value, bound, scale)) or unproven
    ):
        status = "feasible"
    return Solution(method=method, status=status, objective=objective, best_bound=bound, **fields)


FRONT_COLUMNS = ("latency_s", "energy_j", "accuracy_proxy", "status", "gap", "solve_time_s")


@dataclass(frozen=True)
class Front:
    """Non-dominated mappings for two quantities, sorted by the first ascending."""

    quantities: tuple[str, str]
    points: tuple[Solution, ...]
    """Each proven (status "optimal": both lexicographic steps proven) or flagged "feasible"."""
    complete: bool
    """False if a step hit a time limit, the sweep was interrupted, or the front was thinned."""
    solve_time_s: float
    delta: float = 0.0
    """The sweep's step in the second quantity (natural units); 0 for an unmerged DP front."""
    detail: str = ""
    """Why the front is incomplete, or how it was thinned."""
    method: str = "epsilon-constraint"
    """How it was computed: "epsilon-constraint" (sweep) or "label-dp" (label setting)."""
    interrupted: bool = False
    """Stopped by Ctrl-C (or SIGTERM): the command line then exits 130 after writing it."""
    thinned: bool = False
    """The whole front was computed and proven, and only `--points` dropped points from it
    (a requested summary, so the command line exits 0)."""

    def values(self) -> list[tuple[float, float]]:
        """(f1, f2) of every point, in natural units."""
        f1, f2 = self.quantities
        return [(p.metrics.value(f1), p.metrics.value(f2)) for p in self.points]  # type: ignore[union-attr]

    def to_frame(self) -> pd.DataFrame:
        """One row per point: latency_s, energy_j, accuracy_proxy, status, gap, solve_time_s."""
        rows = [
            {
                **(p.metrics.as_dict() if p.metrics else {}),
                "status": p.status,
                "gap": point_gap(p),
                "solve_time_s": p.solve_time_s,
            }
            for p in self.points
        ]
        return pd.DataFrame(rows, columns=list(FRONT_COLUMNS))


def point_gap(solution: Solution) -> float | None:
    """A front point's gap: the larger of its two lexicographic steps' (extra["gap"]), else its
    own."""
    return solution.extra.get("gap", solution.gap)
