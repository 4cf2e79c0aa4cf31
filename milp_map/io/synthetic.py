"""Synthetic networks and platforms: random instances for cross-checks and scaling benchmarks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from milp_map.core.costmodels import AnalyticalModel, Roofline
from milp_map.core.graph import Layer, LayerGraph, graph_from_layers
from milp_map.core.platform import Accelerator, CostTable, OperatingPoint, Platform, Transition
from milp_map.core.problem import Constraints, Problem, build_problem
from milp_map.core.scores import Sensitivity
from milp_map.core.split import SplitProblem, build_split_problem

SHAPES = ("chain", "residual", "inception")


def conv_layer(name: str, c_in: int, c_out: int, hw: int = 8, kernel: int = 3) -> Layer:
    """A stride-1 'same' convolution with consistent MACs and sizes."""
    return Layer(
        name=name,
        op="conv",
        in_channels=c_in,
        out_channels=c_out,
        kernel=(kernel, kernel),
        stride=(1, 1),
        groups=1,
        in_hw=(hw, hw),
        out_hw=(hw, hw),
        macs=hw * hw * c_out * c_in * kernel * kernel,
        weight_count=c_out * c_in * kernel * kernel,
        input_elems=c_in * hw * hw,
        output_elems=c_out * hw * hw,
    )


def random_graph(
    n_layers: int, shape: str, rng: np.random.Generator, name: str = "synthetic"
) -> LayerGraph:
    """A chain, a residual DAG (skip edges) or a wide Inception-like DAG of conv layers."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}")
    channels = [int(c) for c in rng.choice([8, 16, 32, 64], size=n_layers)]
    layers = [
        conv_layer(f"l{i}", channels[i - 1] if i else 3, channels[i]) for i in range(n_layers)
    ]
    edges: set[tuple[str, str]] = set()
    for i in range(1, n_layers):
        if shape == "inception" and i >= 2:
            src = int(rng.integers(max(0, i - 4), i))
        else:
            src = i - 1
        edges.add((f"l{src}", f"l{i}"))
        if shape == "residual" and i >= 2 and rng.random() < 0.4:
            edges.add((f"l{int(rng.integers(0, i - 1))}", f"l{i}"))
        if shape == "inception" and i >= 2 and rng.random() < 0.5:
            edges.add((f"l{int(rng.integers(0, i))}", f"l{i}"))
    return graph_from_layers(name, layers, sorted(edges))


@dataclass(frozen=True)
class InstanceSpec:
    n_layers: int = 5
    n_accelerators: int = 3
    shape: str = "residual"
    operating_points: int = 1
    p_unsupported: float = 0.15
    p_transition: float = 0.7
    budgets: bool = True


