"""Every zoo model solves to proven optimality on the shipped presets, and solvers agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from milp_map.core.problem import Constraints, build_problem
from milp_map.formulations import layerwise
from milp_map.io.models import load_model
from milp_map.io.platforms import load_platform
from milp_map.io.scores import data_free_sensitivity, shipped_sensitivity, write_sensitivity
from milp_map.io.zoo import list_models

ROCKPI_MODELS = ["alexnet", "googlenet", "mobilenet_v1", "resnet50", "squeezenet", "yolov3"]


@pytest.mark.parametrize("model", list_models())
def test_every_zoo_model_solves_optimally_on_diana(model: str) -> None:
    problem = build_problem(
        load_model(model),
        load_platform("diana"),
        shipped_sensitivity(model),
        "energy",
        Constraints(max_proxy_fraction=0.3),
    )
    solution = layerwise.solve(problem, "cpsat")
    assert solution.status == "optimal"
    assert solution.metrics.accuracy_proxy <= problem.proxy_budget + problem.tolerance("proxy")


@pytest.mark.parametrize("model", ROCKPI_MODELS)
def test_rockpi_models_solve_and_backends_agree(model: str) -> None:
    problem = build_problem(
        load_model(model),
        load_platform("rockpi-n10"),
        shipped_sensitivity(model),
        "latency",
        Constraints(max_proxy_fraction=0.5),
    )
    cpsat = layerwise.solve(problem, "cpsat")
    highs = layerwise.solve(problem, "highs")
    assert cpsat.status == highs.status == "optimal"
    # both proven optimal: their values must match to the solvers' resolution
    assert highs.objective_value == pytest.approx(cpsat.objective_value, rel=1e-7)


def test_shipped_data_free_scores_are_reproducible(tmp_path) -> None:
    """Regenerating a zoo model's data-free scores gives the shipped file byte for byte."""
    graph = load_model("resnet8")
    out = tmp_path / "resnet8.csv"
    write_sensitivity(data_free_sensitivity(graph), out)
    shipped = shipped_sensitivity("resnet8")
    assert out.read_text() == Path(shipped.source).read_text()
    assert shipped.kind == "data-free"
