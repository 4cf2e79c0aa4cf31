"""Fit a platform's free parameters to measured whole-network runs, and check the fit on runs it
did not see.

The evaluator's latency of a layer-wise mapping is a sum of terms: each accelerator's unit
costs, the transfer costs of crossing edges. A fit scales each term and charges a fixed cost
per switch (from, to), one per crossing edge: per-segment entry and exit costs such as an NPU
driver round trip or a graph start. Energy gets a scale per accelerator and on transfers, plus
the static power times the fitted latency. Both are linear in the parameters, so each is one
bounded, robust (soft-L1) least-squares problem (scipy's least_squares) on relative errors: a
17 ms run weighs as much as a 6 s one, and a glitched run less than a good one. A small ridge
pulls every parameter towards "unchanged", so a parameter the runs cannot tell apart from
another stays where the preset put it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from milp_map.core.costmodels import ANALYTICAL_MODELS
from milp_map.core.platform import Accelerator, Platform
from milp_map.core.problem import Problem
from milp_map.errors import MilpMapError
from milp_map.evaluation.evaluator import evaluate_choice
from milp_map.io.platform_writer import (
    RATE_PARAMETERS,
    PlatformAdjustment,
    remove_written,
    write_adjusted_platform,
)
from milp_map.io.platforms import MAX_POWER_W, load_platform, resolve_platform_path
from milp_map.io.problems import load_problem
from milp_map.io.runs import MeasuredRun, read_runs

SCALE_RANGE = (0.25, 4.0)
"""How far a fit may scale a measured or modelled term: beyond that the preset is wrong, not
off, and should be rebuilt rather than fitted."""
MAX_SWITCH_S = 1.0
POWER_RANGE = (0.0, MAX_POWER_W)
RIDGE = 1e-4
"""Weight of the pull towards 'unchanged', relative to one run's squared relative error."""
LOSS = "soft_l1"
ROBUST_SCALE = 0.05
"""Relative error (5 %) beyond which a run counts less and less (soft L1): a glitched
measurement, like a YOLOv3 run 31 % faster than any model of it, does not drag the fit."""


@dataclass(frozen=True)
class RunTerms:
    """The evaluator's costs of one run, split into the parts a fit can adjust."""

    compute_s: Mapping[str, float]
    compute_j: Mapping[str, float]
    transfer_s: float
    transfer_j: float
    crossings: Mapping[tuple[str, str], int]


@dataclass(frozen=True)
class Prediction:
    """A measured run beside the platform's prediction, before and after the fit."""

    run: MeasuredRun
    preset_latency_s: float
    fitted_latency_s: float
    preset_energy_j: float
    fitted_energy_j: float | None

    @property
    def mixed(self) -> bool:
        return len(self.run.accelerators) > 1

    def latency_error(self, fitted: bool) -> float:
        """(predicted - measured) / measured."""
        predicted = self.fitted_latency_s if fitted else self.preset_latency_s
        return predicted / self.run.latency_s - 1.0


def run_terms(problem: Problem, run: MeasuredRun) -> RunTerms:
    """Split the evaluator's metrics of `run` on `problem` (same sums, same edges)."""
    choice = _choice(problem, run)
    compute_s: dict[str, float] = {}
    compute_j: dict[str, float] = {}
    for unit, index in zip(problem.units, choice, strict=True):
        option = unit.options[index]
        compute_s[option.accelerator] = compute_s.get(option.accelerator, 0.0) + option.latency_s
        compute_j[option.accelerator] = compute_j.get(option.accelerator, 0.0) + option.energy_j
    transfer_s = transfer_j = 0.0
    crossings: dict[tuple[str, str], int] = {}
    for edge in problem.edges:
        pair = (
            problem.units[edge.src].options[choice[edge.src]].accelerator,
            problem.units[edge.dst].options[choice[edge.dst]].accelerator,
        )
        if pair[0] == pair[1]:
            continue
        lat, energy = edge.costs.get(pair, (0.0, 0.0))
        transfer_s += lat
        transfer_j += energy
        crossings[pair] = crossings.get(pair, 0) + 1
    return RunTerms(compute_s, compute_j, transfer_s, transfer_j, crossings)


