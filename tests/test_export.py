"""`python -m milp_map.export`: an fp32 mapping (whole or split) computes exactly what the source
model computes; split layers have one node per part and keep the channel order; quantised parts
carry their accelerator's precision; every node is tagged; errors are one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from platforms import FP32_PLATFORM

from milp_map.accuracy import export
from milp_map.accuracy.measure import predict
from milp_map.cli import export as export_cli
from milp_map.cli import solve
from milp_map.errors import MilpMapError
from milp_map.io.models import load_model
from milp_map.io.zoo import build_model

pytest.importorskip("onnxruntime")

MODEL = "resnet8"  # 15 layers, convs with and without BN, a Gemm head: fast and covers both ops


def _solve(tmp: Path, name: str, *argv: str) -> Path:
    out = tmp / f"{name}.json"
    assert solve.main(["--model", MODEL, "--quiet", "--out", str(out), *argv]) == 0
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Mapping files: fp32 layer-wise and split (solved, and with scrambled channel indices),
    and a DIANA channel split."""
    tmp = tmp_path_factory.mktemp("export")
    platform = tmp / "fp32.yaml"
    platform.write_text(FP32_PLATFORM)
    found = {"platform": platform}
    found["layer"] = _solve(tmp, "layer", "--platform", str(platform))
    found["split"] = _solve(tmp, "split", "--platform", str(platform), "--granularity", "channel")
    data = json.loads(found["split"].read_text())
    rng = np.random.default_rng(0)
    for entry in data["layers"]:
        if len(entry["split"]) > 1:
            order = rng.permutation(sum(entry["split"].values())).tolist()
            start = 0
            for acc, n in entry["split"].items():
                entry["channels"][acc] = order[start : start + n]
                start += n
    found["scrambled"] = tmp / "scrambled.json"
    found["scrambled"].write_text(json.dumps(data))
    found["diana"] = _solve(tmp, "diana", "--granularity", "channel")
    return found


def _inputs(n: int = 3) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((n, 3, 32, 32), dtype=np.float32)


def _reference(x: np.ndarray) -> np.ndarray:
    """The source model (batch pinned to 1) one sample at a time."""
    model = build_model(MODEL)
    return np.concatenate([predict(model, x[i : i + 1]) for i in range(len(x))])


def _props(node: onnx.NodeProto) -> dict[str, str]:
    return {p.key.removeprefix(export.META_PREFIX): p.value for p in node.metadata_props}


@pytest.mark.parametrize("kind", ["layer", "split", "scrambled"])
def test_fp32_export_equals_the_source_model(files: dict[str, Path], kind: str) -> None:
    mapped = export.export_mapping_file(files[kind], platform=str(files["platform"]))
    x = _inputs()
    assert np.max(np.abs(predict(mapped, x) - _reference(x))) < 1e-5


def test_split_layers_have_one_node_per_part_in_channel_order(files: dict[str, Path]) -> None:
    mapped = export.export_mapping_file(files["scrambled"], platform=str(files["platform"]))
    entries = {e["name"]: e for e in json.loads(files["scrambled"].read_text())["layers"]}
    weights = {t.name: numpy_helper.to_array(t) for t in mapped.graph.initializer}
    source = {t.name: numpy_helper.to_array(t) for t in build_model(MODEL).graph.initializer}
    split = [e for e in entries.values() if len(e["split"]) > 1]
    assert split, "the solver should split some layer of resnet8 on two fp32 accelerators"
    for entry in split:
        nodes = [n for n in mapped.graph.node if _props(n)["layer"] == entry["name"]]
        parts = [n for n in nodes if _props(n)["role"] == "part"]
        assert sorted(_props(n)["accelerator"] for n in parts) == sorted(entry["split"])
        assert [n.op_type for n in nodes if _props(n)["role"] == "merge"] == ["Concat", "Gather"]
        for node in parts:
            accelerator = _props(node)["accelerator"]
            original = source[node.input[1].rsplit("/", 1)[0]]
            rows = entry["channels"][accelerator]
            assert np.array_equal(weights[node.input[1]], original[rows])
            assert len(rows) == entry["split"][accelerator]


