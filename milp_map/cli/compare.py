"""`python -m milp_map.compare`: every mapping method on one problem, against the proven optimum,
as a table on screen and as CSV + Markdown files (the comparison is
milp_map/experiments/compare.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from milp_map.cli import common
from milp_map.defaults import (
    DEFAULT_EVALUATIONS,
    DEFAULT_GENERATIONS,
    DEFAULT_GRADIENT_STEPS,
    DEFAULT_LAMBDAS,
    DEFAULT_MODEL,
    DEFAULT_PLATFORM,
    DEFAULT_POPULATION,
    DEFAULT_PROXY_FRACTION,
    METHOD_NAMES,
)
from milp_map.errors import MilpMapError

if TYPE_CHECKING:
    from milp_map.core.problem import Problem


SEARCH_BUDGETS = ("population", "generations", "evaluations", "gradient_steps", "lambdas")
"""The baselines' budget flags, passed on to RunSettings as they are named."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.new_parser(
        "compare",
        "Run every applicable mapping method under the same constraints and compare each with "
        "the proven optimum (gap, MAEG gain, wall time, fronts).",
    )
    common.add_model(parser, DEFAULT_MODEL)
    common.add_platform(parser, DEFAULT_PLATFORM)
    parser.add_argument("--objective", choices=("latency", "energy"), default="latency")
    parser.add_argument(
        "--methods",
        help=f"comma-separated subset of {','.join(METHOD_NAMES)} (default: all applicable)",
    )
    common.add_granularity(parser)
    common.add_scores(parser)
    common.add_bounds(parser, f"default {DEFAULT_PROXY_FRACTION}, as in solve")
    parser.add_argument(
        "--pareto", metavar="Q1,Q2", help="also compare fronts of two quantities (hypervolume)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="methods in parallel processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1, help="CP-SAT workers per method (default 1)"
    )
    common.add_solver(parser, "exact backend (default auto, as in solve)")
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
    parser.add_argument(
        "--out",
        "--out-dir",
        dest="out",
        default=".",
        metavar="DIR",
        help="folder for compare_MODEL_PLATFORM_GRANULARITY[_Q1_Q2].csv and .md, made if "
        "missing (default .; --out-dir is the old name)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return common.run(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from milp_map.core.names import file_stem
    from milp_map.core.split import base_problem
    from milp_map.exact.pareto import parse_quantities
    from milp_map.experiments.compare import compare, format_table, measured_top1
    from milp_map.experiments.methods import RunSettings
    from milp_map.io.files import write_text_atomic

    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise MilpMapError(f"{out_dir}: is not a folder; --out takes the folder to write into")
    out_dir.mkdir(parents=True, exist_ok=True)
    budgets = {name: getattr(args, name) for name in SEARCH_BUDGETS}
    common.check_positive(jobs=args.jobs, threads=args.threads, **budgets)
    common.check_solver_limits(args.time_limit, seed=args.seed, threads=args.threads)
    methods = _methods(args.methods)
    quantities = parse_quantities(args.pareto) if args.pareto else None
    target = common.load_target(args, args.model)
    problem = base_problem(target)
    settings = RunSettings(
        seed=args.seed,
        threads=args.threads,
        time_limit_s=args.time_limit,
        front=quantities,
        solver=args.solver,
        **budgets,
    )
    accuracy_fn, note = measured_top1(problem, args.data, args.model)
    if note:
        print(f"note: {note}", file=sys.stderr)
    result = compare(target, methods, settings, args.jobs, accuracy_fn, progress=not args.quiet)
    if result.interrupted and not result.solutions:
        print("interrupted before the first method answered: nothing written", file=sys.stderr)
        return common.EXIT_INTERRUPTED
    title = _title(problem, args, quantities)
    shown = format_table(result.table)
    print(title)
    print(shown.to_string(index=False))
    for name, reason in result.skipped.items():
        print(f"skipped {name}: {reason}")
    stem = file_stem(f"compare_{problem.graph.name}_{problem.platform.name}_{args.granularity}")
    if quantities:
        stem += f"_{'_'.join(quantities)}"
    csv_path = write_text_atomic(result.table.to_csv(index=False), out_dir / f"{stem}.csv")
    md_path = write_text_atomic(
        f"{title}\n\n{shown.to_markdown(index=False)}\n", out_dir / f"{stem}.md"
    )
    print(f"wrote {csv_path}, {md_path}")
    if result.interrupted:
        done = ", ".join(result.solutions)
        print(
            f"interrupted: the table holds {done} only; the other methods were stopped or "
            "never started",
            file=sys.stderr,
        )
        return common.EXIT_INTERRUPTED
    return common.EXIT_OK


def _methods(text: str | None) -> list[str] | None:
    """--methods as a list of known names (None: every applicable method)."""
    if text is None:
        return None
    methods = list(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    if not methods:
        raise MilpMapError(f"--methods: name at least one of {', '.join(METHOD_NAMES)}")
    unknown = [m for m in methods if m not in METHOD_NAMES]
    if unknown:
        raise MilpMapError(
            f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHOD_NAMES)}"
        )
    return methods


def _title(problem: Problem, args: argparse.Namespace, quantities: tuple[str, str] | None) -> str:
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
