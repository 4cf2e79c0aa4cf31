"""`python -m milp_map.export --mapping m.json --out mapped.onnx`: a mapping as an ONNX model
that runs in onnxruntime (the rewrite is milp_map/accuracy/export.py)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from milp_map.cli import common


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.new_parser(
        "export",
        "Rewrite a network per a mapping file into an ONNX model that runs in onnxruntime: "
        "split layers as per-accelerator parts, weights and activations quantised to each "
        "accelerator's precision, every node tagged with its accelerator.",
    )
    parser.add_argument("--mapping", required=True, metavar="FILE.json")
    parser.add_argument("--out", required=True, metavar="FILE.onnx")
    common.add_model(parser, None)
    common.add_platform(parser, None)
    parser.add_argument(
        "--activations",
        choices=("platform", "none"),
        default="platform",
        help="platform (default): fake-quantise conv/gemm inputs to each accelerator's "
        "activation precision; none: quantise weights only",
    )
    parser.add_argument(
        "--data",
        metavar="D",
        help="dataset (mnist, digits or .npz) whose first 256 training images calibrate "
        "activation ranges (default: seeded standard-normal inputs)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return common.run(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from milp_map.accuracy.export import (
        calibration_inputs,
        export_mapping_file,
        write_model_atomic,
    )
    from milp_map.io.files import check_out_path

    check_out_path(args.out)
    mapped = export_mapping_file(
        args.mapping,
        model=args.model,
        platform=args.platform,
        activations=args.activations == "platform",
        calibration=calibration_inputs(args.data),
    )
    path = write_model_atomic(mapped, args.out)
    quantised = any(n.op_type == "QuantizeLinear" for n in mapped.graph.node)
    if quantised and args.data is None:
        print("note: activation ranges come from random normal inputs; pass --data for real ones")
    print(f"wrote {path} ({len(mapped.graph.node)} nodes)")
    return common.EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
