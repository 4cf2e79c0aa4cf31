"""`python -m milp_map.compare`: every mapping method on one problem, against the proven optimum.

Each method of the seed papers (ODiMO's manual mappings and gradient search, MAEG's
single-accelerator reference, PiQi's NSGA-II, greedy rules, random search) runs on the same
network, platform, cost model, proxy and bounds; one row per method gives latency, energy,
proxy, gap to the exact optimum, MAEG gain over the best single accelerator and wall time.
With `--pareto Q1,Q2` each method's front is scored by its hypervolume against the exact
front on one shared reference point.

The registry `METHODS` (name -> callable(target, settings) -> Solution) makes the comparison
a loop; `run_method` runs one method by name, for sweep tools.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import multiprocessing
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from milp_map.backends import SOLVERS, SolverSettings
from milp_map.baselines.common import Target, evaluate_target, heuristic_solution, layerwise
from milp_map.baselines.genetic import DEFAULT_GENERATIONS, DEFAULT_POPULATION, nsga2
from milp_map.baselines.greedy import greedy
from milp_map.baselines.manual import manual_mappings
from milp_map.baselines.random_search import DEFAULT_EVALUATIONS, random_search
from milp_map.baselines.single import maeg_gain, single_accelerator
from milp_map.channels import DEFAULT_GROUP_SIZE, SplitProblem, build_split_problem
from milp_map.errors import MilpMapError
from milp_map.models import is_shipped_model
from milp_map.pareto import exact_front, hypervolume_2d, parse_quantities
from milp_map.platform import preset_names
from milp_map.problem import Problem, active_bounds
from milp_map.report import format_si
from milp_map.solution import Metrics, Solution
from milp_map.solve import make_problem, make_solve_fn, resolve_solver, warm_start

DEFAULT_GRADIENT_STEPS = 300
DEFAULT_LAMBDAS = 48


@dataclass(frozen=True)
class RunSettings:
    """What every method may read: seed, budget and, for fronts, the two quantities.

    `time_limit_s` limits the exact solver and random search; the other searches run their
    fixed budgets (generations, steps). Exact fronts run CP-SAT on one worker unless
    `solver` names a backend."""

    seed: int = 0
    threads: int = 1
    time_limit_s: float | None = None
    front: tuple[str, str] | None = None
    solver: str = "auto"
    population: int = DEFAULT_POPULATION
    generations: int = DEFAULT_GENERATIONS
    evaluations: int = DEFAULT_EVALUATIONS
    gradient_steps: int = DEFAULT_GRADIENT_STEPS
    lambdas: int = DEFAULT_LAMBDAS


MethodFn = Callable[[Target, RunSettings], Solution]


# ----------------------------------------------------------------------------- methods


def _exact(target: Target, s: RunSettings) -> Solution:
    """The proven optimum (and, with `front`, the exact front in extra["front"])."""
    split = isinstance(target, SplitProblem)
    solver = resolve_solver(s.solver, "channel" if split else "layer", s.time_limit_s)
    settings = SolverSettings(time_limit_s=s.time_limit_s, threads=s.threads, seed=s.seed)
    hint, _ = warm_start(target, solver, settings)
    solve_fn = make_solve_fn(target, solver, settings)
    solution = solve_fn(target.objective, active_bounds(target), hint)
    if s.front is None:
        return solution
    # Sweeps run CP-SAT on one worker unless a solver is named: faster than HiGHS on fronts.
    sweep_solver = "cpsat" if s.solver == "auto" else s.solver
    threads = 1 if s.solver == "auto" else s.threads
    sweep_settings = dataclasses.replace(settings, threads=threads)
    front = exact_front(
        target, make_solve_fn(target, sweep_solver, sweep_settings), s.front, progress=False
    )
    extra = {**solution.extra, "front": list(front.points), "front_complete": front.complete}
    return dataclasses.replace(solution, extra=extra)


def _best_of(target: Target, method: str, candidates: list[Solution], s: RunSettings) -> Solution:
    """The best candidate within the bounds (scored on the target); front: the non-dominated."""
    start = time.perf_counter()
    scored = []
    for candidate in candidates:
        mapping, metrics = evaluate_target(target, candidate.extra["choice"])
        scored.append(
            heuristic_solution(
                target,
                method,
                mapping,
                metrics,
                start,
                {
                    "choice": candidate.extra["choice"],
                    "mapping_name": candidate.method,
                },
            )
        )
    within = [c for c in scored if c.metrics is not None]
    extra: dict = {}
    if s.front is not None:
        extra["front"] = _non_dominated(within, s.front)
    if not within:
        violating = min(scored, key=lambda c: c.extra["violating_metrics"].accuracy_proxy)
        return dataclasses.replace(violating, extra={**violating.extra, **extra})
    best = min(within, key=lambda c: c.metrics.value(target.objective))  # type: ignore[union-attr]
    return dataclasses.replace(best, extra={**best.extra, **extra})


def _non_dominated(solutions: list[Solution], quantities: tuple[str, str]) -> list[Solution]:
    f1, f2 = quantities
    kept: list[Solution] = []
    for s in sorted(solutions, key=lambda s: (s.metrics.value(f1), s.metrics.value(f2))):  # type: ignore[union-attr]
        if not kept or s.metrics.value(f2) < kept[-1].metrics.value(f2):  # type: ignore[union-attr]
            kept.append(s)
    return kept


def _single(target: Target, s: RunSettings) -> Solution:
    return _best_of(target, "single", single_accelerator(layerwise(target)), s)


def _manual(target: Target, s: RunSettings) -> Solution:
    return _best_of(target, "manual", manual_mappings(layerwise(target)), s)


def _greedy(rule: str) -> MethodFn:
    def run(target: Target, s: RunSettings) -> Solution:
        solution = greedy(target, rule)
        if s.front is not None and solution.metrics is not None:
            solution = dataclasses.replace(solution, extra={**solution.extra, "front": [solution]})
        return solution

    return run


def _random(target: Target, s: RunSettings) -> Solution:
    return random_search(target, s.evaluations, s.seed, s.front, s.time_limit_s)


def _nsga2(target: Target, s: RunSettings) -> Solution:
    return nsga2(target, s.population, s.generations, s.seed, s.front, front=s.front is not None)


def _gradient(target: Target, s: RunSettings) -> Solution:
    from milp_map.baselines.gradient import gradient_search

    return gradient_search(
        target, s.lambdas, s.gradient_steps, s.seed, s.front, front=s.front is not None
    )


METHODS: dict[str, MethodFn] = {
    "exact": _exact,
    "single": _single,
    "manual": _manual,
    "greedy-fastest": _greedy("fastest"),
    "greedy-least-energy": _greedy("least-energy"),
    "greedy-per-proxy": _greedy("per-proxy"),
    "greedy-transitions": _greedy("transitions"),
    "random": _random,
    "nsga2": _nsga2,
    "gradient": _gradient,
}
METHOD_NAMES: tuple[str, ...] = tuple(METHODS)

PAPERS = {
    "exact": "milp_map (CP-SAT / HiGHS, proven)",
    "single": "MAEG reference (Dagli & Belviranli, RSDHA 2021)",
    "manual": "ODiMO manual mappings (Risso et al., 2024)",
    "greedy-fastest": "per-layer rule",
    "greedy-least-energy": "per-layer rule",
    "greedy-per-proxy": "knapsack ratio rule",
    "greedy-transitions": "transition-aware rule",
    "random": "random search (Bergstra & Bengio, JMLR 2012)",
    "nsga2": "PiQi's NSGA-II (Aghapour et al., ISLPED 2024)",
    "gradient": "ODiMO's differentiable search (Risso et al., 2024)",
}


def not_applicable(name: str, target: Target) -> str | None:
    """Why a method cannot run on this problem, or None."""
    if name not in METHODS:
        raise MilpMapError(f"unknown method '{name}'; choose from {', '.join(METHOD_NAMES)}")
    if name == "manual" and not manual_mappings(layerwise(target)):
        return "needs two accelerator precisions"
    if name == "gradient" and importlib.util.find_spec("torch") is None:
        return "torch is not installed (pip install 'milp_map[torch]')"
    return None


def run_method(
    name: str,
    problem: Target,
    seed: int = 0,
    threads: int = 1,
    time_limit_s: float | None = None,
    **options: object,
) -> Solution:
    """Run one registered method; extra["wall_time_s"] holds its wall time.

    `options` are further RunSettings fields (front, solver, population, generations,
    evaluations, gradient_steps, lambdas).
    """
    reason = not_applicable(name, problem)
    if reason:
        raise MilpMapError(f"method '{name}' does not apply: {reason}")
    settings = RunSettings(seed=seed, threads=threads, time_limit_s=time_limit_s, **options)  # type: ignore[arg-type]
    return _timed(name, problem, settings)


def _timed(name: str, target: Target, settings: RunSettings) -> Solution:
    start = time.perf_counter()
    solution = METHODS[name](target, settings)
    wall = time.perf_counter() - start
    return dataclasses.replace(solution, extra={**solution.extra, "wall_time_s": wall})


_WORKER_TARGET: Target | None = None


def _init_worker(target: Target) -> None:
    """Workers ignore Ctrl-C: the parent stops them (and keeps nothing half-done)."""
    global _WORKER_TARGET
    _WORKER_TARGET = target
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker(name: str, settings: RunSettings) -> Solution:
    assert _WORKER_TARGET is not None
    return _timed(name, _WORKER_TARGET, settings)


# ----------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Comparison:
    """Every method's Solution and the table of rows (raw units, one row per method)."""

    solutions: dict[str, Solution]
    table: pd.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)
    reference_point: tuple[float, float] | None = None


