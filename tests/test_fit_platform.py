"""Fitting a platform to measured runs (milp_map/evaluation/fit.py, io/runs.py,
io/platform_writer.py, `python -m milp_map.fit_platform`).

The fit is checked where it can be wrong: unchanged parameters must reproduce the evaluator;
parameters that generated noise-free runs must come back; the written platform must make the
evaluator predict what the fit predicts; held-out runs must never reach the fit.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from milp_map.errors import MilpMapError
from milp_map.evaluation import fit as F
from milp_map.evaluation.evaluator import evaluate_choice
from milp_map.io.platform_writer import PlatformAdjustment, write_adjusted_platform
from milp_map.io.platforms import load_platform, resolve_platform_path
from milp_map.io.problems import load_problem
from milp_map.io.runs import MeasuredRun, read_runs
from milp_map.resources import data_path

ROCKPI_RUNS = data_path("platforms", "rockpi-n10", "runs.csv")


def random_runs(problem, n: int, seed: int, network: str) -> list[MeasuredRun]:
    """`n` random layer-wise mappings of `problem` (latency filled in later)."""
    rng = np.random.default_rng(seed)
    runs = []
    for k in range(n):
        mapping = {}
        for unit in problem.units:
            option = unit.options[rng.integers(len(unit.options))]
            mapping[unit.name] = (option.accelerator, option.operating_point)
        runs.append(MeasuredRun(network, f"r{k}", mapping, 1.0, None))
    return runs


def with_costs(runs, terms, fit: F.PlatformFit, energy: bool) -> list[MeasuredRun]:
    return [
        MeasuredRun(
            r.network, r.run, r.mapping, fit.latency_s(t), fit.energy_j(t) if energy else None
        )
        for r, t in zip(runs, terms, strict=True)
    ]


def write_runs(path: Path, runs: list[MeasuredRun]) -> Path:
    lines = ["network,run,mapping,latency_s,energy_j"]
    for r in runs:
        tokens = " ".join(f"{u}={a}" + (f"@{p}" if p else "") for u, (a, p) in r.mapping.items())
        energy = "" if r.energy_j is None else repr(r.energy_j)
        lines.append(f"{r.network},{r.run},{tokens},{r.latency_s!r},{energy}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def mobilenet():
    platform = load_platform("rockpi-n10")
    problem = load_problem("mobilenet_v1", platform, max_proxy_fraction=1.0)
    return platform, problem


def test_unchanged_fit_is_the_evaluator(mobilenet):
    platform, problem = mobilenet
    runs = random_runs(problem, 25, 1, "mobilenet_v1")
    identity = F.unchanged(frozenset({"mobilenet_v1"}), platform.static_power_w)
    for run in runs:
        terms = F.run_terms(problem, run)
        choice = [
            problem.option_index(i, *run.mapping[u.name]) for i, u in enumerate(problem.units)
        ]
        metrics = evaluate_choice(problem, choice)
        assert identity.latency_s(terms) == pytest.approx(metrics.latency_s, rel=1e-12)
        assert identity.energy_j(terms) == pytest.approx(metrics.energy_j, rel=1e-12)


KNOWN = PlatformAdjustment(
    networks=frozenset({"mobilenet_v1"}),
    latency_scale={"cpu_big": 0.9, "cpu_little": 1.2, "gpu": 1.05, "npu": 1.6},
    energy_scale={"cpu_big": 1.1, "cpu_little": 0.8, "gpu": 1.0, "npu": 1.3},
    busy_power_w={"npu": 0.8},
    transfer_latency_scale=1.4,
    transfer_energy_scale=0.7,
    switch_s={("cpu_big", "npu"): 0.008, ("npu", "cpu_little"): 0.003, ("gpu", "npu"): 0.012},
    static_power_w=0.5,
)


def test_fit_recovers_the_parameters_of_noise_free_runs(mobilenet):
    platform, problem = mobilenet
    runs = random_runs(problem, 120, 2, "mobilenet_v1")
    terms = [F.run_terms(problem, r) for r in runs]
    truth = F.PlatformFit(KNOWN, platform.static_power_w)
    measured = with_costs(runs, terms, truth, energy=True)
    fit = F.fit_runs(terms, measured, platform.static_power_w).adjustment
    for acc, scale in KNOWN.latency_scale.items():
        assert fit.latency_scale[acc] == pytest.approx(scale, rel=2e-3)
    assert fit.transfer_latency_scale == pytest.approx(1.4, rel=5e-3)
    for pair, seconds in KNOWN.switch_s.items():
        assert fit.switch_s[pair] == pytest.approx(seconds, abs=2e-4)
    others = [s for p, s in fit.switch_s.items() if p not in KNOWN.switch_s]
    assert max(others) < 2e-4
    # energy scale, busy power and static power are near-collinear where per-level power
    # hardly varies: only their sum per run is identifiable, so that is what is checked
    truth_j = [truth.energy_j(t) for t in terms]
    fitted = F.PlatformFit(fit, platform.static_power_w)
    assert [fitted.energy_j(t) for t in terms] == pytest.approx(truth_j, rel=5e-3)


def test_a_glitched_run_does_not_drag_the_fit(mobilenet, monkeypatch):
    platform, problem = mobilenet
    runs = random_runs(problem, 60, 3, "mobilenet_v1")
    terms = [F.run_terms(problem, r) for r in runs]
    truth = F.PlatformFit(KNOWN, platform.static_power_w)
    measured = with_costs(runs, terms, truth, energy=False)
    bad = measured[0]
    measured[0] = MeasuredRun(bad.network, bad.run, bad.mapping, bad.latency_s * 0.6, None)

    def worst_error_of_the_good_runs() -> float:
        fit = F.fit_runs(terms, measured, platform.static_power_w)
        good = zip(terms[1:], measured[1:], strict=True)
        return max(abs(fit.latency_s(t) / r.latency_s - 1) for t, r in good)

    assert worst_error_of_the_good_runs() < 0.02
    monkeypatch.setattr(F, "LOSS", "linear")  # plain least squares: the glitch drags it
    assert worst_error_of_the_good_runs() > 0.05


def test_cross_validation_never_shows_a_run_to_its_own_fit(mobilenet):
    _, problem = mobilenet
    runs = random_runs(problem, 30, 4, "mobilenet_v1")
    terms = [F.run_terms(problem, r) for r in runs]
    measured = with_costs(runs, terms, F.PlatformFit(KNOWN, 0.0), energy=False)
    folds = F.folds_of(measured, 5, seed=0)
    predicted = F.cross_validate(terms, measured, 0.0, folds=5, seed=0)
    assert [p.run.run for p in predicted] == [r.run for r in measured]
    k = folds[7]
    train = [i for i in range(len(runs)) if folds[i] != k]
    alone = F.fit_runs([terms[i] for i in train], [measured[i] for i in train], 0.0)
    assert predicted[7].fitted_latency_s == pytest.approx(alone.latency_s(terms[7]), rel=1e-9)


def test_holdout_split_keeps_both_kinds_apart():
    runs = read_runs(ROCKPI_RUNS, "mobilenet_v1")
    train, test = F.holdout_split(runs, 0.3, seed=5)
    assert sorted(train + test) == list(range(len(runs)))
    assert any(runs[i].accelerators.__len__() > 1 for i in test)
    assert any(len(runs[i].accelerators) == 1 for i in test)
    assert F.holdout_split(runs, 0.3, seed=5) == (train, test)
    assert F.holdout_split(runs, 0.0, seed=5) == (list(range(len(runs))), [])


def test_written_table_platform_predicts_what_the_fit_does(tmp_path, mobilenet):
    platform, problem = mobilenet
    runs = random_runs(problem, 10, 5, "mobilenet_v1")
    out = write_adjusted_platform(
        resolve_platform_path("rockpi-n10"), KNOWN, tmp_path / "fitted.yaml", "fitted", "test"
    )
    fitted = load_problem("mobilenet_v1", load_platform(out), max_proxy_fraction=1.0)
    truth = F.PlatformFit(KNOWN, platform.static_power_w)
    for run in runs:
        choice = [fitted.option_index(i, *run.mapping[u.name]) for i, u in enumerate(fitted.units)]
        metrics = evaluate_choice(fitted, choice)
        terms = F.run_terms(problem, run)
        assert metrics.latency_s == pytest.approx(truth.latency_s(terms), rel=1e-7)
        assert metrics.energy_j == pytest.approx(truth.energy_j(terms), rel=1e-7)
    other = load_problem("yolov3", load_platform(out), max_proxy_fraction=1.0)
    before = load_problem("yolov3", platform, max_proxy_fraction=1.0)
    assert other.units[3].options[0].latency_s == before.units[3].options[0].latency_s


@pytest.mark.parametrize("points", [False, True])
def test_written_analytical_platform_predicts_what_the_fit_does(tmp_path, points):
    source = tmp_path / "two.yaml"
    extra = (
        "    operating_points:\n      - {name: lo, freq_scale: 0.5, dynamic_power_w: 0.2}\n"
        "      - {name: hi, freq_scale: 1.0, dynamic_power_w: 0.9}\n"
        if points
        else "    dynamic_power_w: 0.7\n"
    )
    source.write_text(
        "name: two\nstatic_power_w: 0.1\naccelerators:\n"
        "  - name: a\n    precision: int8\n"
        "    cost: {model: roofline, macs_per_s: 2.0e+9, bytes_per_s: 1.0e+9, overhead_s: 1.0e-5}\n"
        + extra
        + "  - name: b\n    precision: int8\n    cost: {model: diana_digital}\n"
        "    dynamic_power_w: 0.3\n"
        "transitions:\n  - {from: a, to: b, latency_s: 2.0e-5, bytes_per_s: 5.0e+8}\n"
    )
    base = load_problem("mobilenet_v1", load_platform(source), max_proxy_fraction=1.0)
    adjustment = PlatformAdjustment(
        networks=frozenset({"mobilenet_v1"}),
        latency_scale={"a": 1.3, "b": 0.8},
        energy_scale={"a": 0.9, "b": 1.2},
        busy_power_w={"a": 0.05, "b": 0.2},
        transfer_latency_scale=1.5,
        switch_s={("a", "b"): 1e-4, ("b", "a"): 3e-4},
        static_power_w=0.25,
    )
    out = write_adjusted_platform(source, adjustment, tmp_path / "out.yaml", "out", "test")
    fitted = load_problem("mobilenet_v1", load_platform(out), max_proxy_fraction=1.0)
    truth = F.PlatformFit(adjustment, 0.1)
    for run in random_runs(base, 8, 6, "mobilenet_v1"):
        choice = [fitted.option_index(i, *run.mapping[u.name]) for i, u in enumerate(fitted.units)]
        metrics = evaluate_choice(fitted, choice)
        terms = F.run_terms(base, run)
        assert metrics.latency_s == pytest.approx(truth.latency_s(terms), rel=1e-9)
        assert metrics.energy_j == pytest.approx(truth.energy_j(terms), rel=1e-9)


def test_every_shipped_run_maps_onto_its_platform():
    for platform in ("rockpi-n10", "xavier-haxconn"):
        runs = read_runs(data_path("platforms", platform, "runs.csv"))
        data = F.measured_set(load_platform(platform), runs, None)
        assert len(data.terms) == len(runs)
    assert len(read_runs(ROCKPI_RUNS)) == 424


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("network,run,latency_s\n", "missing column(s) mapping"),
        ("network,run,mapping,latency_s\nm,r,g0:cpu,1\n", "not unit=accelerator"),
        ("network,run,mapping,latency_s\nm,r,g0=a g0=b,1\n", "names unit 'g0' twice"),
        ("network,run,mapping,latency_s\nm,r,g0=a,1\nm,r,g0=a,2\n", "appears twice"),
        ("network,run,mapping,latency_s\nm,r,g0=a,-1\n", "must be in 1e-09 .. 1e+06"),
        ("network,run,mapping,latency_s\nm,r,g0=a,nan\n", "must be in"),
        ("network,run,mapping,latency_s\nm,r,g0=a,1e-200\n", "must be in"),
        ("network,run,mapping,latency_s,energy_j\nm,r,g0=a,1,1e-300\n", "must be in 1e-12"),
        ("network,run,mapping,latency_s\nm,r,g0=a@,1\n", "not unit=accelerator"),
        ("network,run,mapping,latency_s,energy_j\nm,r,g0=a,1,x\n", "not a number"),
        ("network,run,mapping,latency_s\n", "no measured runs"),
    ],
)
def test_bad_runs_files_are_one_line(tmp_path, body, message):
    path = tmp_path / "runs.csv"
    path.write_text(body)
    with pytest.raises(MilpMapError, match=re.escape(message)) as info:
        read_runs(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_run_that_does_not_fit_its_network_names_the_run(tmp_path, mobilenet):
    platform, _ = mobilenet
    path = tmp_path / "runs.csv"
    path.write_text("network,run,mapping,latency_s\nmobilenet_v1,bad,g0=npu@f7,0.1\n")
    with pytest.raises(MilpMapError, match="run 'bad' of mobilenet_v1: the mapping leaves"):
        F.measured_set(platform, read_runs(path), None)
    path.write_text(
        "network,run,mapping,latency_s\nmobilenet_v1,odd,"
        + " ".join(f"g{i}=npu@f9" for i in range(14))
        + ",0.1\n"
    )
    with pytest.raises(MilpMapError, match="run 'odd' of mobilenet_v1: unit 'g0' cannot run"):
        F.measured_set(platform, read_runs(path), None)


def test_command_line_writes_a_platform_the_solver_reads(tmp_path):
    out = tmp_path / "fit"
    cmd = [sys.executable, "-m", "milp_map.fit_platform", "--network", "mobilenet_v1"]
    done = subprocess.run(
        [*cmd, "--out", str(out), "--name", "rp"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "held out, 2 mixed runs" in done.stdout
    assert (out / "rp.yaml").is_file() and (out / "rp" / "costs.csv").is_file()
    assert "split" in (out / "predictions.csv").read_text().splitlines()[0]
    solved = subprocess.run(
        [
            sys.executable,
            "-m",
            "milp_map.solve",
            "--model",
            "mobilenet_v1",
            "--platform",
            str(out / "rp.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert solved.returncode == 0, solved.stderr
    assert "optimal" in solved.stdout


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--holdout", "1"], "--holdout must be in [0, 1)"),
        (["--seed", "-3"], "--seed must be in"),
        (["--platform", "diana"], "ships no measured runs; give --runs"),
        (["--network", "nope"], "no measured runs of network 'nope'"),
    ],
)
def test_command_line_errors_are_one_line(tmp_path, flags, message):
    done = subprocess.run(
        [sys.executable, "-m", "milp_map.fit_platform", *flags, "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert message in done.stderr and done.stderr.count("\n") == 1


def _fit_cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "milp_map.fit_platform", *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_an_analytical_platform_with_transitions_is_fitted_end_to_end(tmp_path):
    """jetson-xavier: rooflines without operating points, `transitions` with bytes_per_s; the
    fitted numbers are numpy floats on their way to the YAML."""
    platform = load_platform("jetson-xavier")
    problem = load_problem("resnet8", platform, max_proxy_fraction=1.0)
    truth = F.PlatformFit(
        PlatformAdjustment(
            networks=frozenset({"resnet8"}),
            latency_scale={"gpu": 1.3, "dla": 0.8},
            transfer_latency_scale=1.2,
            switch_s={("gpu", "dla"): 2e-5},
        ),
        platform.static_power_w,
    )
    runs = random_runs(problem, 40, 7, "resnet8")
    terms = [F.run_terms(problem, r) for r in runs]
    measured = with_costs(runs, terms, truth, energy=True)
    csv = write_runs(tmp_path / "runs.csv", measured)
    done = _fit_cli("--platform", "jetson-xavier", "--runs", str(csv), "--out", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    assert "gpu: latency x 1.300" in done.stdout and "dla: latency x 0.800" in done.stdout
    fitted = load_problem("resnet8", load_platform(tmp_path / "o" / "jetson-xavier-fit.yaml"))
    for run in measured[:5]:
        choice = [fitted.option_index(i, *run.mapping[u.name]) for i, u in enumerate(fitted.units)]
        metrics = evaluate_choice(fitted, choice)
        assert metrics.latency_s == pytest.approx(run.latency_s, rel=1e-3)
        assert metrics.energy_j == pytest.approx(run.energy_j, rel=1e-2)


def test_the_fit_never_writes_over_its_own_platform(tmp_path):
    source = tmp_path / "plat"
    shutil.copytree(data_path("platforms", "rockpi-n10"), source / "rockpi-n10")
    shutil.copy(data_path("platforms", "rockpi-n10.yaml"), source)
    before = (source / "rockpi-n10" / "costs.csv").read_bytes()
    done = _fit_cli(
        *("--platform", str(source / "rockpi-n10.yaml"), "--runs", str(ROCKPI_RUNS)),
        *("--network", "mobilenet_v1", "--out", str(source), "--name", "rockpi-n10"),
    )
    assert done.returncode == 2 and "would overwrite a file of the platform" in done.stderr
    assert (source / "rockpi-n10" / "costs.csv").read_bytes() == before


def test_tables_of_the_same_name_and_shared_yaml_anchors_are_kept_apart(tmp_path):
    for folder, scale in (("a", 1.0), ("b", 2.0)):
        (tmp_path / folder).mkdir()
        rows = ["layer,accelerator,latency_s,energy_j"]
        rows += [f"*,x,{1e-3 * scale},{1e-3}", f"*,y,{2e-3 * scale},{1e-3}"]
        (tmp_path / folder / "costs.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "p.yaml").write_text(
        "name: p\naccelerators:\n"
        "  - {name: x, precision: int8, cost: {table: a/costs.csv}}\n"
        "  - {name: y, precision: int8, cost: {table: b/costs.csv}}\n"
        "  - name: z\n    precision: int8\n    cost: &shared {model: roofline, macs_per_s: 1.0e+9, "
        "bytes_per_s: 1.0e+9}\n    dynamic_power_w: 1.0\n"
        "  - {name: w, precision: int8, cost: *shared, dynamic_power_w: 1.0}\n"
    )
    adjustment = PlatformAdjustment(
        networks=frozenset({"any"}), latency_scale={"x": 2.0, "y": 3.0, "z": 1.5, "w": 0.5}
    )
    out = write_adjusted_platform(
        tmp_path / "p.yaml", adjustment, tmp_path / "o" / "q.yaml", "q", ""
    )
    fitted = load_platform(out)
    x, y = fitted.accelerator("x").table.rows, fitted.accelerator("y").table.rows
    assert x[("*", "*", "x", "")][0] == pytest.approx(2e-3)
    assert y[("*", "*", "y", "")][0] == pytest.approx(2 * 2e-3 * 3.0)
    assert fitted.accelerator("z").model.macs_per_s == pytest.approx(1e9 / 1.5)
    assert fitted.accelerator("w").model.macs_per_s == pytest.approx(1e9 / 0.5)


def test_runs_named_otherwise_and_a_network_held_out_whole_still_check(tmp_path):
    runs = [r for r in read_runs(ROCKPI_RUNS, "mobilenet_v1")]
    alias = [MeasuredRun("mine", r.run, r.mapping, r.latency_s, r.energy_j) for r in runs]
    csv = write_runs(tmp_path / "alias.csv", alias)
    done = _fit_cli("--runs", str(csv), "--model", "mobilenet_v1", "--out", str(tmp_path / "a"))
    assert done.returncode == 0, done.stderr
    one_alexnet = runs + read_runs(ROCKPI_RUNS, "alexnet")[:1]
    csv = write_runs(tmp_path / "two.csv", one_alexnet)
    for seed in range(4):  # in some of these splits alexnet's only run is held out
        done = _fit_cli("--runs", str(csv), "--seed", str(seed), "--out", str(tmp_path / "b"))
        assert done.returncode == 0, done.stderr


def test_a_written_platform_that_disagrees_with_the_fit_is_an_error_and_removed(
    tmp_path, monkeypatch
):
    real = F.write_adjusted_platform

    def unadjusted(source, adjustment, out_yaml, name, note):
        return real(source, PlatformAdjustment(networks=adjustment.networks), out_yaml, name, note)

    monkeypatch.setattr(F, "write_adjusted_platform", unadjusted)
    with pytest.raises(MilpMapError, match="please report this"):
        F.fit_platform(
            "rockpi-n10", ROCKPI_RUNS, tmp_path / "x.yaml", name="x", network="mobilenet_v1"
        )
    assert not (tmp_path / "x.yaml").exists() and not (tmp_path / "x").exists()


def test_parameters_at_their_limits_are_warned_about(tmp_path):
    runs = read_runs(ROCKPI_RUNS, "mobilenet_v1")
    in_ms = [MeasuredRun(r.network, r.run, r.mapping, r.latency_s * 1e3, None) for r in runs]
    done = _fit_cli("--runs", str(write_runs(tmp_path / "ms.csv", in_ms)), "--out", str(tmp_path))
    assert done.returncode == 0
    assert "warning: cpu_big latency x 4 is at the limit of its range" in done.stderr