def _choice(problem: Problem, run: MeasuredRun) -> list[int]:
    where = f"run '{run.run}' of {run.network}"
    names = [u.name for u in problem.units]
    missing = [n for n in names if n not in run.mapping]
    extra = sorted(set(run.mapping) - set(names))
    if missing or extra:
        detail = f"leaves {missing[:3]} unmapped" if missing else f"names unknown {extra[:3]}"
        raise MilpMapError(f"{where}: the mapping {detail}; the units are {names[0]}..{names[-1]}")
    try:
        return [problem.option_index(i, *run.mapping[n]) for i, n in enumerate(names)]
    except MilpMapError as exc:
        raise MilpMapError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class PlatformFit:
    """Fitted parameters, as the platform writer applies them."""

    adjustment: PlatformAdjustment
    static_power_w: float
    """The platform's static power before the fit (kept unless energies were fitted)."""

    def compute_s(self, terms: RunTerms) -> dict[str, float]:
        """Fitted compute time per accelerator."""
        scale = self.adjustment.latency_scale
        return {acc: scale.get(acc, 1.0) * t for acc, t in terms.compute_s.items()}

    def latency_s(self, terms: RunTerms) -> float:
        a = self.adjustment
        return (
            sum(self.compute_s(terms).values())
            + a.transfer_latency_scale * terms.transfer_s
            + sum(a.switch_s.get(pair, 0.0) * n for pair, n in terms.crossings.items())
        )

    def energy_j(self, terms: RunTerms) -> float:
        a = self.adjustment
        static = self.static_power_w if a.static_power_w is None else a.static_power_w
        return (
            sum(a.energy_scale.get(acc, 1.0) * e for acc, e in terms.compute_j.items())
            + sum(a.busy_power_w.get(acc, 0.0) * t for acc, t in self.compute_s(terms).items())
            + a.transfer_energy_scale * terms.transfer_j
            + static * self.latency_s(terms)
        )


Column = tuple[str, Callable[[RunTerms], float], float, tuple[float, float]]
"""One fitted parameter: name, its regressor per run, its 'unchanged' value, its bounds."""


def fit_runs(
    terms: Sequence[RunTerms],
    runs: Sequence[MeasuredRun],
    static_power_w: float,
    fixed_scale: frozenset[str] = frozenset(),
    networks: frozenset[str] | None = None,
) -> PlatformFit:
    """Least-squares parameters for `runs` (whose evaluator terms are `terms`); accelerators
    in `fixed_scale` keep latency and energy scale 1 (analytical ones without operating points:
    nothing in their platform entry can carry a scale). `networks`: the graphs whose table rows
    the fit applies to (default: the runs' networks)."""
    if not runs:
        raise MilpMapError("no runs left to fit (every run is held out); lower --holdout")
    networks = networks if networks is not None else frozenset(r.network for r in runs)
    accs = sorted({a for t in terms for a in t.compute_s} - fixed_scale)
    pairs = sorted({p for t in terms for p in t.crossings})
    lat_cols: list[Column] = [
        *((f"scale:{a}", lambda t, a=a: t.compute_s.get(a, 0.0), 1.0, SCALE_RANGE) for a in accs),
        ("transfer", lambda t: t.transfer_s, 1.0, SCALE_RANGE),
        *(
            (f"switch:{p}", lambda t, p=p: float(t.crossings.get(p, 0)), 0.0, (0.0, MAX_SWITCH_S))
            for p in pairs
        ),
    ]
    fixed_s = [sum(t.compute_s.get(a, 0.0) for a in fixed_scale) for t in terms]
    measured_s = np.array([r.latency_s for r in runs])
    theta = _bounded_fit(terms, lat_cols, measured_s - fixed_s, measured_s)
    values = dict(zip((c[0] for c in lat_cols), theta, strict=True))
    adjustment = PlatformAdjustment(
        networks=networks,
        latency_scale={a: values[f"scale:{a}"] for a in accs},
        transfer_latency_scale=values["transfer"],
        switch_s={p: values[f"switch:{p}"] for p in pairs},
    )
    latency_only = PlatformFit(adjustment, static_power_w)
    with_energy = [(t, r) for t, r in zip(terms, runs, strict=True) if r.energy_j is not None]
    if not with_energy:
        return latency_only
    e_terms = [t for t, _ in with_energy]
    e_cols: list[Column] = [
        *((f"energy:{a}", lambda t, a=a: t.compute_j.get(a, 0.0), 1.0, SCALE_RANGE) for a in accs),
        *(
            (f"busy:{a}", lambda t, a=a: latency_only.compute_s(t).get(a, 0.0), 0.0, POWER_RANGE)
            for a in accs
        ),
        ("transfer", lambda t: t.transfer_j, 1.0, SCALE_RANGE),
        ("static", latency_only.latency_s, static_power_w, POWER_RANGE),
    ]
    fixed_j = [sum(t.compute_j.get(a, 0.0) for a in fixed_scale) for t in e_terms]
    measured_j = np.array([r.energy_j for _, r in with_energy], dtype=float)
    theta = _bounded_fit(e_terms, e_cols, measured_j - fixed_j, measured_j)
    values = dict(zip((c[0] for c in e_cols), theta, strict=True))
    return PlatformFit(
        PlatformAdjustment(
            networks=networks,
            latency_scale=adjustment.latency_scale,
            energy_scale={a: values[f"energy:{a}"] for a in accs},
            busy_power_w={a: values[f"busy:{a}"] for a in accs},
            transfer_latency_scale=adjustment.transfer_latency_scale,
            transfer_energy_scale=values["transfer"],
            switch_s=adjustment.switch_s,
            static_power_w=values["static"],
        ),
        static_power_w,
    )


