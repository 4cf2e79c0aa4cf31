"""`python -m milp_map.solve` end to end: results, the JSON file, and one-line errors (exit 2)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from milp_map.cli.common import load_target
from milp_map.cli.solve import main, parse_args
from milp_map.core.solution import Part
from milp_map.evaluation.evaluator import evaluate
from milp_map.formulations import layerwise
from milp_map.io.models import load_model
from milp_map.io.scores import data_free_sensitivity

REPO = Path(__file__).resolve().parent.parent


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str) -> str:
    """The CLI's error output: exactly one line starting with 'error: '."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def _solve_json(capsys, tmp_path: Path, *argv: str) -> tuple[dict, list[str]]:
    out = tmp_path / "result.json"
    args = [*argv, "--quiet", "--out", str(out)]
    code, stdout, _ = _run(capsys, *args)
    assert code == 0, stdout
    assert f"wrote {out}" in stdout
    return json.loads(out.read_text()), args


def _check_json_against_evaluator(data: dict, args: list[str]) -> None:
    """The file's metrics are what the evaluator gives for the mapping the file lists."""
    for key in ("status", "objective", "objective_value", "best_bound", "solver", "solve_time_s"):
        assert key in data, key
    assert set(data["metrics"]) >= {"latency_s", "energy_j", "accuracy_proxy"}
    parsed = parse_args(args)
    problem = load_target(parsed, parsed.model)
    assert [entry["name"] for entry in data["layers"]] == [
        layer for unit in problem.units for layer in unit.layers
    ]
    mapping: dict[str, tuple[Part, ...]] = {}
    for entry in data["layers"]:
        layer = problem.graph.layer(entry["name"])
        assert entry["split"] == {entry["accelerator"]: layer.out_channels}
        point = (entry["operating_point"] or {}).get(entry["accelerator"])
        part = Part(entry["accelerator"], point)
        unit = problem.units[problem.unit_of_layer[entry["name"]]].name
        assert mapping.setdefault(unit, (part,)) == (part,), "a unit's layers share a part"
    metrics = evaluate(problem, mapping).metrics
    assert data["metrics"]["latency_s"] == pytest.approx(metrics.latency_s, rel=1e-12)
    assert data["metrics"]["energy_j"] == pytest.approx(metrics.energy_j, rel=1e-12)
    assert data["metrics"]["accuracy_proxy"] == pytest.approx(metrics.accuracy_proxy, rel=1e-12)
    assert data["objective_value"] == pytest.approx(metrics.value(data["objective"]), rel=1e-12)
    assert data["best_bound"] <= data["objective_value"] * (1 + 1e-6)
    assert data["best_bound"] >= data["objective_value"] * (1 - 1e-6)


# ----------------------------------------------------------------------------- results


def test_default_run_is_optimal(capsys) -> None:
    code, out, err = _run(capsys)
    assert code == 0, err
    assert "model resnet20" in out and "platform diana" in out
    assert "status optimal" in out
    assert "all-digital" in out  # the single-accelerator comparison


def test_out_json_schema_and_metrics_match_the_evaluator(capsys, tmp_path: Path) -> None:
    data, args = _solve_json(capsys, tmp_path, "--model", "resnet8", "--objective", "energy")
    assert data["status"] == "optimal"
    assert data["objective"] == "energy"
    assert data["solver"] == "highs"  # --solver auto, layer-wise
    assert data["model"] == "resnet8" and data["platform"] == "diana"
    assert data["metrics"]["accuracy_proxy"] <= data["constraints"]["proxy_budget"] * (1 + 1e-6)
    _check_json_against_evaluator(data, args)


def test_highs_and_cpsat_agree_on_resnet8(capsys, tmp_path: Path) -> None:
    values = {}
    for solver in ("cpsat", "highs"):
        data, _ = _solve_json(capsys, tmp_path, "--model", "resnet8", "--solver", solver)
        assert data["status"] == "optimal"
        assert data["solver"] == solver
        values[solver] = data["objective_value"]
    assert values["cpsat"] == pytest.approx(values["highs"], rel=1e-6)


def test_rockpi_solves_mobilenet_v1_with_groups_and_dvfs(capsys, tmp_path: Path) -> None:
    data, args = _solve_json(
        capsys, tmp_path, "--model", "mobilenet_v1", "--platform", "rockpi-n10"
    )
    assert data["status"] == "optimal"
    assert data["platform"] == "rockpi-n10"
    assert any(entry["operating_point"] for entry in data["layers"])
    assert len({entry["unit"] for entry in data["layers"]}) < len(data["layers"])
    _check_json_against_evaluator(data, args)


