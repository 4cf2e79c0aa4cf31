"""The front door takes what people export: torch modules with the patterns of current networks
(squeeze-and-excitation gates, a transformer encoder layer, LayerNorm, an embedding, a
ShuffleNet block, a mean head, a transposed conv), from both torch exporters, load into the
layer kinds the cost models know, solve to a proven optimum on diana and jetson-xavier, and
export at fp32 to a model that computes exactly what the source computes."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from platforms import FP32_PLATFORM

from milp_map.accuracy.export import export_mapped, plan_of, sample_inputs
from milp_map.core.graph import LayerGraph
from milp_map.errors import MilpMapError
from milp_map.formulations import channel_split, layerwise
from milp_map.io.onnx import load_onnx
from milp_map.io.problems import load_problem

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
nn = torch.nn

NEEDS_ONNXSCRIPT = pytest.mark.skipif(
    importlib.util.find_spec("onnxscript") is None,
    reason="torch's default exporter needs onnxscript",
)
EXPORTERS = ["torchscript", pytest.param("dynamo", marks=NEEDS_ONNXSCRIPT)]


class SqueezeExcite(nn.Module):
    """MobileNetV3 / EfficientNet gating: the conv output times a gate computed from it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc1 = nn.Conv2d(16, 4, 1)
        self.fc2 = nn.Conv2d(4, 16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(y.mean((2, 3), keepdim=True)))))
        return y * gate


class Encoder(nn.Module):
    """One transformer encoder layer (attention, LayerNorm, GELU MLP) on a token sequence."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.layer.activation = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class Embedder(nn.Module):
    """Token ids -> embeddings -> LayerNorm -> a linear head (the front of BERT / GPT-2)."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(50, 16)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 8)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.embedding(ids)))


