"""Platform YAML: DIANA cost models by hand, presets, operating points, and every input error."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milp_map.core.costmodels import DianaAnalog, DianaDigital
from milp_map.core.graph import Layer, graph_from_layers
from milp_map.core.problem import build_problem
from milp_map.core.scores import Sensitivity
from milp_map.errors import MilpMapError
from milp_map.io.platforms import load_platform, preset_names
from milp_map.io.synthetic import conv_layer

F_HZ = 260e6
EVAL_CYCLES = 18.2  # analog: one 70 ns array evaluation at 260 MHz, in cycles


def _gemm(name: str, n_in: int, n_out: int) -> Layer:
    return Layer(
        name=name,
        op="gemm",
        in_channels=n_in,
        out_channels=n_out,
        kernel=(1, 1),
        stride=(1, 1),
        groups=1,
        in_hw=(1, 1),
        out_hw=(1, 1),
        macs=n_in * n_out,
        weight_count=n_in * n_out,
        input_elems=n_in,
        output_elems=n_out,
    )


def _dwconv(name: str, channels: int, hw: int) -> Layer:
    return Layer(
        name=name,
        op="dwconv",
        in_channels=channels,
        out_channels=channels,
        kernel=(3, 3),
        stride=(1, 1),
        groups=channels,
        in_hw=(hw, hw),
        out_hw=(hw, hw),
        macs=hw * hw * channels * 9,
        weight_count=channels * 9,
        input_elems=channels * hw * hw,
        output_elems=channels * hw * hw,
    )


# ----------------------------------------------------------------------------- DIANA cost models


# digital: ceil((C_out/groups)/16) * C_in * ceil(OX/16) * OY * KX * KY + OX*OY*(C_out+C_in)/8
DIGITAL_CASES = [
    # conv 16->32, 3x3, 8x8 out: 2*16*1*8*3*3 = 2304 compute + 8*8*48/8 = 384 io
    (conv_layer("c", 16, 32, hw=8, kernel=3), 2304 + 384),
    # gemm 256->10 (1x1 conv on a 1x1 map): 1*256*1*1*1*1 = 256 + 1*1*266/8 = 33.25
    (_gemm("fc", 256, 10), 256 + 33.25),
    # conv 200->600, 3x3, 4x4 out: 38*200*1*4*9 = 273600 + 4*4*800/8 = 1600
    (conv_layer("big", 200, 600, hw=4, kernel=3), 273600 + 1600),
    # depthwise 32 ch, 3x3, 8x8: ceil(1/16)=1 * 32 * 1 * 8 * 9 = 2304 + 8*8*64/8 = 512
    (_dwconv("dw", 32, 8), 2304 + 512),
    # conv 64->200, 3x3, 8x8: 13*64*1*8*9 = 59904 + 8*8*264/8 = 2112
    (conv_layer("mid", 64, 200, hw=8, kernel=3), 59904 + 2112),
    # conv 64->64, 1x1, 8x8: 4*64*1*8*1 = 2048 + 8*8*128/8 = 1024
    (conv_layer("pw", 64, 64, hw=8, kernel=1), 2048 + 1024),
]

# analog: u = largest of {8,4,2} with u*C_out <= 512 and (u+KX-1)*max(64,C_in)*KY <= 1152, else 1;
# cycles = 8*C_in*KX*KY + ceil(C_out/512)*ceil(C_in/128)*OX*OY/u * 70e-9 * F
ANALOG_CASES = [
    # u=8: 10*64*3 = 1920 > 1152; u=4: 6*64*3 = 1152 ok -> 1152 + 1*1*64/4 * 18.2
    (conv_layer("c", 16, 32, hw=8, kernel=3), 8 * 16 * 9 + 64 / 4 * EVAL_CYCLES),
    # u=8: 8*256 = 2048 > 1152; u=4: 4*256 = 1024 ok -> 2048 + 1*2*1/4 * 18.2
    (_gemm("fc", 256, 10), 8 * 256 + 2 * 1 / 4 * EVAL_CYCLES),
    # every u > 1 breaks u*600 <= 512 -> u=1: 14400 + 2*2*16 * 18.2
    (conv_layer("big", 200, 600, hw=4, kernel=3), 8 * 200 * 9 + 2 * 2 * 16 * EVAL_CYCLES),
    # u=4: 800 > 512; u=2: 400 <= 512 and 4*64*3 = 768 <= 1152 -> 4608 + 1*1*64/2 * 18.2
    (conv_layer("mid", 64, 200, hw=8, kernel=3), 8 * 64 * 9 + 64 / 2 * EVAL_CYCLES),
    # u=8: 8*64 = 512 <= 512 and 8*64*1 = 512 <= 1152 -> 512 + 1*1*64/8 * 18.2
    (conv_layer("pw", 64, 64, hw=8, kernel=1), 8 * 64 + 64 / 8 * EVAL_CYCLES),
]


@pytest.mark.parametrize(("layer", "cycles"), DIGITAL_CASES, ids=lambda c: getattr(c, "name", ""))
def test_diana_digital_cycles_by_hand(layer: Layer, cycles: float) -> None:
    assert DianaDigital(F_HZ).latency_s(layer) == pytest.approx(cycles / F_HZ, rel=1e-12)


@pytest.mark.parametrize(("layer", "cycles"), ANALOG_CASES, ids=lambda c: getattr(c, "name", ""))
def test_diana_analog_cycles_by_hand(layer: Layer, cycles: float) -> None:
    assert DianaAnalog(F_HZ).latency_s(layer) == pytest.approx(cycles / F_HZ, rel=1e-12)


def test_diana_digital_on_part_of_the_output_channels() -> None:
    """n_out restricts C_out: 16 of 32 channels is ceil(16/16)*16*1*8*9 + 8*8*32/8 cycles."""
    layer = conv_layer("c", 16, 32, hw=8, kernel=3)
    expected = (1 * 16 * 1 * 8 * 9 + 8 * 8 * (16 + 16) / 8) / F_HZ
    assert DianaDigital(F_HZ).latency_s(layer, n_out=16) == pytest.approx(expected, rel=1e-12)


def test_diana_analog_refuses_depthwise_and_grouped_layers() -> None:
    grouped = Layer(
        name="g",
        op="conv",
        in_channels=32,
        out_channels=32,
        kernel=(3, 3),
        stride=(1, 1),
        groups=2,
        in_hw=(8, 8),
        out_hw=(8, 8),
        macs=8 * 8 * 32 * 16 * 9,
        weight_count=32 * 16 * 9,
        input_elems=32 * 64,
        output_elems=32 * 64,
    )
    assert DianaAnalog().latency_s(_dwconv("dw", 32, 8)) is None
    assert DianaAnalog().latency_s(grouped) is None
    assert DianaDigital().latency_s(grouped) is not None


def test_diana_power_reproduces_the_three_published_figures() -> None:
    """11.31 mW static + 13.65 / 17.43 mW dynamic = 24.96 / 28.74 / 42.39 mW."""
    diana = load_platform("diana")
    static = diana.static_power_w
    digital = diana.accelerator("digital").dynamic_power_w
    analog = diana.accelerator("analog").dynamic_power_w
    assert static + digital == pytest.approx(24.96e-3, abs=1e-9)
    assert static + analog == pytest.approx(28.74e-3, abs=1e-9)
    assert static + digital + analog == pytest.approx(42.39e-3, abs=1e-9)


def test_diana_layer_energy_is_busy_power_times_latency() -> None:
    """A layer alone on one engine draws static + that engine's dynamic power while it runs."""
    layer = conv_layer("c", 16, 32, hw=8, kernel=3)
    graph = graph_from_layers("one", [layer], [])
    scores = {("c", "int8"): 0.0, ("c", "ternary"): 1.0}
    problem = build_problem(graph, load_platform("diana"), Sensitivity(scores, "s", "test"))
    watts = {"digital": 24.96e-3, "analog": 28.74e-3}
    for option in problem.units[0].options:
        total_j = option.energy_j + problem.static_power_w * option.latency_s
        assert total_j / option.latency_s == pytest.approx(watts[option.accelerator], rel=1e-9)
    latency = {o.accelerator: o.latency_s for o in problem.units[0].options}
    assert latency["digital"] == pytest.approx((2304 + 384) / F_HZ, rel=1e-12)
    assert latency["analog"] == pytest.approx((1152 + 16 * EVAL_CYCLES) / F_HZ, rel=1e-12)


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_loads(name: str) -> None:
    platform = load_platform(name)
    assert platform.name == name
    assert platform.accelerators
    for acc in platform.accelerators:
        assert (acc.model is None) != (acc.table is None), acc.name


