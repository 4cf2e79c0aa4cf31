"""`python -m milp_map.sweep`: executors agree, reruns finish only missing cells, errors are
one line, and a sweep cell gives the same answer as `python -m milp_map.solve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from milp_map.cli.solve import main as solve_main
from milp_map.cli.sweep import main
from milp_map.experiments.sweep import executors as sweep_exec
from milp_map.experiments.sweep.grid import expand_grid, load_grid
from milp_map.experiments.sweep.store import RUN_COLUMNS, read_table

REPO = Path(__file__).resolve().parent.parent

GRID = """\
models: [resnet8, no_such_model]
platforms:
  - diana
  - name: diana-half-power
    base: diana
    scale: {static_power_w: 0.5, accelerators.*.dynamic_power_w: 0.5}
granularities: [layer, channel]
group_sizes: [16]
objectives: [latency]
budgets: [0.3, 1.0, {max_latency_s: 1.0e-9}]
"""
"""2 models x 2 platforms x 2 granularities x 3 budgets = 24 cells: 8 solved per platform
pair, 4 infeasible (latency bound), 12 errors (unknown model)."""


def _grid(tmp_path: Path, text: str = GRID, name: str = "grid.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _comparable(out: Path) -> pd.DataFrame:
    table = read_table(out / "results.csv")
    return table.drop(columns=list(RUN_COLUMNS)).sort_values("key").reset_index(drop=True)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The grid run on two local processes (the default executor)."""
    tmp = tmp_path_factory.mktemp("local")
    grid = _grid(tmp)
    assert main([str(grid), "--out", str(tmp / "out"), "--jobs", "2", "--quiet"]) == 0
    return tmp / "out"