class ShuffleBlock(nn.Module):
    """ShuffleNetV2's unit: split the channels, convolve one half, concat, shuffle."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.branch = nn.Sequential(nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        a, b = y.chunk(2, dim=1)
        z = torch.cat((a, self.branch(b)), dim=1)
        n, c, h, w = z.shape
        return z.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)


class MeanHead(nn.Module):
    """Global average pooling written as a mean (what torch's default exporter emits)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


class Upsampler(nn.Module):
    """A transposed conv after a conv (segmentation decoders)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(torch.relu(self.conv(x)))


def _image() -> torch.Tensor:
    return torch.randn(1, 3, 8, 8)


PATTERNS: dict[str, tuple[Callable[[], nn.Module], Callable[[], torch.Tensor], set[str]]] = {
    "squeeze_excite": (SqueezeExcite, _image, {"conv", "pool", "eltwise"}),
    "encoder": (Encoder, lambda: torch.randn(1, 6, 32), {"gemm", "matmul", "softmax", "norm"}),
    "embedding": (Embedder, lambda: torch.randint(0, 50, (1, 5)), {"embedding", "norm", "gemm"}),
    "shuffle": (ShuffleBlock, _image, {"conv", "slice", "concat"}),
    "mean_head": (MeanHead, _image, {"conv", "pool", "gemm"}),
    "transposed": (Upsampler, _image, {"conv", "convtranspose"}),
}
"""name -> (module, example input, layer kinds its graph must have)."""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Path]:
    """NAME_EXPORTER.onnx, exported once per module."""
    folder = tmp_path_factory.mktemp("exports")
    cache: dict[tuple[str, str], Path] = {}

    def get(name: str, exporter: str) -> Path:
        if (name, exporter) not in cache:
            make, example, _ = PATTERNS[name]
            torch.manual_seed(0)
            module = make().eval()
            path = folder / f"{name}_{exporter}.onnx"
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                torch.backends.mha.set_fastpath_enabled(False)
                with torch.no_grad():
                    torch.onnx.export(module, (example(),), str(path), dynamo=exporter == "dynamo")
            cache[(name, exporter)] = path
        return cache[(name, exporter)]

    return get


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", list(PATTERNS))
def test_each_pattern_loads_into_its_layer_kinds(exported, name: str, exporter: str) -> None:
    graph = load_onnx(exported(name, exporter))
    kinds = {layer.op for layer in graph.layers()}
    assert PATTERNS[name][2] <= kinds, kinds
    assert all(layer.macs >= 0 and layer.output_elems > 0 for layer in graph.layers())


@pytest.mark.skipif(
    importlib.util.find_spec("onnxscript") is None,
    reason="torch's default exporter needs onnxscript",
)
@pytest.mark.parametrize("name", list(PATTERNS))
def test_both_exporters_give_the_same_costs(exported, name: str) -> None:
    """The two exporters write different graphs (Gemm vs MatMul, BN folded or not, ReduceMean
    vs GlobalAveragePool, one Split or two Slices): the layers that compute come out with the
    same MACs, and the weights are the same in number."""
    ts, dynamo = (load_onnx(exported(name, e)) for e in ("torchscript", "dynamo"))
    for graph in (ts, dynamo):
        assert graph.layers()
    assert sorted(layer.macs for layer in ts.layers() if layer.macs) == sorted(
        layer.macs for layer in dynamo.layers() if layer.macs
    )
    assert sum(layer.weight_count for layer in ts.layers()) == sum(
        layer.weight_count for layer in dynamo.layers()
    )


@pytest.mark.parametrize("platform", ["diana", "jetson-xavier"])
@pytest.mark.parametrize("name", list(PATTERNS))
def test_each_pattern_is_solved_to_a_proven_optimum(exported, name: str, platform: str) -> None:
    for granularity in ("layer", "channel"):
        target = load_problem(
            exported(name, "torchscript"),
            platform,
            max_proxy_fraction=0.5,
            granularity=granularity,
        )
        solve = channel_split.solve if granularity == "channel" else layerwise.solve
        solution = solve(target, "cpsat")  # type: ignore[operator]
        assert solution.status == "optimal", (granularity, solution.detail)


def test_diana_runs_only_conv_and_fully_connected_layers_on_analog(exported) -> None:
    problem = load_problem(exported("encoder", "torchscript"), "diana", max_proxy_fraction=1.0)
    solution = layerwise.solve(problem, "highs")
    assert solution.mapping is not None
    for unit in problem.units:
        op = problem.graph.layer(unit.layers[0]).op
        if solution.mapping[unit.name][0].accelerator == "analog":
            assert op in ("conv", "gemm"), (unit.name, op)
    assert any(p[0].accelerator == "analog" for p in solution.mapping.values())


def test_attention_heads_are_the_channel_group_of_the_projections(exported) -> None:
    graph = load_onnx(exported("encoder", "torchscript"))
    packed = [layer for layer in graph.layers() if layer.op == "gemm" and layer.out_channels == 96]
    assert packed and all(layer.channel_group == 8 for layer in packed)  # 32 wide, 4 heads
    target = load_problem(graph, "diana", granularity="channel", group_size=4)
    unit = next(u for u in target.units if u.channels == 96)
    assert unit.group_size == 8
    assert all(part.channels % 8 == 0 for parts in unit.parts.values() for part in parts)


def _run(model: onnx.ModelProto | str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """onnxruntime with its own graph optimisations off, so two graphs that compute the same
    thing give the same bits (its fusions differ between graphs)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    payload = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    session = ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", list(PATTERNS))
def test_an_fp32_mapping_computes_what_the_source_computes(
    exported, tmp_path: Path, name: str, exporter: str
) -> None:
    platform = tmp_path / "fp32.yaml"
    platform.write_text(FP32_PLATFORM)
    source = exported(name, exporter)
    for granularity in ("layer", "channel"):
        target = load_problem(source, platform, max_proxy_fraction=1.0, granularity=granularity)
        problem = getattr(target, "base", target)
        solve = channel_split.solve if granularity == "channel" else layerwise.solve
        solution = solve(target, "cpsat")  # type: ignore[operator]
        graph: LayerGraph = problem.graph
        mapped = export_mapped(graph.model, graph, plan_of(problem, solution.mapping))
        feeds = sample_inputs(mapped, 1)
        expected, got = _run(str(source), feeds), _run(mapped, feeds)
        for a, b in zip(expected, got, strict=True):
            if granularity == "layer":
                np.testing.assert_array_equal(a, b)
            else:  # parts of a split sum the same products in another order
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * np.abs(a).max())


# ---------------------------------------------------------------- hand-built ONNX


def _model(nodes: list, inputs: list, outputs: list, initializers: list, opset: int = 17):
    graph = onnx.helper.make_graph(nodes, "net", inputs, outputs, initializers)
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])


