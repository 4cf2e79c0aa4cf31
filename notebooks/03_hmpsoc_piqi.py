# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Rock Pi N10: the exact latency-energy front vs PiQi's NSGA-II, with DVFS
#
# PiQi (Aghapour et al., ISLPED 2024) maps each layer group of a DNN onto the big or little
# CPU cluster, the GPU or the int8 NPU of the RK3399Pro, each at one of its DVFS levels, with
# NSGA-II (population 200, 200 generations) under an accuracy constraint. The `rockpi-n10`
# preset holds PiQi's own per-group measurements. Below, MobileNetV1 with half of the
# accuracy-proxy range as budget: the exact front (every point a proven lexicographic
# optimum) against NSGA-II at PiQi's settings, scored by hypervolume on one reference point.

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import pandas as pd

from milp_map.core.problem import Constraints, build_problem
from milp_map.evaluation.plots_compare import plot_fronts
from milp_map.evaluation.report import unit_table
from milp_map.experiments.compare import RunSettings, compare, format_table
from milp_map.io.models import load_model
from milp_map.io.platforms import load_platform
from milp_map.io.scores import shipped_sensitivity

plt.rcParams.update({"figure.dpi": 110, "font.size": 9, "axes.spines.top": False})
POPULATION, GENERATIONS = 200, 200  # PiQi's settings
QUANTITIES = ("latency", "energy")

# %%
problem = build_problem(
    load_model("mobilenet_v1"),
    load_platform("rockpi-n10"),
    shipped_sensitivity("mobilenet_v1"),
    "latency",
    Constraints(max_proxy_fraction=0.5),
)
options = sum(len(u.options) for u in problem.units)
print(f"{len(problem.units)} layer groups, {options} (accelerator, DVFS level) options in all")

# %% [markdown]
# ## Every method, same problem, same bounds
# `compare` runs each method through one registry; the exact method returns the optimum and
# the whole front. Times are wall-clock on this machine.

# %%
settings = RunSettings(front=QUANTITIES, population=POPULATION, generations=GENERATIONS)
methods = ["exact", "single", "greedy-transitions", "random", "nsga2"]
result = compare(problem, methods, settings, progress=False)
format_table(result.table)

# %%
exact = result.solutions["exact"].extra["front"]
nsga2 = result.solutions["nsga2"].extra["front"]
times = result.table.set_index("method")["wall_time_s"]
ratio = result.table.set_index("method").loc["nsga2", "hv_ratio"]
print(f"exact front: {len(exact)} points in {times['exact']:.1f} s (incl. the single optimum)")
print(f"NSGA-II {POPULATION}x{GENERATIONS}: {len(nsga2)} points in {times['nsga2']:.1f} s")
print(f"NSGA-II hypervolume / exact hypervolume: {ratio:.4f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
fronts = {"NSGA-II (PiQi)": nsga2, "random search": result.solutions["random"].extra["front"]}
plot_fronts(
    QUANTITIES, exact, fronts, {"best single (cpu)": result.solutions["single"]}, ax=axes[0]
)
axes[0].set_title("MobileNetV1 on Rock Pi N10")
plot_fronts(QUANTITIES, exact, {"NSGA-II (PiQi)": nsga2}, ax=axes[1])
latency = [p.metrics.latency_s * 1e3 for p in exact]
energy = [p.metrics.energy_j * 1e3 for p in exact]
axes[1].set_xlim(min(latency) * 0.995, max(latency) * 1.01)
axes[1].set_ylim(min(energy) * 0.995, max(energy) * 1.01)
axes[1].set_title("zoom on the exact front")
plt.show()

# %% [markdown]
# ## Where the DVFS levels go
# Each layer group of the two ends of the exact front: the accelerator (colour) and its DVFS
# level (label; f0 is the lowest frequency).

# %%
ends = {"fastest": exact[0], "least energy": exact[-1]}
accelerators = problem.platform.accelerator_names
fig, ax = plt.subplots(figsize=(9, 2.6), layout="constrained")
for row, point in enumerate(ends.values()):
    table = unit_table(problem, point)
    for k, label in enumerate(table["accelerator"]):
        acc, _, level = label.partition("@")
        colour = f"C{accelerators.index(acc)}"
        ax.barh(row, 1, left=k, color=colour, edgecolor="white")
        ax.text(k + 0.5, row, level, ha="center", va="center", fontsize="x-small", color="white")
ax.set_yticks(
    range(len(ends)),
    [
        f"{n}\n{p.metrics.latency_s * 1e3:.1f} ms, {p.metrics.energy_j * 1e3:.0f} mJ"
        for n, p in ends.items()
    ],
)
ax.set_xticks([k + 0.5 for k in range(len(problem.units))], [u.name for u in problem.units])
ax.set_xlabel("layer group")
handles = [plt.Rectangle((0, 0), 1, 1, color=f"C{k}") for k in range(len(accelerators))]
ax.legend(
    handles,
    accelerators,
    ncols=4,
    fontsize="small",
    loc="upper center",
    bbox_to_anchor=(0.5, 1.3),
    frameon=False,
)
plt.show()

# %%
pd.concat(
    {name: unit_table(problem, p).set_index("unit")["accelerator"] for name, p in ends.items()},
    axis=1,
)
