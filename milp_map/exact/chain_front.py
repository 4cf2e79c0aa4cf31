"""Exact two-quantity Pareto front of a chain of units by multi-objective label setting.

A chain (every edge joins consecutive units) lets one forward pass replace the 2|P| + 1
solves of an epsilon-constraint sweep: partial mappings (labels) are extended unit by unit
and only those another label beats on every relevant quantity are dropped
(formulations/pareto.md, "Chain fronts by label setting").
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from milp_map.core.problem import Problem, UnitEdge, active_bounds
from milp_map.core.solution import Solution
from milp_map.defaults import QUANTITIES
from milp_map.errors import MilpMapError
from milp_map.evaluation.evaluator import evaluate_choice, mapping_of

MAX_LABELS = 2_000_000
"""Most labels the DP may build at one unit (before dominance pruning), about 100 MB of
arrays; past it the DP stops with LabelCapExceeded and callers fall back to the sweep."""

CHUNK = 256
"""Rows per block in the three-quantity dominance filter (pairwise inside a block)."""


class LabelCapExceeded(MilpMapError):
    """The label sets outgrew MAX_LABELS; the front is not computed."""


@dataclass(frozen=True)
class ChainFront:
    """The DP's answer: the non-dominated points (sorted by f1) and how hard it worked."""

    points: tuple[Solution, ...]
    peak_labels: int
    """Largest number of labels built at one unit (before pruning)."""
    solve_time_s: float


@dataclass(frozen=True)
class Labels:
    """Partial mappings of units 0..k: (latency, total energy, proxy) and last accelerator."""

    values: np.ndarray
    accelerator: np.ndarray


@dataclass(frozen=True)
class Step:
    """Unit k's surviving labels, each with its option and its parent label at unit k - 1."""

    labels: Labels
    option: np.ndarray
    parent: np.ndarray
    built: int
    """Labels built at unit k before pruning (what MAX_LABELS caps)."""


def is_chain(problem: Problem) -> bool:
    """True when every edge joins unit k to unit k + 1, at most once per pair.

    Units are in topological order, so transitions then depend only on neighbours; a missing
    edge between neighbours costs nothing, which the DP handles like any other edge.
    """
    pairs = [(e.src, e.dst) for e in problem.edges]
    return all(dst == src + 1 for src, dst in pairs) and len(set(pairs)) == len(pairs)


def chain_front(
    problem: Problem, quantities: tuple[str, str], max_labels: int = MAX_LABELS
) -> ChainFront:
    """Every non-dominated (f1, f2) point of the mappings within the problem's bounds.

    Exact (no resolution): each point is a lexicographically clean optimum with its choice;
    the evaluator recomputes its metrics. Raises LabelCapExceeded past `max_labels`.
    """
    if not is_chain(problem):
        raise MilpMapError("the chain front needs every edge to join consecutive units")
    f1, f2 = quantities
    if f1 == f2 or f1 not in QUANTITIES or f2 not in QUANTITIES:
        raise MilpMapError(f"a front needs two different quantities of {QUANTITIES}")
    start = time.perf_counter()
    bounds = active_bounds(problem)
    # dominance needs the requested quantities and the bounded ones; the rest cannot matter
    relevant = [QUANTITIES.index(q) for q in QUANTITIES if q in quantities or q in bounds]
    limit = _limits(problem, bounds)
    ahead = _cost_still_ahead(problem)
    accelerators = sorted({o.accelerator for u in problem.units for o in u.options})
    edges = {e.dst: e for e in problem.edges}

    labels = Labels(np.zeros((1, 3)), np.zeros(1, dtype=int))  # nothing mapped yet
    history: list[tuple[np.ndarray, np.ndarray]] = []  # (option, parent) of each unit's labels
    peak = 0
    for k in range(len(problem.units)):
        shift = _transition_shifts(problem, edges.get(k), accelerators) if k else None
        step = _extend(
            problem, k, labels, shift, accelerators, relevant, limit - ahead[k + 1], max_labels
        )
        peak = max(peak, step.built)
        labels = step.labels
        history.append((step.option, step.parent))
    columns = [QUANTITIES.index(f1), QUANTITIES.index(f2)]
    final = _pareto_rows(labels.values[:, columns])
    choices = _backtrack(history, final)
    found = [
        _point(problem, f2, tuple(int(o) for o in choice), tuple(float(v) for v in label))
        for choice, label in zip(choices, labels.values[final], strict=True)
    ]
    points = _clean(found, f1, f2)
    elapsed = time.perf_counter() - start
    share = elapsed / len(points) if points else 0.0  # one pass proves them all
    return ChainFront(
        tuple(dataclasses.replace(p, solve_time_s=share) for p in points), peak, elapsed
    )


