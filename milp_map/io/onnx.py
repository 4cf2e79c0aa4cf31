"""The ONNX reader: an .onnx file (or proto) -> the layer DAG of milp_map/core/graph.py.

The first stage of milp_map. A *layer* is what an accelerator executes as one job: a conv, gemm,
pool, ... with the cheap element-wise and reshaping nodes around it (BatchNormalization, Relu,
Flatten, bias Add, ...) folded in. Shapes come from ONNX shape inference with the batch pinned
to 1.

Graph-input side: a folded op that reads the graph input directly (no producer layer, e.g. an
input Transpose or Cast) is folded into the layer(s) that consume its output and listed in their
`onnx_nodes` after the main node; if no layer consumes it, it is dropped.
"""

from __future__ import annotations

import heapq
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from milp_map.core.graph import OP_KINDS, InvalidLayer, Layer, LayerGraph, assemble
from milp_map.errors import MilpMapError

FOLDED_OPS: frozenset[str] = frozenset(
    {
        "BatchNormalization",
        "Relu",
        "LeakyRelu",
        "PRelu",
        "Clip",
        "Sigmoid",
        "HardSigmoid",
        "HardSwish",
        "Tanh",
        "Identity",
        "Dropout",
        "Flatten",
        "Reshape",
        "Squeeze",
        "Unsqueeze",
        "Transpose",
        "Cast",
        "Pad",
        "LRN",
    }
)
"""ONNX op types always folded into the neighbouring layer (Pad into the layer before it:
its extra border is read by the next conv; LRN as AlexNet/GoogLeNet-v1 files carry it)."""

FOLDED_IF_CONSTANT_OPS: frozenset[str] = frozenset({"Add", "Sub", "Mul", "Div"})
"""ONNX op types folded when their other operand is a constant (bias, scale). Sub/Mul/Div of two
activations are folded too when both come from the same layer (Swish: x * sigmoid(x))."""

_LAYER_OPS: dict[str, str] = {
    "Conv": "conv",
    "Gemm": "gemm",
    "MatMul": "matmul",
    "Add": "add",
    "Sum": "add",
    "Concat": "concat",
    "MaxPool": "pool",
    "AveragePool": "pool",
    "GlobalAveragePool": "pool",
    "GlobalMaxPool": "pool",
    "Softmax": "softmax",
    "LogSoftmax": "softmax",
    "Resize": "resize",
    "Upsample": "resize",
}
_SHAPE_OPS = frozenset({"Shape", "Size"})
_INLINE_ELEMS = 1024
_STATIC = "static"
_FOLD = "fold"


def load_onnx(
    source: str | os.PathLike[str] | onnx.ModelProto, name: str | None = None
) -> LayerGraph:
    """Read an ONNX model (path or in-memory proto) into a LayerGraph of folded layers.

    Every problem with the input raises MilpMapError with a one-line message naming the file.
    """
    model, origin = _read_model(source, name)
    view = _ModelView.build(model, origin.label, origin.base_dir)
    kinds = {node.name: _classify(node, view) for node in view.nodes}
    builder = _DagBuilder(view)
    for node in view.nodes:
        if kinds[node.name] == _FOLD:
            builder.fold(node)
        elif kinds[node.name] != _STATIC:
            builder.add_layer(node, kinds[node.name])
    return builder.finish(origin.name, origin.source)


# ---------------------------------------------------------------- reading and validating the file


@dataclass(frozen=True)
class _Origin:
    """Where a model came from: graph name, how messages name it, where external weights live."""

    name: str
    label: str
    source: str
    base_dir: str


def _read_model(
    source: str | os.PathLike[str] | onnx.ModelProto, name: str | None
) -> tuple[onnx.ModelProto, _Origin]:
    """Load the model into a proto this module may modify (a copy if the caller passed one)."""
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
        graph_name = name or source.graph.name or "model"
        return model, _Origin(graph_name, f"{graph_name} (in memory)", "<memory>", "")
    if not isinstance(source, (str, os.PathLike)):
        raise MilpMapError(
            f"load_onnx: expected a file path or onnx.ModelProto, got {type(source).__name__}"
        )
    label = os.fspath(source)
    path = Path(label)
    if not path.exists():
        raise MilpMapError(
            f"{label}: file not found; check the path (working directory {Path.cwd()})"
        )
    if not path.is_file():
        raise MilpMapError(f"{label}: not a file; pass the path of an .onnx model")
    try:
        model = onnx.load(path, load_external_data=False)
    except OSError as exc:
        raise MilpMapError(f"{label}: cannot read the file ({exc.strerror or exc})") from exc
    except Exception as exc:
        raise MilpMapError(_unreadable_message(label, path)) from exc
    if not model.HasField("graph"):
        raise MilpMapError(_unreadable_message(label, path))
    return model, _Origin(name or path.stem, label, label, str(path.parent))


