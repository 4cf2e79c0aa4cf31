"""Mapped-model export: a mapping JSON -> an ONNX model that runs in onnxruntime.

Downstream of check (which validates the mapping) and upstream of accuracy (which measures the
result). The network is rewritten so it computes what the mapped SoC would compute:

* every conv / gemm part gets its weights quantised to its accelerator's precision with the
  quantizers the proxy uses (milp_map/core/quantize.py: the layer quantised as a whole, then the
  part's output channels taken), stored as fp32 initializers ("pre-quantised weights");
* a split layer becomes one Conv/Gemm/MatMul per accelerator over its assigned output channels,
  a Concat of the parts, and a Gather restoring the original channel order (omitted when the
  concatenation already is in order);
* with `activations=True`, the activation input of every conv / gemm part is fake-quantised
  (QuantizeLinear + DequantizeLinear, per tensor) to its accelerator's activation precision
  (ACTIVATION_BITS: int8 -> 8 bits, ternary -> 7 bits as DIANA's analog array, fp16 -> a
  Cast round trip), with ranges calibrated on sample inputs of the fp32 model;
* every node carries its layer, accelerator, precision and role in `metadata_props` (keys
  `milp_map.*`) and a readable `doc_string`.

Layers without weights (add, pool, concat, ...) and the element-wise ops folded into a layer
(BatchNormalization, Relu, ...) run in fp32; after a split they act on the reassembled tensor
and are tagged with all of the layer's accelerators.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from milp_map.core.graph import LayerGraph
from milp_map.core.quantize import QUANTIZERS
from milp_map.core.solution import Part, UnitMapping
from milp_map.errors import MilpMapError
from milp_map.io import models
from milp_map.io.models import is_shipped_model
from milp_map.io.onnx import node_names
from milp_map.io.zoo import is_zoo_name

if TYPE_CHECKING:
    from milp_map.core.problem import Problem
    from milp_map.evaluation.check import Checked

ACTIVATION_BITS: dict[str, int] = {"int8": 8, "int4": 8, "ternary": 7}
"""Activation bits per weight-precision label: DIANA's digital unit is 8-bit; its analog
array reads 7-bit activations (ODiMO); int4 weights keep int8 activations (W4A8)."""

FLOAT_ACTIVATIONS: dict[str, int] = {"fp16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16}
"""Reduced float precisions: activations are rounded by a Cast round trip."""

MAC_OPS = frozenset({"conv", "dwconv", "convtranspose", "gemm"})
WEIGHT_INPUT = 1
"""Conv, Gemm and MatMul read the activation first and the weight second."""
META_PREFIX = "milp_map."
CALIBRATION_SAMPLES = 64
MIN_IR_VERSION = 10
"""Node metadata_props need IR version 10 (onnx >= 1.16)."""


@dataclass(frozen=True)
class PartPlan:
    """One accelerator's share of a layer: its precision and output channels (None: all)."""

    accelerator: str
    precision: str
    channels: tuple[int, ...] | None = None


LayerPlan = dict[str, tuple[PartPlan, ...]]
"""layer name -> its parts (one part for a layer mapped whole)."""


@dataclass(frozen=True)
class Derived:
    """How an initializer of the mapped model is computed from one of the source model, so
    fine-tuning (finetune.py) can recompute it from trained weights: a "weight" moved to
    output channels first, quantised at `precision` and cut to `channels`; a "bias" cut to
    `channels`; an embedding "table" quantised columns first."""

    source: str
    kind: str
    precision: str | None = None
    channels: tuple[int, ...] | None = None
    weight_axis: int = 0
    groups: int = 1


@dataclass(frozen=True)
class MappedModel:
    """The mapped ONNX model, how its new weights derive from the source's, and the
    activation ranges its fake-quantisation was calibrated with."""

    model: onnx.ModelProto
    derived: dict[str, Derived]
    ranges: dict[str, tuple[float, float]]


# ----------------------------------------------------------------------------- from a mapping


