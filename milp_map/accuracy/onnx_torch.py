"""ONNX -> torch: run a model's nodes with torch ops, so gradients and Hessians flow through it.

Why: HAWQ-style sensitivities need second derivatives of the loss with respect to each layer's
weights; onnxruntime gives none. This small interpreter covers the ops the zoo and the shipped
models use (Conv, Gemm, MatMul, BatchNormalization, activations, Add/Sub/Mul/Div, pools,
Concat, Flatten/Reshape, Softmax) and those a mapped export adds (QuantizeLinear and
DequantizeLinear with straight-through rounding for fine-tuning, Cast, Gather), and names nodes
as milp_map.io.onnx does, so layer names match.
Torch is the optional extra `milp_map[torch]`; importing this module without it raises
MilpMapError.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper

from milp_map.errors import MilpMapError
from milp_map.io.onnx import node_names

try:
    import torch
    from torch.nn import functional as F
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise MilpMapError(
        "torch is not installed; sensitivities need it: pip install 'milp_map[torch]'"
    ) from exc

Tensor = torch.Tensor
Attrs = dict[str, object]
OpFn = Callable[[list[Tensor], Attrs], Tensor]


# ---------------------------------------------------------------------------- ops


def _pads(attrs: Attrs, n_spatial: int = 2) -> tuple[list[int], bool]:
    """ONNX pads (begins..., ends...) as F.pad's (last dim first) list, and whether symmetric."""
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise ValueError("auto_pad is not supported; export with explicit pads")
    pads = list(attrs.get("pads", [0] * 2 * n_spatial))
    begins, ends = pads[:n_spatial], pads[n_spatial:]
    torch_pads = [p for k in reversed(range(n_spatial)) for p in (begins[k], ends[k])]
    return torch_pads, begins == ends


def _conv(x: list[Tensor], a: Attrs) -> Tensor:
    pads, symmetric = _pads(a)
    inp = x[0] if symmetric else F.pad(x[0], pads)
    padding = pads[::2][::-1] if symmetric else 0
    bias = x[2] if len(x) > 2 else None
    stride, dilation = a.get("strides", [1, 1]), a.get("dilations", [1, 1])
    return F.conv2d(inp, x[1], bias, stride, padding, dilation, int(a.get("group", 1)))


def _gemm(x: list[Tensor], a: Attrs) -> Tensor:
    left = x[0].t() if a.get("transA", 0) else x[0]
    right = x[1].t() if a.get("transB", 0) else x[1]
    out = float(a.get("alpha", 1.0)) * (left @ right)
    return out + float(a.get("beta", 1.0)) * x[2] if len(x) > 2 else out


def _pool(kind: str) -> OpFn:
    def run(x: list[Tensor], a: Attrs) -> Tensor:
        pads, symmetric = _pads(a)
        kernel, stride = a["kernel_shape"], a.get("strides", [1, 1])
        ceil = bool(a.get("ceil_mode", 0))
        if kind == "max":
            inp = x[0] if symmetric else F.pad(x[0], pads, value=-math.inf)
            padding = pads[::2][::-1] if symmetric else 0
            return F.max_pool2d(inp, kernel, stride, padding, ceil_mode=ceil)
        if not symmetric:
            raise ValueError("asymmetric AveragePool pads are not supported")
        include = bool(a.get("count_include_pad", 0))
        return F.avg_pool2d(x[0], kernel, stride, pads[::2][::-1], ceil, include)

    return run


def _reshape(x: list[Tensor], a: Attrs) -> Tensor:
    shape = [int(s) for s in x[1].tolist()]
    shape = [
        x[0].shape[k] if s == 0 and not a.get("allowzero", 0) else s for k, s in enumerate(shape)
    ]
    return x[0].reshape(shape)


def _clip(x: list[Tensor], a: Attrs) -> Tensor:
    low = x[1] if len(x) > 1 and x[1] is not None else a.get("min")
    high = x[2] if len(x) > 2 and x[2] is not None else a.get("max")
    return torch.clamp(x[0], low, high)