def _unreadable_message(label: str, path: Path) -> str:
    """Explain why a file did not decode as an ONNX ModelProto, naming the likely cause."""
    with path.open("rb") as handle:
        head = handle.read(64)
    if not head:
        return f"{label}: the file is empty; re-export the model"
    if head.startswith(b"version https://git-lfs"):
        return f"{label}: is a Git LFS pointer, not the model; run `git lfs pull`"
    return (
        f"{label}: not a readable ONNX model (protobuf decoding failed); "
        "check that it is an .onnx export and not truncated"
    )


def _one_line(exc: BaseException) -> str:
    """The first non-empty line of an exception message, so user messages stay on one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


# ---------------------------------------------------------------- nodes, order and shapes


@dataclass(frozen=True, eq=False)
class _Node:
    """An ONNX node with its unique stable name, its position in the file and in the sorted list."""

    index: int
    position: int
    name: str
    proto: onnx.NodeProto

    @property
    def op(self) -> str:
        domain = self.proto.domain
        op_type = self.proto.op_type
        return op_type if domain in ("", "ai.onnx") else f"{domain}.{op_type}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(tensor for tensor in self.proto.input if tensor)

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(tensor for tensor in self.proto.output if tensor)

    def attr(self, key: str, default: Any) -> Any:
        for attribute in self.proto.attribute:
            if attribute.name == key:
                return helper.get_attribute_value(attribute)
        return default

    def describe(self) -> str:
        return f"node '{self.name}' (op {self.op})"


def node_names(protos: Sequence[onnx.NodeProto]) -> list[str]:
    """Unique names in file order: `{op_type}_{k}` for unnamed nodes, `_2`, `_3` for repeats."""
    taken: set[str] = set()
    names = []
    for k, proto in enumerate(protos):
        base = proto.name or f"{proto.op_type}_{k}"
        name, suffix = base, 2
        while name in taken:
            name, suffix = f"{base}_{suffix}", suffix + 1
        taken.add(name)
        names.append(name)
    return names


def _check_one_line_names(graph: onnx.GraphProto, label: str) -> None:
    """Reject node and tensor names with line breaks: they become layer names and message text."""
    named = [("node", n.name) for n in graph.node] + [("op", n.op_type) for n in graph.node]
    named += [("tensor", t) for node in graph.node for t in (*node.input, *node.output)]
    named += [("tensor", v.name) for v in (*graph.input, *graph.output, *graph.initializer)]
    for kind, name in named:
        if name and name.splitlines() != [name]:
            raise MilpMapError(
                f"{label}: {kind} name {name!r} contains a line break; rename it or re-export"
            )


def _topological_order(graph: onnx.GraphProto, names: list[str], label: str) -> list[int]:
    """Node indices in dependency order, ties by file position; rejects cycles and dangling reads.

    ONNX requires sorted nodes, but not every exporter complies, and shape inference needs it.
    """
    available = {value.name for value in graph.input} | {t.name for t in graph.initializer}
    producer: dict[str, int] = {}
    for k, proto in enumerate(graph.node):
        for tensor in filter(None, proto.output):
            if tensor in producer:
                raise MilpMapError(
                    f"{label}: tensor '{tensor}' is produced by both node "
                    f"'{names[producer[tensor]]}' and node '{names[k]}'; ONNX tensor names must be "
                    "unique, re-export the model"
                )
            producer[tensor] = k
    consumers: list[list[int]] = [[] for _ in graph.node]
    waiting = []
    for k, proto in enumerate(graph.node):
        needs = set()
        for tensor in filter(None, proto.input):
            if tensor in producer:
                needs.add(producer[tensor])
            elif tensor not in available:
                raise MilpMapError(
                    f"{label}: node '{names[k]}' (op {proto.op_type}) reads tensor '{tensor}', "
                    "which no node, graph input or initializer provides; re-export the model"
                )
        for needed in needs:
            consumers[needed].append(k)
        waiting.append(len(needs))
    ready = [k for k, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        for consumer in consumers[k]:
            waiting[consumer] -= 1
            if waiting[consumer] == 0:
                heapq.heappush(ready, consumer)
    if len(order) < len(graph.node):
        stuck = min(set(range(len(graph.node))) - set(order))
        raise MilpMapError(
            f"{label}: the graph has a cycle through node '{names[stuck]}' "
            f"(op {graph.node[stuck].op_type}); ONNX graphs must be acyclic, re-export the model"
        )
    return order


def _reorder_nodes(graph: onnx.GraphProto, order: list[int]) -> None:
    """Rewrite the node list in the given order (copies first: the repeated field is cleared)."""
    reordered = []
    for k in order:
        copy = onnx.NodeProto()
        copy.CopyFrom(graph.node[k])
        reordered.append(copy)
    del graph.node[:]
    graph.node.extend(reordered)


def _pin_batch_to_one(graph: onnx.GraphProto) -> None:
    """Set dim 0 of every graph input to 1 and drop stale shapes.

    milp_map maps one sample; a concrete batch also lets data propagation resolve Reshape targets
    such as (N, -1), which stay unknown with a symbolic N.
    """
    initializers = {tensor.name for tensor in graph.initializer}
    for value in graph.input:
        tensor_type = value.type.tensor_type
        if value.name in initializers or not value.type.HasField("tensor_type"):
            continue
        if not tensor_type.HasField("shape"):
            continue
        dims = tensor_type.shape.dim
        if len(dims) >= 2 or (len(dims) == 1 and not dims[0].HasField("dim_value")):
            dims[0].Clear()
            dims[0].dim_value = 1
    del graph.value_info[:]
    for value in graph.output:
        if value.type.HasField("tensor_type"):
            value.type.tensor_type.ClearField("shape")


def _detach_large_initializers(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    """Replace large initializers by typed graph inputs and return every initializer by name.

    Shape inference serialises the whole model; it needs weight dims, not values, so this makes
    it fast on big models. Small tensors (Reshape targets, Resize scales) stay for data_prop.
    """
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    small = [tensor for tensor in graph.initializer if math.prod(tensor.dims) <= _INLINE_ELEMS]
    declared = {value.name for value in graph.input}
    large = [tensor for tensor in initializers.values() if math.prod(tensor.dims) > _INLINE_ELEMS]
    del graph.initializer[:]
    graph.initializer.extend(small)
    graph.input.extend(
        helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims))
        for tensor in large
        if tensor.name not in declared
    )
    return initializers


def _infer_shapes(model: onnx.ModelProto, label: str) -> tuple[onnx.ModelProto, str]:
    """Run ONNX shape inference; return the inferred model and the strict-mode complaint, if any.

    Strict mode names the node that breaks inference; the lenient retry still yields every shape
    it can, and only a layer that needs a missing shape fails later (citing the complaint).
    """
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True), ""
    except Exception as exc:
        complaint = _one_line(exc)
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True), complaint
    except Exception as exc:
        raise MilpMapError(
            f"{label}: ONNX shape inference failed ({_one_line(exc)}); "
            "check the model with onnx.checker.check_model or re-export it"
        ) from exc


def _inferred_dims(model: onnx.ModelProto) -> dict[str, tuple[int | None, ...]]:
    """Every tensor's dims as inferred (None for a symbolic or unknown dim)."""
    shapes: dict[str, tuple[int | None, ...]] = {}
    graph = model.graph
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor_type = value.type.tensor_type
        if value.type.HasField("tensor_type") and tensor_type.HasField("shape"):
            shapes[value.name] = tuple(
                dim.dim_value if dim.HasField("dim_value") else None
                for dim in tensor_type.shape.dim
            )
    for tensor in graph.initializer:
        shapes[tensor.name] = tuple(tensor.dims)
    return shapes


