"""Exact dynamic programme for layer-wise mapping of a chain: a third method to cross-check.

Units 0..U-1 in order, edges only between neighbours. The state is (option of the current
unit, proxy spent so far on a grid of `resolution`); a step adds the option's cost and the
transition from the previous unit's accelerator. Exact when every option's proxy is a
multiple of the resolution (else the answer is reported `feasible`, not `optimal`).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping

import numpy as np

from milp_map.core.problem import Problem, active_bounds
from milp_map.core.solution import Solution
from milp_map.errors import MilpMapError
from milp_map.evaluation.evaluator import evaluate_choice, mapping_of

MAX_PROXY_STEPS = 4096
"""Budget grid cells at most; with a budget B the default resolution is B / MAX_PROXY_STEPS."""

MAX_TABLE_CELLS = 1_000_000_000
"""Back-pointer cells (units x options x budget steps, one byte each up to 255 options: about
1 GB) the exact grid may need; beyond it `exact_resolution` gives up and `auto` uses HiGHS.
The 5,000-layer budgeted chain of benchmarks/solver_policy.py needs 7.2e8."""

AUTO_MAX_WORK = 300_000_000
"""Predecessor comparisons (sum over units of options x previous options x budget steps) up
to which `--solver auto` takes the DP: about 1.5 s here (2e8 a second); 1,000-layer chains
with 3-decimal scores need ~4e9 (20 s) where HiGHS proves them in about 1 s."""

MAX_DECIMALS = 9
"""Scores are looked for on grids of 10^-k, k <= this, before their common divisor is taken."""


def solve(
    problem: Problem,
    objective: str | None = None,
    bounds: Mapping[str, float] | None = None,
    resolution: float | None = None,
    deadline_s: float | None = None,
) -> Solution:
    """Minimise latency or energy under an optional proxy budget on a chain of units.

    Past `deadline_s` (time.perf_counter clock) or on Ctrl-C it stops with `time_limit` (a
    DP has no mapping before its last unit; the caller's warm start stands in)."""
    start = time.perf_counter()
    try:
        return _solve(problem, objective, bounds, resolution, deadline_s)
    except KeyboardInterrupt:  # nothing of the DP's is left to clean up
        stopped = _Stopped("interrupted", time.perf_counter() - start)
    except _Stopped as raised:
        stopped = raised
    return Solution(
        "chain-dp",
        "time_limit",
        objective or problem.objective,
        solve_time_s=stopped.elapsed_s,
        detail=stopped.reason,
        extra={"interrupted": stopped.reason == "interrupted"},
    )


class _Stopped(Exception):
    def __init__(self, reason: str, elapsed_s: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.elapsed_s = elapsed_s


def _solve(
    problem: Problem,
    objective: str | None,
    bounds: Mapping[str, float] | None,
    resolution: float | None,
    deadline_s: float | None,
) -> Solution:
    objective = objective or problem.objective
    bounds = active_bounds(problem) if bounds is None else dict(bounds)
    if set(bounds) - {"proxy"}:
        raise MilpMapError(
            "the chain DP handles a proxy budget only; use cpsat or highs for latency/energy bounds"
        )
    _check_chain(problem)
    start = time.perf_counter()
    budget = bounds.get("proxy")
    steps, resolution, exact = _grid(problem, budget, resolution)
    static = problem.static_power_w
    units = problem.units

    def option_cost(option) -> float:
        if objective == "latency":
            return option.latency_s
        return option.energy_j + static * option.latency_s

    def spent(option) -> int:
        """Grid steps an option uses: exact on an exact grid; rounded up off it, so that a
        mapping the DP returns never breaks the budget (it may miss the optimum: `feasible`)."""
        if budget is None:
            return 0
        level = option.proxy / resolution
        return round(level) if exact else math.ceil(level - 1e-9)

    inf = math.inf
    value = np.full((len(units[0].options), steps + 1), inf)
    for o, option in enumerate(units[0].options):
        if spent(option) <= steps:
            value[o, spent(option)] = option_cost(option)
    choices: list[np.ndarray] = []
    edges = {(e.src, e.dst): e for e in problem.edges}
    for k in range(1, len(units)):
        now = time.perf_counter()
        if deadline_s is not None and now > deadline_s:
            raise _Stopped(f"time limit at unit {k} of {len(units)}", now - start)
        edge = edges.get((k - 1, k))
        previous = units[k - 1].options
        new = np.full((len(units[k].options), steps + 1), inf)
        back = np.zeros((len(units[k].options), steps + 1), dtype=_index_type(len(previous)))
        for o, option in enumerate(units[k].options):
            shift = spent(option)
            if shift > steps:
                continue
            # best predecessor for every proxy level, transition included
            totals = np.full((len(previous), steps + 1 - shift), inf)
            for p, before in enumerate(previous):
                latency, energy = (0.0, 0.0)
                if edge is not None:
                    latency, energy = edge.costs.get(
                        (before.accelerator, option.accelerator), (0.0, 0.0)
                    )
                crossing = latency if objective == "latency" else energy + static * latency
                totals[p] = value[p, : steps + 1 - shift] + crossing
            best = np.argmin(totals, axis=0)
            new[o, shift:] = totals[best, np.arange(steps + 1 - shift)] + option_cost(option)
            back[o, shift:] = best
        value = new
        choices.append(back)
    flat = int(np.argmin(value))
    o, level = divmod(flat, steps + 1)
    elapsed = time.perf_counter() - start
    if not math.isfinite(value[o, level]):
        if exact:
            return Solution("chain-dp", "infeasible", objective, solve_time_s=elapsed)
        detail = (
            f"no mapping within the budget on a proxy grid of {resolution:.3g} (each score is "
            "rounded up to it, so a coarse grid can exclude every mapping); use --solver highs"
        )
        return Solution("chain-dp", "error", objective, solve_time_s=elapsed, detail=detail)
    choice = [o]
    for k in range(len(units) - 1, 0, -1):
        previous_option = int(choices[k - 1][o, level])
        level -= spent(units[k].options[o])
        o = previous_option
        choice.append(o)
    choice.reverse()
    metrics = evaluate_choice(problem, choice)
    return Solution(
        method="chain-dp",
        status="optimal" if exact else "feasible",
        objective=objective,
        mapping=mapping_of(problem, choice),
        metrics=metrics,
        best_bound=metrics.value(objective) if exact else None,
        solve_time_s=elapsed,
        detail="" if exact else f"proxy discretised at {resolution:.3g}",
        extra={"choice": tuple(choice)},
    )


def exact_resolution(problem: Problem, bounds: Mapping[str, float]) -> float | None:
    """The grid on which the DP is exact for these bounds: the common divisor of every
    option's proxy score (integer scores: their gcd), or None when the DP cannot answer
    exactly (not a chain, a latency or energy bound, scores on no grid, or a table above
    MAX_TABLE_CELLS)."""
    if set(bounds) - {"proxy"} or not is_chain(problem):
        return None
    budget = bounds.get("proxy")
    if budget is None:
        return 1.0
    scores = [o.proxy for u in problem.units for o in u.options]
    if not all(math.isfinite(score * 10**MAX_DECIMALS) for score in scores):
        return None  # scores near the float range: no grid to hold them
    for decimals in range(MAX_DECIMALS + 1):
        scaled = [score * 10**decimals for score in scores]
        levels = [round(value) for value in scaled]
        if all(abs(v - n) <= 1e-9 * max(1.0, abs(v)) for v, n in zip(scaled, levels, strict=True)):
            divisor = math.gcd(*levels)
            if divisor == 0:  # every score is 0: any grid is exact, one step the smallest
                return max(budget + problem.tolerance("proxy"), 1.0)
            resolution = divisor / 10**decimals
            options = max(len(u.options) for u in problem.units)
            if len(problem.units) * options * _steps(problem, budget, resolution) > MAX_TABLE_CELLS:
                return None
            return resolution
    return None


def work(problem: Problem, bounds: Mapping[str, float], resolution: float) -> int:
    """Predecessor comparisons of a DP run at `resolution`: what its time grows with."""
    budget = bounds.get("proxy")
    steps = 1 if budget is None else _steps(problem, budget, resolution)
    sizes = [len(u.options) for u in problem.units]
    return steps * sum(a * b for a, b in itertools.pairwise(sizes))


def _steps(problem: Problem, budget: float, resolution: float) -> int:
    """Budget levels 0, resolution, 2 resolution, ... up to the budget and its tolerance."""
    return math.floor((budget + problem.tolerance("proxy")) / resolution + 1e-9) + 1


def is_chain(problem: Problem) -> bool:
    """Units 0..U-1 in order with edges only between neighbours."""
    return all(edge.dst == edge.src + 1 for edge in problem.edges)


def _check_chain(problem: Problem) -> None:
    for edge in problem.edges:
        if edge.dst != edge.src + 1:
            raise MilpMapError(
                f"the chain DP needs a chain of units; '{problem.units[edge.src].name}' -> "
                f"'{problem.units[edge.dst].name}' skips ahead (use cpsat or highs)"
            )


def _index_type(options: int) -> type[np.integer]:
    """The smallest integer type that holds an option index (the back pointers dominate memory)."""
    if options <= np.iinfo(np.uint8).max:
        return np.uint8
    if options <= np.iinfo(np.uint16).max:
        return np.uint16
    return np.int32


def _grid(
    problem: Problem, budget: float | None, resolution: float | None
) -> tuple[int, float, bool]:
    """(number of budget steps, resolution, whether every option's proxy is on the grid)."""
    if budget is None:
        return 0, 1.0, True
    if resolution is None:
        resolution = max(budget, problem.tolerance("proxy")) / MAX_PROXY_STEPS
    # the budget as every backend holds it: relaxed by the feasibility tolerance
    steps = _steps(problem, budget, resolution) - 1
    exact = all(
        abs(o.proxy / resolution - round(o.proxy / resolution))
        <= 1e-9 * max(1.0, o.proxy / resolution)
        for u in problem.units
        for o in u.options
    )
    return steps, resolution, exact
