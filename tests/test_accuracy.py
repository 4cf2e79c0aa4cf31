"""Measured accuracy: top-1 through onnxruntime (batched = one by one), the evaluate CLI, and
the proxy -> drop calibration (monotone fit, inversion, measured points of the real model)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from milp_map.accuracy import calibration
from milp_map.accuracy.measure import measure, predict, top1_accuracy
from milp_map.cli import evaluate, solve
from milp_map.errors import MilpMapError
from milp_map.io.models import shipped_model_path

pytest.importorskip("onnxruntime")


def _linear_model(weight: np.ndarray) -> onnx.ModelProto:
    """logits = x @ weight.T, batch dimension symbolic."""
    n_out, n_in = weight.shape
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["logits"], transB=1)],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n_in])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", n_out])],
        initializer=[numpy_helper.from_array(weight.astype(np.float32), "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_top1_counts_argmax_hits_in_any_batch_size() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((101, 4)).astype(np.float32)
    model = _linear_model(np.eye(4))
    labels = x.argmax(axis=1)
    labels[:25] = (labels[:25] + 1) % 4  # exactly 25 wrong
    assert top1_accuracy(model, x, labels) == pytest.approx(76 / 101)
    for batch in (1, 7, 1000):
        assert np.array_equal(predict(model, x, batch_size=batch), x)
    result = measure(model, x, labels, batch_size=10)
    assert result.n_samples == 101 and result.mean_loss > 0


def test_bad_labels_are_one_line_errors() -> None:
    model = _linear_model(np.eye(3))
    x = np.zeros((4, 3), dtype=np.float32)
    with pytest.raises(MilpMapError, match="labels go up to 5"):
        measure(model, x, np.array([0, 1, 2, 5]))
    with pytest.raises(MilpMapError, match="as many labels"):
        measure(model, x, np.array([0, 1]))


def test_evaluate_cli_reports_accuracy_next_to_the_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = tmp_path / "m.json"
    assert solve.main(["--model", "resnet8", "--quiet", "--out", str(mapping)]) == 0
    rng = np.random.default_rng(0)
    data = tmp_path / "random.npz"
    np.savez(
        data,
        x_test=rng.standard_normal((8, 3, 32, 32)).astype(np.float32),
        y_test=rng.integers(0, 10, 8),
    )
    capsys.readouterr()
    report = tmp_path / "top1.json"
    assert (
        evaluate.main(["--mapping", str(mapping), "--data", str(data), "--out", str(report)]) == 0
    )
    out = capsys.readouterr().out
    assert "top-1" in out and "drop" in out and "latency" in out and "proxy" in out
    written = json.loads(report.read_text())
    assert written["n_samples"] == 8 and 0 <= written["top1"] <= 1
    assert written["drop_pp"] == pytest.approx(100 * (written["fp32_top1"] - written["top1"]))
    assert f"{100 * written['top1']:.2f}%" in out
    assert "95% CI" in out and "calibration" not in out  # resnet8 has no calibration
    assert evaluate.main(["--mapping", str(mapping), "--data", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown dataset 'nope'")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04junkjunk", "not a readable .npz file (File is not a zip file)"),
        (b"not numpy at all", "not a readable .npz file"),
        ({"x_test": np.full((4, 3, 8, 8), np.nan)}, "x_test has 768 of 768 values NaN"),
        ({"x_test": np.zeros((4, 3)), "y_test": [0.5, 1, 2, 3]}, "y_test must be a vector"),
        ({"x_test": np.zeros((4, 3)), "y_test": [0, 1, -2, 3]}, "integers >= 0"),
        ({"x_test": np.array(["a", "b"]), "y_test": [0, 1]}, "x_test must hold numeric images"),
        ({"x_test": np.zeros((4, 3)), "y_test": [0, 1]}, "x_test has 4 rows but y_test has 2"),
    ],
    ids=["bad-zip", "not-zip", "all-nan", "float-labels", "negative-labels", "text", "rows"],
)
def test_a_broken_npz_is_one_line(tmp_path: Path, content: bytes | dict, message: str) -> None:
    from milp_map.io.datasets import load_dataset

    path = tmp_path / "data.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        np.savez(path, **{"y_test": np.zeros(4, np.int64), **content})
    with pytest.raises(MilpMapError) as info:
        load_dataset(str(path))
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text, text


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    x_shape=st.lists(st.integers(1, 3), min_size=1, max_size=4),
    n_images=st.integers(1, 3),
    poison=st.sampled_from([None, np.nan, np.inf]),
)
def test_any_npz_loads_clean_or_is_one_line(
    x_shape: list[int], n_images: int, poison: float | None
) -> None:
    """Random image shapes and poisoned pixels: a loaded dataset has finite float32 images
    and int64 labels, one per image, else the error is one line naming the file."""
    from milp_map.io.datasets import load_dataset

    with tempfile.TemporaryDirectory() as folder:  # a fresh path per example: loads are cached
        path = Path(folder) / "data.npz"
        images = np.zeros((n_images, *x_shape), np.float64)
        if poison is not None:
            images.flat[-1] = poison
        np.savez(path, x_test=images, y_test=np.arange(n_images))
        try:
            dataset = load_dataset(str(path))
        except MilpMapError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc)
            assert poison is not None
            return
    assert poison is None and np.isfinite(dataset.x_test).all()
    assert dataset.x_test.dtype == np.float32 and dataset.y_test.dtype == np.int64
    assert len(dataset.x_test) == len(dataset.y_test) == n_images


def test_images_of_another_shape_than_the_model_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """evaluate and export: a dataset whose images do not fit the model's input is one
    line and exit 2 (onnxruntime's own complaint was a traceback)."""
    from milp_map.cli import export

    mapping = tmp_path / "m.json"
    assert solve.main(["--model", "resnet8", "--quiet", "--out", str(mapping)]) == 0
    data = tmp_path / "small.npz"
    np.savez(data, x_test=np.zeros((4, 1, 8, 8), np.float32), y_test=np.arange(4))
    capsys.readouterr()
    for run, extra in (
        (evaluate.main, []),
        (evaluate.main, ["--activations", "none"]),
        (export.main, ["--out", str(tmp_path / "m.onnx")]),
    ):
        assert run(["--mapping", str(mapping), "--data", str(data), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert "have shape 1x8x8, but the model's input 'input' takes 3x32x32" in err, err
        assert "\n" not in err


def test_isotonic_fit_is_monotone_and_least_squares() -> None:
    fitted = calibration.isotonic([3, 1, 2, 4], [5.0, 1.0, 3.0, 2.0])
    assert np.allclose(fitted, [3.5, 1.0, 3.0, 3.5])  # x order 1,2,3,4 -> 1, 3, 3.5, 3.5
    rng = np.random.default_rng(0)
    x = rng.random(40)
    y = x + rng.normal(0, 0.3, 40)
    fit = calibration.isotonic(x, y)[np.argsort(x)]
    assert np.all(np.diff(fit) >= -1e-12)


def _calibration(proxy: list[float], drop: list[float]) -> calibration.Calibration:
    fitted = calibration.isotonic(proxy, drop)
    return calibration.Calibration(
        model="m",
        platform="p",
        sensitivity="s",
        sensitivity_sha256="",
        model_sha256="",
        data="d",
        activations=True,
        reference_top1=0.99,
        proxy_high=100.0,
        names=tuple(f"p{k}" for k in range(len(proxy))),
        granularity=("layer",) * len(proxy),
        proxy=tuple(proxy),
        drop_pp=tuple(drop),
        fitted_pp=tuple(float(v) for v in fitted),
    )


def test_budget_inverts_the_fitted_curve() -> None:
    fit = _calibration([0.0, 1.0, 2.0, 4.0, 8.0], [0.0, 0.5, 0.3, 2.0, 10.0])
    for drop in (0.0, 0.4, 1.0, 5.0):
        budget = fit.proxy_budget(drop)
        assert fit.drop_at(budget) == pytest.approx(drop) or fit.drop_at(budget) <= drop
        assert fit.drop_at(budget + 1e-6) > drop - 1e-9
    assert fit.proxy_budget(10.0) == 100.0  # above every point: no effective budget
    assert fit.proxy_budget(0.0) == 0.0
    with pytest.raises(MilpMapError, match="no channel points"):
        fit.proxy_budget(1.0, "channel")
    with pytest.raises(MilpMapError, match="max-accuracy-drop"):
        calibration.proxy_budget_for_drop("m", "p", -1.0)


@pytest.mark.skipif(shipped_model_path("mnist_resnet") is None, reason="needs the shipped model")
def test_real_model_points_are_measured_and_verified() -> None:
    fit = calibration.fit_calibration(
        "mnist_resnet", "diana", fractions=(0.0, 1.0), n_random=1, sensitivity="data-free"
    )
    layer = [k for k, g in enumerate(fit.granularity) if g == "layer"]
    proxies, drops = [fit.proxy[k] for k in layer], [fit.drop_pp[k] for k in layer]
    assert len(layer) >= 3 and proxies == sorted(proxies)
    assert drops[0] < 2.0 < drops[-1]  # all-int8 keeps the accuracy, ternary weights do not
    assert "channel" in fit.granularity
    json.dumps(fit.__dict__)  # cacheable as JSON
    problem = calibration.make_problem("mnist_resnet", "diana", "data-free", max_proxy_fraction=0)
    optimum = calibration.optimal_mappings(problem, (0.0,))[0][1]
    check = calibration.verify_drop(problem, optimum, max_drop=2.0, calibration=fit)
    assert not check.exceeded and "within --max-accuracy-drop 2" in check.message()


@pytest.mark.skipif(
    not calibration.calibration_path("mnist_resnet", "diana").is_file(),
    reason="no shipped calibration",
)
def test_shipped_calibration_matches_the_shipped_model_and_scores() -> None:
    """Retraining the model or recomputing its scores needs a refit: `python -c "from
    milp_map.accuracy.calibration import load_calibration as f;
    f('mnist_resnet', 'diana', refit=True)"`."""
    fit = calibration.read_calibration(calibration.calibration_path("mnist_resnet", "diana"))
    assert calibration.is_current(fit)
    for granularity in calibration.GRANULARITIES:
        x, y = fit.curve(granularity)
        assert np.all(np.diff(x) > 0) and np.all(np.diff(y) >= 0)


def test_each_dataset_and_score_file_gets_its_own_calibration_file() -> None:
    paths = {
        calibration.calibration_path("mnist_resnet", "diana"),
        calibration.calibration_path("mnist_resnet", "diana", data="digits"),
        calibration.calibration_path("mnist_resnet", "diana", scores="0123456789abcdef"),
    }
    assert len(paths) == 3
    assert calibration.calibration_path("mnist_resnet", "diana").name == "mnist_resnet__diana.json"


def test_fit_and_holdout_halves_split_the_test_images() -> None:
    from milp_map.io.datasets import load_dataset

    dataset = load_dataset("digits")
    fit_x, fit_y = calibration.held_images(dataset, "fit")
    held_x, held_y = calibration.held_images(dataset, "holdout")
    assert len(fit_y) + len(held_y) == len(dataset.y_test)
    together = np.concatenate([fit_x, held_x]).reshape(len(dataset.y_test), -1)
    assert len(np.unique(together, axis=0)) == len(
        np.unique(dataset.x_test.reshape(len(dataset.y_test), -1), axis=0)
    )
    assert set(np.unique(fit_y)) == set(np.unique(held_y))  # every class in both halves
    with pytest.raises(MilpMapError, match="unknown test part"):
        calibration.held_images(dataset, "train")
