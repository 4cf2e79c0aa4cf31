"""The DIANA preset's static + dynamic power reproduces ODiMO's energy formula exactly."""

from __future__ import annotations

import pytest

from milp_map.core.problem import Constraints, build_problem
from milp_map.core.split import build_split_problem
from milp_map.evaluation.evaluator import evaluate_split
from milp_map.formulations import channel_split
from milp_map.io.models import load_model
from milp_map.io.platforms import load_platform
from milp_map.io.scores import shipped_sensitivity

P_HYBRID_W = 42.39e-3  # both units busy (ODiMO, DIANA measurements)
P_ANALOG_W = 28.74e-3  # analog alone
P_DIGITAL_W = 24.96e-3  # digital alone


def odimo_energy(t_digital: float, t_analog: float) -> float:
    """E = p_hyb*min + p_ana*(t_ana - min) + p_dig*(t_dig - min) for one split layer."""
    both = min(t_digital, t_analog)
    return P_HYBRID_W * both + P_ANALOG_W * (t_analog - both) + P_DIGITAL_W * (t_digital - both)


@pytest.fixture(scope="module")
def split_problem():
    problem = build_problem(
        load_model("resnet20"),
        load_platform("diana"),
        shipped_sensitivity("resnet20"),
        "energy",
        Constraints(max_proxy_fraction=0.5),
    )
    return build_split_problem(problem, 8)


def test_every_split_of_every_layer_matches_odimo(split_problem) -> None:
    """For each split layer and each (digital, analog) channel split, our energy equals ODiMO's."""
    checked = 0
    for unit in split_problem.units:
        if not unit.splittable:
            continue
        digital = {p.channels: p for p in unit.parts["digital"]}
        analog = {p.channels: p for p in unit.parts["analog"]}
        for n_digital in range(0, unit.channels + 1, unit.group_size):
            t_d = digital[n_digital].latency_s if n_digital else 0.0
            n_analog = unit.channels - n_digital
            t_a = analog[n_analog].latency_s if n_analog else 0.0
            dynamic = (digital[n_digital].energy_j if n_digital else 0.0) + (
                analog[n_analog].energy_j if n_analog else 0.0
            )
            ours = split_problem.static_power_w * max(t_d, t_a) + dynamic
            assert ours == pytest.approx(odimo_energy(t_d, t_a), rel=1e-9)
            checked += 1
    assert checked > 100


def test_whole_network_energy_of_the_optimum_matches_odimo(split_problem) -> None:
    """Sum of ODiMO's per-layer formula over the optimal split mapping = the evaluator's energy."""
    solution = channel_split.solve(split_problem, "cpsat")
    assert solution.status == "optimal"
    evaluation = evaluate_split(split_problem, solution.mapping)
    total = 0.0
    for unit in split_problem.units:
        parts = solution.mapping[split_problem.base.units[unit.index].name]
        times = {"digital": 0.0, "analog": 0.0}
        for part in parts:
            options = unit.parts[part.accelerator]
            count = unit.channels if not unit.splittable else part.channels
            times[part.accelerator] = next(o.latency_s for o in options if o.channels == count)
        total += odimo_energy(times["digital"], times["analog"])
    assert evaluation.metrics.energy_j == pytest.approx(total, rel=1e-9)
    assert any(len(parts) == 2 for parts in solution.mapping.values())
