"""`python -m milp_map.check`: our own result files pass with their metrics; bad mappings fail
with a one-line error naming the file and the layer (exit 2), broken bounds exit 1."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from milp_map.cli import check, solve
from milp_map.core.split import SplitProblem
from milp_map.errors import MilpMapError
from milp_map.evaluation.check import check_mapping

MODEL = "ds_cnn"  # 12 layers, depthwise and pointwise convs: fast, and has unsplittable layers


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """`solve --out` files of ds_cnn on diana, layer-wise and channel-split."""
    folder = tmp_path_factory.mktemp("results")
    found = {}
    for granularity in ("layer", "channel"):
        out = folder / f"{granularity}.json"
        code = solve.main(
            ["--model", MODEL, "--granularity", granularity, "--quiet", "--out", str(out)]
        )
        assert code == 0
        found[granularity] = json.loads(out.read_text())
    return found


def _write(tmp_path: Path, data: object, name: str = "mapping.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = check.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def _entry(data: dict, name: str) -> dict:
    return next(e for e in data["layers"] if e["name"] == name)


# ----------------------------------------------------------------------------- valid files


@pytest.mark.parametrize("granularity", ["layer", "channel"])
def test_own_result_file_passes_with_its_metrics(results, tmp_path, capsys, granularity) -> None:
    data = results[granularity]
    path = _write(tmp_path, data)
    code, out, err = _run(capsys, "--mapping", str(path))
    assert code == 0, err
    assert "valid" in out and "bounds met" in out
    checked = check_mapping(path)
    metrics = checked.evaluation.metrics.as_dict()
    for key, value in data["metrics"].items():
        assert metrics[key] == pytest.approx(value, rel=1e-9), key
    split = any(len(e["split"]) > 1 for e in data["layers"])
    assert split == (granularity == "channel")  # the channel optimum does split on ds_cnn
    assert isinstance(checked.target, SplitProblem) == split


def test_bare_layer_list_with_model_and_platform_flags(results, tmp_path, capsys) -> None:
    path = _write(tmp_path, results["channel"]["layers"])
    code, out, err = _run(capsys, "--mapping", str(path), "--model", MODEL, "--platform", "diana")
    assert code == 0, err
    assert "bounds: none given" in out  # no constraints in the file, none on the command line
    code, _, err = _run(capsys, "--mapping", str(path))
    assert code == 2
    assert "--model" in _one_line_error(err)


def test_broken_bound_exits_1_naming_the_bound(results, tmp_path, capsys) -> None:
    path = _write(tmp_path, results["layer"])
    latency = results["layer"]["metrics"]["latency_s"]
    code, out, err = _run(capsys, "--mapping", str(path), "--max-latency", f"{latency / 2}")
    assert code == 1
    assert "latency" in out and "energy" in out and "proxy" in out  # metrics still printed
    line = _one_line_error(err)
    assert str(path) in line
    assert f"--max-latency: latency {latency:.6g} > bound {latency / 2:.6g}" in line
    code, _, err = _run(capsys, "--mapping", str(path), "--max-proxy", "1")
    assert code == 1
    assert "proxy budget (--max-proxy 1)" in _one_line_error(err)


def test_the_verdict_is_written_with_out(results, tmp_path, capsys) -> None:
    path = _write(tmp_path, results["layer"])
    latency = results["layer"]["metrics"]["latency_s"]
    verdict = tmp_path / "verdict.json"
    args = ("--mapping", str(path), "--max-latency", f"{latency / 2}", "--out", str(verdict))
    code, out, _ = _run(capsys, *args)
    assert code == 1 and f"wrote {verdict}" in out
    written = json.loads(verdict.read_text())
    assert written["valid"] and written["metrics"]["latency_s"] == pytest.approx(latency)
    assert written["bounds"]["latency"] == pytest.approx(latency / 2)
    assert len(written["broken"]) == 1 and "--max-latency" in written["broken"][0]


# ----------------------------------------------------------------------------- invalid files


def _drop(name: str) -> Callable[[dict], None]:
    return lambda d: d["layers"].remove(_entry(d, name))


def _set(name: str, **fields: object) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        entry = _entry(data, name)
        entry.pop("channels", None)
        split = fields.get("split", entry["split"])
        entry["accelerator"] = next(iter(split)) if len(split) == 1 else None  # as written
        entry.update(fields)

    return edit


def _duplicate(data: dict) -> None:
    data["layers"].append(copy.deepcopy(_entry(data, "block1/dw")))


def _rename(data: dict) -> None:
    _entry(data, "head/fc")["name"] = "head/fc9"


def _bad_indices(data: dict) -> None:
    entry = _entry(data, "block1/pw")
    entry["split"] = {"analog": 16, "digital": 48}
    entry["channels"] = {"analog": [0] * 16, "digital": list(range(16, 64))}


INVALID = {
    "missing layer": (_drop("block2/pw"), ["missing layer(s) 'block2/pw'"]),
    "duplicated layer": (_duplicate, ["duplicated layer(s) 'block1/dw'"]),
    "unknown layer": (_rename, ["unknown layer(s) 'head/fc9'", "missing layer(s) 'head/fc'"]),
    "unknown accelerator": (
        _set("stem/conv", split={"npu": 64}),
        ["layer 'stem/conv'", "unknown accelerator 'npu'"],
    ),
    "depthwise on analog": (
        _set("block1/dw", split={"digital": 32, "analog": 32}),
        ["layer 'block1/dw'", "op dwconv", "accelerator 'analog'"],
    ),
    "channels do not sum": (
        _set("block1/pw", split={"analog": 16, "digital": 40}),
        ["layer 'block1/pw'", "56 channels", "64 output channels"],
    ),
    "not a multiple of the group size": (
        _set("block1/pw", split={"analog": 12, "digital": 52}),
        ["layer 'block1/pw'", "12 channels", "group size 8"],
    ),
    "bad channel indices": (
        _bad_indices,
        ["layer 'block1/pw'", "partition 0..63", "listed more than once: 0", "missing: 1, 2"],
    ),
    "unknown operating point": (
        _set("stem/conv", operating_point={"digital": "turbo"}),
        ["layer 'stem/conv'", "no operating point 'turbo'"],
    ),
    "accelerator contradicts the split": (
        _set("stem/conv", split={"analog": 64}, accelerator="digital"),
        ["layer 'stem/conv'", "`accelerator` says digital but `split` puts the channels on analog"],
    ),
    "accelerator beside a split in parts": (
        _set("block1/pw", split={"analog": 16, "digital": 48}, accelerator="digital"),
        ["layer 'block1/pw'", "`split` puts the channels on analog, digital"],
    ),
    "accelerator not a name": (
        _set("stem/conv", accelerator=5),
        ["layers[0].accelerator: 5 is not of type 'string', 'null'", "mapping.schema.json"],
    ),
    "misspelt key": (
        _set("stem/conv", oprating_point="f1"),
        ["layers[0]: unknown key(s) 'oprating_point'", "mapping.schema.json"],
    ),
    "group_size below one": (
        lambda data: data.update(group_size=-8),
        ["group_size: -8 is less than the minimum of 1", "mapping.schema.json"],
    ),
    "group_size zero": (
        lambda data: data.update(group_size=0),
        ["group_size: 0 is less than the minimum of 1", "mapping.schema.json"],
    ),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_mapping_exits_2_naming_file_and_layer(
    results, tmp_path, capsys, case: str
) -> None:
    edit, phrases = INVALID[case]
    data = copy.deepcopy(results["channel"])
    edit(data)
    path = _write(tmp_path, data)
    code, out, err = _run(capsys, "--mapping", str(path))
    assert code == 2, out
    line = _one_line_error(err)
    assert str(path) in line
    for phrase in phrases:
        assert phrase in line


@pytest.mark.parametrize("size", ["0", "-1"])
def test_group_size_flag_below_one_exits_2(results, tmp_path, capsys, size: str) -> None:
    path = _write(tmp_path, results["channel"])
    code, _, err = _run(capsys, "--mapping", str(path), "--group-size", size)
    assert code == 2
    assert f"--group-size must be an integer >= 1, got {size}" in _one_line_error(err)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    split=st.dictionaries(
        st.sampled_from(["digital", "analog"]), st.sampled_from([0, 8, 16, 48, 56, 64]), min_size=1
    ),
    accelerator=st.sampled_from([None, "digital", "analog"]),
)
def test_check_never_accepts_an_accelerator_its_split_contradicts(
    results, tmp_path, split: dict[str, int], accelerator: str | None
) -> None:
    """Any `split` beside any `accelerator`: an accepted layer runs exactly where both say."""
    data = copy.deepcopy(results["channel"])
    entry = _entry(data, "block1/pw")
    entry.pop("channels", None)
    entry.update(split=split, accelerator=accelerator, operating_point=None)
    path = _write(tmp_path, data)
    try:
        checked = check_mapping(path)
    except MilpMapError as exc:
        assert len(str(exc).splitlines()) == 1 and str(path) in str(exc)
        return
    unit = checked.problem.units[checked.problem.unit_of_layer["block1/pw"]].name
    placed = sorted(part.accelerator for part in checked.mapping[unit])
    assert placed == sorted(acc for acc, n in split.items() if n > 0)
    assert accelerator is None or placed == [accelerator]


def test_malformed_json_exits_2(tmp_path, capsys) -> None:
    path = _write(tmp_path, '{"layers": [')
    code, _, err = _run(capsys, "--mapping", str(path))
    assert code == 2
    line = _one_line_error(err)
    assert str(path) in line and "not valid JSON" in line and "line 1" in line


def test_layers_of_one_unit_share_an_accelerator(results, tmp_path, capsys) -> None:
    groups = _write(tmp_path, "group,layer\nblock1,block1/dw\nblock1,block1/pw\n", "groups.csv")
    data = copy.deepcopy(results["layer"])
    _set("block1/dw", split={"digital": 64})(data)
    _set("block1/pw", split={"analog": 64})(data)
    path = _write(tmp_path, data)
    code, _, err = _run(capsys, "--mapping", str(path), "--groups", str(groups))
    assert code == 2
    line = _one_line_error(err)
    assert str(path) in line and "layer 'block1/pw'" in line and "unit 'block1'" in line
    _set("block1/pw", split={"digital": 64})(data)
    path = _write(tmp_path, data)
    code, _, err = _run(capsys, "--mapping", str(path), "--groups", str(groups))
    assert code == 0, err


# ----------------------------------------------------------------------------- model files


def test_a_mapping_names_its_model_file_and_is_checked_against_it(tmp_path, capsys) -> None:
    """A file model whose name is also a zoo name (ds_cnn saved as resnet8.onnx) is checked,
    exported and measured against the file the mapping was made from, not the built-in one;
    a changed or lost file is a one-line error."""
    from milp_map.cli import export as export_cli
    from milp_map.io.zoo import build_model

    model = tmp_path / "resnet8.onnx"
    model.write_bytes(build_model(MODEL).SerializeToString())
    mapping = tmp_path / "m.json"
    assert solve.main(["--model", str(model), "--quiet", "--out", str(mapping)]) == 0
    header = json.loads(mapping.read_text())
    assert header["model"] == "resnet8"
    assert header["model_file"]["path"] == str(model.resolve())
    assert "platform_file" not in header  # a preset is named, not a file
    code, out, _ = _run(capsys, "--mapping", str(mapping), "--quiet")
    assert code == 0 and "(12 layers" in out
    assert export_cli.main(["--mapping", str(mapping), "--out", str(tmp_path / "x.onnx")]) == 0
    capsys.readouterr()

    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "resnet8.onnx").write_bytes(model.read_bytes())
    (moved / "m.json").write_text(mapping.read_text())
    model.unlink()
    assert _run(capsys, "--mapping", str(moved / "m.json"), "--quiet")[0] == 0  # found beside

    (moved / "resnet8.onnx").write_bytes(build_model("resnet20").SerializeToString())
    code, _, err = _run(capsys, "--mapping", str(moved / "m.json"))
    assert code == 2 and "has changed since the mapping was made" in _one_line_error(err)
    (moved / "resnet8.onnx").unlink()
    code, _, err = _run(capsys, "--mapping", str(moved / "m.json"))
    assert code == 2 and "is missing" in _one_line_error(err)


def test_a_platform_file_is_named_too(tmp_path, capsys) -> None:
    from milp_map.resources import data_path

    platform = tmp_path / "board.yaml"
    platform.write_text(
        data_path("platforms", "diana.yaml").read_text().replace("name: diana", "name: b")
    )
    mapping = tmp_path / "m.json"
    argv = ["--model", MODEL, "--platform", str(platform), "--quiet", "--out", str(mapping)]
    assert solve.main(argv) == 0
    header = json.loads(mapping.read_text())
    assert header["platform"] == "b" and header["platform_file"]["path"] == str(platform)
    assert _run(capsys, "--mapping", str(mapping), "--quiet")[0] == 0
