"""Same inputs and seed -> the same result file, byte for byte apart from timing fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from milp_map.cli.solve import main

TIMING = ("solve_time_s",)


def _without_timing(node):
    if isinstance(node, dict):
        return {k: _without_timing(v) for k, v in node.items() if k not in TIMING}
    if isinstance(node, list):
        return [_without_timing(v) for v in node]
    return node


@pytest.mark.parametrize(
    "argv",
    [
        ["--model", "resnet20", "--solver", "highs"],
        ["--model", "resnet20", "--solver", "cpsat"],
        ["--model", "resnet8", "--granularity", "channel", "--solver", "cpsat"],
        ["--model", "mobilenet_v1", "--platform", "rockpi-n10", "--objective", "energy"],
    ],
    ids=["highs", "cpsat", "channel-cpsat", "rockpi"],
)
def test_two_runs_write_the_same_json(tmp_path: Path, capsys, argv: list[str]) -> None:
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / f"{run}.json"
        assert main([*argv, "--quiet", "--out", str(out)]) == 0
        outputs.append(_without_timing(json.loads(out.read_text())))
    capsys.readouterr()
    assert json.dumps(outputs[0], sort_keys=True) == json.dumps(outputs[1], sort_keys=True)
