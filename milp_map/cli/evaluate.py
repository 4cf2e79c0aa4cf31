"""`python -m milp_map.evaluate --mapping m.json --data D`: a mapping's measured top-1 beside its
latency, energy and proxy (the measurement is milp_map/accuracy/mapped.py)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from milp_map.cli import common


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.new_parser(
        "evaluate",
        "Measure the top-1 accuracy of a mapped model (exported with each part quantised to its "
        "accelerator's precision) next to its latency, energy and proxy.",
    )
    parser.add_argument("--mapping", required=True, metavar="FILE.json")
    parser.add_argument("--data", required=True, metavar="D", help="mnist, digits or an .npz")
    common.add_model(parser, None)
    common.add_platform(parser, None)
    parser.add_argument("--sensitivity", help="CSV of scores for the proxy (as for solve)")
    parser.add_argument(
        "--activations",
        choices=("platform", "none"),
        default="platform",
        help="platform (default): quantise conv/gemm inputs too; none: weights only",
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--out", metavar="FILE.json", help="also write the measured top-1, drop and metrics"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return common.run(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from milp_map.accuracy.mapped import measure_mapping_file
    from milp_map.accuracy.measure import drop_interval_pp
    from milp_map.evaluation.report import format_si
    from milp_map.io.files import check_out_path, write_json_atomic

    if args.out:
        check_out_path(args.out)
    measured = measure_mapping_file(
        args.mapping,
        args.data,
        model=args.model,
        platform=args.platform,
        sensitivity=args.sensitivity,
        activations=args.activations == "platform",
        batch_size=args.batch_size,
    )
    problem = measured.checked.problem
    metrics = measured.checked.evaluation.metrics
    result, reference = measured.mapped, measured.reference
    print(
        f"mapping {args.mapping}: model {problem.graph.name} on {problem.platform.name}, "
        f"{result.n_samples} test images of {measured.data}"
    )
    low, high = drop_interval_pp(reference, result)
    print(
        f"top-1 {100 * result.top1:.2f}% (fp32 {100 * reference.top1:.2f}%, drop "
        f"{measured.drop_pp:.2f} points, 95% CI {low:.2f} .. {high:.2f}), latency "
        f"{format_si(metrics.latency_s, 's')}, energy {format_si(metrics.energy_j, 'J')}, proxy "
        f"{metrics.accuracy_proxy:.4g} ({problem.sensitivity.kind})"
    )
    prediction = _prediction(args, measured)
    if prediction is not None:
        print(prediction)
    if args.out:
        report = {
            "mapping": str(Path(args.mapping).resolve()),
            "model": problem.graph.name,
            "platform": problem.platform.name,
            "data": measured.data,
            "n_samples": result.n_samples,
            "top1": result.top1,
            "fp32_top1": reference.top1,
            "drop_pp": measured.drop_pp,
            "drop_ci95_pp": [low, high],
            "metrics": metrics.as_dict(),
            "prediction": prediction,
        }
        print(f"wrote {write_json_atomic(report, args.out)}")
    return common.EXIT_OK


def _prediction(args: argparse.Namespace, measured) -> str | None:
    """The shipped post-training calibration's prediction for this mapping, saying whether the
    mapping is of the kind the curve was fitted on (None without a current calibration)."""
    from milp_map.accuracy import calibration

    problem = measured.checked.problem
    if args.activations != "platform":
        return None  # the calibrations quantise activations
    fit = calibration.cached_calibration(
        problem.graph.name, problem.platform.name, measured.data, args.sensitivity
    )
    if fit is None:
        return None
    return calibration.predict_mapping(problem, measured.checked.mapping, fit).message()


if __name__ == "__main__":
    raise SystemExit(main())
