"""Exhaustive enumeration of channel-split mappings: the reference the split model is checked on.

Independent of `channels.configurations` and of the model: every admissible split of every unit
(each accelerator off or one of its part options, the channels adding up), and with per-channel
scores every assignment of channel indices to the parts, each full mapping scored by the
evaluator.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator, Mapping

import numpy as np

from milp_map.core.problem import active_bounds
from milp_map.core.solution import Part, Solution
from milp_map.core.split import PartOption, SplitProblem, SplitUnit
from milp_map.errors import MilpMapError
from milp_map.evaluation.evaluator import evaluate_split

MAX_COMBINATIONS = 200_000

Split = tuple[tuple[str, PartOption], ...]
"""The parts of one unit: (accelerator, part option), channels adding up to the unit's."""


def solve(
    problem: SplitProblem,
    objective: str | None = None,
    bounds: Mapping[str, float] | None = None,
    max_combinations: int = MAX_COMBINATIONS,
) -> Solution:
    """Evaluate every split mapping with `evaluate_split`; keep the best that meets the bounds."""
    objective = objective or problem.objective
    if bounds is None:
        bounds = active_bounds(problem)
    start = time.perf_counter()
    splits = [unit_splits(unit) for unit in problem.units]
    count = math.prod(len(s) for s in splits)
    if count > max_combinations:
        raise MilpMapError(
            f"brute force would evaluate {count} split mappings (limit {max_combinations}); "
            "use cpsat or highs"
        )
    candidates = [
        [_parts(problem, unit, split, max_combinations) for split in options]
        for unit, options in zip(problem.units, splits, strict=True)
    ]
    names = [problem.base.units[unit.index].name for unit in problem.units]
    best_value, best_mapping, best_metrics = math.inf, None, None
    for combination in itertools.product(*candidates):
        mapping = dict(zip(names, combination, strict=True))
        metrics = evaluate_split(problem, mapping).metrics
        if any(metrics.value(q) > b + problem.tolerance(q) for q, b in bounds.items()):
            continue
        value = metrics.value(objective)
        if value < best_value:
            best_value, best_mapping, best_metrics = value, mapping, metrics
    elapsed = time.perf_counter() - start
    if best_mapping is None:
        return Solution(
            "bruteforce", "infeasible", objective, solve_time_s=elapsed, extra={"evaluated": count}
        )
    return Solution(
        method="bruteforce",
        status="optimal",
        objective=objective,
        mapping=best_mapping,
        metrics=best_metrics,
        best_bound=best_value,
        solve_time_s=elapsed,
        extra={"evaluated": count},
    )


def unit_splits(unit: SplitUnit) -> list[Split]:
    """Every split of a unit: per accelerator off or one part option; channels add up."""
    accelerators = list(unit.parts)
    splits = []
    for options in itertools.product(*([None, *unit.parts[a]] for a in accelerators)):
        split = tuple((a, o) for a, o in zip(accelerators, options, strict=True) if o is not None)
        if split and sum(o.channels for _, o in split) == unit.channels:
            splits.append(split)
    return splits


def _parts(
    problem: SplitProblem, unit: SplitUnit, split: Split, max_combinations: int
) -> tuple[Part, ...]:
    """The parts of one split, with the channel indices of least proxy.

    Latency, energy and transitions depend on the channel counts only, so among the index
    assignments of one split the one with the smallest proxy dominates the others: it is found
    by trying them all (not by the sorted-increment rule the model uses).
    """
    if not unit.splittable:
        ((accelerator, option),) = split
        return (Part(accelerator, option.operating_point),)
    name = problem.base.units[unit.index].name
    platform = problem.base.platform
    channel_scores = problem.base.sensitivity.channel_scores
    scores = [channel_scores.get((name, platform.accelerator(a).precision)) for a, _ in split]
    counts = [option.channels for _, option in split]
    if len(split) == 1 or any(s is None for s in scores):
        blocks = np.split(np.arange(unit.channels), np.cumsum(counts)[:-1])
        assignment = [tuple(int(c) for c in block) for block in blocks]
    else:
        ways = math.factorial(unit.channels) // math.prod(math.factorial(n) for n in counts)
        if ways > max_combinations:
            raise MilpMapError(
                f"brute force would try {ways} channel assignments for unit '{name}' "
                f"(limit {max_combinations}); use cpsat or highs"
            )
        assignment = min(
            _assignments(tuple(range(unit.channels)), counts),
            key=lambda parts: sum(
                float(s[list(part)].sum())
                for s, part in zip(scores, parts, strict=True)  # type: ignore[index]
            ),
        )
    return tuple(
        Part(accelerator, option.operating_point, option.channels, indices)
        for (accelerator, option), indices in zip(split, assignment, strict=True)
    )


def _assignments(channels: tuple[int, ...], counts: list[int]) -> Iterator[list[tuple[int, ...]]]:
    """Every way to give counts[k] of `channels` to part k (each channel to exactly one part)."""
    if not counts:
        yield []
        return
    for chosen in itertools.combinations(channels, counts[0]):
        rest = tuple(c for c in channels if c not in chosen)
        for tail in _assignments(rest, counts[1:]):
            yield [chosen, *tail]
