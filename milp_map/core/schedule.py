"""The joint scheduling problem: one or more networks' units as jobs on one platform's
accelerators; and the schedule a scheduling method returns.

Concurrent execution (formulations/concurrent.md) gives every unit an option and a start time;
several networks share the accelerators. This module flattens the per-network `Problem`s
(option tables, edges with transition costs, proxy budgets) into one job list, and holds what
only scheduling needs: objective, deadlines, switch limits and contention slowdowns. How a
schedule is timed and checked is milp_map/evaluation/timeline.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import networkx as nx

from milp_map.core.platform import Platform
from milp_map.core.problem import FEASIBILITY_RTOL, Option, Problem
from milp_map.core.solution import relative_gap
from milp_map.defaults import SCHEDULE_OBJECTIVES
from milp_map.errors import MilpMapError

ScheduleObjective = Literal["makespan", "energy", "weighted", "completion"]


@dataclass(frozen=True)
class Job:
    """One unit of one network, with the options it can run with."""

    network: int
    unit: int
    name: str
    """`network:unit`, unique across networks."""
    options: tuple[Option, ...]
    slowdown: float = 1.0
    """Latency factor while it overlaps a job on another accelerator (contention); 1 = none."""


@dataclass(frozen=True)
class JobEdge:
    """Data flowing from job `src` to job `dst` (same network), and the cost of crossing."""

    src: int
    dst: int
    costs: Mapping[tuple[str, str], tuple[float, float]]
    """(from accelerator, to accelerator) -> (latency_s, energy_j); absent pairs cost nothing."""


@dataclass(frozen=True)
class ScheduleProblem:
    """Immutable input of every scheduling method (CP-SAT, MILP, brute force, references)."""

    networks: tuple[Problem, ...]
    names: tuple[str, ...]
    jobs: tuple[Job, ...]
    edges: tuple[JobEdge, ...]
    objective: ScheduleObjective
    weight: float = 0.5
    """Share of the normalised makespan in the `weighted` objective."""
    deadlines_s: tuple[float | None, ...] = ()
    max_switches: int | None = None
    """At most this many unit edges of each network may cross accelerators (HaX-CoNN)."""
    max_makespan_s: float | None = None
    max_energy_j: float | None = None

    @property
    def platform(self) -> Platform:
        """The platform all networks share."""
        return self.networks[0].platform

    @property
    def static_power_w(self) -> float:
        return self.platform.static_power_w

    @property
    def contention(self) -> bool:
        return any(job.slowdown != 1.0 for job in self.jobs)

    @cached_property
    def accelerators(self) -> tuple[str, ...]:
        """Accelerators some job can use, in platform order."""
        used = {o.accelerator for job in self.jobs for o in job.options}
        return tuple(a for a in self.platform.accelerator_names if a in used)

    @cached_property
    def jobs_of(self) -> tuple[tuple[int, ...], ...]:
        """Job indices of each network, in topological order."""
        return tuple(
            tuple(j for j, job in enumerate(self.jobs) if job.network == n)
            for n in range(len(self.networks))
        )

    @cached_property
    def proxy_budgets(self) -> tuple[float | None, ...]:
        return tuple(p.proxy_budget for p in self.networks)

    @cached_property
    def comparable(self) -> frozenset[tuple[int, int]]:
        """(i, j) with a path i -> j: j cannot start before i ends, so they never overlap."""
        dag = nx.DiGraph()
        dag.add_nodes_from(range(len(self.jobs)))
        dag.add_edges_from((e.src, e.dst) for e in self.edges)
        closure = nx.transitive_closure_dag(dag)
        return frozenset(closure.edges)

    def may_overlap(self, i: int, j: int) -> bool:
        """Whether jobs i != j can run at the same time (no path between them)."""
        return (i, j) not in self.comparable and (j, i) not in self.comparable

    @cached_property
    def scales(self) -> dict[str, float]:
        """Worst-case magnitudes: every job at its slowest option, slowed, one after the other,
        with every transition; solvers normalise by them and tolerances are relative to them."""
        latency = sum(max(o.latency_s for o in job.options) * job.slowdown for job in self.jobs)
        latency += sum(max((c[0] for c in e.costs.values()), default=0.0) for e in self.edges)
        dynamic = sum(max(o.energy_j for o in job.options) for job in self.jobs)
        dynamic += sum(max((c[1] for c in e.costs.values()), default=0.0) for e in self.edges)
        energy = dynamic + self.static_power_w * latency
        proxy = sum(p.proxy_range[1] for p in self.networks)
        return {
            "latency": latency if latency > 0 else 1.0,
            "energy": energy if energy > 0 else 1.0,
            "proxy": proxy if proxy > 0 else 1.0,
        }

    @property
    def horizon_s(self) -> float:
        """No semi-active schedule ends later (each job waits at most for all others)."""
        return self.scales["latency"]

    def tolerance(self, quantity: str) -> float:
        return FEASIBILITY_RTOL * self.scales[quantity]


def build_schedule_problem(
    problems: Sequence[Problem],
    objective: str = "makespan",
    weight: float = 0.5,
    deadlines_s: Sequence[float | None] | None = None,
    max_switches: int | None = None,
    contention: float | Sequence[Mapping[str, float]] | None = None,
    max_makespan_s: float | None = None,
    max_energy_j: float | None = None,
) -> ScheduleProblem:
    """Join per-network problems (same platform) into one scheduling problem.

    `contention`: None (off), a coefficient alpha (slowdown 1 + alpha * memory intensity, see
    `memory_intensity`), or per network a {unit name: slowdown factor} mapping.
    """
    if not problems:
        raise MilpMapError("concurrent scheduling needs at least one network")
    if objective == "latency":
        objective = "makespan"
    if objective not in SCHEDULE_OBJECTIVES:
        raise MilpMapError(
            f"unknown schedule objective '{objective}'; choose one of "
            f"{', '.join(SCHEDULE_OBJECTIVES)}"
        )
    if not 0.0 <= weight <= 1.0:
        raise MilpMapError(f"--weight must be in [0, 1], got {weight}")
    platform = problems[0].platform
    for p in problems[1:]:
        if p.platform is not platform and p.platform.name != platform.name:
            raise MilpMapError(
                f"networks '{problems[0].graph.name}' and '{p.graph.name}' use different "
                f"platforms ('{platform.name}', '{p.platform.name}'); schedule them on one"
            )
    if max_switches is not None and max_switches < 0:
        raise MilpMapError(f"--max-switches must be >= 0, got {max_switches}")
    for flag, value in (("--max-latency", max_makespan_s), ("--max-energy", max_energy_j)):
        if value is not None and not value >= 0:
            raise MilpMapError(f"{flag} must be >= 0, got {value}")
    names = _unique_names([p.graph.name for p in problems])
    deadlines = tuple(deadlines_s) if deadlines_s is not None else (None,) * len(problems)
    if len(deadlines) != len(problems):
        raise MilpMapError(f"{len(deadlines)} deadlines for {len(problems)} networks")
    for name, deadline in zip(names, deadlines, strict=True):
        if deadline is not None and not deadline > 0:
            raise MilpMapError(f"deadline of '{name}' must be > 0 seconds, got {deadline}")
    slowdowns = _slowdowns(problems, names, contention)
    jobs: list[Job] = []
    edges: list[JobEdge] = []
    for n, (problem, name) in enumerate(zip(problems, names, strict=True)):
        first = len(jobs)
        for u, unit in enumerate(problem.units):
            jobs.append(Job(n, u, f"{name}:{unit.name}", unit.options, slowdowns[n][u]))
        edges.extend(JobEdge(first + e.src, first + e.dst, e.costs) for e in problem.edges)
    return ScheduleProblem(
        networks=tuple(problems),
        names=names,
        jobs=tuple(jobs),
        edges=tuple(edges),
        objective=objective,  # type: ignore[arg-type]
        weight=weight,
        deadlines_s=deadlines,
        max_switches=max_switches,
        max_makespan_s=max_makespan_s,
        max_energy_j=max_energy_j,
    )


def undominated_options(problem: ScheduleProblem) -> list[list[int]]:
    """Presolve: per job, the options no other option on the same accelerator dominates (no
    worse in latency, dynamic energy and proxy; better in one, or equal and listed first).
    A shorter run in the same slot never hurts, so some optimum uses only these."""
    keep = []
    for job in problem.jobs:
        keys = [(o.latency_s, o.energy_j, o.proxy) for o in job.options]
        row = []
        for o, option in enumerate(job.options):
            dominated = any(
                k != o
                and other.accelerator == option.accelerator
                and all(a <= b for a, b in zip(keys[k], keys[o], strict=True))
                and (keys[k] != keys[o] or k < o)
                for k, other in enumerate(job.options)
            )
            if not dominated:
                row.append(o)
        keep.append(row)
    return keep


def memory_intensity(problem: Problem) -> list[float]:
    """Per unit: bytes it moves (inputs, outputs, weights; elements) per MAC, unnormalised.

    A stand-in for HaX-CoNN's measured memory throughput of a layer: memory-bound layers
    (pooling, fully connected, 1x1 convs on large maps) slow each other down most.
    """
    values = []
    for unit in problem.units:
        layers = [problem.graph.layer(name) for name in unit.layers]
        moved = sum(lay.input_elems + lay.output_elems + lay.weight_count for lay in layers)
        macs = sum(lay.macs for lay in layers)
        values.append(moved / max(macs, 1))
    return values


def _slowdowns(
    problems: Sequence[Problem],
    names: Sequence[str],
    contention: float | Sequence[Mapping[str, float]] | None,
) -> list[list[float]]:
    if contention is None:
        return [[1.0] * len(p.units) for p in problems]
    if isinstance(contention, (int, float)):
        if not contention >= 0:
            raise MilpMapError(f"--contention must be >= 0, got {contention}")
        raw = [memory_intensity(p) for p in problems]
        top = max((v for values in raw for v in values), default=0.0) or 1.0
        return [[1.0 + contention * v / top for v in values] for values in raw]
    if len(contention) != len(problems):
        raise MilpMapError(f"slowdowns for {len(contention)} networks, expected {len(problems)}")
    result = []
    for problem, name, factors in zip(problems, names, contention, strict=True):
        units = {u.name for u in problem.units}
        unknown = sorted(set(factors) - units)
        if unknown:
            raise MilpMapError(f"slowdowns of '{name}' name units it does not have: {unknown[:5]}")
        bad = {k: v for k, v in factors.items() if not v >= 1.0}
        if bad:
            raise MilpMapError(f"slowdown factors of '{name}' must be >= 1, got {bad}")
        result.append([float(factors.get(u.name, 1.0)) for u in problem.units])
    return result


def _unique_names(names: Sequence[str]) -> tuple[str, ...]:
    """Network labels; a network given twice becomes name, name#2, ..."""
    seen: dict[str, int] = {}
    result = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        result.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return tuple(result)


