"""What the preset build scripts share: zoo layers to measured layer groups, and CSV writing.

Measured tables (PiQi's rockpi-n10, HaX-CoNN's Xavier) name layer groups by index; the zoo
names layers `{block}/{part}`. Each script gives regex rules from block names to group
indices; these helpers apply them and check that the groups run in the measured order.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

FLOAT = "%.9g"

GroupRules = Sequence[tuple[str, int | Callable[..., int]]]
"""(regex on the block name, group index or a function of the regex's groups)."""


def block_group(network: str, block: str, rules: GroupRules) -> int | None:
    """Measured group index of a zoo block, or None for the network's head (last group)."""
    if block == "head":
        return None
    for pattern, index in rules:
        match = re.fullmatch(pattern, block)
        if match:
            if not callable(index):
                return index
            return index(*(int(a) if a.isdigit() else a for a in match.groups()))
    raise SystemExit(f"{network}: no measured group for zoo block '{block}'")


def group_rows(
    network: str,
    n_groups: int,
    rules: GroupRules,
    names: Sequence[str],
    edges: Iterable[tuple[str, str]],
) -> list[tuple]:
    """(network, group, layer) for every layer; the head joins the last group.

    Every graph edge must go from a group to itself or a later one, so no path leaves a
    group and comes back and the groups run in the measured order.
    """
    group_of = {}
    for name in names:
        index = block_group(network, name.split("/", 1)[0], rules)
        group_of[name] = n_groups - 1 if index is None else index
    if sorted(set(group_of.values())) != list(range(n_groups)):
        found = sorted(set(group_of.values()))
        raise SystemExit(f"{network}: groups {found} != g0..g{n_groups - 1}")
    for u, v in edges:
        if group_of[u] > group_of[v]:
            raise SystemExit(
                f"{network}: edge {u} -> {v} runs from g{group_of[u]} back to g{group_of[v]}"
            )
    return [(network, f"g{group_of[name]}", name) for name in names]


def zoo_group_rows(networks: dict[str, tuple[int, GroupRules]]) -> list[tuple] | None:
    """groups.csv rows of zoo networks {name: (groups, rules)}; None without milp_map."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout
    try:
        from milp_map.io.onnx import load_onnx
        from milp_map.io.zoo import build_model
    except ImportError as err:
        print(f"warning: {err}; groups.csv left as it is", file=sys.stderr)
        return None
    rows = []
    for network in sorted(networks):
        n_groups, rules = networks[network]
        graph = load_onnx(build_model(network), name=network)
        names = [layer.name for layer in graph.layers()]
        rows.extend(group_rows(network, n_groups, rules, names, graph.edges()))
    return rows


def _natural(text: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))


def write_csv(
    path: Path, header: Sequence[str], rows: Iterable[tuple], order: Sequence[int]
) -> None:
    """Rows sorted naturally on the `order` columns; floats as %.9g; LF line ends."""
    rows = sorted(rows, key=lambda r: tuple(_natural(str(r[i])) for i in order))
    if any(isinstance(v, float) and v != v for row in rows for v in row):
        raise SystemExit(f"{path}: a derived value is NaN")
    lines = [",".join(header)]
    for row in rows:
        lines.append(",".join(FLOAT % v if isinstance(v, float) else str(v) for v in row))
    path.write_text("\n".join(lines) + "\n")
