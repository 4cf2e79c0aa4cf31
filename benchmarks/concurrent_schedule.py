"""Concurrent execution (issue 7): what running branches and networks at once gains.

    python benchmarks/concurrent_schedule.py [--time-limit 60] [--plots DIR]

Three tables, minimum makespan, no accuracy-proxy budget (HaX-CoNN has none):
1. An Inception-style model (googlenet) on jetson-xavier's GPU + DLA: the best sequential
   mapping (layer-wise optimum, units one at a time) against the concurrent schedule.
2. Two zoo networks on jetson-xavier: GPU-only, best sequential, joint optimum.
3. HaX-CoNN's own instance (GoogLeNet + AlexNet layer groups, measured on Xavier; preset
   xavier-haxconn): GPU-only, DLA-only, best sequential, one network per accelerator, the
   joint optimum (CP-SAT; the MILP as a cross-check), and with HaX-CoNN's switch limit.
Every schedule printed passed the checker. --plots writes the Gantt charts there.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
# run from a checkout; and this file's folder off the path, or "concurrent" (this file) would
# shadow the standard library's concurrent package
sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

from milp_map.baselines.schedules import reference_schedules  # noqa: E402
from milp_map.cli.solve import CONCURRENT_THREADS  # noqa: E402
from milp_map.core.problem import Constraints, build_problem  # noqa: E402
from milp_map.core.schedule import ScheduleProblem, build_schedule_problem  # noqa: E402
from milp_map.evaluation.gantt import plot_gantt  # noqa: E402
from milp_map.evaluation.timeline import ScheduleSolution, check_schedule  # noqa: E402
from milp_map.exact import series_schedule  # noqa: E402
from milp_map.formulations import concurrent, concurrent_mip  # noqa: E402
from milp_map.io.models import load_model  # noqa: E402
from milp_map.io.platforms import load_platform  # noqa: E402
from milp_map.io.scores import shipped_sensitivity  # noqa: E402
from milp_map.solvers import SolverSettings  # noqa: E402


def joint(platform_name: str, models: list[str], **options: object) -> ScheduleProblem:
    platform = load_platform(platform_name)
    problems = [
        build_problem(
            load_model(m),
            platform,
            shipped_sensitivity(m),
            "latency",
            Constraints(max_proxy_fraction=1.0),
        )
        for m in models
    ]
    return build_schedule_problem(problems, **options)  # type: ignore[arg-type]


def checked(problem: ScheduleProblem, solution: ScheduleSolution) -> ScheduleSolution:
    assert solution.schedule is not None, solution.status
    broken = check_schedule(problem, solution.schedule)
    assert not broken, broken
    return solution


def overlap_share(solution: ScheduleSolution) -> float:
    """Share of the makespan during which two or more jobs run at once."""
    assert solution.schedule is not None
    events = sorted(
        [(r.start_s, 1) for r in solution.schedule.runs if r.end_s > r.start_s]
        + [(r.end_s, -1) for r in solution.schedule.runs if r.end_s > r.start_s]
    )
    busy, last, together = 0, 0.0, 0.0
    for t, step in events:
        if busy >= 2:
            together += t - last
        busy, last = busy + step, t
    makespan = max(r.end_s for r in solution.schedule.runs)
    return together / makespan if makespan else 0.0


def row(name: str, solution: ScheduleSolution, reference: float | None = None) -> str:
    value = solution.objective_value
    assert value is not None
    gain = "" if reference is None else f"{100 * (reference - value) / reference:+.1f}%"
    status = solution.status
    if solution.gap is not None and status == "feasible":
        status += f" (gap {100 * solution.gap:.1f}%)"
    solvers = ("cpsat", "highs", "series-dp")
    timing = f"{solution.solve_time_s:.2f} s" if solution.method in solvers else ""
    return f"| {name} | {value * 1e3:.3f} | {gain} | {status} | {timing} |"


HEADER = (
    "| schedule | makespan (ms) | vs best sequential | status | solve time |\n|---|---|---|---|---|"
)


def references(problem: ScheduleProblem, settings: SolverSettings) -> dict[str, ScheduleSolution]:
    return {r.method: checked(problem, r) for r in reference_schedules(problem, settings)}


def inception(settings: SolverSettings, plots: Path | None) -> None:
    problem = joint("jetson-xavier", ["googlenet"])
    refs = references(problem, settings)
    best_seq = refs["best sequential"]
    solution = checked(problem, concurrent.solve(problem, settings, hint=best_seq.schedule))
    series = checked(problem, series_schedule.solve(problem))
    print("\n### 1. googlenet (82 layers) on jetson-xavier (gpu + dla), min makespan\n")
    print(HEADER)
    base = best_seq.objective_value
    for name in ("all-gpu", "mostly-dla", "best sequential"):
        if name in refs:
            print(row(name, refs[name], base))
    print(row("concurrent (CP-SAT)", solution, base))
    print(row("concurrent (series decomposition, the default)", series, base))
    print(
        f"\nconcurrent: two jobs at once during {100 * overlap_share(series):.0f}% of the makespan"
    )
    if plots:
        plot_gantt(
            problem,
            solution.schedule,
            plots / "concurrent_googlenet.png",
            "googlenet on jetson-xavier",
        )  # type: ignore[arg-type]


def two_networks(models: list[str], settings: SolverSettings, plots: Path | None) -> None:
    problem = joint("jetson-xavier", models)
    refs = references(problem, settings)
    base = refs["best sequential"].objective_value
    solution = checked(
        problem, concurrent.solve(problem, settings, hint=refs["best sequential"].schedule)
    )
    print(f"\n### 2. {' + '.join(models)} on jetson-xavier, min makespan of the pair\n")
    print(HEADER)
    for name in ("all-gpu", "best sequential"):
        print(row(name, refs[name], base))
    print(row("joint optimum (CP-SAT)", solution, base))
    if plots:
        plot_gantt(
            problem,
            solution.schedule,
            plots / f"concurrent_{'_'.join(models)}.png",
            " + ".join(models),
        )  # type: ignore[arg-type]


def haxconn(settings: SolverSettings, plots: Path | None) -> None:
    models = ["googlenet", "alexnet"]
    problem = joint("xavier-haxconn", models)
    refs = references(problem, settings)
    base = refs["best sequential"].objective_value
    print(
        "\n### 3. HaX-CoNN's instance: googlenet (10 groups) + alexnet (8 groups), xavier-haxconn\n"
    )
    print(HEADER)
    for name in ("all-gpu", "all-dla", "best sequential"):
        print(row(name, refs[name], base))
    # one network per accelerator, running at once: the naive concurrent baseline
    for a, b in (("gpu", "dla"), ("dla", "gpu")):
        fixed = _fixed(problem, {0: a, 1: b})
        solution = checked(fixed, concurrent.solve(fixed, settings))
        print(row(f"googlenet on {a}, alexnet on {b} (concurrent)", solution, base))
    solution = checked(
        problem, concurrent.solve(problem, settings, hint=refs["best sequential"].schedule)
    )
    print(row("joint optimum (CP-SAT)", solution, base))
    mip = checked(problem, concurrent_mip.solve(problem, "highs", settings))
    print(row("joint optimum (MILP, HiGHS)", mip, base))
    for k in (0, 1, 2):
        limited = joint("xavier-haxconn", models, max_switches=k)
        print(
            row(
                f"joint, at most {k} switch(es) per network",
                checked(
                    limited,
                    concurrent.solve(limited, settings, hint=refs["best sequential"].schedule),
                ),
                base,
            )
        )
    if plots:
        plot_gantt(
            problem,
            solution.schedule,
            plots / "concurrent_haxconn.png",
            "HaX-CoNN instance on xavier-haxconn",
        )  # type: ignore[arg-type]


def _fixed(problem: ScheduleProblem, where: dict[int, str]) -> ScheduleProblem:
    """The same problem with each network's jobs restricted to one accelerator."""
    jobs = tuple(
        replace(job, options=tuple(o for o in job.options if o.accelerator == where[job.network]))
        for job in problem.jobs
    )
    return replace(problem, jobs=jobs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=60.0, help="per CP-SAT solve (s)")
    parser.add_argument("--plots", type=Path, help="folder for the Gantt charts")
    parser.add_argument("--pair", default="alexnet,squeezenet", help="table 2 networks")
    parser.add_argument(
        "--threads", type=int, default=CONCURRENT_THREADS, help="CP-SAT workers (default 2)"
    )
    args = parser.parse_args(argv)
    settings = SolverSettings(time_limit_s=args.time_limit, threads=args.threads)
    if args.plots:
        args.plots.mkdir(parents=True, exist_ok=True)
    haxconn(settings, args.plots)
    two_networks(args.pair.split(","), settings, args.plots)
    inception(settings, args.plots)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