def test_presets_include_diana_and_rockpi() -> None:
    assert {"diana", "rockpi-n10"} <= set(preset_names())
    rockpi = load_platform("rockpi-n10")
    assert rockpi.accelerator_names == ("cpu_big", "cpu_little", "gpu", "npu")
    assert rockpi.groups_for("mobilenet_v1")
    assert rockpi.transition_table


# ----------------------------------------------------------------------------- operating points

DVFS_YAML = """\
name: dvfs
static_power_w: 0.1
accelerators:
  - name: digital
    precision: int8
    cost: {model: diana_digital, freq_hz: 260.0e+6}
    dynamic_power_w: 0.5
    operating_points:
      - {name: low, freq_scale: 0.5, dynamic_power_w: 0.004}
      - {name: high, freq_scale: 1.25, dynamic_power_w: 0.02}
  - name: plain
    precision: int8
    cost: {model: diana_digital, freq_hz: 260.0e+6}
    dynamic_power_w: 0.01
"""


def test_operating_points_scale_latency_and_set_busy_power(tmp_path: Path) -> None:
    """Latency divides by freq_scale; dynamic energy = the point's power * that latency."""
    (tmp_path / "p.yaml").write_text(DVFS_YAML)
    platform = load_platform(tmp_path / "p.yaml")
    graph = graph_from_layers("one", [conv_layer("c", 16, 32)], [])
    problem = build_problem(graph, platform, Sensitivity({("c", "int8"): 0.0}, "s", "test"))
    base_s = (2304 + 384) / F_HZ
    options = {o.label: o for o in problem.units[0].options}
    assert set(options) == {"digital@low", "digital@high", "plain"}
    assert options["digital@low"].latency_s == pytest.approx(base_s / 0.5, rel=1e-12)
    assert options["digital@low"].energy_j == pytest.approx(0.004 * base_s / 0.5, rel=1e-12)
    assert options["digital@high"].latency_s == pytest.approx(base_s / 1.25, rel=1e-12)
    assert options["digital@high"].energy_j == pytest.approx(0.02 * base_s / 1.25, rel=1e-12)
    assert options["plain"].latency_s == pytest.approx(base_s, rel=1e-12)
    assert options["plain"].energy_j == pytest.approx(0.01 * base_s, rel=1e-12)


