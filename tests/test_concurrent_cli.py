"""`--schedule concurrent` end to end: HaX-CoNN's instance, the result file (re-checked by the
schedule checker), the Gantt chart, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from milp_map.cli.solve import main, make_schedule_problem, parse_args
from milp_map.evaluation.timeline import (
    JobRun,
    Schedule,
    check_schedule,
    evaluate_schedule,
    objective_value,
)

HAXCONN = [
    "--schedule",
    "concurrent",
    "--model",
    "googlenet",
    "--model",
    "alexnet",
    "--platform",
    "xavier-haxconn",
    "--max-proxy-fraction",
    "1",
]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _schedule_from_json(problem, data: dict) -> Schedule:
    """The file's jobs as a Schedule of the problem the same arguments build."""
    index = {job.name: j for j, job in enumerate(problem.jobs)}
    runs = {}
    for entry in data["jobs"]:
        j = index[f"{entry['network']}:{entry['unit']}"]
        option = next(
            o
            for o, opt in enumerate(problem.jobs[j].options)
            if opt.accelerator == entry["accelerator"]
            and opt.operating_point == entry["operating_point"]
        )
        runs[j] = JobRun(j, option, entry["start_s"], entry["end_s"], entry["slowed"])
    return Schedule(tuple(runs[j] for j in range(len(problem.jobs))))


def test_haxconn_instance_is_solved_checked_written_and_plotted(capsys, tmp_path: Path) -> None:
    out, png = tmp_path / "r.json", tmp_path / "g.png"
    argv = [*HAXCONN, "--out", str(out), "--plot", str(png)]
    code, stdout, err = _run(capsys, *argv)
    assert code == 0, err
    assert "status optimal (cpsat" in stdout
    assert "all-gpu" in stdout and "all-dla" in stdout and "best sequential" in stdout
    data = json.loads(out.read_text())
    assert data["status"] == "optimal" and data["models"] == ["googlenet", "alexnet"]
    # HaX-CoNN's measured groups: GPU-only 3.51 ms; the joint optimum overlaps the networks
    assert data["references"]["all-gpu"] == pytest.approx(3.51e-3)
    assert data["objective_value"] < 0.75 * data["references"]["all-gpu"]
    problem = make_schedule_problem(parse_args(argv))
    schedule = _schedule_from_json(problem, data)
    assert check_schedule(problem, schedule) == []
    metrics = evaluate_schedule(problem, schedule)
    assert data["objective_value"] == pytest.approx(objective_value(problem, metrics), rel=1e-12)
    assert data["metrics"]["energy_j"] == pytest.approx(metrics.energy_j, rel=1e-12)
    assert data["best_bound"] <= data["objective_value"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_switch_limit_completion_objective_and_milp(capsys, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    code, _, err = _run(
        capsys,
        *HAXCONN,
        "--max-switches",
        "1",
        "--objective",
        "completion",
        "--quiet",
        "--out",
        str(out),
    )
    assert code == 0, err
    data = json.loads(out.read_text())
    assert data["status"] == "optimal"
    assert max(data["metrics"]["switches"].values()) <= 1
    assert data["objective_value"] == pytest.approx(sum(data["metrics"]["completion_s"].values()))
    code, stdout, err = _run(
        capsys, "--schedule", "concurrent", "--model", "alexnet", "--platform", "xavier-haxconn",
        "--solver", "highs", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert "status optimal (highs" in stdout


def test_an_unreachable_deadline_exits_2(capsys) -> None:
    code, _, err = _run(capsys, *HAXCONN, "--deadline", "alexnet=1e-4")
    assert code == 2
    assert err.strip().startswith("error: no schedule meets the bounds")


def test_a_schedule_not_found_in_time_exits_1(capsys) -> None:
    code, out, err = _run(
        capsys,
        *("--schedule", "concurrent", "--model", "googlenet", "--platform", "jetson-xavier"),
        *("--solver", "dp", "--time-limit", "0.01"),
    )
    assert code == 1
    assert "status time_limit (series-dp" in out
    assert err.strip().startswith("error: no schedule found")


def test_sequential_plot_writes_a_gantt_chart(capsys, tmp_path: Path) -> None:
    png = tmp_path / "seq.png"
    code, _, err = _run(capsys, "--model", "resnet8", "--quiet", "--plot", str(png))
    assert code == 0, err
    assert png.stat().st_size > 1000


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--model", "resnet8", "--model", "alexnet"], "several --model need --schedule"),
        (["--objective", "weighted"], "--objective weighted needs --schedule concurrent"),
        (["--max-switches", "1"], "--max-switches need(s) --schedule concurrent"),
        ([*HAXCONN, "--deadline", "vgg=1"], "--deadline vgg=1: no network 'vgg'"),
        ([*HAXCONN, "--deadline", "soon"], "'soon' is not a number"),
        ([*HAXCONN, "--granularity", "channel"], "drop --granularity channel"),
        ([*HAXCONN, "--weight", "2"], "--weight must be in [0, 1]"),
        ([*HAXCONN, "--max-switches", "-1"], "--max-switches must be >= 0"),
        (["--schedule", "concurrent", "--model", "resnet8", "--platform", "xavier-haxconn"],
         "no cost rows for network 'resnet8'"),
    ],
)  # fmt: skip
def test_bad_concurrent_inputs_exit_2_with_one_line(capsys, argv, expected) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert expected in lines[0]


@pytest.mark.parametrize("objective", ["makespan", "energy"])
def test_reference_lines_show_each_quantity_once_and_budgets_name_networks(
    capsys, objective: str
) -> None:
    code, stdout, err = _run(capsys, *HAXCONN, "--objective", objective, "--quiet")
    assert code == 0, err
    assert "proxy budget googlenet " in stdout and ", alexnet " in stdout
    rows = stdout.split("reference schedules")[1].splitlines()[1:]
    assert rows
    for row in rows:
        assert row.count("makespan") == 1 and row.count("energy") == 1, row
        assert row.index(objective) < row.index("%)")  # the objective first, with its gain


def test_gantt_labels_every_job_with_its_network_and_keeps_the_legend_off_the_rows(
    capsys, tmp_path: Path
) -> None:
    from milp_map.evaluation.gantt import network_tags, plot_gantt

    out = tmp_path / "r.json"
    argv = [*HAXCONN, "--out", str(out), "--quiet"]
    assert _run(capsys, *argv)[0] == 0
    problem = make_schedule_problem(parse_args(argv))
    schedule = _schedule_from_json(problem, json.loads(out.read_text()))
    fig = plot_gantt(problem, schedule)
    (ax,) = fig.axes
    texts = sorted(t.get_text() for t in ax.texts)
    expected = sorted(
        f"{network_tags(problem.names)[problem.jobs[r.job].network]} "
        f"{problem.networks[problem.jobs[r.job].network].units[problem.jobs[r.job].unit].name}"
        for r in schedule.runs
        if r.end_s > r.start_s
    )
    assert texts == expected
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 > ax.get_window_extent().x1  # right of the rows, hiding none


def test_network_tags_are_distinct() -> None:
    from milp_map.evaluation.gantt import network_tags

    assert network_tags(["googlenet", "alexnet"]) == ["G", "A"]
    assert network_tags(["googlenet", "gpt2"]) == ["GO", "GP"]
    assert network_tags(["resnet18", "resnet18"]) == ["RES0", "RES1"]