def _bounded_fit(
    terms: Sequence[RunTerms],
    columns: Sequence[Column],
    target: np.ndarray,
    measured: np.ndarray,
) -> np.ndarray:
    """argmin of the soft-L1 loss of (X theta - target) / measured plus a ridge pull to the
    defaults, within bounds (a linear model: the Jacobian is X / measured)."""
    x = np.array([[col[1](t) for col in columns] for t in terms], dtype=float)
    default = np.array([col[2] for col in columns])
    lower = np.array([col[3][0] for col in columns])
    upper = np.array([col[3][1] for col in columns])
    rows = x / measured[:, None]
    weight = np.sqrt(RIDGE * len(terms)) * np.maximum(np.abs(rows).mean(axis=0), 1e-9)

    def residuals(theta: np.ndarray) -> np.ndarray:
        return np.concatenate([rows @ theta - target / measured, weight * (theta - default)])

    jacobian = np.vstack([rows, np.diag(weight)])
    start = np.clip(default, lower, upper)
    solved = least_squares(
        residuals,
        start,
        jac=lambda _: jacobian,
        bounds=(lower, upper),
        loss=LOSS,
        f_scale=ROBUST_SCALE,
        method="trf",
    )
    return np.array([float(v) for v in solved.x])


def predictions(
    fit: PlatformFit, terms: Sequence[RunTerms], runs: Sequence[MeasuredRun], identity: PlatformFit
) -> list[Prediction]:
    """Each run's preset (`identity`) and fitted latency and energy."""
    return [
        Prediction(
            run=r,
            preset_latency_s=identity.latency_s(t),
            fitted_latency_s=fit.latency_s(t),
            preset_energy_j=identity.energy_j(t),
            fitted_energy_j=fit.energy_j(t) if fit.adjustment.energy_scale else None,
        )
        for t, r in zip(terms, runs, strict=True)
    ]


def unchanged(networks: frozenset[str], static_power_w: float) -> PlatformFit:
    """The fit that changes nothing: it predicts what the evaluator does."""
    return PlatformFit(PlatformAdjustment(networks=networks), static_power_w)


def _groups(runs: Sequence[MeasuredRun], mixed: bool) -> list[list[int]]:
    """Runs of one kind grouped by (network, mapping): repeats of one mapping stay together,
    so a held-out run never has its twin in the fit."""
    found: dict[tuple, list[int]] = {}
    for i, r in enumerate(runs):
        if (len(r.accelerators) > 1) == mixed:
            found.setdefault((r.network, tuple(sorted(r.mapping.items(), key=str))), []).append(i)
    return list(found.values())