# ----------------------------------------------------------------------------- one unit


def _extend(
    problem: Problem,
    k: int,
    labels: Labels,
    shift: np.ndarray | None,
    accelerators: list[str],
    relevant: list[int],
    limit: np.ndarray,
    max_labels: int,
) -> Step:
    """Labels of units 0..k-1 extended by every option of unit k, then pruned.

    Per accelerator a of unit k: the labels entering a (transition added) are filtered
    first, since an option's cost shifts all of them alike; then each option on a adds its
    cost, labels over `limit` (bounds less what later units must still add) die, and the
    dominated ones are dropped. Labels ending on the same accelerator face the same future
    (transitions depend on accelerators only), so dominance among them is exact. Raises
    LabelCapExceeded before building more than `max_labels` labels.
    """
    costs = _option_costs(problem, k)
    acc_of_option = np.array([accelerators.index(o.accelerator) for o in problem.units[k].options])
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    built = 0
    for a in np.unique(acc_of_option):
        entering = labels.values if shift is None else labels.values + shift[labels.accelerator, a]
        kept = _pareto_rows(entering[:, relevant])
        options = np.flatnonzero(acc_of_option == a)
        built += len(kept) * len(options)
        if built > max_labels:
            raise LabelCapExceeded(
                f"the chain DP would build over {max_labels} labels at unit "
                f"'{problem.units[k].name}' (its cap, MAX_LABELS)"
            )
        grown = (entering[kept][None, :, :] + costs[options][:, None, :]).reshape(-1, 3)
        option = np.repeat(options, len(kept))
        parent = np.tile(kept, len(options))
        inside = np.all(grown <= limit, axis=1)
        grown, option, parent = grown[inside], option[inside], parent[inside]
        rows = _pareto_rows(grown[:, relevant])
        parts.append((grown[rows], option[rows], parent[rows], np.full(len(rows), a)))
    values, option, parent, accelerator = (
        np.concatenate(column) for column in zip(*parts, strict=True)
    )
    return Step(Labels(values, accelerator), option, parent, built)


# ----------------------------------------------------------------------------- label costs


def _option_costs(problem: Problem, k: int) -> np.ndarray:
    """(latency, total energy, proxy) of each option of unit k; static power on its latency."""
    static = problem.static_power_w
    return np.array(
        [
            (o.latency_s, o.energy_j + static * o.latency_s, o.proxy)
            for o in problem.units[k].options
        ],
        dtype=float,
    ).reshape(-1, 3)


def _transition_shifts(
    problem: Problem, edge: UnitEdge | None, accelerators: list[str]
) -> np.ndarray:
    """[from accelerator, to accelerator] -> (latency, total energy, 0) of entering unit k."""
    n = len(accelerators)
    shift = np.zeros((n, n, 3))
    if edge is None:
        return shift
    for (a, b), (latency, energy) in edge.costs.items():
        if a in accelerators and b in accelerators:
            i, j = accelerators.index(a), accelerators.index(b)
            shift[i, j] = (latency, energy + problem.static_power_w * latency, 0.0)
    return shift


def _limits(problem: Problem, bounds: dict[str, float]) -> np.ndarray:
    """Upper bound per label column with the evaluator's tolerance; inf where unbounded."""
    limit = np.full(3, np.inf)
    for q, bound in bounds.items():
        limit[QUANTITIES.index(q)] = bound + problem.tolerance(q)
    return limit


