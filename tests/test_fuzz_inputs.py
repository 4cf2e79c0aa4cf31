"""Random and malformed inputs at every loader: a one-line MilpMapError or a correct result.

Property-based (hypothesis, derandomized so CI is reproducible): ONNX bytes and mutated models,
platform YAML, cost tables, sensitivity files, hand-made layer graphs, and a few CLI runs that
must exit 2 with the error on one line. Any other exception type is a bug in a loader.
"""

from __future__ import annotations

import copy
import math
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import networkx as nx
import numpy as np
import onnx
import pytest
import yaml
from hypothesis import HealthCheck, assume, currently_in_test_context, event, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from milp_map.cli.solve import main
from milp_map.core.graph import Layer, LayerGraph, graph_from_layers
from milp_map.core.platform import Platform
from milp_map.core.problem import Problem, build_problem
from milp_map.core.scores import Sensitivity
from milp_map.errors import MilpMapError
from milp_map.io.onnx import load_onnx
from milp_map.io.platforms import load_platform
from milp_map.io.scores import load_sensitivity

T = TypeVar("T")

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(
    FUZZ,
    max_examples=8,
    # capsys is read after every example, so sharing it across examples is safe
    suppress_health_check=[*FUZZ.suppress_health_check, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Path]:
    """A fresh directory per hypothesis example (tmp_path is shared by all examples of a test)."""
    root = tmp_path_factory.mktemp("fuzz")

    def fresh() -> Path:
        path = root / uuid.uuid4().hex[:12]
        path.mkdir()
        return path

    return fresh


def _clean(call: Callable[[], T], *names: Path | str) -> T | None:
    """Run a loader: its result, or None after checking the MilpMapError reads as one line
    naming every file in `names`. Any other exception escapes and fails the test."""
    try:
        result = call()
    except MilpMapError as exc:
        _event("MilpMapError")
        message = str(exc)
        assert message.strip(), "empty error message"
        assert len(message.splitlines()) == 1, message
        for name in names:
            assert str(name) in message, (name, message)
        return None
    _event("loaded")
    return result


def _event(outcome: str) -> None:
    """Count outcomes for `pytest --hypothesis-show-statistics` (a no-op outside hypothesis)."""
    if currently_in_test_context():
        event(outcome)


# ----------------------------------------------------------------------------- ONNX models


def _onnx_model(c_in: int = 3, c_mid: int = 8, c_out: int = 4, hw: int = 8) -> onnx.ModelProto:
    """Conv 3x3 -> Relu -> Conv 1x1 -> GlobalAveragePool -> Flatten -> Gemm: four layers."""
    rng = np.random.default_rng(0)
    weights = {
        "w1": rng.standard_normal((c_mid, c_in, 3, 3)).astype(np.float32),
        "w2": rng.standard_normal((c_out, c_mid, 1, 1)).astype(np.float32),
        "w3": rng.standard_normal((c_out, 10)).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
        helper.make_node("GlobalAveragePool", ["c2"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "w3"], ["y"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c_in, hw, hw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        initializer=[numpy_helper.from_array(a, name) for name, a in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


VALID_BYTES = _onnx_model().SerializeToString()


def _check_graph(graph: LayerGraph) -> None:
    """What every loaded graph must satisfy, however odd the file was."""
    assert len(graph) >= 1
    assert nx.is_directed_acyclic_graph(graph.dag)
    position = {layer.name: k for k, layer in enumerate(graph.layers())}
    for src, dst in graph.edges():
        assert position[src] < position[dst]
    for layer in graph.layers():
        assert layer.in_channels >= 1 and layer.out_channels >= 1
        assert layer.macs >= 0 and layer.weight_count >= 0


def _load_file(directory: Path, data: bytes) -> LayerGraph | None:
    path = directory / "model.onnx"
    path.write_bytes(data)
    graph = _clean(lambda: load_onnx(path), path)
    if graph is not None:
        _check_graph(graph)
    return graph


def test_valid_tiny_model_loads(workdir) -> None:
    """The base of every mutation is itself valid, so each mutant fails for its own reason."""
    graph = _load_file(workdir(), VALID_BYTES)
    assert graph is not None
    assert [layer.name for layer in graph.layers()] == ["conv1", "conv2", "pool", "fc"]


@FUZZ
@given(sizes=st.tuples(st.integers(-3, 2), st.integers(-3, 9), st.integers(-3, 9)))
def test_input_sizes_below_one_are_refused(workdir, sizes: tuple[int, int, int]) -> None:
    """A fixed batch, height or width of 0 or less is one line naming the file and the input
    (a height of -5 loaded and gave negative latencies); any other size loads with positive
    sizes and work."""
    model = _onnx_model()
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for axis, size in zip((0, 2, 3), sizes, strict=True):
        dims[axis].dim_value = size
    path = workdir() / "model.onnx"
    path.write_bytes(model.SerializeToString())
    if min(sizes) < 1:
        with pytest.raises(MilpMapError, match=r"input 'x' has size -?\d+ on axis") as info:
            load_onnx(path)
        assert str(path) in str(info.value) and len(str(info.value).splitlines()) == 1
        return
    graph = load_onnx(path)
    for layer in graph.layers():
        assert layer.macs >= 0 and layer.input_elems > 0 and layer.output_elems > 0
        assert min(layer.in_hw + layer.out_hw) >= 1


def test_a_negative_inferred_shape_is_refused(workdir) -> None:
    """A 5x5 kernel on a 2x2 input infers a -2x-2 output: refused, naming tensor and node."""
    weights = numpy_helper.from_array(np.ones((4, 3, 5, 5), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
        "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[weights],
    )
    path = workdir() / "model.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(model.SerializeToString())
    with pytest.raises(MilpMapError, match=r"tensor 'y' used by node 'conv' .* negative shape"):
        load_onnx(path)


@FUZZ
@given(data=st.binary(max_size=512))
def test_random_bytes_as_onnx(workdir, data: bytes) -> None:
    _load_file(workdir(), data)


@FUZZ
@given(cut=st.integers(0, len(VALID_BYTES) - 1))
def test_truncated_onnx(workdir, cut: int) -> None:
    _load_file(workdir(), VALID_BYTES[:cut])


@FUZZ
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(VALID_BYTES) - 1), st.integers(0, 255)),
        min_size=1,
        max_size=8,
    )
)
def test_byte_mutated_onnx(workdir, edits: list[tuple[int, int]]) -> None:
    data = bytearray(VALID_BYTES)
    for offset, value in edits:
        data[offset] = value
    _load_file(workdir(), bytes(data))


def _drop_node(model: onnx.ModelProto, k: int) -> None:
    del model.graph.node[k % len(model.graph.node)]


def _drop_initializer(model: onnx.ModelProto, k: int) -> None:
    del model.graph.initializer[k % len(model.graph.initializer)]


def _dangling_input(model: onnx.ModelProto, k: int) -> None:
    node = model.graph.node[k % len(model.graph.node)]
    node.input[k % len(node.input)] = "no_such_tensor"


def _cycle(model: onnx.ModelProto, k: int) -> None:
    """The first node reads the output of node k (itself included): a cycle."""
    nodes = model.graph.node
    nodes[0].input[0] = nodes[k % len(nodes)].output[0]


def _duplicate_output(model: onnx.ModelProto, k: int) -> None:
    nodes = model.graph.node
    nodes[k % len(nodes)].output[0] = nodes[(k + 1) % len(nodes)].output[0]


def _shuffle_nodes(model: onnx.ModelProto, k: int) -> None:
    nodes = list(model.graph.node)
    rotated = nodes[k % len(nodes) :] + nodes[: k % len(nodes)]
    del model.graph.node[:]
    model.graph.node.extend(copy.deepcopy(rotated))


def _unknown_op(model: onnx.ModelProto, k: int) -> None:
    model.graph.node[k % len(model.graph.node)].op_type = "LSTMish"


def _symbolic_input(model: onnx.ModelProto, k: int) -> None:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[1 + k % 3].Clear()
    dims[1 + k % 3].dim_param = "n"


def _bad_initializer_data(model: onnx.ModelProto, k: int) -> None:
    tensor = model.graph.initializer[k % len(model.graph.initializer)]
    tensor.raw_data = tensor.raw_data[: len(tensor.raw_data) // 2]


def _no_graph_inputs(model: onnx.ModelProto, k: int) -> None:
    del model.graph.input[:]


def _no_nodes(model: onnx.ModelProto, k: int) -> None:
    del model.graph.node[:]


def _negative_attribute(model: onnx.ModelProto, k: int) -> None:
    node = model.graph.node[0]
    node.attribute.append(helper.make_attribute("strides", [-1 - k % 3, 0]))


MUTATIONS: dict[str, Callable[[onnx.ModelProto, int], None]] = {
    f.__name__.lstrip("_"): f
    for f in (
        _drop_node,
        _drop_initializer,
        _dangling_input,
        _cycle,
        _duplicate_output,
        _shuffle_nodes,
        _unknown_op,
        _symbolic_input,
        _bad_initializer_data,
        _no_graph_inputs,
        _no_nodes,
        _negative_attribute,
    )
}


NEED_NODES = {
    "drop_node",
    "dangling_input",
    "cycle",
    "duplicate_output",
    "unknown_op",
    "shuffle_nodes",
    "negative_attribute",
}


@FUZZ
@given(
    mutations=st.lists(
        st.tuples(st.sampled_from(sorted(MUTATIONS)), st.integers(0, 20)), min_size=1, max_size=3
    )
)
def test_structurally_mutated_onnx(workdir, mutations: list[tuple[str, int]]) -> None:
    model = _onnx_model()
    for name, k in mutations:
        if name in NEED_NODES and not model.graph.node:
            continue
        if name in ("drop_initializer", "bad_initializer_data") and not model.graph.initializer:
            continue
        if name == "symbolic_input" and not model.graph.input:
            continue
        MUTATIONS[name](model, k)
    _load_file(workdir(), model.SerializeToString())
    graph = _clean(lambda: load_onnx(model, name="mutant"), "mutant")
    if graph is not None:
        _check_graph(graph)


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_onnx_mutation_is_an_error_naming_the_file(workdir, mutation: str) -> None:
    """Each mutation alone is rejected, except shuffled nodes (re-sorted, they load fine)."""
    model = _onnx_model()
    MUTATIONS[mutation](model, 1)
    graph = _load_file(workdir(), model.SerializeToString())
    assert (graph is not None) == (mutation == "shuffle_nodes")


@FUZZ
@given(
    c_in=st.integers(0, 3), c_mid=st.integers(0, 3), c_out=st.integers(0, 3), hw=st.integers(0, 3)
)
def test_zero_channels_and_sizes(workdir, c_in: int, c_mid: int, c_out: int, hw: int) -> None:
    graph = _load_file(workdir(), _onnx_model(c_in, c_mid, c_out, hw).SerializeToString())
    if min(c_in, c_mid, c_out) == 0:
        assert graph is None


def test_missing_and_directory_onnx_paths(workdir) -> None:
    directory = workdir()
    assert _clean(lambda: load_onnx(directory / "nope.onnx"), directory / "nope.onnx") is None
    assert _clean(lambda: load_onnx(directory), directory) is None
    (directory / "empty.onnx").write_bytes(b"")
    assert _clean(lambda: load_onnx(directory / "empty.onnx"), "the file is empty") is None


# ----------------------------------------------------------------------------- layer graphs


def _layer(name: str, channels: int = 4, op: str = "conv", groups: int = 1) -> Layer:
    return Layer(
        name=name,
        op=op,
        in_channels=channels,
        out_channels=channels,
        kernel=(1, 1),
        stride=(1, 1),
        groups=groups,
        in_hw=(2, 2),
        out_hw=(2, 2),
        macs=16 * channels * channels,
        weight_count=channels * channels,
        input_elems=4 * channels,
        output_elems=4 * channels,
    )


NAMES = [f"l{k}" for k in range(6)]


@FUZZ
@given(
    n_layers=st.integers(1, 6),
    edges=st.lists(st.tuples(st.sampled_from([*NAMES, "ghost"]), st.sampled_from(NAMES))),
)
def test_graph_from_layers_with_cycles_and_unknown_names(
    n_layers: int, edges: list[tuple[str, str]]
) -> None:
    layers = [_layer(name) for name in NAMES[:n_layers]]
    graph = _clean(lambda: graph_from_layers("g", layers, edges), "graph 'g'")
    known = set(NAMES[:n_layers])
    reference = nx.DiGraph(edges)
    valid = all(a in known and b in known for a, b in edges) and nx.is_directed_acyclic_graph(
        reference
    )
    assert (graph is not None) == valid
    if graph is not None:
        _check_graph(graph)
        assert set(graph.edges()) == set(edges)


@FUZZ
@given(
    channels=st.integers(-3, 4),
    groups=st.integers(-2, 4),
    op=st.sampled_from(["conv", "dwconv", "gemm", "pool", "lstm", ""]),
)
def test_hand_made_layer_fields(channels: int, groups: int, op: str) -> None:
    layer = _clean(lambda: _layer("bad", channels, op, groups), "layer 'bad'")
    valid = op not in ("lstm", "") and channels >= 1 and groups >= 1 and channels % groups == 0
    assert (layer is not None) == valid


def test_duplicate_layer_names_and_empty_graph() -> None:
    assert _clean(lambda: graph_from_layers("g", [_layer("a"), _layer("a")], []), "'a'") is None
    assert _clean(lambda: graph_from_layers("g", [], []), "graph 'g'") is None


# ----------------------------------------------------------------------------- platform YAML


def _skeleton() -> dict[str, Any]:
    return {
        "name": "fuzz",
        "static_power_w": 0.01,
        "accelerators": [
            {
                "name": "a",
                "precision": "int8",
                "cost": {"model": "diana_digital", "freq_hz": 260.0e6},
                "dynamic_power_w": 0.01,
                "operating_points": [
                    {"name": "lo", "freq_scale": 0.5, "dynamic_power_w": 0.005},
                    {"name": "hi", "freq_scale": 1.0, "dynamic_power_w": 0.02},
                ],
            },
            {
                "name": "b",
                "precision": "fp32",
                "ops": ["conv", "gemm"],
                "cost": {"model": "roofline", "macs_per_s": 1.0e9, "bytes_per_s": 1.0e9},
            },
        ],
        "transitions": [{"from": "a", "to": "b", "latency_s": 1e-6, "bytes_per_s": 1e9}],
        "activation_bytes": {"int8": 1.0},
        "groups": {"g": ["c0", "c1"]},
    }


ODD_VALUES = st.sampled_from(
    [None, "", "x", "a\nb", "\r", "260e6", [], {}, [1, 2], {"k": 1}, -1, 0, -1.5, 1e308, True]
) | st.sampled_from([math.nan, math.inf, -math.inf])


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into a nested dict/list document (the root excluded)."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        found.append((*prefix, key))
        if isinstance(value, (dict, list)):
            found.extend(_paths(value, (*prefix, key)))
    return found


def _parent(doc: Any, path: tuple) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


@st.composite
def platform_documents(draw: st.DrawFn) -> dict[str, Any]:
    """The skeleton with a few random deletions, type swaps, odd numbers, unknown keys, dups."""
    doc = _skeleton()
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(doc, path)
        action = draw(st.sampled_from(["delete", "swap", "unknown_key", "duplicate"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "swap":
            parent[path[-1]] = copy.deepcopy(draw(ODD_VALUES))
        elif action == "unknown_key" and isinstance(parent, dict):
            key = draw(st.sampled_from(["speed", "Name", "1", "accelerator"]))
            parent[key] = copy.deepcopy(draw(ODD_VALUES))
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
    return doc


def _tiny_graph() -> LayerGraph:
    layers = [_layer("c0"), _layer("c1", op="dwconv", groups=4), _layer("c2", op="gemm")]
    return graph_from_layers("tiny", layers, [("c0", "c1"), ("c1", "c2")])


def _check_problem(problem: Problem) -> None:
    """Every option and transition cost of a built problem is a finite number >= 0."""
    for unit in problem.units:
        assert unit.options
        for option in unit.options:
            for value in (option.latency_s, option.energy_j, option.proxy):
                assert math.isfinite(value) and value >= 0, option
    for edge in problem.edges:
        for latency, energy in edge.costs.values():
            assert math.isfinite(latency) and latency >= 0
            assert math.isfinite(energy) and energy >= 0
    assert math.isfinite(problem.static_power_w) and problem.static_power_w >= 0


def _build(platform: Platform, graph: LayerGraph, source: str) -> Problem | None:
    precisions = {a.precision for a in platform.accelerators}
    scores = {(layer.name, p): 1.0 for layer in graph.layers() for p in precisions}
    problem = _clean(lambda: build_problem(graph, platform, Sensitivity(scores, source, "test")))
    if problem is not None:
        _check_problem(problem)
    return problem


@FUZZ
@given(doc=platform_documents())
def test_random_platform_yaml(workdir, doc: dict[str, Any]) -> None:
    path = workdir() / "platform.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    platform = _clean(lambda: load_platform(path), path)
    if platform is not None:
        _build(platform, _tiny_graph(), "scores.csv")


@FUZZ
@given(text=st.text(max_size=300))
def test_random_text_as_platform_yaml(workdir, text: str) -> None:
    path = workdir() / "platform.yaml"
    path.write_text(text, encoding="utf-8")
    _clean(lambda: load_platform(path), path)


@pytest.mark.parametrize(
    "text",
    [
        "name: &n [*n]\naccelerators: []\n",
        "name: t\naccelerators: &a [{name: x, precision: int8, cost: {model: roofline}}, *a]\n",
        "name: t\naccelerators: [&d {name: x, precision: int8, cost: {model: roofline}, o: *d}]\n",
    ],
)
def test_recursive_yaml_aliases(workdir, text: str) -> None:
    path = workdir() / "platform.yaml"
    path.write_text(text)
    assert _clean(lambda: load_platform(path), path, "recursive YAML alias") is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("static_power_w", ".inf"),
        ("static_power_w", ".nan"),
        ("accelerators[0].dynamic_power_w", ".inf"),
        ("accelerators[0].operating_points[0].freq_scale", ".inf"),
        ("transitions[0].latency_s", ".inf"),
        ("transitions[0].energy_j", ".nan"),
    ],
)
def test_infinite_and_nan_yaml_numbers_are_errors(workdir, field: str, value: str) -> None:
    doc = _skeleton()
    doc["transitions"][0]["energy_j"] = 0.0
    keys = [
        int(k) if k.isdigit() else k for k in field.replace("[", ".").replace("]", "").split(".")
    ]
    _parent(doc, tuple(keys))[keys[-1]] = "@@"
    path = workdir() / "platform.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False).replace("'@@'", value))
    assert _clean(lambda: load_platform(path), path, field) is None


# ----------------------------------------------------------------------------- cost tables

TABLE_YAML = """\
name: t
accelerators:
  - {name: a, precision: int8, cost: {table: costs.csv}}
  - {name: b, precision: fp32, cost: {table: costs.csv}}
"""
COLUMNS = ["layer", "accelerator", "latency_s", "energy_j"]
CELLS = st.sampled_from(
    [
        "0",
        "1",
        "2.5e-3",
        "-1",
        "nan",
        "inf",
        "-inf",
        "",
        " ",
        "fast",
        "1,5",
        '"1"',
        '"a\nb"',
        "\x85",
    ]
)


ODD_NAMES = st.sampled_from(["ghost", "npu", "", " c0", "C0", '"c\nx"', "c0,a"])


@st.composite
def mutated_csv(draw: st.DrawFn, table: list[list[str]], names: list[str]) -> str:
    """`table` (header first) after 0-3 random edits, with a random BOM and line ending.

    Edits: an odd cell (negative, NaN, inf, empty, text, quoted line break), an odd name in
    a `names` column, a dropped / extra column, a duplicate / dropped / short / long row.
    """
    header, rows = list(table[0]), [list(row) for row in table[1:]]
    for _ in range(draw(st.integers(0, 3))):
        action = draw(
            st.sampled_from(
                ["cell", "name", "drop_column", "extra_column", "dup", "drop", "short", "long"]
            )
        )
        column = draw(st.integers(0, len(header) - 1)) if header else 0
        row = draw(st.integers(0, len(rows) - 1)) if rows else 0
        if action == "cell" and rows and column < len(rows[row]):
            rows[row][column] = draw(CELLS)
        elif action == "name" and rows:
            present = [header.index(n) for n in names if n in header[: len(rows[row])]]
            if present:
                rows[row][draw(st.sampled_from(present))] = draw(ODD_NAMES)
        elif action == "drop_column" and header:
            del header[column]
            for cells in rows:
                del cells[column : column + 1]
        elif action == "extra_column":
            header.append(draw(st.sampled_from(["note", "network", "operating_point", "layer"])))
            for cells in rows:
                cells.append(draw(st.sampled_from(["", "x", "tiny", "f0"])))
        elif action == "dup" and rows:
            rows.insert(row, list(rows[row]))
        elif action == "drop" and rows:
            del rows[row]
        elif action == "short" and rows:
            rows[row] = rows[row][: draw(st.integers(0, max(len(rows[row]) - 1, 0)))]
        elif action == "long" and rows:
            rows[row].append("7")
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    bom = draw(st.sampled_from(["", "\ufeff"]))
    return bom + newline.join(",".join(cells) for cells in [header, *rows]) + newline


TINY_LAYERS = ["c0", "c1", "c2"]
VALID_COSTS = [
    COLUMNS,
    *[
        [layer, acc, f"{k + 1}e-3", f"{k + 2}e-4"]
        for k, layer in enumerate(TINY_LAYERS)
        for acc in "ab"
    ],
]


@FUZZ
@given(csv=mutated_csv(VALID_COSTS, ["layer", "accelerator"]))
def test_random_cost_tables(workdir, csv: str) -> None:
    directory = workdir()
    (directory / "p.yaml").write_text(TABLE_YAML)
    (directory / "costs.csv").write_bytes(csv.encode())
    platform = _clean(lambda: load_platform(directory / "p.yaml"), "costs.csv")
    if platform is None:
        return
    for acc in platform.accelerators:
        assert acc.table is not None
        for latency, energy in acc.table.rows.values():
            assert math.isfinite(latency) and latency >= 0
            assert math.isfinite(energy) and energy >= 0
    _build(platform, _tiny_graph(), "scores.csv")


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", ["", "\ufeff"])
def test_valid_cost_table_with_bom_and_crlf_loads(workdir, newline: str, bom: str) -> None:
    directory = workdir()
    (directory / "p.yaml").write_text(TABLE_YAML)
    lines = [",".join(COLUMNS)] + [f"c{k},{acc},0.5,0.25" for k in range(3) for acc in "ab"]
    (directory / "costs.csv").write_bytes((bom + newline.join(lines) + newline).encode())
    platform = load_platform(directory / "p.yaml")
    problem = _build(platform, _tiny_graph(), "scores.csv")
    assert problem is not None
    assert {o.latency_s for u in problem.units for o in u.options} == {0.5}


def test_cost_table_of_random_bytes(workdir) -> None:
    directory = workdir()
    (directory / "p.yaml").write_text(TABLE_YAML)
    (directory / "costs.csv").write_bytes(b"\xff\xfe\x00layer\x00\x81,\n\x00")
    assert _clean(lambda: load_platform(directory / "p.yaml"), "costs.csv") is None


# ----------------------------------------------------------------------------- sensitivity files


VALID_SCORES = [
    ["layer", "precision", "score"],
    *[[layer, p, "0.5"] for layer in TINY_LAYERS for p in ("int8", "ternary")],
]
VALID_CHANNEL_SCORES = [
    ["layer", "precision", "channel", "score"],
    *[
        [layer, p, str(c), "0.25"]
        for layer in TINY_LAYERS
        for p in ("int8", "ternary")
        for c in (0, 1)
    ],
]
SENSITIVITY_FILES = mutated_csv(VALID_SCORES, ["layer", "precision"]) | mutated_csv(
    VALID_CHANNEL_SCORES, ["layer", "precision", "channel"]
)


def _check_sensitivity(sensitivity: Sensitivity) -> None:
    assert sensitivity.scores
    for value in sensitivity.scores.values():
        assert math.isfinite(value) and value >= 0
    for key, values in sensitivity.channel_scores.items():
        assert np.all(np.isfinite(values)) and np.all(values >= 0)
        assert sensitivity.scores[key] == pytest.approx(float(values.sum()))


@FUZZ
@given(csv=SENSITIVITY_FILES)
def test_random_sensitivity_files(workdir, csv: str) -> None:
    path = workdir() / "scores.csv"
    path.write_bytes(csv.encode())
    sensitivity = _clean(lambda: load_sensitivity(path), path)
    if sensitivity is None:
        return
    _check_sensitivity(sensitivity)
    platform = load_platform("diana")
    problem = _clean(lambda: build_problem(_tiny_graph(), platform, sensitivity), path)
    if problem is not None:
        _check_problem(problem)


@FUZZ
@given(
    n_channels=st.integers(1, 8),
    gaps=st.sets(st.integers(0, 7), max_size=2),
    far=st.sampled_from([None, 40, 10**6, 10**15]),
)
def test_per_channel_sensitivity_with_gaps(
    workdir, n_channels: int, gaps: set[int], far: int | None
) -> None:
    """Rows for channels 0..C-1 load as an array; a gap is an error naming the first one."""
    channels = (set(range(n_channels)) - gaps) | ({far} if far else set())
    assume(channels)
    path = workdir() / "scores.csv"
    lines = ["layer,precision,channel,score"] + [f"c0,int8,{c},{c + 1}" for c in sorted(channels)]
    path.write_text("\n".join(lines) + "\n")
    first_gap = min(set(range(len(channels) + 1)) - channels)
    sensitivity = _clean(lambda: load_sensitivity(path), path)
    if sensitivity is None:
        assert first_gap < max(channels)
        with pytest.raises(MilpMapError, match=f"no score for channel {first_gap};"):
            load_sensitivity(path)
    else:
        assert channels == set(range(len(channels)))
        _check_sensitivity(sensitivity)
        got = list(sensitivity.channel_scores[("c0", "int8")])
        assert got == [c + 1 for c in range(len(channels))]


@pytest.mark.parametrize("text", ["", "\ufeff", "layer,precision,score\n", "\x00\xff\xfe", "a\n\n"])
def test_empty_and_headerless_sensitivity_files(workdir, text: str) -> None:
    path = workdir() / "scores.csv"
    path.write_bytes(text.encode("latin-1") if "\xff" in text else text.encode())
    assert _clean(lambda: load_sensitivity(path), path) is None


# ----------------------------------------------------------------------------- the CLI


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main([*argv, "--quiet"])
    _, err = capsys.readouterr()
    return code, err


def _cli_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Exit code 2 and exactly one line 'error: ...' on stderr."""
    code, err = _cli(capsys, *argv)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@FEW
@given(data=st.binary(max_size=256))
def test_cli_random_onnx_bytes_exit_2(workdir, capsys, data: bytes) -> None:
    path = workdir() / "model.onnx"
    path.write_bytes(data)
    code, err = _cli(capsys, "--model", str(path), "--platform", "diana")
    if code != 0:
        assert code == 2, err
        assert str(path) in _single_error_line(err)


def _single_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@FEW
@given(doc=platform_documents())
def test_cli_random_platform_exit_2_or_solves(workdir, capsys, doc: dict[str, Any]) -> None:
    directory = workdir()
    (directory / "model.onnx").write_bytes(VALID_BYTES)
    (directory / "p.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    code, err = _cli(
        capsys, "--model", str(directory / "model.onnx"), "--platform", str(directory / "p.yaml")
    )
    assert code in (0, 2), err
    if code == 2:
        _single_error_line(err)


@FEW
@given(csv=SENSITIVITY_FILES)
def test_cli_random_sensitivity_exit_2_or_solves(workdir, capsys, csv: str) -> None:
    directory = workdir()
    (directory / "model.onnx").write_bytes(VALID_BYTES)
    (directory / "scores.csv").write_bytes(csv.encode())
    code, err = _cli(
        capsys,
        "--model",
        str(directory / "model.onnx"),
        "--sensitivity",
        str(directory / "scores.csv"),
    )
    assert code in (0, 2), err
    if code == 2:
        _single_error_line(err)


def test_cli_bad_files_name_the_file(workdir, capsys) -> None:
    directory = workdir()
    (directory / "model.onnx").write_bytes(VALID_BYTES[: len(VALID_BYTES) // 3])
    assert str(directory / "model.onnx") in _cli_error(
        capsys, "--model", str(directory / "model.onnx")
    )
    (directory / "p.yaml").write_text("name: t\naccelerators: [\n")
    assert str(directory / "p.yaml") in _cli_error(capsys, "--platform", str(directory / "p.yaml"))
    (directory / "s.csv").write_text("layer,precision,score\nconv1,int8,nan\n")
    assert str(directory / "s.csv") in _cli_error(capsys, "--sensitivity", str(directory / "s.csv"))


MIN_PROXY = 4 * 1.0  # every layer of the tiny model scores at least 1.0 at either precision


@FEW
@given(fraction=st.floats(0.0, 0.999))
def test_cli_proxy_budget_below_minimum_exit_2(workdir, capsys, fraction: float) -> None:
    directory = workdir()
    (directory / "model.onnx").write_bytes(VALID_BYTES)
    layers = ["conv1", "conv2", "pool", "fc"]
    rows = [f"{name},int8,1.0" for name in layers] + [f"{name},ternary,2.0" for name in layers]
    (directory / "s.csv").write_text("layer,precision,score\n" + "\n".join(rows) + "\n")
    budget = MIN_PROXY * fraction
    line = _cli_error(
        capsys,
        "--model",
        str(directory / "model.onnx"),
        "--sensitivity",
        str(directory / "s.csv"),
        "--max-proxy",
        repr(budget),
    )
    assert "proxy budget" in line and "unreachable" in line, line
    assert f"{MIN_PROXY:.6g}" in line, line


@pytest.mark.parametrize("flag", ["--max-proxy", "--max-latency", "--max-energy"])
@pytest.mark.parametrize("value", ["-1", "nan"])
def test_cli_negative_or_nan_bound_exit_2(capsys, flag: str, value: str) -> None:
    line = _cli_error(capsys, "--model", "resnet20", flag, value)
    assert flag in line
