"""Tests of the built-in model zoo: valid ONNX, the published architectures, stable weights."""

from __future__ import annotations

import functools
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from milp_map.cli import zoo as zoo_cli
from milp_map.errors import MilpMapError
from milp_map.io import onnx_builder, zoo

SMALL_MODELS = ("resnet8", "resnet20", "ds_cnn", "mobilenet_v1_025_96")

OUTPUT_SHAPES = {
    "resnet8": {"output": [1, 10]},
    "resnet20": {"output": [1, 10]},
    "resnet18": {"output": [1, 1000]},
    "resnet18_tiny": {"output": [1, 200]},
    "resnet50": {"output": [1, 1000]},
    "mobilenet_v1": {"output": [1, 1000]},
    "mobilenet_v1_025_96": {"output": [1, 2]},
    "ds_cnn": {"output": [1, 12]},
    "alexnet": {"output": [1, 1000]},
    "googlenet": {"output": [1, 1000]},
    "squeezenet": {"output": [1, 1000]},
    "yolov3": {
        "output_13": [1, 255, 13, 13],
        "output_26": [1, 255, 26, 26],
        "output_52": [1, 255, 52, 52],
    },
    "vit_tiny": {"output": [1, 1000]},
}


@functools.cache
def built(name: str) -> onnx.ModelProto:
    """Each model is built once per test session; tests must not mutate the result."""
    return zoo.build_model(name)


def dims(value_info: onnx.ValueInfoProto) -> list[int]:
    return [d.dim_value for d in value_info.type.tensor_type.shape.dim]


def op_count(model: onnx.ModelProto, op_type: str) -> int:
    return sum(node.op_type == op_type for node in model.graph.node)


def mobilenet_v1_params(width: float, n_classes: int) -> int:
    """Trainable parameters of MobileNetV1 counted layer by layer (conv weights, BN gamma/beta)."""
    pointwise_widths = (64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)
    n_in = int(32 * width)
    total = 3 * 9 * n_in + 2 * n_in
    for n_out in pointwise_widths:
        n_out = int(n_out * width)
        total += 9 * n_in + 2 * n_in + n_in * n_out + 2 * n_out
        n_in = n_out
    return total + n_in * n_classes + n_classes


# Trainable parameter counts (weights, biases, BN gamma and beta; no BN running statistics, which
# is how torch counts) and the relative tolerance against the source. Exact where the zoo model
# reproduces the source layer for layer.
REFERENCE_PARAMS = {
    # torchvision model docs (num_params): resnet18 11.7M, resnet50 25.6M, alexnet 61.1M,
    # squeezenet1_0 1.2M, googlenet 6.6M. torchvision's googlenet uses 3x3 convs in inception
    # branch 3; the paper's 5x5 add 16 weights per (in, out) channel pair: 16 * 23,808.
    "resnet18": (11_689_512, 0.0),
    "resnet50": (25_557_032, 0.0),
    "alexnet": (61_100_840, 0.0),
    "squeezenet": (1_248_424, 0.0),
    "googlenet": (6_624_904 + 16 * 23_808, 0.0),
    # ResNet-18 with a 3x3 stem (64*3*9 instead of 64*3*49) and a 200-way fc.
    "resnet18_tiny": (11_689_512 - 64 * 3 * (49 - 9) - 512 * 800 - 800, 0.0),
    # keras.applications.MobileNet(alpha=1.0): 4,231,976 trainable of 4,253,864 total.
    "mobilenet_v1": (4_231_976, 0.0),
    "mobilenet_v1_025_96": (mobilenet_v1_params(0.25, 2), 0.0),
    # He et al. 2016, Table 6: "0.27M" (option A); option-B projections add 2,752.
    "resnet20": (270_000, 0.02),
    # Keras total params of the mlcommons/tiny v0.5 reference models, counted from their code:
    # 78,666 (ResNet-8, "~78k") and 24,908 (DS-CNN), which include BN moving mean/var (2 per BN
    # channel: 480 and 1,152) and the conv biases in front of BN (240 and 576) the zoo drops.
    "resnet8": (78_666 - 480 - 240, 0.0),
    "ds_cnn": (24_908 - 1_152 - 576, 0.0),
    # yolov3.weights (Darknet) holds (248,007,048 - 20 header bytes) / 4 = 62,001,757 floats,
    # including BN mean/var of the 72 BN convs (2 * 26,304); 61,949,149 is also what
    # ultralytics reports for YOLOv3.
    "yolov3": (62_001_757 - 2 * 26_304, 0.0),
    # timm deit_tiny_patch16_224 (ViT-Tiny): 5,717,416 (patch embedding, class token, position
    # embeddings, 12 blocks, final norm, head).
    "vit_tiny": (5_717_416, 0.0),
}


def test_registry_lists_the_documented_models_in_order() -> None:
    assert zoo.list_models() == list(OUTPUT_SHAPES)
    assert all(zoo.is_zoo_name(name) for name in OUTPUT_SHAPES)
    assert not zoo.is_zoo_name("resnet9")


@pytest.mark.parametrize("name", zoo.list_models())
def test_model_is_valid_onnx_with_the_expected_outputs(name: str) -> None:
    model = built(name)
    onnx.checker.check_model(model)
    # strict mode also fails when an inferred shape contradicts a declared graph output
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    assert model.graph.name == name
    assert model.opset_import[0].version == onnx_builder.OPSET
    assert [i.name for i in model.graph.input] == ["input"]
    assert tuple(dims(model.graph.input[0])) == zoo.ZOO[name].input_shape
    assert {o.name: dims(o) for o in inferred.graph.output} == OUTPUT_SHAPES[name]


