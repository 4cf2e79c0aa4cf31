"""Aliased and deeply nested YAML (platforms and sweep grids): a one-line refusal, never a
hang or a traceback (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milp_map.errors import MilpMapError
from milp_map.experiments.sweep.grid import load_grid
from milp_map.io.platforms import load_platform
from milp_map.io.tables import MAX_YAML_VALUES

LOADERS = {"platform": load_platform, "grid": load_grid}


def _aliases(levels: int, fan_out: int) -> str:
    """`levels` lists, each holding `fan_out` aliases of the one before: fan_out**levels values."""
    lines = [f"l0: &l0 [{', '.join(['x'] * fan_out)}]"]
    for k in range(1, levels):
        lines.append(f"l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * fan_out)}]")
    return "\n".join(lines) + "\nname: bomb\naccelerators: []\nmodels: [a]\nplatforms: [b]\n"


@pytest.mark.parametrize("kind", list(LOADERS))
def test_a_billion_laughs_is_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(_aliases(9, 9))
    with pytest.raises(MilpMapError, match="expands to more than") as caught:
        LOADERS[kind](path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("kind", list(LOADERS))
@pytest.mark.parametrize("shape", ["[", "{a: "])
def test_deep_nesting_is_refused(tmp_path: Path, kind: str, shape: str) -> None:
    close = "]" if shape == "[" else "}"
    path = tmp_path / "deep.yaml"
    path.write_text(f"name: x\nx: {shape * 5000}1{close * 5000}\n")
    with pytest.raises(MilpMapError, match="nested") as caught:
        LOADERS[kind](path)
    assert "\n" not in str(caught.value)


@settings(max_examples=25, deadline=None)
@given(levels=st.integers(1, 8), fan_out=st.integers(1, 12))
def test_aliases_either_load_or_are_refused_by_their_size(
    tmp_path_factory: pytest.TempPathFactory, levels: int, fan_out: int
) -> None:
    path = tmp_path_factory.mktemp("alias") / "p.yaml"
    path.write_text(_aliases(levels, fan_out))
    expanded = sum(fan_out**k for k in range(1, levels + 1))  # values the lists hold
    try:
        load_platform(path)  # then refused for its empty accelerator list
    except MilpMapError as exc:
        message = str(exc)
        assert "\n" not in message
        refused = "expands to more than" in message
        if expanded > 2 * MAX_YAML_VALUES:
            assert refused
        if expanded < MAX_YAML_VALUES // 2:
            assert not refused


@pytest.mark.parametrize("depth", [3_000, 100_000])
def test_a_deeply_nested_mapping_json_is_one_line(tmp_path: Path, depth: int) -> None:
    from milp_map.io.mappings import load_mapping_file

    path = tmp_path / "deep.json"
    path.write_text("[" * depth + "]" * depth)
    with pytest.raises(MilpMapError, match="nested too deeply") as caught:
        load_mapping_file(path)
    assert "\n" not in str(caught.value)


def test_a_5000_digit_number_in_a_mapping_json_is_one_line(tmp_path: Path) -> None:
    """Python refuses to parse integers of more than 4,300 digits (found by a hostile sweep:
    check, export and evaluate gave a traceback)."""
    from milp_map.io.mappings import load_mapping_file

    path = tmp_path / "big.json"
    path.write_text('[{"name": "c1", "accelerator": "digital", "channels": ' + "9" * 5000 + "}]")
    with pytest.raises(MilpMapError, match="cannot be read") as caught:
        load_mapping_file(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_a_seed_past_32_bits_is_refused_in_a_grid_and_on_the_command_line(tmp_path: Path) -> None:
    """Found by a hostile sweep: a 26-digit seed broke the results table on every rerun."""
    from milp_map.cli.solve import main as solve
    from milp_map.cli.sweep import main as sweep

    grid = tmp_path / "g.yaml"
    grid.write_text(
        "models: [resnet8]\nplatforms: [diana]\nsettings: {seeds: [" + "9" * 26 + "]}\n"
    )
    assert sweep([str(grid), "--out", str(tmp_path / "o"), "--jobs", "0", "--quiet"]) == 2
    assert solve(["--seed", str(2**31), "--quiet"]) == 2
    assert not (tmp_path / "o" / "results.csv").exists()
