"""Exact two-quantity Pareto front of a layer-wise problem by multi-objective label setting.

One forward pass over the units in topological order replaces the 2|P| + 1 solves of an
epsilon-constraint sweep: partial mappings (labels) are extended unit by unit, and a label
is dropped only when another one that remembers the same accelerators for the units still
joined to later ones beats it on every relevant quantity (formulations/pareto.md, "Fronts
by label setting"). Chains remember one unit; residual, inception and YOLO graphs a few.
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

MAX_LABELS = 12_000_000
"""Most labels the DP may build at one unit (before dominance pruning); YOLOv3 / rockpi-n10
peaks at 10.7 million, 2 GB resident. Past it the DP stops with LabelCapExceeded and
callers fall back to the sweep."""

MAX_STATES = 4096
"""Most accelerator tuples one frontier may hold (accelerators ** frontier width); wider
graphs take the epsilon-constraint sweep (4 accelerators: frontiers of up to 6 units)."""

SKETCH_LABELS = 8
"""Labels the first, inexact pass keeps per group and band (spread along f1): its mappings
are the incumbents whose staircase prunes the exact pass."""

SKETCH_BANDS = 16
"""Bands per other bounded quantity in which the sketch keeps labels apart (a proxy budget
spent early or late leads to different fronts)."""

MAX_WEIGHTS = 16
"""Most weighted-sum directions the exact pass bounds each label's completions along."""

MAX_CURVE_POINTS = 5_000_000
"""Most knapsack breakpoints (options x units) stored per bound; longer problems bound
completions by the per-unit minima alone (still exact, prunes less)."""

CHUNK = 256
"""Rows per block in the three-quantity dominance filter (pairwise inside a block)."""

PRUNE_RTOL = 1e-12
"""A label is pruned by an incumbent only when beaten by more than this (x scale) in each
quantity, so float rounding in its lower bound never drops a front point."""


class LabelCapExceeded(MilpMapError):
    """The label sets outgrew MAX_LABELS; the front is not computed."""


class LabelDeadline(MilpMapError):
    """The time limit ran out before the sketch had any mapping."""


@dataclass(frozen=True)
class LabelFront:
    """The DP's answer: the non-dominated points (sorted by f1) and how hard it worked."""

    points: tuple[Solution, ...]
    peak_labels: int
    """Largest number of labels built at one unit (before pruning), over both passes."""
    solve_time_s: float
    stopped: str = ""
    """Why the exact pass did not finish ("" when it did): the points are then the sketch's
    mappings, feasible but not proven non-dominated."""


@dataclass(frozen=True)
class Labels:
    """Partial mappings of units 0..k: (latency, total energy, proxy), and per label the
    accelerator (index) of each unit of the frontier after k, in frontier order."""

    values: np.ndarray
    state: np.ndarray


@dataclass(frozen=True)
class Step:
    """Unit k's surviving labels, each with its option and its parent label at unit k - 1."""

    labels: Labels
    option: np.ndarray
    parent: np.ndarray
    built: int
    """Labels built at unit k before pruning (what MAX_LABELS caps)."""


def frontier(problem: Problem) -> list[list[int]]:
    """[k] -> the units before k still joined by an edge to unit k or a later one.

    These are the units whose accelerators a partial mapping of units 0..k-1 must remember:
    every other earlier unit has no edge left that could cost anything. A chain has at most
    one per step; a residual block two; YOLOv3's long routes up to four.
    """
    last = {}
    for e in problem.edges:
        if not e.src < e.dst:
            raise MilpMapError(
                f"edge '{problem.units[e.src].name}' -> '{problem.units[e.dst].name}' does not "
                "follow the units' topological order"
            )
        last[e.src] = max(last.get(e.src, e.dst), e.dst)
    live: list[int] = []
    sets: list[list[int]] = []
    for k in range(len(problem.units)):
        live = [u for u in live if last[u] >= k]
        sets.append(live)
        if last.get(k, k) > k:
            live = [*live, k]
    return sets


def state_count(problem: Problem) -> int:
    """Most distinct accelerator tuples of one frontier: the DP's label groups per unit."""
    accelerators = len({o.accelerator for u in problem.units for o in u.options})
    width = max((len(f) for f in frontier(problem)), default=0)
    return accelerators**width


def applies(problem: Problem) -> bool:
    """True when the DP's label groups stay few (at most MAX_STATES per unit)."""
    return state_count(problem) <= MAX_STATES


