"""Concurrent schedules: CP-SAT = MILP = brute force on random small DAGs and pairs of chains;
every schedule passes the checker and the evaluator reproduces every reported objective."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from milp_map.core.graph import graph_from_layers
from milp_map.core.platform import Accelerator, CostTable, Platform, Transition
from milp_map.core.problem import Constraints, build_problem
from milp_map.core.schedule import ScheduleProblem, build_schedule_problem
from milp_map.core.scores import Sensitivity
from milp_map.errors import MilpMapError
from milp_map.evaluation.timeline import (
    JobRun,
    Schedule,
    check_schedule,
    evaluate_schedule,
    objective_value,
    serial,
    transition,
)
from milp_map.exact import bruteforce_schedule
from milp_map.formulations import concurrent, concurrent_mip
from milp_map.io.synthetic import conv_layer, random_graph


def random_schedule_problem(
    seed: int,
    shapes: tuple[str, ...] = ("residual",),
    n_layers: int = 4,
    n_accelerators: int = 2,
    objective: str = "makespan",
    budgets: bool = False,
    deadlines: bool = False,
    max_switches: int | None = None,
    slowdown: bool = False,
    operating_points: int = 1,
) -> ScheduleProblem:
    """Networks of random shape on one random table platform (costs per network)."""
    rng = np.random.default_rng(seed)
    names = [f"acc{k}" for k in range(n_accelerators)]
    precisions = ["fp16", "int8", "int4"][:n_accelerators]
    graphs = []
    for n, shape in enumerate(shapes):
        if shape == "chain2":  # two independent branches joined: l0 -> (l1, l2) -> l3
            layers = [conv_layer(f"l{i}", 8, 8) for i in range(4)]
            edges = [("l0", "l1"), ("l0", "l2"), ("l1", "l3"), ("l2", "l3")]
            graphs.append(graph_from_layers(f"net{n}", layers, edges))
        else:
            graphs.append(random_graph(n_layers, shape, rng, name=f"net{n}"))
    rows = {}
    for graph in graphs:
        for layer in graph.layers():
            runnable = [a for a in names if rng.random() >= 0.15] or [names[0]]
            for acc in runnable:
                base = float(rng.uniform(1e-4, 1e-2))
                power = float(rng.uniform(0.1, 2.0))
                for level in range(operating_points):
                    point = f"f{level}" if operating_points > 1 else ""
                    scale = 1.0 + 0.5 * level
                    rows[(graph.name, layer.name, acc, point)] = (
                        base / scale,
                        base * power * scale**1.5,
                    )
    table = CostTable(Path("<synthetic>"), rows, frozenset(g.name for g in graphs))
    accelerators = tuple(
        Accelerator(a, p, None, 0.0, (), table=table)
        for a, p in zip(names, precisions, strict=True)
    )
    transitions = {
        (a, b): Transition(
            latency_s=float(rng.uniform(0, 3e-3)), energy_j=float(rng.uniform(0, 1e-3))
        )
        for a in names
        for b in names
        if a != b and rng.random() < 0.8
    }
    platform = Platform(
        f"random{seed}",
        "random schedule test platform",
        float(rng.choice([0.0, rng.uniform(0, 0.5)])),
        accelerators,
        transitions,
    )
    problems = []
    for graph in graphs:
        scores = {
            (layer.name, p): float(rng.uniform(0, 1)) * (p != "fp16")
            for layer in graph.layers()
            for p in precisions
        }
        constraints = Constraints(
            max_proxy_fraction=float(rng.uniform(0.2, 0.8)) if budgets else None
        )
        problems.append(
            build_problem(
                graph, platform, Sensitivity(scores, "random", "random"), "latency", constraints
            )
        )
    deadline_list = None
    if deadlines:
        serial_latency = [
            sum(min(o.latency_s for o in u.options) for u in p.units) for p in problems
        ]
        deadline_list = [float(rng.uniform(0.8, 1.5)) * t for t in serial_latency]
    contention = None
    if slowdown:
        contention = [
            {u.name: float(rng.uniform(1.0, 2.0)) for u in p.units if rng.random() < 0.7}
            for p in problems
        ]
    return build_schedule_problem(
        problems,
        objective=objective,
        deadlines_s=deadline_list,
        max_switches=max_switches,
        contention=contention,
    )


def _agree(problem: ScheduleProblem, methods: list) -> None:
    """Every method's status and optimum equal the brute-force reference; schedules are valid
    and the evaluator reproduces each reported objective."""
    reference = bruteforce_schedule.solve(problem)
    scale = problem.horizon_s if problem.objective != "energy" else problem.scales["energy"]
    if problem.objective == "weighted":
        scale = 1.0
    for method in [reference, *methods]:
        assert method.status == reference.status, (method.method, method.status, method.detail)
        if reference.status == "infeasible":
            continue
        assert method.status == "optimal", method.method
        assert check_schedule(problem, method.schedule) == [], method.method
        metrics = evaluate_schedule(problem, method.schedule)
        assert metrics == method.metrics
        assert objective_value(problem, metrics) == method.objective_value
        assert abs(method.objective_value - reference.objective_value) <= 1e-6 * scale, (
            method.method,
            method.objective_value,
            reference.objective_value,
        )
        assert method.best_bound <= reference.objective_value + 1e-6 * scale


CASES = [
    ("dag", dict(shapes=("residual",), n_layers=5)),
    ("inception", dict(shapes=("inception",), n_layers=5)),
    ("branches", dict(shapes=("chain2",), n_accelerators=3)),
    ("two-chains", dict(shapes=("chain", "chain"), n_layers=3)),
    ("two-chains-energy", dict(shapes=("chain", "chain"), n_layers=3, objective="energy")),
    ("two-chains-completion", dict(shapes=("chain", "chain"), n_layers=3, objective="completion")),
    ("weighted-dvfs", dict(shapes=("chain2",), objective="weighted", operating_points=2)),
    (
        "deadlines-budgets",
        dict(shapes=("chain", "chain"), n_layers=3, budgets=True, deadlines=True),
    ),
    ("switches", dict(shapes=("chain", "residual"), n_layers=3, max_switches=1)),
]


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize(("label", "kwargs"), CASES, ids=[c[0] for c in CASES])
def test_cpsat_milp_and_brute_force_agree(seed: int, label: str, kwargs: dict) -> None:
    problem = random_schedule_problem(seed, **kwargs)
    _agree(problem, [concurrent.solve(problem), concurrent_mip.solve(problem)])


@pytest.mark.parametrize("seed", range(12))
def test_contention_cpsat_agrees_with_brute_force(seed: int) -> None:
    problem = random_schedule_problem(seed, shapes=("chain", "chain"), n_layers=2, slowdown=True)
    assert problem.contention
    _agree(problem, [concurrent.solve(problem)])


def test_cases_exercise_overlap_infeasibility_and_switches() -> None:
    """The random set must contain schedules that overlap and infeasible deadline sets."""
    overlapping = infeasible = 0
    for seed in range(4):
        problem = random_schedule_problem(seed, shapes=("chain", "chain"), n_layers=3)
        runs = concurrent.solve(problem).schedule.runs
        overlapping += any(
            min(a.end_s, b.end_s) > max(a.start_s, b.start_s) for a in runs for b in runs if a != b
        )
        tight = random_schedule_problem(
            seed, shapes=("chain", "chain"), n_layers=3, budgets=True, deadlines=True
        )
        infeasible += concurrent.solve(tight).status == "infeasible"
    assert overlapping >= 2
    assert infeasible >= 1


def test_concurrent_never_loses_to_the_serial_schedule() -> None:
    for seed in range(3):
        problem = random_schedule_problem(seed, shapes=("inception",), n_layers=6)
        best = concurrent.solve(problem)
        one_acc = [[next(o for o, opt in enumerate(job.options)) for job in problem.jobs]]
        assert (
            best.objective_value
            <= evaluate_schedule(problem, serial(problem, one_acc)).makespan_s + 1e-12
        )


def _replace(schedule: Schedule, run: JobRun) -> Schedule:
    runs = list(schedule.runs)
    runs[run.job] = run
    return Schedule(tuple(runs))


def test_checker_catches_overlap_precedence_transition_and_slowdown() -> None:
    # overlap: one accelerator, two networks started together
    problem = random_schedule_problem(1, shapes=("chain", "chain"), n_layers=2, n_accelerators=1)
    good = concurrent.solve(problem).schedule
    assert check_schedule(problem, good) == []
    a, b = problem.jobs_of[0][0], problem.jobs_of[1][0]
    runs = good.runs
    length = runs[b].end_s - runs[b].start_s
    clash = _replace(good, JobRun(b, runs[b].option, runs[a].start_s, runs[a].start_s + length))
    assert any("overlap on acc0" in m for m in check_schedule(problem, clash))
    # precedence: the second job of a network starts with the first
    second = problem.jobs_of[0][1]
    length = runs[second].end_s - runs[second].start_s
    early = _replace(good, JobRun(second, runs[second].option, 0.0, length))
    assert any("before" in m for m in check_schedule(problem, early))
    # transition: a crossing edge whose consumer ignores the delay
    for seed in range(20):
        problem = random_schedule_problem(seed, shapes=("chain",), n_layers=3)
        good = concurrent.solve(problem).schedule
        for e, edge in enumerate(problem.edges):
            delay = transition(problem, e, good.choice)[0]
            if delay > 0:
                run = good.runs[edge.dst]
                length = run.end_s - run.start_s
                end = good.runs[edge.src].end_s
                hurried = _replace(good, JobRun(edge.dst, run.option, end, end + length))
                assert any("plus the transition" in m for m in check_schedule(problem, hurried))
                break
        else:
            continue
        break
    else:
        pytest.fail("no random instance crosses accelerators with a delay")
    # slowdown: a job with a slowdown that overlaps another accelerator's job at base speed
    problem = random_schedule_problem(2, shapes=("chain", "chain"), n_layers=2, slowdown=True)
    good = concurrent.solve(problem).schedule
    assert check_schedule(problem, good) == []
    base = [r for r in good.runs if not r.slowed and problem.jobs[r.job].slowdown != 1.0]
    for run in base:
        unslowed = _replace(good, JobRun(run.job, run.option, run.start_s, run.end_s, True))
        assert any(
            "overlaps nothing" in m or "lasts" in m for m in check_schedule(problem, unslowed)
        )


def test_bad_inputs_raise_one_line_errors() -> None:
    problem = random_schedule_problem(0, shapes=("chain",), n_layers=2)
    network = problem.networks[0]
    with pytest.raises(MilpMapError, match="unknown schedule objective"):
        build_schedule_problem([network], objective="throughput")
    with pytest.raises(MilpMapError, match="deadline of 'net0' must be > 0"):
        build_schedule_problem([network], deadlines_s=[0.0])
    with pytest.raises(MilpMapError, match="--max-switches must be >= 0"):
        build_schedule_problem([network], max_switches=-1)
    with pytest.raises(MilpMapError, match="slowdown factors of 'net0' must be >= 1"):
        build_schedule_problem([network], contention=[{network.units[0].name: 0.5}])
    slowed = build_schedule_problem([network], contention=0.5)
    with pytest.raises(MilpMapError, match="no contention"):
        concurrent_mip.solve(slowed)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("bound", ["deadline", "max_makespan", "max_energy", "max_proxy"])
def test_bounds_within_the_checker_tolerance_of_the_optimum_are_kept(seed: int, bound: str) -> None:
    # A bound half a tolerance below the optimum still admits it (the checker's rule, as in
    # every mode): CP-SAT once called these infeasible or returned a worse "optimum".
    problem = random_schedule_problem(seed, shapes=("chain", "chain"), n_layers=3)
    best = bruteforce_schedule.solve(problem).metrics
    assert best is not None
    if bound == "deadline":
        deadlines = tuple(c - 0.5 * problem.tolerance("latency") for c in best.completion_s)
        tight = dataclasses.replace(problem, deadlines_s=deadlines)
    elif bound == "max_makespan":
        limit = best.makespan_s - 0.5 * problem.tolerance("latency")
        tight = dataclasses.replace(problem, max_makespan_s=limit)
    elif bound == "max_energy":
        limit = best.energy_j - 0.5 * problem.tolerance("energy")
        tight = dataclasses.replace(problem, max_energy_j=limit)
    else:
        networks = tuple(
            dataclasses.replace(
                net, constraints=Constraints(max_proxy=max(p - 0.5 * net.tolerance("proxy"), 0.0))
            )
            for net, p in zip(problem.networks, best.proxy, strict=True)
        )
        tight = dataclasses.replace(problem, networks=networks)
    reference = bruteforce_schedule.solve(tight)
    assert reference.status == "optimal"
    for solution in (concurrent.solve(tight), concurrent_mip.solve(tight)):
        assert solution.status == "optimal"
        assert solution.objective_value == pytest.approx(reference.objective_value, rel=1e-6)
        assert check_schedule(tight, solution.schedule) == []


def test_checker_rejects_times_that_are_not_numbers() -> None:
    problem = random_schedule_problem(0, shapes=("chain", "chain"), n_layers=3)
    schedule = bruteforce_schedule.solve(problem).schedule
    broken = dataclasses.replace(
        schedule,
        runs=tuple(dataclasses.replace(r, start_s=math.nan, end_s=math.nan) for r in schedule.runs),
    )
    assert any("not a finite number" in v for v in check_schedule(problem, broken))


def test_a_schedule_the_checker_rejects_is_reported_as_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import milp_map.evaluation.timeline as schedule_module

    problem = random_schedule_problem(0, shapes=("chain", "chain"), n_layers=3)
    monkeypatch.setattr(schedule_module, "check_schedule", lambda p, s: ["a made-up violation"])
    solution = concurrent.solve(problem)
    assert solution.status == "error"
    assert "a made-up violation" in solution.detail
    assert solution.schedule is not None
