"""`python -m milp_map.check`: validate a mapping written by anyone and print its metrics.

Exit codes: 0 valid, 1 valid but a bound is broken, 2 invalid input (one line on stderr).
Arguments and printing only: the check is milp_map/evaluation/check.py.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from milp_map.cli import common
from milp_map.defaults import DEFAULT_GROUP_SIZE

if TYPE_CHECKING:
    from milp_map.evaluation.check import Checked

EXIT_VALID, EXIT_OVER_BOUND, EXIT_INVALID = (
    common.EXIT_OK,
    common.EXIT_INCOMPLETE,
    common.EXIT_INVALID,
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.new_parser(
        "check",
        "Validate a layer mapping (the `layers` list of a result JSON, or the whole file) and "
        "print its latency, energy and accuracy proxy.",
    )
    parser.add_argument("--mapping", required=True, metavar="FILE.json", help="mapping to check")
    common.add_model(parser, None)
    common.add_platform(parser, None)
    common.add_scores(parser)
    common.add_bounds(
        parser,
        "without any bound flag the file's `constraints` apply; a file without them has no bounds",
    )
    parser.add_argument(
        "--group-size",
        type=int,
        metavar="G",
        help="channel granularity of splits (default: the file's `group_size`, else "
        f"{DEFAULT_GROUP_SIZE})",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    parser.add_argument(
        "--out",
        metavar="FILE.json",
        help="also write the verdict: validity, metrics, bounds and the ones broken",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return common.run(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from milp_map.evaluation.check import check_mapping
    from milp_map.io.files import check_out_path

    if args.out:
        check_out_path(args.out)
    checked = check_mapping(
        args.mapping,
        model=args.model,
        platform=args.platform,
        sensitivity=args.sensitivity,
        groups=args.groups,
        bounds=common.bounds_of(args),
        group_size=args.group_size,
    )
    print_report(checked, args.mapping, args.quiet)
    if args.out:
        _write_verdict(checked, args.mapping, args.out)
    if checked.broken:
        print(
            f"error: {args.mapping}: the mapping breaks " + "; ".join(checked.broken),
            file=sys.stderr,
        )
        return EXIT_OVER_BOUND
    return EXIT_VALID


def _write_verdict(checked: Checked, where: str, out: str) -> None:
    from pathlib import Path

    from milp_map.core.split import SplitProblem
    from milp_map.defaults import QUANTITIES
    from milp_map.io.files import write_json_atomic

    target = checked.target
    verdict = {
        "mapping": str(Path(where).resolve()),
        "valid": True,
        "model": checked.problem.graph.name,
        "platform": checked.problem.platform.name,
        "granularity": "channel" if isinstance(target, SplitProblem) else "layer",
        "metrics": checked.evaluation.metrics.as_dict(),
        "bounds": {q: b for q in QUANTITIES if (b := target.bound(q)) is not None},
        "broken": list(checked.broken),
    }
    print(f"wrote {write_json_atomic(verdict, out)}")


def print_report(checked: Checked, where: str, quiet: bool) -> None:
    from milp_map.core.solution import Solution
    from milp_map.core.split import SplitProblem
    from milp_map.defaults import QUANTITIES
    from milp_map.evaluation.report import format_si, split_table, unit_table

    problem, target = checked.problem, checked.target
    mode = (
        f"channel split, groups of {target.group_size}"
        if isinstance(target, SplitProblem)
        else "layer-wise"
    )
    print(
        f"mapping {where}: valid ({mode}); model {problem.graph.name} "
        f"({len(problem.graph)} layers, {len(problem.units)} units) on platform "
        f"{problem.platform.name} ({', '.join(problem.platform.accelerator_names)})"
    )
    metrics = checked.evaluation.metrics
    if not quiet:
        solution = Solution(
            "check", "feasible", problem.objective, mapping=checked.mapping, metrics=metrics
        )
        table = (
            split_table(target, solution)
            if isinstance(target, SplitProblem)
            else unit_table(problem, solution)
        )
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(
        f"latency {format_si(metrics.latency_s, 's')}, energy {format_si(metrics.energy_j, 'J')}, "
        f"proxy {metrics.accuracy_proxy:.4g}"
    )
    bounds = {q: b for q in QUANTITIES if (b := target.bound(q)) is not None}
    if not bounds:
        print("bounds: none given")
    elif checked.broken:
        for phrase in checked.broken:
            print(f"bound violated: {phrase}")
    else:
        print("bounds met: " + ", ".join(f"{q} <= {b:.6g}" for q, b in bounds.items()))


if __name__ == "__main__":
    raise SystemExit(main())
