"""The reader's first stage: an .onnx file (or proto) -> a checked, normalised model with every
tensor's shape known, and the constants folded.

Normalising: nodes in dependency order, the batch pinned to 1 (milp_map maps one sample), then
onnxruntime's own constant folding (its offline graph optimiser at the basic level, with the
fusions that would change the exported layers switched off) turns shape arithmetic, masks and
computed weights into initializers. ONNX shape inference then gives every tensor's shape.
"""

from __future__ import annotations

import heapq
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from milp_map.errors import MilpMapError

SHAPE_OPS = frozenset({"Shape", "Size"})
_INLINE_ELEMS = 1024


# ---------------------------------------------------------------- reading and validating the file


@dataclass(frozen=True)
class Origin:
    """Where a model came from: graph name, how messages name it, where external weights live."""

    name: str
    label: str
    source: str
    base_dir: str


def read_model(
    source: str | os.PathLike[str] | onnx.ModelProto, name: str | None
) -> tuple[onnx.ModelProto, Origin]:
    """Load the model into a proto this module may modify (a copy if the caller passed one)."""
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
        graph_name = name or source.graph.name or "model"
        return model, Origin(graph_name, f"{graph_name} (in memory)", "<memory>", "")
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
    _load_external_data(model, path, label)
    return model, Origin(name or path.stem, label, label, str(path.parent))


def _load_external_data(model: onnx.ModelProto, path: Path, label: str) -> None:
    """Read weights kept beside the model (torch's default exporter writes MODEL.onnx.data)."""
    external = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if not external:
        return
    locations = {e.value for t in external for e in t.external_data if e.key == "location"}
    missing = sorted(loc for loc in locations if not (path.parent / loc).is_file())
    if missing:
        raise MilpMapError(
            f"{label}: its weights are in {', '.join(missing)}, which is not next to the model; "
            "keep the external data file(s) beside the .onnx file"
        )
    try:
        onnx.load_external_data_for_model(model, str(path.parent))
    except Exception as exc:
        raise MilpMapError(
            f"{label}: cannot read its external weights ({one_line(exc)}); re-export the model"
        ) from exc


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


def one_line(exc: BaseException) -> str:
    """The first non-empty line of an exception message, so user messages stay on one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


# ---------------------------------------------------------------- nodes, order and shapes


@dataclass(frozen=True, eq=False)
class Node:
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


def _name_nodes(graph: onnx.GraphProto) -> None:
    """Give every node its unique name (`node_names`) in the proto itself, so the names survive
    reordering and folding and the export finds the layers' nodes by them."""
    for proto, name in zip(graph.node, node_names(graph.node), strict=True):
        proto.name = name


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


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


