"""The wall-clock watchdog stops a HiGHS solve that runs past its time limit (issue 6)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import milp_map.solvers.mip as mip
from milp_map.cli.common import load_target
from milp_map.cli.solve import parse_args
from milp_map.evaluation.evaluator import evaluate_split
from milp_map.formulations import channel_split
from milp_map.solvers.base import CtrlC, SolverSettings


def test_callback_asks_highs_to_stop_only_past_the_deadline() -> None:
    data_in = SimpleNamespace(user_interrupt=False)
    CtrlC(deadline_s=float("inf")).callback(0, "", None, data_in, None)
    assert data_in.user_interrupt is False
    watchdog = CtrlC(deadline_s=0.0)
    watchdog.callback(0, "", None, data_in, None)
    assert data_in.user_interrupt is True
    assert watchdog.overran


def test_watchdog_returns_the_best_mapping_with_an_honest_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ResNet-18 split per channel takes HiGHS minutes; a deadline 1 s after the start stands
    # in for a solve that overran its 30 s limit.
    monkeypatch.setattr(mip, "WATCHDOG_GRACE_S", -29.0)
    args = parse_args(["--model", "resnet18", "--granularity", "channel", "--group-size", "1"])
    split = load_target(args, "resnet18")
    solution = channel_split.solve(split, "highs", SolverSettings(time_limit_s=30.0))
    assert "watchdog" in solution.detail
    assert solution.status in ("feasible", "time_limit")
    if solution.status == "feasible":
        assert solution.gap is not None and solution.gap > 0
        assert evaluate_split(split, solution.mapping).metrics == solution.metrics
