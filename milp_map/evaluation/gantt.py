"""Gantt chart PNG of a concurrent schedule: one row per accelerator, jobs coloured by network.

Slowed jobs (shared-memory contention) are hatched; a job wide enough carries its unit name.
Matplotlib's Agg canvas: no display, no pyplot state.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from milp_map.core.schedule import Schedule, ScheduleProblem
from milp_map.evaluation.plots import DPI
from milp_map.evaluation.timeline import accelerator

LABEL_MIN_SHARE = 0.04
"""A bar gets its unit's name when it spans at least this share of the makespan."""


def plot_gantt(
    problem: ScheduleProblem, schedule: Schedule, path: Path | None = None, title: str = ""
) -> Figure:
    """Bars in milliseconds on one row per accelerator (platform order, top to bottom)."""
    rows = list(problem.accelerators)
    colours = {n: f"C{n % 10}" for n in range(len(problem.networks))}
    makespan_ms = max((r.end_s for r in schedule.runs), default=0.0) * 1e3
    fig = Figure(figsize=(10, 1.2 + 0.7 * len(rows)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for run in schedule.runs:
        if run.end_s <= run.start_s:
            continue
        job = problem.jobs[run.job]
        y = rows.index(accelerator(problem, run.job, run.option))
        start_ms, width_ms = run.start_s * 1e3, (run.end_s - run.start_s) * 1e3
        ax.barh(
            y,
            width_ms,
            left=start_ms,
            height=0.6,
            color=colours[job.network],
            edgecolor="black",
            linewidth=0.4,
            hatch="///" if run.slowed else None,
        )
        if makespan_ms and width_ms >= LABEL_MIN_SHARE * makespan_ms:
            unit = problem.networks[job.network].units[job.unit].name
            ax.text(
                start_ms + width_ms / 2,
                y,
                unit.split("/")[0],
                ha="center",
                va="center",
                fontsize="xx-small",
                rotation=90 if width_ms < 2 * LABEL_MIN_SHARE * makespan_ms else 0,
            )
    ax.set_yticks(range(len(rows)), rows)
    ax.invert_yaxis()
    ax.set_xlabel("time (ms)")
    ax.set_xlim(0, makespan_ms * 1.01 if makespan_ms else 1)
    legend = [Patch(color=colours[n], label=name) for n, name in enumerate(problem.names)]
    if any(r.slowed for r in schedule.runs):
        legend.append(Patch(facecolor="white", edgecolor="black", hatch="///", label="slowed"))
    ax.legend(handles=legend, fontsize="small", loc="upper right")
    ax.set_title(title, fontsize="medium")
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=DPI)
    return fig
