"""ODiMO-style differentiable mapping search (torch, optional): softmax-relaxed choices + Adam.

Risso, Burrello & Jahier Pagliari (ODiMO, 2024) map a DNN onto DIANA by gradient descent:
every output channel holds a softmax over the accelerators (precisions); a split layer's
latency is a smooth maximum over its parallel parts; the loss is the task loss plus lambda
times the cost (energy or latency); the softmax temperature is annealed; sweeping lambda
gives a front; each channel goes to its argmax at the end.

This module runs that search on milp_map's cost model. It does NOT train the network: where
ODiMO minimises task loss + lambda * cost while training weights, this minimises the
accuracy proxy + lambda * cost (both normalised) over the same option and split tables the
exact formulations use, so its gap to the proven optimum measures the search alone.

- Layer-wise problems: one softmax per unit over its options (accelerator x DVFS level);
  expected latency, energy and proxy, transitions as expected pair costs.
- Channel-split problems: one softmax over accelerators per output-channel group of each
  splittable unit (and per operating point per accelerator); a part's cost is its step
  table interpolated at the expected channel count; the unit's latency is the log-sum-exp
  smooth max over its parts (sum of expected costs for units that cannot split).
- Bounds on quantities outside the loss (e.g. the proxy budget in a latency-energy front)
  enter as hinge penalties (ODiMO has none: it only sweeps lambda).

Every discretised mapping is scored by `milp_map.evaluation.evaluator`; the best one within the
bounds is returned (status "feasible"), and in front mode the non-dominated ones.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from milp_map.baselines.common import CostTables, heuristic_solution
from milp_map.core.problem import active_bounds
from milp_map.core.solution import Metrics, Solution
from milp_map.core.split import SplitProblem, Target, base_problem
from milp_map.defaults import DEFAULT_GRADIENT_STEPS, DEFAULT_LAMBDAS
from milp_map.errors import MilpMapError
from milp_map.evaluation.evaluator import evaluate_choice, evaluate_split, mapping_of
from milp_map.formulations.channel_split import mapping_of as split_mapping_of

LEARNING_RATE = 0.05
TEMPERATURE = (1.0, 0.02)
"""Softmax temperature at the first and the last step (annealed geometrically)."""
SMOOTH_MAX = 0.05
"""Log-sum-exp temperature of a split unit's latency, as a fraction of its slowest part."""
PENALTY = 10.0
"""Weight of a normalised hinge penalty per bound on a quantity outside the loss."""


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MilpMapError(
            "the gradient baseline needs torch: pip install 'milp_map[torch]'"
        ) from exc
    return torch


def gradient_search(
    target: Target,
    lambdas: Sequence[float] | int = DEFAULT_LAMBDAS,
    steps: int = DEFAULT_GRADIENT_STEPS,
    seed: int = 0,
    quantities: tuple[str, str] | None = None,
    front: bool = False,
    threads: int | None = 1,
) -> Solution:
    """One Adam run per lambda (all lambdas batched), argmax at the end.

    The loss is q2 + lambda * q1 over `quantities=(q1, q2)`, default (objective, proxy): small
    lambda favours accuracy, large lambda cost. Returns the best discretised mapping within
    the bounds for the problem's objective; `front=True` also puts the non-dominated ones
    (in q1, q2) in extra["front"].
    """
    torch = _torch()
    start = time.perf_counter()
    cost, accuracy = quantities or (target.objective, "proxy")
    if isinstance(lambdas, int):
        lambdas = lambda_sweep(target, (cost, accuracy), lambdas)
    if steps < 1 or not len(lambdas):
        raise MilpMapError("the gradient baseline needs >= 1 step and >= 1 lambda")
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        relaxation = (
            SplitRelaxation(target) if isinstance(target, SplitProblem) else LayerRelaxation(target)
        )
        generator = torch.Generator().manual_seed(seed)
        params = relaxation.init(len(lambdas), generator)
        optimiser = torch.optim.Adam(params, lr=LEARNING_RATE)
        weight = torch.tensor(lambdas, dtype=torch.float64)
        scales = target.scales
        penalised = {q: b for q, b in active_bounds(target).items() if q not in (cost, accuracy)}
        hot, cold = TEMPERATURE
        for step in range(steps):
            tau = hot * (cold / hot) ** (step / max(1, steps - 1))
            values = relaxation.expected(params, tau)
            loss = values[accuracy] / scales[accuracy] + weight * values[cost] / scales[cost]
            for q, bound in penalised.items():
                loss = loss + PENALTY * torch.relu((values[q] - bound) / scales[q])
            optimiser.zero_grad()
            loss.sum().backward()
            optimiser.step()
        candidates = relaxation.discretise(params)
    finally:
        torch.set_num_threads(previous_threads)
    return _answer(target, candidates, start, (cost, accuracy), front, len(lambdas), steps)