@dataclass(frozen=True)
class JobRun:
    """Where and when one job runs."""

    job: int
    option: int
    """Index into the job's options (accelerator and operating point)."""
    start_s: float
    end_s: float
    slowed: bool = False
    """Runs at its contention slowdown (it overlaps a job on another accelerator)."""


@dataclass(frozen=True)
class Schedule:
    runs: tuple[JobRun, ...]
    """One per job, in job order."""

    @property
    def choice(self) -> tuple[int, ...]:
        return tuple(r.option for r in self.runs)


@dataclass(frozen=True)
class ScheduleMetrics:
    makespan_s: float
    energy_j: float
    completion_s: tuple[float, ...]
    """End of each network's last job."""
    proxy: tuple[float, ...]
    """Accuracy proxy of each network."""
    switches: tuple[int, ...]
    """Unit edges of each network whose ends run on different accelerators."""

    def as_dict(self, names: Sequence[str]) -> dict[str, Any]:
        return {
            "makespan_s": self.makespan_s,
            "latency_s": self.makespan_s,
            "energy_j": self.energy_j,
            "accuracy_proxy": sum(self.proxy),
            "completion_s": dict(zip(names, self.completion_s, strict=True)),
            "proxy": dict(zip(names, self.proxy, strict=True)),
            "switches": dict(zip(names, self.switches, strict=True)),
        }


@dataclass(frozen=True)
class ScheduleSolution:
    """A scheduling method's answer; fields mirror `solution.Solution`."""

    method: str
    status: str
    objective: str
    schedule: Schedule | None = None
    metrics: ScheduleMetrics | None = None
    objective_value: float | None = None
    best_bound: float | None = None
    solve_time_s: float = 0.0
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def gap(self) -> float | None:
        return relative_gap(self.objective_value, self.best_bound)