def compare(
    target: Target,
    methods: Sequence[str] | None = None,
    settings: RunSettings | None = None,
    jobs: int = 1,
    accuracy_fn: Callable[[Solution], float] | None = None,
    progress: bool = True,
) -> Comparison:
    """Run `methods` (default: every applicable one) and tabulate them against "exact".

    `accuracy_fn(solution) -> accuracy` (e.g. a measured top-1 of the mapped network) fills
    the `accuracy` column for every method with a mapping; without it the column is empty.
    """
    settings = settings or RunSettings()
    methods = list(methods or METHOD_NAMES)
    skipped = {m: r for m in methods if (r := not_applicable(m, target))}
    runnable = [m for m in methods if m not in skipped]
    solutions: dict[str, Solution] = {}
    bar = tqdm(
        total=len(runnable), desc="methods", unit="method", file=sys.stderr, disable=not progress
    )
    try:
        if jobs > 1 and len(runnable) > 1:
            pool = ProcessPoolExecutor(
                max_workers=min(jobs, len(runnable)),
                mp_context=multiprocessing.get_context("spawn"),  # no forked solver threads
                initializer=_init_worker,
                initargs=(target,),
            )
            try:
                futures = {pool.submit(_worker, m, settings): m for m in runnable}
                for future in as_completed(futures):
                    solutions[futures[future]] = future.result()
                    bar.set_postfix_str(futures[future])
                    bar.update(1)
            except BaseException:
                running = list((getattr(pool, "_processes", None) or {}).values())
                pool.shutdown(wait=False, cancel_futures=True)
                for process in running:
                    process.terminate()  # Ctrl-C: do not wait for running methods
                raise
            pool.shutdown()
        else:
            for m in runnable:
                bar.set_postfix_str(m)
                solutions[m] = _timed(m, target, settings)
                bar.update(1)
    finally:
        bar.close()
    solutions = {m: solutions[m] for m in runnable}
    table, reference = comparison_table(target, solutions, settings.front, accuracy_fn)
    return Comparison(solutions, table, skipped, reference)