def plan_from_mapping(
    mapping_path: str | Path,
    model: str | None = None,
    platform: str | None = None,
    sensitivity: str | None = None,
) -> tuple[LayerPlan, Checked]:
    """(plan, checked) for a mapping file, validated by `milp_map.check` first."""
    from milp_map.evaluation.check import check_mapping

    checked = check_mapping(mapping_path, model=model, platform=platform, sensitivity=sensitivity)
    return plan_of(checked.problem, checked.mapping), checked


def plan_of(problem: Problem, mapping: UnitMapping) -> LayerPlan:
    """Each layer's parts with their precision and channels, from a unit mapping.

    Split parts without channel indices get consecutive channel blocks in part order.
    """
    precision = {a.name: a.precision for a in problem.platform.accelerators}
    plan: LayerPlan = {}
    for unit in problem.units:
        parts = mapping[unit.name]
        for layer_name in unit.layers:
            plan[layer_name] = _layer_parts(problem.graph, layer_name, parts, precision)
    return plan


def _layer_parts(
    graph: LayerGraph, name: str, parts: tuple[Part, ...], precision: dict[str, str]
) -> tuple[PartPlan, ...]:
    if len(parts) == 1:
        return (PartPlan(parts[0].accelerator, precision[parts[0].accelerator]),)
    start = 0
    planned = []
    for part in parts:
        indices = part.channel_indices
        if indices is None:
            assert part.channels is not None
            indices = tuple(range(start, start + part.channels))
            start += part.channels
        planned.append(PartPlan(part.accelerator, precision[part.accelerator], tuple(indices)))
    covered = sorted(c for p in planned for c in p.channels or ())
    if covered != list(range(graph.layer(name).out_channels)):
        raise MilpMapError(
            f"layer '{name}': give channel indices for every part or for none; "
            "a mix does not partition the output channels"
        )
    return tuple(planned)


def model_proto(name_or_path: str, graph: LayerGraph | None = None) -> onnx.ModelProto:
    """The ONNX model the graph's layers were read from (normalised: constants folded, node
    names those of the layers), else the one behind `--model` (zoo build, shipped model or
    file)."""
    if graph is not None and graph.model is not None:
        copy = onnx.ModelProto()
        copy.CopyFrom(graph.model)
        return copy
    if is_zoo_name(name_or_path) or is_shipped_model(name_or_path):
        return models.model_proto(name_or_path)
    for candidate in (name_or_path, graph.source if graph is not None else None):
        if candidate and Path(candidate).is_file():
            return onnx.load(candidate)
    raise MilpMapError(
        f"model '{name_or_path}': cannot find its ONNX file to export; pass --model FILE.onnx"
    )


# ----------------------------------------------------------------------------- the rewrite


def export_mapped(
    model: onnx.ModelProto,
    graph: LayerGraph,
    plan: LayerPlan,
    *,
    activations: bool = True,
    calibration: np.ndarray | None = None,
    metadata: dict[str, str] | None = None,
) -> onnx.ModelProto:
    """The model rewritten per `plan` (see the module docstring); the input is not modified.

    `calibration`: sample inputs (N, ...) for activation ranges; None uses CALIBRATION_SAMPLES
    seeded standard-normal inputs (what the zoo's random weights are scaled for).
    """
    return rewrite_mapped(
        model, graph, plan, activations=activations, calibration=calibration, metadata=metadata
    ).model


def rewrite_mapped(
    model: onnx.ModelProto,
    graph: LayerGraph,
    plan: LayerPlan,
    *,
    activations: bool = True,
    calibration: np.ndarray | None = None,
    ranges: dict[str, tuple[float, float]] | None = None,
    metadata: dict[str, str] | None = None,
) -> MappedModel:
    """`export_mapped` with what fine-tuning needs beside the model: where each new weight
    comes from and the activation ranges; `ranges` given are used instead of calibrating."""
    missing = [layer.name for layer in graph.layers() if layer.name not in plan]
    if missing:
        raise MilpMapError(f"export: the plan leaves layer(s) {missing[:5]} unmapped")
    source = _with_dynamic_batch(model)
    names = node_names(source.graph.node)
    if ranges is None:
        ranges = {}
        if activations:
            wanted = _quantised_inputs(source, names, graph, plan)
            ranges = tensor_ranges(source, sorted(wanted), calibration)
    rewriter = _Rewriter(source, names, graph, plan, ranges, activations)
    out = rewriter.run()
    out.ir_version = max(out.ir_version, MIN_IR_VERSION)
    props = {p.key: p.value for p in out.metadata_props}
    props["milp_map.activations"] = _activation_label(out)
    helper.set_model_props(out, {**props, **(metadata or {})})
    onnx.checker.check_model(out)
    return MappedModel(out, dict(rewriter.derived), dict(ranges))