def lambda_sweep(target: Target, quantities: tuple[str, str], n: int) -> tuple[float, ...]:
    """n lambdas, geometric, spanning the exchange rates at which one unit's choice flips.

    With loss q2 + lambda * q1 (normalised), a unit prefers a q1-cheaper option once lambda
    exceeds (its q2 increase) / (its q1 saving); sweeping from half the smallest such rate to
    twice the largest covers every trade-off a unit offers, the way an ODiMO user tunes
    lambda by hand per network.
    """
    problem = base_problem(target)
    tables = CostTables.of(problem)
    columns = {"latency": tables.latency_s, "proxy": tables.proxy}
    columns["energy"] = tables.energy_j + tables.static_power_w * tables.latency_s
    q1, q2 = (columns[q] / target.scales[q] for q in quantities)
    rates = []
    for u, n_options in enumerate(tables.n_options):
        for i in range(int(n_options)):
            for j in range(int(n_options)):
                saving, increase = q1[u, i] - q1[u, j], q2[u, j] - q2[u, i]
                if saving > 0 and increase > 0:
                    rates.append(increase / saving)
    low, high = (min(rates) / 2, max(rates) * 2) if rates else (1e-3, 1e3)
    return tuple(float(v) for v in np.geomspace(low, high, n))


def _answer(
    target: Target,
    candidates: list[tuple[Any, dict, Metrics]],
    start: float,
    quantities: tuple[str, str],
    front: bool,
    n_lambdas: int,
    steps: int,
) -> Solution:
    """Best feasible discretised mapping (else the least-proxy one, reported as violating)."""
    distinct = list({repr(key): (key, m, x) for key, m, x in candidates}.values())
    ok = [c for c in distinct if _within(target, c[2])]
    extra: dict = {"lambdas": n_lambdas, "steps": steps, "distinct_mappings": len(distinct)}
    if front:
        extra["front"] = _front(target, ok, quantities, start)
    pool = ok or distinct
    key = (lambda c: c[2].value(target.objective)) if ok else (lambda c: c[2].accuracy_proxy)
    choice, mapping, metrics = min(pool, key=key)
    extra["choice"] = choice
    return heuristic_solution(target, "gradient", mapping, metrics, start, extra)


def _within(target: Target, metrics: Metrics) -> bool:
    return all(
        metrics.value(q) <= b + target.tolerance(q) for q, b in active_bounds(target).items()
    )


def _front(
    target: Target, ok: list[tuple[Any, dict, Metrics]], quantities: tuple[str, str], start: float
) -> list[Solution]:
    f1, f2 = quantities
    kept: list[Solution] = []
    for choice, mapping, metrics in sorted(ok, key=lambda c: (c[2].value(f1), c[2].value(f2))):
        if not kept or metrics.value(f2) < kept[-1].metrics.value(f2):  # type: ignore[union-attr]
            kept.append(
                heuristic_solution(target, "gradient", mapping, metrics, start, {"choice": choice})
            )
    return kept


class LayerRelaxation:
    """One softmax per unit over its options; expected costs, transitions as pair costs."""

    def __init__(self, target: Target) -> None:
        torch = _torch()
        self.problem = base_problem(target)
        tables = CostTables.of(self.problem)
        as_tensor = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
        self.latency, self.energy, self.proxy = (
            as_tensor(tables.latency_s),
            as_tensor(tables.energy_j),
            as_tensor(tables.proxy),
        )
        columns = np.arange(tables.latency_s.shape[1])
        self.mask = torch.tensor(columns[None, :] < tables.n_options[:, None])
        self.src = torch.tensor(tables.edge_src, dtype=torch.long)
        self.dst = torch.tensor(tables.edge_dst, dtype=torch.long)
        self.edge_latency = as_tensor(tables.edge_latency_s)
        self.edge_energy = as_tensor(tables.edge_energy_j)
        self.static = tables.static_power_w

    def init(self, n: int, generator: Any) -> list[Any]:
        torch = _torch()
        shape = (n, *self.latency.shape)
        logits = 0.01 * torch.randn(shape, generator=generator, dtype=torch.float64)
        return [logits.requires_grad_()]

    def expected(self, params: list[Any], tau: float) -> dict[str, Any]:
        torch = _torch()
        (logits,) = params
        p = torch.softmax((logits / tau).masked_fill(~self.mask, -torch.inf), dim=-1)
        latency = (p * self.latency).sum((-1, -2))
        dynamic = (p * self.energy).sum((-1, -2))
        if len(self.src):
            ps, pd = p[:, self.src], p[:, self.dst]
            latency = latency + torch.einsum("leo,eop,lep->l", ps, self.edge_latency, pd)
            dynamic = dynamic + torch.einsum("leo,eop,lep->l", ps, self.edge_energy, pd)
        return {
            "latency": latency,
            "energy": dynamic + self.static * latency,
            "proxy": (p * self.proxy).sum((-1, -2)),
        }

    def discretise(self, params: list[Any]) -> list[tuple[Any, dict, Metrics]]:
        (logits,) = params
        masked = logits.detach().masked_fill(~self.mask, -np.inf)
        found = []
        for row in masked.argmax(dim=-1).tolist():
            choice = tuple(int(o) for o in row)
            found.append(
                (
                    choice,
                    mapping_of(self.problem, choice),
                    evaluate_choice(self.problem, choice),
                )
            )
        return found