@pytest.mark.parametrize("name", zoo.list_models())
def test_parameter_count_matches_the_published_architecture(name: str) -> None:
    reference, rel_tol = REFERENCE_PARAMS[name]
    assert zoo.count_params(built(name)) == pytest.approx(reference, rel=rel_tol, abs=0)


def test_layer_by_layer_mobilenet_count_reproduces_keras() -> None:
    assert mobilenet_v1_params(1.0, 1000) == 4_231_976


@pytest.mark.parametrize("name", zoo.list_models())
def test_node_names_follow_block_part_convention(name: str) -> None:
    names = [node.name for node in built(name).graph.node]
    assert len(names) == len(set(names))
    bad = [n for n in names if not re.fullmatch(r"[a-z0-9_]+/[a-z0-9_]+", n)]
    assert not bad
    if name != "yolov3":
        assert names[-1] == "head/softmax"


def test_resnet_blocks_have_the_documented_parts() -> None:
    names = {node.name for node in built("resnet20").graph.node}
    assert {"stem/conv", "stem/bn", "stem/relu", "head/pool", "head/fc"} <= names
    parts = ["conv1", "bn1", "relu1", "conv2", "bn2", "add", "relu_out"]
    assert {f"stage3_block3/{p}" for p in parts} <= names
    assert {"stage2_block1/shortcut_conv", "stage2_block1/shortcut_bn"} <= names
    assert "stage1_block1/shortcut_conv" not in names  # identity where the shape is kept
    assert "stem/pool" in {node.name for node in built("resnet18").graph.node}
    assert "stem/pool" not in {node.name for node in built("resnet18_tiny").graph.node}


def test_yolov3_has_75_convs_in_darknet_order() -> None:
    model = built("yolov3")
    conv_blocks = [node.name for node in model.graph.node if node.op_type == "Conv"]
    assert conv_blocks == [f"conv{k}/conv" for k in range(75)]
    assert op_count(model, "Add") == 23  # residual units: 1 + 2 + 8 + 8 + 4
    assert op_count(model, "LeakyRelu") == 72  # all but the three 255-channel output convs
    names = {node.name for node in model.graph.node}
    assert {"conv3/add", "conv59/upsample", "conv59/concat", "conv67/upsample"} <= names


def test_mobilenet_v1_has_27_convs_13_of_them_depthwise() -> None:
    model = built("mobilenet_v1")
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    depthwise = [n for n in convs if any(a.name == "group" and a.i > 1 for a in n.attribute)]
    assert len(convs) == 27
    assert [n.name for n in depthwise] == [f"block{i}/dw" for i in range(1, 14)]
    assert op_count(model, "Clip") == 27  # ReLU6


def test_googlenet_has_9_inception_concats() -> None:
    concats = [n.name for n in built("googlenet").graph.node if n.op_type == "Concat"]
    stages = ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")
    assert concats == [f"inception{s}/concat" for s in stages]


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_build_is_byte_identical(name: str) -> None:
    assert zoo.build_model(name).SerializeToString() == built(name).SerializeToString()


def test_weights_depend_on_the_model_name() -> None:
    def weight(model: onnx.ModelProto) -> np.ndarray:
        init = {t.name: t for t in model.graph.initializer}
        return onnx.numpy_helper.to_array(init["stage2_block1/conv1:weight"])

    assert not np.array_equal(weight(built("resnet8")), weight(built("resnet20")))


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_onnxruntime_runs_and_softmax_sums_to_one(name: str) -> None:
    session = ort.InferenceSession(
        built(name).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    x = np.random.default_rng(0).standard_normal(zoo.ZOO[name].input_shape, dtype=np.float32)
    (probs,) = session.run(None, {"input": x})
    assert list(probs.shape) == OUTPUT_SHAPES[name]["output"]
    assert np.all(probs >= 0)
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(MilpMapError, match=r"unknown zoo model 'resnet9'; choose one of: resnet8"):
        zoo.build_model("resnet9")
    with pytest.raises(MilpMapError, match="yolov3"):
        zoo.build_model("resnet9")


def test_cli_export_writes_the_built_model(tmp_path, capsys) -> None:
    assert zoo_cli.main(["--export", "resnet8", "ds_cnn", "--out", str(tmp_path / "models")]) == 0
    for name in ("resnet8", "ds_cnn"):
        saved = onnx.load(tmp_path / "models" / f"{name}.onnx")
        assert saved.SerializeToString() == built(name).SerializeToString()
    assert "ds_cnn.onnx" in capsys.readouterr().out


def test_cli_export_rejects_unknown_names_before_writing(tmp_path, capsys) -> None:
    assert zoo_cli.main(["--export", "resnet8", "resnet9", "--out", str(tmp_path)]) == 2
    assert "unknown zoo model 'resnet9'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_cli_list_prints_one_row_per_model(monkeypatch, capsys) -> None:
    monkeypatch.setattr(zoo, "ZOO", {name: zoo.ZOO[name] for name in SMALL_MODELS})
    assert zoo_cli.main(["--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "dataset", "input", "params", "description"]
    assert [line.split()[0] for line in lines[1:]] == [*SMALL_MODELS, "mnist_resnet"]
    assert "1x1x49x10" in lines[3] and "23.2k" in lines[3]
    assert "1x1x28x28" in lines[-1] and "47.0k" in lines[-1] and "98.9%" in lines[-1]
