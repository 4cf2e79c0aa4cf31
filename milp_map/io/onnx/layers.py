"""A layer's fields from its main ONNX node: channels, sizes, MACs, element counts, weights.

Channels and sizes read N, C, spatial... for 4-D and 5-D tensors (convolution layouts) and
(rows..., features) otherwise (gemm, matmul and the layers of a transformer). MACs count
multiply-accumulates of conv, gemm and matmul layers; for element-wise layers, normalisation
and reductions they count arithmetic operations (one per element; five per element for a
normalisation: mean, variance, subtract, scale, shift); data movement counts none.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from milp_map.core.graph import Layer
from milp_map.io.onnx.model import ModelView, Node

NORM_OPS_PER_ELEMENT = 5
"""Arithmetic per element of a normalisation layer: mean, variance, subtract, scale, shift."""


def make_layer(kind: str, node: Node, view: ModelView) -> Layer:
    """The layer of kind `kind` whose main node is `node` (InvalidLayer if its fields clash)."""
    maker = _MAKERS.get(node.op) or _MAKERS.get(kind) or _elementwise_layer
    return maker(kind, node, view)


# ---------------------------------------------------------------- sizes


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


def _layout(dims: Sequence[int]) -> tuple[int, tuple[int, int]]:
    """(channels, (H, W)): N, C, H, W for 4-D and 5-D tensors, else (N, rows..., features)."""
    if len(dims) >= 4 or len(dims) <= 2:
        return _channels_and_hw(dims)
    return int(dims[-1]), _spatial(dims[1:-1])


def _read_only(array: np.ndarray | None) -> np.ndarray | None:
    """The array made contiguous and read-only: layers are immutable (arrays here are fresh)."""
    if array is None:
        return None
    frozen = np.ascontiguousarray(array)
    frozen.setflags(write=False)
    return frozen


def _flat_layer(node: Node, **fields: object) -> Layer:
    """A layer without a kernel window (gemm, matmul, embedding, element-wise): 1x1 kernel,
    stride 1, one group, named after its main node."""
    return Layer(
        name=node.name,
        kernel=(1, 1),
        stride=(1, 1),
        groups=1,
        onnx_nodes=(node.name,),
        **fields,  # type: ignore[arg-type]
    )


def _outputs_elems(node: Node, view: ModelView) -> int:
    """Elements the node writes (every output: a Split writes several)."""
    return sum(view.elems(tensor, node) for tensor in node.outputs)


# ---------------------------------------------------------------- MAC layers


def _conv_layer(kind: str, node: Node, view: ModelView) -> Layer:
    """Conv -> conv (groups 1 or grouped) or dwconv (groups == C_in, any channel multiplier)."""
    x, w = node.inputs[0], node.inputs[1]
    x_dims, w_dims = view.dims(x, node), view.dims(w, node)
    y_dims = view.dims(node.outputs[0], node)
    n_spatial = _check_spatial(node, view, len(w_dims) - 2)
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


def _conv_transpose_layer(kind: str, node: Node, view: ModelView) -> Layer:
    """ConvTranspose; its weight (C_in, C_out/groups, k...) is stored output channels first."""
    x, w = node.inputs[0], node.inputs[1]
    x_dims, w_dims = view.dims(x, node), view.dims(w, node)
    y_dims = view.dims(node.outputs[0], node)
    n_spatial = _check_spatial(node, view, len(w_dims) - 2)
    groups = int(node.attr("group", 1))
    in_channels, in_hw = _channels_and_hw(x_dims)
    out_channels, out_hw = _channels_and_hw(y_dims)
    kernel = _pair(w_dims[2:])
    per_group = w_dims[1]
    weight = view.constant_value(w, node)
    if weight is not None:
        grouped = weight.reshape(groups, in_channels // groups, per_group, *kernel)
        weight = grouped.swapaxes(1, 2).reshape(out_channels, in_channels // groups, *kernel)
    return Layer(
        name=node.name,
        op="convtranspose",
        in_channels=in_channels,
        out_channels=out_channels,
        kernel=kernel,
        stride=_pair(node.attr("strides", [1] * n_spatial)),
        groups=groups,
        in_hw=in_hw,
        out_hw=out_hw,
        macs=math.prod(x_dims) * per_group * kernel[0] * kernel[1],
        weight_count=view.weight_count(w, node),
        input_elems=view.input_elems(node),
        output_elems=math.prod(y_dims),
        weight=_read_only(weight),
        onnx_nodes=(node.name,),
    )


def _check_spatial(node: Node, view: ModelView, n_spatial: int) -> int:
    if n_spatial not in (1, 2):
        raise view.fail(
            node,
            f"is a {n_spatial}-D convolution; milp_map maps 1-D and 2-D convolutions only; "
            "export the model without it or open an issue",
        )
    return n_spatial


def _gemm_layer(kind: str, node: Node, view: ModelView) -> Layer:
    """Gemm Y = A·B' (+C); K_in and N_out come from B, the weight is stored (N_out, K_in)."""
    b = node.inputs[1]
    b_dims, y_dims = view.dims(b, node), view.dims(node.outputs[0], node)
    transposed = bool(node.attr("transB", 0))
    k_in, n_out = (b_dims[1], b_dims[0]) if transposed else (b_dims[0], b_dims[1])
    weight = view.constant_value(b, node)
    rows_hw = _spatial(y_dims[:-1])
    return _flat_layer(
        node,
        op="gemm",
        in_channels=k_in,
        out_channels=n_out,
        in_hw=rows_hw,
        out_hw=rows_hw,
        macs=math.prod(y_dims) * k_in,
        weight_count=view.weight_count(b, node),
        input_elems=view.input_elems(node),
        output_elems=math.prod(y_dims),
        weight=_read_only(weight if weight is None or transposed else weight.T),
    )


