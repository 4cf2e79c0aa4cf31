"""Human-readable tables and the JSON result file of a solve."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from milp_map.errors import MilpMapError
from milp_map.evaluate import evaluate
from milp_map.multi import ScheduleProblem
from milp_map.problem import Problem
from milp_map.schedule import ScheduleSolution
from milp_map.solution import Solution


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
        "sensitivity": problem.sensitivity.source,
        "status": solution.status,
        "objective": solution.objective,
        "objective_value": solution.objective_value,
        "best_bound": solution.best_bound,
        "gap": solution.gap,
        "solver": solution.method,
        "solver_detail": solution.detail,
        "solve_time_s": solution.solve_time_s,
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


def check_out_path(path: str | Path) -> Path:
    """The JSON output path, or a clear error if it cannot be written (checked before solving)."""
    path = Path(path)
    if path.is_dir():
        raise MilpMapError(f"{path}: is a directory; --out takes a file path such as mapping.json")
    if not path.parent.is_dir():
        raise MilpMapError(f"{path}: folder {path.parent} does not exist")
    return path


def write_json_atomic(data: dict, path: str | Path) -> Path:
    """Write JSON via a temporary file and rename, so `path` is never left half-written."""
    path = check_out_path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=False)
            handle.write("\n")
        os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600; a result file is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _default_file_mode() -> int:
    """The mode open() gives a new file under the process umask (0644 under 022); read once
    at import, since reading the umask means setting it, which is not thread-safe."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _default_file_mode()


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
        "status": solution.status,
        "objective": solution.objective,
        "objective_value": solution.objective_value,
        "best_bound": solution.best_bound,
        "gap": solution.gap,
        "solver": solution.method,
        "solver_detail": solution.detail,
        "solve_time_s": solution.solve_time_s,
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
