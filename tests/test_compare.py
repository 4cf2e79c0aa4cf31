"""The comparator: every registered method runs through one loop, rows are honest, CLI writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from milp_map.cli.compare import main
from milp_map.errors import MilpMapError
from milp_map.experiments.compare import METHOD_NAMES, RunSettings, compare, not_applicable
from milp_map.experiments.methods import run_method
from milp_map.io.synthetic import InstanceSpec, random_problem, random_split_problem

FAST = {"population": 12, "generations": 8, "evaluations": 200, "gradient_steps": 40, "lambdas": 6}
CLI_FAST = [
    "--population", "12", "--generations", "8", "--evaluations", "200",
    "--gradient-steps", "40", "--lambdas", "6",
]  # fmt: skip


def _problem():
    return random_problem(3, InstanceSpec(n_layers=5, n_accelerators=3, operating_points=2))


def test_run_method_runs_every_applicable_method() -> None:
    problem = _problem()
    exact = run_method("exact", problem)
    assert exact.status == "optimal"
    for name in METHOD_NAMES:
        if not_applicable(name, problem):
            continue
        solution = run_method(name, problem, seed=1, threads=1, **FAST)
        assert solution.extra["wall_time_s"] >= 0
        if solution.metrics is not None:
            value = solution.objective_value
            assert value >= exact.objective_value - problem.tolerance(problem.objective), name


def test_unknown_or_inapplicable_method_is_an_error() -> None:
    with pytest.raises(MilpMapError, match="unknown method"):
        run_method("simulated-annealing", _problem())


@pytest.mark.parametrize("split", [False, True])
def test_front_comparison_never_beats_the_exact_front(split: bool) -> None:
    target = random_split_problem(2) if split else _problem()
    settings = RunSettings(front=("latency", "energy"), **FAST)  # type: ignore[arg-type]
    methods = ["exact", "single", "greedy-fastest", "random", "nsga2", "gradient"]
    result = compare(target, methods, settings, progress=False)
    table = result.table.set_index("method")
    assert table.loc["exact", "hv_ratio"] == pytest.approx(1.0)
    assert (table["hv_ratio"].dropna() <= 1.0 + 1e-6).all()  # sweep resolution
    within = table[table["within_bounds"]]
    assert (within["gap_pct"] >= -1e-6).all()


def test_accuracy_hook_fills_the_column() -> None:
    result = compare(
        _problem(),
        ["exact", "greedy-fastest"],
        RunSettings(),
        accuracy_fn=lambda solution: 0.5,
        progress=False,
    )
    assert list(result.table["accuracy"]) == [0.5, 0.5]


def test_cli_writes_csv_and_markdown(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    methods = "exact,single,manual,greedy-per-proxy,random,nsga2,gradient"
    args = ["--model", "resnet8", "--methods", methods, "--jobs", "2", "--quiet"]
    code = main([*args, "--out-dir", str(tmp_path), *CLI_FAST])
    assert code == 0
    csv = tmp_path / "compare_resnet8_diana_layer.csv"
    table = pd.read_csv(csv)
    assert list(table["method"]) == methods.split(",")
    assert table.loc[table["method"] == "exact", "gap_pct"].item() == pytest.approx(0.0)
    markdown = (tmp_path / "compare_resnet8_diana_layer.md").read_text()
    assert "| method" in markdown and "nsga2" in markdown
    assert "resnet8 on diana" in capsys.readouterr().out


def test_cli_measures_shipped_real_models_only(tmp_path: Path) -> None:
    # mnist_resnet (trained) gets a measured top-1 per method; resnet8 (random weights) none
    for model, measured in (("mnist_resnet", True), ("resnet8", False)):
        argv = ["--model", model, "--methods", "exact,single", "--quiet"]
        assert main([*argv, "--out-dir", str(tmp_path)]) == 0
        table = pd.read_csv(tmp_path / f"compare_{model}_diana_layer.csv")
        assert table["accuracy"].notna().all() == measured
        if measured:
            all_digital = table.loc[table["method"] == "single", "accuracy"].item()
            assert 97.0 <= all_digital <= 100.0  # int8 everywhere keeps fp32's top-1
            assert table["accuracy"].between(0.0, 100.0).all()


def test_cli_front_end_to_end(tmp_path: Path) -> None:
    """`python -m milp_map.compare` as a user runs it, with a front."""
    args = ["--model", "resnet8", "--pareto", "latency,energy", "--out-dir", str(tmp_path)]
    args += ["--methods", "exact,greedy-fastest,random,nsga2"]
    run = subprocess.run(
        [sys.executable, "-m", "milp_map.compare", *args, *CLI_FAST],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "methods" in run.stderr  # the progress bar
    table = pd.read_csv(tmp_path / "compare_resnet8_diana_layer_latency_energy.csv")
    assert {"hypervolume", "hv_ratio", "front_points"} <= set(table.columns)


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--methods", "exact,nope", "--out-dir", str(tmp_path)]) == 2
    (tmp_path / "afile").write_text("")
    assert main(["--out", str(tmp_path / "afile")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--lambdas", "0"], "--lambdas must be >= 1"),
        (["--seed", "-1"], "--seed must be in 0.."),
        (["--threads", "0"], "--threads must be >= 1"),
        (["--time-limit", "0"], "--time-limit must be > 0"),
        (["--methods", ","], "name at least one"),
    ],
)
def test_bad_settings_are_one_line_errors(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["--model", "resnet8", "--quiet", "--out-dir", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


CTRL_C_DURING_THE_SOLVE = """
import os, signal, sys
import pulp
from milp_map.cli.compare import main

