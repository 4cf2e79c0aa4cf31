"""One solve, written once: solver policy, warm start, the exact model, and the reference
mappings a solve is reported against.

The command lines, the Python API, the comparator and sweep cells all solve through `solve`;
`front` and `schedule` are its siblings for exact fronts and concurrent schedules, and
`accuracy_budget` / `verify_accuracy` turn an allowed top-1 drop into a proxy budget and
measure the answer against it (after fine-tuning, given FineTuneSettings), and `finetune`
fine-tunes an answer and measures it.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from milp_map.accuracy import calibration
from milp_map.accuracy.calibration import DropCheck
from milp_map.accuracy.export import model_proto, plan_of
from milp_map.accuracy.finetune import FineTuneReport, FineTuneSettings, finetune_and_measure
from milp_map.baselines.manual import manual_mappings
from milp_map.baselines.schedules import reference_schedules
from milp_map.baselines.single import single_accelerator
from milp_map.core.problem import Problem, active_bounds
from milp_map.core.schedule import ScheduleProblem, ScheduleSolution
from milp_map.core.solution import Front, Solution
from milp_map.core.split import SplitProblem, Target, base_problem
from milp_map.errors import MilpMapError
from milp_map.evaluation.evaluator import evaluate_split, violations
from milp_map.exact import chain_dp, series_schedule
from milp_map.exact.pareto import SolveFn, exact_front
from milp_map.formulations import channel_split, concurrent, concurrent_mip, layerwise
from milp_map.io.datasets import load_dataset
from milp_map.io.models import is_shipped_model
from milp_map.solvers import SolverSettings
from milp_map.solvers.portfolio import race, settled


@dataclass(frozen=True)
class Solved:
    """A solve's answer, the reference mappings it was warm-started from and is reported
    against, and the solve function (for more solves on the same model, e.g. diagnosis)."""

    solution: Solution
    references: list[Solution]
    solve_fn: SolveFn


def solve(target: Target, solver: str = "auto", settings: SolverSettings | None = None) -> Solved:
    """The proven optimum of `target` under its own objective and bounds.

    A time limit or Ctrl-C never loses the warm start: when the search stops before it finds
    a mapping (or Ctrl-C lands in the warm start's own solve), the best mapping known so far
    comes back as `feasible`, with the search's bound when it has one.
    """
    settings = (settings or SolverSettings()).with_deadline()
    solver = resolve_solver(solver, target)
    start = warm_start(target, solver, settings)
    solve_fn = make_solve_fn(target, solver, settings)
    if start.interrupted:
        solution = Solution(solver, "time_limit", target.objective, detail="interrupted")
    else:
        solution = solve_fn(target.objective, active_bounds(target), start.hint)
    if solution.mapping is None and solution.status == "time_limit" and start.best is not None:
        solution = _best_so_far(target, start.best, solution, interrupted=start.interrupted)
    elif start.best is not None and _worse(solution, start.best):
        solution = _warm_start_kept(solution, start.best)
    return Solved(solution, start.references, solve_fn)


def front(
    target: Target,
    quantities: tuple[str, str],
    solver: str = "auto",
    settings: SolverSettings | None = None,
    *,
    points: int | None = None,
    method: str = "auto",
    progress: bool = True,
) -> tuple[Front, list[Solution], SolveFn]:
    """The exact front of two quantities, the reference mappings (to draw beside it) and the
    solve function the sweep used."""
    settings = settings or SolverSettings()
    solver = resolve_solver(solver, target, front=True)
    references = warm_start(target, solver, settings).references
    solve_fn = make_solve_fn(target, solver, settings)
    found = exact_front(
        target,
        solve_fn,
        quantities,
        points,
        progress,
        method=method,
        time_limit_s=settings.time_limit_s,
    )
    return found, references, solve_fn


def schedule(
    problem: ScheduleProblem, solver: str = "auto", settings: SolverSettings | None = None
) -> tuple[ScheduleSolution, list[ScheduleSolution]]:
    """The concurrent schedule and the serial reference schedules it is reported against.

    `auto`: the series decomposition (exact, exact/series_schedule.py) where it applies (one
    network, makespan; GoogLeNet alone proven in about 10 s where CP-SAT keeps a 23% gap
    after 60 s), else CP-SAT hinted with the best serial reference. Under a time limit the
    decomposition gets it first; if it does not finish, CP-SAT gets the whole limit again, so
    the answer is never worse than CP-SAT's alone (the wall time at most doubles). `dp`: the
    decomposition only; `highs`/`cbc`: the MILP.
    """
    settings = settings or SolverSettings()
    if solver == "portfolio":
        raise MilpMapError(
            "--solver portfolio solves mapping problems; a concurrent schedule needs auto, dp, "
            "cpsat, highs or cbc"
        )
    if solver == "dp" or (
        solver == "auto" and series_schedule.reason_not_applicable(problem) is None
    ):
        try:
            found = series_schedule.solve(problem, settings.time_limit_s)
            return found, reference_schedules(problem, settings)
        except series_schedule.OutOfTime:
            if solver == "dp":
                return _out_of_time(problem, settings), reference_schedules(problem, settings)
    solver = "cpsat" if solver in ("auto", "dp") else solver
    references = reference_schedules(problem, settings)
    valid = [r for r in references if not r.extra["violations"]]
    hint = min(valid, key=lambda r: r.objective_value).schedule if valid else None  # type: ignore[arg-type,return-value]
    if solver == "cpsat":
        return concurrent.solve(problem, settings, hint), references
    return concurrent_mip.solve(problem, solver, settings), references


def _out_of_time(problem: ScheduleProblem, settings: SolverSettings) -> ScheduleSolution:
    return ScheduleSolution(
        "series-dp",
        "time_limit",
        problem.objective,
        solve_time_s=settings.time_limit_s or 0.0,
        detail="the series decomposition did not finish within --time-limit; use cpsat",
    )


# ----------------------------------------------------------------------------- the steps


MAPPING_ONLY = ("dp", "portfolio")
"""`--solver` choices that are not a backend: the chain DP and the CP-SAT / HiGHS race."""


def resolve_solver(solver: str, target: Target, front: bool = False) -> str:
    """`auto` picks by structure (benchmarks/solver_policy.py measures each choice):

    * the exact chain DP for a layer-wise chain whose only bound is the proxy budget, when
      every score lies on a grid fine enough for the DP to be fast (exact, and the fastest
      method up to chain_dp.AUTO_MAX_WORK);
    * HiGHS for other layer-wise problems: the fastest to prove 1,000-5,000-layer DAGs (CP-SAT,
      even with its full LP relaxation, takes 2-6x longer), and a watchdog holds it to a time
      limit;
    * for channel splits, CP-SAT and HiGHS side by side, the first proof winning: each is
      far faster than the other on some networks (solvers/portfolio.py).

    Fronts (`front`) solve many small hinted steps, where CP-SAT is the faster backend for
    both granularities (MobileNetV1 / Rock Pi N10 sweep: 49 points in 2.8 s against 28 s).
    """
    split = isinstance(target, SplitProblem)
    if solver == "dp" and split:
        raise MilpMapError(
            "--solver dp maps whole layers; use --granularity layer, or another solver"
        )
    if solver != "auto":
        return solver
    if front:
        return "cpsat"
    if split:
        return "portfolio"
    bounds = active_bounds(target)
    resolution = chain_dp.exact_resolution(target, bounds)
    if (
        resolution is not None
        and chain_dp.work(target, bounds, resolution) <= chain_dp.AUTO_MAX_WORK
    ):
        return "dp"
    return "highs"


def _layer_solver(solver: str) -> str:
    """The backend for the layer-wise solve behind a channel split's warm start."""
    return "highs" if solver in MAPPING_ONLY else solver


@dataclass(frozen=True)
class WarmStart:
    """Where a solve starts: the hint, the reference mappings, the best mapping within the
    bounds known before the search (scored on the target), and whether Ctrl-C stopped the
    warm start's own solve."""

    hint: Any
    references: list[Solution]
    best: Solution | None = None
    interrupted: bool = False


def warm_start(target: Target, solver: str, settings: SolverSettings) -> WarmStart:
    """The best reference mapping within the bounds (single-accelerator, ODiMO's manual ones)
    as hint; for channel splits, the layer-wise optimum (solved here, and added to the
    references)."""
    problem = base_problem(target)
    references = _distinct(manual_mappings(problem) + single_accelerator(problem))
    best = _best_feasible(problem, references)
    hint = None if best is None else best.extra["choice"]
    interrupted = False
    if isinstance(target, SplitProblem):
        layer_optimum = layerwise.solve(problem, _layer_solver(solver), settings, hint=hint)
        interrupted = bool(layer_optimum.extra.get("interrupted"))
        if layer_optimum.metrics is not None:
            hint = layer_optimum.extra["choice"]
            best = dataclasses.replace(layer_optimum, method="layer-wise optimum")
            references.append(best)
        hint = channel_split.selection_from_layerwise(target, hint) if hint else None
        best = None if best is None else _as_split(target, best, hint)
    return WarmStart(hint, references, best, interrupted)


def make_solve_fn(target: Target, solver: str, settings: SolverSettings) -> SolveFn:
    """solve(objective, bounds, hint) for the layer-wise or the channel-split model, by one
    backend, the chain DP (`dp`) or the CP-SAT / HiGHS race (`portfolio`)."""
    if solver == "dp" and isinstance(target, SplitProblem):
        raise MilpMapError("--solver dp maps whole layers; use --granularity layer")

    def raw(objective: str, bounds: Mapping[str, float], hint: Any) -> Solution:
        if solver == "portfolio":
            return _portfolio_solve(target, objective, bounds, hint, settings)
        if solver == "dp":
            resolution = chain_dp.exact_resolution(target, bounds)  # type: ignore[arg-type]
            return chain_dp.solve(target, objective, bounds, resolution, settings.deadline_s)  # type: ignore[arg-type]
        return _model_solve(target, solver, objective, bounds, hint, settings)

    def checked(objective: str, bounds: Mapping[str, float], hint: Any) -> Solution:
        return _within_bounds(target, raw(objective, bounds, hint), bounds)

    return checked


def _within_bounds(target: Target, solution: Solution, bounds: Mapping[str, float]) -> Solution:
    """Every answer re-checked by the evaluator against the bounds it was solved under: a
    mapping that breaks one (a solver's numerics) is an error, never `optimal` or `feasible`."""
    if solution.metrics is None:
        return solution
    broken = violations(target, solution.metrics, bounds)  # type: ignore[arg-type]
    if not broken:
        return solution
    return dataclasses.replace(
        solution,
        status="error",
        mapping=None,
        metrics=None,
        best_bound=None,
        detail=f"{solution.method}'s mapping breaks a bound ({'; '.join(broken)}): a solver's "
        "numerical error; try another --solver",
    )


HEAD_START = 2.0
"""CP-SAT's deterministic work (about seconds) alone before the portfolio races HiGHS: what
it proves in that time comes back the same on every run and machine load."""


def _portfolio_solve(
    target: Target,
    objective: str,
    bounds: Mapping[str, float],
    hint: Any,
    settings: SolverSettings,
) -> Solution:
    """CP-SAT alone for HEAD_START deterministic units (small and easy models: a reproducible
    answer), then CP-SAT and HiGHS side by side from its best mapping, the first proof winning
    (solvers/portfolio.py), within what is left of the time limit."""
    start = time.perf_counter()
    settings = settings.with_deadline()  # the head start and the race share the time limit
    head = dataclasses.replace(settings, deterministic_time=HEAD_START)
    cpsat_run = _cpsat_runner(target, objective, bounds)
    first = cpsat_run(head, hint)
    elapsed = time.perf_counter() - start
    deadline = settings.deadline_s
    out_of_time = deadline is not None and time.perf_counter() >= deadline
    stopped = settings.stop is not None and settings.stop.is_set()
    if settled(first, settings) or first.extra.get("interrupted") or out_of_time or stopped:
        detail = f"{first.detail}; portfolio: cpsat alone within its head start"
        return dataclasses.replace(first, detail=detail)
    hint = first.extra.get("choice", hint)
    runs = {
        "cpsat": lambda run_settings: cpsat_run(run_settings, hint),
        "highs": functools.partial(_model_solve, target, "highs", objective, bounds, hint),
    }
    answer = race(runs, settings)
    return dataclasses.replace(answer, solve_time_s=answer.solve_time_s + elapsed)


def _cpsat_runner(
    target: Target, objective: str, bounds: Mapping[str, float]
) -> Callable[[SolverSettings, Any], Solution]:
    """run(settings, hint) by CP-SAT; a split model is built once for all its runs."""
    if isinstance(target, SplitProblem):
        return _split_runner(target, objective, bounds)

    def run(settings: SolverSettings, hint: Any) -> Solution:
        return _model_solve(target, "cpsat", objective, bounds, hint, settings)

    return run


BUILD_POLL_S = 0.1
"""How often a run waiting for its model checks the deadline and the stop request."""


def _split_runner(
    target: SplitProblem, objective: str, bounds: Mapping[str, float]
) -> Callable[[SolverSettings, Any], Solution]:
    """The CP-SAT split model's run(settings, hint), the model built in a background thread:
    a run whose time limit passes (or that is asked to stop) while the model is still being
    built returns at once, `time_limit` without a mapping, so the caller's warm start stands
    in (ResNet-50 per channel on jetson-xavier takes 13 s to build)."""
    built: dict[str, Any] = {}

    def build() -> None:
        try:
            built["run"] = channel_split.prepare(target, "cpsat", objective, bounds).run
        except BaseException as exc:  # handed to the run that waits for it
            built["error"] = exc

    builder = threading.Thread(target=build, name="cpsat-split-build", daemon=True)
    builder.start()

    def run(settings: SolverSettings, hint: Any) -> Solution:
        start = time.perf_counter()
        while builder.is_alive():
            late = settings.deadline_s is not None and time.perf_counter() >= settings.deadline_s
            if late or (settings.stop is not None and settings.stop.is_set()):
                why = "time limit" if late else "stop request"
                return Solution(
                    "cpsat",
                    "time_limit",
                    objective,
                    solve_time_s=time.perf_counter() - start,
                    detail=f"{why} while the CP-SAT split model was still being built",
                )
            builder.join(BUILD_POLL_S)
        if "error" in built:
            raise built["error"]
        return built["run"](settings, hint)

    return run


def _model_solve(
    target: Target,
    solver: str,
    objective: str,
    bounds: Mapping[str, float],
    hint: Any,
    settings: SolverSettings,
) -> Solution:
    """One backend's solve of the layer-wise or the channel-split model."""
    if isinstance(target, SplitProblem):
        return channel_split.solve(target, solver, settings, objective, bounds, hint)
    return layerwise.solve(target, solver, settings, objective, bounds, hint)


def explain_infeasible(target: Target, solve_fn: SolveFn) -> str:
    """Which bound cannot be met, and the best value reachable under the other bounds."""
    bounds = active_bounds(target)
    reasons = []
    for quantity, bound in bounds.items():
        others = {q: b for q, b in bounds.items() if q != quantity}
        best = solve_fn(quantity, others, None)
        if best.status == "infeasible" and others:
            # the other bounds clash among themselves: report this one on its own
            others = {}
            best = solve_fn(quantity, others, None)
        if best.status == "optimal" and best.objective_value > bound + target.tolerance(quantity):
            flag = _FLAGS[quantity]
            reasons.append(
                f"{flag} {bound:.6g} is unreachable: the lowest {quantity} "
                f"{'under the other bounds ' if others else ''}is {best.objective_value:.6g}"
            )
    if not reasons:
        return "the bounds " + ", ".join(_FLAGS[q] for q in bounds) + " cannot hold together"
    return "; ".join(reasons)


_FLAGS = {"latency": "--max-latency", "energy": "--max-energy", "proxy": "proxy budget"}


def _best_feasible(problem: Problem, references: list[Solution]) -> Solution | None:
    feasible = [r for r in references if not _violates(problem, r)]
    return min(feasible, key=lambda r: r.objective_value) if feasible else None  # type: ignore[arg-type,return-value]


def _as_split(target: SplitProblem, solution: Solution, selection: Any) -> Solution:
    """A layer-wise mapping as the split mapping it is, scored on the split problem."""
    mapping = channel_split.mapping_of(target, selection)
    metrics = evaluate_split(target, mapping).metrics
    return dataclasses.replace(
        solution, mapping=mapping, metrics=metrics, extra={**solution.extra, "choice": selection}
    )


def _best_so_far(target: Target, best: Solution, stopped: Solution, interrupted: bool) -> Solution:
    """The warm start's mapping as the answer of a search that stopped without one."""
    value = best.metrics.value(target.objective)  # type: ignore[union-attr]
    # every objective is a sum of non-negative costs: a bound below 0 (CP-SAT's trivial one,
    # lowered by its rounding allowance) says nothing
    bound = None if stopped.best_bound is None else min(max(stopped.best_bound, 0.0), value)
    return Solution(
        method=stopped.method,
        status="feasible",
        objective=target.objective,
        mapping=best.mapping,
        metrics=best.metrics,
        best_bound=bound,
        solve_time_s=stopped.solve_time_s,
        detail=f"{stopped.detail or 'stopped'} before the search found a mapping; "
        f"the best known one ({best.method}) is reported",
        extra={
            "choice": best.extra["choice"],
            "interrupted": interrupted or bool(stopped.extra.get("interrupted")),
        },
    )


def _worse(solution: Solution, best: Solution) -> bool:
    """The search returned a mapping worse than the warm start it was given (stopped early
    without using the hint, or a solver's numerical failure)."""
    value, known = solution.objective_value, best.objective_value
    return value is not None and known is not None and value > known * (1 + 1e-9) + 1e-15


def _warm_start_kept(solution: Solution, best: Solution) -> Solution:
    """The warm start in place of a worse answer: `feasible`, with the search's bound only
    where the search did not claim a (then false) proof."""
    value = best.objective_value
    bound = None if solution.status == "optimal" else solution.best_bound
    bound = None if bound is None else min(max(bound, 0.0), value)  # type: ignore[type-var]
    return dataclasses.replace(
        solution,
        status="feasible",
        mapping=best.mapping,
        metrics=best.metrics,
        best_bound=bound,
        detail=f"{solution.detail}; its mapping was worse than the warm start "
        f"({best.method}), which is reported",
        extra={**solution.extra, "choice": best.extra["choice"]},
    )


def _distinct(solutions: list[Solution]) -> list[Solution]:
    """Drop reference mappings identical to an earlier one (ODiMO's names come first)."""
    seen, kept = set(), []
    for solution in solutions:
        key = solution.extra.get("choice")
        if key not in seen:
            seen.add(key)
            kept.append(solution)
    return kept


def _violates(problem: Problem, solution: Solution) -> bool:
    return solution.metrics is None or bool(violations(problem, solution.metrics))


# ----------------------------------------------------------------------------- accuracy


def accuracy_budget(
    model: str,
    platform: str,
    max_drop_pp: float,
    *,
    sensitivity: str | None = None,
    granularity: str = "layer",
    data: str = calibration.DEFAULT_DATA,
    finetune: FineTuneSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> float:
    """The proxy budget whose calibrated top-1 drop on `data` (after fine-tuning with
    `finetune`) is at most `max_drop_pp` points (shipped real models only: their calibration
    is measured; a recipe without a shipped fit is fitted first, which takes minutes)."""
    if not is_shipped_model(model):
        raise MilpMapError(
            f"--max-accuracy-drop needs a shipped real model with a measured calibration "
            f"(e.g. mnist_resnet), not '{model}'; use --max-proxy-fraction"
        )
    load_dataset(data)  # fail before solving if the data cannot be read (cached)
    return calibration.proxy_budget_for_drop(
        model,
        platform,
        max_drop_pp,
        sensitivity,
        granularity,
        data=data,
        finetune=finetune,
        progress=progress,
    )


def verify_accuracy(
    model: str,
    platform: str,
    target: Target,
    solution: Solution,
    max_drop_pp: float,
    *,
    sensitivity: str | None = None,
    data: str = calibration.DEFAULT_DATA,
    finetune: FineTuneSettings | None = None,
    mapped: Any = None,
) -> DropCheck:
    """Export (fine-tune) the solution's mapping, measure it on the held-out half of `data`
    and compare its drop with `max_drop_pp` (and with what the calibration predicted).
    `mapped`: its ONNX model fine-tuned already with `finetune` (pipeline.finetune)."""
    assert solution.mapping is not None
    fit = calibration.load_calibration(
        model, platform, data=data, sensitivity=sensitivity, finetune=finetune
    )
    return calibration.verify_drop(
        base_problem(target),
        solution.mapping,
        max_drop_pp,
        data=data,
        calibration=fit,
        proxy=solution.metrics.accuracy_proxy if solution.metrics else None,
        finetune=finetune,
        mapped=mapped,
    )


def finetune(
    target: Target,
    solution: Solution,
    data: str = calibration.DEFAULT_DATA,
    settings: FineTuneSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> FineTuneReport:
    """Fine-tune the mapping of `solution` on the training split of `data` (finetune.py) and
    measure it on the test split before and after."""
    if solution.mapping is None:
        raise MilpMapError("the solve found no mapping to fine-tune")
    problem = base_problem(target)
    graph = problem.graph
    return finetune_and_measure(
        model_proto(graph.name, graph),
        graph,
        plan_of(problem, solution.mapping),
        load_dataset(data),
        settings,
        progress,
        metadata={"milp_map.model": graph.name, "milp_map.platform": problem.platform.name},
    )


def accuracy_entry(check: DropCheck, data: str) -> dict[str, Any]:
    """The `accuracy` object of a result file."""
    return {
        "data": data,
        "top1": check.top1,
        "reference_top1": check.reference_top1,
        "drop_pp": check.drop_pp,
        "max_drop_pp": check.max_drop_pp,
        "predicted_drop_pp": check.predicted_pp,
        "drop_interval_pp": None if check.interval_pp is None else list(check.interval_pp),
        "exceeded": check.exceeded,
        "finetune": check.finetune or None,
    }
