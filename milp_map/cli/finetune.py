"""`python -m milp_map.finetune --mapping m.json --data mnist --epochs N --out ft.onnx`:
quantisation-aware fine-tuning of a mapping's export, and its top-1 measured after it (the
training is milp_map/accuracy/finetune.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from milp_map.cli import common
from milp_map.defaults import DEFAULT_DATA
from milp_map.errors import MilpMapError

DEFAULT_EPOCHS = 3
"""As milp_map.accuracy.finetune.DEFAULT_EPOCHS (that module imports torch)."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.new_parser(
        "finetune",
        "Fine-tune a mapping's exported model with its weights and activations fake-quantised "
        "as the export quantises them (straight-through estimator), write the fine-tuned "
        "mapped ONNX model and measure its top-1 before and after.",
    )
    parser.add_argument(
        "--mapping", required=True, metavar="FILE.json", help="mapping or result file to fine-tune"
    )
    parser.add_argument(
        "--out", required=True, metavar="FILE.onnx", help="where to write the fine-tuned model"
    )
    parser.add_argument(
        "--data",
        default=DEFAULT_DATA,
        metavar="D",
        help=f"mnist, digits or an .npz with a training split (default {DEFAULT_DATA})",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=DEFAULT_EPOCHS,
        help=f"passes over the training split (default {DEFAULT_EPOCHS})",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="batch order and torch seed (default: 0)"
    )
    add_training(parser)
    common.add_model(parser, None)
    common.add_platform(parser, None)
    parser.add_argument("--sensitivity", help="CSV of scores for the proxy (as for solve)")
    parser.add_argument(
        "--activations",
        choices=("platform", "none"),
        default="platform",
        help="platform (default): fake-quantise conv/gemm inputs as the export does; none: "
        "weights only",
    )
    return parser.parse_args(argv)


def add_training(parser: argparse.ArgumentParser) -> None:
    """--learning-rate and --train-batch-size (finetune and solve --finetune)."""
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=1e-3,
        metavar="LR",
        help="Adam's initial learning rate, decayed to 0 on a cosine (default 0.001)",
    )
    parser.add_argument(
        "--train-batch-size",
        type=int,
        default=64,
        metavar="B",
        help="training images per step (default 64)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return common.run(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from milp_map.accuracy.export import write_model_atomic
    from milp_map.accuracy.finetune import (
        FineTuneSettings,
        finetune_mapping_file,
        require_torch,
    )
    from milp_map.accuracy.measure import drop_interval_pp
    from milp_map.io.files import check_out_path

    check_out_path(args.out)
    if Path(args.out).resolve() == Path(args.mapping).resolve():
        raise MilpMapError(f"--out {args.out} is the mapping file itself; write elsewhere")
    if args.epochs < 1:
        raise MilpMapError(
            f"--epochs must be >= 1, got {args.epochs} (`python -m milp_map.evaluate` measures "
            "a mapping without fine-tuning)"
        )
    require_torch()
    settings = FineTuneSettings(
        epochs=args.epochs,
        seed=args.seed,
        learning_rate=args.learning_rate,
        batch_size=args.train_batch_size,
        activations=args.activations == "platform",
    )
    result, checked = finetune_mapping_file(
        args.mapping,
        args.data,
        settings,
        model=args.model,
        platform=args.platform,
        sensitivity=args.sensitivity,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    path = write_model_atomic(result.finetuned.model, args.out)
    problem = checked.problem
    reference = result.reference
    print(
        f"mapping {args.mapping}: model {problem.graph.name} on {problem.platform.name}, "
        f"{reference.n_samples} test images of {result.data}; "
        f"fine-tuned in {result.finetuned.seconds:.1f} s"
    )
    print(f"fp32 top-1 {100 * reference.top1:.2f}%")
    for label, measured in (
        ("post-training", result.post_training),
        ("after fine-tuning", result.after_finetune),
    ):
        low, high = drop_interval_pp(reference, measured)
        print(
            f"{label:>17}: top-1 {100 * measured.top1:.2f}%, drop "
            f"{100 * (reference.top1 - measured.top1):.2f} points (95% CI {low:.2f} .. {high:.2f})"
        )
    print(f"wrote {path} ({len(result.finetuned.model.graph.node)} nodes)")
    return common.EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
