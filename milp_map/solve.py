"""`python -m milp_map.solve`: the proven-optimal mapping of a network onto a platform.

With no arguments it maps the zoo's ResNet-20 onto the DIANA preset for minimum latency with
half of the accuracy-proxy range as budget, and compares it with single-accelerator mappings.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from milp_map.backends import SOLVERS, SolverSettings
from milp_map.baselines.manual import manual_mappings
from milp_map.baselines.schedules import reference_schedules
from milp_map.baselines.single import gain_percent, single_accelerator
from milp_map.channels import DEFAULT_GROUP_SIZE, SplitProblem, build_split_problem
from milp_map.errors import InfeasibleError, MilpMapError
from milp_map.evaluate import evaluate_split, violations
from milp_map.formulations import channel_split, concurrent, concurrent_mip, layerwise
from milp_map.gantt import plot_gantt
from milp_map.models import is_shipped_model, load_model
from milp_map.multi import SCHEDULE_OBJECTIVES, ScheduleProblem, build_schedule_problem
from milp_map.pareto import SolveFn, exact_front, parse_quantities, write_front
from milp_map.platform import load_groups_file, load_platform, preset_names
from milp_map.plots import plot_front
from milp_map.problem import Constraints, Problem, active_bounds, build_problem
from milp_map.proxy import (
    Sensitivity,
    data_free_sensitivity,
    load_sensitivity,
    shipped_sensitivity,
)
from milp_map.report import (
    check_out_path,
    format_si,
    schedule_json,
    schedule_table,
    solution_json,
    unit_table,
    write_json_atomic,
)
from milp_map.schedule import (
    ScheduleSolution,
    serial,
)
from milp_map.solution import Solution
from milp_map.zoo import is_zoo_name

DEFAULT_MODEL = "resnet20"
DEFAULT_PLATFORM = "diana"
DEFAULT_PROXY_FRACTION = 0.5


CONCURRENT_THREADS = 2
"""Scheduling needs CP-SAT's LNS workers: on googlenet / jetson-xavier one worker kept the
sequential hint (1.966 ms) for 60 s, two found 1.847 ms within 30 s."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m milp_map.solve",
        description="Find the provably optimal layer-wise mapping of a DNN onto an SoC's "
        "accelerators (minimum latency or energy under latency/energy/accuracy-proxy bounds).",
    )
    parser.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="MODEL",
        help=f"zoo model name or path to an .onnx file (default: {DEFAULT_MODEL}; "
        "list the zoo with `python -m milp_map.zoo --list`); repeat it with --schedule "
        "concurrent to map several networks at once",
    )
    parser.add_argument(
        "--platform",
        default=DEFAULT_PLATFORM,
        help=f"preset name ({', '.join(preset_names())}) or platform YAML file "
        f"(default: {DEFAULT_PLATFORM})",
    )
    parser.add_argument(
        "--objective",
        choices=("latency", *SCHEDULE_OBJECTIVES),
        default="latency",
        help="latency or energy; with --schedule concurrent also makespan (= latency), "
        "weighted (--weight) and completion (sum of the networks' completion times)",
    )
    parser.add_argument(
        "--schedule",
        choices=("sequential", "concurrent"),
        default="sequential",
        help="sequential (default): units one at a time; concurrent: every unit also gets a "
        "start time, so branches and networks run at once on different accelerators",
    )
    parser.add_argument(
        "--weight",
        type=float,
        default=0.5,
        metavar="W",
        help="weighted objective: W * makespan / its scale + (1 - W) * energy / its scale "
        "(default 0.5)",
    )
    parser.add_argument(
        "--deadline",
        action="append",
        default=[],
        metavar="[MODEL=]SECONDS",
        help="concurrent: completion deadline of one network (or of every network); repeatable",
    )
    parser.add_argument(
        "--max-switches",
        type=int,
        metavar="K",
        help="concurrent: at most K unit edges of each network cross accelerators (HaX-CoNN)",
    )
    parser.add_argument(
        "--contention",
        type=float,
        metavar="ALPHA",
        help="concurrent: a unit overlapping a unit on another accelerator runs 1 + ALPHA * "
        "(its memory intensity / the largest) times slower (shared-memory contention; small "
        "instances)",
    )
    parser.add_argument(
        "--plot", metavar="FILE.png", help="write a Gantt chart of the schedule (PNG)"
    )
    parser.add_argument(
        "--sensitivity",
        help="CSV of layer,precision,score (default: the shipped data-free scores of a zoo "
        "model, else data-free scores computed from the model's weights)",
    )
    parser.add_argument("--groups", help="CSV of [network,]group,layer: layers mapped as one unit")
    parser.add_argument("--max-latency", type=float, metavar="SECONDS")
    parser.add_argument("--max-energy", type=float, metavar="JOULES")
    parser.add_argument("--max-proxy", type=float, metavar="SCORE", help="absolute proxy budget")
    parser.add_argument(
        "--max-proxy-fraction",
        type=float,
        metavar="F",
        help="proxy budget as a fraction of the way from the lowest to the highest achievable "
        f"proxy (default {DEFAULT_PROXY_FRACTION} unless --max-proxy is given; 1 = no budget)",
    )
    parser.add_argument(
        "--max-accuracy-drop",
        type=float,
        metavar="POINTS",
        help="top-1 drop allowed below fp32, in percentage points (shipped real models, e.g. "
        "mnist_resnet): a proxy budget from the model's measured calibration; the mapping found "
        "is then exported, measured with onnxruntime and checked against it",
    )
    parser.add_argument(
        "--data",
        default="mnist",
        help="dataset that --max-accuracy-drop measures on (default mnist; digits or an .npz)",
    )
    parser.add_argument(
        "--granularity",
        choices=("layer", "channel"),
        default="layer",
        help="layer: each layer on one accelerator; channel: split a layer's output channels "
        "across accelerators that run in parallel (ODiMO's fine-grain mapping)",
    )
    parser.add_argument(
        "--group-size",
        type=int,
        default=DEFAULT_GROUP_SIZE,
        metavar="G",
        help="channel granularity: parts are multiples of G channels "
        f"(default {DEFAULT_GROUP_SIZE}, or the layer's channel count if smaller)",
    )
    parser.add_argument(
        "--pareto",
        metavar="Q1,Q2",
        help="compute the exact Pareto front of two of latency, energy, proxy (e.g. "
        "latency,energy) instead of one optimum; writes PREFIX.csv, .json and .png where "
        "PREFIX is --out without its suffix (default front_MODEL_Q1_Q2)",
    )
    parser.add_argument(
        "--points", type=int, metavar="N", help="with --pareto: thin the written front to N points"
    )
    parser.add_argument(
        "--pareto-method",
        choices=("auto", "epsilon-constraint"),
        default="auto",
        help="auto (default): the exact label-setting DP when the units form a chain, else "
        "the epsilon-constraint sweep with --solver; epsilon-constraint: always the sweep",
    )
    parser.add_argument(
        "--solver",
        choices=("auto", *SOLVERS),
        default="auto",
        help="exact backend; auto (default) = highs for layer-wise, cpsat for channel splits, "
        "the faster of the two in benchmarks/scaling.py and channel_split_scaling.py",
    )
    parser.add_argument("--time-limit", type=float, metavar="SECONDS", help="stop after this long")
    parser.add_argument("--gap", type=float, metavar="REL", help="stop at this relative gap")
    parser.add_argument(
        "--threads",
        type=int,
        help="CP-SAT workers (default 1, deterministic, for mappings; 2 for --schedule "
        "concurrent, whose LNS workers find better schedules; with more than one, runs may "
        "return different tied optima)",
    )
    parser.add_argument("--seed", type=int, default=0, help="solver random seed (default 0)")
    parser.add_argument("--out", metavar="FILE.json", help="write the result as JSON")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    args = parser.parse_args(argv)
    if args.threads is None:
        args.threads = CONCURRENT_THREADS if args.schedule == "concurrent" else 1
    args.models = args.models or [DEFAULT_MODEL]
    args.model = args.models[0]
    return args


