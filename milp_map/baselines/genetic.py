"""NSGA-II over layer-wise mappings, as PiQi searches them (pymoo).

Aghapour et al. (PiQi, ISLPED 2024) map each layer of a DNN onto the CPU clusters, the GPU
or the NPU of an HMPSoC with a multi-objective genetic algorithm: one integer gene per layer
(group) encoding the component and its DVFS level, NSGA-II over latency and power/energy,
and the accuracy loss of quantised (NPU) layers as a constraint. Here one gene per unit is the
index of its option (accelerator x operating point), the objectives are two quantities
(latency and energy by default), and every bound of the problem, the accuracy-proxy budget
first, is a pymoo inequality constraint (constraint-domination, Deb et al. 2002).

Operators: uniform crossover and random-reset mutation of the categorical genes, duplicate
elimination; population and generations are options (PiQi: 200 x 200). Seeded: the same
seed gives the same front.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.mutation import Mutation
from pymoo.core.problem import Problem as PymooProblem
from pymoo.operators.crossover.ux import UniformCrossover
from pymoo.operators.sampling.rnd import IntegerRandomSampling
from pymoo.optimize import minimize

from milp_map.baselines.common import (
    COLUMN,
    CostTables,
    choice_solution,
    feasible_mask,
    front_solutions,
)
from milp_map.core.problem import active_bounds
from milp_map.core.solution import Solution
from milp_map.core.split import Target, base_problem
from milp_map.defaults import DEFAULT_GENERATIONS, DEFAULT_POPULATION
from milp_map.errors import MilpMapError

PIQI_POPULATION = 200
PIQI_GENERATIONS = 200


class MappingProblem(PymooProblem):
    """Genes: option index per unit. F: two quantities / their scale. G: bound violations."""

    def __init__(self, target: Target, quantities: tuple[str, str]) -> None:
        problem = base_problem(target)
        self.tables = CostTables.of(problem)
        self.quantities = quantities
        self.norm = target.scales
        self.limits = {q: b + target.tolerance(q) for q, b in active_bounds(target).items()}
        super().__init__(
            n_var=len(problem.units),
            n_obj=2,
            n_ieq_constr=len(self.limits),
            xl=np.zeros(len(problem.units)),
            xu=self.tables.n_options - 1,
            vtype=int,
        )

    def _evaluate(self, x: np.ndarray, out: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        values = self.tables.metrics(np.asarray(x, dtype=int))
        out["F"] = np.stack([values[:, COLUMN[q]] / self.norm[q] for q in self.quantities], axis=1)
        if self.limits:
            out["G"] = np.stack(
                [(values[:, COLUMN[q]] - b) / self.norm[q] for q, b in self.limits.items()],
                axis=1,
            )


class RandomReset(Mutation):
    """Each gene, with probability 1/n_var, redrawn uniformly among its unit's options."""

    def _do(self, problem: MappingProblem, X: np.ndarray, random_state=None, **kwargs: Any):
        X = np.asarray(X, dtype=int).copy()
        redraw = random_state.random(X.shape) < self.get_prob_var(problem, size=(len(X), 1))
        fresh = np.floor(random_state.random(X.shape) * (problem.xu + 1)).astype(int)
        X[redraw] = fresh[redraw]
        return X


def nsga2(
    target: Target,
    population: int = DEFAULT_POPULATION,
    generations: int = DEFAULT_GENERATIONS,
    seed: int = 0,
    quantities: tuple[str, str] | None = None,
    front: bool = False,
) -> Solution:
    """NSGA-II's final population: its best feasible mapping for the problem's objective.

    `quantities` are the two objectives (default: the problem's objective first, then the
    other of latency/energy). `front=True` also returns the non-dominated feasible mappings of
    the final population in extra["front"], sorted by the first quantity.
    """
    if population < 2 or generations < 1:
        raise MilpMapError(
            f"NSGA-II needs a population >= 2 and >= 1 generation, got {population}, {generations}"
        )
    start = time.perf_counter()
    objective = target.objective
    quantities = quantities or (objective, "energy" if objective == "latency" else "latency")
    algorithm = NSGA2(
        pop_size=population,
        sampling=IntegerRandomSampling(),
        crossover=UniformCrossover(),
        mutation=RandomReset(),
        eliminate_duplicates=True,
    )
    problem = MappingProblem(target, quantities)
    result = minimize(problem, algorithm, ("n_gen", generations), seed=seed, verbose=False)
    final = np.asarray(result.pop.get("X"), dtype=int)
    values = problem.tables.metrics(final)
    ok = np.flatnonzero(feasible_mask(target, values))
    extra: dict = {
        "population": population,
        "generations": generations,
        "evaluations": int(result.algorithm.evaluator.n_eval),
        "quantities": quantities,
    }
    if front:
        extra["front"] = front_solutions(target, "nsga2", final, quantities)
    # no feasible individual: report the least-violating one as what was found
    if len(ok):
        best = int(ok[np.argmin(values[ok, COLUMN[objective]])])
    else:
        best = int(np.argmin(np.asarray(result.pop.get("CV")).ravel()))
    return choice_solution(target, "nsga2", final[best], start, extra)