def label_front(
    problem: Problem,
    quantities: tuple[str, str],
    max_labels: int = MAX_LABELS,
    deadline_s: float | None = None,
) -> LabelFront:
    """Every non-dominated (f1, f2) point of the mappings within the problem's bounds.

    Two passes: a sketch that keeps a few labels per group finds good complete mappings, and
    the exact pass drops every label whose best possible completion one of them already
    matches. Exact (no resolution): each point is a lexicographically clean optimum with its
    choice; the evaluator recomputes its metrics. Past `deadline_s` (time.perf_counter) or
    on Ctrl-C during the exact pass, the sketch's non-dominated mappings come back as
    `feasible` points with `stopped` set. Raises LabelCapExceeded past `max_labels`,
    LabelDeadline when the deadline passes during the sketch, and MilpMapError when the
    frontier has more than MAX_STATES accelerator tuples.
    """
    f1, f2 = quantities
    if f1 == f2 or f1 not in QUANTITIES or f2 not in QUANTITIES:
        raise MilpMapError(f"a front needs two different quantities of {QUANTITIES}")
    if not applies(problem):
        raise MilpMapError(
            f"the label DP would keep {state_count(problem)} accelerator tuples per unit "
            f"(more than MAX_STATES = {MAX_STATES}): the graph's branches are too wide"
        )
    start = time.perf_counter()
    search = Search.of(problem, quantities)
    values, choices, peak, stopped = _two_passes(search, max_labels, deadline_s)
    final = _pareto_rows(values[:, search.columns])
    found = [
        _point(
            problem,
            f2,
            tuple(int(o) for o in choices[i]),
            tuple(float(v) for v in values[i]),
            proven=not stopped,
        )
        for i in final
    ]
    points = _clean(found, f1, f2)
    elapsed = time.perf_counter() - start
    share = elapsed / len(points) if points else 0.0  # one pass proves them all
    return LabelFront(
        tuple(dataclasses.replace(p, solve_time_s=share) for p in points), peak, elapsed, stopped
    )


def _two_passes(
    search: Search, max_labels: int, deadline_s: float | None
) -> tuple[np.ndarray, np.ndarray, int, str]:
    """The sketch, then the exact pass pruned by its mappings: the final labels of both
    (values, choices), the peak label count and why the exact pass stopped ("" if not)."""
    sketch = _run(search, max_labels, SKETCH_LABELS, None, deadline_s)
    if sketch is None:
        raise LabelDeadline("the time limit ran out during the label DP's first pass")
    prune = Prune.of(search, sketch[0][:, search.columns])
    try:
        exact = _run(search, max_labels, None, prune, deadline_s)
    except KeyboardInterrupt:
        return (*sketch, "interrupted")
    if exact is None:
        return (*sketch, "time limit")
    values, choices = (np.concatenate(pair) for pair in zip(exact[:2], sketch[:2], strict=True))
    return values, choices, max(exact[2], sketch[2]), ""


@dataclass(frozen=True)
class Search:
    """What every unit's step needs to know of the whole problem, computed once."""

    problem: Problem
    accelerators: list[str]
    views: list[Frontier]
    """Per unit: the remembered units before and after it and its in-edges' costs."""
    costs: list[np.ndarray]
    """Per unit: (latency, total energy, proxy) of each option."""
    bounds: dict[str, float]
    relevant: list[int]
    """Label columns dominance compares: the requested quantities and the bounded ones."""
    columns: list[int]
    """The label columns of f1 and f2."""
    scale: np.ndarray
    """The problem's scales of f1 and f2."""
    limit: np.ndarray
    ahead: np.ndarray

    @classmethod
    def of(cls, problem: Problem, quantities: tuple[str, str]) -> Search:
        bounds = active_bounds(problem)
        accelerators = sorted({o.accelerator for u in problem.units for o in u.options})
        costs = [_option_costs(problem, k) for k in range(len(problem.units))]
        return cls(
            problem,
            accelerators,
            _views(problem, accelerators),
            costs,
            bounds,
            [QUANTITIES.index(q) for q in QUANTITIES if q in quantities or q in bounds],
            [QUANTITIES.index(q) for q in quantities],
            np.array([problem.scales[q] for q in quantities]),
            _limits(problem, bounds),
            _cost_still_ahead(costs),
        )