def resolve_solver(solver: str, granularity: str, time_limit_s: float | None = None) -> str:
    """`auto`: HiGHS proves 1,000-5,000-layer layer-wise instances in seconds where CP-SAT
    stalls at a few % gap; CP-SAT is faster on fine channel splits and their fronts, and is
    used whenever a time limit is set (a time-limited HiGHS 1.16 solve has spun for minutes)."""
    if solver != "auto":
        return solver
    if granularity == "channel" or time_limit_s is not None:
        return "cpsat"
    return "highs"


def resolve_sensitivity(path: str | None, model: str, graph, precisions) -> Sensitivity:
    """The user's file, the shipped zoo file, or data-free scores from the weights."""
    if path:
        return load_sensitivity(path)
    shipped = shipped_sensitivity(model) if is_zoo_name(model) or is_shipped_model(model) else None
    if shipped is not None:
        return shipped
    return data_free_sensitivity(graph, precisions)


def make_problem(args: argparse.Namespace, model: str | None = None) -> Problem:
    """The problem of one network (`model`, default the first --model) from the arguments."""
    model = model or args.model
    objective = "energy" if args.objective == "energy" else "latency"
    graph = load_model(model)
    platform = load_platform(args.platform)
    precisions = sorted({a.precision for a in platform.accelerators})
    sensitivity = resolve_sensitivity(args.sensitivity, model, graph, precisions)
    fraction = args.max_proxy_fraction
    sweeps_proxy = bool(args.pareto) and "proxy" in args.pareto
    if fraction is None and args.max_proxy is None and not sweeps_proxy:
        fraction = DEFAULT_PROXY_FRACTION
    constraints = Constraints(
        max_latency_s=args.max_latency,
        max_energy_j=args.max_energy,
        max_proxy=args.max_proxy,
        max_proxy_fraction=fraction,
    )
    groups = None
    if args.groups:
        tables = load_groups_file(args.groups)
        groups = tables.get(graph.name) or tables.get("*")
        if groups is None:
            raise MilpMapError(
                f"{args.groups}: no groups for network '{graph.name}'; the file has "
                f"{', '.join(sorted(tables))} (leave the network column empty to match any)"
            )
    return build_problem(graph, platform, sensitivity, objective, constraints, groups)


