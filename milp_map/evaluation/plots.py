"""PNG figures of fronts and mappings (matplotlib's Agg canvas: no display, no pyplot state)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

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


BOUND_NAMES = {"latency": "latency bound", "energy": "energy bound", "proxy": "proxy budget"}

WIDE_SPAN = 30.0
"""An overview axis whose values span more than this ratio is drawn logarithmic."""


def plot_front(
    front: Front,
    markers: Sequence[Solution],
    path: Path,
    title: str,
    bounds: Mapping[str, float] | None = None,
) -> Figure:
    """The front as a step line with dots (hollow: unproven), zoomed on the front, beside an
    overview with every reference mapping; references that break one of `bounds`
    ({quantity: limit, tolerance included}) are hollow and say so, off-scale ones sit at the
    zoomed panel's edge, and a bound on an axis is a dashed line."""
    bounds = dict(bounds or {})
    fig = Figure(figsize=(10.0, 5.2))
    FigureCanvasAgg(fig)
    zoom, overview = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    references = [_Reference.of(m, front.quantities, bounds) for m in markers if m.metrics]
    drawn = {}
    for ax in (zoom, overview):
        _draw_front(ax, front)
        drawn[ax] = [ref.draw(ax, k) for k, ref in enumerate(references)]
        _draw_axis_bounds(ax, front.quantities, bounds)
    _zoom_on_front(zoom, front, list(zip(references, drawn[zoom], strict=True)))
    (x_lo, x_hi), (y_lo, y_hi) = zoom.get_xlim(), zoom.get_ylim()
    box = Rectangle((x_lo, y_lo), x_hi - x_lo, y_hi - y_lo, fill=False, linestyle=":")
    overview.add_patch(box)  # where the zoomed panel looks
    _overview_scales(overview, front, references)
    (x_label, _), (y_label, _) = (AXES[q] for q in front.quantities)
    for ax in (zoom, overview):
        ax.set_xlabel(x_label)
        ax.grid(True, alpha=0.3)
    zoom.set_ylabel(y_label)
    zoom.set_title("the front", fontsize="medium")
    overview.set_title("overview: every reference", fontsize="medium")
    other = [q for q in bounds if q not in front.quantities]
    heading = title
    if other:
        heading += "\nevery front point meets " + ", ".join(
            f"{BOUND_NAMES[q]} {bounds[q] * AXES[q][1]:.4g}" for q in other
        )
    fig.suptitle(heading, fontsize="medium")
    handles, labels = zoom.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize="small", frameon=False)
    fig.tight_layout(rect=(0, 0.04 + 0.035 * ((len(labels) + 2) // 3), 1, 1))
    fig.savefig(path, dpi=DPI)
    return fig


@dataclass(frozen=True)
class _Reference:
    """A reference mapping's place on the plot: its (x, y) in axis units and which bounds
    it breaks."""

    name: str
    x: float
    y: float
    breaks: tuple[str, ...]

    @classmethod
    def of(
        cls, solution: Solution, quantities: tuple[str, str], bounds: Mapping[str, float]
    ) -> _Reference:
        metrics = solution.metrics
        assert metrics is not None
        (_, x_factor), (_, y_factor) = (AXES[q] for q in quantities)
        broken = tuple(q for q, limit in bounds.items() if metrics.value(q) > limit)
        return cls(
            solution.method,
            metrics.value(quantities[0]) * x_factor,
            metrics.value(quantities[1]) * y_factor,
            broken,
        )

    @property
    def label(self) -> str:
        if not self.breaks:
            return self.name
        return f"{self.name} (breaks the {' and '.join(BOUND_NAMES[q] for q in self.breaks)})"

    def draw(self, ax: Axes, k: int) -> PathCollection:
        colour = f"C{(k + 1) % 10}"
        return ax.scatter(
            self.x,
            self.y,
            marker=MARKERS[k % len(MARKERS)],
            s=55,
            facecolors="none" if self.breaks else colour,
            edgecolors=colour if self.breaks else "black",
            linewidths=1.4 if self.breaks else 0.5,
            label=self.label,
            zorder=3,
            clip_on=False,
        )


def _draw_front(ax: Axes, front: Front) -> None:
    (_, x_factor), (_, y_factor) = (AXES[q] for q in front.quantities)
    xs = [x * x_factor for x, _ in front.values()]
    ys = [y * y_factor for _, y in front.values()]
    proven = [p.status == "optimal" for p in front.points]
    label = f"exact front ({len(xs)} points{'' if front.complete else ', incomplete'})"
    ax.step(xs, ys, where="post", color="tab:blue", linewidth=1.2, label=label)
    ax.scatter(
        xs, ys, s=14, color="tab:blue", facecolors=["tab:blue" if ok else "none" for ok in proven]
    )


def _draw_axis_bounds(ax: Axes, quantities: tuple[str, str], bounds: Mapping[str, float]) -> None:
    """A dashed line at each bound on one of the two axes."""
    for axis, q in enumerate(quantities):
        if q in bounds:
            value = bounds[q] * AXES[q][1]
            line = ax.axvline if axis == 0 else ax.axhline
            line(value, color="grey", linestyle="--", linewidth=1.0, label=BOUND_NAMES[q])


def _zoom_on_front(
    ax: Axes, front: Front, references: Sequence[tuple[_Reference, PathCollection]]
) -> None:
    """Limits that fit the front (8% margins); references outside are moved onto the edge,
    their marker kept, and marked "off scale" in the legend."""
    (_, x_factor), (_, y_factor) = (AXES[q] for q in front.quantities)
    values = front.values()
    if not values:
        return
    x_lo, x_hi = _padded([x * x_factor for x, _ in values])
    y_lo, y_hi = _padded([y * y_factor for _, y in values])
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    for ref, collection in references:
        inside = x_lo <= ref.x <= x_hi and y_lo <= ref.y <= y_hi
        if not inside:
            collection.set_offsets([[min(max(ref.x, x_lo), x_hi), min(max(ref.y, y_lo), y_hi)]])
            collection.set_label(f"{ref.label}, off scale: at the edge")


def _padded(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    span = hi - lo if hi > lo else max(abs(hi), 1e-12) * 0.02
    return lo - 0.08 * span, hi + 0.08 * span


def _overview_scales(ax: Axes, front: Front, references: Sequence[_Reference]) -> None:
    """Logarithmic axes where the front and the references span more than WIDE_SPAN."""
    (_, x_factor), (_, y_factor) = (AXES[q] for q in front.quantities)
    xs = [x * x_factor for x, _ in front.values()] + [r.x for r in references]
    ys = [y * y_factor for _, y in front.values()] + [r.y for r in references]
    for values, set_scale in ((xs, ax.set_xscale), (ys, ax.set_yscale)):
        if values and min(values) > 0 and max(values) / min(values) > WIDE_SPAN:
            set_scale("log")


def legend_above(ax: Axes, handles: Sequence[Patch]) -> None:
    """The legend in one row above the plot's right end, beside a left-aligned title: inside
    the axes it hid the first units' bars."""
    ax.legend(
        handles=list(handles),
        fontsize="small",
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncol=len(handles),
        frameon=False,
    )


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
    ax.set_title(title, fontsize="medium", loc="left")
    legend_above(ax, legend)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=DPI)
    return fig