def comparison_table(
    target: Target,
    solutions: dict[str, Solution],
    front: tuple[str, str] | None = None,
    accuracy_fn: Callable[[Solution], float] | None = None,
) -> tuple[pd.DataFrame, tuple[float, float] | None]:
    """One row per method: metrics, gap to "exact" (%), MAEG gains (%), wall time, accuracy;
    with `front`, the points, hypervolume and its ratio to the exact front's."""
    problem = layerwise(target)
    exact = solutions.get("exact")
    optimum = exact.objective_value if exact is not None else None
    reference = _reference_point(solutions, front) if front else None
    exact_hv = None
    if front and exact is not None and "front" in exact.extra:
        exact_hv = hypervolume_2d(_points(exact.extra["front"], front), reference)  # type: ignore[arg-type]
    rows = []
    for name, solution in solutions.items():
        metrics: Metrics | None = solution.metrics or solution.extra.get("violating_metrics")
        gain = maeg_gain(problem, metrics) if metrics is not None else (None, None)
        value = solution.objective_value
        row = {
            "method": name,
            "status": solution.status,
            "latency_s": metrics.latency_s if metrics else None,
            "energy_j": metrics.energy_j if metrics else None,
            "proxy": metrics.accuracy_proxy if metrics else None,
            "within_bounds": solution.metrics is not None,
            "gap_pct": None
            if value is None or not optimum
            else 100.0 * (value - optimum) / abs(optimum),
            "maeg_latency_pct": gain[0],
            "maeg_energy_pct": gain[1],
            "wall_time_s": solution.extra.get("wall_time_s", solution.solve_time_s),
            "accuracy": accuracy_fn(solution)
            if accuracy_fn is not None and solution.mapping is not None
            else None,
        }
        if front:
            points = _points(solution.extra.get("front", []), front)
            hv = hypervolume_2d(points, reference)  # type: ignore[arg-type]
            row.update(
                front_points=len(points),
                hypervolume=hv,
                hv_ratio=hv / exact_hv if exact_hv else None,
            )
        rows.append(row)
    return pd.DataFrame(rows), reference