Target = Problem | SplitProblem


def warm_start(target: Target, solver: str, settings: SolverSettings) -> tuple[Any, list[Solution]]:
    """(hint, reference mappings) a solve starts from: the best reference mapping within the
    bounds (single-accelerator, ODiMO's manual ones); for channel splits, the layer-wise
    optimum (solved here, and added to the references)."""
    problem = target.base if isinstance(target, SplitProblem) else target
    references = _distinct(manual_mappings(problem) + single_accelerator(problem))
    hint = _best_feasible_choice(problem, references)
    if isinstance(target, SplitProblem):
        layer_optimum = layerwise.solve(problem, solver, settings, hint=hint)
        if layer_optimum.metrics is not None:
            hint = layer_optimum.extra["choice"]
            references.append(dataclasses.replace(layer_optimum, method="layer-wise optimum"))
        hint = channel_split.selection_from_layerwise(target, hint) if hint else None
    return hint, references


def make_solve_fn(target: Target, solver: str, settings: SolverSettings) -> SolveFn:
    """solve(objective, bounds, hint) for the layer-wise or the channel-split model."""
    if isinstance(target, SplitProblem):
        return lambda objective, bounds, hint: channel_split.solve(
            target, solver, settings, objective, bounds, hint
        )
    return lambda objective, bounds, hint: layerwise.solve(
        target, solver, settings, objective, bounds, hint
    )


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


