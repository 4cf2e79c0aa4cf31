"""Exact concurrent schedules of one network by series decomposition: the proven optimum where
CP-SAT's bound stays far below it (GoogLeNet alone on jetson-xavier: 23% gap after 60 s).

A unit that every path of the network passes through (a "cut": GoogLeNet's stem layers and
each inception module's concat) splits time: everything before it ends before it starts,
everything after starts after it ends. So the makespan is a sum over the blocks between
consecutive cuts, and a block's span depends only on its own options and order and on the
accelerators of the two cuts around it (transition delays). Per block and pair of cut
accelerators, every option choice of its units is timed at its best order (every linear
extension of the block's DAG, each job as early as its predecessors and its accelerator allow,
branch and bound on the span); the (span, proxy) pairs no other beats form the block's front.
A label-setting DP over the cuts (time so far, proxy so far; dominated labels dropped, over-
budget ones cut) then gives the minimum makespan under the proxy budget and the makespan bound,
with a proof: nothing is enumerated partially.

Applies to one network, makespan or completion time, no contention, no switch limit and no
energy bound, when every block is small enough (MAX_BLOCK_WORK); `reason_not_applicable` says
why not otherwise, and pipeline.schedule then uses CP-SAT.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from milp_map.core.schedule import ScheduleProblem, ScheduleSolution
from milp_map.errors import MilpMapError
from milp_map.evaluation.timeline import (
    accelerator,
    duration_s,
    evaluate_schedule,
    objective_value,
    retime,
    solution_of,
)

Item = TypeVar("Item")

MAX_BLOCK_WORK = 2_000_000
"""Option choices x linear extensions of the largest block (about 10 s of Python)."""


@dataclass(frozen=True)
class _Entry:
    """One way through a block: span from the entry cut's end to the exit cut's start."""

    span_s: float
    proxy: float
    options: tuple[int, ...]
    """Option per interior job, in the block's job order."""
    starts_s: tuple[float, ...]
    """Start of each interior job after the entry cut's end."""


@dataclass(frozen=True)
class _Label:
    end_s: float
    proxy: float
    parent: _Label | None
    option: int | None
    """Option of the cut this label ends at (None at the virtual start and end)."""
    entry: _Entry | None


@dataclass(frozen=True)
class _Block:
    interior: tuple[int, ...]
    entry: int | None
    """Job index of the entry cut (None: the network's start)."""
    exit: int | None


def reason_not_applicable(problem: ScheduleProblem) -> str | None:
    """Why the decomposition cannot solve `problem` exactly, or None when it can."""
    if len(problem.networks) != 1:
        return "it schedules one network (several networks overlap across cuts)"
    if problem.objective not in ("makespan", "completion"):
        return f"it minimises makespan or completion time, not {problem.objective}"
    if problem.contention:
        return "contention slowdowns couple jobs across blocks"
    if problem.max_switches is not None or problem.max_energy_j is not None:
        return "switch limits and energy bounds couple the blocks"
    work = max(_block_work(problem, b) for b in _blocks(problem))
    if work > MAX_BLOCK_WORK:
        return f"its largest block needs {work:.3g} timings (limit {MAX_BLOCK_WORK:.3g})"
    return None


class OutOfTime(Exception):
    """The decomposition did not finish within its time limit (it has no partial answer)."""