def test_dask_and_local_processes_give_the_same_table(
    local_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        host="127.0.0.1",
        protocol="tcp://",
        dashboard_address=None,
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        out = tmp_path / "dask"
        code = main([str(_grid(tmp_path)), "--out", str(out), "--scheduler", address, "--quiet"])
    assert code == 0, capsys.readouterr().err
    local, dask = _comparable(local_run), _comparable(out)
    assert len(local) == 24
    pd.testing.assert_frame_equal(local, dask)
    for mapping in local["mapping_path"].dropna():
        layers = [json.loads((run / mapping).read_text())["layers"] for run in (local_run, out)]
        assert layers[0] == layers[1]


def test_failing_cells_are_rows_with_a_one_line_error(local_run: Path) -> None:
    table = read_table(local_run / "results.csv")
    assert table["key"].is_unique
    counts = table["status"].value_counts().to_dict()
    assert counts == {"optimal": 8, "infeasible": 4, "error": 12}
    errors = table.loc[table["status"] != "optimal", "error"]
    assert all(isinstance(e, str) and e and "\n" not in e for e in errors)
    assert (
        table.loc[table["model"] == "no_such_model", "error"]
        .str.contains("unknown model 'no_such_model'")
        .all()
    )
    solved = table[table["status"] == "optimal"]
    assert solved["mapping_path"].map(lambda p: (local_run / p).is_file()).all()
    assert table.loc[table["status"] != "optimal", "mapping_path"].isna().all()


def test_a_cell_equals_the_solve_command(local_run: Path, tmp_path: Path) -> None:
    """Same objective as `python -m milp_map.solve` with the cell's options, both granularities;
    the scaled-power variant has the same latency and exactly half the energy."""
    table = read_table(local_run / "results.csv")
    table = table[(table["model"] == "resnet8") & (table["max_proxy_fraction"] == 0.3)]
    table = table[table["max_latency_s"].isna()].set_index(["platform", "granularity"])
    for granularity in ("layer", "channel"):
        out = tmp_path / f"{granularity}.json"
        argv = ["--model", "resnet8", "--max-proxy-fraction", "0.3", "--quiet", "--out", str(out)]
        argv += ["--granularity", granularity, "--group-size", "16"]
        assert solve_main(argv) == 0
        expected = json.loads(out.read_text())
        row = table.loc[("diana", granularity)]
        assert row["status"] == expected["status"] == "optimal"
        assert row["objective_value"] == pytest.approx(expected["objective_value"], rel=1e-12)
        half = table.loc[("diana-half-power", granularity)]
        assert half["latency_s"] == pytest.approx(row["latency_s"], rel=1e-12)
        assert half["energy_j"] == pytest.approx(row["energy_j"] / 2, rel=1e-9)


SMALL_GRID = """\
models: [resnet8]
platforms: [diana]
granularities: [layer]
objectives: [latency, energy]
budgets: [0.2, 0.4, 0.6]
"""
"""6 quick cells."""

KILL_ON_THIRD_CELL = """
import os, signal, sys
from milp_map.cli import sweep
from milp_map.experiments.sweep import executors as sweep_exec
solve, calls = sweep_exec.run_cell, []
def run_cell(cell, threads):
    calls.append(cell.key)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return solve(cell, threads)
sweep_exec.run_cell = run_cell
sweep.main(sys.argv[1:])
"""


def test_a_killed_sweep_reruns_only_the_missing_cells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grid, out = _grid(tmp_path, SMALL_GRID), tmp_path / "out"
    keys = [cell.key for cell in expand_grid(load_grid(grid))]
    killed = subprocess.run(
        [sys.executable, "-c", KILL_ON_THIRD_CELL, str(grid), "--out", str(out), "--jobs", "0"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr
    first = {p.stem: p.read_text() for p in (out / "cells").glob("*.json")}
    assert list(first) and set(first) == set(keys[:2])
    (out / "cells" / ".torn.json.tmp").write_text('{"key": "trunc')  # a write cut short

    ran: list[str] = []
    solve = sweep_exec.run_cell

    def counting(cell, threads):
        ran.append(cell.key)
        return solve(cell, threads)

    monkeypatch.setattr(sweep_exec, "run_cell", counting)
    assert main([str(grid), "--out", str(out), "--jobs", "0", "--quiet"]) == 0
    assert ran == keys[2:]
    assert {
        p.stem: p.read_text() for p in (out / "cells").glob("*.json") if p.stem in first
    } == first
    table = read_table(out / "results.csv")
    assert list(table["key"]) == keys
    assert set(table["status"]) == {"optimal"}

    ran.clear()
    assert main([str(grid), "--out", str(out), "--jobs", "0", "--quiet"]) == 0
    assert ran == []


def test_ctrl_c_keeps_finished_cells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    grid, out = _grid(tmp_path, SMALL_GRID), tmp_path / "out"
    solve, calls = sweep_exec.run_cell, []

    def interrupted_on_fourth(cell, threads):
        calls.append(cell.key)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return solve(cell, threads)

    monkeypatch.setattr(sweep_exec, "run_cell", interrupted_on_fourth)
    assert main([str(grid), "--out", str(out), "--jobs", "0", "--quiet"]) == 130
    assert "rerun to resume" in capsys.readouterr().err
    assert len(read_table(out / "results.csv")) == 3
    monkeypatch.setattr(sweep_exec, "run_cell", solve)
    assert main([str(grid), "--out", str(out), "--jobs", "0", "--quiet"]) == 0
    assert "3 already in" in capsys.readouterr().err
    assert len(read_table(out / "results.csv")) == 6


BAD_GRIDS = {
    "unknown field": ("models: [resnet8]\nplatforms: [diana]\nobjective: [energy]\n", "objective"),
    "missing field": ("platforms: [diana]\n", "models"),
    "fraction > 1": (
        "models: [resnet8]\nplatforms: [diana]\nbudgets: [0.5, 1.5]\n",
        "budgets[1].max_proxy_fraction",
    ),
    "bad objective": (
        "models: [resnet8]\nplatforms: [diana]\nobjectives: [throughput]\n",
        "objectives[0]",
    ),
    "unknown method": (
        "models: [resnet8]\nplatforms: [diana]\nmethods: [exact, no_such_method]\n",
        "methods[1].name",
    ),
    "bad solver": (
        "models: [resnet8]\nplatforms: [diana]\nsettings: {solver: gurobi}\n",
        "settings.solver",
    ),
    "unnamed variant": (
        "models: [resnet8]\nplatforms: [{base: diana, scale: {static_power_w: 2}}]\n",
        "platforms[0]",
    ),
    "override typo": (
        "models: [resnet8]\nplatforms:\n  - {name: v, base: diana, "
        "scale: {accelerators.analgo.dynamic_power_w: 2}}\n",
        "platforms[0].scale.accelerators.analgo.dynamic_power_w",
    ),
    "override breaks the platform": (
        "models: [resnet8]\nplatforms:\n  - {name: v, base: diana, "
        "set: {accelerators.digital.dynamic_powr_w: 1}}\n",
        "platforms[0]",
    ),
    "unknown preset": ("models: [resnet8]\nplatforms: [no_such_board]\n", "platforms[0].base"),
    "duplicate labels": ("models: [resnet8]\nplatforms: [diana, diana]\n", "platforms"),
    "not YAML": ("models: [resnet8\n", "line"),
    "variant of a platform file that is not YAML": (
        "models: [resnet8]\nplatforms:\n  - {name: v, base: broken.yaml, "
        "scale: {static_power_w: 2}}\n",
        "platforms[0].base",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_GRIDS))
def test_grid_errors_are_one_line_naming_file_and_field(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, field = BAD_GRIDS[case]
    (tmp_path / "broken.yaml").write_text("name: [\n")
    grid = _grid(tmp_path, text, name="bad_grid.yaml")
    assert main([str(grid), "--out", str(tmp_path / "out"), "--jobs", "0"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "bad_grid.yaml" in lines[0] and field in lines[0], lines[0]


def test_dask_executors_need_dask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    grid = _grid(tmp_path, SMALL_GRID)
    assert main([str(grid), "--out", str(tmp_path / "out"), "--dask-local", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("pip install 'milp_map[dask]'") and len(err.splitlines()) == 1


def test_baselines_run_through_the_comparator_and_never_beat_the_optimum(tmp_path: Path) -> None:
    grid = _grid(tmp_path, SMALL_GRID + "methods: [exact, greedy-per-proxy, single]\n")
    assert main([str(grid), "--out", str(tmp_path / "out"), "--jobs", "0", "--quiet"]) == 0
    table = read_table(tmp_path / "out" / "results.csv")
    assert len(table) == 18
    exact = table[table["method"] == "exact"].set_index(["objective", "max_proxy_fraction"])
    for _, row in table[table["method"] != "exact"].iterrows():
        assert row["status"] in ("feasible", "time_limit"), row["error"]
        if row["status"] == "feasible":
            best = exact.loc[(row["objective"], row["max_proxy_fraction"]), "objective_value"]
            assert row["objective_value"] >= best * (1 - 1e-9)


HANGING_SWEEP = """
import sys
sys.path.insert(0, sys.argv[1])
from sweep_hang import run_cell
from milp_map.cli import sweep
from milp_map.experiments.sweep import executors as sweep_exec
sweep_exec.run_cell = run_cell
sweep.main(sys.argv[2:])
"""


def _children(pid: int) -> list[int]:
    """Live processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while we looked
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_until(condition, timeout_s: float, what: str) -> None:
    """Poll `condition` (not a fixed sleep, so a loaded machine only makes it slower)."""
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_no_process_outlives_a_killed_sweep(tmp_path: Path) -> None:
    """SIGKILL the sweep while both workers are busy: the workers and multiprocessing's
    resource tracker all end by themselves."""
    grid, out, pids = _grid(tmp_path, SMALL_GRID), tmp_path / "out", tmp_path / "pids"
    pids.mkdir()
    argv = [sys.executable, "-c", HANGING_SWEEP, str(REPO / "tests"), str(grid)]
    argv += ["--out", str(out), "--jobs", "2", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "MILP_MAP_TEST_PIDS": str(pids)}
    parent = subprocess.Popen(argv, env=env, cwd=REPO)
    spawned: list[int] = []
    try:
        _wait_until(lambda: len(list(pids.iterdir())) == 2, 300, "both workers to start")
        spawned = _children(parent.pid)
        workers = {int(p.name) for p in pids.iterdir()}
        assert workers <= set(spawned)
        parent.kill()
        parent.wait(timeout=60)
        _wait_until(lambda: not any(_alive(p) for p in spawned), 60, "the orphans to end")
    finally:
        parent.kill()
        for pid in spawned:
            if _alive(pid):
                os.kill(pid, 9)