def print_report(
    target: Target, solution: Solution, baselines: list[Solution], quiet: bool
) -> None:
    problem = target.base if isinstance(target, SplitProblem) else target
    units = len(problem.units)
    layers = len(problem.graph)
    mode = (
        f", channel groups of {target.group_size}, {target.splittable_count} splittable"
        if isinstance(target, SplitProblem)
        else ""
    )
    print(
        f"model {problem.graph.name} ({layers} layers, {units} units{mode}) on platform "
        f"{problem.platform.name} ({', '.join(problem.platform.accelerator_names)})"
    )
    low, high = problem.proxy_range
    budget = problem.proxy_budget
    print(
        f"objective: min {problem.objective}; proxy {problem.sensitivity.kind} "
        f"[{low:.4g} .. {high:.4g}], budget {'none' if budget is None else f'{budget:.4g}'}"
    )
    if solution.mapping is not None and not quiet:
        if isinstance(target, SplitProblem):
            table = split_table(target, solution)
        else:
            table = unit_table(problem, solution)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(
        f"status {solution.status} ({solution.method}, {solution.solve_time_s:.2f} s); "
        f"{problem.objective} {_value(problem, solution.objective_value)}, bound "
        f"{_value(problem, solution.best_bound)}, gap "
        f"{'-' if solution.gap is None else f'{100 * solution.gap:.4g}%'}"
    )
    if solution.metrics is not None:
        m = solution.metrics
        print(
            f"latency {format_si(m.latency_s, 's')}, energy {format_si(m.energy_j, 'J')}, "
            f"proxy {m.accuracy_proxy:.4g}"
        )
    if baselines and solution.metrics is not None:
        print("reference mappings (gain of the optimum over each):")
        for base in baselines:
            assert base.metrics is not None
            lat = gain_percent(base.metrics.latency_s, solution.metrics.latency_s)
            energy = gain_percent(base.metrics.energy_j, solution.metrics.energy_j)
            over = (
                " (over the proxy budget)"
                if budget is not None
                and (base.metrics.accuracy_proxy > budget + problem.tolerance("proxy"))
                else ""
            )
            print(
                f"  {base.method:<34} latency {format_si(base.metrics.latency_s, 's'):>10} "
                f"({lat:+.1f}%)  energy {format_si(base.metrics.energy_j, 'J'):>10} "
                f"({energy:+.1f}%)  proxy {base.metrics.accuracy_proxy:.4g}{over}"
            )


def _value(problem: Problem, value: float | None) -> str:
    if value is None:
        return "-"
    return format_si(value, "s" if problem.objective == "latency" else "J")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.out:
            check_out_path(args.out)
        if args.plot:
            check_out_path(args.plot)
        check_solver_args(args)
        if args.schedule == "concurrent":
            if args.max_accuracy_drop is not None:
                raise MilpMapError("--max-accuracy-drop works with --schedule sequential only")
            return run_concurrent(args)
        _check_sequential_args(args)
        if args.max_accuracy_drop is not None:
            args.max_proxy = _accuracy_budget(args)
        problem = make_problem(args)
        args.solver = resolve_solver(args.solver, args.granularity, args.time_limit)
        settings = SolverSettings(
            time_limit_s=args.time_limit, rel_gap=args.gap, threads=args.threads, seed=args.seed
        )
        target: Target = problem
        if args.granularity == "channel":
            target = build_split_problem(problem, args.group_size)
        hint, references = warm_start(target, args.solver, settings)
        solve_fn = make_solve_fn(target, args.solver, settings)
        if args.pareto:
            return run_pareto(args, problem, target, solve_fn, references)
        bounds = active_bounds(target)
        solution = solve_fn(problem.objective, bounds, hint)
        if solution.status == "infeasible":
            raise InfeasibleError(
                "no mapping meets the bounds: " + explain_infeasible(target, solve_fn)
            )
        print_report(target, solution, references, args.quiet)
        accuracy = None
        if args.max_accuracy_drop is not None and solution.mapping is not None:
            accuracy = _measured_drop(args, target, solution)
        if args.out:
            extra: dict = {"granularity": args.granularity}
            if isinstance(target, SplitProblem):
                extra["group_size"] = target.group_size
            if accuracy is not None:
                extra["accuracy"] = accuracy
            path = write_json_atomic(solution_json(problem, solution, extra), args.out)
            print(f"wrote {path}")
        if args.plot and solution.metrics is not None:
            joint = build_schedule_problem([problem])
            timeline = serial(joint, [solution.extra["choice"]])
            plot_gantt(joint, timeline, Path(args.plot), f"{problem.graph.name}: sequential")
            print(f"wrote {args.plot}")
        if solution.status in ("time_limit", "error"):
            print(f"error: no mapping found ({solution.detail})", file=sys.stderr)
            return 1
        if accuracy is not None and accuracy["exceeded"]:
            return 1
    except MilpMapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def check_solver_args(args: argparse.Namespace) -> None:
    """Solver limits a solver would reject with a cryptic status, named on one line."""
    if args.time_limit is not None and not args.time_limit > 0:
        raise MilpMapError(f"--time-limit must be > 0 seconds, got {args.time_limit}")
    if args.gap is not None and not args.gap >= 0:
        raise MilpMapError(f"--gap must be >= 0, got {args.gap}")
    if args.threads < 1:
        raise MilpMapError(f"--threads must be >= 1, got {args.threads}")
    if args.seed < 0:
        raise MilpMapError(f"--seed must be >= 0, got {args.seed}")


