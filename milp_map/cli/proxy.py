"""`python -m milp_map.proxy --model M --out scores.csv`: data-free (weight-perturbation)
sensitivity scores of a model (milp_map/io/scores.py)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from milp_map.cli import common
from milp_map.defaults import DEFAULT_PRECISIONS


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.new_parser(
        "proxy", "Write data-free (weight-perturbation) sensitivity scores for a model."
    )
    parser.add_argument("--model", required=True, help="zoo name or path to an .onnx file")
    parser.add_argument("--out", required=True, help="output CSV (layer,precision,score)")
    parser.add_argument(
        "--precisions",
        default=",".join(DEFAULT_PRECISIONS),
        help=f"comma-separated precisions (default: {','.join(DEFAULT_PRECISIONS)})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return common.run(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from milp_map.io.models import load_model
    from milp_map.io.scores import data_free_sensitivity, write_sensitivity

    graph = load_model(args.model)
    scores = data_free_sensitivity(graph, args.precisions.split(","))
    write_sensitivity(scores, args.out)
    print(
        f"wrote {len(scores.scores)} scores for {len(graph)} layers of {graph.name} to {args.out}"
    )
    return common.EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