def _activation_label(model: onnx.ModelProto) -> str:
    """What the exported nodes do to activations (read from the nodes, not the request)."""
    ops = {
        node.op_type
        for node in model.graph.node
        if any(p.key == "milp_map.role" and p.value == "quantize" for p in node.metadata_props)
    }
    kinds = []
    if "QuantizeLinear" in ops:
        kinds.append("integer, calibrated per tensor")
    if "Cast" in ops:
        kinds.append("reduced float (Cast round trip)")
    return "; ".join(kinds) if kinds else "fp32"


def _with_dynamic_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose graph inputs and outputs have a symbolic batch dim `N` (stale shapes gone).

    A graph input or output typed without a shape (which onnx's checker refuses) gets the
    one ONNX shape inference finds; MilpMapError names it if none is found."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    initializers = {t.name for t in copy.graph.initializer}
    if _shapeless(copy, initializers):
        copy = onnx.shape_inference.infer_shapes(copy)
        still = _shapeless(copy, initializers)
        if still:
            raise MilpMapError(
                f"export: graph input/output '{still[0]}' has a type but no shape, and ONNX "
                "shape inference cannot find one; re-export the model with its shapes"
            )
    for value in [*copy.graph.input, *copy.graph.output]:
        if value.name in initializers or not value.type.HasField("tensor_type"):
            continue
        dims = value.type.tensor_type.shape.dim
        if len(dims) >= 2:
            dims[0].Clear()
            dims[0].dim_param = "N"
    del copy.graph.value_info[:]
    return copy


def _shapeless(model: onnx.ModelProto, initializers: set[str]) -> list[str]:
    """Names of graph inputs and outputs with a tensor type but no shape field."""
    return [
        v.name
        for v in [*model.graph.input, *model.graph.output]
        if v.name not in initializers
        and v.type.HasField("tensor_type")
        and not v.type.tensor_type.HasField("shape")
    ]


def _layer_of_node(graph: LayerGraph) -> dict[str, str]:
    return {node: layer.name for layer in graph.layers() for node in layer.onnx_nodes}


def _quantised_inputs(
    model: onnx.ModelProto, names: list[str], graph: LayerGraph, plan: LayerPlan
) -> set[str]:
    """Activation tensors read by a MAC part that runs at an integer precision."""
    node_by_name = dict(zip(names, model.graph.node, strict=True))
    wanted = set()
    for layer in graph.layers():
        if layer.op in MAC_OPS and any(p.precision in ACTIVATION_BITS for p in plan[layer.name]):
            wanted.add(node_by_name[layer.onnx_nodes[0]].input[0])
    return wanted


def tensor_ranges(
    model: onnx.ModelProto, tensors: Sequence[str], inputs: np.ndarray | None
) -> dict[str, tuple[float, float]]:
    """(min, max) of each named tensor of the fp32 model over the calibration inputs."""
    if not tensors:
        return {}
    from milp_map.accuracy.measure import check_fits, make_session

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    outputs = {o.name for o in probe.graph.output}
    probe.graph.output.extend(
        helper.make_empty_tensor_value_info(t) for t in tensors if t not in outputs
    )
    feeds = sample_inputs(probe, CALIBRATION_SAMPLES)
    session = make_session(probe, threads=1)
    if inputs is not None:
        check_fits(session, inputs, "the dataset's calibration images")
        first = next(iter(feeds))
        feeds[first] = np.asarray(inputs, dtype=feeds[first].dtype)
    values = session.run(list(tensors), feeds)
    return {t: (float(v.min()), float(v.max())) for t, v in zip(tensors, values, strict=True)}


def sample_inputs(model: onnx.ModelProto, n_samples: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs for every graph input, a batch of `n_samples` where the batch is free:
    standard-normal floats (what the zoo's random weights are scaled for), and integers below
    the rows of the table they index (token ids), else zeros."""
    rng = np.random.default_rng(seed)
    initializers = {t.name: t for t in model.graph.initializer}
    bound = _index_bounds(model, initializers)
    feeds = {}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor_type = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in tensor_type.shape.dim]
        if tensor_type.shape.dim and not tensor_type.shape.dim[0].HasField("dim_value"):
            dims[0] = n_samples
        dtype = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        if np.issubdtype(dtype, np.integer):
            feeds[value.name] = rng.integers(0, bound.get(value.name, 1), dims).astype(dtype)
        elif dtype == np.bool_:
            feeds[value.name] = np.ones(dims, dtype=dtype)
        elif dtype == np.float32:
            feeds[value.name] = rng.standard_normal(dims, dtype=np.float32)
        else:
            feeds[value.name] = rng.standard_normal(dims).astype(dtype)
    return feeds


def _index_bounds(model: onnx.ModelProto, initializers: dict) -> dict[str, int]:
    """Graph inputs that index a constant table (Gather): the number of its rows."""
    bounds: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type == "Gather" and len(node.input) > 1 and node.input[0] in initializers:
            rows = int(initializers[node.input[0]].dims[0])
            bounds[node.input[1]] = min(rows, bounds.get(node.input[1], rows))
    return bounds


class _Rewriter:
    """Builds the mapped node list and initializers in one pass over the nodes."""

    def __init__(
        self,
        model: onnx.ModelProto,
        names: list[str],
        graph: LayerGraph,
        plan: LayerPlan,
        ranges: dict[str, tuple[float, float]],
        activations: bool = True,
    ) -> None:
        self.activations = activations
        self.model = model
        self.names = names
        self.graph = graph
        self.plan = plan
        self.ranges = ranges
        self.layer_of = _layer_of_node(graph)
        self.initializers = {t.name: t for t in model.graph.initializer}
        self.new_initializers: list[onnx.TensorProto] = []
        self.taken = set(self.initializers) | {v.name for v in model.graph.input}
        self.nodes: list[onnx.NodeProto] = []
        self.fake_quantised: dict[tuple[str, str], str] = {}
        self.derived: dict[str, Derived] = {}

    def run(self) -> onnx.ModelProto:
        for name, node in zip(self.names, self.model.graph.node, strict=True):
            layer_name = self.layer_of.get(name)
            if layer_name is None:
                self._emit(_renamed(node, name), None, "constant", "", "")
                continue
            layer = self.graph.layer(layer_name)
            parts = self.plan[layer_name]
            if name == layer.onnx_nodes[0] and layer.op in MAC_OPS:
                self._mac_layer(node, name, layer_name, parts)
            elif name == layer.onnx_nodes[0] and layer.op == "embedding":
                self._embedding_layer(node, name, layer_name, parts[0])
            else:
                role = "layer" if name == layer.onnx_nodes[0] else "folded"
                self._emit(_renamed(node, name), layer_name, role, *_joined(parts))
        return self._model()

    def _mac_layer(
        self, node: onnx.NodeProto, name: str, layer: str, parts: tuple[PartPlan, ...]
    ) -> None:
        weight_name = node.input[WEIGHT_INPUT]
        if node.input[0] in self.initializers:
            raise MilpMapError(
                f"export: layer '{layer}': a MatMul with a constant first operand is not "
                "supported; export the model with the weight as the second operand"
            )
        weight = self._initializer(weight_name, layer)
        layout = _Layout.of(node, weight)
        if len(parts) == 1:
            part = parts[0]
            renamed = _renamed(node, name)
            renamed.input[0] = self._activation(node.input[0], layer, part)
            renamed.input[WEIGHT_INPUT] = self._weight(weight_name, weight, layout, part)
            self._emit(renamed, layer, "layer", part.accelerator, part.precision)
            return
        outputs, order = [], []
        for part in parts:
            assert part.channels is not None
            piece = _renamed(node, f"{name}/{part.accelerator}")
            piece.input[0] = self._activation(node.input[0], layer, part)
            piece.input[WEIGHT_INPUT] = self._weight(weight_name, weight, layout, part)
            if len(node.input) > 2 and node.input[2]:
                piece.input[2] = self._bias(node.input[2], layer, layout, part)
            piece.output[0] = f"{node.output[0]}/{part.accelerator}"
            self._emit(piece, layer, "part", part.accelerator, part.precision)
            outputs.append(piece.output[0])
            order.extend(part.channels)
        accelerators, precisions = _joined(parts)
        permutation = np.argsort(np.asarray(order, dtype=np.int64)).astype(np.int64)
        in_order = bool(np.array_equal(permutation, np.arange(len(order))))
        merged = node.output[0] if in_order else f"{node.output[0]}/concat"
        concat = helper.make_node(
            "Concat", outputs, [merged], name=f"{name}/concat", axis=layout.out_axis
        )
        self._emit(concat, layer, "merge", accelerators, precisions)
        if not in_order:
            indices = self._constant(f"{name}/order", permutation)
            gather = helper.make_node(
                "Gather",
                [merged, indices],
                [node.output[0]],
                name=f"{name}/reorder",
                axis=layout.out_axis,
            )
            self._emit(gather, layer, "merge", accelerators, precisions)

    def _embedding_layer(self, node: onnx.NodeProto, name: str, layer: str, part: PartPlan) -> None:
        """The lookup table quantised as the proxy scores it: output channels (columns) first."""
        table_name = node.input[0]
        table = self._initializer(table_name, layer)
        renamed = _renamed(node, name)
        if part.precision not in QUANTIZERS:
            raise MilpMapError(
                f"export: accelerator '{part.accelerator}' has precision '{part.precision}', "
                f"which has no quantizer; known: {', '.join(QUANTIZERS)}"
            )
        columns = table.reshape(table.shape[0], -1).T.astype(np.float32)
        quantised = QUANTIZERS[part.precision](columns).T.reshape(table.shape).astype(table.dtype)
        renamed.input[0] = self._constant(f"{table_name}/{part.precision}", quantised)
        self.derived[renamed.input[0]] = Derived(table_name, "table", part.precision)
        self._emit(renamed, layer, "layer", part.accelerator, part.precision)

    def _initializer(self, tensor: str, layer: str) -> np.ndarray:
        if tensor not in self.initializers:
            raise MilpMapError(
                f"export: layer '{layer}': weight '{tensor}' is not an initializer; export "
                "quantises initializer weights only, re-export the model with constant folding"
            )
        return numpy_helper.to_array(self.initializers[tensor])

    def _weight(self, tensor: str, weight: np.ndarray, layout: _Layout, part: PartPlan) -> str:
        """Quantised weight (the whole layer at the part's precision, then its channels)."""
        if part.precision not in QUANTIZERS:
            raise MilpMapError(
                f"export: accelerator '{part.accelerator}' has precision '{part.precision}', "
                f"which has no quantizer; known: {', '.join(QUANTIZERS)}"
            )
        out_first = layout.to_out_first(weight)
        quantised = QUANTIZERS[part.precision](out_first.astype(np.float32))
        if part.channels is not None:
            quantised = quantised[list(part.channels)]
        value = layout.from_out_first(quantised).astype(weight.dtype)
        suffix = part.accelerator if part.channels is not None else part.precision
        name = self._constant(f"{tensor}/{suffix}", value)
        self.derived[name] = Derived(
            tensor, "weight", part.precision, part.channels, layout.weight_axis, layout.groups
        )
        return name

    def _bias(self, tensor: str, layer: str, layout: _Layout, part: PartPlan) -> str:
        bias = self._initializer(tensor, layer)
        if bias.ndim == 0 or bias.shape[-1] == 1:
            return tensor
        name = self._constant(f"{tensor}/{part.accelerator}", bias[..., list(part.channels)])
        self.derived[name] = Derived(tensor, "bias", channels=part.channels)
        return name

    def _activation(self, tensor: str, layer: str, part: PartPlan) -> str:
        """The tensor fake-quantised at the part's activation precision (or as it is)."""
        key = (tensor, part.accelerator)
        if key in self.fake_quantised:
            return self.fake_quantised[key]
        out = tensor
        tag = (layer, "quantize", part.accelerator, part.precision)
        if not self.activations:
            pass  # weights only: activations stay fp32
        elif part.precision in FLOAT_ACTIVATIONS:
            low = f"{tensor}/{part.accelerator}/cast"
            out = f"{tensor}/{part.accelerator}/rounded"
            to = FLOAT_ACTIVATIONS[part.precision]
            self._emit(helper.make_node("Cast", [tensor], [low], name=low, to=to), *tag)
            self._emit(helper.make_node("Cast", [low], [out], name=out, to=1), *tag)
        elif part.precision in ACTIVATION_BITS and tensor in self.ranges:
            out = self._fake_quant(tensor, part, ACTIVATION_BITS[part.precision], tag)
        self.fake_quantised[key] = out
        return out

    def _fake_quant(self, tensor: str, part: PartPlan, bits: int, tag: tuple) -> str:
        """Clip (below 8 bits) + QuantizeLinear + DequantizeLinear, per-tensor scale."""
        low, high = self.ranges[tensor]
        unsigned = low >= 0.0
        peak = max(high if unsigned else max(abs(low), abs(high)), 1e-12)
        levels = 2**bits - 1 if unsigned else 2 ** (bits - 1) - 1
        base = f"{tensor}/{part.accelerator}/q{bits}"
        scale = self._constant(f"{base}/scale", np.array(peak / levels, dtype=np.float32))
        zero_dtype = np.uint8 if unsigned else np.int8
        zero = self._constant(f"{base}/zero", np.array(0, dtype=zero_dtype))
        source = tensor
        if bits < 8:
            lo = self._constant(f"{base}/lo", np.array(0.0 if unsigned else -peak, np.float32))
            hi = self._constant(f"{base}/hi", np.array(peak, dtype=np.float32))
            source = f"{base}/clipped"
            self._emit(helper.make_node("Clip", [tensor, lo, hi], [source], name=source), *tag)
        quantised, out = f"{base}/int", f"{base}/dq"
        self._emit(
            helper.make_node("QuantizeLinear", [source, scale, zero], [quantised], name=quantised),
            *tag,
        )
        self._emit(
            helper.make_node("DequantizeLinear", [quantised, scale, zero], [out], name=out), *tag
        )
        return out

    def _constant(self, name: str, value: np.ndarray) -> str:
        """A new initializer; named `name`, or `name_2`, ... when a layer sharing the same
        source weight (exporters merge equal constants) made one of that name already."""
        unique, k = name, 2
        while unique in self.taken:
            unique, k = f"{name}_{k}", k + 1
        self.taken.add(unique)
        self.new_initializers.append(numpy_helper.from_array(value, unique))
        return unique

    def _emit(
        self,
        node: onnx.NodeProto,
        layer: str | None,
        role: str,
        accelerator: str,
        precision: str,
    ) -> None:
        props = {"role": role, "layer": layer or "", "accelerator": accelerator}
        props["precision"] = precision
        del node.metadata_props[:]
        for key, value in props.items():
            node.metadata_props.add(key=META_PREFIX + key, value=value)
        if layer is not None:
            node.doc_string = f"milp_map: {role} of layer {layer} on {accelerator} ({precision})"
        self.nodes.append(node)

    def _model(self) -> onnx.ModelProto:
        out = onnx.ModelProto()
        out.CopyFrom(self.model)
        del out.graph.node[:]
        out.graph.node.extend(self.nodes)
        used = {t for node in self.nodes for t in node.input}
        kept = [t for t in self.model.graph.initializer if t.name in used]
        del out.graph.initializer[:]
        out.graph.initializer.extend(kept + self.new_initializers)
        inputs = [v for v in out.graph.input if v.name in used or v.name not in self.initializers]
        del out.graph.input[:]
        out.graph.input.extend(inputs)
        return out


def _renamed(node: onnx.NodeProto, name: str) -> onnx.NodeProto:
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    copy.name = name
    return copy


def _joined(parts: tuple[PartPlan, ...]) -> tuple[str, str]:
    return "+".join(p.accelerator for p in parts), "+".join(p.precision for p in parts)


@dataclass(frozen=True)
class _Layout:
    """Where a MAC node's weight keeps its output channels, and where its output does."""

    weight_axis: int
    out_axis: int
    groups: int = 1
    """ConvTranspose with groups: its weight (C_in, C_out/g, k...) holds each group's outputs."""

    @classmethod
    def of(cls, node: onnx.NodeProto, weight: np.ndarray) -> _Layout:
        if node.op_type == "Conv":
            return cls(0, 1)
        if node.op_type == "ConvTranspose":
            groups = next((a.i for a in node.attribute if a.name == "group"), 1)
            return cls(1, 1, groups)
        if node.op_type == "Gemm":
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            return cls(0 if trans_b else 1, 1)
        if node.op_type == "MatMul":
            return cls(weight.ndim - 1, -1)
        raise MilpMapError(f"export: node '{node.name}' ({node.op_type}) is not a conv or gemm")

    def to_out_first(self, weight: np.ndarray) -> np.ndarray:
        if self.groups == 1:
            return np.moveaxis(weight, self.weight_axis, 0)
        g, kernel = self.groups, weight.shape[2:]
        grouped = weight.reshape(g, weight.shape[0] // g, weight.shape[1], *kernel)
        return grouped.swapaxes(1, 2).reshape(g * weight.shape[1], weight.shape[0] // g, *kernel)

    def from_out_first(self, weight: np.ndarray) -> np.ndarray:
        if self.groups == 1:
            return np.moveaxis(weight, 0, self.weight_axis)
        g, kernel = self.groups, weight.shape[2:]
        grouped = weight.reshape(g, weight.shape[0] // g, weight.shape[1], *kernel)
        return grouped.swapaxes(1, 2).reshape(g * weight.shape[1], weight.shape[0] // g, *kernel)


# ----------------------------------------------------------------------------- writing


def write_model_atomic(model: onnx.ModelProto, path: str | Path) -> Path:
    """Write the model atomically (milp_map/io/files.py), so `path` is never half-written."""
    from milp_map.io.files import write_bytes_atomic

    return write_bytes_atomic(model.SerializeToString(), path)


def export_mapping_file(
    mapping_path: str | Path,
    *,
    model: str | None = None,
    platform: str | None = None,
    activations: bool = True,
    calibration: np.ndarray | None = None,
) -> onnx.ModelProto:
    """The mapped model of a mapping file (validated first; see `export_mapped`)."""
    plan, checked = plan_from_mapping(mapping_path, model, platform)
    problem = checked.problem
    graph = problem.graph
    source = model_proto(model or graph.name, graph)
    metadata = {
        "milp_map.mapping": str(mapping_path),
        "milp_map.model": graph.name,
        "milp_map.platform": problem.platform.name,
    }
    return export_mapped(
        source,
        graph,
        plan,
        activations=activations,
        calibration=calibration,
        metadata=metadata,
    )


def calibration_inputs(data: str | None, n_samples: int = 256) -> np.ndarray | None:
    """The first `n_samples` training images of a dataset (test images if it has none)."""
    if data is None:
        return None
    from milp_map.io.datasets import load_dataset

    dataset = load_dataset(data)
    images = dataset.x_train if len(dataset.x_train) else dataset.x_test
    return images[:n_samples]
