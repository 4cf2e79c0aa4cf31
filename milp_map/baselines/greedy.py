"""Greedy per-layer mappings: the hand-made heuristics the seed papers compare against.

ODiMO (Risso et al., 2024) and MAEG (Dagli & Belviranli, RSDHA 2021) measure their mappers
against simple per-layer rules; these are the rules a practitioner would write first:

- `fastest` / `least-energy`: each unit on its own fastest / least-energy option, ignoring
  transitions and the accuracy proxy;
- `per-proxy`: start from the most accurate mapping and keep buying the move with the best
  objective saving per unit of proxy spent (energy-per-proxy when minimising energy), the
  classic knapsack ratio rule (as in HAWQ-style mixed-precision assignment);
- `transitions`: units in topological order, each on the option that minimises its own cost
  plus the transitions from its already-mapped producers.

The proxy budget is then enforced by a repair step: while the proxy is over budget, apply the
move that removes proxy at the least objective increase per unit removed. Latency and energy
bounds are not searched for; a mapping that breaks one is reported as such, never as feasible.
"""

from __future__ import annotations

import time

import numpy as np

from milp_map.baselines.common import COLUMN, CostTables, choice_solution
from milp_map.core.problem import Problem
from milp_map.core.solution import Solution
from milp_map.core.split import Target, base_problem
from milp_map.errors import MilpMapError

RULES = ("fastest", "least-energy", "per-proxy", "transitions")


def greedy(target: Target, rule: str = "fastest") -> Solution:
    """The greedy mapping by `rule` (one of RULES), repaired to the proxy budget."""
    if rule not in RULES:
        raise MilpMapError(f"unknown greedy rule '{rule}'; choose one of {', '.join(RULES)}")
    start = time.perf_counter()
    problem = base_problem(target)
    tables = CostTables.of(problem)
    objective = target.objective
    if rule == "fastest":
        choice = _per_unit_best(problem, tables, "latency")
    elif rule == "least-energy":
        choice = _per_unit_best(problem, tables, "energy")
    elif rule == "per-proxy":
        choice = _buy_per_proxy(target, tables, objective)
    else:
        choice = _transition_aware(problem, tables, objective)
    budget = target.bound("proxy")
    if budget is not None:
        quantity = {"fastest": "latency", "least-energy": "energy"}.get(rule, objective)
        choice = _repair_proxy(tables, choice, budget + target.tolerance("proxy"), quantity)
    return choice_solution(target, f"greedy-{rule}", choice, start)


def _unit_cost(tables: CostTables, quantity: str) -> np.ndarray:
    """U x O cost of each option on its own (energy includes the static share)."""
    if quantity == "latency":
        return tables.latency_s
    if quantity == "energy":
        return tables.energy_j + tables.static_power_w * tables.latency_s
    return tables.proxy


def _padded(tables: CostTables, values: np.ndarray) -> np.ndarray:
    """Padding options (beyond a unit's option count) made unattractive."""
    columns = np.arange(values.shape[1])
    return np.where(columns[None, :] < tables.n_options[:, None], values, np.inf)


def _per_unit_best(problem: Problem, tables: CostTables, quantity: str) -> np.ndarray:
    """Each unit's cheapest option in `quantity`; ties go to the lower proxy."""
    cost = _padded(tables, _unit_cost(tables, quantity))
    proxy = _padded(tables, tables.proxy)
    return np.array([np.lexsort((proxy[u], cost[u]))[0] for u in range(len(problem.units))])


def _transition_aware(problem: Problem, tables: CostTables, objective: str) -> np.ndarray:
    """Topological order; each unit minimises own cost + transitions from mapped producers."""
    own = _padded(tables, _unit_cost(tables, objective))
    edge_cost = (
        tables.edge_latency_s
        if objective == "latency"
        else tables.edge_energy_j + tables.static_power_w * tables.edge_latency_s
    )
    choice = np.zeros(len(problem.units), dtype=int)
    for u in range(len(problem.units)):
        cost = own[u].copy()
        for k in np.flatnonzero(tables.edge_dst == u):
            cost = cost + edge_cost[k, choice[tables.edge_src[k]], :]
        choice[u] = int(np.argmin(cost))
    return choice


def _moves(tables: CostTables, choice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every single-unit change of `choice` (as rows) and the (unit, option) it makes."""
    pairs = np.array(
        [(u, o) for u, n in enumerate(tables.n_options) for o in range(int(n)) if o != choice[u]],
        dtype=int,
    ).reshape(-1, 2)
    candidates = np.repeat(choice[None, :], len(pairs), axis=0)
    candidates[np.arange(len(pairs)), pairs[:, 0]] = pairs[:, 1]
    return candidates, pairs


def _repair_proxy(
    tables: CostTables, choice: np.ndarray, budget: float, quantity: str
) -> np.ndarray:
    """While over budget: the move removing proxy at the least `quantity` increase per unit."""
    choice = choice.copy()
    current = tables.metrics(choice)[0]
    while current[COLUMN["proxy"]] > budget:
        candidates, _ = _moves(tables, choice)
        values = tables.metrics(candidates)
        saved = current[COLUMN["proxy"]] - values[:, COLUMN["proxy"]]
        useful = saved > 0
        if not useful.any():
            break
        extra = values[:, COLUMN[quantity]] - current[COLUMN[quantity]]
        ratio = np.where(useful, extra / np.where(useful, saved, 1.0), np.inf)
        best = int(np.argmin(ratio))
        choice, current = candidates[best], values[best]
    return choice


def _buy_per_proxy(target: Target, tables: CostTables, objective: str) -> np.ndarray:
    """From the least-proxy mapping, buy the best objective saving per proxy spent in budget."""
    problem = base_problem(target)
    choice = _per_unit_best(problem, tables, "proxy")
    budget = target.bound("proxy")
    limit = np.inf if budget is None else budget + target.tolerance("proxy")
    current = tables.metrics(choice)[0]
    while True:
        candidates, _ = _moves(tables, choice)
        if not len(candidates):
            return choice
        values = tables.metrics(candidates)
        saving = current[COLUMN[objective]] - values[:, COLUMN[objective]]
        spent = values[:, COLUMN["proxy"]] - current[COLUMN["proxy"]]
        allowed = (saving > 0) & (values[:, COLUMN["proxy"]] <= limit)
        if not allowed.any():
            return choice
        scale = max(abs(current[COLUMN["proxy"]]), 1.0) * 1e-12
        ratio = np.where(allowed, saving / np.maximum(spent, scale), -np.inf)
        best = int(np.argmax(ratio))
        choice, current = candidates[best], values[best]