class SplitRelaxation:
    """Per channel group, a softmax over accelerators; per (unit, accelerator), one over its
    operating points. Parts cost their step table interpolated at the expected group count."""

    def __init__(self, target: SplitProblem) -> None:
        torch = _torch()
        self.target = target
        base = target.base
        self.accs = list(base.platform.accelerator_names)
        n_units, n_accs = len(target.units), len(self.accs)
        self.groups = [u.channels // u.group_size if u.splittable else 1 for u in target.units]
        self.points = [
            {
                a: list(dict.fromkeys(p.operating_point for p in parts))
                for a, parts in u.parts.items()
            }
            for u in target.units
        ]
        k_max = max(self.groups)
        p_max = max(len(v) for unit in self.points for v in unit.values())
        latency = np.zeros((n_units, n_accs, p_max, k_max + 1))
        energy = np.zeros_like(latency)
        acc_ok = np.zeros((n_units, n_accs), dtype=bool)
        point_ok = np.zeros((n_units, n_accs, p_max), dtype=bool)
        point_ok[:, :, 0] = True  # unused accelerators keep one (zero-cost) point: no NaN
        score = np.zeros((n_units, n_accs))
        slowest = np.ones(n_units)
        for u, unit in enumerate(target.units):
            size = unit.group_size if unit.splittable else unit.channels
            for a, acc in enumerate(self.accs):
                parts = unit.parts.get(acc, ())
                counts = {p.channels for p in parts}
                if not parts or not all(m * size in counts for m in range(1, self.groups[u] + 1)):
                    continue  # a whole-layer-only accelerator of a split unit: not searched
                acc_ok[u, a] = True
                score[u, a] = unit.proxy.layer_scores[unit.precision[acc]]
                for k, point in enumerate(self.points[u][acc]):
                    point_ok[u, a, k] = True
                    for part in parts:
                        if part.operating_point == point:
                            m = part.channels // size
                            latency[u, a, k, m], energy[u, a, k, m] = part.latency_s, part.energy_j
                    latency[u, a, k, self.groups[u] + 1 :] = latency[u, a, k, self.groups[u]]
                    energy[u, a, k, self.groups[u] + 1 :] = energy[u, a, k, self.groups[u]]
            slowest[u] = max(latency[u].max(), 1e-30)
        as_tensor = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
        self.latency, self.energy, self.score = (
            as_tensor(latency),
            as_tensor(energy),
            as_tensor(score),
        )
        self.acc_ok, self.point_ok = torch.tensor(acc_ok), torch.tensor(point_ok)
        self.group_ok = torch.arange(k_max)[None, :] < torch.tensor(self.groups)[:, None]
        self.n_groups = as_tensor(np.array(self.groups, dtype=float))
        self.splittable = torch.tensor([u.splittable for u in target.units])
        self.smooth = as_tensor(SMOOTH_MAX * slowest)
        self.static = base.static_power_w
        self._edges(base, acc_ok)

    def _edges(self, base: Any, acc_ok: np.ndarray) -> None:
        torch = _torch()
        index = {a: k for k, a in enumerate(self.accs)}
        costly = [e for e in base.edges if e.costs]
        fixed = np.zeros((len(costly), len(self.accs), len(self.accs)))
        by_bytes, energy = np.zeros_like(fixed), np.zeros_like(fixed)
        for k, edge in enumerate(costly):
            split_src = self.target.units[edge.src].splittable
            for (a, b), (latency, joules) in edge.costs.items():
                share = edge.bytes_latency.get((a, b), 0.0) if split_src else 0.0
                i, j = index[a], index[b]
                fixed[k, i, j], by_bytes[k, i, j], energy[k, i, j] = latency - share, share, joules
        self.src = torch.tensor([e.src for e in costly], dtype=torch.long)
        self.dst = torch.tensor([e.dst for e in costly], dtype=torch.long)
        self.edge_fixed = torch.tensor(fixed)
        self.edge_bytes = torch.tensor(by_bytes)
        self.edge_energy = torch.tensor(energy)

    def init(self, n: int, generator: Any) -> list[Any]:
        torch = _torch()
        n_units, n_accs, p_max, _ = self.latency.shape
        groups = 0.01 * torch.randn(
            (n, n_units, self.group_ok.shape[1], n_accs), generator=generator, dtype=torch.float64
        )
        points = 0.01 * torch.randn(
            (n, n_units, n_accs, p_max), generator=generator, dtype=torch.float64
        )
        return [groups.requires_grad_(), points.requires_grad_()]

    def _probabilities(self, params: list[Any], tau: float) -> tuple[Any, Any]:
        torch = _torch()
        groups, points = params
        g = torch.softmax((groups / tau).masked_fill(~self.acc_ok[:, None, :], -torch.inf), -1)
        g = g * self.group_ok[None, :, :, None]
        q = torch.softmax((points / tau).masked_fill(~self.point_ok, -torch.inf), -1)
        return g, q

    def expected(self, params: list[Any], tau: float) -> dict[str, Any]:
        torch = _torch()
        g, q = self._probabilities(params, tau)
        n = g.sum(dim=2)  # expected groups per accelerator: L x U x A
        k_max = self.latency.shape[-1] - 1
        low = n.detach().floor().clamp(0, k_max - 1).long()
        frac = (n - low)[..., None]
        index = low[..., None, None].expand(*low.shape, self.latency.shape[2], 1)

        def interpolate(table: Any) -> Any:
            full = table.expand(n.shape[0], *table.shape)
            below = full.gather(-1, index).squeeze(-1)
            above = full.gather(-1, index + 1).squeeze(-1)
            return ((below + frac * (above - below)) * q).sum(-1)

        part_latency, part_energy = interpolate(self.latency), interpolate(self.energy)
        smooth = self.smooth[None, :, None]
        parallel = smooth[..., 0] * torch.logsumexp(
            (part_latency / smooth).masked_fill(~self.acc_ok, -torch.inf), dim=-1
        )
        unit_latency = torch.where(self.splittable, parallel, part_latency.sum(-1))
        latency = unit_latency.sum(-1)
        dynamic = part_energy.sum((-1, -2))
        proxy = (n / self.n_groups[:, None] * self.score).sum((-1, -2))
        if len(self.src):
            used = 1 - torch.prod(1 - g, dim=2)
            share = n / self.n_groups[:, None]
            us, ud, ss = used[:, self.src], used[:, self.dst], share[:, self.src]
            latency = latency + torch.einsum("lea,eab,leb->l", us, self.edge_fixed, ud)
            latency = latency + torch.einsum("lea,eab,leb->l", us * ss, self.edge_bytes, ud)
            dynamic = dynamic + torch.einsum("lea,eab,leb->l", us, self.edge_energy, ud)
        return {"latency": latency, "energy": dynamic + self.static * latency, "proxy": proxy}

    def discretise(self, params: list[Any]) -> list[tuple[Any, dict, Metrics]]:
        groups, points = (p.detach() for p in params)
        groups = groups.masked_fill(~self.acc_ok[:, None, :], -np.inf).argmax(-1)
        points = points.masked_fill(~self.point_ok, -np.inf).argmax(-1)
        found = []
        for row_groups, row_points in zip(groups.tolist(), points.tolist(), strict=True):
            selection = tuple(
                self._unit_selection(u, row_groups[u], row_points[u])
                for u in range(len(self.target.units))
            )
            mapping = split_mapping_of(self.target, selection)
            found.append((selection, mapping, evaluate_split(self.target, mapping).metrics))
        return found

    def _unit_selection(
        self, u: int, group_accs: list[int], acc_points: list[int]
    ) -> tuple[tuple[str, int], ...]:
        """(accelerator, part index) per used accelerator from the per-group argmax."""
        unit = self.target.units[u]
        size = unit.group_size if unit.splittable else unit.channels
        counts: dict[str, int] = {}
        for a in group_accs[: self.groups[u]]:
            counts[self.accs[a]] = counts.get(self.accs[a], 0) + 1
        chosen = []
        for acc, m in sorted(counts.items()):
            point = self.points[u][acc][acc_points[self.accs.index(acc)]]
            j = next(
                k
                for k, part in enumerate(unit.parts[acc])
                if part.channels == m * size and part.operating_point == point
            )
            chosen.append((acc, j))
        return tuple(chosen)
