"""Which ONNX ops become layers, which fold into a neighbouring layer, which are constants.

A layer is what an accelerator runs as one job. Cheap element-wise and reshaping ops with one
run-time input fold into the layer that produces it (BatchNormalization, activations, Reshape,
a bias Add, ...); element-wise ops over several run-time inputs fold when those all come from
one layer (x * sigmoid(x)) and are layers of their own otherwise (a residual Add, an SE gate).
"""

from __future__ import annotations

from milp_map.core.graph import OP_KINDS
from milp_map.io.onnx.model import SHAPE_OPS, ModelView, Node

STATIC = "static"
"""No run-time input: a constant, or shape arithmetic (folded ahead by onnxruntime)."""
FOLD = "fold"
"""Folded into the layer that produces its one run-time input."""
ELEMENTWISE = "elementwise"
"""Folded when its run-time inputs all come from one layer, else an `add` / `eltwise` layer."""

FOLDED_OPS: frozenset[str] = frozenset(
    {
        # normalisation folded into the producer, as frameworks fuse it
        "BatchNormalization",
        "LRN",
        # activations and other unary element-wise ops
        "Relu",
        "LeakyRelu",
        "PRelu",
        "Clip",
        "Sigmoid",
        "HardSigmoid",
        "HardSwish",
        "Tanh",
        "Gelu",
        "Erf",
        "Elu",
        "Selu",
        "Celu",
        "Mish",
        "Softplus",
        "Softsign",
        "ThresholdedRelu",
        "Shrink",
        "Exp",
        "Log",
        "Sqrt",
        "Reciprocal",
        "Neg",
        "Abs",
        "Sign",
        "Floor",
        "Ceil",
        "Round",
        "Sin",
        "Cos",
        "Not",
        "IsNaN",
        "IsInf",
        "Cast",
        "CastLike",
        "QuantizeLinear",
        "DequantizeLinear",
        "Identity",
        "Dropout",
        # views and layout changes
        "Flatten",
        "Reshape",
        "Squeeze",
        "Unsqueeze",
        "Transpose",
        "Expand",
        "Tile",
        "Pad",
        "DepthToSpace",
        "SpaceToDepth",
        "Trilu",
    }
)
"""Ops with one run-time input, folded into the layer that produces it (Pad into the layer
before it: its extra border is read by the next layer; LRN as AlexNet/GoogLeNet-v1 carry it)."""

ELEMENTWISE_OPS: frozenset[str] = frozenset(
    {
        "Add",
        "Sum",
        "Sub",
        "Mul",
        "Div",
        "Pow",
        "Max",
        "Min",
        "Mean",
        "Mod",
        "Where",
        "And",
        "Or",
        "Xor",
        "Equal",
        "Greater",
        "GreaterOrEqual",
        "Less",
        "LessOrEqual",
        "BitShift",
    }
)
"""Element-wise ops over several operands: folded with one run-time operand (a bias, a scale,
a mask) or with all of them from one layer; a layer when they come from different layers."""

LAYER_OPS: dict[str, str] = {
    "Conv": "conv",
    "ConvTranspose": "convtranspose",
    "Gemm": "gemm",
    "MatMul": "matmul",
    "Einsum": "matmul",
    "Concat": "concat",
    "MaxPool": "pool",
    "AveragePool": "pool",
    "LpPool": "pool",
    "GlobalAveragePool": "pool",
    "GlobalMaxPool": "pool",
    "GlobalLpPool": "pool",
    "Softmax": "softmax",
    "LogSoftmax": "softmax",
    "Hardmax": "softmax",
    "Resize": "resize",
    "Upsample": "resize",
    "LayerNormalization": "norm",
    "GroupNormalization": "norm",
    "InstanceNormalization": "norm",
    "LpNormalization": "norm",
    "MeanVarianceNormalization": "norm",
    "RMSNormalization": "norm",
    "ReduceMean": "reduce",
    "ReduceSum": "reduce",
    "ReduceMax": "reduce",
    "ReduceMin": "reduce",
    "ReduceProd": "reduce",
    "ReduceL1": "reduce",
    "ReduceL2": "reduce",
    "ReduceLogSum": "reduce",
    "ReduceLogSumExp": "reduce",
    "ReduceSumSquare": "reduce",
    "ArgMax": "reduce",
    "ArgMin": "reduce",
    "CumSum": "reduce",
    "Slice": "slice",
    "Split": "slice",
    "Gather": "slice",
    "GatherElements": "slice",
    "GatherND": "slice",
    "ScatterND": "slice",
    "ScatterElements": "slice",
    "TopK": "slice",
}
"""Ops that are layers: MAC layers, data movement, normalisation, reductions, slicing. A MatMul
or Gather reads its weight from a constant operand: gemm (weight MatMul) and embedding
(a Gather from a constant table) then; a reduction over the spatial axes is a pool."""


def classify(node: Node, view: ModelView) -> str:
    """STATIC, FOLD, ELEMENTWISE or a layer kind of core.graph.OP_KINDS; unsupported ops
    raise here, naming the file, the node and the op."""
    op = node.op
    activations = view.activation_inputs(node)
    if op in SHAPE_OPS or not activations:
        return STATIC
    if op in FOLDED_OPS:
        return FOLD
    if op in ELEMENTWISE_OPS:
        return ELEMENTWISE
    kind = LAYER_OPS.get(op)
    if kind is None:
        raise view.fail(
            node,
            f"is not supported; milp_map maps {', '.join(OP_KINDS)} layers and folds "
            "BatchNormalization, activations and other element-wise and reshaping ops into "
            "them; export the model without it or open an issue",
        )
    if op == "MatMul" and len(activations) < len(node.inputs):
        return "gemm"
    if op == "Gather" and node.inputs[0] in view.static and node.attr("axis", 0) == 0:
        return "embedding"
    if kind == "reduce" and _over_spatial_axes(node, view):
        return "pool"
    return kind


def _over_spatial_axes(node: Node, view: ModelView) -> bool:
    """A ReduceMean / ReduceMax over every spatial axis of an N, C, H[, W] tensor, keeping C:
    global pooling, as torch's default exporter writes `adaptive_avg_pool2d(x, 1)`."""
    if node.op not in ("ReduceMean", "ReduceMax"):
        return False
    rank = len(view.shapes.get(node.inputs[0]) or ())
    if rank < 3:
        return False
    axes = node.attr("axes", None)
    if axes is None and len(node.inputs) > 1:
        value = view.constant_value(node.inputs[1], node)
        axes = None if value is None else [int(a) for a in value.reshape(-1)]
    if not axes:
        return False
    return sorted(a % rank for a in axes) == list(range(2, rank))