def _batch_norm(x: list[Tensor], a: Attrs) -> Tensor:
    eps = float(a.get("epsilon", 1e-5))
    return F.batch_norm(x[0], x[3], x[4], x[1], x[2], training=False, eps=eps)


def _round_ste(x: Tensor) -> Tensor:
    """Round half to even (as onnxruntime does) with a straight-through gradient."""
    return x + (torch.round(x) - x).detach()


def _quantize_linear(x: list[Tensor], a: Attrs) -> Tensor:
    """QuantizeLinear (per tensor) as float levels: round(x / scale) + zero, saturated to the
    zero point's integer type; the rounding passes gradients straight through (QAT)."""
    zero = x[2] if len(x) > 2 and x[2] is not None else torch.tensor(0, dtype=torch.uint8)
    info = torch.iinfo(zero.dtype)
    levels = _round_ste(x[0] / x[1]) + zero.to(x[0].dtype)
    return torch.clamp(levels, float(info.min), float(info.max))


def _dequantize_linear(x: list[Tensor], a: Attrs) -> Tensor:
    zero = x[2].to(x[0].dtype) if len(x) > 2 and x[2] is not None else 0.0
    return (x[0] - zero) * x[1]


FLOAT_TYPES = {
    onnx.TensorProto.FLOAT: torch.float32,
    onnx.TensorProto.FLOAT16: torch.float16,
    onnx.TensorProto.BFLOAT16: torch.bfloat16,
    onnx.TensorProto.DOUBLE: torch.float64,
}
"""ONNX element types a Cast may target here (reduced-float round trips of the export)."""


def _cast(x: list[Tensor], a: Attrs) -> Tensor:
    target = int(a["to"])  # type: ignore[call-overload]
    if target not in FLOAT_TYPES:
        raise ValueError(f"Cast to ONNX type {target} is not supported (float types only)")
    return x[0].to(FLOAT_TYPES[target])


def _gather(x: list[Tensor], a: Attrs) -> Tensor:
    data, indices = x[0], x[1].long()
    axis = int(a.get("axis", 0)) % data.dim()  # type: ignore[call-overload]
    flat = torch.index_select(data, axis, indices.reshape(-1) % data.shape[axis])
    return flat.reshape(*data.shape[:axis], *indices.shape, *data.shape[axis + 1 :])


OPS: dict[str, OpFn] = {
    "Conv": _conv,
    "Gemm": _gemm,
    "MatMul": lambda x, a: torch.matmul(x[0], x[1]),
    "BatchNormalization": _batch_norm,
    "Relu": lambda x, a: F.relu(x[0]),
    "LeakyRelu": lambda x, a: F.leaky_relu(x[0], float(a.get("alpha", 0.01))),
    "Sigmoid": lambda x, a: torch.sigmoid(x[0]),
    "Tanh": lambda x, a: torch.tanh(x[0]),
    "Clip": _clip,
    "Add": lambda x, a: x[0] + x[1],
    "Sub": lambda x, a: x[0] - x[1],
    "Mul": lambda x, a: x[0] * x[1],
    "Div": lambda x, a: x[0] / x[1],
    "Sum": lambda x, a: torch.stack(torch.broadcast_tensors(*x)).sum(0),
    "MaxPool": _pool("max"),
    "AveragePool": _pool("avg"),
    "GlobalAveragePool": lambda x, a: x[0].mean(dim=(2, 3), keepdim=True),
    "GlobalMaxPool": lambda x, a: x[0].amax(dim=(2, 3), keepdim=True),
    "Concat": lambda x, a: torch.cat(x, dim=int(a["axis"])),
    "Flatten": lambda x, a: x[0].reshape(math.prod(x[0].shape[: int(a.get("axis", 1))]), -1),
    "Reshape": _reshape,
    "Softmax": lambda x, a: torch.softmax(x[0], dim=int(a.get("axis", -1))),
    "LogSoftmax": lambda x, a: torch.log_softmax(x[0], dim=int(a.get("axis", -1))),
    "QuantizeLinear": _quantize_linear,
    "DequantizeLinear": _dequantize_linear,
    "Cast": _cast,
    "Gather": _gather,
    "Identity": lambda x, a: x[0],
    "Dropout": lambda x, a: x[0],
}


