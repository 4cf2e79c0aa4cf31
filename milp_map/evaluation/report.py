"""What a user reads: per-unit tables, and the result files of solves, schedules and fronts
(written by milp_map/io/files.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from milp_map.core.problem import Problem
from milp_map.core.schedule import ScheduleProblem, ScheduleSolution
from milp_map.core.solution import Front, Solution, point_gap
from milp_map.core.split import SplitProblem
from milp_map.evaluation.evaluator import evaluate, evaluate_split
from milp_map.io.files import check_out_path, write_json_atomic, write_text_atomic
from milp_map.io.mappings import file_record
from milp_map.io.models import is_shipped_model
from milp_map.resources import data_path


def unit_table(problem: Problem, solution: Solution) -> pd.DataFrame:
    """Per-unit breakdown of a layer-wise solution, in milliseconds and millijoules."""
    assert solution.mapping is not None
    frame = evaluate(problem, solution.mapping).units
    return pd.DataFrame(
        {
            "unit": frame["unit"],
            "accelerator": frame["accelerator"]
            + frame["operating_point"].map(lambda p: f"@{p}" if p else ""),
            "precision": frame["precision"],
            "latency_ms": frame["latency_s"] * 1e3,
            "energy_mJ": frame["energy_j"] * 1e3,
            "proxy": frame["proxy"],
            "transition_ms": frame["transition_latency_s"] * 1e3,
        }
    )


def solution_json(
    problem: Problem, solution: Solution, extra: dict[str, Any] | None = None
) -> dict:
    """The documented result schema (README, 'Result file')."""
    layers = []
    if solution.mapping is not None:
        for unit in problem.units:
            parts = solution.mapping[unit.name]
            for layer_name in unit.layers:
                layer = problem.graph.layer(layer_name)
                split = {
                    p.accelerator: layer.out_channels if p.channels is None else p.channels
                    for p in parts
                }
                entry: dict[str, Any] = {
                    "name": layer_name,
                    "unit": unit.name,
                    "op": layer.op,
                    "split": split,
                    "accelerator": parts[0].accelerator if len(parts) == 1 else None,
                    "operating_point": {p.accelerator: p.operating_point for p in parts}
                    if any(p.operating_point for p in parts)
                    else None,
                }
                if any(p.channel_indices is not None for p in parts):
                    entry["channels"] = {
                        p.accelerator: list(p.channel_indices or ()) for p in parts
                    }
                layers.append(entry)
    return {
        "model": problem.graph.name,
        "platform": problem.platform.name,
        **input_files(problem),
        "sensitivity": problem.sensitivity.source,
        **_outcome(solution),
        "constraints": {
            "max_latency_s": problem.constraints.max_latency_s,
            "max_energy_j": problem.constraints.max_energy_j,
            "max_proxy": problem.constraints.max_proxy,
            "max_proxy_fraction": problem.constraints.max_proxy_fraction,
            "proxy_budget": problem.proxy_budget,
        },
        "metrics": solution.metrics.as_dict() if solution.metrics else None,
        "layers": layers,
        **(extra or {}),
    }


def input_files(problem: Problem) -> dict[str, dict[str, str]]:
    """`model_file` and `platform_file` ({path, sha256}) for a model or platform read from a
    file of the user's (not a zoo, shipped or preset name), so a mapping can be checked, exported
    and measured from the mapping file alone."""
    files = {}
    source = problem.graph.source
    if source != "<memory>" and not is_shipped_model(problem.graph.name) and Path(source).is_file():
        files["model_file"] = file_record(source)
    platform = problem.platform.source
    presets = data_path("platforms").resolve()
    if Path(platform).is_file() and not Path(platform).resolve().is_relative_to(presets):
        files["platform_file"] = file_record(platform)
    return files


def _outcome(solution: Solution | ScheduleSolution) -> dict[str, Any]:
    """What a solve says of itself, in every result file: status, objective, bound, gap,
    solver and time."""
    return {
        "status": solution.status,
        "objective": solution.objective,
        "objective_value": solution.objective_value,
        "best_bound": solution.best_bound,
        "gap": solution.gap,
        "solver": solution.method,
        "solver_detail": solution.detail,
        "solve_time_s": solution.solve_time_s,
    }


def format_si(value: float | None, unit: str) -> str:
    """1.234e-3 s -> '1.234 ms'."""
    if value is None:
        return "-"
    if value == 0:
        return f"0 {unit}"
    for factor, prefix in ((1.0, ""), (1e-3, "m"), (1e-6, "u")):
        if abs(value) >= factor:
            return f"{value / factor:.4g} {prefix}{unit}"
    return f"{value / 1e-9:.4g} n{unit}"


def schedule_table(problem: ScheduleProblem, solution: ScheduleSolution) -> pd.DataFrame:
    """Per-job rows of a concurrent schedule, by start time, in milliseconds."""
    assert solution.schedule is not None
    rows = []
    for run in sorted(solution.schedule.runs, key=lambda r: (r.start_s, r.job)):
        job = problem.jobs[run.job]
        option = job.options[run.option]
        rows.append(
            {
                "network": problem.names[job.network],
                "unit": problem.networks[job.network].units[job.unit].name,
                "accelerator": option.label,
                "start_ms": run.start_s * 1e3,
                "end_ms": run.end_s * 1e3,
                "slowed": "yes" if run.slowed else "",
            }
        )
    return pd.DataFrame(rows)


def schedule_json(
    problem: ScheduleProblem, solution: ScheduleSolution, extra: dict[str, Any] | None = None
) -> dict:
    """Result file of `--schedule concurrent` (README section "Concurrent execution")."""
    jobs = []
    if solution.schedule is not None:
        for run in solution.schedule.runs:
            job = problem.jobs[run.job]
            option = job.options[run.option]
            unit = problem.networks[job.network].units[job.unit]
            jobs.append(
                {
                    "network": problem.names[job.network],
                    "unit": unit.name,
                    "layers": list(unit.layers),
                    "accelerator": option.accelerator,
                    "operating_point": option.operating_point,
                    "start_s": run.start_s,
                    "end_s": run.end_s,
                    "slowed": run.slowed,
                }
            )
    return {
        "schedule": "concurrent",
        "models": list(problem.names),
        "platform": problem.platform.name,
        **_outcome(solution),
        "tick_s": solution.extra.get("tick_s"),
        "constraints": {
            "weight": problem.weight if problem.objective == "weighted" else None,
            "deadlines_s": dict(zip(problem.names, problem.deadlines_s, strict=True)),
            "max_switches": problem.max_switches,
            "max_latency_s": problem.max_makespan_s,
            "max_energy_j": problem.max_energy_j,
            "proxy_budget": dict(zip(problem.names, problem.proxy_budgets, strict=True)),
            "contention": problem.contention,
        },
        "metrics": solution.metrics.as_dict(problem.names) if solution.metrics else None,
        "jobs": jobs,
        **(extra or {}),
    }


def split_table(target: SplitProblem, solution: Solution) -> pd.DataFrame:
    """Per-unit split (channels per accelerator), in milliseconds and millijoules."""
    assert solution.mapping is not None
    frame = evaluate_split(target, solution.mapping).units
    return pd.DataFrame(
        {
            "unit": frame["unit"],
            "split": frame["split"].map(
                lambda parts: " ".join(
                    f"{acc}:{'all' if n is None else n}" for acc, n in sorted(parts.items())
                )
            ),
            "latency_ms": frame["latency_s"] * 1e3,
            "energy_mJ": frame["energy_j"] * 1e3,
            "proxy": frame["proxy"],
        }
    )


def front_json(problem: Problem, front: Front) -> dict:
    """The front file: run context once, then each point in the result-file schema.

    A channel-split problem is written through its layer-wise `base` (the schema has `split`).
    """
    problem = getattr(problem, "base", problem)
    shared = ("model", "platform", "model_file", "platform_file", "sensitivity", "constraints")
    points = []
    for p in front.points:
        entry = {k: v for k, v in solution_json(problem, p).items() if k not in shared}
        entry["gap"] = point_gap(p)
        points.append(entry)
    context = solution_json(problem, Solution("pareto", "infeasible", front.quantities[0]))
    return {
        **{k: context[k] for k in shared if k in context},
        "quantities": list(front.quantities),
        "method": front.method,
        "complete": front.complete,
        "detail": front.detail,
        "delta": front.delta,
        "solve_time_s": front.solve_time_s,
        "points": points,
    }


def write_front(problem: Problem, front: Front, out_prefix: Path) -> list[Path]:
    """Write <prefix>.csv (Front.to_frame) and <prefix>.json (front_json), each atomically."""
    base = Path(out_prefix)
    if base.suffix in (".csv", ".json", ".png"):
        base = base.with_suffix("")
    csv_path = check_out_path(base.parent / f"{base.name}.csv")
    json_path = check_out_path(base.parent / f"{base.name}.json")
    write_text_atomic(front.to_frame().to_csv(index=False), csv_path)
    write_json_atomic(front_json(problem, front), json_path)
    return [csv_path, json_path]
