"""Hessian sensitivities (HAWQ-V2), the ONNX -> torch converter and the shipped MNIST model.

Hutchinson is checked against the exact Hessian of a tiny network; the converter against
onnxruntime; scores for reproducibility and for files the solver reads. Torch-free parts (the
scores from given traces, the shipped files, the missing-torch message) run without torch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from milp_map.accuracy.hessian import Traces, hawq_scores
from milp_map.cli.sensitivity import main
from milp_map.core.problem import build_problem
from milp_map.io.models import load_model, model_proto, shipped_models
from milp_map.io.platforms import load_platform
from milp_map.io.scores import load_sensitivity, shipped_sensitivity
from milp_map.resources import data_path

MODEL = "mnist_resnet"
FAST = ["--probes", "2", "--batches", "2", "--batch-size", "16"]


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """One intra-op thread: the CI cores are shared, and spinning torch threads then crawl."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


# ---------------------------------------------------------------------------- torch-free


def test_core_imports_and_solves_without_torch(tmp_path: Path) -> None:
    """With torch unimportable the solver still works and the CLI says what to install."""
    script = (
        "import sys; sys.modules['torch'] = None\n"
        "from milp_map.solve import main as solve\n"
        "assert solve(['--model', 'mnist_resnet', '--quiet']) == 0\n"
        "from milp_map.sensitivity import main\n"
        f"argv = ['--model', 'mnist_resnet', '--data', 'mnist', '--out', '{tmp_path}/s.csv']\n"
        "code = main(argv)\n"
        "assert 'torch' not in sys.modules or sys.modules['torch'] is None\n"
        "raise SystemExit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    line = _one_line_error(done.stderr)
    assert "pip install 'milp_map[torch]'" in line


def test_scores_follow_hawq_from_given_traces() -> None:
    """Omega = max(trace / n, 0) * ||Q(W) - W||^2; fp32 and weightless layers score 0."""
    graph = load_model(MODEL)
    rng = np.random.default_rng(0)
    traces = {
        layer.name: rng.uniform(-0.1, 1.0, layer.out_channels)
        for layer in graph.layers()
        if layer.weight is not None
    }
    scores = hawq_scores(graph, Traces(traces, 1, 1, 1), ("fp32", "int8", "ternary"), True)
    assert scores.kind == "hessian"
    for layer in graph.layers():
        assert scores.score(layer.name, "fp32") == 0.0
        if layer.weight is None:
            assert scores.score(layer.name, "ternary") == 0.0
            continue
        for precision in ("int8", "ternary"):
            per_channel = scores.channel_scores[(layer.name, precision)]
            assert len(per_channel) == layer.out_channels
            assert (per_channel[traces[layer.name] < 0] == 0).all()
            assert scores.score(layer.name, precision) == pytest.approx(per_channel.sum())
        assert scores.score(layer.name, "ternary") > scores.score(layer.name, "int8")


def test_shipped_model_and_scores_match_the_graph() -> None:
    """load_model / shipped_sensitivity know the trained model; the Hessian file wins."""
    assert MODEL in shipped_models()
    graph = load_model(MODEL)
    assert all(layer.op in {"conv", "gemm", "add", "pool"} for layer in graph.layers())
    provenance = json.loads(data_path("models", f"{MODEL}.json").read_text())
    assert provenance["fp32_test_accuracy"] >= 0.97
    sensitivity = shipped_sensitivity(MODEL)
    assert sensitivity is not None and sensitivity.kind == "hessian"
    assert Path(sensitivity.source) == data_path("sensitivity", "hessian", f"{MODEL}.csv")
    assert sensitivity.layers == {layer.name for layer in graph.layers()}
    for layer in graph.layers():
        assert len(sensitivity.channel_scores[(layer.name, "ternary")]) == layer.out_channels
    free = load_sensitivity(data_path("sensitivity", "data_free", f"{MODEL}.csv"))
    assert free.layers == sensitivity.layers
    problem = build_problem(graph, load_platform("diana"), sensitivity, "latency")
    low, high = problem.proxy_range
    assert 0 <= low < high


# ---------------------------------------------------------------------------- torch


def test_hutchinson_matches_exact_hessian_trace() -> None:
    """Per-layer and per-channel traces within 10% of torch.autograd.functional.hessian."""
    torch = pytest.importorskip("torch")
    from torch.nn import functional as F

    from milp_map.accuracy.hessian import hutchinson_channel_traces

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 1, 5, 5, generator=gen)
    y = torch.randint(0, 3, (16,), generator=gen)
    conv = torch.randn(3, 1, 3, 3, generator=gen) * 0.5
    fc = torch.randn(27, 3, generator=gen) * 0.3  # stored (in, out): output axis 1

    def loss_of(w_conv: torch.Tensor, w_fc: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(F.relu(F.conv2d(x, w_conv)).flatten(1) @ w_fc, y)

    blocks = torch.autograd.functional.hessian(loss_of, (conv, fc))
    axes = (0, 1)
    exact = []
    for k, (weight, axis) in enumerate(zip((conv, fc), axes, strict=True)):
        diagonal = torch.diagonal(blocks[k][k].reshape(weight.numel(), weight.numel()))
        exact.append(diagonal.reshape(weight.shape).movedim(axis, 0).flatten(1).sum(1).numpy())
    weights = [conv.clone().requires_grad_(True), fc.clone().requires_grad_(True)]
    estimate = hutchinson_channel_traces(
        loss_of(*weights), weights, axes, 2000, torch.Generator().manual_seed(1)
    )
    for est, ref in zip(estimate, exact, strict=True):
        assert est.sum() == pytest.approx(ref.sum(), rel=0.1)
        np.testing.assert_allclose(est, ref, rtol=0.1)


def test_converter_reproduces_onnxruntime() -> None:
    """The torch module's logits equal onnxruntime's on the shipped model and a BN zoo model."""
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    from milp_map.accuracy.onnx_torch import OnnxModule

    for name, shape in ((MODEL, (8, 1, 28, 28)), ("resnet8", (1, 3, 32, 32))):
        proto = model_proto(name)
        x = np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32)
        session = ort.InferenceSession(
            proto.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        expected = session.run(None, {"input": x})[0]
        with torch.no_grad():
            got = OnnxModule(proto, name)(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_shipped_accuracy_is_what_onnxruntime_measures() -> None:
    ort = pytest.importorskip("onnxruntime")
    from milp_map.io.datasets import load_dataset

    data = load_dataset("mnist")
    path = data_path("models", f"{MODEL}.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input": data.x_test})[0]
    accuracy = float(np.mean(logits.argmax(axis=1) == data.y_test))
    provenance = json.loads(data_path("models", f"{MODEL}.json").read_text())
    assert accuracy == pytest.approx(provenance["fp32_test_accuracy"], abs=1e-9)
    assert accuracy >= 0.97


def test_cli_is_reproducible_and_readable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Same seed, same bytes; the file loads with the graph's layer names and channel counts."""
    pytest.importorskip("torch")
    files = []
    for run, seed in enumerate(("0", "0", "1")):
        out = tmp_path / f"scores{run}.csv"
        argv = ["--model", MODEL, "--data", "mnist", "--out", str(out), "--seed", seed]
        assert main([*argv, *FAST, "--platform", "diana", "--per-channel"]) == 0
        files.append(out.read_bytes())
    assert "wrote" in capsys.readouterr().out
    assert files[0] == files[1]
    assert files[0] != files[2]
    scores = load_sensitivity(tmp_path / "scores0.csv")
    graph = load_model(MODEL)
    assert scores.layers == {layer.name for layer in graph.layers()}
    assert {p for _, p in scores.scores} == {"int8", "ternary"}
    for layer in graph.layers():
        assert len(scores.channel_scores[(layer.name, "int8")]) == layer.out_channels
    build_problem(graph, load_platform("diana"), scores, "latency")

    layer_file = tmp_path / "layers.csv"
    argv = ["--model", MODEL, "--data", "mnist", "--out", str(layer_file), "--precisions", "int4"]
    assert main([*argv, *FAST]) == 0
    assert load_sensitivity(layer_file).layers == scores.layers


@pytest.mark.parametrize(
    ("model", "data", "needle"),
    [
        ("no_such_model.onnx", "mnist", "no_such_model.onnx"),
        (MODEL, "no_such_data.npz", "no_such_data.npz"),
        (MODEL, "digits", "expects inputs of shape [N, 1, 28, 28]"),
        ("resnet8", "mnist", "expects inputs of shape [N, 3, 32, 32]"),
    ],
)
def test_bad_model_or_data_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], model: str, data: str, needle: str
) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "s.csv"
    assert main(["--model", model, "--data", data, "--out", str(out), *FAST]) == 2
    assert needle in _one_line_error(capsys.readouterr().err)
    assert not out.exists()


def test_layers_sharing_one_weight_are_refused_by_name(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.ones((2, 2, 3, 3), dtype=np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["a"], name="first", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["b"], name="relu"),
        helper.make_node("Conv", ["b", "W"], ["c"], name="second", pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["d"], name="pool"),
        helper.make_node("Flatten", ["d"], ["y"], name="flat"),
    ]
    graph = helper.make_graph(
        nodes,
        "shared",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        [numpy_helper.from_array(weight, "W")],
    )
    path = tmp_path / "shared.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    npz = tmp_path / "data.npz"
    np.savez(
        npz,
        x_train=np.zeros((4, 2, 4, 4), np.float32),
        y_train=np.zeros(4, np.int64),
        x_test=np.zeros((4, 2, 4, 4), np.float32),
        y_test=np.zeros(4, np.int64),
    )
    out = tmp_path / "scores.csv"
    code = main(["--model", str(path), "--data", str(npz), "--out", str(out), "--probes", "1"])
    assert code == 2
    assert not out.exists()
