"""The Python API: name a network and a platform, get the proven answer.

As pymoo's `minimize` joins a problem and an algorithm in one call, each function here loads
the problem (`milp_map.io.problems.load_problem`) and hands it to one service:

    import milp_map
    best = milp_map.solve_mapping("resnet20", "diana")            # a Solution
    front = milp_map.pareto_front("mobilenet_v1", "rockpi-n10")   # a Front
    table = milp_map.compare("resnet20", "diana").to_frame()      # every method, one row each

Without a proxy bound a problem gets half of the achievable proxy range as budget, as
`python -m milp_map.solve` does (`max_proxy_fraction=1` removes the budget).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from milp_map import pipeline
from milp_map.core.graph import LayerGraph
from milp_map.core.platform import Platform
from milp_map.core.solution import Front, Solution
from milp_map.core.split import Target
from milp_map.defaults import DEFAULT_GROUP_SIZE, DEFAULT_PLATFORM, DEFAULT_PROXY_FRACTION
from milp_map.experiments.compare import Comparison
from milp_map.experiments.compare import compare as compare_methods
from milp_map.experiments.methods import RunSettings
from milp_map.io.problems import load_problem
from milp_map.solvers import SolverSettings

Model = str | Path | LayerGraph
"""A zoo or shipped model name, an .onnx path, or a LayerGraph."""
PlatformLike = str | Path | Platform
"""A preset name, a platform YAML path, or a Platform."""


def solve_mapping(
    model: Model,
    platform: PlatformLike = DEFAULT_PLATFORM,
    *,
    objective: str = "latency",
    granularity: str = "layer",
    group_size: int = DEFAULT_GROUP_SIZE,
    max_latency_s: float | None = None,
    max_energy_j: float | None = None,
    max_proxy: float | None = None,
    max_proxy_fraction: float | None = None,
    sensitivity: str | Path | None = None,
    groups: str | Path | None = None,
    solver: str = "auto",
    time_limit_s: float | None = None,
    gap: float | None = None,
    threads: int = 1,
    seed: int = 0,
) -> Solution:
    """The proven min-`objective` mapping (latency or energy) under the bounds.

    `granularity="channel"` splits layers' output channels in multiples of `group_size`
    across accelerators. The Solution's `status` says what is proven ("optimal", or
    "feasible" with a gap after `time_limit_s` / `gap`, or "infeasible").
    """
    target = _target(
        model,
        platform,
        sweeps_proxy=False,
        objective=objective,
        granularity=granularity,
        group_size=group_size,
        max_latency_s=max_latency_s,
        max_energy_j=max_energy_j,
        max_proxy=max_proxy,
        max_proxy_fraction=max_proxy_fraction,
        sensitivity=sensitivity,
        groups=groups,
    )
    settings = SolverSettings(time_limit_s=time_limit_s, rel_gap=gap, threads=threads, seed=seed)
    return pipeline.solve(target, solver, settings).solution


def pareto_front(
    model: Model,
    platform: PlatformLike = DEFAULT_PLATFORM,
    quantities: tuple[str, str] = ("latency", "energy"),
    *,
    granularity: str = "layer",
    group_size: int = DEFAULT_GROUP_SIZE,
    max_latency_s: float | None = None,
    max_energy_j: float | None = None,
    max_proxy: float | None = None,
    max_proxy_fraction: float | None = None,
    sensitivity: str | Path | None = None,
    groups: str | Path | None = None,
    solver: str = "auto",
    points: int | None = None,
    method: str = "auto",
    time_limit_s: float | None = None,
    threads: int = 1,
    seed: int = 0,
    progress: bool = False,
) -> Front:
    """The exact non-dominated front of two of latency, energy and proxy.

    Chains of units take the label-setting DP, everything else an epsilon-constraint sweep
    of proven optima (`method="epsilon-constraint"` forces the sweep); `points` thins what
    is returned. A front over the proxy has no default proxy budget.
    """
    target = _target(
        model,
        platform,
        sweeps_proxy="proxy" in quantities,
        granularity=granularity,
        group_size=group_size,
        max_latency_s=max_latency_s,
        max_energy_j=max_energy_j,
        max_proxy=max_proxy,
        max_proxy_fraction=max_proxy_fraction,
        sensitivity=sensitivity,
        groups=groups,
    )
    settings = SolverSettings(time_limit_s=time_limit_s, threads=threads, seed=seed)
    found, _, _ = pipeline.front(
        target,
        tuple(quantities),
        solver,
        settings,
        points=points,
        method=method,  # type: ignore[arg-type]
        progress=progress,
    )
    return found


def compare(
    model: Model,
    platform: PlatformLike = DEFAULT_PLATFORM,
    *,
    methods: Sequence[str] | None = None,
    objective: str = "latency",
    granularity: str = "layer",
    group_size: int = DEFAULT_GROUP_SIZE,
    max_latency_s: float | None = None,
    max_energy_j: float | None = None,
    max_proxy: float | None = None,
    max_proxy_fraction: float | None = None,
    sensitivity: str | Path | None = None,
    groups: str | Path | None = None,
    front: tuple[str, str] | None = None,
    jobs: int = 1,
    progress: bool = False,
    **settings: object,
) -> Comparison:
    """Every applicable mapping method (or `methods`) on the same problem, against the proven
    optimum; with `front`, also each method's front against the exact one (hypervolume).

    `settings` are RunSettings fields: seed, threads, time_limit_s, solver, population,
    generations, evaluations, gradient_steps, lambdas.
    """
    target = _target(
        model,
        platform,
        sweeps_proxy=front is not None and "proxy" in front,
        objective=objective,
        granularity=granularity,
        group_size=group_size,
        max_latency_s=max_latency_s,
        max_energy_j=max_energy_j,
        max_proxy=max_proxy,
        max_proxy_fraction=max_proxy_fraction,
        sensitivity=sensitivity,
        groups=groups,
    )
    run = RunSettings(front=front, **settings)  # type: ignore[arg-type]
    return compare_methods(target, methods, run, jobs, progress=progress)


def _target(model: Model, platform: PlatformLike, sweeps_proxy: bool, **options: object) -> Target:
    """The problem (`load_problem` keywords), with solve's default proxy budget when no
    proxy bound is given and the proxy is not a front axis."""
    if options["max_proxy"] is None and options["max_proxy_fraction"] is None and not sweeps_proxy:
        options["max_proxy_fraction"] = DEFAULT_PROXY_FRACTION
    graph_or_name = model if isinstance(model, LayerGraph) else str(model)
    return load_problem(graph_or_name, platform, **options)  # type: ignore[arg-type]