def test_table_operating_points_become_options(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "name: t\naccelerators:\n  - {name: cpu, precision: fp32, cost: {table: c.csv}}\n"
    )
    (tmp_path / "c.csv").write_text(
        "layer,accelerator,operating_point,latency_s,energy_j\n"
        "c,cpu,f0,0.004,0.001\nc,cpu,f1,0.002,0.003\n"
    )
    graph = graph_from_layers("one", [conv_layer("c", 3, 8)], [])
    problem = build_problem(
        graph, load_platform(tmp_path / "p.yaml"), Sensitivity({("c", "fp32"): 0.0}, "s", "t")
    )
    got = {(o.label, o.latency_s, o.energy_j) for o in problem.units[0].options}
    assert got == {("cpu@f0", 0.004, 0.001), ("cpu@f1", 0.002, 0.003)}


# ----------------------------------------------------------------------------- YAML errors

GOOD_YAML = """\
name: t
accelerators:
  - name: a
    precision: int8
    cost: {model: diana_digital}
  - name: b
    precision: fp32
    cost: {model: roofline, macs_per_s: 1.0e+9, bytes_per_s: 1.0e+9}
"""

YAML_ERRORS = {
    "missing-accelerators": ("name: t\n", ["field 'accelerators' is required"]),
    "unknown-top-field": (GOOD_YAML + "speed: 3\n", ["unknown field 'speed'"]),
    "unknown-accelerator-field": (
        GOOD_YAML.replace("precision: int8", "precision: int8\n    speed: 3"),
        ["unknown field 'accelerators[0].speed'"],
    ),
    "bad-cost-model": (
        GOOD_YAML.replace("diana_digital", "diana_hybrid"),
        ["accelerators[0].cost", "unknown cost model 'diana_hybrid'", "diana_digital"],
    ),
    "negative-static-power": (
        GOOD_YAML + "static_power_w: -0.1\n",
        ["static_power_w", "greater than or equal to 0"],
    ),
    "negative-dynamic-power": (
        GOOD_YAML.replace("precision: fp32", "precision: fp32\n    dynamic_power_w: -1"),
        ["accelerators[1].dynamic_power_w", "greater than or equal to 0"],
    ),
    "transition-to-unknown-accelerator": (
        GOOD_YAML + "transitions:\n  - {from: a, to: npu, latency_s: 1.0e-6}\n",
        ["transitions[0]", "unknown accelerator 'npu'"],
    ),
    "transition-to-itself": (
        GOOD_YAML + "transitions:\n  - {from: a, to: a}\n",
        ["transitions[0]", "itself"],
    ),
    "repeated-transition": (
        GOOD_YAML + "transitions:\n  - {from: a, to: b}\n  - {from: a, to: b}\n",
        ["transitions[1]", "repeats a -> b"],
    ),
    "duplicate-accelerator": (
        GOOD_YAML.replace("name: b", "name: a"),
        ["accelerator names must be unique", "'a'"],
    ),
    "malformed-yaml": (
        "name: t\naccelerators: [\n",
        ["line 3", "not valid YAML", "expected the node content"],
    ),
    "not-a-mapping": ("- a\n- b\n", ["expected a mapping"]),
    "unknown-op": (
        GOOD_YAML.replace("precision: int8", "precision: int8\n    ops: [lstm]"),
        ["accelerators[0].ops", "unknown op kinds ['lstm']"],
    ),
    "zero-freq-scale": (
        GOOD_YAML.replace(
            "precision: int8",
            "precision: int8\n    operating_points: [{name: f0, freq_scale: 0, "
            "dynamic_power_w: 1}]",
        ),
        ["accelerators[0].operating_points[0].freq_scale", "greater than 0"],
    ),
    "table-and-model": (
        GOOD_YAML.replace("{model: diana_digital}", "{model: diana_digital, table: c.csv}"),
        ["accelerators[0].cost", "exactly one of"],
    ),
    "unknown-model-parameter": (
        GOOD_YAML.replace("{model: diana_digital}", "{model: diana_digital, clock: 3}"),
        ["accelerators[0].cost", "unknown parameter(s) ['clock']", "freq_hz"],
    ),
    "missing-model-parameter": (
        GOOD_YAML.replace(", bytes_per_s: 1.0e+9", ""),
        ["accelerators[1].cost", "missing parameter(s) bytes_per_s"],
    ),
    "model-parameter-read-as-text": (
        GOOD_YAML.replace("{model: diana_digital}", "{model: diana_digital, freq_hz: 260e6}"),
        ["accelerators[0].cost", "'freq_hz'", "'260e6'", "260.0e+6"],
    ),
    "bad-groups-shape": (GOOD_YAML + "groups: {g: l0}\n", ["field 'groups'", "[layer, ...]"]),
    "negative-activation-bytes": (
        GOOD_YAML + "activation_bytes: {int8: -1}\n",
        ["activation_bytes", "> 0"],
    ),
    "repeated-operating-point": (
        DVFS_YAML.replace("name: high", "name: low"),
        ["accelerators[0].operating_points", "must be unique, repeated: ['low']"],
    ),
    "operating-point-name-a-path": (
        DVFS_YAML.replace("name: high", "name: ../../high"),
        ["operating_points[1].name", "'../../high' is not a safe name"],
    ),
}


