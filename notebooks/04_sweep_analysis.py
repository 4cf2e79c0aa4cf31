# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Sweep analysis: fronts per network and platform, and what each method cost
#
# Loads the table of a `python -m milp_map.sweep` run (`results.csv` in its `--out` folder)
# and draws, for every network and platform, the best objective reached at each
# accuracy-proxy budget, then the time each method took per cell.
#
# Set `SWEEP_RESULTS` (environment variable, or the cell below) to a results folder, e.g.
# after `python -m milp_map.sweep examples/grid.yaml --out results/`. Without it the
# notebook runs a tiny grid of its own (a few seconds) into a temporary folder.

# %%
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from milp_map.cli.sweep import main as sweep
from milp_map.experiments.sweep.store import load_table

# %% tags=["parameters"]
RESULTS = os.environ.get("SWEEP_RESULTS")

# %%
TINY_GRID = """
models: [resnet8, ds_cnn]
platforms:
  - diana
  - name: diana-slow-analog
    base: diana
    set: {accelerators.analog.cost.freq_hz: 130.0e+6}
granularities: [layer, channel]
group_sizes: [16]
objectives: [latency]
budgets: [0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0]
"""
# two fast baselines beside the exact method
METHODS = ["exact", "greedy-per-proxy", "random"]

own_folder = None
if RESULTS is None:
    own_folder = folder = Path(tempfile.mkdtemp(prefix="sweep_"))
    (folder / "grid.yaml").write_text(TINY_GRID + f"methods: [{', '.join(METHODS)}]\n")
    RESULTS = folder / "results"
    # --jobs 0: the cells run in this kernel, no worker processes to start
    assert sweep([str(folder / "grid.yaml"), "--out", str(RESULTS), "--jobs", "0", "--quiet"]) == 0

table = load_table(RESULTS)
print(f"{len(table)} cells from {RESULTS}")
table["status"].value_counts()

# %% [markdown]
# Failed cells (status other than `optimal` / `feasible`) with their one-line reasons:

# %%
failed = table[~table["status"].isin(["optimal", "feasible"])]
failed.groupby(["status", "error"], dropna=False).size().rename("cells").to_frame()

# %% [markdown]
# ## Fronts
#
# One panel per network and platform: the objective against the accuracy proxy reached, one
# curve per method (colour) and granularity (line style), keeping only non-dominated points
# (a looser budget that buys nothing adds no point).

# %%
UNITS = {"latency": ("latency_s", 1e3, "latency (ms)"), "energy": ("energy_j", 1e6, "energy (uJ)")}


def non_dominated(points: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Points no other point beats in both x and y (both minimised), sorted by x."""
    points = points.sort_values([x, y])
    return points[points[y] < points[y].cummin().shift(fill_value=float("inf"))]


solved = table[table["status"].isin(["optimal", "feasible"])].copy()
solved["granularity"] += solved["group_size"].map(lambda g: "" if pd.isna(g) else f" G={int(g)}")
methods = sorted(solved["method"].unique(), key=lambda m: (m != "exact", m))
colors = dict(zip(methods, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4, strict=False))
styles = dict(zip(sorted(solved["granularity"].unique()), ["-", "--", ":", "-."] * 4, strict=False))

for objective, rows in solved.groupby("objective"):
    column, factor, label = UNITS[objective]
    panels = rows.groupby(["model", "platform"])
    n_cols = min(3, panels.ngroups)
    n_rows = -(-panels.ngroups // n_cols)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(4.2 * n_cols + 2.5, 3.2 * n_rows),
        squeeze=False,
        layout="constrained",
    )
    for ax, ((model, platform), panel) in zip(axes.flat, panels, strict=False):
        for (method, granularity), points in panel.groupby(["method", "granularity"]):
            front = non_dominated(points, "accuracy_proxy", column)
            ax.step(
                front["accuracy_proxy"],
                front[column] * factor,
                where="post",
                marker="o",
                markersize=3,
                color=colors[method],
                linestyle=styles[granularity],
                label=f"{method}, {granularity}",
            )
        ax.set_title(f"{model} on {platform}", fontsize=9)
        ax.set_xlabel("accuracy proxy (lower is better)")
        ax.set_ylabel(label)
    for ax in list(axes.flat)[panels.ngroups :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    fig.suptitle(f"min {objective} under accuracy-proxy budgets")
    plt.show()

# %% [markdown]
# ## Time per method
#
# Wall time of each cell (model building included) by method and granularity, on a log
# scale; the solver's own time is `solve_time_s`.

# %%
timed = table.dropna(subset=["wall_time_s"]).copy()
timed["run"] = timed["method"] + " / " + timed["granularity"]
groups = sorted(timed["run"].unique())
fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(groups), 3.2))
ax.boxplot([timed.loc[timed["run"] == g, "wall_time_s"] for g in groups], showfliers=True)
ax.set_xticks(range(1, len(groups) + 1), groups, rotation=20, fontsize=8)
ax.set_yscale("log")
ax.set_ylabel("wall time per cell (s)")
fig.tight_layout()
plt.show()

timed.groupby(["method", "granularity"])["wall_time_s"].describe()[["count", "50%", "max"]]

# %%
if own_folder is not None:  # the tiny grid's temporary results
    shutil.rmtree(own_folder)