def _points(front: list[Solution], quantities: tuple[str, str]) -> list[tuple[float, float]]:
    return [
        (s.metrics.value(quantities[0]), s.metrics.value(quantities[1]))
        for s in front
        if s.metrics is not None
    ]


def _reference_point(
    solutions: dict[str, Solution], quantities: tuple[str, str]
) -> tuple[float, float]:
    """10% of the span beyond the exact front's worst value of each quantity (the union of
    every method's front when there is no exact one): points past it add no volume, so the
    ratio measures closeness to the true front, not distance from a far-away corner."""
    exact = solutions.get("exact")
    pool = [exact] if exact is not None and exact.extra.get("front") else solutions.values()
    points = np.array(
        [p for s in pool for p in _points(s.extra.get("front", []), quantities)] or [(1.0, 1.0)]
    )
    high, low = points.max(axis=0), points.min(axis=0)
    span = np.where(high > low, high - low, np.abs(high) + 1e-30)
    x, y = high + 0.1 * span
    return float(x), float(y)


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """The table in readable units (SI-prefixed seconds and joules, % with sign)."""

    def pct(v: float | None, sign: bool = False) -> str:
        if v is None or pd.isna(v):
            return "-"
        return f"{v:+.1f}%" if sign else f"{v:.2f}%"

    def num(v: float | None, fmt: str = ".4g") -> str:
        return "-" if v is None or pd.isna(v) else format(v, fmt)

    shown = pd.DataFrame(
        {
            "method": table["method"],
            "status": [
                s if ok or s != "time_limit" else "over bounds"
                for s, ok in zip(table["status"], table["within_bounds"], strict=True)
            ],
            "latency": [format_si(v, "s") if pd.notna(v) else "-" for v in table["latency_s"]],
            "energy": [format_si(v, "J") if pd.notna(v) else "-" for v in table["energy_j"]],
            "proxy": [num(v) for v in table["proxy"]],
            "gap": [pct(v) for v in table["gap_pct"]],
            "MAEG latency": [pct(v, True) for v in table["maeg_latency_pct"]],
            "MAEG energy": [pct(v, True) for v in table["maeg_energy_pct"]],
            "time": [f"{v:.2f} s" for v in table["wall_time_s"]],
            "accuracy": [num(v) for v in table["accuracy"]],
        }
    )
    if "hypervolume" in table:
        shown["front"] = table["front_points"]
        shown["HV / exact"] = [num(v, ".4f") for v in table["hv_ratio"]]
    return shown


