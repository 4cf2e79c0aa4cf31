"""Build the `rockpi-n10` platform preset from PiQi's measured per-layer profile.

Source: Ehsan-aghapour/CO-UP-Profiling (Profiling/Data), the data behind PiQi (ISLPED 2024).
Every choice below is explained, with the numbers behind it, in data/platforms/rockpi-n10/README.md.

    python benchmarks/data_prep/build_rockpi_n10.py \
        --source ../shared/data/rockpi-n10-piqi --out data/platforms

writes rockpi-n10.yaml and rockpi-n10/{costs,transfers,groups}.csv byte-identically on every run
(sorted rows, %.9g floats); README.md in that folder is written by hand and left alone.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from prep_common import write_csv, zoo_group_rows

# ----------------------------------------------------------------------------- choices

NETWORKS = {
    "Alex": "alexnet",
    "Google": "googlenet",
    "MobileV1": "mobilenet_v1",
    "ResV1_50": "resnet50",
    "SqueezeV1": "squeezenet",
    "YOLOv3": "yolov3",
}
N_GROUPS = {"Alex": 8, "Google": 11, "MobileV1": 14, "ResV1_50": 18, "SqueezeV1": 10, "YOLOv3": 75}

ACCELERATORS = {"B": "cpu_big", "L": "cpu_little", "G": "gpu", "N": "npu"}
"""B = 2 x Cortex-A72 (8 DVFS levels, hosts GPU and NPU), L = 4 x Cortex-A53 (6 levels)."""
PRECISION = {"cpu_big": "fp32", "cpu_little": "fp32", "gpu": "fp32", "npu": "int8"}

HOST_LEVEL = 7
"""Big-cluster level fixed wherever it is a second knob: GPU Freq_Host, NPU entry/exit costs."""

WHOLE_NPU_TASK_MS = {"MobileV1": 15.3577, "YOLOv3": 337.0}
"""Whole network on the NPU as one graph, host at level 7, input load to output read-back (ms).