def _static_tensors(nodes: Sequence[_Node], initializers: set[str]) -> frozenset[str]:
    """Tensors known without running the network: initializers and what is computed from them
    or from shapes alone (Constant, Shape -> Gather -> Concat chains feeding Reshape, ...)."""
    static = set(initializers)
    for node in nodes:
        if node.op in _SHAPE_OPS or all(tensor in static for tensor in node.inputs):
            static.update(node.outputs)
    return frozenset(static)


@dataclass
class _ModelView:
    """The model as the folding pass sees it: sorted nodes, inferred shapes, constant tensors."""

    label: str
    model: onnx.ModelProto
    nodes: list[_Node]
    shapes: dict[str, tuple[int | None, ...]]
    static: frozenset[str]
    initializers: dict[str, onnx.TensorProto]
    producer: dict[str, _Node]
    graph_inputs: tuple[str, ...]
    base_dir: str
    inference_complaint: str

    @classmethod
    def build(cls, model: onnx.ModelProto, label: str, base_dir: str) -> _ModelView:
        graph = model.graph
        if graph.sparse_initializer:
            raise MilpMapError(
                f"{label}: sparse initializer '{graph.sparse_initializer[0].values.name}' is not "
                "supported; save the model with dense initializers"
            )
        _check_one_line_names(graph, label)
        names = node_names(graph.node)
        order = _topological_order(graph, names, label)
        if order != sorted(order):
            _reorder_nodes(graph, order)
        _pin_batch_to_one(graph)
        initializers = _detach_large_initializers(graph)
        inferred, complaint = _infer_shapes(model, label)
        nodes = [
            _Node(k, position, names[k], proto)
            for position, (k, proto) in enumerate(zip(order, inferred.graph.node, strict=True))
        ]
        return cls(
            label=label,
            model=inferred,
            nodes=nodes,
            shapes=_inferred_dims(inferred),
            static=_static_tensors(nodes, set(initializers)),
            initializers=initializers,
            producer={tensor: node for node in nodes for tensor in node.outputs},
            graph_inputs=tuple(v.name for v in inferred.graph.input if v.name not in initializers),
            base_dir=base_dir,
            inference_complaint=complaint,
        )

    def activation_inputs(self, node: _Node) -> list[str]:
        """The node's inputs that carry data computed at run time, in operand order."""
        return [tensor for tensor in node.inputs if tensor not in self.static]

    def dims(self, tensor: str, node: _Node) -> tuple[int, ...]:
        """Fully known dims of a tensor `node` uses (batch already 1); raise if not inferred."""
        dims = self.shapes.get(tensor)
        if dims is None or any(dim is None for dim in dims):
            if self.inference_complaint:
                cause = (
                    f"ONNX shape inference failed ({self.inference_complaint}); fix or re-export"
                )
            else:
                cause = (
                    "give the model fixed input shapes "
                    "(python -m onnxruntime.tools.make_dynamic_shape_fixed) or re-export it"
                )
            raise MilpMapError(
                f"{self.label}: the shape of tensor '{tensor}' used by {node.describe()} could not "
                f"be inferred; {cause}"
            )
        return tuple(int(dim) for dim in dims)

    def elems(self, tensor: str, node: _Node) -> int:
        """Elements of a tensor `node` uses, batch 1."""
        return math.prod(self.dims(tensor, node))

    def input_elems(self, node: _Node) -> int:
        """Elements of the distinct activation inputs of `node`."""
        return sum(
            self.elems(tensor, node) for tensor in dict.fromkeys(self.activation_inputs(node))
        )

    def weight_count(self, tensor: str, node: _Node) -> int:
        """Parameters in a constant operand; 0 if the operand is itself an activation."""
        return math.prod(self.dims(tensor, node)) if tensor in self.static else 0

    def constant_value(self, tensor: str, node: _Node) -> np.ndarray | None:
        """The value of a constant operand, or None if it is an activation or cannot be computed."""
        if tensor in self.initializers:
            return self._initializer_array(tensor, node)
        if tensor in self.static:
            return self._evaluate_constant(tensor, node)
        return None

    def _initializer_array(self, tensor: str, node: _Node) -> np.ndarray:
        try:
            return numpy_helper.to_array(self.initializers[tensor], base_dir=self.base_dir)
        except Exception as exc:
            raise MilpMapError(
                f"{self.label}: cannot read initializer '{tensor}' of {node.describe()} "
                f"({_one_line(exc)}); keep external weight files next to the model"
            ) from exc

    def _evaluate_constant(self, tensor: str, node: _Node) -> np.ndarray | None:
        """Compute a weight made by Constant/Transpose/DequantizeLinear/... nodes from initializers.

        Returns None for shape-derived tensors or anything the reference runtime cannot run:
        the weight array is optional, its shape (and so the weight count) is not.
        """
        from onnx.reference import ReferenceEvaluator

        needed: dict[str, _Node] = {}
        used_initializers: dict[str, np.ndarray] = {}
        pending = [tensor]
        while pending:
            current = pending.pop()
            if current in self.initializers:
                used_initializers[current] = self._initializer_array(current, node)
                continue
            producer = self.producer.get(current)
            if producer is None or producer.op in _SHAPE_OPS:
                return None
            if producer.name not in needed:
                needed[producer.name] = producer
                pending.extend(producer.inputs)
        protos = [n.proto for n in sorted(needed.values(), key=lambda n: n.position)]
        graph = helper.make_graph(
            protos,
            "constant",
            inputs=[],
            outputs=[helper.make_value_info(tensor, onnx.TypeProto())],
            initializer=[numpy_helper.from_array(a, name) for name, a in used_initializers.items()],
        )
        subgraph = helper.make_model(graph, opset_imports=self.model.opset_import)
        try:
            return np.asarray(ReferenceEvaluator(subgraph).run(None, {})[0])
        except Exception:
            return None

    def fail(self, node: _Node, problem: str) -> MilpMapError:
        """A one-line error naming the file and the node, `problem` completing the sentence."""
        return MilpMapError(f"{self.label}: {node.describe()} {problem}")


