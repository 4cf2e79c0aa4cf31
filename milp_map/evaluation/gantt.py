"""Gantt chart PNG of a concurrent schedule: one row per accelerator, jobs coloured by network.

Slowed jobs (shared-memory contention) are hatched; every job carries its network's tag and
unit name, inside the bar when it fits, else above it. The legend sits outside the rows.
Matplotlib's Agg canvas: no display, no pyplot state.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    tags = network_tags(problem.names)
    makespan_ms = max((r.end_s for r in schedule.runs), default=0.0) * 1e3
    fig = Figure(figsize=(11, 1.6 + 1.0 * len(rows)))
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
        unit = problem.networks[job.network].units[job.unit].name.split("/")[0]
        label = f"{tags[job.network]} {unit}"
        if makespan_ms and width_ms >= LABEL_MIN_SHARE * makespan_ms:
            rotation = 90 if width_ms < 2 * LABEL_MIN_SHARE * makespan_ms else 0
            ax.text(
                start_ms + width_ms / 2,
                y,
                label,
                ha="center",
                va="center",
                fontsize="xx-small",
                rotation=rotation,
            )
        else:  # too narrow: the name stands above the bar
            ax.text(
                start_ms + width_ms / 2,
                y - 0.32,
                label,
                ha="center",
                va="bottom",
                fontsize="xx-small",
                rotation=90,
            )
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("time (ms)")
    ax.set_xlim(0, makespan_ms * 1.01 if makespan_ms else 1)
    legend = [
        Patch(color=colours[n], label=f"{name} ({tags[n]})") for n, name in enumerate(problem.names)
    ]
    if any(r.slowed for r in schedule.runs):
        legend.append(Patch(facecolor="white", edgecolor="black", hatch="///", label="slowed"))
    ax.set_ylim(len(rows) - 0.5, -0.9)  # room above the top row for narrow bars' names
    ax.legend(handles=legend, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title, fontsize="medium")
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=DPI)
    return fig


def network_tags(names: Sequence[str]) -> list[str]:
    """A short, distinct tag per network for bar labels: its initial (upper case), longer
    prefixes where initials collide, its position as a last resort."""
    for length in (1, 2, 3):
        tags = [name[:length].upper() for name in names]
        if len(set(tags)) == len(tags):
            return tags
    return [f"{name[:3].upper()}{n}" for n, name in enumerate(names)]