def folds_of(runs: Sequence[MeasuredRun], folds: int, seed: int) -> np.ndarray:
    """Fold index per run, shuffled by `seed`; mixed and single-accelerator mappings dealt out
    separately so every fold sees both kinds, repeats of one mapping in one fold."""
    rng = np.random.default_rng(seed)
    index = np.zeros(len(runs), dtype=int)
    for kind in (True, False):
        groups = _groups(runs, kind)
        for rank, g in enumerate(rng.permutation(len(groups))):
            index[groups[g]] = rank % folds
    return index


def cross_validate(
    terms: Sequence[RunTerms],
    runs: Sequence[MeasuredRun],
    static_power_w: float,
    folds: int,
    seed: int = 0,
    fixed_scale: frozenset[str] = frozenset(),
) -> list[Prediction]:
    """Every run predicted by a fit on the other folds (so never by a fit that saw it, nor
    one that saw a repeat of its mapping)."""
    if folds < 2 or folds > len(runs):
        raise MilpMapError(f"cross-validation needs 2 to {len(runs)} folds, got {folds}")
    fold = folds_of(runs, folds, seed)
    identity = unchanged(frozenset(r.network for r in runs), static_power_w)
    out: list[Prediction | None] = [None] * len(runs)
    for k in range(folds):
        train = [i for i in range(len(runs)) if fold[i] != k]
        test = [i for i in range(len(runs)) if fold[i] == k]
        fit = fit_runs(
            [terms[i] for i in train], [runs[i] for i in train], static_power_w, fixed_scale
        )
        held = predictions(fit, [terms[i] for i in test], [runs[i] for i in test], identity)
        for i, p in zip(test, held, strict=True):
            out[i] = p
    return [p for p in out if p is not None]