# ---------------------------------------------------------------- classifying nodes


def _classify(node: _Node, view: _ModelView) -> str:
    """'static' (no run-time data), 'fold', or the layer kind; unsupported ops raise here."""
    op = node.op
    n_activations = len(view.activation_inputs(node))
    if op in _SHAPE_OPS or n_activations == 0:
        return _STATIC
    if op in FOLDED_OPS:
        return _FOLD
    if op in ("Add", "Sum"):
        return "add" if n_activations >= 2 else _FOLD
    if op in FOLDED_IF_CONSTANT_OPS:
        return _FOLD
    if op == "MatMul":
        return "gemm" if n_activations < len(node.inputs) else "matmul"
    if op in _LAYER_OPS:
        return _LAYER_OPS[op]
    folded = ", ".join(sorted(FOLDED_OPS))
    raise view.fail(
        node,
        f"is not supported; milp_map maps {', '.join(OP_KINDS)} layers and folds {folded} "
        "and Add/Mul/Sub/Div with a constant operand; export the model without it or open an issue",
    )


# ---------------------------------------------------------------- layer fields per op


def _pair(values: Sequence[int]) -> tuple[int, int]:
    """(Y, X) from a 1-D or 2-D size: (k,) -> (1, k)."""
    padded = (1, 1, *values)
    return int(padded[-2]), int(padded[-1])


