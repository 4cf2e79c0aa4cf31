"""milp_map.io.onnx: ONNX -> layer DAG on tiny hand-built models.

Numbers that could hide a convention mistake (weight layout, element counts) are checked
against onnxruntime running the same model rather than against hard-coded values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from milp_map.core.graph import OP_KINDS, Layer, LayerGraph, graph_from_layers, layer_table
from milp_map.errors import MilpMapError
from milp_map.io.onnx import load_onnx

OPSET = 17


# ---------------------------------------------------------------- model building helpers


def make_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[onnx.ValueInfoProto],
    outputs: Sequence[str],
    initializers: Sequence[onnx.TensorProto] = (),
    name: str = "net",
) -> onnx.ModelProto:
    graph = helper.make_graph(
        list(nodes),
        name,
        list(inputs),
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None) for out in outputs],
        list(initializers),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)


def image(name: str, channels: int, height: int, width: int) -> onnx.ValueInfoProto:
    """A float NCHW graph input with a symbolic batch."""
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", channels, height, width])


def vector(name: str, features: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", features])


def weights(name: str, *shape: int, seed: int = 0) -> onnx.TensorProto:
    values = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return numpy_helper.from_array(values, name)


def ints(name: str, values: Sequence[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def conv(name: str, x: str, w: str, y: str, **attrs: object) -> onnx.NodeProto:
    return helper.make_node("Conv", [x, w], [y], name=name, **attrs)


def save(tmp_path: Path, model: onnx.ModelProto, filename: str = "net.onnx") -> Path:
    path = tmp_path / filename
    onnx.save(model, path)
    return path


def run_all_tensors(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every node output of `model` computed by onnxruntime."""
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    declared = {out.name for out in exposed.graph.output}
    for node in exposed.graph.node:
        for tensor in node.output:
            if tensor and tensor not in declared:
                exposed.graph.output.append(
                    helper.make_tensor_value_info(tensor, TensorProto.FLOAT, None)
                )
                declared.add(tensor)
    session = ort.InferenceSession(exposed.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [out.name for out in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def make_layer(name: str, in_channels: int = 4, out_channels: int = 4) -> Layer:
    return Layer(
        name=name,
        op="conv",
        in_channels=in_channels,
        out_channels=out_channels,
        kernel=(1, 1),
        stride=(1, 1),
        groups=1,
        in_hw=(2, 2),
        out_hw=(2, 2),
        macs=4 * in_channels * out_channels,
        weight_count=in_channels * out_channels,
        input_elems=4 * in_channels,
        output_elems=4 * out_channels,
    )


def small_cnn() -> onnx.ModelProto:
    """conv-bn-relu, residual add, concat of branches, pool, flatten, gemm, softmax."""
    nodes = [
        conv("stem", "x", "w_stem", "s", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node(
            "BatchNormalization", ["s", "bn_g", "bn_b", "bn_m", "bn_v"], ["s_bn"], name="stem_bn"
        ),
        helper.make_node("Relu", ["s_bn"], ["s_relu"], name="stem_relu"),
        conv("body", "s_relu", "w_body", "b", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["b", "s_relu"], ["r"], name="residual"),
        helper.make_node("Relu", ["r"], ["r_relu"], name="residual_relu"),
        conv("branch_a", "r_relu", "w_a", "a"),
        conv("branch_b", "r_relu", "w_b", "bb", pads=[1, 1, 1, 1], group=8),
        helper.make_node("Concat", ["a", "bb"], ["cat"], name="cat", axis=1),
        helper.make_node(
            "MaxPool", ["cat"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]
        ),
        helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w_fc", "b_fc"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["y"], name="softmax", axis=1),
    ]
    initializers = [
        weights("w_stem", 8, 3, 3, 3),
        *(weights(f"bn_{p}", 8, seed=k) for k, p in enumerate("gbm")),
        numpy_helper.from_array(np.ones(8, np.float32), "bn_v"),
        weights("w_body", 8, 8, 3, 3),
        weights("w_a", 4, 8, 1, 1),
        weights("w_b", 8, 1, 3, 3),
        weights("w_fc", 10, 12),
        weights("b_fc", 10),
    ]
    return make_model(nodes, [image("x", 3, 16, 16)], ["y"], initializers, name="small_cnn")


# ---------------------------------------------------------------- folding and layer fields


def test_conv_bn_relu_fold_into_one_conv_layer(tmp_path: Path) -> None:
    w = weights("w", 4, 3, 3, 3)
    nodes = [
        conv("conv", "x", "w", "c", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["bn"], name="bn"),
        helper.make_node("Relu", ["bn"], ["y"], name="relu"),
    ]
    bn_params = [weights(p, 4, seed=k) for k, p in enumerate("gbmv")]
    graph = load_onnx(
        save(tmp_path, make_model(nodes, [image("x", 3, 8, 8)], ["y"], [w, *bn_params]))
    )

    assert len(graph) == 1
    layer = graph.layer("conv")
    assert layer.op == "conv"
    assert layer.onnx_nodes == ("conv", "bn", "relu")
    assert (layer.in_channels, layer.out_channels, layer.groups) == (3, 4, 1)
    assert (layer.kernel, layer.stride) == ((3, 3), (2, 2))
    assert (layer.in_hw, layer.out_hw) == ((8, 8), (4, 4))
    assert layer.macs == 4 * 4 * 4 * 3 * 3 * 3
    assert layer.weight_count == 4 * 3 * 3 * 3
    assert (layer.input_elems, layer.output_elems) == (3 * 8 * 8, 4 * 4 * 4)
    np.testing.assert_array_equal(layer.weight, numpy_helper.to_array(w))
    assert not layer.weight.flags.writeable
    assert graph.name == "net" and graph.source == str(tmp_path / "net.onnx")


@pytest.mark.parametrize(
    ("c_in", "c_out", "group", "op"),
    [
        (8, 8, 8, "dwconv"),
        (4, 8, 4, "dwconv"),
        (8, 8, 2, "conv"),
        (1, 6, 1, "conv"),
    ],
)
def test_grouped_and_depthwise_conv(c_in: int, c_out: int, group: int, op: str) -> None:
    nodes = [conv("conv", "x", "w", "y", pads=[1, 1, 1, 1], group=group)]
    model = make_model(
        nodes, [image("x", c_in, 6, 6)], ["y"], [weights("w", c_out, c_in // group, 3, 3)]
    )
    layer = load_onnx(model).layer("conv")

    assert layer.op == op
    assert (layer.in_channels, layer.out_channels, layer.groups) == (c_in, c_out, group)
    assert layer.macs == 6 * 6 * c_out * (c_in // group) * 3 * 3
    assert layer.weight.shape == (c_out, c_in // group, 3, 3)


def test_conv1d_reads_as_one_row() -> None:
    nodes = [conv("conv", "x", "w", "y", strides=[2])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 20])
    layer = load_onnx(make_model(nodes, [x], ["y"], [weights("w", 6, 4, 5)])).layer("conv")

    assert (layer.kernel, layer.stride, layer.in_hw, layer.out_hw) == (
        (1, 5),
        (1, 2),
        (1, 20),
        (1, 8),
    )
    assert layer.weight.shape == (6, 4, 1, 5)
    assert layer.macs == 8 * 6 * 4 * 5


@pytest.mark.parametrize("form", ["Gemm transB=1", "Gemm transB=0", "MatMul"])
def test_fully_connected_weight_is_out_major(form: str) -> None:
    k_in, n_out = 6, 5
    if form == "Gemm transB=1":
        node = helper.make_node("Gemm", ["x", "w", "bias"], ["y"], name="fc", transB=1)
        w = weights("w", n_out, k_in)
    elif form == "Gemm transB=0":
        node = helper.make_node("Gemm", ["x", "w", "bias"], ["y"], name="fc")
        w = weights("w", k_in, n_out)
    else:
        node = helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")
        w = weights("w", k_in, n_out)
    bias = numpy_helper.from_array(np.zeros(n_out, np.float32), "bias")
    model = make_model([node], [vector("x", k_in)], ["y"], [w, bias])
    layer = load_onnx(model).layer("fc")

    assert layer.op == "gemm"
    assert layer.weight.shape == (n_out, k_in)
    assert (layer.in_channels, layer.out_channels) == (k_in, n_out)
    assert (layer.in_hw, layer.out_hw, layer.kernel) == ((1, 1), (1, 1), (1, 1))
    assert layer.macs == layer.weight_count == n_out * k_in
    x = np.random.default_rng(1).standard_normal((1, k_in)).astype(np.float32)
    expected = run_all_tensors(model, {"x": x})["y"]
    np.testing.assert_allclose(x @ layer.weight.T, expected, rtol=1e-5, atol=1e-6)


def test_matmul_of_two_activations_after_folded_transpose() -> None:
    tokens, hidden = 4, 6
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"], name="query"),
        helper.make_node("MatMul", ["x", "wk"], ["k"], name="key"),
        helper.make_node("Transpose", ["k"], ["kt"], name="key_t", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["y"], name="scores"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", tokens, hidden])
    model = make_model(nodes, [x], ["y"], [weights("wq", hidden, 3), weights("wk", hidden, 3)])
    graph = load_onnx(model)

    assert [layer.op for layer in graph.layers()] == ["gemm", "gemm", "matmul"]
    assert graph.layer("key").onnx_nodes == ("key", "key_t")
    assert graph.layer("query").in_hw == (1, tokens)
    scores = graph.layer("scores")
    assert graph.predecessors("scores") == ["query", "key"]
    assert (scores.in_channels, scores.out_channels, scores.weight_count) == (3, tokens, 0)
    assert scores.macs == tokens * tokens * 3
    assert scores.weight is None


def test_residual_add_has_two_incoming_edges() -> None:
    graph = load_onnx(small_cnn())
    add = graph.layer("residual")

    assert add.op == "add"
    assert add.onnx_nodes == ("residual", "residual_relu")
    assert graph.predecessors("residual") == ["stem", "body"]
    assert graph.layer("stem").onnx_nodes == ("stem", "stem_bn", "stem_relu")
    assert graph.dag.edges["stem", "residual"]["elems"] == 8 * 8 * 8
    assert add.input_elems == 2 * 8 * 8 * 8


def test_concat_of_branches() -> None:
    graph = load_onnx(small_cnn())
    cat = graph.layer("cat")

    assert cat.op == "concat"
    assert graph.predecessors("cat") == ["branch_a", "branch_b"]
    assert graph.layer("branch_b").op == "dwconv"
    assert (cat.in_channels, cat.out_channels) == (4, 12)
    assert graph.dag.edges["branch_a", "cat"]["elems"] == 4 * 8 * 8
    assert graph.dag.edges["branch_b", "cat"]["elems"] == 8 * 8 * 8
    assert cat.input_elems == cat.output_elems == 12 * 8 * 8


def test_layer_kinds_sizes_and_edges_of_a_small_cnn() -> None:
    graph = load_onnx(small_cnn())
    summary = [(layer.name, layer.op, layer.out_hw) for layer in graph.layers()]

    assert summary == [
        ("stem", "conv", (8, 8)),
        ("body", "conv", (8, 8)),
        ("residual", "add", (8, 8)),
        ("branch_a", "conv", (8, 8)),
        ("branch_b", "dwconv", (8, 8)),
        ("cat", "concat", (8, 8)),
        ("pool", "pool", (4, 4)),
        ("gap", "pool", (1, 1)),
        ("fc", "gemm", (1, 1)),
        ("softmax", "softmax", (1, 1)),
    ]
    assert graph.layer("gap").onnx_nodes == ("gap", "flatten")
    assert graph.layer("softmax").out_channels == 10
    assert graph.edges() == [
        ("stem", "body"),
        ("stem", "residual"),
        ("body", "residual"),
        ("residual", "branch_a"),
        ("residual", "branch_b"),
        ("branch_a", "cat"),
        ("branch_b", "cat"),
        ("cat", "pool"),
        ("pool", "gap"),
        ("gap", "fc"),
        ("fc", "softmax"),
    ]
    assert all(layer.op in OP_KINDS for layer in graph.layers())


def test_element_counts_match_onnxruntime() -> None:
    """Each layer's output and each edge carry as many elements as the tensor onnxruntime makes."""
    model = small_cnn()
    x = np.random.default_rng(2).standard_normal((1, 3, 16, 16)).astype(np.float32)
    tensors = run_all_tensors(model, {"x": x})
    output_of = {node.name: node.output[0] for node in model.graph.node}
    graph = load_onnx(model)

    for layer in graph.layers():
        assert layer.output_elems == tensors[output_of[layer.onnx_nodes[-1]]].size, layer.name
    for src, dst in graph.edges():
        assert graph.dag.edges[src, dst]["elems"] == graph.layer(src).output_elems
    for layer in graph.layers():
        if layer.op in ("conv", "dwconv"):
            per_output = layer.in_channels // layer.groups * layer.kernel[0] * layer.kernel[1]
            assert layer.macs == tensors[output_of[layer.name]].size * per_output


def test_pool_resize_softmax_layers() -> None:
    nodes = [
        helper.make_node(
            "AveragePool", ["x"], ["p"], name="avg", kernel_shape=[2, 2], strides=[2, 2]
        ),
        helper.make_node("Resize", ["p", "", "scales"], ["r"], name="up", mode="nearest"),
        helper.make_node("LogSoftmax", ["r"], ["y"], name="lsm", axis=1),
    ]
    scales = numpy_helper.from_array(np.array([1, 1, 4, 4], np.float32), "scales")
    graph = load_onnx(make_model(nodes, [image("x", 5, 8, 8)], ["y"], [scales]))

    assert [(layer.op, layer.in_hw, layer.out_hw) for layer in graph.layers()] == [
        ("pool", (8, 8), (4, 4)),
        ("resize", (4, 4), (16, 16)),
        ("softmax", (16, 16), (16, 16)),
    ]
    for layer in graph.layers():
        assert (layer.in_channels, layer.out_channels) == (5, 5)
        assert (layer.macs, layer.weight_count, layer.weight) == (0, 0, None)
        assert (layer.kernel, layer.stride, layer.groups) == ((1, 1), (1, 1), 1)


def _reshape_by_shape_chain() -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Reshape(c, concat(shape(c)[0], -1)): the PyTorch export of x.view(x.size(0), -1)."""
    nodes = [
        helper.make_node("Shape", ["c"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes"], ["batch_1d"], name="unsqueeze"),
        helper.make_node("Concat", ["batch_1d", "minus_one"], ["target"], name="target", axis=0),
        helper.make_node("Reshape", ["c", "target"], ["f"], name="reshape"),
    ]
    zero = numpy_helper.from_array(np.array(0, np.int64), "zero")
    return nodes, [zero, ints("axes", [0]), ints("minus_one", [-1])]


@pytest.mark.parametrize("flatten", ["Flatten", "Reshape constant", "Reshape shape chain"])
def test_flatten_and_reshape_fold_into_the_producer(flatten: str) -> None:
    extra: list[onnx.TensorProto] = []
    if flatten == "Flatten":
        folding = [helper.make_node("Flatten", ["c"], ["f"], name="reshape")]
    elif flatten == "Reshape constant":
        folding = [helper.make_node("Reshape", ["c", "target"], ["f"], name="reshape")]
        extra = [ints("target", [1, -1])]
    else:
        folding, extra = _reshape_by_shape_chain()
    nodes = [
        conv("conv", "x", "w", "c"),
        *folding,
        helper.make_node("Gemm", ["f", "w_fc"], ["y"], name="fc", transB=1),
    ]
    initializers = [weights("w", 4, 3, 3, 3), weights("w_fc", 7, 4 * 4 * 4), *extra]
    graph = load_onnx(make_model(nodes, [image("x", 3, 6, 6)], ["y"], initializers))

    assert [layer.name for layer in graph.layers()] == ["conv", "fc"]
    assert graph.layer("conv").onnx_nodes == ("conv", "reshape")
    assert graph.dag.edges["conv", "fc"]["elems"] == 4 * 4 * 4
    assert graph.layer("fc").in_channels == 4 * 4 * 4


def test_swish_gating_folds_into_its_layer() -> None:
    nodes = [
        conv("conv", "x", "w", "c"),
        helper.make_node("Sigmoid", ["c"], ["s"], name="sigmoid"),
        helper.make_node("Mul", ["c", "s"], ["m"], name="swish"),
        helper.make_node("Mul", ["m", "scale"], ["y"], name="scale"),
    ]
    scale = numpy_helper.from_array(np.float32(0.5), "scale")
    graph = load_onnx(
        make_model(nodes, [image("x", 3, 5, 5)], ["y"], [weights("w", 2, 3, 1, 1), scale])
    )

    assert graph.layer("conv").onnx_nodes == ("conv", "sigmoid", "swish", "scale")


def test_folded_op_on_the_graph_input_joins_its_consumer() -> None:
    nodes = [
        helper.make_node("Transpose", ["x_nhwc"], ["x"], name="to_nchw", perm=[0, 3, 1, 2]),
        conv("left", "x", "w", "a"),
        conv("right", "x", "w", "b"),
        helper.make_node("Add", ["a", "b"], ["y"], name="sum"),
    ]
    x = helper.make_tensor_value_info("x_nhwc", TensorProto.FLOAT, ["N", 6, 6, 3])
    graph = load_onnx(make_model(nodes, [x], ["y"], [weights("w", 2, 3, 1, 1)]))

    assert graph.layer("left").onnx_nodes == ("left", "to_nchw")
    assert graph.layer("right").onnx_nodes == ("right", "to_nchw")
    assert graph.layer("left").in_hw == (6, 6)
    assert graph.predecessors("left") == []


def test_chain_of_folded_ops_on_the_graph_input() -> None:
    nodes = [
        helper.make_node("Cast", ["x_nhwc"], ["x_float"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["x_float"], ["x"], name="to_nchw", perm=[0, 3, 1, 2]),
        helper.make_node("Mul", ["x", "scale"], ["x_scaled"], name="normalize"),
        conv("conv", "x_scaled", "w", "y"),
    ]
    x = helper.make_tensor_value_info("x_nhwc", TensorProto.UINT8, ["N", 6, 6, 3])
    scale = numpy_helper.from_array(np.float32(1 / 255), "scale")
    graph = load_onnx(make_model(nodes, [x], ["y"], [weights("w", 2, 3, 1, 1), scale]))

    assert graph.layer("conv").onnx_nodes == ("conv", "cast", "to_nchw", "normalize")


def test_large_weights_survive_and_the_callers_model_is_untouched() -> None:
    """Large initializers are kept out of shape inference; their values must still arrive."""
    w_conv, w_fc = weights("w_conv", 32, 16, 3, 3), weights("w_fc", 32 * 4 * 4, 40)
    nodes = [
        conv("conv", "x", "w_conv", "c", strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["c"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "w_fc"], ["y"], name="fc"),
    ]
    model = make_model(nodes, [image("x", 16, 8, 8)], ["y"], [w_conv, w_fc])
    before = model.SerializeToString()
    graph = load_onnx(model)

    np.testing.assert_array_equal(graph.layer("conv").weight, numpy_helper.to_array(w_conv))
    np.testing.assert_array_equal(graph.layer("fc").weight, numpy_helper.to_array(w_fc).T)
    assert graph.layer("fc").macs == 40 * 32 * 4 * 4
    assert model.SerializeToString() == before


def test_weight_from_constant_nodes() -> None:
    w = np.random.default_rng(3).standard_normal((3, 2, 1, 1)).astype(np.float32)
    nodes = [
        helper.make_node(
            "Constant", [], ["w_t"], value=numpy_helper.from_array(w.transpose(1, 0, 2, 3))
        ),
        helper.make_node("Transpose", ["w_t"], ["w"], perm=[1, 0, 2, 3]),
        conv("conv", "x", "w", "y"),
    ]
    graph = load_onnx(make_model(nodes, [image("x", 2, 4, 4)], ["y"]))

    assert len(graph) == 1
    np.testing.assert_array_equal(graph.layer("conv").weight, w)
    assert graph.layer("conv").onnx_nodes == ("conv",)


# ---------------------------------------------------------------- names and order


def test_unnamed_nodes_get_stable_names_and_duplicates_a_suffix() -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"]),
        helper.make_node("Relu", ["a"], ["a_relu"]),
        helper.make_node("Conv", ["a_relu", "w"], ["b"], name="dup"),
        helper.make_node("Conv", ["b", "w"], ["c"], name="dup"),
        helper.make_node("Conv", ["c", "w"], ["y"], name="Relu_1"),
    ]
    graph = load_onnx(make_model(nodes, [image("x", 2, 4, 4)], ["y"], [weights("w", 2, 2, 1, 1)]))

    assert [layer.name for layer in graph.layers()] == ["Conv_0", "dup", "dup_2", "Relu_1_2"]
    assert graph.layer("Conv_0").onnx_nodes == ("Conv_0", "Relu_1")


def test_topological_order_breaks_ties_by_onnx_node_order() -> None:
    nodes = [
        conv("c", "b_out", "w", "c_out"),
        conv("b", "a_out", "w", "b_out"),
        conv("a", "x", "w", "a_out"),
        conv("d", "x", "w", "d_out"),
    ]
    model = make_model(nodes, [image("x", 2, 4, 4)], ["c_out", "d_out"], [weights("w", 2, 2, 1, 1)])
    orders = {tuple(layer.name for layer in load_onnx(model).layers()) for _ in range(3)}

    assert orders == {("a", "b", "c", "d")}
    assert load_onnx(model).edges() == [("a", "b"), ("b", "c")]


def test_graph_from_layers_orders_and_weights_edges() -> None:
    layers = [
        make_layer("head", out_channels=3),
        make_layer("x"),
        make_layer("y"),
        make_layer("tail"),
    ]
    graph = graph_from_layers("toy", layers, [("y", "tail"), ("head", "y"), ("head", "x")])

    assert [layer.name for layer in graph.layers()] == ["head", "x", "y", "tail"]
    assert graph.edges() == [("head", "x"), ("head", "y"), ("y", "tail")]
    assert graph.dag.edges["head", "x"]["elems"] == layers[0].output_elems
    assert graph.predecessors("tail") == ["y"]
    assert graph.layers() is not graph.layers()
    assert graph.source == "<memory>"


def test_names_default_to_file_stem_or_graph_name(tmp_path: Path) -> None:
    model = small_cnn()
    assert load_onnx(save(tmp_path, model, "resnet_tiny.onnx")).name == "resnet_tiny"
    assert load_onnx(model).name == "small_cnn"
    assert load_onnx(model, name="custom").name == "custom"
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"


def test_layer_table_has_a_row_per_layer() -> None:
    graph = load_onnx(small_cnn())
    table = layer_table(graph)

    expected_columns = ["name", "op", "C_in", "C_out", "kernel", "stride", "groups", "out_hw"]
    assert list(table.columns) == [*expected_columns, "macs", "weights"]
    assert list(table["name"]) == [layer.name for layer in graph.layers()]
    assert table["macs"].sum() == sum(layer.macs for layer in graph.layers())


# ---------------------------------------------------------------- errors


def _lstm_model() -> onnx.ModelProto:
    nodes = [helper.make_node("LSTM", ["x", "w", "r"], ["y"], name="lstm_1", hidden_size=3)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, "N", 4])
    return make_model(nodes, [x], ["y"], [weights("w", 1, 12, 4), weights("r", 1, 12, 3)])


def _custom_op_model() -> onnx.ModelProto:
    nodes = [helper.make_node("Fancy", ["x"], ["y"], name="fancy", domain="com.example")]
    model = make_model(nodes, [image("x", 3, 4, 4)], ["y"])
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    return model


def _cyclic_model() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Add", ["x", "b_out"], ["a_out"], name="a"),
        helper.make_node("Relu", ["a_out"], ["b_out"], name="b"),
    ]
    return make_model(nodes, [image("x", 3, 4, 4)], ["b_out"])


def _zero_channel_model() -> onnx.ModelProto:
    w = numpy_helper.from_array(np.zeros((0, 3, 1, 1), np.float32), "w")
    return make_model([conv("empty_conv", "x", "w", "y")], [image("x", 3, 4, 4)], ["y"], [w])


def _dynamic_size_model() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    return make_model([conv("conv", "x", "w", "y")], [x], ["y"], [weights("w", 2, 3, 1, 1)])


def _no_layer_model() -> onnx.ModelProto:
    return make_model([helper.make_node("Relu", ["x"], ["y"])], [image("x", 3, 4, 4)], ["y"])


def _squeeze_excite_model() -> onnx.ModelProto:
    nodes = [
        conv("conv", "x", "w", "c"),
        helper.make_node("GlobalAveragePool", ["c"], ["g"], name="squeeze"),
        helper.make_node("Sigmoid", ["g"], ["s"]),
        helper.make_node("Mul", ["c", "s"], ["y"], name="excite"),
    ]
    return make_model(nodes, [image("x", 3, 4, 4)], ["y"], [weights("w", 2, 3, 1, 1)])


def _conv3d_model() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3, 3, 3])
    return make_model([conv("c3d", "x", "w", "y")], [x], ["y"], [weights("w", 2, 2, 1, 1, 1)])


def _conv_channel_mismatch_model() -> onnx.ModelProto:
    nodes = [conv("conv", "x", "w", "y")]
    return make_model(nodes, [image("x", 3, 4, 4)], ["y"], [weights("w", 4, 5, 1, 1)])


def _gemm_mismatch_model() -> onnx.ModelProto:
    nodes = [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)]
    return make_model(nodes, [vector("x", 5)], ["y"], [weights("w", 3, 6)])


MODEL_ERRORS: list[tuple[str, Callable[[], onnx.ModelProto], list[str]]] = [
    (
        "unsupported op",
        _lstm_model,
        [
            "net.onnx: node 'lstm_1' (op LSTM) is not supported",
            "conv, dwconv",
            "BatchNormalization",
            "export the model without it or open an issue",
        ],
    ),
    ("custom domain", _custom_op_model, ["node 'fancy' (op com.example.Fancy) is not supported"]),
    ("cycle", _cyclic_model, ["net.onnx: the graph has a cycle through node 'a' (op Add)"]),
    ("zero channels", _zero_channel_model, ["net.onnx: layer 'empty_conv'", "0 output channels"]),
    ("dynamic H, W", _dynamic_size_model, ["net.onnx:", "'x'", "could not be inferred"]),
    ("no layer", _no_layer_model, ["net.onnx: the model has no layer (only Relu)"]),
    ("3-D conv", _conv3d_model, ["node 'c3d' (op Conv) is a 3-D convolution"]),
    ("conv channels", _conv_channel_mismatch_model, ["node 'conv' (op Conv) reads 3 channels"]),
    ("inference", _gemm_mismatch_model, ["'y' used by node 'fc'", "ONNX shape inference failed"]),
]


def assert_one_line_error(
    excinfo: pytest.ExceptionInfo[MilpMapError], fragments: list[str]
) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("build", "fragments"),
    [(build, fragments) for _, build, fragments in MODEL_ERRORS],
    ids=[case for case, _, _ in MODEL_ERRORS],
)
def test_model_errors_name_the_file_and_node(
    tmp_path: Path, build: Callable[[], onnx.ModelProto], fragments: list[str]
) -> None:
    path = save(tmp_path, build())
    with pytest.raises(MilpMapError) as excinfo:
        load_onnx(path)
    assert_one_line_error(excinfo, fragments)


def test_unsupported_message_lists_every_layer_kind(tmp_path: Path) -> None:
    with pytest.raises(MilpMapError) as excinfo:
        load_onnx(save(tmp_path, _lstm_model()))
    assert all(kind in str(excinfo.value) for kind in OP_KINDS)


def test_a_gate_between_two_layers_is_an_eltwise_layer(tmp_path: Path) -> None:
    """Squeeze-and-excitation: the Mul of the conv output and the pooled gate is a layer fed
    by both (it was refused before), the Sigmoid folds into the pool."""
    graph = load_onnx(save(tmp_path, _squeeze_excite_model()))
    assert [(layer.name, layer.op) for layer in graph.layers()] == [
        ("conv", "conv"),
        ("squeeze", "pool"),
        ("excite", "eltwise"),
    ]
    assert graph.predecessors("excite") == ["conv", "squeeze"]
    excite = graph.layer("excite")
    assert excite.macs == excite.output_elems == 2 * 4 * 4
    assert excite.input_elems == 2 * 4 * 4 + 2


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"this is not an onnx model\n", "not a readable ONNX model"),
        (b"", "the file is empty"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 9\n", "git lfs pull"),
    ],
    ids=["garbage", "empty", "lfs pointer"],
)
def test_unreadable_files(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "net.onnx"
    path.write_bytes(content)
    with pytest.raises(MilpMapError) as excinfo:
        load_onnx(path)
    assert_one_line_error(excinfo, [str(path), fragment])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MilpMapError) as excinfo:
        load_onnx(tmp_path / "absent.onnx")
    assert_one_line_error(excinfo, ["absent.onnx: file not found"])


def test_in_memory_model_errors_name_the_graph() -> None:
    with pytest.raises(MilpMapError) as excinfo:
        load_onnx(_lstm_model(), name="rnn")
    assert_one_line_error(excinfo, ["rnn (in memory): node 'lstm_1'"])


def test_graph_from_layers_rejects_cycles_and_unknown_names() -> None:
    layers = [make_layer("a"), make_layer("b")]
    with pytest.raises(MilpMapError) as excinfo:
        graph_from_layers("toy", layers, [("a", "b"), ("b", "a")])
    assert_one_line_error(excinfo, ["graph 'toy'", "cycle"])
    with pytest.raises(MilpMapError) as excinfo:
        graph_from_layers("toy", layers, [("a", "ghost")])
    assert_one_line_error(excinfo, ["unknown layer 'ghost'"])
    with pytest.raises(MilpMapError) as excinfo:
        graph_from_layers("toy", [*layers, make_layer("a")], [])
    assert_one_line_error(excinfo, ["two layers are named 'a'"])


def test_zero_channel_layer_is_rejected() -> None:
    with pytest.raises(MilpMapError) as excinfo:
        make_layer("empty", in_channels=0)
    assert_one_line_error(excinfo, ["layer 'empty'", "0 input"])


def test_unknown_layer_lookup_suggests_a_name() -> None:
    graph: LayerGraph = graph_from_layers("toy", [make_layer("conv1")], [])
    with pytest.raises(MilpMapError) as excinfo:
        graph.layer("conv_1")
    assert_one_line_error(excinfo, ["no layer named 'conv_1'", "did you mean 'conv1'"])