def solve(problem: ScheduleProblem, time_limit_s: float | None = None) -> ScheduleSolution:
    """The minimum-makespan schedule of one network, proven (or infeasible); OutOfTime if
    `time_limit_s` runs out first."""
    reason = reason_not_applicable(problem)
    if reason is not None:
        raise MilpMapError(f"--solver dp cannot schedule this problem: {reason}; use cpsat")
    began = time.perf_counter()
    deadline = math.inf if time_limit_s is None else began + time_limit_s
    budget = problem.proxy_budgets[0]
    proxy_slack = problem.networks[0].tolerance("proxy")  # as brute force and the checker
    limit = min(
        [b for b in (problem.max_makespan_s, *problem.deadlines_s) if b is not None],
        default=math.inf,
    )
    limit += problem.tolerance("latency") if math.isfinite(limit) else 0.0
    labels: dict[int | None, list[_Label]] = {None: [_Label(0.0, 0.0, None, None, None)]}
    for block in _blocks(problem):
        fronts = _block_fronts(problem, block, deadline)
        nxt: dict[int | None, list[_Label]] = {}
        exit_options = _options(problem, block.exit)
        for option, held in labels.items():
            acc_in = None if option is None else accelerator(problem, block.entry, option)  # type: ignore[arg-type]
            for out in exit_options:
                acc_out = None if out is None else accelerator(problem, block.exit, out)  # type: ignore[arg-type]
                cut_s, cut_proxy = _cost(problem, block.exit, out)
                for entry in fronts[(acc_in, acc_out)]:
                    for label in held:
                        end = label.end_s + entry.span_s + cut_s
                        proxy = label.proxy + entry.proxy + cut_proxy
                        if end > limit or (budget is not None and proxy > budget + proxy_slack):
                            continue
                        nxt.setdefault(out, []).append(_Label(end, proxy, label, out, entry))
        labels = {k: _pareto(v) for k, v in nxt.items()}
    elapsed = time.perf_counter() - began
    final = [label for held in labels.values() for label in held]
    if not final:
        detail = "no schedule meets the proxy budget and the makespan bound"
        return ScheduleSolution(
            "series-dp", "infeasible", problem.objective, solve_time_s=elapsed, detail=detail
        )
    best = min(final, key=lambda label: label.end_s)
    choice, starts = _unwind(problem, best)
    schedule = retime(problem, choice, starts)
    value = objective_value(problem, evaluate_schedule(problem, schedule))
    # the DP's sum and the re-timed schedule differ by float rounding only: the bound is the
    # value then, so a proof reads as a gap of 0
    same = abs(value - best.end_s) <= 1e-12 * problem.horizon_s
    return solution_of(
        problem,
        "series-dp",
        "optimal",
        schedule,
        value if same else best.end_s,
        time.perf_counter() - began,
        detail=f"{len(_blocks(problem))} blocks between cut units, exhaustive per block",
    )


# ----------------------------------------------------------------------------- structure


def _blocks(problem: ScheduleProblem) -> list[_Block]:
    """Blocks between consecutive cuts (jobs no edge jumps over, in topological order),
    from the network's start to its end."""
    n = len(problem.jobs)
    if any(edge.src >= edge.dst for edge in problem.edges):
        raise MilpMapError("jobs are not in topological order")  # build_schedule_problem keeps it
    jumped = [0] * (n + 1)
    has_in = [False] * n
    has_out = [False] * n
    for edge in problem.edges:
        has_out[edge.src] = has_in[edge.dst] = True
        if edge.dst > edge.src + 1:
            jumped[edge.src + 1] += 1
            jumped[edge.dst] -= 1
    for j in range(n):  # virtual edges from the start to sources, from sinks to the end
        if not has_in[j] and j > 0:
            jumped[0] += 1
            jumped[j] -= 1
        if not has_out[j] and j < n - 1:
            jumped[j + 1] += 1
            jumped[n] -= 1
    cuts, covered = [], 0
    for j in range(n):
        covered += jumped[j]
        if covered == 0:
            cuts.append(j)
    bounds: list[int | None] = [None, *cuts, None]
    blocks = []
    for entry, exit_ in itertools.pairwise(bounds):
        first = -1 if entry is None else entry
        last = n if exit_ is None else exit_
        blocks.append(_Block(tuple(range(first + 1, last)), entry, exit_))
    return blocks


def _block_work(problem: ScheduleProblem, block: _Block) -> float:
    """Option choices times linear extensions (bounded by the factorial) of a block."""
    choices = math.prod(len(problem.jobs[j].options) for j in block.interior)
    return choices * math.factorial(len(block.interior))


def _options(problem: ScheduleProblem, job: int | None) -> list[int | None]:
    return [None] if job is None else list(range(len(problem.jobs[job].options)))


def _cost(problem: ScheduleProblem, job: int | None, option: int | None) -> tuple[float, float]:
    if job is None or option is None:
        return 0.0, 0.0
    return duration_s(problem, job, option), problem.jobs[job].options[option].proxy


# ----------------------------------------------------------------------------- one block


