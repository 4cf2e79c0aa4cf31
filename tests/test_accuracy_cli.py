"""`solve --max-accuracy-drop`: calibrated proxy budget, then a measured check (issue 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from milp_map.cli.solve import main
from milp_map.io.models import shipped_model_path

pytestmark = pytest.mark.skipif(
    shipped_model_path("mnist_resnet") is None, reason="needs the shipped mnist_resnet model"
)


def test_solve_measures_the_mapping_against_the_allowed_drop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.json"
    code = main(
        ["--model", "mnist_resnet", "--max-accuracy-drop", "1", "--quiet", "--out", str(out)]
    )
    data = json.loads(out.read_text())
    accuracy = data["accuracy"]
    assert code == (1 if accuracy["exceeded"] else 0)
    assert accuracy["drop_pp"] == pytest.approx(
        100 * (accuracy["reference_top1"] - accuracy["top1"])
    )
    assert accuracy["exceeded"] == (accuracy["drop_pp"] > 1.0)
    assert data["constraints"]["max_proxy"] == data["constraints"]["proxy_budget"]
    assert data["metrics"]["accuracy_proxy"] <= data["constraints"]["proxy_budget"]
    assert "hessian" in data["sensitivity"]
    assert "measured top-1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "resnet20", "--max-accuracy-drop", "1"], "shipped real model"),
        (
            ["--model", "mnist_resnet", "--max-accuracy-drop", "1", "--max-proxy-fraction", "0.2"],
            "sets the proxy budget",
        ),
        (["--model", "mnist_resnet", "--max-accuracy-drop", "-1"], ">= 0"),
    ],
)
def test_bad_requests_are_one_line_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