Measured by PiQi and quoted in CO-UP-Profiling Profiling/predict_cost.py, where they set the
NPU scaling factor (0.1999 for MobileV1, 0.135 for YOLOv3). npu_fused_rate derives ours.
"""

NPU_HOST_PROXY = {
    ("N", "B"): ("B", "L"),
    ("N", "L"): ("B", "L"),
    ("N", "G"): ("B", "G"),
    ("B", "N"): ("B", "L"),
    ("L", "N"): ("L", "B"),
    ("G", "N"): ("G", "B"),
}
"""Transfers.csv pair standing in for the host-side hand-off at an NPU boundary (PiQi's mapping)."""


# ----------------------------------------------------------------------------- load and clean


def load_layers(source: Path) -> pd.DataFrame:
    """Layers.csv without its empty rows, integer keys, one row per key; Power of N imputed."""
    raw = pd.read_csv(source / "Layers.csv")
    layers = raw.dropna(how="all").copy()
    for column in ("Freq", "Freq_Host", "Layer"):
        layers[column] = layers[column].astype(int)
    key = ["Graph", "Component", "Freq", "Freq_Host", "Layer", "Metric"]
    if layers.duplicated(key).any():
        raise SystemExit(f"{source / 'Layers.csv'}: duplicate rows for {key}")
    task_n = (layers.Component == "N") & (layers.Metric == "task")
    missing = task_n & layers.Power.isna()
    median_mw = layers[task_n].groupby(["Graph", "Freq"]).Power.median()
    layers.loc[missing, "Power"] = [
        median_mw[(g, f)] for g, f in zip(layers.Graph[missing], layers.Freq[missing], strict=True)
    ]
    return layers


def load_transfers(source: Path) -> pd.Series:
    """Transfer time (ms) by (graph, layer, src, dst); the file repeats rows verbatim."""
    transfers = pd.read_csv(source / "Transfers.csv").drop_duplicates()
    key = ["Graph", "Layer", "Src", "Dest"]
    if transfers.duplicated(key).any():
        raise SystemExit(f"{source / 'Transfers.csv'}: conflicting times for one {key}")
    return transfers.set_index(key).Time


def metric(layers: pd.DataFrame, name: str) -> pd.DataFrame:
    return layers[layers.Metric == name]


# ----------------------------------------------------------------------------- NPU model

NpuTimes = dict[tuple[str, int, int, str], float]
"""(graph, layer, host level, metric) -> ms, for the NPU rows."""


def npu_times(layers: pd.DataFrame) -> NpuTimes:
    npu = layers[layers.Component == "N"]
    return {
        (r.Graph, r.Layer, r.Freq, r.Metric): float(r.Time) for r in npu.itertuples(index=False)
    }


def npu_entry_ms(npu: NpuTimes, graph: str, layer: int, level: int) -> float:
    """Loading the layer's input into the NPU (NPU_load), paid when an NPU segment starts."""
    return npu[(graph, layer, level, "NPU_load")]


def npu_exit_ms(npu: NpuTimes, graph: str, layer: int, level: int) -> float:
    """Reading the output back: (NPU_run_get - task) + NPU_fill_tensor, when a segment ends.

    NPU_run_get times rknn run + outputs_get; `task` is the NPU's own run time, so the
    difference is the driver round trip and output fetch; NPU_fill_tensor copies it to the host.
    """
    key = (graph, layer, level)
    return npu[(*key, "NPU_run_get")] - npu[(*key, "task")] + npu[(*key, "NPU_fill_tensor")]


def npu_fused_rate(npu: NpuTimes, graph: str) -> float:
    """Whole-network NPU run time / sum of per-layer NPU run times, both at host level 7.

    Each layer was profiled as its own NPU graph; run back to back inside one graph the NPU is
    about 5x (MobileV1) to 7x (YOLOv3) faster. PiQi scales per-layer times by this ratio.
    """
    n = N_GROUPS[graph]
    edges_ms = npu_entry_ms(npu, graph, 0, HOST_LEVEL) + npu_exit_ms(npu, graph, n - 1, HOST_LEVEL)
    isolated_ms = sum(npu[(graph, layer, HOST_LEVEL, "task")] for layer in range(n))
    return (WHOLE_NPU_TASK_MS[graph] - edges_ms) / isolated_ms


def npu_group_ms(npu: NpuTimes, graph: str, layer: int, level: int, rate: float) -> float:
    """Fused run time; the first group also loads the network input, the last reads back."""
    time_ms = rate * npu[(graph, layer, level, "task")]
    if layer == 0:
        time_ms += npu_entry_ms(npu, graph, 0, level)
    if layer == N_GROUPS[graph] - 1:
        time_ms += npu_exit_ms(npu, graph, layer, level)
    return time_ms


# ----------------------------------------------------------------------------- costs.csv


def cost_rows(layers: pd.DataFrame, npu_rate: str) -> list[tuple]:
    """(network, group, accelerator, operating_point, latency_s, energy_j) for every level."""
    npu = npu_times(layers)
    rates = {g: npu_fused_rate(npu, g) if npu_rate == "fused" else 1.0 for g in WHOLE_NPU_TASK_MS}
    task = metric(layers, "task")
    task = task[(task.Component != "G") | (task.Freq_Host == HOST_LEVEL)]
    rows = []
    for rec in task.itertuples(index=False):
        time_ms = rec.Time
        if rec.Component == "N":
            time_ms = npu_group_ms(npu, rec.Graph, rec.Layer, rec.Freq, rates[rec.Graph])
        rows.append(
            (
                NETWORKS[rec.Graph],
                f"g{rec.Layer}",
                ACCELERATORS[rec.Component],
                f"f{rec.Freq}",
                time_ms / 1e3,
                time_ms * rec.Power * 1e-6,
            )
        )
    return rows


# ----------------------------------------------------------------------------- transfers.csv


def transfer_power_mw(layers: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Median board power of a component's tasks at its lowest level, where transfers were timed."""
    task = metric(layers, "task")
    lowest = task[(task.Freq == 0) & (task.Freq_Host <= 0)]
    return lowest.groupby(["Graph", "Component"]).Power.median().to_dict()


def transfer_rows(layers: pd.DataFrame, transfers: pd.Series) -> list[tuple]:
    """(network, group, from, to, latency_s, energy_j) for every producer group and pair."""
    power_mw = transfer_power_mw(layers)
    npu = npu_times(layers)
    task = metric(layers, "task")
    npu_power_mw = (
        task[(task.Component == "N") & (task.Freq == HOST_LEVEL)]
        .set_index(["Graph", "Layer"])
        .Power
    )
    rows = []
    for graph, n in N_GROUPS.items():
        has_npu = (graph, 0) in npu_power_mw.index
        components = "BLGN" if has_npu else "BLG"
        for layer in range(n - 1):
            for src in components:
                for dst in components:
                    if src == dst:
                        continue
                    if "N" not in (src, dst):
                        ms = transfers[(graph, layer, src, dst)]
                        mj = ms * power_mw[(graph, src)]
                    else:
                        host_src, host_dst = NPU_HOST_PROXY[(src, dst)]
                        host_ms = transfers[(graph, layer, host_src, host_dst)]
                        if dst == "N":
                            npu_ms = npu_entry_ms(npu, graph, layer + 1, HOST_LEVEL)
                            npu_mw = npu_power_mw[(graph, layer + 1)]
                        else:
                            npu_ms = npu_exit_ms(npu, graph, layer, HOST_LEVEL)
                            npu_mw = npu_power_mw[(graph, layer)]
                        ms = host_ms + npu_ms
                        mj = host_ms * power_mw[(graph, host_src)] + npu_ms * npu_mw
                    rows.append(
                        (
                            NETWORKS[graph],
                            f"g{layer}",
                            ACCELERATORS[src],
                            ACCELERATORS[dst],
                            ms / 1e3,
                            mj * 1e-6,
                        )
                    )
    return rows


# ----------------------------------------------------------------------------- groups.csv


_INCEPTIONS = ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")
_RESNET50_BLOCKS = (3, 4, 6, 3)

GROUP_RULES: dict[str, tuple[tuple[str, object], ...]] = {
    "mobilenet_v1": ((r"stem", 0), (r"block(\d+)", lambda i: i)),
    "alexnet": ((r"conv(\d)", lambda i: i - 1), (r"fc(\d)", lambda i: i - 1)),
    "googlenet": (
        (r"conv(\d)", lambda i: i - 1),
        (r"inception(\d[a-e])", lambda s: 2 + _INCEPTIONS.index(s)),
    ),
    "resnet50": (
        (r"stem", 0),
        (r"stage(\d)_block(\d)", lambda s, b: sum(_RESNET50_BLOCKS[: s - 1]) + b),
    ),
    "squeezenet": ((r"conv1", 0), (r"fire(\d)", lambda i: i - 1), (r"conv10", 9)),
    "yolov3": ((r"conv(\d+)", lambda i: i),),
}
"""Zoo block name (regex) -> measured group index; block "head" joins the last group."""


YAML = """\
name: rockpi-n10
description: >-
  Rock Pi N10 (Rockchip RK3399Pro): big cluster of 2 Cortex-A72 (cpu_big, 8 DVFS levels),
  little cluster of 4 Cortex-A53 (cpu_little, 6 levels), Mali-T860 MP4 GPU (gpu, 5 levels,
  host big cluster fixed at its top level) and an int8 NPU (npu; its operating point is the
  level of the big cluster that drives it). Per-layer-group latencies and board-level energies
  are PiQi's measurements (Aghapour et al., "PiQi: Partially Quantized DNN Inference on
  HMPSoCs", ISLPED 2024), taken from the public CO-UP-Profiling repository
  (Ehsan-aghapour/CO-UP-Profiling, Profiling/Data). Measured: run time and board power of
  every layer group at every DVFS level, and group-output transfer times between the CPU
  clusters and the GPU. Derived: energy = time x board power; NPU group times scaled from
  layer-alone runs to a whole-network NPU graph with PiQi's own factor (0.20 MobileNetV1,
  0.135 YOLOv3); loading a tensor into the NPU and reading it back charged on the transfers
  into and out of the NPU (and on the first / last group for the network input / output);
  transfer energies. NPU costs exist for mobilenet_v1 and yolov3 only. Image loading before
  the first layer is not included. See rockpi-n10/README.md.
static_power_w: 0.0        # board power is already in the per-layer energies
accelerators:
{accelerators}transition_table: rockpi-n10/transfers.csv
groups: rockpi-n10/groups.csv
"""


def write_yaml(path: Path) -> None:
    accelerators = "".join(
        f"  - name: {name}\n    precision: {PRECISION[name]}\n"
        "    cost: {table: rockpi-n10/costs.csv}\n"
        for name in ACCELERATORS.values()
    )
    path.write_text(YAML.format(accelerators=accelerators))


# ----------------------------------------------------------------------------- sanity checks


def report(layers: pd.DataFrame, costs: list[tuple]) -> None:
    """All-on-one latency and energy per network and accelerator, at the fastest level."""
    frame = pd.DataFrame(costs, columns=["network", "group", "acc", "op", "latency_s", "energy_j"])
    io = metric(layers, "in")
    io = io[(io.Layer == 0) & ((io.Component != "G") | (io.Freq_Host == HOST_LEVEL))]
    out = metric(layers, "out")
    out = out[(out.Component != "G") | (out.Freq_Host == HOST_LEVEL)]
    by_net = {z: g for g, z in NETWORKS.items()}
    print("all groups on one accelerator at its fastest level; +in/out adds image loading")
    print("(`in` of g0) and the final `out`, as PiQi's total_time does")
    print(
        f"{'network':<13}{'accelerator':<12}{'level':>6}{'latency_ms':>12}{'energy_mJ':>11}"
        f"{'+in/out_ms':>12}"
    )
    totals = frame.groupby(["network", "acc", "op"])[["latency_s", "energy_j"]].sum()
    for (network, acc), sub in totals.groupby(level=[0, 1]):
        (_, _, op), best = next(iter(sub.sort_values("latency_s").iterrows()))
        graph = by_net[network]
        comp = next(c for c, a in ACCELERATORS.items() if a == acc)
        level = int(op[1:])
        in_ms = io[(io.Graph == graph) & (io.Component == comp) & (io.Freq == level)].Time.sum()
        last = N_GROUPS[graph] - 1
        out_ms = out[
            (out.Graph == graph)
            & (out.Component == comp)
            & (out.Freq == level)
            & (out.Layer == last)
        ].Time.sum()
        print(
            f"{network:<13}{acc:<12}{op:>6}{best.latency_s * 1e3:12.1f}"
            f"{best.energy_j * 1e3:11.1f}{(best.latency_s * 1e3 + in_ms + out_ms):12.1f}"
        )
    for graph in WHOLE_NPU_TASK_MS:
        print(f"NPU fused rate {graph}: {npu_fused_rate(npu_times(layers), graph):.4f}")


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="folder with Layers.csv")
    parser.add_argument("--out", type=Path, required=True, help="data/platforms folder")
    parser.add_argument(
        "--npu-rate",
        choices=("fused", "isolated"),
        default="fused",
        help="NPU group time: scaled to a whole-network NPU graph (default) or as profiled alone",
    )
    args = parser.parse_args(argv)

    layers = load_layers(args.source)
    transfers = load_transfers(args.source)
    folder = args.out / "rockpi-n10"
    folder.mkdir(parents=True, exist_ok=True)

    costs = cost_rows(layers, args.npu_rate)
    write_csv(
        folder / "costs.csv",
        ["network", "layer", "accelerator", "operating_point", "latency_s", "energy_j"],
        costs,
        order=(0, 1, 2, 3),
    )
    write_csv(
        folder / "transfers.csv",
        ["network", "layer", "from", "to", "latency_s", "energy_j"],
        transfer_rows(layers, transfers),
        order=(0, 1, 2, 3),
    )
    groups = zoo_group_rows(
        {zoo: (N_GROUPS[measured], GROUP_RULES[zoo]) for measured, zoo in NETWORKS.items()}
    )
    if groups is not None:
        write_csv(folder / "groups.csv", ["network", "group", "layer"], groups, order=(0, 1))
    write_yaml(args.out / "rockpi-n10.yaml")
    report(layers, costs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