solve = pulp.LpProblem.solve

def pressed(self, *args, **kwargs):
    # Ctrl-C lands once the exact method's HiGHS solve is under way (its handler is set)
    pulp.LpProblem.solve = solve
    os.kill(os.getpid(), signal.SIGINT)
    return solve(self, *args, **kwargs)

pulp.LpProblem.solve = pressed
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_in_the_exact_solve_stops_the_whole_comparison(tmp_path: Path) -> None:
    """The solver catches Ctrl-C and answers with its best mapping so far: that row is
    written, no later method runs, exit 130 (it went on with every other method)."""
    argv = ["--model", "resnet8", "--methods", "exact,single,greedy-fastest", "--quiet"]
    command = [sys.executable, "-c", CTRL_C_DURING_THE_SOLVE, *argv, "--solver", "highs"]
    run = subprocess.run(
        [*command, "--out-dir", str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 130, run.stderr[-2000:]
    assert "interrupted: the table holds exact only" in run.stderr
    table = pd.read_csv(tmp_path / "compare_resnet8_diana_layer.csv")
    assert list(table["method"]) == ["exact"]


def test_ctrl_c_in_a_baseline_keeps_the_methods_done(monkeypatch: pytest.MonkeyPatch) -> None:
    from milp_map.experiments import methods

    def pressed(target, settings):
        raise KeyboardInterrupt

    monkeypatch.setitem(methods.METHODS, "single", pressed)
    try:
        result = compare(_problem(), ["exact", "single", "greedy-fastest"], progress=False)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the comparison: nothing done would be written")
    assert result.interrupted
    assert list(result.solutions) == ["exact"] and list(result.table["method"]) == ["exact"]


def test_ctrl_c_with_worker_processes_keeps_the_methods_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The parent takes Ctrl-C (workers ignore it): the running methods are ended, the
    finished ones kept."""
    from milp_map.experiments import compare as comparator

    as_completed = comparator.as_completed

    def first_then_ctrl_c(futures):
        yield next(as_completed(futures))
        raise KeyboardInterrupt

    monkeypatch.setattr(comparator, "as_completed", first_then_ctrl_c)
    methods = ["single", "greedy-fastest", "greedy-least-energy"]
    try:
        result = compare(_problem(), methods, jobs=2, progress=False)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the comparison: nothing done would be written")
    assert result.interrupted and len(result.solutions) == 1
    assert set(result.solutions) <= set(methods)