def _shape_arithmetic_model() -> onnx.ModelProto:
    """A Reshape target and a Where mask computed from shapes at run time (Shape, Gather,
    Concat, ConstantOfShape, Range, Less): constants once the batch is pinned."""
    helper, tp = onnx.helper, onnx.TensorProto
    rng = np.random.default_rng(0)
    w = onnx.numpy_helper.from_array(rng.standard_normal((8, 4, 1, 1)).astype(np.float32), "w")
    consts = {
        "zero": np.array([0], dtype=np.int64),
        "minus_one": np.array([-1], dtype=np.int64),
        "four": np.array(4, dtype=np.int64),
        "start": np.array(0, dtype=np.int64),
        "step": np.array(1, dtype=np.int64),
        "fill": np.array(-1e4, dtype=np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Shape", ["c"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "zero"], ["n"], name="batch", axis=0),
        helper.make_node("Concat", ["n", "minus_one"], ["target"], name="target", axis=0),
        helper.make_node("Reshape", ["c", "target"], ["flat"], name="flatten"),
        helper.make_node("Range", ["start", "four", "step"], ["idx"], name="range"),
        helper.make_node("Less", ["idx", "four"], ["keep"], name="keep"),
        helper.make_node("Unsqueeze", ["keep", "zero"], ["mask"], name="mask"),
        helper.make_node("Tile", ["mask", "target"], ["masks"], name="tile"),
        helper.make_node("Slice", ["flat", "zero", "four", "minus_one"], ["head"], name="head"),
        helper.make_node("Where", ["mask", "head", "fill"], ["y"], name="masked"),
    ]
    initializers = [w, *(onnx.numpy_helper.from_array(v, k) for k, v in consts.items())]
    x = helper.make_tensor_value_info("x", tp.FLOAT, ["N", 4, 3, 3])
    y = helper.make_tensor_value_info("y", tp.FLOAT, None)
    return _model(nodes, [x], [y], initializers)


def test_shape_arithmetic_is_folded_by_onnxruntime(tmp_path: Path) -> None:
    path = tmp_path / "shapes.onnx"
    onnx.save(_shape_arithmetic_model(), path)
    graph = load_onnx(path)
    assert [(layer.name, layer.op) for layer in graph.layers()] == [
        ("conv", "conv"),
        ("head", "slice"),
    ]
    # the model kept for export folds what does not depend on the (free) batch
    kept = {node.name for node in graph.model.graph.node}
    assert {"range", "keep", "mask"}.isdisjoint(kept)
    assert {"shape", "batch", "target"} <= kept


def test_weights_in_an_external_data_file_load_and_a_missing_one_is_named(tmp_path: Path) -> None:
    helper, tp = onnx.helper, onnx.TensorProto
    w = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)
    model = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
        [helper.make_tensor_value_info("x", tp.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", tp.FLOAT, [1, 32])],
        [onnx.numpy_helper.from_array(w, "w")],
    )
    path = tmp_path / "external.onnx"
    onnx.save(model, path, save_as_external_data=True, location="external.onnx.data")
    graph = load_onnx(path)
    np.testing.assert_array_equal(graph.layer("fc").weight, w.T)
    (tmp_path / "external.onnx.data").unlink()
    with pytest.raises(MilpMapError, match=r"external\.onnx\.data, which is not next to the"):
        load_onnx(path)


# ---------------------------------------------------------------- torchvision, where it imports


def _torchvision():
    """torchvision beside the CPU build of torch 2.13, its op registrations stubbed (the
    PyPI wheel registers them for another build); skipped where it is not installed."""
    import sys
    import types

    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed")
    for name in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
        sys.modules.setdefault(name, types.ModuleType(name))
    import torchvision

    return torchvision


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", ["mobilenet_v3_small", "shufflenet_v2_x0_5", "mnasnet0_5"])
def test_torchvision_architectures_load_and_solve(tmp_path: Path, name: str, exporter: str) -> None:
    tv = _torchvision()
    torch.manual_seed(0)
    module = getattr(tv.models, name)(weights=None).eval()
    path = tmp_path / f"{name}.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (torch.randn(1, 3, 64, 64),), str(path), dynamo=exporter == "dynamo"
        )
    problem = load_problem(path, "jetson-xavier", max_proxy_fraction=0.5)
    assert layerwise.solve(problem, "highs").status == "optimal"
