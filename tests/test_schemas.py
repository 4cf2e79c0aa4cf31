"""The shipped JSON Schemas (data/schemas/): valid schemas, satisfied by every kind of file the
command line writes, and strict enough to name the first thing wrong in a hand-written mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from milp_map.cli.solve import main as solve
from milp_map.io.schemas import KINDS, kind_of, schema, schema_errors


@pytest.mark.parametrize("kind", KINDS)
def test_each_schema_is_a_valid_draft_2020_12_schema(kind: str) -> None:
    Draft202012Validator.check_schema(schema(kind))


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (["--model", "resnet8"], "result"),
        (["--model", "resnet8", "--granularity", "channel", "--group-size", "16"], "result"),
        (
            ["--model", "mobilenet_v1", "--platform", "rockpi-n10", "--max-proxy-fraction", "0.3"],
            "result",
        ),
        (["--model", "resnet8", "--pareto", "latency,proxy"], "front"),
        (
            [
                "--schedule",
                "concurrent",
                "--model",
                "googlenet",
                "--model",
                "alexnet",
                "--platform",
                "xavier-haxconn",
            ],
            "schedule",
        ),
    ],
)
def test_what_solve_writes_follows_its_schema(tmp_path: Path, capsys, argv, kind) -> None:
    out = tmp_path / "out.json"
    code = solve([*argv, "--out", str(out), "--quiet"])
    capsys.readouterr()
    assert code == 0
    data = json.loads(out.read_text())
    assert kind_of(data) == kind
    assert schema_errors(data, kind) == []
    if kind == "result":  # a result file is a mapping file too
        assert schema_errors(data, "mapping") == []


def test_nulls_the_reader_treats_as_absent_and_keys_of_ones_own_are_accepted() -> None:
    entry = {"name": "a", "accelerator": "d", "split": None, "channels": None, "op": None}
    header = {"constraints": None, "model_file": None, "model": None, "group_size": None}
    assert (
        schema_errors({"layers": [entry], **header, "x-note": "mine", "_by": "me"}, "mapping") == []
    )


@pytest.mark.parametrize(
    ("mapping", "first"),
    [
        ([{"name": "a", "acclerator": "digital"}], "[0]: unknown key(s) 'acclerator'"),
        ([{"name": "a"}], "[0]: needs one of `accelerator`, `split`"),
        ([{"name": "a", "accelerator": None}], "[0]: needs `split`"),
        ([{"name": "a", "split": "digital"}], "[0].split: 'digital' is not of type 'object'"),
        ({"layers": [], "constraint": {"max_latency_s": 1}}, "(top level): unknown key(s)"),
        ([{"name": "a", "accelerator": "d", "oprating_point": "f1"}], "[0]: unknown key(s)"),
        ([{"name": "a", "split": {"d": -4}}], "[0].split.d: -4 is less than the minimum of 0"),
        ([{"accelerator": "d"}], "[0]: 'name' is a required property"),
        ({"layers": [], "group_size": 0}, "group_size: 0 is less than the minimum of 1"),
        ({"layers": {}}, "layers: {} is not of type 'array'"),
        ("resnet8", "(top level): 'resnet8' is none of the allowed forms"),
    ],
)
def test_a_hand_written_mapping_gets_its_first_error_named(mapping, first: str) -> None:
    errors = schema_errors(mapping, "mapping")
    assert errors and errors[0].startswith(first), errors
