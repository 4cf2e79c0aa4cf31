"""build_problem on tiny graphs: option tables, groups, transitions, scores and proxy budgets."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from milp_map.core.graph import LayerGraph, graph_from_layers
from milp_map.core.platform import Platform
from milp_map.core.problem import Constraints, Problem, build_problem
from milp_map.core.scores import Sensitivity
from milp_map.errors import MilpMapError
from milp_map.evaluation.evaluator import evaluate_choice
from milp_map.exact import bruteforce
from milp_map.formulations import layerwise
from milp_map.io.platforms import load_groups_file, load_platform
from milp_map.io.scores import load_sensitivity
from milp_map.io.synthetic import conv_layer

LAYERS = ("l0", "l1", "l2", "l3")
PRECISION = {"a": "int8", "b": "fp32"}
OUT_ELEMS = {"l0": 8 * 64, "l1": 16 * 64, "l2": 16 * 64, "l3": 4 * 64}
"""Output elements of each layer of `_graph()` (C_out * 8 * 8)."""


def _graph(name: str = "net") -> LayerGraph:
    """l0 -> l1 -> l2 -> l3 with a skip l1 -> l3; 8x8 maps, channels 3-8-16-16-4."""
    layers = [
        conv_layer("l0", 3, 8),
        conv_layer("l1", 8, 16),
        conv_layer("l2", 16, 16),
        conv_layer("l3", 16, 4),
    ]
    edges = [("l0", "l1"), ("l1", "l2"), ("l2", "l3"), ("l1", "l3")]
    return graph_from_layers(name, layers, edges)


def _cost(unit: str, acc: str) -> tuple[float, float]:
    """Distinct per-row costs so a wrong lookup shows: (latency_s, energy_j)."""
    k = int(unit[1:]) + 1 if unit[1:].isdigit() else 10
    return (0.01 * k, 0.001 * k) if acc == "a" else (0.02 * k, 0.003 * k)


def _rows(units=LAYERS, accs=("a", "b"), skip=()) -> str:
    return "".join(
        f"{u},{a},{_cost(u, a)[0]},{_cost(u, a)[1]}\n"
        for u in units
        for a in accs
        if (u, a) not in skip
    )


def _platform(tmp_path: Path, rows: str, extra: str = "", static_power_w: float = 0.0):
    (tmp_path / "costs.csv").write_text("layer,accelerator,latency_s,energy_j\n" + rows)
    (tmp_path / "p.yaml").write_text(
        f"name: tiny\nstatic_power_w: {static_power_w}\naccelerators:\n"
        "  - {name: a, precision: int8, cost: {table: costs.csv}}\n"
        "  - {name: b, precision: fp32, cost: {table: costs.csv}}\n" + extra
    )
    return load_platform(tmp_path / "p.yaml")


def _scores(layers=LAYERS, skip=()) -> Sensitivity:
    """int8 scores 1, 2, 3, 4 and fp32 scores 0.1, 0.2, 0.3, 0.4 for l0..l3."""
    scores = {}
    for i, layer in enumerate(layers):
        scores[(layer, "int8")] = float(i + 1)
        scores[(layer, "fp32")] = 0.1 * (i + 1)
    return Sensitivity({k: v for k, v in scores.items() if k not in skip}, "scores.csv", "file")


def _choice(problem: Problem, accelerators: dict[str, str]) -> list[int]:
    return [
        problem.option_index(i, accelerators[u.name], None) for i, u in enumerate(problem.units)
    ]


# ----------------------------------------------------------------------------- units and options


def test_units_and_options_come_from_the_table(tmp_path: Path) -> None:
    problem = build_problem(_graph(), _platform(tmp_path, _rows()), _scores())
    assert [u.name for u in problem.units] == list(LAYERS)
    assert [u.layers for u in problem.units] == [(name,) for name in LAYERS]
    for i, unit in enumerate(problem.units):
        got = {(o.accelerator, o.latency_s, o.energy_j, o.precision) for o in unit.options}
        want = {(a, *_cost(unit.name, a), PRECISION[a]) for a in "ab"}
        assert got == want
        proxies = {o.accelerator: o.proxy for o in unit.options}
        assert proxies == pytest.approx({"a": i + 1.0, "b": 0.1 * (i + 1)})
    assert problem.unit_of_layer == {name: i for i, name in enumerate(LAYERS)}


def test_a_missing_table_row_means_the_layer_cannot_run_there(tmp_path: Path) -> None:
    platform = _platform(tmp_path, _rows(skip={("l1", "b"), ("l3", "a")}))
    problem = build_problem(_graph(), platform, _scores())
    runs_on = {u.name: sorted(o.accelerator for o in u.options) for u in problem.units}
    assert runs_on == {"l0": ["a", "b"], "l1": ["a"], "l2": ["a", "b"], "l3": ["b"]}
    with pytest.raises(MilpMapError, match="unit 'l1' cannot run on b"):
        problem.option_index(1, "b", None)


def test_a_unit_no_accelerator_can_run_is_named(tmp_path: Path) -> None:
    platform = _platform(tmp_path, _rows(skip={("l2", "a"), ("l2", "b")}))
    with pytest.raises(MilpMapError) as info:
        build_problem(_graph(), platform, _scores())
    message = str(info.value)
    assert "'l2'" in message
    assert "'l0'" not in message and "'l1'" not in message and "'l3'" not in message
    assert "platform 'tiny'" in message and "'net'" in message
    assert "\n" not in message


def test_an_accelerator_ops_list_excludes_layers_despite_table_rows(tmp_path: Path) -> None:
    _platform(tmp_path, _rows())
    yaml_path = tmp_path / "p.yaml"
    yaml_path.write_text(
        yaml_path.read_text().replace("precision: fp32,", "precision: fp32, ops: [gemm],")
    )
    problem = build_problem(_graph(), load_platform(yaml_path), _scores())
    assert all([o.accelerator for o in u.options] == ["a"] for u in problem.units)


def test_a_table_that_names_other_networks_only_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "costs.csv").write_text(
        "network,layer,accelerator,latency_s,energy_j\nother,l0,a,1,1\nother,l0,b,1,1\n"
    )
    (tmp_path / "p.yaml").write_text(
        "name: tiny\naccelerators:\n"
        "  - {name: a, precision: int8, cost: {table: costs.csv}}\n"
        "  - {name: b, precision: fp32, cost: {table: costs.csv}}\n"
    )
    with pytest.raises(MilpMapError, match=r"costs\.csv: no cost rows for network 'net'.*other"):
        build_problem(_graph(), load_platform(tmp_path / "p.yaml"), _scores())


def test_unknown_objective(tmp_path: Path) -> None:
    with pytest.raises(MilpMapError, match="unknown objective 'speed'"):
        build_problem(_graph(), _platform(tmp_path, _rows()), _scores(), "speed")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- groups

GROUP_ROWS = _rows(units=("l0", "g12", "l3"))


def _check_grouped(problem: Problem) -> None:
    assert [(u.name, u.layers) for u in problem.units] == [
        ("l0", ("l0",)),
        ("g12", ("l1", "l2")),
        ("l3", ("l3",)),
    ]
    assert problem.unit_of_layer == {"l0": 0, "l1": 1, "l2": 1, "l3": 2}
    group = problem.units[1]
    assert {(o.accelerator, o.latency_s, o.energy_j) for o in group.options} == {
        ("a", *_cost("g12", "a")),
        ("b", *_cost("g12", "b")),
    }
    # a group's proxy is the sum of its layers' scores at the accelerator's precision
    assert {o.accelerator: o.proxy for o in group.options} == pytest.approx({"a": 5.0, "b": 0.5})
    # unit edges: l0 -> g12 carries l0's output; g12 -> l3 carries l1's and l2's outputs
    assert [(e.src, e.dst, e.elems) for e in problem.edges] == [
        (0, 1, OUT_ELEMS["l0"]),
        (1, 2, OUT_ELEMS["l1"] + OUT_ELEMS["l2"]),
    ]


def test_groups_in_the_yaml_merge_layers(tmp_path: Path) -> None:
    platform = _platform(tmp_path, GROUP_ROWS, "groups: {g12: [l1, l2]}\n")
    _check_grouped(build_problem(_graph(), platform, _scores()))


def test_groups_csv_applies_to_its_network_only(tmp_path: Path) -> None:
    (tmp_path / "groups.csv").write_text(
        "network,group,layer\nnet,g12,l1\nnet,g12,l2\nother,g01,l0\nother,g01,l1\n"
    )
    platform = _platform(tmp_path, GROUP_ROWS + _rows(units=("l1", "l2")), "groups: groups.csv\n")
    _check_grouped(build_problem(_graph(), platform, _scores()))
    ungrouped = build_problem(_graph("zzz"), platform, _scores())
    assert [u.name for u in ungrouped.units] == list(LAYERS)


def test_groups_side_file_overrides_the_platform(tmp_path: Path) -> None:
    """`--groups FILE` takes a CSV without a network column; it applies to any network."""
    (tmp_path / "side.csv").write_text("group,layer\ng12,l1\ng12,l2\n")
    groups = load_groups_file(tmp_path / "side.csv")
    assert groups == {"*": {"l1": "g12", "l2": "g12"}}
    platform = _platform(
        tmp_path, GROUP_ROWS + _rows(units=("l1", "l2")), "groups: {g01: [l0, l1]}\n"
    )
    _check_grouped(build_problem(_graph(), platform, _scores(), groups=groups["*"]))


def test_a_group_without_table_rows_names_its_layers(tmp_path: Path) -> None:
    platform = _platform(tmp_path, _rows(), "groups: {g12: [l1, l2]}\n")
    with pytest.raises(MilpMapError) as info:
        build_problem(_graph(), platform, _scores())
    message = str(info.value)
    assert "'g12' (layers l1, l2)" in message
    assert "'l0'" not in message and "'l3'" not in message


def test_a_non_contiguous_group_is_an_error(tmp_path: Path) -> None:
    """{l0, l2} around l1 would have to be left and re-entered."""
    platform = _platform(tmp_path, _rows() + _rows(units=("g02",)), "groups: {g02: [l0, l2]}\n")
    with pytest.raises(MilpMapError) as info:
        build_problem(_graph(), platform, _scores())
    message = str(info.value)
    assert "not contiguous" in message
    assert "g02" in message and "l1" in message
    assert "\n" not in message


def test_a_group_naming_an_unknown_layer_is_an_error(tmp_path: Path) -> None:
    platform = _platform(tmp_path, _rows(), "groups: {g: [l1, conv9]}\n")
    with pytest.raises(MilpMapError, match="layers the model does not have: 'conv9'"):
        build_problem(_graph(), platform, _scores())


def test_a_layer_in_two_groups_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MilpMapError, match="layer 'l1' is in both 'g' and 'h'"):
        _platform(tmp_path, _rows(), "groups: {g: [l0, l1], h: [l1, l2]}\n")


# ----------------------------------------------------------------------------- transitions

TRANSITIONS = """\
transitions:
  - {from: a, to: b, latency_s: 1.0e-3, energy_j: 2.0e-3, bytes_per_s: 1.0e+6}
  - {from: b, to: a, latency_s: 3.0e-3, energy_j: 4.0e-3}