def test_module_entry_point(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "milp_map.solve", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "status optimal" in done.stdout


# ----------------------------------------------------------------------------- errors


def test_infeasible_latency_names_the_bound_and_the_best_reachable(capsys) -> None:
    code, out, err = _run(capsys, "--model", "resnet8", "--max-latency", "1e-9", "--quiet")
    assert code == 2
    assert out == ""
    line = _one_line_error(err)
    assert "--max-latency 1e-09 is unreachable" in line
    # the lowest latency under the default proxy budget, solved independently
    problem = load_target(parse_args(["--model", "resnet8"]), "resnet8")
    best = layerwise.solve(problem, "highs", objective="latency")
    assert best.status == "optimal"
    reported = re.search(r"lowest latency under the other bounds is (\S+)$", line)
    assert reported is not None, line
    assert float(reported.group(1)) == pytest.approx(best.objective_value, rel=1e-5)


def test_two_unreachable_bounds_are_both_named(capsys) -> None:
    code, _, err = _run(
        capsys, "--model", "resnet8", "--max-latency", "1e-9", "--max-energy", "1e-12"
    )
    assert code == 2
    line = _one_line_error(err)
    assert "--max-latency 1e-09 is unreachable: the lowest latency is" in line
    assert "--max-energy 1e-12 is unreachable: the lowest energy is" in line


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--model", "resnet9000"], "unknown model 'resnet9000'"),
        (["--platform", "{tmp}/nope.yaml"], "nope.yaml: platform file not found"),
        (["--platform", "tpu9"], "unknown platform 'tpu9'"),
        (["--model", "resnet8", "--out", "{tmp}"], "is a directory"),
        (["--model", "resnet8", "--out", "{tmp}/no/such/dir/r.json"], "does not exist"),
        (
            ["--model", "resnet8", "--max-latency", "-1"],
            "--max-latency must be a finite number >= 0",
        ),
        (["--model", "resnet8", "--sensitivity", "{tmp}/none.csv"], "sensitivity file not found"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(capsys, tmp_path: Path, argv, expected) -> None:
    code, out, err = _run(capsys, *(a.replace("{tmp}", str(tmp_path)) for a in argv))
    assert code == 2
    assert out == ""  # nothing is solved before the input is known to be good
    assert expected in _one_line_error(err)


def _resnet8_scores(tmp_path: Path, keep) -> Path:
    graph = load_model("resnet8")
    scores = data_free_sensitivity(graph, ["int8", "ternary"]).scores
    path = tmp_path / "scores.csv"
    path.write_text(
        "layer,precision,score\n"
        + "".join(f"{layer},{p},{s}\n" for (layer, p), s in scores.items() if keep(layer, p))
    )
    return path


def test_a_sensitivity_file_missing_a_precision_names_layer_and_precision(
    capsys, tmp_path: Path
) -> None:
    path = _resnet8_scores(
        tmp_path, lambda layer, p: (layer, p) != ("stage1_block1/conv2", "ternary")
    )
    code, _, err = _run(capsys, "--model", "resnet8", "--sensitivity", str(path))
    assert code == 2
    line = _one_line_error(err)
    assert str(path) in line
    assert "layer 'stage1_block1/conv2'" in line and "precision 'ternary'" in line


def test_a_sensitivity_file_of_another_model(capsys, tmp_path: Path) -> None:
    path = _resnet8_scores(tmp_path, lambda layer, p: True)
    path.write_text(path.read_text() + "stage4_block9/conv1,int8,0.5\n")
    code, _, err = _run(capsys, "--model", "resnet8", "--sensitivity", str(path))
    assert code == 2
    assert "does not have: 'stage4_block9/conv1'" in _one_line_error(err)


def test_a_malformed_sensitivity_file(capsys, tmp_path: Path) -> None:
    path = tmp_path / "scores.csv"
    path.write_text("layer,precision,score\nstem/conv,int8,lots\n")
    code, _, err = _run(capsys, "--model", "resnet8", "--sensitivity", str(path))
    assert code == 2
    assert "row 2: score is not a number: 'lots'" in _one_line_error(err)


def test_an_onnx_file_with_an_unsupported_op(capsys, tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.zeros((1, 64, 8), np.float32), "W")
    r = numpy_helper.from_array(np.zeros((1, 64, 16), np.float32), "R")
    lstm = helper.make_node("LSTM", ["x", "W", "R"], ["y"], name="rnn1", hidden_size=16)
    graph = helper.make_graph([lstm], "rnn", [x], [y], [w, r])
    path = tmp_path / "rnn.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    code, _, err = _run(capsys, "--model", str(path))
    assert code == 2
    line = _one_line_error(err)
    assert "rnn.onnx" in line and "'rnn1'" in line and "LSTM" in line


def test_a_bad_platform_yaml(capsys, tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: p\naccelerators:\n  - {name: a, precision: int8, cost: {model: x}}\n")
    code, _, err = _run(capsys, "--model", "resnet8", "--platform", str(path))
    assert code == 2
    line = _one_line_error(err)
    assert str(path) in line and "accelerators[0].cost" in line and "unknown cost model 'x'" in line


def test_channel_granularity_default_run_reports_splits_and_odimo_baselines(capsys) -> None:
    """The issue's default: ResNet-20 on DIANA, split per layer, gains over ODiMO's manual maps."""
    code, out, _ = _run(capsys, "--granularity", "channel")
    assert code == 0
    assert "status optimal" in out
    assert re.search(r"analog:\d+ digital:\d+", out), "no layer was split"
    for name in ("all-digital", "all-analog-except-unsupported", "first-last-digital-rest-analog"):
        assert name in out


def test_channel_json_lists_channel_indices_that_partition_each_split_layer(
    capsys, tmp_path: Path
) -> None:
    data, _ = _solve_json(capsys, tmp_path, "--model", "resnet8", "--granularity", "channel")
    assert data["granularity"] == "channel" and data["group_size"] == 8
    split_layers = [e for e in data["layers"] if len(e["split"]) == 2]
    assert split_layers
    graph = load_model("resnet8")
    for entry in split_layers:
        channels = graph.layer(entry["name"]).out_channels
        indices = sorted(c for part in entry["channels"].values() for c in part)
        assert indices == list(range(channels))
        assert sum(entry["split"].values()) == channels
        assert all(n % 8 == 0 for n in entry["split"].values())


def test_pareto_writes_csv_json_png_and_every_point_is_proven(capsys, tmp_path: Path) -> None:
    prefix = tmp_path / "front.json"
    code, _, _ = _run(
        capsys, "--model", "resnet8", "--pareto", "energy,proxy", "--out", str(prefix), "--quiet"
    )
    assert code == 0
    for suffix in (".csv", ".json", ".png"):
        assert (tmp_path / f"front{suffix}").stat().st_size > 0
    data = json.loads((tmp_path / "front.json").read_text())
    statuses = {p["status"] for p in data["points"]}
    assert statuses == {"optimal"} and len(data["points"]) >= 3
    energies = [p["metrics"]["energy_j"] for p in data["points"]]
    proxies = [p["metrics"]["accuracy_proxy"] for p in data["points"]]
    assert energies == sorted(energies) and proxies == sorted(proxies, reverse=True)


def test_a_long_front_prints_evenly_spaced_rows_and_writes_them_all(capsys, tmp_path: Path) -> None:
    """MobileNetV1 / rockpi-n10 has 233 points; the terminal gets SHOWN_FRONT_ROWS of them,
    both ends included, and the CSV every one."""
    from milp_map.cli.solve import SHOWN_FRONT_ROWS

    prefix = tmp_path / "front.json"
    argv = ["--model", "mobilenet_v1", "--platform", "rockpi-n10", "--pareto", "latency,energy"]
    code, out, _ = _run(capsys, *argv, "--out", str(prefix))
    assert code == 0
    rows = (tmp_path / "front.csv").read_text().splitlines()[1:]
    assert len(rows) > SHOWN_FRONT_ROWS
    assert f"({SHOWN_FRONT_ROWS} of {len(rows)} points shown" in out
    table = out.split("solve_time_s")[1].split("(")[0].strip().splitlines()
    assert len(table) == SHOWN_FRONT_ROWS
    first, last = (float(line.split()[0]) for line in (table[0], table[-1]))
    latencies = [float(r.split(",")[0]) for r in rows]
    assert first == pytest.approx(min(latencies), rel=1e-5)
    assert last == pytest.approx(max(latencies), rel=1e-5)


def test_a_front_thinned_on_request_exits_0(capsys, tmp_path) -> None:
    out = tmp_path / "f"
    args = ("--model", "resnet8", "--pareto", "latency,proxy", "--points", "3", "--out", str(out))
    code, stdout, _ = _run(capsys, *args)
    assert code == 0 and "thinned to 3 of" in stdout
    assert json.loads((tmp_path / "f.json").read_text())["complete"] is False


def test_pareto_points_below_two_is_a_clear_error(capsys) -> None:
    code, _, err = _run(capsys, "--model", "resnet8", "--pareto", "energy,proxy", "--points", "1")
    assert code == 2
    assert "--points" in _one_line_error(err)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--time-limit", "0"], "--time-limit must be > 0"),
        (["--gap", "-0.1"], "--gap must be >= 0"),
        (["--threads", "0"], "--threads must be >= 1"),
        (["--seed", "-1"], "--seed must be in 0.."),
    ],
)
def test_bad_solver_limits_are_one_line_errors(flags: list[str], message: str, capsys) -> None:
    assert main(["--quiet", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_a_front_is_named_by_model_platform_and_quantities(tmp_path, monkeypatch, capsys) -> None:
    """Two platforms' fronts of one model do not overwrite each other by default."""
    from milp_map.cli.solve import main as solve_main

    monkeypatch.chdir(tmp_path)
    for platform in ("diana", "jetson-xavier"):
        assert (
            solve_main(
                [
                    "--model",
                    "resnet8",
                    "--platform",
                    platform,
                    "--pareto",
                    "latency,proxy",
                    "--quiet",
                ]
            )
            == 0
        )
    capsys.readouterr()
    names = sorted(p.name for p in tmp_path.glob("front_*.json"))
    assert names == [
        "front_resnet8_diana_latency_proxy.json",
        "front_resnet8_jetson-xavier_latency_proxy.json",
    ]
