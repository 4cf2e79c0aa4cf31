"""What the search baselines share: batch scoring of layer-wise mappings, and their answer.

Searches (greedy repair, random search, NSGA-II, gradient) score thousands of candidate
mappings, so `CostTables` gathers a Problem's option and transition costs into numpy arrays
and scores a batch of mappings (one option index per unit) at once. That is a search aid only:
every mapping a baseline returns is re-scored by `milp_map.evaluation.evaluator`, the single
source of truth, and tests check the two agree.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from milp_map.core.problem import Problem, active_bounds
from milp_map.core.solution import Metrics, Solution
from milp_map.core.split import SplitProblem, Target, base_problem
from milp_map.defaults import QUANTITIES
from milp_map.evaluation.evaluator import evaluate_choice, evaluate_split, mapping_of, violations
from milp_map.formulations import channel_split

COLUMN = {q: k for k, q in enumerate(QUANTITIES)}
"""Column of each quantity in `CostTables.metrics` output: latency, energy, proxy."""


@dataclass(frozen=True)
class CostTables:
    """A Problem's costs as padded arrays: U units x O options, E edges x O x O pairs."""

    n_options: np.ndarray
    latency_s: np.ndarray
    energy_j: np.ndarray
    """Dynamic energy of each option."""
    proxy: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_latency_s: np.ndarray
    edge_energy_j: np.ndarray
    static_power_w: float

    @classmethod
    def of(cls, problem: Problem) -> CostTables:
        n_units, width = len(problem.units), max(len(u.options) for u in problem.units)
        tables = {k: np.zeros((n_units, width)) for k in ("latency_s", "energy_j", "proxy")}
        for u, unit in enumerate(problem.units):
            for o, option in enumerate(unit.options):
                tables["latency_s"][u, o] = option.latency_s
                tables["energy_j"][u, o] = option.energy_j
                tables["proxy"][u, o] = option.proxy
        costly = [e for e in problem.edges if e.costs]
        edge_latency = np.zeros((len(costly), width, width))
        edge_energy = np.zeros((len(costly), width, width))
        for k, edge in enumerate(costly):
            src, dst = problem.units[edge.src].options, problem.units[edge.dst].options
            for i, a in enumerate(src):
                for j, b in enumerate(dst):
                    latency, energy = edge.costs.get((a.accelerator, b.accelerator), (0.0, 0.0))
                    edge_latency[k, i, j], edge_energy[k, i, j] = latency, energy
        return cls(
            n_options=np.array([len(u.options) for u in problem.units]),
            edge_src=np.array([e.src for e in costly], dtype=int),
            edge_dst=np.array([e.dst for e in costly], dtype=int),
            edge_latency_s=edge_latency,
            edge_energy_j=edge_energy,
            static_power_w=problem.static_power_w,
            **tables,
        )

    def metrics(self, choices: np.ndarray) -> np.ndarray:
        """(latency_s, energy_j, proxy) per row of `choices` (N x U option indices): N x 3."""
        choices = np.atleast_2d(np.asarray(choices, dtype=int))
        units = np.arange(choices.shape[1])
        latency = self.latency_s[units, choices].sum(axis=1)
        dynamic = self.energy_j[units, choices].sum(axis=1)
        proxy = self.proxy[units, choices].sum(axis=1)
        if len(self.edge_src):
            edges = np.arange(len(self.edge_src))
            src, dst = choices[:, self.edge_src], choices[:, self.edge_dst]
            latency = latency + self.edge_latency_s[edges, src, dst].sum(axis=1)
            dynamic = dynamic + self.edge_energy_j[edges, src, dst].sum(axis=1)
        return np.stack([latency, dynamic + self.static_power_w * latency, proxy], axis=1)


def feasible_mask(target: Target, values: np.ndarray) -> np.ndarray:
    """Which rows of `CostTables.metrics` output meet every bound of the target."""
    ok = np.ones(len(values), dtype=bool)
    for quantity, bound in active_bounds(target).items():
        ok &= values[:, COLUMN[quantity]] <= bound + target.tolerance(quantity)
    return ok


def non_dominated(values: np.ndarray, quantities: tuple[str, str]) -> list[int]:
    """Row indices of the non-dominated (f1, f2) points, sorted by f1 (first of ties kept)."""
    f1, f2 = (values[:, COLUMN[q]] for q in quantities)
    kept: list[int] = []
    for i in np.lexsort((f2, f1)):
        if not kept or f2[i] < f2[kept[-1]]:
            kept.append(int(i))
    return kept


def evaluate_target(target: Target, choice: Sequence[int]) -> tuple[dict, Metrics]:
    """The mapping of a layer-wise choice and its metrics from the evaluator.

    On a SplitProblem the mapping keeps every unit whole (with channel indices, which
    per-channel scores need) and is scored by `evaluate_split`.
    """
    if isinstance(target, SplitProblem):
        selection = channel_split.selection_from_layerwise(target, choice)
        mapping = channel_split.mapping_of(target, selection)
        return mapping, evaluate_split(target, mapping).metrics
    return mapping_of(target, choice), evaluate_choice(target, choice)


def heuristic_solution(
    target: Target,
    method: str,
    mapping: dict | None,
    metrics: Metrics | None,
    start: float,
    extra: dict | None = None,
) -> Solution:
    """A heuristic's answer: "feasible" if its mapping meets every bound, never "optimal".

    A mapping that breaks a bound is not returned as a solution (status "time_limit": the
    search's budget ran out with no mapping within the bounds); its metrics stay in
    extra["violating_metrics"] and the broken bounds in `detail`.
    """
    elapsed = time.perf_counter() - start
    extra = dict(extra or {})
    if mapping is None or metrics is None:
        return Solution(method, "time_limit", target.objective, solve_time_s=elapsed, extra=extra)
    broken = violations(target, metrics)  # type: ignore[arg-type]
    if broken:
        extra["violating_metrics"] = metrics
        return Solution(
            method,
            "time_limit",
            target.objective,
            solve_time_s=elapsed,
            detail="no mapping within the bounds: " + "; ".join(broken),
            extra=extra,
        )
    return Solution(
        method,
        "feasible",
        target.objective,
        mapping=mapping,
        metrics=metrics,
        solve_time_s=elapsed,
        extra=extra,
    )


def choice_solution(
    target: Target,
    method: str,
    choice: Sequence[int],
    start: float,
    extra: dict | None = None,
) -> Solution:
    """`heuristic_solution` of a layer-wise choice, scored by the evaluator."""
    mapping, metrics = evaluate_target(target, choice)
    return heuristic_solution(
        target,
        method,
        mapping,
        metrics,
        start,
        {"choice": tuple(int(o) for o in choice), **(extra or {})},
    )


def front_solutions(
    target: Target, method: str, choices: np.ndarray, quantities: tuple[str, str]
) -> list[Solution]:
    """The non-dominated feasible mappings among `choices`, each scored by the evaluator."""
    problem = base_problem(target)
    values = CostTables.of(problem).metrics(choices)
    rows = np.flatnonzero(feasible_mask(target, values))
    front = []
    for i in non_dominated(values[rows], quantities):
        solution = choice_solution(target, method, choices[rows[i]], time.perf_counter())
        if solution.metrics is not None:
            front.append(solution)
    return front