"""


def test_transition_costs_by_hand(tmp_path: Path) -> None:
    """a -> b: 1 ms + bytes / 1 MB/s (a is int8: 1 byte per element); b -> a: a flat 3 ms."""
    problem = build_problem(_graph(), _platform(tmp_path, _rows(), TRANSITIONS), _scores())
    by_edge = {(LAYERS[e.src], LAYERS[e.dst]): e for e in problem.edges}
    assert set(by_edge) == {("l0", "l1"), ("l1", "l2"), ("l2", "l3"), ("l1", "l3")}
    for (src, _), edge in by_edge.items():
        assert edge.elems == OUT_ELEMS[src]
        assert edge.costs == {
            ("a", "b"): pytest.approx((1e-3 + OUT_ELEMS[src] * 1 / 1e6, 2e-3), rel=1e-12),
            ("b", "a"): (3e-3, 4e-3),
        }


def test_transition_bytes_use_the_producers_precision(tmp_path: Path) -> None:
    """b runs fp32, so b -> a moves 4 bytes per element."""
    extra = "transitions:\n  - {from: b, to: a, latency_s: 1.0e-4, bytes_per_s: 4.0e+6}\n"
    problem = build_problem(_graph(), _platform(tmp_path, _rows(), extra), _scores())
    for edge in problem.edges:
        src = LAYERS[edge.src]
        expected = 1e-4 + OUT_ELEMS[src] * 4 / 4e6
        # pairs not listed (a -> b) cost nothing and are left out
        assert edge.costs == {("b", "a"): pytest.approx((expected, 0.0), rel=1e-12)}


def test_mapping_metrics_include_transitions_and_static_power(tmp_path: Path) -> None:
    platform = _platform(tmp_path, _rows(), TRANSITIONS, static_power_w=0.5)
    problem = build_problem(_graph(), platform, _scores())
    mapping = {"l0": "a", "l1": "b", "l2": "b", "l3": "a"}
    metrics = evaluate_choice(problem, _choice(problem, mapping))
    unit_latency = sum(_cost(u, a)[0] for u, a in mapping.items())
    unit_energy = sum(_cost(u, a)[1] for u, a in mapping.items())
    # l0 -> l1 is a -> b (512 elements); l1 -> l2 stays on b; l2 -> l3 and l1 -> l3 are b -> a
    moves_latency = (1e-3 + 512 / 1e6) + 3e-3 + 3e-3
    moves_energy = 2e-3 + 4e-3 + 4e-3
    latency = unit_latency + moves_latency
    assert metrics.latency_s == pytest.approx(latency, rel=1e-12)
    assert metrics.energy_j == pytest.approx(unit_energy + moves_energy + 0.5 * latency, rel=1e-12)
    assert metrics.accuracy_proxy == pytest.approx(1.0 + 0.2 + 0.3 + 4.0, rel=1e-12)


def test_transition_table_rows_override_the_yaml_pairs(tmp_path: Path) -> None:
    (tmp_path / "moves.csv").write_text(
        "network,layer,from,to,latency_s,energy_j\n"
        "net,l0,a,b,0.5,0.25\n"  # this network's l0 output
        "other,l1,a,b,9,9\n"  # another network: ignored
        ",l2,b,a,0.125,0\n"  # any network
    )
    extra = TRANSITIONS + "transition_table: moves.csv\n"
    problem = build_problem(_graph(), _platform(tmp_path, _rows(), extra), _scores())
    by_edge = {(LAYERS[e.src], LAYERS[e.dst]): e.costs for e in problem.edges}
    assert by_edge[("l0", "l1")] == {("a", "b"): (0.5, 0.25), ("b", "a"): (3e-3, 4e-3)}
    assert by_edge[("l1", "l2")][("a", "b")] == pytest.approx((1e-3 + 1024 / 1e6, 2e-3))
    assert by_edge[("l2", "l3")][("b", "a")] == (0.125, 0.0)
    assert by_edge[("l1", "l3")][("b", "a")] == (3e-3, 4e-3)


def test_solvers_match_brute_force_on_a_table_platform(tmp_path: Path) -> None:
    """Transitions, a group and a proxy budget together; every mapping enumerated by hand."""
    platform = _platform(tmp_path, GROUP_ROWS, TRANSITIONS + "groups: {g12: [l1, l2]}\n", 0.2)
    constraints = Constraints(max_proxy_fraction=0.4)
    problem = build_problem(_graph(), platform, _scores(), "energy", constraints)
    budget = problem.proxy_budget
    feasible = [
        evaluate_choice(problem, choice)
        for choice in itertools.product(*(range(len(u.options)) for u in problem.units))
    ]
    best = min(m.energy_j for m in feasible if m.accuracy_proxy <= budget + 1e-12)
    assert best > min(m.energy_j for m in feasible)  # the budget binds
    assert bruteforce.solve(problem).objective_value == pytest.approx(best, rel=1e-9)
    for solver in ("cpsat", "highs"):
        assert layerwise.solve(problem, solver).objective_value == pytest.approx(best, rel=1e-6)


# ----------------------------------------------------------------------------- sensitivity


def test_a_missing_score_for_a_runnable_precision_names_layer_and_precision(
    tmp_path: Path,
) -> None:
    platform = _platform(tmp_path, _rows())
    with pytest.raises(MilpMapError) as info:
        build_problem(_graph(), platform, _scores(skip={("l2", "fp32")}))
    message = str(info.value)
    assert message.startswith("scores.csv:")
    assert "layer 'l2'" in message and "precision 'fp32'" in message
    assert "\n" not in message


def test_a_missing_score_for_a_precision_the_layer_cannot_run_is_fine(tmp_path: Path) -> None:
    platform = _platform(tmp_path, _rows(skip={("l2", "b")}))
    problem = build_problem(_graph(), platform, _scores(skip={("l2", "fp32")}))
    assert [o.accelerator for o in problem.units[2].options] == ["a"]


def test_scores_for_layers_the_model_lacks_are_an_error(tmp_path: Path) -> None:
    scores = _scores(layers=(*LAYERS, "fc9"))
    with pytest.raises(MilpMapError, match=r"scores\.csv: .*'net' does not have: 'fc9'"):
        build_problem(_graph(), _platform(tmp_path, _rows()), scores)


@pytest.mark.parametrize(
    ("csv", "expected"),
    [
        ("layer,precision\nl0,int8\n", "missing column(s) score"),
        ("layer,precision,score\nl0,int8,high\n", "row 2: score is not a number: 'high'"),
        ("layer,precision,score\nl0,int8,1\nl0,int8,2\n", "row 3: duplicate score"),
        ("layer,precision,score\nl0,int8,-1\n", "row 2: score must be finite and >= 0"),
        ("layer,precision,score\nl0,int8,nan\n", "row 2: score must be finite and >= 0"),
        ("layer,precision,score\n", "no scores"),
        ("layer,precision,score\nl0,int8,1,2\n", "more fields than the header"),
    ],
)
def test_sensitivity_file_errors(tmp_path: Path, csv: str, expected: str) -> None:
    path = tmp_path / "s.csv"
    path.write_text(csv)
    with pytest.raises(MilpMapError) as info:
        load_sensitivity(path)
    assert str(info.value).startswith(str(path))
    assert expected in str(info.value)


def test_sensitivity_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        "layer,precision,score\n"
        + "".join(f"{k[0]},{k[1]},{v}\n" for k, v in _scores().scores.items())
    )
    loaded = load_sensitivity(path)
    assert loaded.scores == pytest.approx(_scores().scores)
    problem = build_problem(_graph(), _platform(tmp_path, _rows()), loaded)
    assert problem.sensitivity.source == str(path)


# ----------------------------------------------------------------------------- proxy budget


def _budget_problem(tmp_path: Path, constraints: Constraints) -> Problem:
    platform: Platform = _platform(tmp_path, _rows(skip={("l3", "b")}))
    return build_problem(_graph(), platform, _scores(), constraints=constraints)


def test_proxy_range_and_budget_from_fraction(tmp_path: Path) -> None:
    """Lowest: l0..l2 on fp32 (0.1+0.2+0.3) and l3 on int8 only (4); highest: all int8."""
    low, high = 0.1 + 0.2 + 0.3 + 4.0, 1.0 + 2.0 + 3.0 + 4.0
    for fraction, budget in [(0.0, low), (1.0, high), (0.25, low + 0.25 * (high - low))]:
        problem = _budget_problem(tmp_path, Constraints(max_proxy_fraction=fraction))
        assert problem.proxy_range == pytest.approx((low, high))
        assert problem.proxy_budget == pytest.approx(budget)
        assert problem.bound("proxy") == pytest.approx(budget)
    assert _budget_problem(tmp_path, Constraints()).proxy_budget is None


def test_the_tighter_of_max_proxy_and_fraction_wins(tmp_path: Path) -> None:
    both = Constraints(max_proxy=5.0, max_proxy_fraction=1.0)
    assert _budget_problem(tmp_path, both).proxy_budget == pytest.approx(5.0)
    both = Constraints(max_proxy=100.0, max_proxy_fraction=0.0)
    assert _budget_problem(tmp_path, both).proxy_budget == pytest.approx(4.6)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"max_latency_s": -1.0}, "--max-latency must be a finite number >= 0"),
        ({"max_latency_s": float("inf")}, "--max-latency must be a finite number >= 0, got inf"),
        ({"max_energy_j": float("nan")}, "--max-energy must be a finite number >= 0"),
        ({"max_proxy": -0.5}, "--max-proxy must be a finite number >= 0"),
        ({"max_proxy": float("inf")}, "--max-proxy must be a finite number >= 0"),
        ({"max_proxy_fraction": 1.5}, "--max-proxy-fraction must be in [0, 1]"),
    ],
)
def test_bad_constraints_name_the_flag(kwargs: dict, expected: str) -> None:
    with pytest.raises(MilpMapError) as info:
        Constraints(**kwargs)
    assert str(info.value).startswith(expected)


def test_table_rows_for_unknown_layers_are_named(tmp_path: Path) -> None:
    """A typo in a cost table's layer column is an error, not a silently unusable row."""
    platform = _platform(tmp_path, _rows() + _rows(units=("l9_typo",)))
    with pytest.raises(MilpMapError) as info:
        build_problem(_graph(), platform, _scores())
    assert "'l9_typo'" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_unit_costing_more_than_an_hour_is_refused_whatever_the_cost_model() -> None:
    """A 1e6 x 1e6 feature map on a roofline: days per layer, which no real run takes."""
    platform = load_platform("jetson-xavier")
    graph = graph_from_layers("huge", [conv_layer("big", 64, 64, hw=1_000_000)], [])
    scores = Sensitivity({("big", p): 0.0 for p in ("fp16", "int8")}, "none", "none")
    with pytest.raises(MilpMapError, match=r"unit .big. on gpu would take .* \(at most 3600 s"):
        build_problem(graph, platform, scores, "latency", Constraints())
    small = graph_from_layers("small", [conv_layer("big", 64, 64, hw=1_000)], [])
    assert build_problem(small, platform, scores, "latency", Constraints()).units