def _cost_still_ahead(problem: Problem) -> np.ndarray:
    """[k] -> least (latency, energy, proxy) units k.. still add (transitions may cost 0).

    Every cost is nonnegative, so a label whose spend plus this exceeds a bound is dead.
    """
    least = np.array([_option_costs(problem, k).min(axis=0) for k in range(len(problem.units))])
    ahead = np.zeros((len(problem.units) + 1, 3))
    ahead[:-1] = np.cumsum(least[::-1], axis=0)[::-1]
    return ahead


# ----------------------------------------------------------------------------- dominance


def _pareto_rows(values: np.ndarray) -> np.ndarray:
    """Indices of the rows no other row weakly dominates (all columns minimised), sorted
    lexicographically; of identical rows one is kept."""
    n, d = values.shape
    if n <= 1:
        return np.arange(n)
    order = np.lexsort(values.T[::-1])
    v = values[order]
    if d == 1:
        return order[:1]
    if d == 2:
        keep = np.empty(n, dtype=bool)
        keep[0] = True
        keep[1:] = v[1:, 1] < np.minimum.accumulate(v[:-1, 1])
        return order[keep]
    distinct = np.ones(n, dtype=bool)
    distinct[1:] = np.any(v[1:] != v[:-1], axis=1)
    order, v = order[distinct], v[distinct]
    return order[_sweep_3d(v[:, 1], v[:, 2])]


def _sweep_3d(y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Keep-mask of distinct rows sorted by (x, y, z): a row is dominated iff an earlier row
    has y' <= y and z' <= z. Each block is tested against the (y, z) staircase of all
    earlier rows; the survivors are then compared pairwise and join the staircase."""
    keep = np.zeros(len(y), dtype=bool)
    stair_y, stair_z = np.empty(0), np.empty(0)
    for lo in range(0, len(y), CHUNK):
        rows = np.arange(lo, min(lo + CHUNK, len(y)))
        if len(stair_y):
            at = np.searchsorted(stair_y, y[rows], side="right") - 1
            rows = rows[(at < 0) | (stair_z[np.maximum(at, 0)] > z[rows])]
        by, bz = y[rows], z[rows]
        # row j beats row i (j earlier in the block) when it is no worse in y and z
        beaten = (by[None, :] <= by[:, None]) & (bz[None, :] <= bz[:, None])
        rows = rows[~np.tril(beaten, k=-1).any(axis=1)]
        keep[rows] = True
        merged = np.column_stack(
            [np.concatenate([stair_y, y[rows]]), np.concatenate([stair_z, z[rows]])]
        )
        stair = merged[_pareto_rows(merged)]
        stair_y, stair_z = stair[:, 0], stair[:, 1]
    return keep


# ----------------------------------------------------------------------------- read back


def _backtrack(history: list[tuple[np.ndarray, np.ndarray]], rows: np.ndarray) -> np.ndarray:
    """(points, units) option indices of the final labels `rows`, by parent pointers."""
    choices = np.zeros((len(rows), len(history)), dtype=int)
    for k in range(len(history) - 1, -1, -1):
        option, parent = history[k]
        choices[:, k] = option[rows]
        rows = parent[rows]
    return choices


def _point(
    problem: Problem, objective: str, choice: tuple[int, ...], label: tuple[float, ...]
) -> Solution:
    """One front point, its metrics from the evaluator; extra["label"] keeps the DP's sums."""
    metrics = evaluate_choice(problem, choice)
    return Solution(
        method="chain-dp",
        status="optimal",
        objective=objective,
        mapping=mapping_of(problem, choice),
        metrics=metrics,
        best_bound=metrics.value(objective),
        detail="proven by exhaustive dominance (chain DP)",
        extra={"choice": choice, "gap": 0.0, "label": label},
    )


def _clean(points: list[Solution], f1: str, f2: str) -> list[Solution]:
    """Sorted by f1 and non-dominated in the evaluator's own numbers (the labels, summed in
    another order, can differ from them in the last bit)."""
    ordered = sorted(points, key=lambda p: (p.metrics.value(f1), p.metrics.value(f2)))  # type: ignore[union-attr]
    kept: list[Solution] = []
    for p in ordered:
        if not kept or p.metrics.value(f2) < kept[-1].metrics.value(f2):  # type: ignore[union-attr]
            kept.append(p)
    return kept
