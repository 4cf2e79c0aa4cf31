"""Synthetic networks and platforms: random instances for cross-checks and scaling benchmarks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from milp_map.graph import Layer, LayerGraph, graph_from_layers
from milp_map.platform import Accelerator, CostTable, Platform, Transition
from milp_map.problem import Constraints, Problem, build_problem
from milp_map.proxy import Sensitivity

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
        for p in set(precisions)
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
