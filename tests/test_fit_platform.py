"""Fitting a platform to measured runs (milp_map/evaluation/fit.py, io/runs.py,
io/platform_writer.py, `python -m milp_map.fit_platform`).

The fit is checked where it can be wrong: unchanged parameters must reproduce the evaluator;
parameters that generated noise-free runs must come back; the written platform must make the
evaluator predict what the fit predicts; held-out runs must never reach the fit.
"""

from __future__ import annotations

import re
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
        ("network,run,mapping,latency_s\nm,r,g0=a,-1\n", "must be > 0"),
        ("network,run,mapping,latency_s\nm,r,g0=a,nan\n", "must be > 0"),
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
