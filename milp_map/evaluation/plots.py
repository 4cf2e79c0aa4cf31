"""PNG figures of fronts and mappings (matplotlib's Agg canvas: no display, no pyplot state)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from milp_map.core.problem import Problem
from milp_map.core.solution import Front, Solution
from milp_map.evaluation.evaluator import evaluate

DPI = 150
AXES = {
    "latency": ("latency (ms)", 1e3),
    "energy": ("energy (mJ)", 1e3),
    "proxy": ("accuracy proxy", 1.0),
}
"""quantity -> (axis label with unit, factor from natural units)."""
MARKERS = ("s", "^", "D", "v", "P", "X", "<", ">", "h", "*")


def plot_front(front: Front, markers: Sequence[Solution], path: Path, title: str) -> Figure:
    """The front as a step line with dots (hollow: unproven), each marker labelled by method."""
    (x_label, x_factor), (y_label, y_factor) = (AXES[q] for q in front.quantities)
    f1, f2 = front.quantities
    fig = Figure(figsize=(6.4, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = [x * x_factor for x, _ in front.values()]
    ys = [y * y_factor for _, y in front.values()]
    proven = [p.status == "optimal" for p in front.points]
    label = f"exact front ({len(xs)} points{'' if front.complete else ', incomplete'})"
    ax.step(xs, ys, where="post", color="tab:blue", linewidth=1.2, label=label)
    ax.scatter(
        xs, ys, s=18, color="tab:blue", facecolors=["tab:blue" if ok else "none" for ok in proven]
    )
    for k, solution in enumerate(m for m in markers if m.metrics is not None):
        assert solution.metrics is not None
        ax.scatter(
            solution.metrics.value(f1) * x_factor,
            solution.metrics.value(f2) * y_factor,
            marker=MARKERS[k % len(MARKERS)],
            s=55,
            color=f"C{(k + 1) % 10}",
            edgecolors="black",
            linewidths=0.5,
            label=solution.method,
            zorder=3,
        )
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return fig


def plot_mapping(problem: Problem, solution: Solution, path: Path | None = None) -> Figure:
    """Per-unit latency bars coloured by accelerator; transfers into a unit stacked in grey.

    Layer-wise mappings only (the evaluator's per-unit breakdown).
    """
    if solution.mapping is None:
        raise ValueError(f"solution '{solution.method}' ({solution.status}) has no mapping")
    units = evaluate(problem, solution.mapping).units
    colours = {a: f"C{k % 10}" for k, a in enumerate(problem.platform.accelerator_names)}
    positions = range(len(units))
    fig = Figure(figsize=(max(6.4, 0.22 * len(units)), 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    compute_ms = units["latency_s"] * 1e3
    ax.bar(positions, compute_ms, color=[colours[a] for a in units["accelerator"]])
    transfer = {"color": "lightgrey", "hatch": "//"}
    moved = units["transition_latency_s"] > 0  # zero-height bars would pin the y-limit
    transfer_ms = units["transition_latency_s"][moved] * 1e3
    ax.bar(units.index[moved], transfer_ms, bottom=compute_ms[moved], **transfer)
    used = set(units["accelerator"])
    legend = [Patch(color=c, label=a) for a, c in colours.items() if a in used]
    legend.append(Patch(label="transfer", **transfer))
    ax.set_xticks(list(positions), units["unit"], rotation=90, fontsize="x-small")
    ax.set_ylabel("latency (ms)")
    title = f"{problem.graph.name} on {problem.platform.name}: {solution.method}"
    if solution.metrics is not None:
        m = solution.metrics
        title += (
            f"\n{m.latency_s * 1e3:.4g} ms, {m.energy_j * 1e3:.4g} mJ, proxy {m.accuracy_proxy:.4g}"
        )
    ax.set_title(title, fontsize="medium")
    ax.legend(handles=legend, fontsize="small")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=DPI)
    return fig