def _spatial(sizes: Sequence[int]) -> tuple[int, int]:
    """(Y, X) covering any number of spatial dims; the product always equals the element count."""
    if len(sizes) <= 2:
        return _pair(sizes)
    return math.prod(sizes[:-1]), int(sizes[-1])


def _channels_and_hw(dims: Sequence[int]) -> tuple[int, tuple[int, int]]:
    """Channels and (H, W) of an N, C, spatial... tensor; a vector is (C) with (1, 1)."""
    if len(dims) <= 1:
        return (int(dims[0]) if dims else 1), (1, 1)
    return int(dims[1]), _spatial(dims[2:])


def _read_only(array: np.ndarray | None) -> np.ndarray | None:
    """The array made contiguous and read-only: layers are immutable (arrays here are fresh)."""
    if array is None:
        return None
    frozen = np.ascontiguousarray(array)
    frozen.setflags(write=False)
    return frozen


def _conv_layer(node: _Node, view: _ModelView) -> Layer:
    """Conv -> conv (groups 1 or grouped) or dwconv (groups == C_in, any channel multiplier)."""
    x, w = node.inputs[0], node.inputs[1]
    x_dims, w_dims = view.dims(x, node), view.dims(w, node)
    y_dims = view.dims(node.outputs[0], node)
    n_spatial = len(w_dims) - 2
    if n_spatial not in (1, 2):
        raise view.fail(
            node,
            f"is a {n_spatial}-D convolution; milp_map maps 1-D and 2-D convolutions only; "
            "export the model without it or open an issue",
        )
    groups = int(node.attr("group", 1))
    in_channels, in_hw = _channels_and_hw(x_dims)
    out_channels, out_hw = _channels_and_hw(y_dims)
    if in_channels != w_dims[1] * groups:
        raise view.fail(
            node,
            f"reads {in_channels} channels but its weight {list(w_dims)} with group={groups} "
            f"expects {w_dims[1] * groups}; the model is inconsistent, fix or re-export it",
        )
    kernel = _pair(w_dims[2:])
    weight = view.constant_value(w, node)
    return Layer(
        name=node.name,
        op="dwconv" if groups > 1 and groups == in_channels else "conv",
        in_channels=in_channels,
        out_channels=out_channels,
        kernel=kernel,
        stride=_pair(node.attr("strides", [1] * n_spatial)),
        groups=groups,
        in_hw=in_hw,
        out_hw=out_hw,
        macs=math.prod(y_dims) * w_dims[1] * kernel[0] * kernel[1],
        weight_count=view.weight_count(w, node),
        input_elems=view.input_elems(node),
        output_elems=math.prod(y_dims),
        weight=_read_only(None if weight is None else weight.reshape(w_dims[:2] + kernel)),
        onnx_nodes=(node.name,),
    )