# ---------------------------------------------------------------------------- the module


class OnnxModule(torch.nn.Module):
    """An ONNX graph evaluated node by node with torch ops, in float32.

    Initializers are plain tensors in `constants` (not parameters): pass replacements to
    `forward(x, weights={name: tensor})` to differentiate with respect to any of them.
    `logits=True` skips a Softmax / LogSoftmax that produces a graph output, so a loss can be
    taken on its (numerically safer) input.
    """

    def __init__(self, model: onnx.ModelProto, label: str = "model", logits: bool = False):
        super().__init__()
        graph = model.graph
        self.label = label
        self.constants: dict[str, Tensor] = {
            t.name: torch.from_numpy(np.array(numpy_helper.to_array(t), copy=True))
            for t in graph.initializer
        }
        self.input_names = [v.name for v in graph.input if v.name not in self.constants]
        self.output_names = [v.name for v in graph.output]
        self.names = node_names(graph.node)
        self.nodes = list(graph.node)
        for name, node in zip(self.names, self.nodes, strict=True):
            if node.domain not in ("", "ai.onnx") or (
                node.op_type not in OPS and node.op_type != "Constant"
            ):
                raise MilpMapError(
                    f"{label}: node '{name}' (op {node.op_type}) is not supported by the ONNX -> "
                    f"torch converter; supported: {', '.join(sorted(OPS))}"
                )
        self.attrs = [
            {a.name: helper.get_attribute_value(a) for a in n.attribute} for n in graph.node
        ]
        outputs = set(self.output_names)
        self.skipped = {
            n.output[0]: n.input[0]
            for n in self.nodes
            if logits and n.op_type in ("Softmax", "LogSoftmax") and n.output[0] in outputs
        }

    def node_by_name(self, name: str) -> onnx.NodeProto:
        """The node milp_map.io.onnx calls `name`."""
        try:
            return self.nodes[self.names.index(name)]
        except ValueError:
            raise MilpMapError(f"{self.label}: no node named '{name}'") from None

    def forward(
        self, *inputs: Tensor, weights: Mapping[str, Tensor] | None = None
    ) -> Tensor | tuple[Tensor, ...]:
        """Graph outputs for the given inputs (one per graph input, in order)."""
        if len(inputs) != len(self.input_names):
            raise MilpMapError(
                f"{self.label}: expects {len(self.input_names)} input(s), got {len(inputs)}"
            )
        env: dict[str, Tensor] = {**self.constants, **(weights or {})}
        env.update(zip(self.input_names, inputs, strict=True))
        for name, node, attrs in zip(self.names, self.nodes, self.attrs, strict=True):
            if node.output[0] in self.skipped:
                env[node.output[0]] = env[self.skipped[node.output[0]]]
                continue
            if node.op_type == "Constant":
                env[node.output[0]] = torch.from_numpy(numpy_helper.to_array(attrs["value"]))
                continue
            missing = [t for t in node.input if t and t not in env]
            if missing:
                raise MilpMapError(
                    f"{self.label}: node '{name}' reads '{missing[0]}' before it is computed; "
                    "the ONNX nodes must be topologically sorted"
                )
            args = [env[t] if t else None for t in node.input]
            try:
                env[node.output[0]] = OPS[node.op_type](args, attrs)  # type: ignore[arg-type]
            except (RuntimeError, ValueError, KeyError, IndexError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise MilpMapError(
                    f"{self.label}: node '{name}' (op {node.op_type}) failed in torch: {first}"
                ) from exc
        outputs = tuple(env[t] for t in self.output_names)
        return outputs[0] if len(outputs) == 1 else outputs
