"""`python -m milp_map.fit_platform`: fit a platform's free parameters to measured runs.

Reads a CSV of measured whole-network runs (`network,run,mapping,latency_s[,energy_j]`, see
docs/models-and-platforms.md), fits per-accelerator latency and energy scales, a transfer
scale, a cost per accelerator switch and the static power by least squares, checks the fit on
held-out runs and writes the fitted platform YAML (with its tables) into the output folder.
Arguments and printing only: the fit is milp_map/evaluation/fit.py.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from milp_map.cli import common
from milp_map.resources import data_path, preset_names

if TYPE_CHECKING:
    from milp_map.evaluation.fit import FitReport, Prediction

WITHIN = 0.05
"""The error a prediction counts as good within (5 %, about the repeatability of PiQi's runs)."""
SHOWN_RUNS = 20


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.new_parser(
        "fit_platform",
        "Fit a platform to measured whole-network runs (latency and energy) and write the "
        "fitted platform YAML; runs held out of the fit check it.",
    )
    common.add_platform(parser, "rockpi-n10")
    parser.add_argument(
        "--runs",
        metavar="FILE.csv",
        help="measured runs: network,run,mapping,latency_s[,energy_j] (default: the preset's "
        "shipped runs.csv, e.g. data/platforms/rockpi-n10/runs.csv)",
    )
    parser.add_argument("--network", help="fit only the runs of this network (default: all)")
    parser.add_argument(
        "--model", help="ONNX file or model name of the runs' network (default: its name)"
    )
    parser.add_argument(
        "--holdout",
        type=float,
        default=0.3,
        metavar="F",
        help="fraction of the runs (mixed and single-accelerator ones each) kept out of the "
        "fit to check it (default 0.3; 0 fits all)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out split")
    parser.add_argument("--name", help="name of the fitted platform (default PLATFORM-fit)")
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="output folder: NAME.yaml, its tables in NAME/, predictions.csv (default fit_NAME)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return common.run(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from milp_map.core.names import check_name
    from milp_map.errors import MilpMapError
    from milp_map.evaluation.fit import fit_platform
    from milp_map.io.files import check_out_path
    from milp_map.io.platforms import load_platform
    from milp_map.solvers.base import MAX_SEED

    if not 0.0 <= args.holdout < 1.0:
        raise MilpMapError(f"--holdout must be in [0, 1), got {args.holdout:g}")
    if not 0 <= args.seed <= MAX_SEED:
        raise MilpMapError(f"--seed must be in 0..{MAX_SEED}, got {args.seed}")
    platform = load_platform(args.platform)
    runs = args.runs
    if runs is None:  # only a preset named as such ships runs; a user's YAML needs --runs
        shipped = data_path("platforms", str(args.platform), "runs.csv")
        if args.platform not in preset_names() or not shipped.is_file():
            raise MilpMapError(f"platform '{platform.name}' ships no measured runs; give --runs")
        runs = str(shipped)
    try:
        name = check_name(args.name or f"{platform.name}-fit", "platform name")
    except ValueError as exc:
        raise MilpMapError(f"--name: {exc}") from None
    out = Path(args.out or f"fit_{name}")
    if out.exists() and not out.is_dir():
        raise MilpMapError(f"{out}: is not a folder; --out takes the folder to write into")
    out.mkdir(parents=True, exist_ok=True)
    check_out_path(out / f"{name}.yaml")
    print(
        f"fitting platform {platform.name} to {runs}"
        + (f" ({args.network})" if args.network else "")
    )
    report = fit_platform(
        args.platform,
        runs,
        out / f"{name}.yaml",
        name=name,
        network=args.network,
        model=args.model,
        holdout=args.holdout,
        seed=args.seed,
    )
    _print_parameters(report)
    for parameter in report.at_bounds:
        print(
            f"warning: {parameter} is at the limit of its range: check the runs' units "
            "(seconds, joules) and the platform; a model this far off needs rebuilding",
            file=sys.stderr,
        )
    _print_errors("fitted on", report.fitted_on)
    if report.held_out:
        _print_errors("held out", report.held_out)
        _print_runs(report.held_out)
    else:
        why = "--holdout 0" if args.holdout == 0 else "too few runs of a kind to hold one out"
        print(f"held out: none ({why}): the errors above are on the runs the fit saw")
    _write_predictions(report, out / "predictions.csv")
    print(f"wrote {report.platform_yaml} (use it as --platform) and {out / 'predictions.csv'}")
    return common.EXIT_OK


def _print_parameters(report: FitReport) -> None:
    a = report.fit.adjustment
    print("fitted parameters (1 = as the platform had it):")
    for acc in sorted(a.latency_scale):
        energy = a.energy_scale.get(acc)
        busy = a.busy_power_w.get(acc, 0.0)
        tail = f", energy x {energy:.3f} + {busy:.3f} W while busy" if energy is not None else ""
        print(f"  {acc}: latency x {a.latency_scale[acc]:.3f}{tail}")
    tail = f", energy x {a.transfer_energy_scale:.3f}" if a.energy_scale else ""
    print(f"  transfers: latency x {a.transfer_latency_scale:.3f}{tail}")
    for (src, dst), seconds in sorted(a.switch_s.items()):
        print(f"  switch {src} -> {dst}: +{seconds * 1e3:.3f} ms per crossing tensor")
    if a.static_power_w is not None:
        print(f"  static power: {a.static_power_w:.3f} W (was {report.fit.static_power_w:.3f} W)")


def _print_errors(label: str, predictions: list[Prediction]) -> None:
    for kind, chosen in (
        ("mixed", [p for p in predictions if p.mixed]),
        ("single-accelerator", [p for p in predictions if not p.mixed]),
    ):
        if not chosen:
            continue
        parts = []
        for fitted, what in ((False, "platform"), (True, "fitted")):
            errors = [abs(p.latency_error(fitted)) for p in chosen]
            good = sum(e <= WITHIN for e in errors)
            parts.append(f"{what} max {max(errors):.1%}, {good}/{len(errors)} within {WITHIN:.0%}")
        print(f"{label}, {len(chosen)} {kind} runs, latency error: " + "; ".join(parts))


def _print_runs(predictions: list[Prediction]) -> None:
    worst = sorted(predictions, key=lambda p: -abs(p.latency_error(True)))[:SHOWN_RUNS]
    print(f"held-out runs (worst {len(worst)} after the fit):")
    print(f"  {'run':<18} {'measured':>10} {'platform':>16} {'fitted':>16}")
    for p in worst:
        print(
            f"  {p.run.run:<18} {p.run.latency_s * 1e3:>8.2f}ms "
            f"{p.preset_latency_s * 1e3:>8.2f}ms {p.latency_error(False):>+6.1%} "
            f"{p.fitted_latency_s * 1e3:>8.2f}ms {p.latency_error(True):>+6.1%}"
        )


def _write_predictions(report: FitReport, path: Path) -> None:
    import pandas as pd

    from milp_map.io.files import write_text_atomic

    rows = [
        {
            "network": p.run.network,
            "run": p.run.run,
            "split": split,
            "mixed": p.mixed,
            "measured_latency_s": p.run.latency_s,
            "platform_latency_s": p.preset_latency_s,
            "fitted_latency_s": p.fitted_latency_s,
            "measured_energy_j": p.run.energy_j,
            "platform_energy_j": p.preset_energy_j,
            "fitted_energy_j": p.fitted_energy_j,
        }
        for split, chosen in (("fit", report.fitted_on), ("held_out", report.held_out))
        for p in chosen
    ]
    write_text_atomic(pd.DataFrame(rows).to_csv(index=False, float_format="%.9g"), path)


if __name__ == "__main__":
    raise SystemExit(main())