def _accuracy_budget(args: argparse.Namespace) -> float:
    """--max-accuracy-drop as an absolute proxy budget, from the model's calibration."""
    from milp_map import calibration
    from milp_map.datasets import load_dataset

    if args.max_proxy is not None or args.max_proxy_fraction is not None:
        raise MilpMapError("--max-accuracy-drop sets the proxy budget: drop --max-proxy[-fraction]")
    if args.pareto and "proxy" in args.pareto:
        raise MilpMapError("--max-accuracy-drop bounds the proxy; it cannot be a --pareto quantity")
    if not is_shipped_model(args.model):
        raise MilpMapError(
            f"--max-accuracy-drop needs a shipped real model with a measured calibration "
            f"(e.g. mnist_resnet), not '{args.model}'; use --max-proxy-fraction"
        )
    load_dataset(args.data)  # fail before solving if the data cannot be read (cached)
    budget = calibration.proxy_budget_for_drop(
        args.model,
        args.platform,
        args.max_accuracy_drop,
        args.sensitivity,
        args.granularity,
        data=args.data,
    )
    print(f"--max-accuracy-drop {args.max_accuracy_drop:g}: proxy budget {budget:.4g} (calibrated)")
    return budget


def _measured_drop(args: argparse.Namespace, target: Target, solution: Solution) -> dict:
    """Export the mapping, measure its top-1 with onnxruntime and compare with the limit."""
    from milp_map import calibration

    problem = target.base if isinstance(target, SplitProblem) else target
    fit = calibration.load_calibration(
        args.model, args.platform, data=args.data, sensitivity=args.sensitivity
    )
    check = calibration.verify_drop(
        problem,
        solution.mapping,
        args.max_accuracy_drop,
        data=args.data,
        calibration=fit,
        proxy=solution.metrics.accuracy_proxy if solution.metrics else None,
    )
    print(check.message())
    if check.exceeded:
        print(
            "warning: the measured drop exceeds --max-accuracy-drop; tighten it or pass "
            "--max-proxy (the calibration is an estimate)",
            file=sys.stderr,
        )
    return {
        "data": args.data,
        "top1": check.top1,
        "reference_top1": check.reference_top1,
        "drop_pp": check.drop_pp,
        "max_drop_pp": check.max_drop_pp,
        "predicted_drop_pp": check.predicted_pp,
        "exceeded": check.exceeded,
    }


def _check_sequential_args(args: argparse.Namespace) -> None:
    """Options that only concurrent scheduling understands, named if given without it."""
    if len(args.models) > 1:
        raise MilpMapError("several --model need --schedule concurrent")
    if args.objective not in ("latency", "energy"):
        raise MilpMapError(f"--objective {args.objective} needs --schedule concurrent")
    given = [
        flag
        for flag, unset in (
            ("--deadline", not args.deadline),
            ("--max-switches", args.max_switches is None),
            ("--contention", args.contention is None),
        )
        if not unset
    ]
    if given:
        raise MilpMapError(f"{', '.join(given)} need(s) --schedule concurrent")
    if args.plot and (args.pareto or args.granularity == "channel"):
        raise MilpMapError(
            "--plot draws a layer-wise or concurrent schedule; drop --pareto / "
            "--granularity channel"
        )


# ----------------------------------------------------------------------------- concurrent