def _run(
    search: Search,
    max_labels: int,
    per_group: int | None,
    prune: Prune | None,
    deadline_s: float | None = None,
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """One forward pass: the final labels' values, their choices and the peak label count;
    None when `deadline_s` passes first (checked after each unit).

    `per_group` thins each group to that many labels (inexact: the sketch); `prune` drops
    the labels none of whose completions can beat its incumbents.
    """
    problem = search.problem
    labels = Labels(np.zeros((1, 3)), np.zeros((1, 0), dtype=int))  # nothing mapped yet
    history: list[tuple[np.ndarray, np.ndarray]] = []  # (option, parent) of each unit's labels
    peak = 0
    for k in range(len(problem.units)):
        step = _extend(search, k, labels, max_labels, per_group, prune)
        peak = max(peak, step.built)
        labels = step.labels
        history.append((step.option, step.parent))
        if deadline_s is not None and time.perf_counter() > deadline_s:
            return None
    rows = np.arange(len(labels.values))
    return labels.values, _backtrack(history, rows), peak


# ----------------------------------------------------------------------------- one unit


@dataclass(frozen=True)
class Frontier:
    """Unit k's view of the graph: the earlier units remembered before and after it, and
    what each of its in-edges costs per (accelerator of its source, accelerator of k)."""

    before: list[int]
    after: list[int]
    shifts: list[tuple[int, np.ndarray]]
    """(position of the source in `before`, [from, to] -> (latency, energy, 0)) per edge."""


def _extend(
    search: Search,
    k: int,
    labels: Labels,
    max_labels: int,
    per_group: int | None,
    prune: Prune | None,
) -> Step:
    """Labels of units 0..k-1 extended by every option of unit k, then pruned.

    Options that another option on the same accelerator beats in every relevant quantity
    are skipped (transitions depend on the accelerator alone). Per accelerator a of unit k:
    the labels entering a (in-edge transitions added) are filtered first, since an option's
    cost shifts all of them alike; then each option on a adds its cost, labels over the
    limits (bounds less what later units must still add) or beaten by `prune` die,
    and the dominated ones are dropped. Dominance is exact among labels that remember the
    same accelerators for the units still joined to later ones (`view.after`): those face
    the same future. Raises LabelCapExceeded before building more than `max_labels` labels.
    """
    problem, relevant, view = search.problem, search.relevant, search.views[k]
    costs = search.costs[k]
    accelerators = search.accelerators
    acc_of_option = np.array([accelerators.index(o.accelerator) for o in problem.units[k].options])
    useful = _grouped_pareto(costs[:, relevant], acc_of_option)  # the rest lose on their own
    kept_columns = [view.before.index(u) for u in view.after if u != k]
    # a label's group: the accelerators it remembers for the units that stay
    group = _group_keys(labels.state[:, kept_columns], len(accelerators))
    limit = search.limit - search.ahead[k + 1]
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    built = 0
    for a in np.unique(acc_of_option[useful]):
        entering = labels.values.copy()
        for column, shift in view.shifts:
            entering += shift[labels.state[:, column], a]
        kept = _grouped_pareto(entering[:, relevant], group)
        options = useful[acc_of_option[useful] == a]
        built += len(kept) * len(options)
        if built > max_labels:
            raise LabelCapExceeded(
                f"the label DP would build over {max_labels} labels at unit "
                f"'{problem.units[k].name}' (its cap, MAX_LABELS)"
            )
        grown = (entering[kept][None, :, :] + costs[options][:, None, :]).reshape(-1, 3)
        option = np.repeat(options, len(kept))
        parent = np.tile(kept, len(options))
        alive = np.all(grown <= limit, axis=1)
        if prune is not None:
            alive &= ~prune.beaten(k + 1, grown)
        grown, option, parent = grown[alive], option[alive], parent[alive]
        if per_group is None:
            rows = _grouped_pareto(grown[:, relevant], group[parent])
        else:
            rows = _sketch_rows(search, grown, group[parent], per_group)
        parts.append((grown[rows], option[rows], parent[rows], np.full(len(rows), a)))
    values, option, parent, accelerator = (
        np.concatenate(column) for column in zip(*parts, strict=True)
    )
    state = labels.state[parent][:, kept_columns]
    if k in view.after:
        state = np.column_stack([state, accelerator])
    return Step(Labels(values, state), option, parent, built)


def _group_keys(state: np.ndarray, base: int) -> np.ndarray:
    """One integer per row of remembered accelerators (mixed radix `base`)."""
    keys = np.zeros(len(state), dtype=np.int64)
    for column in state.T:
        keys = keys * base + column
    return keys


def _grouped_pareto(
    values: np.ndarray, group: np.ndarray, per_group: int | None = None
) -> np.ndarray:
    """Indices of the rows no row of the same group weakly dominates (see _pareto_rows);
    with `per_group`, at most that many per group, spread evenly in sorted order."""
    if len(values) == 0:
        return np.arange(0)
    order = np.argsort(group, kind="stable")
    cuts = np.flatnonzero(np.diff(group[order])) + 1
    kept = [block[_pareto_rows(values[block])] for block in np.split(order, cuts)]
    if per_group is not None:
        kept = [rows[_spread(len(rows), per_group)] for rows in kept]
    return np.concatenate(kept)


def _sketch_rows(
    search: Search, values: np.ndarray, group: np.ndarray, per_group: int
) -> np.ndarray:
    """The sketch's thinning: per group and per band of each other bounded quantity (a
    sixteenth of its bound), the (f1, f2)-non-dominated labels, at most `per_group` of them
    spread along f1. Inexact on purpose: it only has to find good complete mappings."""
    key = group.copy()
    for b in search.relevant:
        if b not in search.columns:
            share = values[:, b] / search.limit[b] if search.limit[b] > 0 else 0.0
            key = key * SKETCH_BANDS + np.clip(
                (share * SKETCH_BANDS).astype(int), 0, SKETCH_BANDS - 1
            )
    return _grouped_pareto(values[:, search.columns], key, per_group)


def _spread(n: int, at_most: int) -> np.ndarray:
    """At most `at_most` indices of 0..n-1, evenly spaced, first and last included."""
    if n <= at_most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, at_most).round().astype(int))