def _matmul_layer(kind: str, node: Node, view: ModelView) -> Layer:
    """MatMul: "gemm" with a constant operand (weight stored (N_out, K_in)), else "matmul"."""
    if node.op == "Einsum":
        return _einsum_layer(node, view)
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
    return _flat_layer(
        node,
        op=op,
        in_channels=k_in,
        out_channels=n_out,
        in_hw=in_hw,
        out_hw=out_hw,
        macs=math.prod(y_dims) * k_in,
        weight_count=0 if weight_tensor is None else view.weight_count(weight_tensor, node),
        input_elems=view.input_elems(node),
        output_elems=math.prod(y_dims),
        weight=_read_only(weight),
    )


def _einsum_layer(node: Node, view: ModelView) -> Layer:
    """Einsum as a matmul: MACs are the product of every index's size (each summed index is
    one multiply-accumulate per output element); K is the product of the summed ones."""
    equation = str(node.attr("equation", b"")).replace(" ", "")
    equation = equation.removeprefix("b'").removesuffix("'")
    operands, _, result = equation.partition("->")
    sizes: dict[str, int] = {}
    for term, tensor in zip(operands.split(","), node.inputs, strict=False):
        dims = view.dims(tensor, node)
        letters = _expand_ellipsis(term, len(dims))
        for letter, size in zip(letters, dims, strict=False):
            sizes[letter] = max(sizes.get(letter, 1), int(size))
    y_dims = view.dims(node.outputs[0], node)
    kept = set(_expand_ellipsis(result, len(y_dims))) if result else set()
    summed = math.prod(size for letter, size in sizes.items() if letter not in kept)
    out_channels, out_hw = _layout(y_dims)
    first = view.activation_inputs(node)[0]
    _, in_hw = _layout(view.dims(first, node))
    return _flat_layer(
        node,
        op="matmul",
        in_channels=max(1, summed),
        out_channels=out_channels,
        in_hw=in_hw,
        out_hw=out_hw,
        macs=math.prod(sizes.values()),
        weight_count=sum(view.weight_count(t, node) for t in node.inputs if t in view.static),
        input_elems=view.input_elems(node),
        output_elems=math.prod(y_dims),
    )


def _expand_ellipsis(term: str, rank: int) -> list[str]:
    """Subscript letters of one Einsum operand, "..." spelled out as numbered dims."""
    if "..." not in term:
        return list(term)
    head, tail = term.split("...")
    hidden = rank - len(head) - len(tail)
    return [*head, *(f"...{k}" for k in range(hidden)), *tail]


# ---------------------------------------------------------------- other layers


def _embedding_layer(kind: str, node: Node, view: ModelView) -> Layer:
    """Gather from a constant (V, D) table by run-time indices: V in, D out; the table is the
    weight, stored output channels first (D, V)."""
    table, indices = node.inputs[0], node.inputs[1]
    t_dims = view.dims(table, node)
    i_dims = view.dims(indices, node)
    y_dims = view.dims(node.outputs[0], node)
    value = view.constant_value(table, node)
    rows = _spatial(i_dims[1:]) if len(i_dims) > 1 else (1, 1)
    n_out = int(math.prod(t_dims[1:])) if len(t_dims) > 1 else 1
    weight = None if value is None else value.reshape(t_dims[0], n_out).T
    return _flat_layer(
        node,
        op="embedding",
        in_channels=int(t_dims[0]),
        out_channels=n_out,
        in_hw=rows,
        out_hw=rows,
        macs=0,
        weight_count=view.weight_count(table, node),
        input_elems=view.input_elems(node),
        output_elems=math.prod(y_dims),
        weight=_read_only(weight),
    )


def _elementwise_layer(kind: str, node: Node, view: ModelView) -> Layer:
    """add, concat, pool, softmax, resize (no MACs, as in ODiMO's model) and the element-wise,
    normalisation, reduction and slicing layers (arithmetic counted per element)."""
    first = view.activation_inputs(node)[0]
    x_dims = view.dims(first, node)
    y_dims = view.dims(node.outputs[0], node)
    in_channels, in_hw = _layout(x_dims)
    out_channels, out_hw = _layout(y_dims)
    output_elems = _outputs_elems(node, view)
    operations = {
        "eltwise": output_elems,
        "norm": NORM_OPS_PER_ELEMENT * output_elems,
        "reduce": math.prod(x_dims),
    }
    weights = sum(view.weight_count(t, node) for t in node.inputs if t in view.static)
    return _flat_layer(
        node,
        op=kind,
        in_channels=in_channels,
        out_channels=out_channels,
        in_hw=in_hw,
        out_hw=out_hw,
        macs=operations.get(kind, 0),
        weight_count=weights if kind == "norm" else 0,
        input_elems=view.input_elems(node),
        output_elems=output_elems,
    )


_MAKERS: dict[str, Callable[[str, Node, ModelView], Layer]] = {
    "Conv": _conv_layer,
    "ConvTranspose": _conv_transpose_layer,
    "Gemm": _gemm_layer,
    "MatMul": _matmul_layer,
    "Einsum": _matmul_layer,
    "embedding": _embedding_layer,
}
"""Makers by ONNX op, then by layer kind; every other layer is `_elementwise_layer`'s."""