def test_diana_export_quantises_each_part_to_its_precision(files: dict[str, Path]) -> None:
    mapped = export.export_mapping_file(files["diana"])
    weights = {t.name: numpy_helper.to_array(t) for t in mapped.graph.initializer}
    assert all("accelerator" in _props(n) for n in mapped.graph.node)
    macs = [n for n in mapped.graph.node if n.op_type in ("Conv", "Gemm")]
    assert {_props(n)["precision"] for n in macs} == {"int8", "ternary"}
    for node in macs:
        weight = weights[node.input[1]]
        per_channel = weight.reshape(weight.shape[0], -1)
        if _props(node)["precision"] == "ternary":
            assert all(len(np.unique(np.abs(row))) <= 2 for row in per_channel)
        else:
            assert len(np.unique(np.abs(weight))) <= 128
        quantisers = {
            n.op_type
            for n in mapped.graph.node
            if _props(n)["role"] == "quantize" and n.output[0] in set(node.input)
        }
        assert quantisers == {"DequantizeLinear"}
    clips = [n for n in mapped.graph.node if n.op_type == "Clip"]
    assert clips and all(_props(n)["precision"] == "ternary" for n in clips)  # 7-bit activations
    out = predict(mapped, _inputs(2))
    assert out.shape == (2, 10) and np.all(np.isfinite(out))


def test_weights_only_export_has_no_quantize_nodes(files: dict[str, Path]) -> None:
    mapped = export.export_mapping_file(files["diana"], activations=False)
    assert not [n for n in mapped.graph.node if "Quantize" in n.op_type]
    graph = load_model(MODEL)
    assert len([n for n in mapped.graph.node if _props(n)["layer"]]) >= len(graph)


def test_fp16_activations_are_rounded_only_when_asked(tmp_path: Path) -> None:
    platform = tmp_path / "fp16.yaml"
    platform.write_text(
        FP32_PLATFORM.replace("name: twofp32", "name: fp16pair", 1).replace(
            "precision: fp32\n    cost: {model: roofline, macs_per_s: 2.0e+9",
            "precision: fp16\n    cost: {model: roofline, macs_per_s: 2.0e+9",
        )
    )
    mapping = _solve(tmp_path, "fp16", "--platform", str(platform), "--max-proxy-fraction", "1")
    for activations, label in ((True, "reduced float (Cast round trip)"), (False, "fp32")):
        mapped = export.export_mapping_file(
            mapping, platform=str(platform), activations=activations
        )
        casts = [n for n in mapped.graph.node if n.op_type == "Cast"]
        assert bool(casts) == activations
        assert {p.key: p.value for p in mapped.metadata_props}["milp_map.activations"] == label


def test_cli_writes_the_model_and_rejects_bad_input(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mapped.onnx"
    args = ["--mapping", str(files["layer"]), "--platform", str(files["platform"])]
    assert export_cli.main([*args, "--out", str(out)]) == 0
    onnx.checker.check_model(onnx.load(out))
    assert [p.name for p in tmp_path.iterdir()] == ["mapped.onnx"]  # no temporary left behind
    assert export_cli.main([*args, "--out", str(tmp_path / "missing" / "m.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": MODEL, "platform": "diana", "layers": []}))
    assert export_cli.main(["--mapping", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "bad.json" in err


def test_a_graph_output_without_a_shape_is_inferred_on_export(tmp_path: Path) -> None:
    """onnx's checker refuses a typed graph output with no shape; export fills it in by
    shape inference and the exported model runs and matches the source."""
    source = tmp_path / "noshape.onnx"
    model = build_model(MODEL)
    model.graph.output[0].type.tensor_type.ClearField("shape")
    onnx.save(model, source)
    with pytest.raises(onnx.checker.ValidationError):
        onnx.checker.check_model(onnx.load(source))
    mapping = tmp_path / "r.json"
    assert solve.main(["--model", str(source), "--quiet", "--out", str(mapping)]) == 0
    out = tmp_path / "mapped.onnx"
    argv = ["--mapping", str(mapping), "--model", str(source), "--platform", "diana"]
    assert export_cli.main([*argv, "--out", str(out), "--activations", "none"]) == 0
    exported = onnx.load(out)
    onnx.checker.check_model(exported)
    assert exported.graph.output[0].type.tensor_type.HasField("shape")


def test_a_shape_inference_cannot_find_is_a_one_line_error() -> None:
    model = build_model(MODEL)
    model.graph.output[0].type.tensor_type.ClearField("shape")
    model.graph.output[0].name = "not_produced_by_any_node"
    with pytest.raises(MilpMapError, match="no shape"):
        export._with_dynamic_batch(model)