# ----------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m milp_map.compare",
        description="Run every applicable mapping method under the same constraints and "
        "compare each with the proven optimum (gap, MAEG gain, wall time, fronts).",
    )
    parser.add_argument("--model", default="resnet20", help="zoo model or .onnx file")
    parser.add_argument(
        "--platform", default="diana", help=f"preset ({', '.join(preset_names())}) or YAML file"
    )
    parser.add_argument("--objective", choices=("latency", "energy"), default="latency")
    parser.add_argument(
        "--methods",
        help=f"comma-separated subset of {','.join(METHOD_NAMES)} (default: all applicable)",
    )
    parser.add_argument("--granularity", choices=("layer", "channel"), default="layer")
    parser.add_argument("--group-size", type=int, default=DEFAULT_GROUP_SIZE, metavar="G")
    parser.add_argument("--sensitivity", help="CSV of layer,precision,score")
    parser.add_argument("--groups", help="CSV of [network,]group,layer")
    parser.add_argument("--max-latency", type=float, metavar="SECONDS")
    parser.add_argument("--max-energy", type=float, metavar="JOULES")
    parser.add_argument("--max-proxy", type=float, metavar="SCORE")
    parser.add_argument(
        "--max-proxy-fraction",
        type=float,
        metavar="F",
        help="proxy budget as a fraction of the achievable range (default 0.5, as in solve)",
    )
    parser.add_argument(
        "--pareto", metavar="Q1,Q2", help="also compare fronts of two quantities (hypervolume)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="methods in parallel processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1, help="CP-SAT workers per method (default 1)"
    )
    parser.add_argument("--time-limit", type=float, metavar="SECONDS", help="exact solver limit")
    parser.add_argument("--solver", choices=("auto", *SOLVERS), default="auto")
    parser.add_argument("--population", type=int, default=DEFAULT_POPULATION, help="NSGA-II")
    parser.add_argument("--generations", type=int, default=DEFAULT_GENERATIONS, help="NSGA-II")
    parser.add_argument(
        "--evaluations", type=int, default=DEFAULT_EVALUATIONS, help="random search budget"
    )
    parser.add_argument("--gradient-steps", type=int, default=DEFAULT_GRADIENT_STEPS)
    parser.add_argument("--lambdas", type=int, default=DEFAULT_LAMBDAS, help="gradient sweep")
    parser.add_argument(
        "--data",
        default="auto",
        help="dataset for the measured top-1 column (mnist, digits, .npz); auto (default): "
        "mnist for shipped real models (mnist_resnet), none for others; none: skip",
    )
    parser.add_argument("--out-dir", default=".", help="where the CSV and Markdown go")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        out_dir = Path(args.out_dir)
        if not out_dir.is_dir():
            raise MilpMapError(f"{out_dir}: --out-dir must be an existing folder")
        for flag, value in (
            ("--jobs", args.jobs),
            ("--threads", args.threads),
            ("--population", args.population),
            ("--generations", args.generations),
            ("--evaluations", args.evaluations),
            ("--gradient-steps", args.gradient_steps),
            ("--lambdas", args.lambdas),
        ):
            if value < 1:
                raise MilpMapError(f"{flag} must be >= 1, got {value}")
        if args.seed < 0:
            raise MilpMapError(f"--seed must be >= 0, got {args.seed}")
        if args.time_limit is not None and not args.time_limit > 0:
            raise MilpMapError(f"--time-limit must be > 0 seconds, got {args.time_limit}")
        methods = None
        if args.methods is not None:
            methods = list(dict.fromkeys(m.strip() for m in args.methods.split(",") if m.strip()))
            if not methods:
                raise MilpMapError(f"--methods: name at least one of {', '.join(METHOD_NAMES)}")
        unknown = [m for m in methods or () if m not in METHODS]
        if unknown:
            raise MilpMapError(
                f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHOD_NAMES)}"
            )
        quantities = parse_quantities(args.pareto) if args.pareto else None
        problem = make_problem(args)
        target: Target = problem
        if args.granularity == "channel":
            target = build_split_problem(problem, args.group_size)
        settings = RunSettings(
            seed=args.seed,
            threads=args.threads,
            time_limit_s=args.time_limit,
            front=quantities,
            solver=args.solver,
            population=args.population,
            generations=args.generations,
            evaluations=args.evaluations,
            gradient_steps=args.gradient_steps,
            lambdas=args.lambdas,
        )
        accuracy_fn = _measured_top1(problem, args.data, args.model)
        result = compare(target, methods, settings, args.jobs, accuracy_fn, progress=not args.quiet)
    except MilpMapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    title = _title(problem, args, quantities)
    shown = format_table(result.table)
    print(title)
    print(shown.to_string(index=False))
    for name, reason in result.skipped.items():
        print(f"skipped {name}: {reason}")
    stem = f"compare_{problem.graph.name}_{problem.platform.name}_{args.granularity}"
    if quantities:
        stem += f"_{'_'.join(quantities)}"
    csv_path, md_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.md"
    result.table.to_csv(csv_path, index=False)
    md_path.write_text(f"{title}\n\n{shown.to_markdown(index=False)}\n")
    print(f"wrote {csv_path}, {md_path}")
    return 0


def _measured_top1(problem: Problem, data: str, model: str) -> Callable[[Solution], float] | None:
    """Top-1 (%) of each method's mapping, exported and run in onnxruntime on `data`.

    Only trained weights make a measured accuracy meaningful: by default shipped real models
    are measured and zoo models (seeded random weights) are not."""
    if data == "none" or (data == "auto" and not is_shipped_model(model)):
        return None
    from milp_map.calibration import Measurer

    try:
        measurer = Measurer(problem.graph, "mnist" if data == "auto" else data)
    except MilpMapError as exc:
        if data != "auto":
            raise
        print(f"note: no accuracy column ({exc})", file=sys.stderr)
        return None
    return lambda solution: (
        100.0 * measurer.point(solution.method, problem, solution.mapping, 0.0).top1
    )


def _title(problem, args: argparse.Namespace, quantities: tuple[str, str] | None) -> str:
    budget = problem.proxy_budget
    text = (
        f"{problem.graph.name} on {problem.platform.name}, {args.granularity}-wise, "
        f"min {problem.objective}, proxy budget {'none' if budget is None else f'{budget:.4g}'}"
    )
    if quantities:
        text += f"; fronts: {quantities[0]}-{quantities[1]}"
    return text


if __name__ == "__main__":
    raise SystemExit(main())
