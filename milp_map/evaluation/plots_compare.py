"""Figures for method comparisons: fronts of several methods, gaps, channel-split mappings.

Each function draws on a given matplotlib Axes, or on a fresh Agg figure when `ax` is None,
and returns the Figure, so notebooks and scripts share them (plots.py draws single fronts
and layer-wise mappings).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from milp_map.core.solution import Solution
from milp_map.core.split import SplitProblem
from milp_map.evaluation.evaluator import evaluate_split
from milp_map.evaluation.plots import AXES, MARKERS, legend_above


def _axes(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def plot_fronts(
    quantities: tuple[str, str],
    exact: Sequence[Solution],
    fronts: Mapping[str, Sequence[Solution]],
    points: Mapping[str, Solution] | None = None,
    ax: Axes | None = None,
    title: str = "",
) -> Figure:
    """The exact front as a step line, each method's front as markers, single mappings as
    larger labelled markers (e.g. manual or single-accelerator references)."""
    fig, ax = _axes(ax, (6.4, 4.6))
    (x_label, fx), (y_label, fy) = (AXES[q] for q in quantities)
    q1, q2 = quantities

    def xy(solutions: Sequence[Solution]) -> tuple[list[float], list[float]]:
        kept = [s.metrics for s in solutions if s.metrics is not None]
        return [m.value(q1) * fx for m in kept], [m.value(q2) * fy for m in kept]

    xs, ys = xy(exact)
    ax.step(xs, ys, where="post", color="black", linewidth=1.4, label=f"exact ({len(xs)} pts)")
    ax.scatter(xs, ys, s=14, color="black", zorder=3)
    for k, (name, front) in enumerate(fronts.items()):
        mx, my = xy(front)
        ax.scatter(
            mx,
            my,
            s=22,
            marker=MARKERS[k % len(MARKERS)],
            color=f"C{k % 10}",
            alpha=0.75,
            label=f"{name} ({len(mx)} pts)",
            zorder=2,
        )
    for k, (name, solution) in enumerate((points or {}).items()):
        if solution.metrics is None:
            continue
        ax.scatter(
            solution.metrics.value(q1) * fx,
            solution.metrics.value(q2) * fy,
            s=70,
            marker=MARKERS[(k + len(fronts)) % len(MARKERS)],
            color=f"C{(k + len(fronts)) % 10}",
            edgecolors="black",
            linewidths=0.6,
            label=name,
            zorder=4,
        )
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", frameon=False)
    return fig


def plot_gaps(table: pd.DataFrame, ax: Axes | None = None, title: str = "") -> Figure:
    """Horizontal bars of each method's gap to the optimum (%), labelled with wall time."""
    fig, ax = _axes(ax, (6.4, 0.35 * len(table) + 1.2))
    rows = table[table["method"] != "exact"].iloc[::-1]
    gaps = rows["gap_pct"].fillna(0.0)
    bars = ax.barh(
        rows["method"], gaps, color=["C3" if not ok else "C0" for ok in rows["within_bounds"]]
    )
    for bar, gap, seconds, ok in zip(
        bars, rows["gap_pct"], rows["wall_time_s"], rows["within_bounds"], strict=True
    ):
        text = "over bounds" if not ok else f"{gap:.1f}%  ({seconds:.2g} s)"
        ax.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            f" {text}",
            va="center",
            fontsize="x-small",
        )
    ax.set_xlabel("gap to the proven optimum (%)")
    ax.margins(x=0.25)
    if title:
        ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def plot_split_mapping(target: SplitProblem, solution: Solution, ax: Axes | None = None) -> Figure:
    """Per unit, the share of output channels on each accelerator (stacked to 100%), with the
    unit's latency as a line on a second axis."""
    if solution.mapping is None:
        raise ValueError(f"solution '{solution.method}' ({solution.status}) has no mapping")
    units = evaluate_split(target, solution.mapping).units
    accs = list(target.base.platform.accelerator_names)
    fig, ax = _axes(ax, (max(6.4, 0.22 * len(units)), 4.2))
    positions = list(range(len(units)))
    bottom = [0.0] * len(units)
    for k, acc in enumerate(accs):
        shares = []
        for split in units["split"]:
            counts = {a: 1 if n is None else n for a, n in split.items()}  # None: whole unit
            shares.append(100.0 * counts.get(acc, 0) / sum(counts.values()))
        ax.bar(positions, shares, bottom=bottom, color=f"C{k % 10}", width=0.85)
        bottom = [b + s for b, s in zip(bottom, shares, strict=True)]
    ax.set_ylabel("output channels (%)")
    ax.set_ylim(0, 100)
    ax.set_xticks(positions, units["unit"], rotation=90, fontsize="x-small")
    twin = ax.twinx()
    twin.plot(positions, units["latency_s"] * 1e3, color="black", marker=".", linewidth=1.0)
    twin.set_ylabel("unit latency (ms)")
    legend = [Patch(color=f"C{k % 10}", label=a) for k, a in enumerate(accs)]
    legend_above(ax, legend)
    title = f"{target.base.graph.name} on {target.base.platform.name}: {solution.method}"
    ax.set_title(title, loc="left")
    return fig