def _check_input_dims(graph: onnx.GraphProto, label: str) -> None:
    """Reject a graph input with a fixed dimension below 1: every layer after it would have
    zero or negative sizes, and so zero or negative latencies."""
    initializers = {tensor.name for tensor in graph.initializer}
    for value in graph.input:
        if value.name in initializers or not value.type.HasField("tensor_type"):
            continue
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value < 1:
                raise MilpMapError(
                    f"{label}: input '{value.name}' has size {dim.dim_value} on axis {axis}; "
                    "every input dimension must be >= 1 (or symbolic): fix it and re-export"
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


def _batch_dims(graph: onnx.GraphProto) -> list[Any]:
    """Dim 0 of every graph input that has one to pin (a batch)."""
    initializers = {tensor.name for tensor in graph.initializer}
    found = []
    for value in graph.input:
        tensor_type = value.type.tensor_type
        if value.name in initializers or not value.type.HasField("tensor_type"):
            continue
        if not tensor_type.HasField("shape"):
            continue
        dims = tensor_type.shape.dim
        if len(dims) >= 2 or (len(dims) == 1 and not dims[0].HasField("dim_value")):
            found.append(dims[0])
    return found


def _batch_is_free(graph: onnx.GraphProto) -> bool:
    """Whether some input's batch is symbolic or not 1."""
    return any(not d.HasField("dim_value") or d.dim_value != 1 for d in _batch_dims(graph))


def _pin_batch_to_one(graph: onnx.GraphProto) -> None:
    """Set dim 0 of every graph input to 1 and drop stale shapes.

    milp_map maps one sample; a concrete batch also lets data propagation resolve Reshape targets
    such as (N, -1), which stay unknown with a symbolic N.
    """
    for dim in _batch_dims(graph):
        dim.Clear()
        dim.dim_value = 1
    del graph.value_info[:]
    for value in graph.output:
        if value.type.HasField("tensor_type"):
            value.type.tensor_type.ClearField("shape")


KEPT_STRUCTURE = (
    "ConvBNFusion",
    "ConvAddFusion",
    "ConvMulFusion",
    "MatMulAddFusion",
    "GemmTransposeFusion",
    "GemmSumFusion",
    "DivMulFusion",
    "NotWhereFusion",
    "FuseReluClip",
    "ClipQuantFusion",
    "ReluQuantFusion",
    "ConstantSharing",
    "CommonSubexpressionElimination",
    "QDQPropagationTransformer",
)
"""onnxruntime optimisers switched off when folding: each would merge or rewrite layers (a
BatchNormalization into its Conv's weights, MatMul + Add into Gemm, shared weights), so the
layers, their weights and their node names stay those of the exported model."""

MAX_FOLDED_BYTES = 2**31 - 2**26
"""onnxruntime takes an in-memory model up to protobuf's 2 GiB; larger models are not folded."""


def fold_constants(model: onnx.ModelProto, label: str) -> tuple[onnx.ModelProto, str]:
    """The model with every tensor that does not depend on a graph input computed ahead:
    onnxruntime's offline graph optimiser at the basic level (constant folding, no-op and
    shape-subgraph elimination), minus KEPT_STRUCTURE. (model, "") when folded; the model as
    it was and the reason when there is nothing to fold or onnxruntime cannot load it."""
    if not _has_constants(model.graph):
        return model, ""
    size = model.ByteSize()
    if size > MAX_FOLDED_BYTES:
        return model, f"not folded: {size / 2**30:.1f} GiB is beyond onnxruntime's in-memory limit"
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory(prefix="milp_map_fold_") as folder:
        path = os.path.join(folder, "folded.onnx")
        options.optimized_model_filepath = path
        config = "session.optimized_model_external_initializers_"
        options.add_session_config_entry(config + "file_name", "folded.onnx.data")
        options.add_session_config_entry(config + "min_size_in_bytes", "1024")
        try:
            ort.InferenceSession(
                model.SerializeToString(),
                options,
                providers=["CPUExecutionProvider"],
                disabled_optimizers=list(KEPT_STRUCTURE),
            )
            folded = onnx.load(path)
        except Exception as exc:
            return model, f"onnxruntime could not fold its constants ({one_line(exc)})"
    _name_nodes(folded.graph)
    return folded, ""


def _has_constants(graph: onnx.GraphProto) -> bool:
    """Whether a node computes from constants or shapes alone (else folding changes nothing)."""
    initializers = {t.name for t in graph.initializer}
    return any(
        node.op_type in SHAPE_OPS or all(t in initializers for t in node.input if t)
        for node in graph.node
    )


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
        complaint = one_line(exc)
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True), complaint
    except Exception as exc:
        raise MilpMapError(
            f"{label}: ONNX shape inference failed ({one_line(exc)}); "
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


def _static_tensors(nodes: Sequence[Node], initializers: set[str]) -> frozenset[str]:
    """Tensors known without running the network: initializers and what is computed from them
    or from shapes alone (Constant, Shape -> Gather -> Concat chains feeding Reshape, ...)."""
    static = set(initializers)
    for node in nodes:
        if node.op in SHAPE_OPS or all(tensor in static for tensor in node.inputs):
            static.update(node.outputs)
    return frozenset(static)


@dataclass
class ModelView:
    """The model as the layer pass sees it: sorted nodes, inferred shapes, constant tensors."""

    label: str
    model: onnx.ModelProto
    nodes: list[Node]
    shapes: dict[str, tuple[int | None, ...]]
    static: frozenset[str]
    initializers: dict[str, onnx.TensorProto]
    producer: dict[str, Node]
    graph_inputs: tuple[str, ...]
    base_dir: str
    inference_complaint: str
    export_model: onnx.ModelProto = field(repr=False, default_factory=onnx.ModelProto)
    """The normalised model at the batch size it was exported with: what `export` rewrites
    (node names match the layers')."""
    fold_note: str = ""
    """Why onnxruntime did not fold the constants, if it did not."""

    @classmethod
    def build(cls, model: onnx.ModelProto, label: str, base_dir: str) -> ModelView:
        """Check and normalise `model` (modified in place), fold its constants, infer shapes."""
        graph = model.graph
        if graph.sparse_initializer:
            raise MilpMapError(
                f"{label}: sparse initializer '{graph.sparse_initializer[0].values.name}' is not "
                "supported; save the model with dense initializers"
            )
        _check_one_line_names(graph, label)
        _check_input_dims(graph, label)
        _name_nodes(graph)
        order = _topological_order(graph, [n.name for n in graph.node], label)
        if order != sorted(order):
            _reorder_nodes(graph, order)
        if _batch_is_free(graph):  # fold once at batch 1 for the shapes, once for the export
            export_model, _ = fold_constants(_copy(model), label)
            _pin_batch_to_one(graph)
            work, note = fold_constants(model, label)
        else:
            export_model, note = fold_constants(model, label)
            work = _copy(export_model)
        _pin_batch_to_one(work.graph)
        initializers = _detach_large_initializers(work.graph)
        inferred, complaint = _infer_shapes(work, label)
        nodes = [Node(k, k, proto.name, proto) for k, proto in enumerate(inferred.graph.node)]
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
            export_model=export_model,
            fold_note=note,
        )

    def activation_inputs(self, node: Node) -> list[str]:
        """The node's inputs that carry data computed at run time, in operand order."""
        return [tensor for tensor in node.inputs if tensor not in self.static]

    def dims(self, tensor: str, node: Node) -> tuple[int, ...]:
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
        known = tuple(int(dim) for dim in dims)
        if min(known, default=0) < 0:
            raise MilpMapError(
                f"{self.label}: tensor '{tensor}' used by {node.describe()} has the negative "
                f"shape {list(known)}; check the model's input size, kernels and strides"
            )
        return known

    def elems(self, tensor: str, node: Node) -> int:
        """Elements of a tensor `node` uses, batch 1."""
        return math.prod(self.dims(tensor, node))

    def input_elems(self, node: Node) -> int:
        """Elements of the distinct activation inputs of `node`."""
        return sum(
            self.elems(tensor, node) for tensor in dict.fromkeys(self.activation_inputs(node))
        )

    def weight_count(self, tensor: str, node: Node) -> int:
        """Parameters in a constant operand; 0 if the operand is itself an activation."""
        return math.prod(self.dims(tensor, node)) if tensor in self.static else 0

    def constant_value(self, tensor: str, node: Node) -> np.ndarray | None:
        """The value of a constant operand, or None if it is an activation or cannot be computed."""
        if tensor in self.initializers:
            return self._initializer_array(tensor, node)
        if tensor in self.static:
            return self._evaluate_constant(tensor, node)
        return None

    def _initializer_array(self, tensor: str, node: Node) -> np.ndarray:
        try:
            return numpy_helper.to_array(self.initializers[tensor], base_dir=self.base_dir)
        except Exception as exc:
            raise MilpMapError(
                f"{self.label}: cannot read initializer '{tensor}' of {node.describe()} "
                f"({one_line(exc)}); keep external weight files next to the model"
            ) from exc

    def _evaluate_constant(self, tensor: str, node: Node) -> np.ndarray | None:
        """Compute a weight made by Constant/Transpose/DequantizeLinear/... nodes from initializers.

        Returns None for shape-derived tensors or anything the reference runtime cannot run:
        the weight array is optional, its shape (and so the weight count) is not.
        """
        from onnx.reference import ReferenceEvaluator

        needed: dict[str, Node] = {}
        used_initializers: dict[str, np.ndarray] = {}
        pending = [tensor]
        while pending:
            current = pending.pop()
            if current in self.initializers:
                used_initializers[current] = self._initializer_array(current, node)
                continue
            producer = self.producer.get(current)
            if producer is None or producer.op in SHAPE_OPS:
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

    def fail(self, node: Node, problem: str) -> MilpMapError:
        """A one-line error naming the file and the node, `problem` completing the sentence."""
        return MilpMapError(f"{self.label}: {node.describe()} {problem}")


# ---------------------------------------------------------------- classifying nodes


# ---------------------------------------------------------------- layer fields per op


# ---------------------------------------------------------------- folding and building the DAG
