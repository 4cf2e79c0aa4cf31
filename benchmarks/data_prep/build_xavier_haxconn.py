"""Build the `xavier-haxconn` platform preset from HaX-CoNN's two-network Xavier instance.

Source: HaX-CoNN (Dagli & Belviranli, PPoPP 2024), repository ismetdagli/HaX-CoNN,
src/z3_solver_multi_dnn.py: per layer group of GoogLeNet and AlexNet, the measured GPU and DLA
time and the time to switch accelerator after the group. Copied as published into
../shared/data/xavier-haxconn/groups.csv; every choice below is explained in
data/platforms/xavier-haxconn/README.md.

    python benchmarks/data_prep/build_xavier_haxconn.py \
        --source ../shared/data/xavier-haxconn --out data/platforms

writes xavier-haxconn.yaml and xavier-haxconn/{costs,transfers,groups}.csv byte-identically on
every run (sorted rows, %.9g floats); README.md in that folder is written by hand.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from prep_common import write_csv, zoo_group_rows

# ----------------------------------------------------------------------------- choices

ACCELERATORS = {"gpu": "fp16", "dla": "int8"}
DYNAMIC_POWER_W = {"gpu": 9.0, "dla": 1.8}
"""ASSUMED, as in the jetson-xavier preset (HaX-CoNN publishes no energy): power while busy."""
STATIC_POWER_W = 4.0
"""ASSUMED, as in the jetson-xavier preset: SoC and DRAM, drawn for the whole makespan."""
N_GROUPS = {"googlenet": 10, "alexnet": 8}

_INCEPTIONS = ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")
GROUP_RULES: dict[str, tuple[tuple[str, object], ...]] = {
    "googlenet": (
        (r"conv\d", 0),
        (r"inception(\d[a-e])", lambda s: 1 + _INCEPTIONS.index(s)),
    ),
    "alexnet": ((r"conv(\d)", lambda i: i - 1), (r"fc(\d)", lambda i: i - 1)),
}
"""Zoo block name (regex) -> HaX-CoNN group index; block "head" joins the last group.

GoogLeNet: the 10 groups start at Caffe layers 0, 10, 25, 39, ... (about 14 apart, one
Inception module each), so g0 is the stem (conv1, conv2) and g1..g9 the nine modules.
AlexNet: 8 groups for 5 convs and 3 fully connected layers; g5..g7 take 0.70 / 0.32 /
0.10 ms on the GPU, in proportion to fc6 / fc7 / fc8's weights (37.7M / 16.8M / 4.1M).
"""


# ----------------------------------------------------------------------------- rows


def load_groups(source: Path) -> pd.DataFrame:
    frame = pd.read_csv(source / "groups.csv")
    for network, count in N_GROUPS.items():
        found = sorted(frame[frame.network == network].group)
        if found != list(range(count)):
            raise SystemExit(f"{source / 'groups.csv'}: {network} groups {found} != 0..{count - 1}")
    return frame


def cost_rows(frame: pd.DataFrame) -> list[tuple]:
    """(network, group, accelerator, latency_s, energy_j): measured time, assumed power."""
    rows = []
    for rec in frame.itertuples(index=False):
        for acc in ACCELERATORS:
            seconds = getattr(rec, f"{acc}_ms") / 1e3
            rows.append(
                (rec.network, f"g{rec.group}", acc, seconds, seconds * DYNAMIC_POWER_W[acc])
            )
    return rows


def transfer_rows(frame: pd.DataFrame) -> list[tuple]:
    """(network, group, from, to, latency_s, energy_j) after every group but the last.

    The figure of the accelerator the group ran on (HaX-CoNN's own model charges the from-GPU
    figure either way); no energy beyond the static power over the delay.
    """
    rows = []
    for rec in frame.itertuples(index=False):
        if rec.group == N_GROUPS[rec.network] - 1:
            continue
        for src, dst in (("gpu", "dla"), ("dla", "gpu")):
            ms = getattr(rec, f"transition_after_from_{src}_ms")
            if pd.isna(ms):
                raise SystemExit(f"{rec.network} g{rec.group}: no transition time from {src}")
            rows.append((rec.network, f"g{rec.group}", src, dst, ms / 1e3, 0.0))
    return rows


YAML = """\
name: xavier-haxconn
description: >-
  Jetson AGX Xavier GPU + DLA as HaX-CoNN measured it (Dagli & Belviranli, "Shared
  memory-aware concurrent DNN execution on heterogeneous SoCs", PPoPP 2024; artifact
  ismetdagli/HaX-CoNN, src/z3_solver_multi_dnn.py): per layer group of GoogLeNet (10 groups)
  and AlexNet (8 groups), the measured GPU and DLA time and the time to switch accelerator
  after the group (which the artifact marks as placeholders). Energies are NOT measured: they
  use the jetson-xavier preset's assumed powers (4 W static, 9 W GPU and 1.8 W DLA while
  busy). The assignment of zoo layers to groups is ours. See xavier-haxconn/README.md.
static_power_w: {static}
accelerators:
{accelerators}transition_table: xavier-haxconn/transfers.csv
groups: xavier-haxconn/groups.csv
"""


def write_yaml(path: Path) -> None:
    accelerators = "".join(
        f"  - name: {name}\n    precision: {precision}\n"
        "    cost: {table: xavier-haxconn/costs.csv}\n"
        for name, precision in ACCELERATORS.items()
    )
    path.write_text(YAML.format(static=STATIC_POWER_W, accelerators=accelerators))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="folder with groups.csv")
    parser.add_argument("--out", type=Path, required=True, help="data/platforms folder")
    args = parser.parse_args(argv)
    frame = load_groups(args.source)
    folder = args.out / "xavier-haxconn"
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(
        folder / "costs.csv",
        ["network", "layer", "accelerator", "latency_s", "energy_j"],
        cost_rows(frame),
        order=(0, 1, 2),
    )
    write_csv(
        folder / "transfers.csv",
        ["network", "layer", "from", "to", "latency_s", "energy_j"],
        transfer_rows(frame),
        order=(0, 1, 2, 3),
    )
    groups = zoo_group_rows({n: (N_GROUPS[n], GROUP_RULES[n]) for n in N_GROUPS})
    write_csv(folder / "groups.csv", ["network", "group", "layer"], groups or [], order=(0, 1))
    write_yaml(args.out / "xavier-haxconn.yaml")
    for network in N_GROUPS:
        sub = frame[frame.network == network]
        print(
            f"{network}: GPU alone {sub.gpu_ms.sum():.2f} ms, DLA alone {sub.dla_ms.sum():.2f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
