"""The one problem factory: model, platform, scores and bounds -> the problem every method takes.

Every entry point (the command lines, the Python API, sweep cells, calibration) builds its
problem here, so a model name, a platform preset or a score file means the same everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from milp_map.core.graph import LayerGraph
from milp_map.core.platform import Platform
from milp_map.core.problem import Constraints, build_problem
from milp_map.core.scores import Sensitivity
from milp_map.core.split import Target, build_split_problem
from milp_map.defaults import DEFAULT_GROUP_SIZE, GRANULARITIES
from milp_map.errors import MilpMapError
from milp_map.io.models import is_shipped_model, load_model
from milp_map.io.platforms import load_groups_file, load_platform
from milp_map.io.scores import data_free_sensitivity, load_sensitivity, shipped_sensitivity
from milp_map.io.zoo import is_zoo_name


def load_problem(
    model: str | Path | LayerGraph,
    platform: str | Path | Platform,
    *,
    objective: str = "latency",
    sensitivity: str | Path | Sensitivity | None = None,
    groups: str | Path | None = None,
    max_latency_s: float | None = None,
    max_energy_j: float | None = None,
    max_proxy: float | None = None,
    max_proxy_fraction: float | None = None,
    granularity: str = "layer",
    group_size: int = DEFAULT_GROUP_SIZE,
) -> Target:
    """The mapping problem of `model` (zoo or shipped name, .onnx path, or a LayerGraph) on
    `platform` (preset name, YAML path, or a Platform).

    `sensitivity`: a score CSV or Sensitivity; None takes the shipped scores of a zoo or
    shipped model, else data-free scores from the weights. `groups`: a CSV of layers mapped
    as one unit. Bounds are in seconds, joules and proxy units; no proxy bound means no
    budget. `granularity="channel"` returns the channel-split problem (its `base` is the
    layer-wise one).
    """
    if granularity not in GRANULARITIES:
        raise MilpMapError(
            f"unknown granularity '{granularity}'; choose one of {', '.join(GRANULARITIES)}"
        )
    name = model.name if isinstance(model, LayerGraph) else os.fspath(model)
    graph = model if isinstance(model, LayerGraph) else load_model(name)
    loaded = platform if isinstance(platform, Platform) else load_platform(platform)
    precisions = sorted({a.precision for a in loaded.accelerators})
    scores = (
        sensitivity
        if isinstance(sensitivity, Sensitivity)
        else resolve_sensitivity(sensitivity, name, graph, precisions)
    )
    constraints = Constraints(
        max_latency_s=max_latency_s,
        max_energy_j=max_energy_j,
        max_proxy=max_proxy,
        max_proxy_fraction=max_proxy_fraction,
    )
    unit_groups = _groups_for(groups, graph.name) if groups else None
    problem = build_problem(graph, loaded, scores, objective, constraints, unit_groups)
    if granularity == "channel":
        return build_split_problem(problem, group_size)
    return problem


def resolve_sensitivity(
    path: str | Path | None, model: str, graph: LayerGraph, precisions: Sequence[str]
) -> Sensitivity:
    """The user's file, the shipped file of a zoo or shipped model, or data-free scores."""
    if path:
        return load_sensitivity(path)
    shipped = shipped_sensitivity(model) if is_zoo_name(model) or is_shipped_model(model) else None
    if shipped is not None:
        return shipped
    return data_free_sensitivity(graph, precisions)


def _groups_for(path: str | Path, network: str) -> dict[str, str]:
    """The groups a CSV gives `network` (rows with an empty network column match any)."""
    tables = load_groups_file(path)
    groups = tables.get(network) or tables.get("*")
    if groups is None:
        raise MilpMapError(
            f"{path}: no groups for network '{network}'; the file has "
            f"{', '.join(sorted(tables))} (leave the network column empty to match any)"
        )
    return groups
