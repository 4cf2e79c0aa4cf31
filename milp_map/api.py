"""The Python API: name a network and a platform, get the proven answer.

As pymoo's `minimize` joins a problem and an algorithm in one call, each function here loads
the problem (`milp_map.io.problems.load_problem`) and hands it to one service:

    import milp_map
    best = milp_map.solve_mapping("resnet20", "diana")            # a Solution
    front = milp_map.pareto_front("mobilenet_v1", "rockpi-n10")   # a Front
    table = milp_map.compare("resnet20", "diana").to_frame()      # every method, one row each

The problem keywords (`ProblemOptions`) are the same for all three. Without a proxy bound a
problem gets half of the achievable proxy range as budget, as `python -m milp_map.solve`
does (`max_proxy_fraction=1` removes the budget).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from milp_map import pipeline
from milp_map.accuracy.finetune import FineTuneReport, FineTuneSettings
from milp_map.core.graph import LayerGraph
from milp_map.core.platform import Platform
from milp_map.core.solution import Front, Solution
from milp_map.core.split import Target, base_problem
from milp_map.defaults import DEFAULT_PLATFORM, DEFAULT_PROXY_FRACTION
from milp_map.experiments.compare import Comparison, measured_top1
from milp_map.experiments.compare import compare as compare_methods
from milp_map.experiments.methods import RunSettings
from milp_map.io.problems import load_problem
from milp_map.solvers import SolverSettings

if TYPE_CHECKING:
    from typing_extensions import Unpack

Model = str | Path | LayerGraph
"""A zoo or shipped model name, an .onnx path, or a LayerGraph."""
PlatformLike = str | Path | Platform
"""A preset name, a platform YAML path, or a Platform."""


class ProblemOptions(TypedDict, total=False):
    """The problem's keywords, as `load_problem` takes them."""

    objective: str
    """latency (default) or energy."""
    granularity: str
    """layer (default), or channel: output channels split in multiples of `group_size`."""
    group_size: int
    max_latency_s: float | None
    max_energy_j: float | None
    max_proxy: float | None
    max_proxy_fraction: float | None
    sensitivity: str | Path | None
    """A score CSV; default the shipped scores, else data-free ones."""
    groups: str | Path | None
    """A CSV of layers mapped as one unit."""


def solve_mapping(
    model: Model,
    platform: PlatformLike = DEFAULT_PLATFORM,
    *,
    solver: str = "auto",
    time_limit_s: float | None = None,
    gap: float | None = None,
    threads: int = 1,
    seed: int = 0,
    **problem: Unpack[ProblemOptions],
) -> Solution:
    """The proven min-`objective` mapping under the bounds.

    The Solution's `status` says what is proven: "optimal", "feasible" (a mapping with a gap,
    after `time_limit_s` or `gap`) or "infeasible".
    """
    target = _target(model, platform, problem, sweeps_proxy=False)
    settings = SolverSettings(time_limit_s=time_limit_s, rel_gap=gap, threads=threads, seed=seed)
    return pipeline.solve(target, solver, settings).solution


def pareto_front(
    model: Model,
    platform: PlatformLike = DEFAULT_PLATFORM,
    quantities: tuple[str, str] = ("latency", "energy"),
    *,
    solver: str = "auto",
    points: int | None = None,
    method: str = "auto",
    time_limit_s: float | None = None,
    threads: int = 1,
    seed: int = 0,
    progress: bool = False,
    **problem: Unpack[ProblemOptions],
) -> Front:
    """The exact non-dominated front of two of latency, energy and proxy.

    Chains of units take the label-setting DP, everything else an epsilon-constraint sweep
    of proven optima (`method="epsilon-constraint"` forces the sweep); `points` thins what
    is returned. A front over the proxy has no default proxy budget.
    """
    target = _target(model, platform, problem, sweeps_proxy="proxy" in quantities)
    settings = SolverSettings(time_limit_s=time_limit_s, threads=threads, seed=seed)
    found, _, _ = pipeline.front(
        target,
        (quantities[0], quantities[1]),
        solver,
        settings,
        points=points,
        method=method,
        progress=progress,
    )
    return found


def compare(
    model: Model,
    platform: PlatformLike = DEFAULT_PLATFORM,
    *,
    methods: Sequence[str] | None = None,
    front: tuple[str, str] | None = None,
    jobs: int = 1,
    progress: bool = False,
    settings: RunSettings | None = None,
    data: str = "auto",
    **problem: Unpack[ProblemOptions],
) -> Comparison:
    """Every applicable mapping method (or `methods`) on the same problem, against the proven
    optimum; with `front`, also each method's front against the exact one (hypervolume).

    `settings` sets seeds, threads, the exact solver's time limit and the searches' budgets
    (milp_map.experiments.methods.RunSettings); its `front` is taken from `front`. `data`
    fills the measured top-1 column as `python -m milp_map.compare --data` does ("auto":
    MNIST for shipped real models, none for zoo models with random weights; "none").
    """
    target = _target(model, platform, problem, sweeps_proxy=front is not None and "proxy" in front)
    run = dataclasses.replace(settings or RunSettings(), front=front)
    name = model.name if isinstance(model, LayerGraph) else str(model)
    accuracy_fn, _ = measured_top1(base_problem(target), data, name)
    return compare_methods(target, methods, run, jobs, accuracy_fn, progress=progress)


def finetune_mapping(
    model: Model,
    platform: PlatformLike = DEFAULT_PLATFORM,
    solution: Solution | None = None,
    *,
    data: str = "mnist",
    epochs: int = 3,
    seed: int = 0,
    learning_rate: float = 1e-3,
    batch_size: int = 64,
    progress: bool = False,
    **problem: Unpack[ProblemOptions],
) -> FineTuneReport:
    """Fine-tune a mapping quantisation-aware (straight-through) on the training split of
    `data` and measure its top-1 on the test split before and after, beside fp32.

    `solution`: a mapping of this model on this platform with these problem keywords (default:
    the proven optimum `solve_mapping` returns for them). The report's `finetuned.model` is the
    fine-tuned mapped ONNX model (needs torch: `milp_map[torch]`).
    """
    target = _target(model, platform, problem, sweeps_proxy=False)
    if solution is None:
        solution = pipeline.solve(target).solution
    settings = FineTuneSettings(
        epochs=epochs, seed=seed, learning_rate=learning_rate, batch_size=batch_size
    )

    def report(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    return pipeline.finetune(target, solution, data, settings, report if progress else None)


def _target(
    model: Model, platform: PlatformLike, options: ProblemOptions, sweeps_proxy: bool
) -> Target:
    """The problem, with solve's default proxy budget when no proxy bound is given and the
    proxy is not a front axis."""
    options = ProblemOptions(**options)
    no_bound = options.get("max_proxy") is None and options.get("max_proxy_fraction") is None
    if no_bound and not sweeps_proxy:
        options["max_proxy_fraction"] = DEFAULT_PROXY_FRACTION
    graph_or_name = model if isinstance(model, LayerGraph) else str(model)
    return load_problem(graph_or_name, platform, **options)  # type: ignore[arg-type]