# ----------------------------------------------------------------------------- pruning


@dataclass(frozen=True)
class Prune:
    """Incumbents (complete mappings from the sketch) and lower bounds on what a label's
    completions can reach; a label dies when every completion is beaten by an incumbent.

    A completion can escape the incumbents only below one of their local nadir points (the
    corners of their staircase). Its (f1, f2) lies above the ideal point (each quantity's
    least completion) and above each weighted sum's least completion, so a label is beaten
    when no nadir lies beyond its ideal point, or when for one weight every nadir beyond it
    has a weighted sum no greater than the label's bound (formulations/pareto.md).
    """

    search: Search
    nadirs: np.ndarray
    """(corners, 2): (f1, f2) / scale of each local nadir point, f1 ascending, inf at the
    ends."""
    range_max: list[np.ndarray]
    """Per weight, a sparse table of the corners' weighted sums for range maxima."""
    ideal: list[Bound]
    weighted: list[Bound]

    @classmethod
    def of(cls, search: Search, incumbents: np.ndarray) -> Prune:
        """Pruning against the non-dominated rows of `incumbents` ((f1, f2) per mapping)."""
        stair = incumbents[_pareto_rows(incumbents)]
        nadirs = np.column_stack(
            [np.append(stair[:, 0], np.inf), np.insert(stair[:, 1], 0, np.inf)]
        )
        weights = _weights(stair / search.scale)
        nadirs = nadirs / search.scale
        sums = nadirs @ weights.T  # inf where a corner is open
        costs = search.costs
        budgets = [QUANTITIES.index(b) for b in search.bounds]
        ideal = [
            Bound.of(costs, np.eye(3)[c], [b for b in budgets if b != c], search.limit)
            for c in search.columns
        ]
        weighted = [
            Bound.of(costs, _on_columns(w / search.scale, search.columns), budgets, search.limit)
            for w in weights
        ]
        tables = [_sparse_max(column) for column in sums.T]
        return cls(search, nadirs, tables, ideal, weighted)

    def beaten(self, k: int, spent: np.ndarray) -> np.ndarray:
        """Mask of labels (values `spent` over units < k) whose every completion an
        incumbent weakly dominates (by more than the rounding margin)."""
        margin = PRUNE_RTOL * 2.0  # of each quantity's scale, per scaled coordinate
        scale = self.search.scale
        least = [b.least(k, spent) / s - margin for b, s in zip(self.ideal, scale, strict=True)]
        lo = np.searchsorted(self.nadirs[:, 0], least[0], side="right")
        hi = np.searchsorted(-self.nadirs[:, 1], -least[1], side="left")
        beaten = lo >= hi  # no corner beyond the ideal point
        for table, bound in zip(self.range_max, self.weighted, strict=True):
            rows = np.flatnonzero(~beaten)
            if len(rows) == 0:
                break
            best = _range_max(table, lo[rows], hi[rows])
            beaten[rows] = best <= bound.least(k, spent[rows]) - margin
        return beaten


