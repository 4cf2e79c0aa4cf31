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
# # 02 · DIANA: the exact accuracy-latency front vs ODiMO's search
#
# ODiMO (Risso et al., 2024) maps ResNet-20 onto DIANA by gradient descent over a softmax
# per output channel, sweeping the weight lambda of its cost regulariser to trace a front,
# and compares with three hand-made mappings. Here the same search space (channel groups
# split across the digital and analog engines) is solved exactly at every point of the
# front, and ODiMO's search runs on the same cost model and accuracy proxy
# (`milp_map.baselines.gradient`: it optimises proxy + lambda * latency instead of training
# the network, so the gap below is the search's alone).
#
# Fast settings: channel groups of 16 and a sweep step of 2% of the proxy scale (each point
# is still a proven optimum; the step only skips points closer than that).

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import pandas as pd

from milp_map.baselines.gradient import gradient_search
from milp_map.baselines.manual import manual_mappings
from milp_map.core.problem import build_problem
from milp_map.core.solution import Solution
from milp_map.core.split import build_split_problem
from milp_map.evaluation.plots_compare import plot_fronts, plot_split_mapping
from milp_map.exact.pareto import exact_front
from milp_map.experiments.compare import comparison_table
from milp_map.formulations import channel_split, layerwise
from milp_map.io.models import load_model
from milp_map.io.platforms import load_platform
from milp_map.io.scores import shipped_sensitivity
from milp_map.solvers import SolverSettings

plt.rcParams.update({"figure.dpi": 110, "font.size": 9, "axes.spines.top": False})
GROUP_SIZE = 16
STEP = 0.02  # sweep step, fraction of the proxy scale
QUANTITIES = ("latency", "proxy")

# %%
problem = build_problem(
    load_model("resnet20"), load_platform("diana"), shipped_sensitivity("resnet20"), "latency"
)
split = build_split_problem(problem, GROUP_SIZE)
settings = SolverSettings(threads=1)


def split_solver(objective, bounds, hint):
    return channel_split.solve(split, "cpsat", settings, objective, bounds, hint)


def layer_solver(objective, bounds, hint):
    return layerwise.solve(problem, "cpsat", settings, objective, bounds, hint)


exact = exact_front(
    split, split_solver, QUANTITIES, progress=False, delta=STEP * split.scales["proxy"]
)
layer_exact = exact_front(
    problem, layer_solver, QUANTITIES, progress=False, delta=STEP * problem.scales["proxy"]
)
for name, front in (("channel-split", exact), ("layer-wise", layer_exact)):
    print(f"{name} front: {len(front.points)} proven points in {front.solve_time_s:.1f} s")

# %% [markdown]
# ## ODiMO-style gradient search: one Adam run per lambda, argmax at the end

# %%
odimo = gradient_search(split, quantities=QUANTITIES, front=True, seed=0)
odimo_front = odimo.extra["front"]
print(
    f"{odimo.extra['lambdas']} lambdas -> {odimo.extra['distinct_mappings']} distinct mappings, "
    f"{len(odimo_front)} non-dominated, {odimo.solve_time_s:.1f} s"
)
manual = {s.method: s for s in manual_mappings(problem)}

# %%
fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
lx = [p.metrics.latency_s * 1e3 for p in layer_exact.points]
ly = [p.metrics.accuracy_proxy for p in layer_exact.points]
ax.step(
    lx, ly, where="post", color="grey", linestyle="--", linewidth=1.0, label="exact, layer-wise"
)
plot_fronts(QUANTITIES, exact.points, {"ODiMO-style gradient": odimo_front}, manual, ax=ax)
ax.set_yscale("symlog", linthresh=1.0)
ax.set_title("ResNet-20 on DIANA: accuracy proxy vs latency")
plt.show()

# %% [markdown]
# ## How far is each gradient point from the front?
# For every mapping the gradient search returns, the exact optimum at the same proxy budget
# (a proven point of the channel-split model) and the latency gap to it.

# %%
rows, optima = [], []
for point in odimo_front:
    budget = point.metrics.accuracy_proxy
    best = split_solver("latency", {"proxy": budget}, None)
    optima.append(best)
    rows.append(
        {
            "proxy": budget,
            "gradient latency (us)": point.metrics.latency_s * 1e6,
            "optimum (us)": best.metrics.latency_s * 1e6,
            "gap (%)": 100 * (point.metrics.latency_s / best.metrics.latency_s - 1),
        }
    )
gaps = pd.DataFrame(rows)
gaps.round(2)

# %% [markdown]
# ## Hypervolume of each front against the exact one (same reference point)

# %%
solutions = {
    "exact": Solution("exact", "optimal", "latency", extra={"front": list(exact.points)}),
    "exact layer-wise": Solution(
        "layer", "optimal", "latency", extra={"front": list(layer_exact.points)}
    ),
    "gradient": odimo,
    **{
        name: Solution(name, "feasible", "latency", extra={"front": [s]})
        for name, s in manual.items()
    },
}
table, reference = comparison_table(split, solutions, QUANTITIES)
table[["method", "front_points", "hv_ratio"]].round(3)

# %% [markdown]
# ## The gradient mapping farthest from the front, next to the optimum at its proxy

# %%
worst = int(gaps["gap (%)"].idxmax())
point, optimum = odimo_front[worst], optima[worst]
fig, axes = plt.subplots(2, 1, figsize=(9, 6.4), layout="constrained", sharex=True)
plot_split_mapping(split, point, ax=axes[0])
plot_split_mapping(split, optimum, ax=axes[1])
axes[0].set_title(f"gradient search: {point.metrics.latency_s * 1e6:.0f} us", loc="left")
axes[1].set_title(
    f"proven optimum, same proxy: {optimum.metrics.latency_s * 1e6:.0f} us", loc="left"
)
plt.show()
