"""`python -m milp_map.sensitivity --model M --data D --out scores.csv`: HAWQ-V2 Hessian
sensitivities (milp_map/accuracy/hessian.py; needs milp_map[torch])."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from milp_map.cli import common
from milp_map.defaults import DEFAULT_BATCH_SIZE, DEFAULT_BATCHES, DEFAULT_PROBES
from milp_map.errors import MilpMapError


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.new_parser(
        "sensitivity",
        "HAWQ-V2 sensitivity scores (Hutchinson Hessian trace x quantization perturbation) for "
        "every layer and precision; needs milp_map[torch].",
    )
    parser.add_argument("--model", required=True, help="zoo or shipped model name, or .onnx")
    parser.add_argument("--data", required=True, help="dataset: mnist, digits or an .npz file")
    parser.add_argument("--out", required=True, help="output CSV")
    parser.add_argument(
        "--precisions", help="comma-separated precisions (default: the platform's, or all five)"
    )
    parser.add_argument("--platform", help="preset or YAML whose precisions to score")
    parser.add_argument("--probes", type=int, default=DEFAULT_PROBES, help="probes per batch")
    parser.add_argument("--batches", type=int, default=DEFAULT_BATCHES)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--per-channel", action="store_true", help="write layer,channel,precision,score rows"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return common.run(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from milp_map.accuracy.hessian import compute_sensitivity, resolve_precisions
    from milp_map.io.scores import write_channel_sensitivity, write_sensitivity

    start = time.perf_counter()
    precisions = resolve_precisions(args.precisions, args.platform)
    scores = compute_sensitivity(
        args.model,
        args.data,
        precisions,
        args.probes,
        args.batches,
        args.batch_size,
        args.seed,
        args.per_channel,
        progress=True,
    )
    try:
        if args.per_channel:
            write_channel_sensitivity(scores, args.out)
        else:
            write_sensitivity(scores, args.out)
    except OSError as exc:
        raise MilpMapError(f"{args.out}: cannot write ({exc.strerror or exc})") from None
    rows = sum(len(v) for v in scores.channel_scores.values()) or len(scores.scores)
    print(
        f"wrote {rows} Hessian scores ({len(scores.layers)} layers x {', '.join(precisions)}"
        f"{', per channel' if args.per_channel else ''}) to {args.out} in "
        f"{time.perf_counter() - start:.1f} s"
    )
    return common.EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
