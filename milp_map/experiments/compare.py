"""The comparator: every mapping method on one problem, against the proven optimum.

Each method (milp_map/experiments/methods.py) runs on the same network, platform, cost
model, proxy and bounds; one row per method gives latency, energy, proxy, gap to the exact
optimum, MAEG gain over the best single accelerator and wall time. With a front, each
method's front is scored by its hypervolume against the exact front on one shared
reference point. `python -m milp_map.compare` prints and writes the table.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm import tqdm

from milp_map.baselines.single import maeg_gain
from milp_map.core.problem import Problem
from milp_map.core.solution import Metrics, Solution
from milp_map.core.split import Target, base_problem
from milp_map.defaults import METHOD_NAMES
from milp_map.errors import MilpMapError
from milp_map.evaluation.report import format_si
from milp_map.exact.pareto import hypervolume_2d
from milp_map.experiments.methods import RunSettings, not_applicable, timed_run
from milp_map.io.models import is_shipped_model

# ----------------------------------------------------------------------------- workers


_WORKER_TARGET: Target | None = None


def _init_worker(target: Target) -> None:
    """Workers ignore Ctrl-C: the parent stops them (and keeps nothing half-done)."""
    global _WORKER_TARGET
    _WORKER_TARGET = target
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker(name: str, settings: RunSettings) -> Solution:
    assert _WORKER_TARGET is not None
    return timed_run(name, _WORKER_TARGET, settings)


# ----------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Comparison:
    """Every method's Solution and the table of rows (raw units, one row per method)."""

    solutions: dict[str, Solution]
    table: pd.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)
    reference_point: tuple[float, float] | None = None
    interrupted: bool = False
    """Ctrl-C (or SIGTERM) stopped the run: `solutions` holds the methods that answered (a
    stopped solve's best mapping so far among them); the others were stopped or never ran."""

    def to_frame(self) -> pd.DataFrame:
        """The table: one row per method, raw units (seconds, joules, percent)."""
        return self.table


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
            interrupted = _run_in_processes(target, runnable, settings, jobs, solutions, bar)
        else:
            interrupted = _run_in_turn(target, runnable, settings, solutions, bar)
    finally:
        bar.close()
    solutions = {m: solutions[m] for m in runnable if m in solutions}
    table, reference = comparison_table(target, solutions, settings.front, accuracy_fn)
    return Comparison(solutions, table, skipped, reference, interrupted)


def _run_in_turn(
    target: Target,
    methods: list[str],
    settings: RunSettings,
    solutions: dict[str, Solution],
    bar: tqdm,
) -> bool:
    """Each method in turn into `solutions`; whether Ctrl-C stopped the run. A solver that
    catches Ctrl-C answers with its best mapping so far (kept); any other method is stopped
    by KeyboardInterrupt (nothing kept); either way no later method runs."""
    try:
        for m in methods:
            bar.set_postfix_str(m)
            solutions[m] = timed_run(m, target, settings)
            bar.update(1)
            if solutions[m].extra.get("interrupted"):
                return True
    except KeyboardInterrupt:
        return True
    return False


def _run_in_processes(
    target: Target,
    methods: list[str],
    settings: RunSettings,
    jobs: int,
    solutions: dict[str, Solution],
    bar: tqdm,
) -> bool:
    """The methods in worker processes into `solutions`; whether Ctrl-C stopped the run (the
    workers ignore it: the running ones are ended, the finished ones kept)."""
    pool = ProcessPoolExecutor(
        max_workers=min(jobs, len(methods)),
        mp_context=multiprocessing.get_context("spawn"),  # no forked solver threads
        initializer=_init_worker,
        initargs=(target,),
    )
    try:
        futures = {pool.submit(_worker, m, settings): m for m in methods}
        for future in as_completed(futures):
            solutions[futures[future]] = future.result()
            bar.set_postfix_str(futures[future])
            bar.update(1)
    except BaseException as exc:
        running = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in running:
            process.terminate()  # do not wait for running methods
        if isinstance(exc, KeyboardInterrupt):
            return True
        raise
    pool.shutdown()
    return False


def comparison_table(
    target: Target,
    solutions: dict[str, Solution],
    front: tuple[str, str] | None = None,
    accuracy_fn: Callable[[Solution], float] | None = None,
) -> tuple[pd.DataFrame, tuple[float, float] | None]:
    """One row per method: metrics, gap to "exact" (%), MAEG gains (%), wall time, accuracy;
    with `front`, the points, hypervolume and its ratio to the exact front's."""
    problem = base_problem(target)
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


# ----------------------------------------------------------------------------- accuracy column


def measured_top1(
    problem: Problem, data: str, model: str
) -> tuple[Callable[[Solution], float] | None, str]:
    """(top-1 % of a method's mapping, exported and run in onnxruntime on `data`; why there is
    no such column, or "").

    Only trained weights make a measured accuracy meaningful: with `data="auto"` shipped real
    models are measured on MNIST and zoo models (seeded random weights) are not; "none" skips.
    """
    if data == "none" or (data == "auto" and not is_shipped_model(model)):
        return None, ""
    from milp_map.accuracy.calibration import Measurer

    try:
        measurer = Measurer(problem.graph, "mnist" if data == "auto" else data)
    except MilpMapError as exc:
        if data != "auto":
            raise
        return None, f"no accuracy column ({exc})"
    return (
        lambda solution: (
            100.0 * measurer.point(solution.method, problem, solution.mapping, 0.0).top1
        )
    ), ""
