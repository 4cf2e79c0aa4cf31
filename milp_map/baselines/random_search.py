"""Random search with a fixed budget of evaluations: the floor every search method must beat.

Bergstra & Bengio (JMLR 2012) made random search the standard sanity baseline for
hyper-parameter and design-space search; mapping papers (PiQi's GA among them) are measured
against it. Each sample puts every unit on a uniformly drawn option (accelerator and DVFS
level); the best sample within the bounds is returned, or in front mode the non-dominated
feasible samples.
"""

from __future__ import annotations

import time

import numpy as np

from milp_map.baselines.common import (
    COLUMN,
    CostTables,
    choice_solution,
    feasible_mask,
    front_solutions,
)
from milp_map.core.solution import Solution
from milp_map.core.split import Target, base_problem
from milp_map.defaults import DEFAULT_EVALUATIONS
from milp_map.errors import MilpMapError

BATCH = 512


def random_search(
    target: Target,
    evaluations: int = DEFAULT_EVALUATIONS,
    seed: int = 0,
    front: tuple[str, str] | None = None,
    time_limit_s: float | None = None,
) -> Solution:
    """Best of `evaluations` uniform random layer-wise mappings (seeded; same seed, same answer).

    `front=(q1, q2)` also returns the non-dominated feasible samples in extra["front"].
    `time_limit_s` stops sampling early (then fewer than `evaluations` are drawn).
    """
    if evaluations < 1:
        raise MilpMapError(f"random search needs at least 1 evaluation, got {evaluations}")
    start = time.perf_counter()
    problem = base_problem(target)
    tables = CostTables.of(problem)
    rng = np.random.default_rng(seed)
    batches = []
    drawn = 0
    while drawn < evaluations:
        size = min(BATCH, evaluations - drawn)
        batches.append(
            np.floor(rng.random((size, len(problem.units))) * tables.n_options).astype(int)
        )
        drawn += size
        if time_limit_s is not None and time.perf_counter() - start > time_limit_s:
            break
    samples = np.concatenate(batches)
    values = tables.metrics(samples)
    ok = np.flatnonzero(feasible_mask(target, values))
    extra: dict = {"evaluations": len(samples)}
    if front is not None:
        extra["front"] = front_solutions(target, "random", samples, front)
    # no sample within the bounds: report the least-proxy one as what was found
    pool = ok if len(ok) else np.arange(len(samples))
    column = COLUMN[target.objective] if len(ok) else COLUMN["proxy"]
    best = int(pool[np.argmin(values[pool, column])])
    return choice_solution(target, "random", samples[best], start, extra)
