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
# # 01 · Quickstart: a provably optimal mapping of ResNet-20 onto DIANA
#
# DIANA (Ueyoshi et al., ISSCC 2022) pairs an 8-bit digital engine with a ternary analog
# in-memory array. Every conv or fully-connected layer can run on either; the analog array is
# faster and cheaper but less accurate. We ask for the fastest mapping whose accuracy proxy
# (a HAWQ-style sum of per-layer sensitivities) stays within half of its achievable range,
# and get it with a proof of optimality.

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import pandas as pd

from milp_map.baselines.manual import manual_mappings
from milp_map.baselines.single import maeg_gain, single_accelerator
from milp_map.core.problem import Constraints, build_problem
from milp_map.core.split import build_split_problem
from milp_map.evaluation.plots import plot_mapping
from milp_map.evaluation.plots_compare import plot_split_mapping
from milp_map.evaluation.report import unit_table
from milp_map.formulations import channel_split, layerwise
from milp_map.io.models import load_model
from milp_map.io.platforms import load_platform
from milp_map.io.scores import shipped_sensitivity

plt.rcParams.update({"figure.dpi": 110, "font.size": 9, "axes.spines.top": False})

# %% [markdown]
# ## The problem: network + platform + proxy + bounds

# %%
graph = load_model("resnet20")
platform = load_platform("diana")
problem = build_problem(
    graph,
    platform,
    shipped_sensitivity("resnet20"),
    objective="latency",
    constraints=Constraints(max_proxy_fraction=0.5),
)
low, high = problem.proxy_range
print(f"{len(problem.units)} units on {', '.join(platform.accelerator_names)}")
print(f"proxy range [{low:.3g}, {high:.3g}], budget {problem.proxy_budget:.4g}")

# %% [markdown]
# ## Solve and inspect
# `status optimal` means the solver proved no mapping within the budget is faster.

# %%
solution = layerwise.solve(problem, "highs")
m = solution.metrics
print(
    f"{solution.status} in {solution.solve_time_s:.3f} s: latency {m.latency_s * 1e6:.1f} us, "
    f"energy {m.energy_j * 1e6:.2f} uJ, proxy {m.accuracy_proxy:.1f}"
)
unit_table(problem, solution).head(10)

# %% [markdown]
# ## One mapping, per layer
# Bars are each unit's latency, coloured by the accelerator it runs on.

# %%
plot_mapping(problem, solution)

# %% [markdown]
# ## Against the reference mappings
# ODiMO's hand-made mappings and every single-accelerator mapping, with the MAEG gain
# (Dagli & Belviranli, 2021) of each over the best single accelerator. Mappings that beat
# the optimum break the proxy budget.

# %%
rows = []
for reference in [solution, *manual_mappings(problem), *single_accelerator(problem)]:
    r = reference.metrics
    gain_latency, gain_energy = maeg_gain(problem, r)
    rows.append(
        {
            "mapping": "optimum" if reference is solution else reference.method,
            "latency (us)": r.latency_s * 1e6,
            "energy (uJ)": r.energy_j * 1e6,
            "proxy": r.accuracy_proxy,
            "within budget": r.accuracy_proxy <= problem.proxy_budget + 1e-9,
            "MAEG latency (%)": gain_latency,
            "MAEG energy (%)": gain_energy,
        }
    )
pd.DataFrame(rows).drop_duplicates("mapping").round(2)

# %% [markdown]
# ## Splitting layers across both engines (ODiMO's fine-grain mapping)
# With `--granularity channel` a layer may give groups of 8 output channels to each engine;
# the parts run in parallel. Warm-started from the layer-wise optimum:

# %%
split = build_split_problem(problem, group_size=8)
hint = channel_split.selection_from_layerwise(split, solution.extra["choice"])
split_solution = channel_split.solve(split, "cpsat", hint=hint)
s = split_solution.metrics
print(
    f"{split_solution.status}: latency {s.latency_s * 1e6:.1f} us "
    f"({100 * (1 - s.latency_s / m.latency_s):.1f}% below the layer-wise optimum)"
)
fig, ax = plt.subplots(figsize=(9, 3.6), layout="constrained")
plot_split_mapping(split, split_solution, ax=ax)
plt.show()
