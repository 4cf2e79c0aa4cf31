"""Exact Pareto fronts of two quantities by epsilon-constraint sweeps (formulations/pareto.md).

Each point is a lexicographic optimum proven by an exact solver, so the front is the true
non-dominated set (to the sweep's resolution `delta`), not a heuristic approximation of it.
A layer-wise problem whose graph is narrow (chains, residual and inception blocks, YOLO's
routes) takes a label-setting DP instead (exact/label_front.py): the same front, every point
of it, in one pass.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from milp_map.core.problem import Problem, active_bounds
from milp_map.core.solution import Front, Solution
from milp_map.defaults import QUANTITIES
from milp_map.errors import MilpMapError
from milp_map.evaluation.report import format_si
from milp_map.exact import label_front

SolveFn = Callable[[str, Mapping[str, float], Any], Solution]
"""solve_fn(objective, bounds, hint) -> Solution. `bounds` are upper bounds in natural units
(quantity -> value) and include the problem's own; `hint` is a previous Solution's
extra["choice"] (opaque to the sweep) or None."""


class SweptProblem(Protocol):
    """What the sweep reads of a problem: `Problem` and `channels.SplitProblem` both fit.

    Pass the object the formulation normalises by: the sweep undoes its bound relaxation
    `tolerance(q)` exactly."""

    @property
    def scales(self) -> Mapping[str, float]: ...

    def bound(self, quantity: str) -> float | None: ...

    def tolerance(self, quantity: str) -> float: ...


DELTA_OF_SCALE = 1e-5
"""Default sweep step, as a fraction of the scale of f2 (points closer in f2 are merged). It
must exceed the solvers' own feasibility slack, or a step can return the last point again:
HiGHS accepts rows violated by 1e-6 of the normalised scale (mip_feasibility_tolerance)."""

FRONT_METHODS = ("auto", "epsilon-constraint", "label-dp")
"""exact_front(method=...): auto takes the label DP where it applies, else the sweep."""


def parse_quantities(text: str) -> tuple[str, str]:
    """'latency,energy' -> ('latency', 'energy'); errors name the allowed quantities."""
    names = tuple(part.strip() for part in text.split(","))
    if len(names) != 2 or names[0] == names[1] or not set(names) <= set(QUANTITIES):
        raise MilpMapError(
            f"--pareto takes two different quantities out of {', '.join(QUANTITIES)} "
            f"separated by a comma (e.g. latency,energy), got '{text}'"
        )
    return names[0], names[1]


def exact_front(
    problem: SweptProblem,
    solve_fn: SolveFn,
    quantities: tuple[str, str],
    points: int | None = None,
    progress: bool = True,
    *,
    delta: float | None = None,
    method: str = "auto",
    time_limit_s: float | None = None,
) -> Front:
    """The exact non-dominated set of (f1, f2) within the problem's own bounds.

    `method="auto"` computes it with the label DP (exact/label_front.py) when `problem` is
    a layer-wise Problem whose frontiers are narrow (label_front.applies), and with the
    epsilon-constraint sweep (`_sweep`, calling `solve_fn`) otherwise, or when the DP's label
    cap is exceeded (one line on stderr says so). "epsilon-constraint" always sweeps;
    "label-dp" refuses a problem it does not apply to.

    `delta` is the resolution in f2: a non-dominated point less than delta below the last
    kept point in f2 is skipped (the one with the lower f1 is kept). The sweep needs one and
    defaults to DELTA_OF_SCALE * scale of f2 (its bound slack also merges points within the
    tolerance of f1). The DP has no resolution: it returns every non-dominated point, or,
    given a `delta`, those the delta rule keeps. `points=N` instead thins the full, computed
    front to N points for output. `time_limit_s` holds the DP as a whole (one step; the
    sweep's steps take theirs from `solve_fn`): stopped, it returns its first pass's
    mappings as an incomplete front of `feasible` points.
    """
    f1, f2 = quantities
    if f1 == f2 or f1 not in QUANTITIES or f2 not in QUANTITIES:
        raise MilpMapError(f"a front needs two different quantities of {QUANTITIES}")
    if method not in FRONT_METHODS:
        raise MilpMapError(f"unknown front method '{method}'; choose one of {FRONT_METHODS}")
    if delta is not None and not delta > 0:
        raise ValueError(f"delta must be > 0, got {delta}")
    narrow = isinstance(problem, Problem) and label_front.applies(problem)
    if method == "label-dp" and not narrow:
        raise MilpMapError(
            "the label DP needs a layer-wise problem with at most "
            f"{label_front.MAX_STATES} accelerator tuples per frontier; use epsilon-constraint"
        )
    front, note = None, ""
    if narrow and method != "epsilon-constraint":
        assert isinstance(problem, Problem)
        front, note = _label_dp(problem, (f1, f2), delta, time_limit_s)
    if front is None:
        front = _sweep(problem, solve_fn, (f1, f2), progress, delta)
        if note:
            front = dataclasses.replace(front, detail="; ".join(filter(None, [note, front.detail])))
    return front if points is None else thin(front, points)


def _label_dp(
    problem: Problem,
    quantities: tuple[str, str],
    delta: float | None,
    time_limit_s: float | None,
) -> tuple[Front | None, str]:
    """The front by label setting, or (None, why) when the label cap is exceeded."""
    start = time.perf_counter()
    deadline = None if time_limit_s is None else start + time_limit_s
    try:
        result = label_front.label_front(problem, quantities, label_front.MAX_LABELS, deadline)
    except label_front.LabelCapExceeded as exc:
        note = f"{exc}; falling back to the epsilon-constraint sweep"
        print(f"note: {note}", file=sys.stderr)
        return None, note
    except (KeyboardInterrupt, label_front.LabelDeadline) as exc:
        elapsed = time.perf_counter() - start
        interrupted = isinstance(exc, KeyboardInterrupt)
        why = "interrupted" if interrupted else "time limit"
        detail = f"{why} during the label DP's first pass: no mapping yet"
        front = Front(
            quantities,
            (),
            False,
            elapsed,
            detail=detail,
            method="label-dp",
            interrupted=interrupted,
        )
        return front, ""
    points = list(result.points)
    if delta is not None:
        points = _spaced(points, quantities[1], delta)
    detail = ""
    if result.stopped:
        detail = (
            f"{result.stopped} during the label DP: the points are its first pass's "
            "mappings, not proven non-dominated"
        )
    front = Front(
        quantities=quantities,
        points=tuple(points),
        complete=not result.stopped,
        solve_time_s=result.solve_time_s,
        delta=0.0 if delta is None else delta,
        detail=detail,
        method="label-dp",
        interrupted=result.stopped == "interrupted",
    )
    return front, ""


def _spaced(points: list[Solution], f2: str, delta: float) -> list[Solution]:
    """What the sweep's step `delta` keeps of a full front sorted by f1: the first point,
    then each next one at least delta below the last kept in f2."""
    kept: list[Solution] = []
    for p in points:
        if not kept or _value(p, f2) <= _value(kept[-1], f2) - delta:
            kept.append(p)
    return kept


def _sweep(
    problem: SweptProblem,
    solve_fn: SolveFn,
    quantities: tuple[str, str],
    progress: bool,
    delta: float | None,
) -> Front:
    """The epsilon-constraint sweep on f2 (formulations/pareto.md, Algorithm).

    Step 0 minimises f1, then f2 subject to f1 <= that minimum (lexicographic, so the point is
    non-dominated, not only weakly). Each later step requires f2 <= f2(last point) - delta and
    repeats both solves; the sweep ends when that is infeasible. The problem's own bounds
    always apply. Each solve is hinted with the previous point's mapping.

    A step that stops at a time limit with a mapping keeps the point (status "feasible") and
    marks the front incomplete; a step with no mapping ends the sweep incomplete; Ctrl-C
    returns the points found so far, incomplete.
    """
    f1, f2 = quantities
    delta = DELTA_OF_SCALE * problem.scales[f2] if delta is None else delta
    own = active_bounds(problem)
    found: list[Solution] = []
    complete, detail = True, ""
    bounds, hint = dict(own), None
    start = time.perf_counter()
    bar = tqdm(
        desc=f"pareto {f1},{f2}", unit="pt", file=sys.stderr, disable=not progress, mininterval=1.0
    )
    interrupted = False
    try:
        while True:
            bar.set_postfix_str(f"{f2} <= {_format(f2, bounds.get(f2))}")
            point, stop = _lexicographic_step(solve_fn, f1, f2, bounds, hint)
            if point is not None and point.extra.get("interrupted"):
                found.append(point)
                raise KeyboardInterrupt
            if point is None:
                if stop != "infeasible":
                    complete, detail = False, f"a step stopped with status {stop}"
                break
            if found and _value(point, f2) >= _value(found[-1], f2):
                complete, detail = False, f"no progress below {f2} {_value(point, f2):.6g}"
                break
            found.append(point)
            bar.update(1)
            if point.status != "optimal":
                complete, detail = False, "a step was not proven optimal (time limit or gap)"
            # the formulation relaxes every bound by the problem's tolerance: undo that here,
            # so the next point is at least delta below this one
            bounds = {**own, f2: _value(point, f2) - delta - problem.tolerance(f2)}
            hint = point.extra.get("choice")
    except KeyboardInterrupt:
        complete, detail, interrupted = False, f"interrupted after {len(found)} points", True
    finally:
        bar.close()
    return Front(
        quantities=(f1, f2),
        points=tuple(_non_dominated(found, f1, f2)),
        complete=complete,
        solve_time_s=time.perf_counter() - start,
        delta=delta,
        detail=detail,
        interrupted=interrupted,
    )


def thin(front: Front, n: int) -> Front:
    """Keep n points spread evenly by path length along the front (both extremes always).

    Path length is measured with each quantity normalised by its range on the front.
    """
    if n < 2:
        raise MilpMapError(f"--points keeps both ends of the front, so it must be >= 2, got {n}")
    total = len(front.points)
    if total <= n:
        return front
    values = np.array(front.values(), dtype=float)
    span = np.ptp(values, axis=0)
    steps = np.hypot(*(np.diff(values, axis=0) / np.where(span > 0, span, 1.0)).T)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    keep = [0]
    for k, target in enumerate(np.linspace(0.0, arc[-1], n)[1:-1], start=1):
        nearest = int(np.argmin(np.abs(arc - target)))
        keep.append(min(max(nearest, keep[-1] + 1), total - 1 - (n - 1 - k)))
    keep.append(total - 1)
    note = f"thinned to {n} of {total} points (the full front was computed)"
    return dataclasses.replace(
        front,
        points=tuple(front.points[i] for i in keep),
        complete=False,
        thinned=front.complete,
        detail="; ".join(filter(None, [front.detail, note])),
    )


def hypervolume_2d(points: Sequence[tuple[float, float]], reference: tuple[float, float]) -> float:
    """Area dominated by `points` and bounded by `reference` (both quantities minimised).

    Points not strictly better than the reference in both quantities add nothing.
    """
    rx, ry = reference
    area, lowest_y = 0.0, ry
    for x, y in sorted((x, y) for x, y in points if x < rx and y < ry):
        if y < lowest_y:
            area += (rx - x) * (lowest_y - y)
            lowest_y = y
    return area


def _lexicographic_step(
    solve_fn: SolveFn, f1: str, f2: str, bounds: Mapping[str, float], hint: Any
) -> tuple[Solution | None, str]:
    """min f1 under `bounds`, then min f2 with f1 <= that minimum: (point, stop status)."""
    first = solve_fn(f1, bounds, hint)
    if first.status not in ("optimal", "feasible") or first.metrics is None:
        return None, first.status
    if first.extra.get("interrupted"):
        return dataclasses.replace(first, status="feasible"), ""
    f1_best = _value(first, f1)
    tighter = {**bounds, f1: min(bounds.get(f1, f1_best), f1_best)}
    second = solve_fn(f2, tighter, first.extra.get("choice"))
    usable = second.status in ("optimal", "feasible") and second.metrics is not None
    better = usable and (second.status == "optimal" or _value(second, f2) <= _value(first, f2))
    point = second if better else first
    proven = first.status == "optimal" and second.status == "optimal" and point is second
    gaps = [g for g in (first.gap, second.gap) if g is not None]
    return dataclasses.replace(
        point,
        status="optimal" if proven else "feasible",
        solve_time_s=first.solve_time_s + second.solve_time_s,
        extra={
            **point.extra,
            "steps": (first.status, second.status),
            "interrupted": bool(second.extra.get("interrupted")),
            "gap": max(gaps) if gaps else None,
        },
    ), ""


def _non_dominated(points: list[Solution], f1: str, f2: str) -> list[Solution]:
    """Sorted by f1; drops points another dominates (only unproven steps can produce them)."""
    ordered = sorted(points, key=lambda p: (_value(p, f1), _value(p, f2)))
    kept: list[Solution] = []
    for p in ordered:
        if not kept or _value(p, f2) < _value(kept[-1], f2):
            kept.append(p)
    return kept


def _value(solution: Solution, quantity: str) -> float:
    assert solution.metrics is not None
    return solution.metrics.value(quantity)


def _format(quantity: str, value: float | None) -> str:
    if value is None:
        return "-"
    if quantity == "proxy":
        return f"{value:.4g}"
    return format_si(value, "s" if quantity == "latency" else "J")