def _block_fronts(
    problem: ScheduleProblem, block: _Block, deadline: float = math.inf
) -> dict[tuple[str | None, str | None], list[_Entry]]:
    """(entry cut accelerator, exit cut accelerator) -> the block's (span, proxy) front."""
    accs_in = _cut_accelerators(problem, block.entry)
    accs_out = _cut_accelerators(problem, block.exit)
    inside = {j: k for k, j in enumerate(block.interior)}
    preds: list[list[tuple[int, int]]] = [[] for _ in block.interior]
    into_exit: list[tuple[int, int]] = []
    direct: list[int] = []
    for e, edge in enumerate(problem.edges):
        if edge.dst in inside:
            preds[inside[edge.dst]].append((edge.src, e))
        elif edge.dst == block.exit and edge.src in inside:
            into_exit.append((inside[edge.src], e))
        elif edge.dst == block.exit and edge.src == block.entry:
            direct.append(e)
    fronts: dict[tuple[str | None, str | None], list[_Entry]] = {}
    for acc_in in accs_in:
        found: dict[str | None, list[_Entry]] = {b: [] for b in accs_out}
        for options in _choices(problem, block.interior):
            if time.perf_counter() > deadline:
                raise OutOfTime
            best = _best_orders(problem, block, options, preds, into_exit, direct, acc_in, accs_out)
            proxy = sum(
                problem.jobs[j].options[o].proxy
                for j, o in zip(block.interior, options, strict=True)
            )
            for acc_out, (span, starts) in best.items():
                found[acc_out].append(_Entry(span, proxy, options, starts))
        for acc_out, entries in found.items():
            fronts[(acc_in, acc_out)] = _entry_front(entries)
    return fronts


def _cut_accelerators(problem: ScheduleProblem, job: int | None) -> list[str | None]:
    if job is None:
        return [None]
    return sorted({o.accelerator for o in problem.jobs[job].options})


def _choices(problem: ScheduleProblem, jobs: Sequence[int]) -> list[tuple[int, ...]]:
    """Every option choice of `jobs`, options beaten on their own accelerator (no faster, no
    lower proxy) left out."""
    kept = []
    for j in jobs:
        options = problem.jobs[j].options
        kept.append(
            [
                k
                for k, o in enumerate(options)
                if not any(
                    p.accelerator == o.accelerator
                    and (p.latency_s, p.proxy, i) < (o.latency_s, o.proxy, k)
                    and p.latency_s <= o.latency_s
                    and p.proxy <= o.proxy
                    for i, p in enumerate(options)
                )
            ]
        )
    out: list[tuple[int, ...]] = [()]
    for options in kept:
        out = [(*c, k) for c in out for k in options]
    return out


