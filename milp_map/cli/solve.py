"""`python -m milp_map.solve` (also `milp-map`): the proven-optimal mapping of a network onto a
platform, its exact Pareto front, or a concurrent schedule of several networks.

With no arguments it maps the zoo's ResNet-20 onto the DIANA preset for minimum latency with
half of the accuracy-proxy range as budget, and compares it with single-accelerator mappings.
Arguments and printing only: the work is `milp_map.pipeline`'s.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from milp_map.cli import common
from milp_map.defaults import (
    CONCURRENT_THREADS,
    DEFAULT_MODEL,
    DEFAULT_PLATFORM,
    SCHEDULE_OBJECTIVES,
)
from milp_map.errors import InfeasibleError, MilpMapError

if TYPE_CHECKING:
    import pandas as pd

    from milp_map.core.problem import Problem
    from milp_map.core.schedule import ScheduleProblem, ScheduleSolution
    from milp_map.core.solution import Solution
    from milp_map.core.split import Target


SHOWN_FRONT_ROWS = 40
"""Most front points printed to the terminal (label-DP fronts can hold thousands)."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.new_parser(
        "solve",
        "Find the provably optimal layer-wise mapping of a DNN onto an SoC's accelerators "
        "(minimum latency or energy under latency/energy/accuracy-proxy bounds).",
    )
    common.add_model(parser, DEFAULT_MODEL, repeatable=True)
    common.add_platform(parser, DEFAULT_PLATFORM)
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
    common.add_scores(parser)
    common.add_bounds(parser, common.SOLVE_FRACTION_DEFAULT)
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
        help="dataset that --max-accuracy-drop and --finetune measure (and train) on (default "
        "mnist; digits or an .npz)",
    )
    parser.add_argument(
        "--finetune",
        type=int,
        metavar="EPOCHS",
        help="fine-tune the mapping found (quantisation-aware, straight-through; the default "
        "recipe of `python -m milp_map.finetune`) and measure its top-1 after it; with "
        "--max-accuracy-drop the budget comes from the calibration after fine-tuning",
    )
    parser.add_argument(
        "--finetune-out",
        metavar="FILE.onnx",
        help="where --finetune writes the fine-tuned mapped model (default: beside --out, "
        "as OUT.finetuned.onnx)",
    )
    common.add_granularity(parser)
    parser.add_argument(
        "--pareto",
        metavar="Q1,Q2",
        help="compute the exact Pareto front of two of latency, energy, proxy (e.g. "
        "latency,energy) instead of one optimum; writes PREFIX.csv, .json and .png where "
        "PREFIX is --out without its suffix (default front_MODEL_PLATFORM_Q1_Q2)",
    )
    parser.add_argument(
        "--points", type=int, metavar="N", help="with --pareto: thin the written front to N points"
    )
    parser.add_argument(
        "--pareto-method",
        choices=("auto", "epsilon-constraint", "label-dp"),
        default="auto",
        help="auto (default): the exact label-setting DP when the graph's branches stay narrow "
        "(chains, residual and inception blocks), else the epsilon-constraint sweep with "
        "--solver; epsilon-constraint: always the sweep; label-dp: the DP or an error",
    )
    common.add_solver(
        parser,
        "exact method; auto (default): the chain DP for a chain whose only bound is the "
        "proxy budget and whose scores lie on a grid, else highs for layer-wise, and for "
        "channel splits the portfolio (cpsat and highs side by side, the first proof "
        "wins); fronts: cpsat (benchmarks/solver_policy.py); concurrent schedules: the "
        "series decomposition (dp) for one network and makespan, else cpsat",
    )
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
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="stream the solver's own log (incumbent, bound, gap; in its internal units) to stderr",
    )
    args = parser.parse_args(argv)
    if args.threads is None:
        args.threads = CONCURRENT_THREADS if args.schedule == "concurrent" else 1
    args.models = args.models or [DEFAULT_MODEL]
    args.model = args.models[0]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return common.run(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from milp_map.io.files import check_out_path
    from milp_map.solvers import SolverSettings

    if args.out:
        check_out_path(args.out)
    if args.plot:
        check_out_path(args.plot)
    _check_finetune_args(args)
    common.check_solver_limits(args.time_limit, args.gap, args.seed, args.threads)
    settings = SolverSettings(
        time_limit_s=args.time_limit,
        rel_gap=args.gap,
        threads=args.threads,
        seed=args.seed,
        log=args.verbose,
    )
    if args.schedule == "concurrent":
        if args.max_accuracy_drop is not None or args.finetune is not None:
            raise MilpMapError(
                "--max-accuracy-drop and --finetune work with --schedule sequential only"
            )
        return run_concurrent(args, settings)
    _check_sequential_args(args)
    if args.max_accuracy_drop is not None:
        args.max_proxy = _accuracy_budget(args)
    target = common.load_target(args, args.model)
    if args.pareto:
        return run_pareto(args, target, settings)
    return run_single(args, target, settings)


# ----------------------------------------------------------------------------- one optimum


def run_single(args: argparse.Namespace, target: Target, settings) -> int:
    """Solve, print, write the JSON and the Gantt chart; exit 2 infeasible, 1 nothing in time."""
    from milp_map import pipeline
    from milp_map.core.split import SplitProblem, base_problem
    from milp_map.evaluation.report import solution_json
    from milp_map.io.files import write_json_atomic

    problem = base_problem(target)
    solved = pipeline.solve(target, args.solver, settings)
    solution = solved.solution
    if solution.status == "infeasible":
        raise InfeasibleError(
            "no mapping meets the bounds: " + pipeline.explain_infeasible(target, solved.solve_fn)
        )
    print_report(target, solution, solved.references, args.quiet)
    interrupted = bool(solution.extra.get("interrupted"))
    tuned = None
    if args.finetune is not None and solution.mapping is not None and not interrupted:
        tuned = _finetune(args, target, solution)
    accuracy = None
    if args.max_accuracy_drop is not None and solution.mapping is not None and not interrupted:
        accuracy = _measured_drop(args, target, solution, tuned)
    if args.out:
        extra: dict = {"granularity": args.granularity}
        if isinstance(target, SplitProblem):
            extra["group_size"] = target.group_size
        if accuracy is not None:
            extra["accuracy"] = accuracy
        if tuned is not None:
            extra["finetune"] = tuned[1]
        path = write_json_atomic(solution_json(problem, solution, extra), args.out)
        print(f"wrote {path}")
    if args.plot and solution.metrics is not None:
        _plot_sequential(problem, solution, args.plot)
        print(f"wrote {args.plot}")
    if interrupted:
        found = "the best mapping found so far is reported" if solution.mapping else "no mapping"
        print(f"interrupted: {found}", file=sys.stderr)
        return common.EXIT_INTERRUPTED
    if solution.status in ("time_limit", "error"):
        print(f"error: no mapping found ({solution.detail})", file=sys.stderr)
        return common.EXIT_INCOMPLETE
    if accuracy is not None and accuracy["exceeded"]:
        return common.EXIT_INCOMPLETE
    return common.EXIT_OK


def _plot_sequential(problem: Problem, solution: Solution, path: str) -> None:
    """The layer-wise mapping as a one-network Gantt chart (units one after another)."""
    from milp_map.core.schedule import build_schedule_problem
    from milp_map.evaluation.gantt import plot_gantt
    from milp_map.evaluation.timeline import serial

    joint = build_schedule_problem([problem])
    timeline = serial(joint, [solution.extra["choice"]])
    plot_gantt(joint, timeline, Path(path), f"{problem.graph.name}: sequential")


def print_report(
    target: Target, solution: Solution, baselines: list[Solution], quiet: bool
) -> None:
    from milp_map.baselines.single import gain_percent
    from milp_map.core.split import SplitProblem, base_problem
    from milp_map.evaluation.report import format_si, split_table, unit_table

    problem = base_problem(target)
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
    unit = "s" if problem.objective == "latency" else "J"
    print(
        f"status {solution.status} ({solution.method}, {solution.solve_time_s:.2f} s); "
        f"{problem.objective} {format_si(solution.objective_value, unit)}, bound "
        f"{format_si(solution.best_bound, unit)}, gap "
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


# ----------------------------------------------------------------------------- accuracy


def _check_finetune_args(args: argparse.Namespace) -> None:
    """--finetune's companions, named before anything slow runs."""
    from milp_map.io.files import check_out_path

    if args.finetune is None:
        if args.finetune_out:
            raise MilpMapError("--finetune-out needs --finetune EPOCHS")
        return
    if args.finetune < 1:
        raise MilpMapError(
            f"--finetune must be >= 1 epochs, got {args.finetune} (leave it out for "
            "post-training accuracy)"
        )
    if args.pareto:
        raise MilpMapError("--finetune fine-tunes one mapping; drop --pareto")
    if args.finetune_out is None and args.out:
        args.finetune_out = str(Path(args.out).with_suffix("")) + ".finetuned.onnx"
    if args.finetune_out:
        check_out_path(args.finetune_out)
        if args.out and Path(args.finetune_out).resolve() == Path(args.out).resolve():
            raise MilpMapError(
                f"--finetune-out {args.finetune_out} is also --out; give the model its own file"
            )
    from milp_map.accuracy.finetune import require_torch

    require_torch()


def _finetune_settings(args: argparse.Namespace):
    from milp_map.accuracy.finetune import FineTuneSettings

    return None if args.finetune is None else FineTuneSettings(epochs=args.finetune)


def _finetune(args: argparse.Namespace, target: Target, solution: Solution) -> tuple:
    """(the fine-tuned model, the result file's `finetune` entry); prints the measurement."""
    from milp_map import pipeline
    from milp_map.accuracy.export import write_model_atomic
    from milp_map.accuracy.measure import drop_interval_pp

    settings = _finetune_settings(args)
    report = pipeline.finetune(
        target,
        solution,
        args.data,
        settings,
        progress=None if args.quiet else lambda line: print(line, file=sys.stderr, flush=True),
    )
    reference, after = report.reference, report.after_finetune
    low, high = drop_interval_pp(reference, after)
    drop = 100 * (reference.top1 - after.top1)
    print(
        f"fine-tuned {args.finetune} epoch{'' if args.finetune == 1 else 's'} in "
        f"{report.finetuned.seconds:.1f} s: top-1 "
        f"{100 * after.top1:.2f}% on {after.n_samples} test images of {report.data} (fp32 "
        f"{100 * reference.top1:.2f}%, post-training {100 * report.post_training.top1:.2f}%), "
        f"drop {drop:.2f} points (95% CI {low:.2f} .. {high:.2f})"
    )
    entry = {
        "recipe": settings.key(),
        "data": report.data,
        "top1": after.top1,
        "reference_top1": reference.top1,
        "post_training_top1": report.post_training.top1,
        "drop_pp": drop,
        "drop_interval_pp": [low, high],
        "model_file": None,
    }
    if args.finetune_out:
        path = write_model_atomic(report.finetuned.model, args.finetune_out)
        entry["model_file"] = str(path)
        print(f"wrote {path}")
    else:
        print("(no file written: pass --out or --finetune-out to keep the fine-tuned model)")
    return report.finetuned.model, entry


def _accuracy_budget(args: argparse.Namespace) -> float:
    """--max-accuracy-drop as an absolute proxy budget, from the model's calibration (after
    fine-tuning with --finetune)."""
    from milp_map import pipeline

    if args.max_proxy is not None or args.max_proxy_fraction is not None:
        raise MilpMapError("--max-accuracy-drop sets the proxy budget: drop --max-proxy[-fraction]")
    if args.pareto and "proxy" in args.pareto:
        raise MilpMapError("--max-accuracy-drop bounds the proxy; it cannot be a --pareto quantity")
    budget = pipeline.accuracy_budget(
        args.model,
        args.platform,
        args.max_accuracy_drop,
        sensitivity=args.sensitivity,
        granularity=args.granularity,
        data=args.data,
        finetune=_finetune_settings(args),
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    when = "" if args.finetune is None else f" after {args.finetune} epochs of fine-tuning"
    print(
        f"--max-accuracy-drop {args.max_accuracy_drop:g}: proxy budget {budget:.4g} "
        f"(calibrated{when})"
    )
    return budget


def _measured_drop(
    args: argparse.Namespace, target: Target, solution: Solution, tuned: tuple | None
) -> dict:
    """Export (or take the fine-tuned) mapping, measure its top-1 with onnxruntime on the
    held-out images and compare with the limit."""
    from milp_map import pipeline

    check = pipeline.verify_accuracy(
        args.model,
        args.platform,
        target,
        solution,
        args.max_accuracy_drop,
        sensitivity=args.sensitivity,
        data=args.data,
        finetune=_finetune_settings(args),
        mapped=None if tuned is None else tuned[0],
    )
    print(check.message())
    if check.exceeded:
        print(
            "warning: the measured drop exceeds --max-accuracy-drop; tighten it or pass "
            "--max-proxy (the calibration is an estimate)",
            file=sys.stderr,
        )
    return pipeline.accuracy_entry(check, args.data)


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
    from milp_map.core.schedule import build_schedule_problem

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
    problems = [common.load_target(args, model) for model in args.models]
    names = [p.graph.name for p in problems]  # type: ignore[union-attr]
    return build_schedule_problem(
        problems,  # type: ignore[arg-type]
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


def run_concurrent(args: argparse.Namespace, settings) -> int:
    """Solve, print, write JSON and the Gantt chart; exit 2 infeasible, 1 nothing in time."""
    from milp_map import pipeline
    from milp_map.evaluation.report import format_si, schedule_json
    from milp_map.io.files import write_json_atomic

    problem = make_schedule_problem(args)
    solution, references = pipeline.schedule(problem, args.solver, settings)
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
        from milp_map.evaluation.gantt import plot_gantt  # matplotlib: only when plotting

        title = f"{' + '.join(problem.names)} on {problem.platform.name}: {solution.method}"
        title += f", makespan {format_si(solution.metrics.makespan_s, 's')}"  # type: ignore[union-attr]
        plot_gantt(problem, solution.schedule, Path(args.plot), title)
        print(f"wrote {args.plot}")
    if solution.status in ("time_limit", "error"):
        print(f"error: no schedule found ({solution.detail})", file=sys.stderr)
        return common.EXIT_INCOMPLETE
    return common.EXIT_OK


def print_schedule_report(
    problem: ScheduleProblem,
    solution: ScheduleSolution,
    references: list[ScheduleSolution],
    quiet: bool,
) -> None:
    from milp_map.baselines.single import gain_percent
    from milp_map.evaluation.report import format_si, schedule_table

    sizes = ", ".join(
        f"{name} ({len(p.graph)} layers, {len(p.units)} units)"
        for name, p in zip(problem.names, problem.networks, strict=True)
    )
    print(
        f"concurrent schedule of {sizes} on platform {problem.platform.name} "
        f"({', '.join(problem.platform.accelerator_names)})"
    )
    budgets = ", ".join(
        f"{name} {'none' if b is None else f'{b:.4g}'}"
        for name, b in zip(problem.names, problem.proxy_budgets, strict=True)
    )
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
        others = {"makespan": ref.metrics.makespan_s, "energy": ref.metrics.energy_j}
        others.pop(problem.objective, None)  # already shown with its gain
        rest = "".join(
            f"  {q} {format_si(v, 's' if q == 'makespan' else 'J'):>10}" for q, v in others.items()
        )
        print(
            f"  {ref.method:<20} {problem.objective} {show(ref.objective_value):>10} "
            f"({gain:+.1f}%){rest}{broken}"
        )


# ----------------------------------------------------------------------------- fronts


def run_pareto(args: argparse.Namespace, target: Target, settings) -> int:
    """Sweep the exact front, write CSV/JSON/PNG and print it; exit 2 if no mapping is feasible."""
    from milp_map import pipeline
    from milp_map.core.names import file_stem
    from milp_map.core.problem import active_bounds
    from milp_map.core.split import base_problem
    from milp_map.evaluation.plots import plot_front
    from milp_map.evaluation.report import write_front
    from milp_map.exact.pareto import parse_quantities

    problem = base_problem(target)
    quantities = parse_quantities(args.pareto)
    if args.points is not None and args.points < 2:
        raise MilpMapError(
            f"--points keeps both ends of the front, so it must be >= 2, got {args.points}"
        )
    default = file_stem(
        f"front_{problem.graph.name}_{problem.platform.name}_{'_'.join(quantities)}"
    )
    prefix = Path(args.out) if args.out else Path(default)
    front, references, solve_fn = pipeline.front(
        target, quantities, args.solver, settings, points=args.points, method=args.pareto_method
    )
    if not front.points and front.interrupted:
        print("interrupted before the front's first point: nothing written", file=sys.stderr)
        return common.EXIT_INTERRUPTED
    if not front.points:
        raise InfeasibleError(
            "no mapping meets the bounds: " + pipeline.explain_infeasible(target, solve_fn)
        )
    paths = write_front(problem, front, prefix)
    png = paths[0].with_suffix(".png")
    title = f"{problem.graph.name} on {problem.platform.name} ({args.granularity}-wise)"
    limits = {q: b + target.tolerance(q) for q, b in active_bounds(target).items()}
    plot_front(front, [r for r in references if r.metrics is not None], png, title, limits)
    table = front.to_frame()
    print(
        f"exact {quantities[0]}-{quantities[1]} front of {problem.graph.name} on "
        f"{problem.platform.name}: {len(front.points)} points in {front.solve_time_s:.1f} s"
        f"{'' if front.complete else ' (incomplete: ' + front.detail + ')'}"
    )
    if not args.quiet:
        shown = _spread_rows(table, SHOWN_FRONT_ROWS)
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
        if len(shown) < len(table):
            print(f"({len(shown)} of {len(table)} points shown, evenly spaced; all in {paths[0]})")
    print("wrote " + ", ".join(str(p) for p in [*paths, png]))
    if front.interrupted:
        return common.EXIT_INTERRUPTED  # what it found is written, as a solve's best mapping
    return common.EXIT_OK if front.complete or front.thinned else common.EXIT_INCOMPLETE


def _spread_rows(table: pd.DataFrame, at_most: int) -> pd.DataFrame:
    """At most `at_most` rows of a front table, evenly spaced, both ends included."""
    if len(table) <= at_most:
        return table
    rows = sorted({round(i * (len(table) - 1) / (at_most - 1)) for i in range(at_most)})
    return table.iloc[rows]


if __name__ == "__main__":
    raise SystemExit(main())
