"""Quantisation-aware fine-tuning (issue 13): torch quantizers equal the export's, the mapped
model runs the same in torch and onnxruntime, fine-tuning recovers ternary accuracy, is
deterministic, writes what export writes (tags, quantisation grids), and its command lines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from milp_map.accuracy.export import plan_of, rewrite_mapped
from milp_map.accuracy.measure import Measured, drop_interval_pp, predict
from milp_map.cli import finetune as finetune_cli
from milp_map.cli import solve
from milp_map.core.quantize import QUANTIZERS
from milp_map.errors import MilpMapError
from milp_map.io.datasets import Dataset, load_dataset
from milp_map.io.models import shipped_model_path

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.skipif(
    shipped_model_path("mnist_resnet") is None, reason="needs the shipped mnist_resnet model"
)

from milp_map.accuracy import finetune  # noqa: E402  (needs torch for the trainer)
from milp_map.accuracy.fake_quant import TORCH_QUANTIZERS, derive, fake_quantize  # noqa: E402
from milp_map.accuracy.onnx_torch import OnnxModule  # noqa: E402
from milp_map.io.problems import load_problem  # noqa: E402
from milp_map.pipeline import solve as solve_target  # noqa: E402


@pytest.mark.parametrize("precision", list(QUANTIZERS))
def test_torch_quantizers_equal_the_exports(precision: str) -> None:
    rng = np.random.default_rng(1)
    for shape in [(16, 8, 3, 3), (10, 48), (64,), (5, 1, 1, 1)]:
        weight = (rng.standard_normal(shape) * rng.uniform(0.01, 3)).astype(np.float32)
        expected = QUANTIZERS[precision](weight)
        got = TORCH_QUANTIZERS[precision](torch.from_numpy(weight)).numpy()
        if precision == "ternary":  # the channel scale is a sum: summation order, one ulp
            assert np.array_equal(np.sign(got), np.sign(expected))
            np.testing.assert_allclose(got, expected, rtol=1e-6)
        else:
            assert np.array_equal(got, expected)


def test_gradients_pass_the_rounding_straight_through() -> None:
    weight = torch.randn(6, 4, requires_grad=True)
    fake_quantize(weight, "ternary").sum().backward()
    assert torch.equal(weight.grad, torch.ones_like(weight))
    with pytest.raises(MilpMapError, match="no quantizer"):
        fake_quantize(weight, "int3")


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    """mnist's 4,000 training images: one epoch (63 steps) recovers most of the accuracy;
    a few hundred images do not (ten steps of Adam first make the ternary mapping worse)."""
    return load_dataset("mnist")


@pytest.fixture(scope="module")
def split_case():
    """mnist_resnet split per channel on diana at half the proxy range: parts on both units."""
    target = load_problem("mnist_resnet", "diana", max_proxy_fraction=0.5, granularity="channel")
    solution = solve_target(target, "cpsat").solution
    problem = target.base
    plan = plan_of(problem, solution.mapping)
    assert any(len(parts) > 1 for parts in plan.values())
    return problem.graph, plan


def test_the_mapped_model_runs_the_same_in_torch_and_onnxruntime(split_case, mnist) -> None:
    graph, plan = split_case
    mapped = rewrite_mapped(graph.model, graph, plan, calibration=mnist.x_train[:256])
    ops = {node.op_type for node in mapped.model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Concat"} <= ops
    images = mnist.x_test[:64]
    with torch.no_grad():
        ours = OnnxModule(mapped.model)(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(ours, predict(mapped.model, images), rtol=1e-4, atol=1e-4)
    initializers = {t.name: numpy_helper.to_array(t) for t in mapped.model.graph.initializer}
    sources = {t.name: numpy_helper.to_array(t) for t in graph.model.graph.initializer}
    for name, rule in mapped.derived.items():
        value = derive(rule, torch.tensor(sources[rule.source])).detach().numpy()
        np.testing.assert_allclose(value, initializers[name], rtol=1e-6, atol=1e-7)


@pytest.fixture(scope="module")
def tuned(split_case, mnist):
    graph, plan = split_case
    lines: list[str] = []
    report = finetune.finetune_and_measure(
        graph.model, graph, plan, mnist, finetune.FineTuneSettings(epochs=1), lines.append
    )
    return report, lines


def test_finetuning_recovers_what_ternary_rounding_loses(tuned) -> None:
    report, lines = tuned
    assert lines and lines[0].startswith("fine-tune epoch 1/1: train loss")
    reference, before, after = report.reference, report.post_training, report.after_finetune
    assert before.top1 < reference.top1 - 0.2  # ternary post-training rounding costs >20 points
    assert after.top1 > before.top1 + 0.2
    assert len(report.finetuned.train_loss) == 1


def test_the_finetuned_model_is_written_as_export_writes_it(split_case, tuned) -> None:
    graph, plan = split_case
    model = tuned[0].finetuned.model
    exported = rewrite_mapped(graph.model, graph, plan, calibration=np.zeros((1, 1, 28, 28)))
    onnx.checker.check_model(model)

    def tags(proto: onnx.ModelProto) -> list[tuple[str, dict[str, str]]]:
        return [(n.name, {p.key: p.value for p in n.metadata_props}) for n in proto.graph.node]

    assert tags(model) == tags(exported.model)
    props = {p.key: p.value for p in model.metadata_props}
    assert "straight-through QAT" in props["milp_map.finetune"]
    initializers = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    ternary = [n for n, r in exported.derived.items() if r.precision == "ternary"]
    assert ternary
    for name in ternary:  # re-quantised after training: {-a, 0, +a} per output channel
        rule = exported.derived[name]
        out_first = np.moveaxis(initializers[name], rule.weight_axis, 0)
        for channel in out_first.reshape(out_first.shape[0], -1):
            assert len(np.unique(np.abs(channel))) <= 2


def test_finetuning_is_deterministic(split_case, mnist) -> None:
    graph, plan = split_case
    x, y = mnist.x_train[:128], mnist.y_train[:128]
    small = Dataset(mnist.name, x, y, x[:8], y[:8])
    settings = finetune.FineTuneSettings(epochs=1, seed=3)
    first = finetune.finetune_mapped(graph.model, graph, plan, small, settings)
    second = finetune.finetune_mapped(graph.model, graph, plan, small, settings)
    assert first.model.SerializeToString() == second.model.SerializeToString()
    assert first.train_loss == second.train_loss
    zero = finetune.finetune_mapped(graph.model, graph, plan, small, finetune.FineTuneSettings(0))
    images = finetune.calibration_images(small)
    exported = rewrite_mapped(graph.model, graph, plan, calibration=images)
    assert [t.SerializeToString() for t in zero.model.graph.initializer] == [
        t.SerializeToString() for t in exported.model.graph.initializer
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"epochs": -1}, "integer >= 0"),
        ({"learning_rate": 0.0}, "--learning-rate"),
        ({"batch_size": 0}, "--train-batch-size"),
        ({"seed": 2**64}, "seed"),
    ],
)
def test_bad_settings_are_one_line_errors(fields: dict, message: str) -> None:
    with pytest.raises(MilpMapError, match=message):
        finetune.FineTuneSettings(**fields)


def test_a_dataset_without_training_images_is_refused(split_case, mnist) -> None:
    graph, plan = split_case
    empty = Dataset("test-only", mnist.x_train[:0], mnist.y_train[:0], mnist.x_test, mnist.y_test)
    with pytest.raises(MilpMapError, match="no training split"):
        finetune.finetune_mapped(graph.model, graph, plan, empty)


def test_drop_intervals_are_paired_and_never_empty() -> None:
    right = np.ones(1000, dtype=bool)

    def measured(correct: np.ndarray) -> Measured:
        return Measured(float(correct.mean()), len(correct), 0.0, correct)

    low, high = drop_interval_pp(measured(right), measured(right))
    assert low < 0 < high and high - low < 0.5  # nothing changed: a narrow interval around 0
    worse = right.copy()
    worse[:60] = False
    low, high = drop_interval_pp(measured(right), measured(worse))
    assert 3.0 < low < 6.0 < high < 8.0
    with pytest.raises(MilpMapError, match="same inputs"):
        drop_interval_pp(measured(right), measured(right[:10]))


# ----------------------------------------------------------------------------- command lines


def _mapping(tmp_path: Path) -> Path:
    out = tmp_path / "m.json"
    argv = ["--model", "mnist_resnet", "--platform", "diana", "--quiet", "--out", str(out)]
    assert solve.main(argv) == 0
    return out


def test_finetune_cli_writes_the_model_and_reports_both_accuracies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = _mapping(tmp_path)
    capsys.readouterr()
    data = tmp_path / "small.npz"
    full = load_dataset("mnist")
    np.savez(
        data,
        x_train=full.x_train[:256],
        y_train=full.y_train[:256],
        x_test=full.x_test[:200],
        y_test=full.y_test[:200],
    )
    out = tmp_path / "ft.onnx"
    argv = ["--mapping", str(mapping), "--data", str(data), "--epochs", "1", "--out", str(out)]
    assert finetune_cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "fine-tune epoch 1/1" in captured.err
    assert "post-training: top-1" in captured.out and "after fine-tuning: top-1" in captured.out
    assert "95% CI" in captured.out
    model = onnx.load(out)
    properties = {p.key: p.value for p in model.metadata_props}
    assert "milp_map.finetune" in properties
    # the provenance export writes is kept
    assert properties["milp_map.model"] == "mnist_resnet"
    assert properties["milp_map.platform"] == "diana"
    assert properties["milp_map.mapping"] == str(mapping)
    assert predict(model, full.x_test[:4]).shape == (4, 10)


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    full = load_dataset("mnist")
    np.savez(path, x_test=full.x_test[:50], y_test=full.y_test[:50], **arrays)
    return path


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"x_train": "images"}, "0 training labels"),
        ({"x_train": "images", "y_train": "short"}, "training labels"),
        ({"x_train": "images", "y_train": "labels+10"}, "model has 10 outputs"),
        ({"x_train": "small", "y_train": "labels"}, "model takes 1x28x28"),
    ],
)
def test_a_bad_training_split_is_named_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], train: dict, message: str
) -> None:
    full = load_dataset("mnist")
    arrays = {
        "images": full.x_train[:64],
        "small": full.x_train[:64, :, :8, :8],
        "labels": full.y_train[:64],
        "short": full.y_train[:10],
        "labels+10": full.y_train[:64] + 10,
    }
    data = _npz(tmp_path / "bad.npz", **{key: arrays[name] for key, name in train.items()})
    mapping = _mapping(tmp_path)
    capsys.readouterr()
    argv = ["--mapping", str(mapping), "--data", str(data), "--out", str(tmp_path / "x.onnx")]
    assert finetune_cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "epoch" not in err


def test_outputs_never_overwrite_the_mapping_or_the_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = _mapping(tmp_path)
    before = mapping.read_bytes()
    capsys.readouterr()
    assert finetune_cli.main(["--mapping", str(mapping), "--out", str(mapping)]) == 2
    assert "mapping file itself" in capsys.readouterr().err
    assert mapping.read_bytes() == before
    result = str(tmp_path / "r.json")
    argv = ["--model", "mnist_resnet", "--finetune", "1", "--out", result, "--finetune-out", result]
    assert solve.main(argv) == 2
    assert "also --out" in capsys.readouterr().err


def test_missing_torch_is_one_line(tmp_path: Path) -> None:
    """With torch unimportable, fine-tuning says how to install it (exit 2), no traceback."""
    import subprocess
    import sys

    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('blocked for the test')\n")
    mapping = _mapping(tmp_path)
    env = {**__import__("os").environ, "PYTHONPATH": str(blocker)}
    command = [sys.executable, "-m", "milp_map.finetune", "--mapping", str(mapping)]
    run = subprocess.run(
        [*command, "--out", str(tmp_path / "x.onnx")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 2, run.stderr
    assert "pip install 'milp_map[torch]'" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--epochs", "-2"], "--epochs must be >= 1"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--learning-rate", "-1"], "--learning-rate"),
        (["--data", "nowhere.npz"], "unknown dataset"),
    ],
)
def test_finetune_cli_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    mapping = _mapping(tmp_path)
    capsys.readouterr()
    argv = ["--mapping", str(mapping), "--out", str(tmp_path / "x.onnx"), *extra]
    assert finetune_cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--finetune", "0"], ">= 1 epochs"),
        (["--finetune-out", "x.onnx"], "needs --finetune"),
        (["--finetune", "1", "--pareto", "latency,energy"], "drop --pareto"),
        (["--finetune", "1", "--schedule", "concurrent"], "sequential only"),
    ],
)
def test_solve_finetune_flag_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert solve.main(["--model", "mnist_resnet", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_solve_finetune_writes_the_model_beside_the_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.json"
    argv = ["--model", "mnist_resnet", "--finetune", "1", "--quiet", "--out", str(out)]
    assert solve.main(argv) == 0
    entry = json.loads(out.read_text())["finetune"]
    assert entry["recipe"].startswith("qat epochs=1")
    assert entry["top1"] > entry["post_training_top1"]
    assert Path(entry["model_file"]) == tmp_path / "m.finetuned.onnx"
    assert (tmp_path / "m.finetuned.onnx").is_file()
    assert "fine-tuned 1 epoch in" in capsys.readouterr().out


# ----------------------------------------------------------------------------- calibration


QAT3 = finetune.FineTuneSettings(epochs=3)


def test_each_recipe_gets_its_own_calibration_file() -> None:
    from milp_map.accuracy.calibration import calibration_path

    default = calibration_path("mnist_resnet", "diana", finetune=QAT3)
    assert default.name == "mnist_resnet__diana__qat3.json"
    other = calibration_path("mnist_resnet", "diana", finetune=finetune.FineTuneSettings(3, seed=1))
    assert other.name.startswith("mnist_resnet__diana__qat3_") and other != default


def test_shipped_qat_calibration_is_current_and_recovers_the_ternary_loss() -> None:
    """Refit after changing the model, its scores or the recipe: `python -c "from
    milp_map.accuracy.calibration import load_calibration as f; from milp_map.accuracy.finetune
    import FineTuneSettings as S; f('mnist_resnet', 'diana', refit=True, finetune=S(3))"`."""
    from milp_map.accuracy import calibration

    qat = calibration.cached_calibration("mnist_resnet", "diana", finetune=QAT3)
    ptq = calibration.cached_calibration("mnist_resnet", "diana")
    assert qat is not None and ptq is not None, "a shipped calibration is stale or missing"
    assert qat.finetune == QAT3.key() and ptq.finetune == ""
    for granularity in calibration.GRANULARITIES:
        x, y = qat.curve(granularity)
        assert np.all(np.diff(x) > 0) and np.all(np.diff(y) >= 0)
        top = float(x[-1])
        assert ptq.drop_at(top, granularity) > 50 > 5 > qat.drop_at(top, granularity)


def test_predictions_say_whether_the_mapping_is_of_the_curves_kind() -> None:
    from milp_map.accuracy import calibration

    problem = calibration.make_problem("mnist_resnet", "diana")
    fit = calibration.cached_calibration("mnist_resnet", "diana")
    assert fit is not None
    ((_, optimum),) = calibration.optimal_mappings(problem, (0.2,))
    message = calibration.predict_mapping(problem, optimum, fit).message()
    assert message.endswith("this mapping is one")
    (_, random), *_ = calibration.random_layer_mappings(problem, 2, seed=5)
    prediction = calibration.predict_mapping(problem, random, fit)
    assert not prediction.is_optimum
    assert prediction.optimum_latency_s < prediction.latency_s
    assert "is not one" in prediction.message() and "trust the measurement" in prediction.message()


def test_solve_budgets_from_the_qat_calibration_and_checks_after_finetuning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.json"
    argv = ["--model", "mnist_resnet", "--max-accuracy-drop", "0.5", "--finetune", "3"]
    code = solve.main([*argv, "--quiet", "--out", str(out)])
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    accuracy, tuned = data["accuracy"], data["finetune"]
    assert code == (1 if accuracy["exceeded"] else 0)
    assert accuracy["finetune"] == QAT3.key() == tuned["recipe"]
    assert "(calibrated after 3 epochs of fine-tuning)" in printed
    assert "measured top-1 after fine-tuning" in printed and "500 held-out" in printed
    low, high = accuracy["drop_interval_pp"]
    assert low <= accuracy["drop_pp"] <= high
    # the post-QAT budget admits far more analog work than the post-training one would
    from milp_map.accuracy import calibration

    ptq_budget = calibration.proxy_budget_for_drop("mnist_resnet", "diana", 0.5)
    assert data["constraints"]["max_proxy"] > 2 * ptq_budget


def test_evaluate_prints_the_calibrated_prediction_and_its_caveat(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from milp_map.cli import evaluate

    mapping = _mapping(tmp_path)
    capsys.readouterr()
    assert evaluate.main(["--mapping", str(mapping), "--data", "mnist"]) == 0
    out = capsys.readouterr().out
    assert "95% CI" in out
    assert "calibration (post-training, layer) predicts" in out and "this mapping is one" in out