def _best_orders(
    problem: ScheduleProblem,
    block: _Block,
    options: tuple[int, ...],
    preds: list[list[tuple[int, int]]],
    into_exit: list[tuple[int, int]],
    direct: list[int],
    acc_in: str | None,
    accs_out: list[str | None],
) -> dict[str | None, tuple[float, tuple[float, ...]]]:
    """Per exit accelerator, the least span over every order of the block's jobs (each job
    as early as its predecessors, transition delays and its accelerator allow) and its starts."""
    interior = block.interior
    m = len(interior)
    acc = [accelerator(problem, j, o) for j, o in zip(interior, options, strict=True)]
    dur = [duration_s(problem, j, o) for j, o in zip(interior, options, strict=True)]
    local = {j: k for k, j in enumerate(interior)}
    pred_local: list[list[tuple[int, float]]] = []
    release = [0.0] * m
    for k, incoming in enumerate(preds):
        mine = []
        for src, e in incoming:
            if src in local:
                mine.append((local[src], _delay(problem, e, acc[local[src]], acc[k])))
            else:  # from the entry cut, which ends at time 0
                release[k] = max(release[k], _delay(problem, e, acc_in, acc[k]))
        pred_local.append(mine)
    if block.exit is None:  # the network's end: the block ends with its last job
        tail = {None: [(k, 0.0) for k in range(m)]}
    else:
        tail = {b: [(k, _delay(problem, e, acc[k], b)) for k, e in into_exit] for b in accs_out}
    floor = {b: max((_delay(problem, e, acc_in, b) for e in direct), default=0.0) for b in accs_out}
    best: dict[str | None, tuple[float, tuple[float, ...]]] = {b: (math.inf, ()) for b in accs_out}
    waiting = [len(p) for p in pred_local]
    succ: list[list[int]] = [[] for _ in range(m)]
    for k, incoming in enumerate(pred_local):
        for src, _ in incoming:
            succ[src].append(k)
    start = [0.0] * m
    end = [0.0] * m
    free: dict[str, float] = {}
    remaining: dict[str, float] = {}
    for k in range(m):
        remaining[acc[k]] = remaining.get(acc[k], 0.0) + dur[k]

    def independent(k: int, j: int) -> bool:
        """Placing k and j in either order gives the same times (no shared accelerator time,
        no edge between them)."""
        shared = acc[k] == acc[j] and dur[k] > 0 and dur[j] > 0
        return not shared and k not in succ[j] and j not in succ[k]

    def visit(placed: int, latest: float, last: int) -> None:
        # no order of the rest ends before any accelerator works off what it still holds
        bound = max(latest, *(free.get(a, 0.0) + left for a, left in remaining.items()))
        if bound >= max(span for span, _ in best.values()):
            return
        if placed == m:
            for b in accs_out:
                span = max([floor[b], *(end[k] + d for k, d in tail[b])])
                if span < best[b][0]:
                    best[b] = (span, tuple(start))
            return
        for k in range(m):
            # one order per set of interchangeable neighbours: independent jobs placed one
            # after the other give the same times either way, so only the ascending one runs
            if waiting[k] != 0 or (last >= 0 and k < last and independent(k, last)):
                continue
            ready = max([release[k], *(end[s] + d for s, d in pred_local[k])])
            busy = dur[k] > 0
            begin = max(ready, free.get(acc[k], 0.0)) if busy else ready
            before = free.get(acc[k], 0.0)
            start[k], end[k] = begin, begin + dur[k]
            if busy:
                free[acc[k]] = end[k]
            remaining[acc[k]] -= dur[k]
            waiting[k] = -1
            for s in succ[k]:
                waiting[s] -= 1
            visit(placed + 1, max(latest, end[k]), k)
            for s in succ[k]:
                waiting[s] += 1
            waiting[k] = 0
            remaining[acc[k]] += dur[k]
            if busy:
                free[acc[k]] = before
            start[k] = end[k] = 0.0

    if m == 0:
        return {b: (floor[b], ()) for b in accs_out}
    visit(0, 0.0, -1)
    return best


def _delay(problem: ScheduleProblem, edge: int, src: str | None, dst: str | None) -> float:
    if src is None or dst is None or src == dst:
        return 0.0
    return problem.edges[edge].costs.get((src, dst), (0.0, 0.0))[0]


def _entry_front(entries: list[_Entry]) -> list[_Entry]:
    """Entries no other beats on both span and proxy."""
    return _nondominated(entries, lambda e: (e.span_s, e.proxy))


def _pareto(labels: list[_Label]) -> list[_Label]:
    """Labels no other beats on both time and proxy."""
    return _nondominated(labels, lambda x: (x.end_s, x.proxy))


def _nondominated(items: list[Item], key: Callable[[Item], tuple[float, float]]) -> list[Item]:
    front: list[Item] = []
    for item in sorted(items, key=key):
        if not front or key(item)[1] < key(front[-1])[1]:
            front.append(item)
    return front


def _unwind(problem: ScheduleProblem, best: _Label) -> tuple[list[int], list[float]]:
    """Options and start times of every job along the labels' parents."""
    n = len(problem.jobs)
    choice = [0] * n
    starts = [0.0] * n
    chain = []
    label: _Label | None = best
    while label is not None and label.entry is not None:
        chain.append(label)
        label = label.parent
    blocks = _blocks(problem)
    for block, label in zip(blocks, reversed(chain), strict=True):
        assert label.parent is not None and label.entry is not None
        base = label.parent.end_s
        for j, option, offset in zip(
            block.interior, label.entry.options, label.entry.starts_s, strict=True
        ):
            choice[j], starts[j] = option, base + offset
        if block.exit is not None:
            assert label.option is not None
            choice[block.exit] = label.option
            starts[block.exit] = base + label.entry.span_s
    return choice, starts