def make_schedule_problem(args: argparse.Namespace) -> ScheduleProblem:
    """Every --model on the platform, joined with the scheduling options."""
    if args.granularity != "layer" or args.pareto:
        raise MilpMapError(
            "--schedule concurrent takes whole layers and one objective; drop "
            "--granularity channel / --pareto"
        )
    if args.sensitivity and len(args.models) > 1:
        raise MilpMapError(
            "--sensitivity names one model's scores; with several --model the "
            "shipped or data-free scores of each are used"
        )
    problems = [make_problem(args, model) for model in args.models]
    names = [p.graph.name for p in problems]
    return build_schedule_problem(
        problems,
        objective=args.objective,
        weight=args.weight,
        deadlines_s=parse_deadlines(args.deadline, names),
        max_switches=args.max_switches,
        contention=args.contention,
        max_makespan_s=args.max_latency,
        max_energy_j=args.max_energy,
    )


def parse_deadlines(specs: Sequence[str], names: Sequence[str]) -> list[float | None]:
    """`MODEL=SECONDS` for one network, `SECONDS` for all of them."""
    deadlines: list[float | None] = [None] * len(names)
    for spec in specs:
        name, _, text = spec.rpartition("=")
        try:
            seconds = float(text)
        except ValueError:
            raise MilpMapError(f"--deadline {spec}: '{text}' is not a number of seconds") from None
        if not name:
            deadlines = [seconds] * len(names)
            continue
        if name not in names:
            raise MilpMapError(
                f"--deadline {spec}: no network '{name}'; the networks are {', '.join(names)}"
            )
        for k, other in enumerate(names):
            if other == name:
                deadlines[k] = seconds
    return deadlines


def run_concurrent(args: argparse.Namespace) -> int:
    """Solve, print, write JSON and the Gantt chart; exit 2 infeasible, 1 nothing in time."""
    problem = make_schedule_problem(args)
    solver = "cpsat" if args.solver == "auto" else args.solver
    settings = SolverSettings(
        time_limit_s=args.time_limit, rel_gap=args.gap, threads=args.threads, seed=args.seed
    )
    references = reference_schedules(problem, settings)
    valid = [r for r in references if not r.extra["violations"]]
    hint = min(valid, key=lambda r: r.objective_value).schedule if valid else None
    if solver == "cpsat":
        solution = concurrent.solve(problem, settings, hint)
    else:
        solution = concurrent_mip.solve(problem, solver, settings)
    if solution.status == "infeasible":
        raise InfeasibleError(
            "no schedule meets the bounds (deadlines, proxy budgets, switch limits, "
            "--max-latency, --max-energy)"
        )
    print_schedule_report(problem, solution, references, args.quiet)
    if args.out:
        extra = {"references": {r.method: r.objective_value for r in references}}
        path = write_json_atomic(schedule_json(problem, solution, extra), args.out)
        print(f"wrote {path}")
    if args.plot and solution.schedule is not None:
        title = f"{' + '.join(problem.names)} on {problem.platform.name}: {solution.method}"
        title += f", makespan {format_si(solution.metrics.makespan_s, 's')}"  # type: ignore[union-attr]
        plot_gantt(problem, solution.schedule, Path(args.plot), title)
        print(f"wrote {args.plot}")
    if solution.status in ("time_limit", "error"):
        print(f"error: no schedule found ({solution.detail})", file=sys.stderr)
        return 1
    return 0