def random_problem(
    seed: int, spec: InstanceSpec | None = None, objective: str | None = None
) -> Problem:
    """A random instance: costs, DVFS levels, transitions, scores and bounds from `seed`."""
    spec = spec or InstanceSpec()
    rng = np.random.default_rng(seed)
    graph = random_graph(spec.n_layers, spec.shape, rng)
    names = [f"acc{k}" for k in range(spec.n_accelerators)]
    precisions = [str(rng.choice(["fp32", "fp16", "int8", "ternary"])) for _ in names]
    rows: dict[tuple[str, str, str, str], tuple[float, float]] = {}
    for layer in graph.layers():
        runnable = [a for a in names if rng.random() >= spec.p_unsupported] or [names[0]]
        for acc in runnable:
            base = float(rng.uniform(1e-4, 1e-2))
            power = float(rng.uniform(0.1, 2.0))
            for level in range(spec.operating_points):
                scale = 1.0 + 0.5 * level
                point = f"f{level}" if spec.operating_points > 1 else ""
                rows[("*", layer.name, acc, point)] = (base / scale, base * power * scale**1.5)
    table = CostTable(Path("<synthetic>"), rows, frozenset({"*"}))
    accelerators = tuple(
        Accelerator(name, precision, None, 0.0, (), table=table)
        for name, precision in zip(names, precisions, strict=True)
    )
    transitions = {
        (a, b): Transition(
            latency_s=float(rng.uniform(0, 2e-3)),
            energy_j=float(rng.uniform(0, 1e-3)),
            bytes_per_s=float(rng.uniform(1e6, 1e8)) if rng.random() < 0.5 else None,
        )
        for a in names
        for b in names
        if a != b and rng.random() < spec.p_transition
    }
    platform = Platform(
        name=f"random{seed}",
        description="random test platform",
        static_power_w=float(rng.choice([0.0, rng.uniform(0, 0.5)])),
        accelerators=accelerators,
        transitions=transitions,
    )
    scores = {
        (layer.name, p): float(rng.uniform(0, 1)) * (p != "fp32")
        for layer in graph.layers()
        for p in sorted(set(precisions))  # sorted: set order varies by process
    }
    sensitivity = Sensitivity(scores, f"random{seed}", "random")
    objective = objective or str(rng.choice(["latency", "energy"]))
    problem = build_problem(graph, platform, sensitivity, objective)  # type: ignore[arg-type]
    if not spec.budgets:
        return problem
    constraints = Constraints(max_proxy_fraction=float(rng.uniform(0, 1)))
    other = "energy" if objective == "latency" else "latency"
    if rng.random() < 0.5:
        scale = problem.scales[other]
        constraints = Constraints(
            max_proxy_fraction=constraints.max_proxy_fraction,
            **{
                ("max_energy_j" if other == "energy" else "max_latency_s"): float(
                    rng.uniform(0.3, 0.9) * scale
                )
            },
        )
    return build_problem(graph, platform, sensitivity, objective, constraints)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- channel splits