@dataclass(frozen=True)
class Bound:
    """A lower bound on sum_i w . cost(unit i) over units k.., given what is left of the
    bounded quantities: per budget column, the LP relaxation of that multiple-choice
    knapsack, as (budget, least) breakpoints per suffix; the plain minima without budgets."""

    weight: np.ndarray
    plain: np.ndarray
    """[k] -> sum over units k.. of the least weighted option cost."""
    curves: list[tuple[int, list[tuple[np.ndarray, np.ndarray]]]]
    limit: np.ndarray

    @classmethod
    def of(
        cls, costs: list[np.ndarray], weight: np.ndarray, budgets: list[int], limit: np.ndarray
    ) -> Bound:
        scalar = [unit @ weight for unit in costs]
        plain = np.append(np.cumsum([c.min() for c in scalar][::-1])[::-1], 0.0)
        size = sum(len(c) for c in costs) * len(costs)
        curves = (
            []
            if size > MAX_CURVE_POINTS
            else [(b, _knapsack_curves([c[:, b] for c in costs], scalar)) for b in budgets]
        )
        return cls(weight, plain, curves, limit)

    def least(self, k: int, spent: np.ndarray) -> np.ndarray:
        """(labels,) least weighted value of any completion of labels `spent` at units < k."""
        least = spent @ self.weight + self.plain[k]
        for b, curves in self.curves:
            if k < len(curves):
                budget, cost = curves[k]
                left = self.limit[b] - spent[:, b]
                least = np.maximum(least, spent @ self.weight + np.interp(left, budget, cost))
        return least


def _on_columns(weight: np.ndarray, columns: list[int]) -> np.ndarray:
    """A (latency, energy, proxy) weight vector with `weight` on `columns`, 0 elsewhere."""
    full = np.zeros(3)
    full[columns] = weight
    return full


def _weights(stair: np.ndarray) -> np.ndarray:
    """Positive weights (summing to 1) normal to the incumbents' lower convex hull, at most
    MAX_WEIGHTS of them, plus a few fixed directions so every slope is covered."""
    fixed = [np.array([np.cos(t), np.sin(t)]) for t in np.radians([5.0, 25.0, 45.0, 65.0, 85.0])]
    normals = []
    if len(stair) >= 2:
        hull = _lower_hull(stair[:, 0], stair[:, 1])
        edges = np.diff(hull, axis=0)
        normals = [np.array([-dy, dx]) for dx, dy in edges if dx > 0 and dy < 0]
        normals = [normals[i] for i in _spread(len(normals), MAX_WEIGHTS - len(fixed))]
    weights = np.unique(np.array([w / w.sum() for w in [*normals, *fixed]]).round(12), axis=0)
    # a (nearly) vertical or flat hull edge rounds to a zero weight, and 0 * inf (an open
    # corner) would be NaN: such a direction cannot prune anything anyway
    return weights[np.all(weights > 0, axis=1)]


def _sparse_max(values: np.ndarray) -> np.ndarray:
    """(levels, n) table: [l, i] = max of values[i : i + 2**l] (-inf past the end)."""
    table = [values]
    width = 1
    while 2 * width <= len(values):
        last = table[-1]
        shifted = np.concatenate([last[width:], np.full(width, -np.inf)])
        table.append(np.maximum(last, shifted))
        width *= 2
    return np.array(table)