def print_schedule_report(
    problem: ScheduleProblem,
    solution: ScheduleSolution,
    references: list[ScheduleSolution],
    quiet: bool,
) -> None:
    sizes = ", ".join(
        f"{name} ({len(p.graph)} layers, {len(p.units)} units)"
        for name, p in zip(problem.names, problem.networks, strict=True)
    )
    print(
        f"concurrent schedule of {sizes} on platform {problem.platform.name} "
        f"({', '.join(problem.platform.accelerator_names)})"
    )
    budgets = ", ".join("none" if b is None else f"{b:.4g}" for b in problem.proxy_budgets)
    print(f"objective: min {problem.objective}; proxy budget {budgets}")
    if solution.schedule is not None and not quiet:
        table = schedule_table(problem, solution)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    unit = {"makespan": "s", "completion": "s", "energy": "J"}.get(problem.objective, "")

    def show(value: float | None) -> str:
        if value is None:
            return "-"
        return format_si(value, unit) if unit else f"{value:.6g}"

    print(
        f"status {solution.status} ({solution.method}, {solution.solve_time_s:.2f} s); "
        f"{problem.objective} {show(solution.objective_value)}, bound "
        f"{show(solution.best_bound)}, gap "
        f"{'-' if solution.gap is None else f'{100 * solution.gap:.4g}%'}"
    )
    if solution.metrics is None:
        return
    m = solution.metrics
    done = ", ".join(
        f"{n} {format_si(t, 's')}" for n, t in zip(problem.names, m.completion_s, strict=True)
    )
    print(
        f"makespan {format_si(m.makespan_s, 's')}, energy {format_si(m.energy_j, 'J')}, "
        f"proxy {sum(m.proxy):.4g}; completion {done}"
    )
    if references:
        print("reference schedules (gain of the schedule over each):")
    for ref in references:
        assert ref.metrics is not None and ref.objective_value is not None
        gain = gain_percent(ref.objective_value, solution.objective_value)  # type: ignore[arg-type]
        broken = f" ({ref.extra['violations'][0]})" if ref.extra["violations"] else ""
        print(
            f"  {ref.method:<20} {problem.objective} {show(ref.objective_value):>10} "
            f"({gain:+.1f}%)  makespan {format_si(ref.metrics.makespan_s, 's'):>10}  "
            f"energy {format_si(ref.metrics.energy_j, 'J'):>10}{broken}"
        )


def run_pareto(
    args: argparse.Namespace,
    problem: Problem,
    target: Target,
    solve_fn: SolveFn,
    references: list[Solution],
) -> int:
    """Sweep the exact front, write CSV/JSON/PNG and print it; exit 2 if no mapping is feasible."""
    quantities = parse_quantities(args.pareto)
    if args.points is not None and args.points < 2:
        raise MilpMapError(
            f"--points keeps both ends of the front, so it must be >= 2, got {args.points}"
        )
    prefix = (
        Path(args.out) if args.out else Path(f"front_{problem.graph.name}_{'_'.join(quantities)}")
    )
    front = exact_front(target, solve_fn, quantities, args.points, method=args.pareto_method)
    if not front.points:
        raise InfeasibleError(
            "no mapping meets the bounds: " + explain_infeasible(target, solve_fn)
        )
    paths = write_front(problem, front, prefix)
    png = paths[0].with_suffix(".png")
    title = f"{problem.graph.name} on {problem.platform.name} ({args.granularity}-wise)"
    plot_front(front, [r for r in references if r.metrics is not None], png, title)
    table = front.to_frame()
    print(
        f"exact {quantities[0]}-{quantities[1]} front of {problem.graph.name} on "
        f"{problem.platform.name}: {len(front.points)} points in {front.solve_time_s:.1f} s"
        f"{'' if front.complete else ' (incomplete: ' + front.detail + ')'}"
    )
    if not args.quiet:
        print(table.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    print("wrote " + ", ".join(str(p) for p in [*paths, png]))
    return 0 if front.complete else 1


def split_table(target: SplitProblem, solution: Solution) -> pd.DataFrame:
    """Per-unit split (channels per accelerator), in milliseconds and millijoules."""
    assert solution.mapping is not None
    frame = evaluate_split(target, solution.mapping).units
    return pd.DataFrame(
        {
            "unit": frame["unit"],
            "split": frame["split"].map(
                lambda parts: " ".join(
                    f"{acc}:{'all' if n is None else n}" for acc, n in sorted(parts.items())
                )
            ),
            "latency_ms": frame["latency_s"] * 1e3,
            "energy_mJ": frame["energy_j"] * 1e3,
            "proxy": frame["proxy"],
        }
    )


def _best_feasible_choice(problem: Problem, references: list[Solution]) -> tuple[int, ...] | None:
    feasible = [r for r in references if not _violates(problem, r)]
    if not feasible:
        return None
    return min(feasible, key=lambda r: r.objective_value).extra["choice"]


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


if __name__ == "__main__":
    raise SystemExit(main())