@dataclass(frozen=True)
class SteppedModel:
    """An engine that computes `lanes` output channels per pass: ceil(n / lanes) passes.

    A step-shaped latency like DIANA's digital unit (16 lanes), so a share of n channels
    costs as much as the next multiple of `lanes`.
    """

    macs_per_s: float
    lanes: int = 4
    overhead_s: float = 0.0

    def latency_s(self, layer: Layer, n_out: int | None = None) -> float | None:
        n = layer.out_channels if n_out is None else n_out
        if n == 0:
            return 0.0
        macs_per_channel = layer.macs / layer.out_channels
        passes = -(-n // self.lanes)
        return self.overhead_s + passes * self.lanes * macs_per_channel / self.macs_per_s


def random_split_problem(
    seed: int,
    n_layers: int = 3,
    n_accelerators: int = 2,
    channels: tuple[int, ...] = (4, 8),
    group_size: int = 2,
    per_channel: bool = False,
    transitions: bool = False,
    budgets: bool = True,
    objective: str | None = None,
    operating_points: int = 1,
    p_table: float = 0.0,
) -> SplitProblem:
    """A random channel-split instance: a chain or residual DAG of small convs on analytical
    (roofline or stepped) accelerators, so layers can split; optional transitions, per-channel
    scores, DVFS levels and a table-costed accelerator (which only takes whole layers)."""
    rng = np.random.default_rng(seed)
    graph = _random_split_graph(n_layers, channels, rng)
    names = [f"acc{k}" for k in range(n_accelerators)]
    if per_channel:  # the sorted-increment proxy handles two precisions per layer
        pair = ["int8", "ternary"]
        precisions = [pair[k % 2] for k in rng.permutation(n_accelerators)]
    else:
        precisions = [str(rng.choice(["fp16", "int8", "int4", "ternary"])) for _ in names]
    accelerators = []
    for k, (name, precision) in enumerate(zip(names, precisions, strict=True)):
        power = float(rng.uniform(0.05, 1.0))
        points = (
            tuple(
                OperatingPoint(f"f{level}", 1.0 / (1.0 + 0.5 * level), power / (1.0 + level) ** 1.5)
                for level in range(operating_points)
            )
            if operating_points > 1
            else ()
        )
        if k > 0 and rng.random() < p_table:
            rows = {
                ("*", layer.name, name, ""): (t := float(rng.uniform(1e-4, 2e-3)), t * power)
                for layer in graph.layers()
            }
            table = CostTable(Path("<synthetic>"), rows, frozenset({"*"}))
            accelerators.append(Accelerator(name, precision, None, 0.0, (), table=table))
            continue
        model: AnalyticalModel
        if rng.random() < 0.5:
            model = Roofline(
                macs_per_s=float(rng.uniform(2e7, 1e8)),
                bytes_per_s=float(rng.uniform(5e6, 5e7)),
                overhead_s=float(rng.uniform(0, 5e-5)),
            )
        else:
            model = SteppedModel(
                macs_per_s=float(rng.uniform(2e7, 1e8)),
                lanes=int(rng.choice([2, 4])),
                overhead_s=float(rng.uniform(0, 5e-5)),
            )
        accelerators.append(Accelerator(name, precision, None, power, points, model=model))
    crossings = {}
    if transitions:
        crossings = {
            (a, b): Transition(
                latency_s=float(rng.uniform(0, 2e-4)),
                energy_j=float(rng.uniform(0, 1e-4)),
                bytes_per_s=float(rng.uniform(1e6, 1e7)) if rng.random() < 0.7 else None,
            )
            for a in names
            for b in names
            if a != b and rng.random() < 0.8
        }
    platform = Platform(
        name=f"random-split{seed}",
        description="random channel-split test platform",
        static_power_w=float(rng.choice([0.0, rng.uniform(0, 0.5)])),
        accelerators=tuple(accelerators),
        transitions=crossings,
    )
    sensitivity = _random_split_scores(graph, sorted(set(precisions)), per_channel, rng, seed)
    objective = objective or str(rng.choice(["latency", "energy"]))
    problem = build_problem(graph, platform, sensitivity, objective)  # type: ignore[arg-type]
    if budgets:
        bounds: dict[str, float] = {"max_proxy_fraction": float(rng.uniform(0, 1))}
        if rng.random() < 0.5:
            other = "energy" if objective == "latency" else "latency"
            key = "max_energy_j" if other == "energy" else "max_latency_s"
            bounds[key] = float(rng.uniform(0.2, 0.8) * problem.scales[other])
        problem = build_problem(
            graph,
            platform,
            sensitivity,
            objective,
            Constraints(**bounds),  # type: ignore[arg-type]
        )
    return build_split_problem(problem, group_size)


def _random_split_graph(
    n_layers: int, channels: tuple[int, ...], rng: np.random.Generator
) -> LayerGraph:
    """A chain of convs with out_channels from `channels`, sometimes with skip edges."""
    widths = [int(c) for c in rng.choice(channels, size=n_layers)]
    layers = [
        conv_layer(f"l{i}", widths[i - 1] if i else 3, widths[i], hw=int(rng.choice([4, 8])))
        for i in range(n_layers)
    ]
    edges = {(f"l{i - 1}", f"l{i}") for i in range(1, n_layers)}
    for i in range(2, n_layers):
        if rng.random() < 0.4:
            edges.add((f"l{int(rng.integers(0, i - 1))}", f"l{i}"))
    return graph_from_layers("synthetic-split", layers, sorted(edges))


def _random_split_scores(
    graph: LayerGraph,
    precisions: list[str],
    per_channel: bool,
    rng: np.random.Generator,
    seed: int,
) -> Sensitivity:
    """Per-layer scores, or per-channel ones whose sums are the per-layer scores.

    Per-channel: the low precision costs more on most channels, less on some (so the best
    channels to quantize are not simply the first ones).
    """
    if not per_channel:
        scores = {
            (layer.name, p): float(rng.uniform(0, 1))
            for layer in graph.layers()
            for p in precisions
        }
        return Sensitivity(scores, f"random-split{seed}", "random")
    channel_scores: dict[tuple[str, str], np.ndarray] = {}
    for layer in graph.layers():
        high = rng.uniform(0, 0.2, size=layer.out_channels)
        low = np.clip(high + rng.uniform(-0.1, 0.5, size=layer.out_channels), 0.0, None)
        for precision, values in zip(rng.permutation(precisions), (high, low), strict=False):
            channel_scores[(layer.name, str(precision))] = values
    scores = {key: float(values.sum()) for key, values in channel_scores.items()}
    return Sensitivity(scores, f"random-split{seed}", "random", channel_scores)