def _range_max(table: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Max of values[lo:hi] per row (hi > lo) from a _sparse_max table."""
    level = np.floor(np.log2(hi - lo)).astype(int)
    return np.maximum(table[level, lo], table[level, hi - (1 << level)])


def _knapsack_curves(
    budget_costs: list[np.ndarray], costs: list[np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """[k] -> breakpoints (budget, least cost) of the least summed cost over units k.. given
    a budget on the summed budget cost, each unit choosing a convex mix of its options (the
    LP relaxation of a multiple-choice knapsack: greedy by slope)."""
    starts, segments = [], []
    for spend, cost in zip(budget_costs, costs, strict=True):
        hull = _lower_hull(spend, cost)
        starts.append(hull[0])
        segments.append(np.diff(hull, axis=0))  # (spend > 0, cost < 0), slopes increasing
    curves = []
    for k in range(len(costs)):
        origin = np.sum(starts[k:], axis=0)
        steps = np.concatenate(segments[k:])
        steps = steps[np.argsort(steps[:, 1] / steps[:, 0], kind="stable")]
        points = origin + np.vstack([np.zeros(2), np.cumsum(steps, axis=0)])
        curves.append((points[:, 0], points[:, 1]))
    return curves


def _lower_hull(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The lower-left convex hull of points (x, y): from least x (then least y) to least y,
    x increasing and y strictly decreasing along it."""
    order = np.lexsort((y, x))
    hull: list[tuple[float, float]] = []
    for px, py in zip(x[order], y[order], strict=True):
        if hull and py >= hull[-1][1]:
            continue  # no cheaper in y for more x: never on the lower-left hull
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], (px, py)) <= 0:
            hull.pop()
        hull.append((float(px), float(py)))
    return np.array(hull)


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    """> 0 when o -> a -> b turns left (a stays on a lower hull)."""
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


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


def _views(problem: Problem, accelerators: list[str]) -> list[Frontier]:
    """Per unit k: the units remembered before and after it, and each in-edge's source
    position in `before` with [from, to] -> (latency, total energy, 0) of crossing it."""
    live = frontier(problem)
    into: dict[int, list[UnitEdge]] = {}
    for e in problem.edges:
        into.setdefault(e.dst, []).append(e)
    views = []
    for k, before in enumerate(live):
        after = live[k + 1] if k + 1 < len(live) else []
        shifts = [
            (before.index(e.src), _transition_shift(problem, e, accelerators))
            for e in into.get(k, [])
        ]
        views.append(Frontier(before, after, shifts))
    return views


def _transition_shift(problem: Problem, edge: UnitEdge, accelerators: list[str]) -> np.ndarray:
    """[from accelerator, to accelerator] -> (latency, total energy, 0) of one edge."""
    n = len(accelerators)
    shift = np.zeros((n, n, 3))
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


def _cost_still_ahead(costs: list[np.ndarray]) -> np.ndarray:
    """[k] -> least (latency, energy, proxy) units k.. still add (transitions may cost 0),
    from each unit's option costs.

    Every cost is nonnegative, so a label whose spend plus this exceeds a bound is dead.
    """
    least = np.array([unit.min(axis=0) for unit in costs]).reshape(-1, 3)
    ahead = np.zeros((len(costs) + 1, 3))
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
        stair_y, stair_z = _insert_into_staircase(stair_y, stair_z, y[rows], z[rows])
    return keep


def _insert_into_staircase(
    stair_y: np.ndarray, stair_z: np.ndarray, y: np.ndarray, z: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The (y, z) staircase (y ascending, z strictly descending) with points added, those
    it then dominates dropped: a linear merge, no re-sort of the staircase. The points must
    not be weakly dominated by the staircase (as _sweep_3d's survivors are not)."""
    order = np.lexsort((z, y))
    y, z = y[order], z[order]
    at = np.searchsorted(stair_y, y, side="left")  # new points before equal y
    merged_y, merged_z = np.insert(stair_y, at, y), np.insert(stair_z, at, z)
    lower = np.ones(len(merged_z), dtype=bool)
    lower[1:] = merged_z[1:] < np.minimum.accumulate(merged_z)[:-1]
    return merged_y[lower], merged_z[lower]


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
    problem: Problem,
    objective: str,
    choice: tuple[int, ...],
    label: tuple[float, ...],
    proven: bool = True,
) -> Solution:
    """One front point, its metrics from the evaluator; extra["label"] keeps the DP's sums.
    Unproven points (the sketch's, when the exact pass stopped) are `feasible`, no bound."""
    metrics = evaluate_choice(problem, choice)
    extra: dict[str, object] = {"choice": choice, "label": label}
    if proven:
        extra["gap"] = 0.0
    return Solution(
        method="label-dp",
        status="optimal" if proven else "feasible",
        objective=objective,
        mapping=mapping_of(problem, choice),
        metrics=metrics,
        best_bound=metrics.value(objective) if proven else None,
        detail="proven by exhaustive dominance (label DP)"
        if proven
        else "found by the label DP's sketch; the exact pass was stopped",
        extra=extra,
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
