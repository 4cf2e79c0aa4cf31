"""`python -m milp_map.zoo --list | --export NAME ... [--out DIR]`: the built-in models (and
the shipped trained ones) as a table, or written as .onnx files (milp_map/io/zoo.py)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from milp_map.cli import common


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.new_parser("zoo", "Built-in ONNX model zoo of milp_map.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--list", action="store_true", help="print the models as a table")
    mode.add_argument("--export", nargs="+", metavar="NAME", help="write NAME.onnx for each NAME")
    parser.add_argument("--out", type=Path, default=Path("."), help="output directory (default .)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return common.run(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from milp_map.io.files import write_bytes_atomic
    from milp_map.io.zoo import zoo_entry

    if args.list:
        print(_table())
        return common.EXIT_OK
    entries = [zoo_entry(name) for name in args.export]  # reject typos before any work
    args.out.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        path = write_bytes_atomic(
            entry.build().SerializeToString(), args.out / f"{entry.name}.onnx"
        )
        print(f"wrote {path}")
    return common.EXIT_OK


def _table() -> str:
    """Zoo models, then the shipped trained ones (real weights: their accuracy is measured)."""
    from milp_map.io.models import shipped_provenance
    from milp_map.io.zoo import ZOO, count_params

    header = ("name", "dataset", "input", "params", "description")
    rows = [header]
    for entry in ZOO.values():
        n_params = count_params(entry.build())
        shape = "x".join(str(d) for d in entry.input_shape)
        rows.append((entry.name, entry.dataset, shape, _format_count(n_params), entry.description))
    for info in shipped_provenance():
        shape = "x".join(str(d) for d in info["input"]["shape"][1:])
        accuracy = f"trained, fp32 top-1 {100 * info['fp32_test_accuracy']:.1f}%"
        dataset = info["dataset"].split(" ", 1)[0]
        rows.append(
            (info["model"], dataset, f"1x{shape}", _format_count(info["parameters"]), accuracy)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]])
        for row in rows
    )


def _format_count(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1_000_000 else f"{n / 1e3:.1f}k"


if __name__ == "__main__":
    raise SystemExit(main())