def _gemm_layer(node: _Node, view: _ModelView) -> Layer:
    """Gemm Y = A·B' (+C); K_in and N_out come from B, the weight is stored (N_out, K_in)."""
    b = node.inputs[1]
    b_dims, y_dims = view.dims(b, node), view.dims(node.outputs[0], node)
    transposed = bool(node.attr("transB", 0))
    k_in, n_out = (b_dims[1], b_dims[0]) if transposed else (b_dims[0], b_dims[1])
    weight = view.constant_value(b, node)
    rows_hw = _spatial(y_dims[:-1])
    return Layer(
        name=node.name,
        op="gemm",
        in_channels=k_in,
        out_channels=n_out,
        kernel=(1, 1),
        stride=(1, 1),
        groups=1,
        in_hw=rows_hw,
        out_hw=rows_hw,
        macs=math.prod(y_dims) * k_in,
        weight_count=view.weight_count(b, node),
        input_elems=view.input_elems(node),
        output_elems=math.prod(y_dims),
        weight=_read_only(weight if weight is None or transposed else weight.T),
        onnx_nodes=(node.name,),
    )


def _matmul_layer(node: _Node, view: _ModelView) -> Layer:
    """MatMul: "gemm" with a constant operand (weight stored (N_out, K_in)), else "matmul"."""
    a, b = node.inputs[0], node.inputs[1]
    a_dims, b_dims = view.dims(a, node), view.dims(b, node)
    y_dims = view.dims(node.outputs[0], node)
    weight = None
    if b in view.static:
        op, weight_tensor = "gemm", b
        k_in = b_dims[-2] if len(b_dims) >= 2 else b_dims[0]
        n_out = b_dims[-1] if len(b_dims) >= 2 else 1
        value = view.constant_value(b, node)
        if value is not None:
            weight = np.swapaxes(value, -1, -2) if value.ndim >= 2 else value.reshape(1, -1)
        in_hw, out_hw = _spatial(a_dims[:-1]), _spatial(y_dims[:-1])
    elif a in view.static:
        op, weight_tensor = "gemm", a
        k_in = a_dims[-1]
        n_out = a_dims[-2] if len(a_dims) >= 2 else 1
        weight = view.constant_value(a, node)
        in_hw = out_hw = (1, math.prod(y_dims) // n_out)
    else:
        op, weight_tensor = "matmul", None
        k_in, n_out = a_dims[-1], (y_dims[-1] if y_dims else 1)
        in_hw, out_hw = _spatial(a_dims[:-1]), _spatial(y_dims[:-1])
    return Layer(
        name=node.name,
        op=op,
        in_channels=k_in,
        out_channels=n_out,
        kernel=(1, 1),
        stride=(1, 1),
        groups=1,
        in_hw=in_hw,
        out_hw=out_hw,
        macs=math.prod(y_dims) * k_in,
        weight_count=0 if weight_tensor is None else view.weight_count(weight_tensor, node),
        input_elems=view.input_elems(node),
        output_elems=math.prod(y_dims),
        weight=_read_only(weight),
        onnx_nodes=(node.name,),
    )


def _data_movement_layer(kind: str, node: _Node, view: _ModelView) -> Layer:
    """add, concat, pool, softmax, resize: no weights, no MACs, NCHW channels and sizes."""
    first = view.activation_inputs(node)[0]
    in_channels, in_hw = _channels_and_hw(view.dims(first, node))
    y_dims = view.dims(node.outputs[0], node)
    out_channels, out_hw = _channels_and_hw(y_dims)
    return Layer(
        name=node.name,
        op=kind,
        in_channels=in_channels,
        out_channels=out_channels,
        kernel=(1, 1),
        stride=(1, 1),
        groups=1,
        in_hw=in_hw,
        out_hw=out_hw,
        macs=0,
        weight_count=0,
        input_elems=view.input_elems(node),
        output_elems=math.prod(y_dims),
        onnx_nodes=(node.name,),
    )


_LAYER_MAKERS: dict[str, Callable[[_Node, _ModelView], Layer]] = {
    "conv": _conv_layer,
    "gemm": _gemm_layer,
    "matmul": _matmul_layer,
}


# ---------------------------------------------------------------- folding and building the DAG


@dataclass
class _Draft:
    """A layer while the nodes after it are still being folded in."""

    layer: Layer
    node: _Node
    folded: list[_Node] = field(default_factory=list)
    output: str = ""


class _DagBuilder:
    """Walks nodes in topological order, folding cheap ops and wiring layer-to-layer edges."""

    def __init__(self, view: _ModelView) -> None:
        self.view = view
        self.drafts: dict[str, _Draft] = {}
        self.owner: dict[str, str] = {}
        self.prelude: dict[str, tuple[_Node, ...]] = dict.fromkeys(view.graph_inputs, ())
        self.edges: dict[tuple[str, str], int] = {}

    def add_layer(self, node: _Node, kind: str) -> None:
        """Start a layer at `node`; graph-input-side folded nodes feeding it join the layer."""
        make = _LAYER_MAKERS.get(kind)
        try:
            layer = make(node, self.view) if make else _data_movement_layer(kind, node, self.view)
        except InvalidLayer as exc:
            raise MilpMapError(f"{self.view.label}: {exc}; check the model's shapes") from exc
        draft = _Draft(layer, node, output=node.outputs[0])
        for tensor in dict.fromkeys(self.view.activation_inputs(node)):
            if tensor in self.owner:
                key = (self.owner[tensor], node.name)
                self.edges[key] = self.edges.get(key, 0) + self.view.elems(tensor, node)
            else:
                draft.folded.extend(n for n in self.prelude[tensor] if n not in draft.folded)
        self.drafts[node.name] = draft
        self.owner.update(dict.fromkeys(node.outputs, node.name))

    def fold(self, node: _Node) -> None:
        """Fold `node` into the single layer producing its activations (or the graph-input side)."""
        tensors = self.view.activation_inputs(node)
        owners = list(dict.fromkeys(self.owner.get(tensor) for tensor in tensors))
        if len(owners) > 1:
            sources = " and ".join(
                f"layer '{owner}'" if owner else "the graph input" for owner in owners
            )
            raise self.view.fail(
                node,
                f"combines the outputs of {sources}; milp_map folds {node.op} only into a single "
                "producer layer (constant operand or same-layer gating such as Swish), so this "
                "gating is not supported; export the model without it or open an issue",
            )
        owner = owners[0]
        if owner is None:
            chain = tuple(dict.fromkeys(n for tensor in tensors for n in self.prelude[tensor]))
            self.prelude.update(dict.fromkeys(node.outputs, (*chain, node)))
            return
        draft = self.drafts[owner]
        draft.folded.append(node)
        draft.output = node.outputs[0]
        self.owner.update(dict.fromkeys(node.outputs, owner))

    def finish(self, name: str, source: str) -> LayerGraph:
        """Freeze the drafts into layers (folded nodes after the main one, in data-flow order)."""
        if not self.drafts:
            ops = sorted({node.op for node in self.view.nodes})
            found = f"only {', '.join(ops)}" if ops else "no nodes"
            raise MilpMapError(
                f"{self.view.label}: the model has no layer ({found}); milp_map needs at least "
                f"one {', '.join(OP_KINDS)} node"
            )
        layers = []
        for draft in sorted(self.drafts.values(), key=lambda d: d.node.index):
            folded = sorted(draft.folded, key=lambda n: n.position)
            layers.append(
                replace(
                    draft.layer,
                    output_elems=self.view.elems(draft.output, draft.node),
                    onnx_nodes=(draft.node.name, *(n.name for n in folded)),
                )
            )
        return assemble(name, source, layers, self.edges)