@pytest.mark.parametrize(("text", "expected"), YAML_ERRORS.values(), ids=YAML_ERRORS.keys())
def test_yaml_errors_name_file_and_field(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(MilpMapError) as info:
        load_platform(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    for fragment in expected:
        assert fragment in message


@settings(max_examples=30, deadline=None, derandomize=True)
@given(names=st.lists(st.sampled_from(["f0", "f1", "f2", "low"]), min_size=1, max_size=4))
def test_operating_points_are_one_each_or_refused(names: list[str]) -> None:
    """Repeated names are refused (`check` costed the first, `solve` either); otherwise every
    option of a unit has its own label, so a mapping names exactly one of them."""
    points = ", ".join(
        f"{{name: {n}, freq_scale: {k + 1}, dynamic_power_w: 0.01}}" for k, n in enumerate(names)
    )
    text = GOOD_YAML.replace(
        "precision: int8", f"precision: int8\n    operating_points: [{points}]"
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.yaml"
        path.write_text(text)
        try:
            platform = load_platform(path)
        except MilpMapError as exc:
            assert len(set(names)) < len(names) and "must be unique" in str(exc)
            return
    assert len(set(names)) == len(names)
    graph = graph_from_layers("one", [conv_layer("c", 16, 32)], [])
    scores = Sensitivity({("c", "int8"): 0.0, ("c", "fp32"): 0.0}, "s", "test")
    labels = [o.label for o in build_problem(graph, platform, scores).units[0].options]
    assert len(labels) == len(set(labels)) == len(names) + 1


def test_good_yaml_loads(tmp_path: Path) -> None:
    """The base of the error cases is itself valid, so each case fails for its own reason."""
    (tmp_path / "ok.yaml").write_text(GOOD_YAML)
    platform = load_platform(tmp_path / "ok.yaml")
    assert platform.accelerator_names == ("a", "b")


def test_missing_platform_file_and_unknown_preset(tmp_path: Path) -> None:
    with pytest.raises(MilpMapError, match=r"nope\.yaml: platform file not found"):
        load_platform(tmp_path / "nope.yaml")
    with pytest.raises(MilpMapError, match=r"unknown platform 'nope'.*presets: .*diana"):
        load_platform("nope")


def test_binary_platform_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(MilpMapError, match="not a UTF-8 text file"):
        load_platform(path)


# ----------------------------------------------------------------------------- cost table errors

TABLE_YAML = """\
name: t
accelerators:
  - {name: a, precision: int8, cost: {table: costs.csv}}
  - {name: b, precision: fp32, cost: {table: costs.csv}}
"""
HEADER = "layer,accelerator,latency_s,energy_j\n"

TABLE_ERRORS = {
    "unknown-accelerator": (HEADER + "l0,a,1,1\nl0,npu,1,1\n", ["row 3", "unknown accelerator"]),
    "nan": (HEADER + "l0,a,nan,1\nl0,b,1,1\n", ["row 2", "'latency_s'", "finite"]),
    "negative": (HEADER + "l0,a,1,-2\nl0,b,1,1\n", ["row 2", "'energy_j'", ">= 0"]),
    "not-a-number": (HEADER + "l0,a,fast,1\nl0,b,1,1\n", ["row 2", "not a number: 'fast'"]),
    "empty-cell": (HEADER + "l0,a,,1\nl0,b,1,1\n", ["row 2", "'latency_s'", "not a number"]),
    "duplicate": (HEADER + "l0,a,1,1\nl0,b,1,1\nl0,a,2,2\n", ["row 4", "duplicate", "l0"]),
    "missing-column": ("layer,accelerator,latency_s\nl0,a,1\n", ["missing column(s) energy_j"]),
    "extra-field": (HEADER + "l0,a,1,1,7,7\nl0,b,1,1\n", ["more fields than the header"]),
    "no-rows-for-b": (HEADER + "l0,a,1,1\n", ["no rows for accelerator 'b'"]),
    "implausible-latency": (
        HEADER + "l0,a,1,1\nl0,b,1e9,1\n",
        ["row 3", "'latency_s' = 1e+09 is implausible", "at most 3600 s"],
    ),
    "operating-point-name-a-path": (
        "layer,accelerator,operating_point,latency_s,energy_j\nl0,a,../x,1,1\nl0,b,,1,1\n",
        ["row 2", "operating point '../x' is not a safe name"],
    ),
    "implausible-energy": (
        HEADER + "l0,a,1,2e6\nl0,b,1,1\n",
        ["row 2", "'energy_j' = 2e+06 is implausible", "at most 1e+06 J"],
    ),
}


@pytest.mark.parametrize(("csv", "expected"), TABLE_ERRORS.values(), ids=TABLE_ERRORS.keys())
def test_cost_table_errors_name_file_and_row(tmp_path: Path, csv: str, expected: list[str]) -> None:
    (tmp_path / "p.yaml").write_text(TABLE_YAML)
    (tmp_path / "costs.csv").write_text(csv)
    with pytest.raises(MilpMapError) as info:
        load_platform(tmp_path / "p.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert "costs.csv" in message
    for fragment in expected:
        assert fragment in message


def test_missing_cost_table_names_yaml_field_and_file(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(TABLE_YAML)
    with pytest.raises(MilpMapError) as info:
        load_platform(tmp_path / "p.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "p.yaml") in message
    assert "accelerators[0].cost.table" in message
    assert str(tmp_path / "costs.csv") in message


def test_table_paths_are_relative_to_the_yaml(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "p.yaml").write_text(TABLE_YAML)
    (tmp_path / "sub" / "costs.csv").write_text(HEADER + "l0,a,0.5,0.25\nl0,b,1,2\n")
    monkeypatch.chdir(tmp_path)
    platform = load_platform("sub/p.yaml")
    table = platform.accelerator("a").table
    assert table is not None
    assert table.rows[("*", "l0", "a", "")] == (0.5, 0.25)
    assert table.rows[("*", "l0", "b", "")] == (1.0, 2.0)


@pytest.mark.parametrize(
    ("field", "csv", "expected"),
    [
        ("transition_table", "layer,from,to,latency_s,energy_j\nl0,a,c,1,1\n", "unknown accel"),
        ("transition_table", "layer,from,to,latency_s,energy_j\nl0,a,b,-1,1\n", "'latency_s'"),
        ("transition_table", "layer,from,to,latency_s\nl0,a,b,1\n", "missing column(s)"),
        ("transition_table", "layer,from,to,latency_s,energy_j\nl0,a,a,1,1\n", "to itself"),
        ("transition_table", "layer,from,to,latency_s,energy_j\nl0,a,b,1e5,1\n", "at most 3600 s"),
        ("groups", "group,layer\ng,l0\nh,l0\n", "already in group 'g'"),
        ("groups", "group\ng\n", "missing column(s) layer"),
    ],
)
def test_side_table_errors(tmp_path: Path, field: str, csv: str, expected: str) -> None:
    (tmp_path / "p.yaml").write_text(GOOD_YAML + f"{field}: side.csv\n")
    (tmp_path / "side.csv").write_text(csv)
    with pytest.raises(MilpMapError) as info:
        load_platform(tmp_path / "p.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert "side.csv" in message
    assert expected in message


@pytest.mark.parametrize("field", ["transition_table", "groups"])
def test_missing_side_table_names_yaml_field(tmp_path: Path, field: str) -> None:
    (tmp_path / "p.yaml").write_text(GOOD_YAML + f"{field}: side.csv\n")
    with pytest.raises(MilpMapError) as info:
        load_platform(tmp_path / "p.yaml")
    message = str(info.value)
    assert message.startswith(str(tmp_path / "p.yaml"))
    assert f"field '{field}'" in message
    assert "side.csv" in message


def test_table_accelerator_rejects_power_and_operating_points(tmp_path) -> None:
    """A measured table sets energy and DVFS levels per row; YAML values would be ignored."""
    (tmp_path / "costs.csv").write_text("layer,accelerator,latency_s,energy_j\nl0,a,1,1\n")
    (tmp_path / "p.yaml").write_text(
        "name: t\naccelerators:\n"
        "  - {name: a, precision: int8, cost: {table: costs.csv}, dynamic_power_w: 2.0}\n"
    )
    with pytest.raises(MilpMapError) as info:
        load_platform(tmp_path / "p.yaml")
    assert "dynamic_power_w" in str(info.value) and "p.yaml" in str(info.value)


# ----------------------------------------------------------------------------- plausibility


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        (
            "freq_hz: 260.0e+6}\n    dynamic_power_w: 0.5",
            "freq_hz: 1.0e+300}\n    dynamic_power_w: 0.5",
            "freq_hz",
        ),
        (
            "freq_hz: 260.0e+6}\n    dynamic_power_w: 0.01",
            "freq_hz: 2.6}\n    dynamic_power_w: 0.01",
            "freq_hz",
        ),
        ("dynamic_power_w: 0.5", "dynamic_power_w: 1.0e+300", "dynamic_power_w"),
        ("freq_scale: 1.25", "freq_scale: 1.0e+9", "freq_scale"),
        ("static_power_w: 0.1", "static_power_w: 5.0e+4", "static_power_w"),
    ],
)
def test_implausible_numbers_are_one_line_errors_naming_the_field(
    tmp_path: Path, old: str, new: str, named: str
) -> None:
    """A unit slip (Hz for GHz, W for mW) or a hostile 1e300 would make every "optimal"
    number meaningless; the platform is refused with the field named."""
    assert old in DVFS_YAML
    (tmp_path / "p.yaml").write_text(DVFS_YAML.replace(old, new, 1))
    with pytest.raises(MilpMapError) as caught:
        load_platform(tmp_path / "p.yaml")
    message = str(caught.value)
    assert named in message and "\n" not in message