def holdout_split(
    runs: Sequence[MeasuredRun], fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """(fit, held-out) run indices: `fraction` of the mixed and of the single-accelerator
    runs each (at least one of a kind with two or more runs) kept away from the fit."""
    if not 0.0 <= fraction < 1.0:
        raise MilpMapError(f"--holdout must be in [0, 1), got {fraction:g}")
    rng = np.random.default_rng(seed)
    train: list[int] = []
    test: list[int] = []
    for kind in (True, False):
        found = _groups(runs, kind)
        groups = [found[g] for g in rng.permutation(len(found))]
        n_test = 0 if fraction == 0 or len(groups) < 2 else max(1, round(fraction * len(groups)))
        test += [i for g in groups[:n_test] for i in g]
        train += [i for g in groups[n_test:] for i in g]
    return sorted(train), sorted(test)


@dataclass(frozen=True)
class MeasuredSet:
    """Measured runs with their evaluator terms on one platform."""

    runs: list[MeasuredRun]
    terms: list[RunTerms]
    static_power_w: float
    fixed_scale: frozenset[str]
    graphs: frozenset[str]
    """Graph names of the runs' networks: the table rows a fit applies to."""


def measured_set(platform: Platform, runs: Sequence[MeasuredRun], model: str | None) -> MeasuredSet:
    """Each run's terms on `platform`: the problem of its network (a zoo or shipped name, or
    `model` for every run) built once per network."""
    problems: dict[str, Problem] = {}
    terms = []
    for run in runs:
        if run.network not in problems:
            problems[run.network] = load_problem(
                model or run.network, platform, max_proxy_fraction=1.0
            )
        terms.append(run_terms(problems[run.network], run))
    fixed = frozenset(a.name for a in platform.accelerators if not _latency_scalable(a))
    graphs = frozenset(p.graph.name for p in problems.values())
    return MeasuredSet(list(runs), terms, platform.static_power_w, fixed, graphs)


def _latency_scalable(acc: Accelerator) -> bool:
    """Whether a written platform can carry a latency scale for `acc` (a table, operating
    points, or a model whose rates scale its latency exactly)."""
    scalable = tuple(ANALYTICAL_MODELS[m] for m in RATE_PARAMETERS)
    return acc.table is not None or bool(acc.operating_points) or isinstance(acc.model, scalable)


def fit_subset(data: MeasuredSet, indices: Sequence[int]) -> PlatformFit:
    return fit_runs(
        [data.terms[i] for i in indices],
        [data.runs[i] for i in indices],
        data.static_power_w,
        data.fixed_scale,
        data.graphs,
    )


def predict_subset(data: MeasuredSet, fit: PlatformFit, indices: Sequence[int]) -> list[Prediction]:
    identity = unchanged(fit.adjustment.networks, data.static_power_w)
    return predictions(
        fit, [data.terms[i] for i in indices], [data.runs[i] for i in indices], identity
    )


@dataclass(frozen=True)
class FitReport:
    """What `fit_platform` did: the fit, its runs, and the held-out check."""

    fit: PlatformFit
    fitted_on: list[Prediction]
    held_out: list[Prediction]
    platform_yaml: Path
    at_bounds: list[str]
    """Parameters the fit pushed to a limit of their range: the runs' units may be wrong
    (ms given as s), or the platform needs rebuilding rather than fitting."""


def fit_platform(
    platform: str | Path,
    runs_csv: str | Path,
    out_yaml: Path,
    *,
    name: str,
    network: str | None = None,
    model: str | None = None,
    holdout: float = 0.3,
    seed: int = 0,
) -> FitReport:
    """Fit `platform` to the runs of `runs_csv` (leaving `holdout` of them out), write the
    fitted platform as `out_yaml` and check that the evaluator on it predicts the fit's numbers."""
    source = resolve_platform_path(platform)
    loaded = load_platform(source)
    data = measured_set(loaded, read_runs(runs_csv, network), model)
    train, test = holdout_split(data.runs, holdout, seed)
    fit = fit_subset(data, train)
    note = (
        f"Fitted by milp_map.fit_platform to {len(train)} measured runs of "
        f"{', '.join(sorted(fit.adjustment.networks))} ({Path(runs_csv).name}); "
        f"{len(test)} runs held out."
    )
    written = write_adjusted_platform(source, fit.adjustment, out_yaml, name, note)
    try:
        _check_written(written, data, fit, model)
    except MilpMapError:
        remove_written(out_yaml, name)
        raise
    return FitReport(
        fit,
        predict_subset(data, fit, train),
        predict_subset(data, fit, test),
        written,
        at_bounds(fit.adjustment),
    )


def at_bounds(a: PlatformAdjustment) -> list[str]:
    """The parameters of `a` at a limit of their range, named as the CLI prints them."""

    def pinned(value: float, low: float, high: float) -> bool:
        return value <= low * (1 + 1e-6) or value >= high * (1 - 1e-6)

    lo, hi = SCALE_RANGE
    found = [f"{acc} latency x {v:.3g}" for acc, v in a.latency_scale.items() if pinned(v, lo, hi)]
    found += [f"{acc} energy x {v:.3g}" for acc, v in a.energy_scale.items() if pinned(v, lo, hi)]
    if pinned(a.transfer_latency_scale, lo, hi):
        found.append(f"transfers latency x {a.transfer_latency_scale:.3g}")
    found += [
        f"switch {p[0]} -> {p[1]} +{v * 1e3:.4g} ms"
        for p, v in a.switch_s.items()
        if v >= MAX_SWITCH_S * (1 - 1e-6)
    ]
    return found


def _check_written(path: Path, data: MeasuredSet, fit: PlatformFit, model: str | None) -> None:
    """The evaluator on the written platform must give the fit's latency and energy for every
    run: the platform a solver reads is the model that was validated."""
    try:
        written = load_platform(path)
    except MilpMapError as exc:
        raise MilpMapError(
            f"the fitted platform is not a valid platform ({exc}); the runs may not suit "
            "this platform"
        ) from None
    problems: dict[str, Problem] = {}
    for run, terms in zip(data.runs, data.terms, strict=True):
        if run.network not in problems:
            problems[run.network] = load_problem(
                model or run.network, written, max_proxy_fraction=1.0
            )
        problem = problems[run.network]
        metrics = evaluate_choice(problem, _choice(problem, run))
        for got, want, unit in (
            (metrics.latency_s, fit.latency_s(terms), "s"),
            (metrics.energy_j, fit.energy_j(terms), "J"),
        ):
            if abs(got - want) > 1e-6 * max(abs(want), 1e-12):
                raise MilpMapError(
                    f"{path}: the written platform predicts {got:.6g} {unit} for run "
                    f"'{run.run}', the fit {want:.6g} {unit}; please report this"
                )
