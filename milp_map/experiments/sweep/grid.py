"""Sweep grids: YAML -> validated axes -> one `Cell` per solve, keyed by a stable hash.

A grid names models, platforms (presets or files, plus variants with parameter overrides),
granularities, objectives, budgets and methods; their product is the list of cells. A cell's
key hashes its input parameters as written in the grid, so a rerun recognises finished cells
whatever machine or folder it runs from.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from milp_map.defaults import DEFAULT_PROXY_FRACTION, METHOD_NAMES
from milp_map.errors import MilpMapError
from milp_map.io.platforms import (
    PlatformSpec,
    load_platform,
    platform_from_spec,
    read_platform_yaml,
    resolve_platform_path,
)
from milp_map.io.tables import describe_validation_error, read_yaml_mapping
from milp_map.solvers.base import MAX_SEED

EXACT_METHODS = ("exact",)

# ----------------------------------------------------------------------------- YAML schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ModelEntry(_Strict):
    """A zoo name or an .onnx path (relative to the grid file), optionally with its scores."""

    model: str = Field(min_length=1)
    sensitivity: str | None = None


class PlatformEntry(_Strict):
    """A preset or YAML file, or a named variant of one with parameters set or scaled.

    Override paths are dotted: a list element is chosen by its `name`, its index or `*` (all),
    e.g. `accelerators.analog.dynamic_power_w` or `accelerators.*.cost.macs_per_s`.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True
    )
    base: str = Field(min_length=1)
    name: str | None = Field(default=None, min_length=1)
    assign: dict[str, Any] = Field(default={}, alias="set")
    scale: dict[str, float] = {}

    @field_validator("scale")
    @classmethod
    def _positive_factors(cls, scale: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in scale.items() if not v > 0}
        if bad:
            raise ValueError(f"scale factors must be > 0, got {bad}")
        return scale

    @model_validator(mode="after")
    def _variants_are_named(self) -> PlatformEntry:
        if (self.assign or self.scale) and self.name is None:
            raise ValueError("a platform with 'set' or 'scale' needs a 'name' (its table label)")
        return self

    @property
    def label(self) -> str:
        return self.name or self.base

    @property
    def overrides(self) -> dict[str, Any]:
        return {k: v for k, v in (("set", self.assign), ("scale", self.scale)) if v}


class BudgetEntry(_Strict):
    """Bounds of one budget; with no proxy bound the proxy fraction defaults to 0.5."""

    max_proxy_fraction: float | None = Field(default=None, ge=0, le=1)
    max_proxy: float | None = Field(default=None, ge=0)
    max_latency_s: float | None = Field(default=None, gt=0)
    max_energy_j: float | None = Field(default=None, gt=0)


Solver = Literal["auto", "cpsat", "highs", "cbc", "dp", "portfolio"]


Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
"""A random seed as the solvers take it (see solvers.base.MAX_SEED)."""


class Settings(_Strict):
    """Solver settings for every method, unless a method entry overrides them."""

    solver: Solver = "auto"
    time_limit_s: float | None = Field(default=None, gt=0)
    gap: float | None = Field(default=None, ge=0)
    seeds: list[Seed] = Field(default=[0], min_length=1)


class MethodEntry(_Strict):
    name: str = Field(min_length=1)
    solver: Solver | None = None
    time_limit_s: float | None = Field(default=None, gt=0)
    gap: float | None = Field(default=None, ge=0)
    seeds: list[Seed] | None = Field(default=None, min_length=1)


class GridSpec(_Strict):
    models: list[ModelEntry] = Field(min_length=1)
    platforms: list[PlatformEntry] = Field(min_length=1)
    granularities: list[Literal["layer", "channel"]] = Field(default=["layer"], min_length=1)
    group_sizes: list[int] = Field(default=[8], min_length=1)
    objectives: list[Literal["latency", "energy"]] = Field(default=["latency"], min_length=1)
    budgets: list[BudgetEntry] = Field(default=[BudgetEntry()], min_length=1)
    methods: list[MethodEntry] = Field(default=[MethodEntry(name="exact")], min_length=1)
    settings: Settings = Settings()

    @field_validator("models", mode="before")
    @classmethod
    def _model_names(cls, items: Any) -> Any:
        return _wrap_strings(items, "model")

    @field_validator("platforms", mode="before")
    @classmethod
    def _platform_names(cls, items: Any) -> Any:
        return _wrap_strings(items, "base")

    @field_validator("methods", mode="before")
    @classmethod
    def _method_names(cls, items: Any) -> Any:
        return _wrap_strings(items, "name")

    @field_validator("budgets", mode="before")
    @classmethod
    def _fraction_shorthand(cls, items: Any) -> Any:
        if not isinstance(items, list):
            return items
        return [
            {"max_proxy_fraction": x}
            if isinstance(x, (int, float)) and not isinstance(x, bool)
            else x
            for x in items
        ]

    @field_validator("group_sizes")
    @classmethod
    def _positive_sizes(cls, sizes: list[int]) -> list[int]:
        if any(g < 1 for g in sizes):
            raise ValueError(f"group sizes must be >= 1, got {sizes}")
        return sizes

    @field_validator("platforms")
    @classmethod
    def _unique_labels(cls, platforms: list[PlatformEntry]) -> list[PlatformEntry]:
        seen: dict[str, int] = {}
        for i, entry in enumerate(platforms):
            if entry.label in seen:
                raise ValueError(
                    f"platforms[{seen[entry.label]}] and platforms[{i}] are both labelled "
                    f"'{entry.label}'; give variants distinct names"
                )
            seen[entry.label] = i
        return platforms


def _wrap_strings(items: Any, key: str) -> Any:
    """`[a, {...}]` -> `[{key: a}, {...}]`: the short form of a list entry."""
    if not isinstance(items, list):
        return items
    return [{key: x} if isinstance(x, str) else x for x in items]


# ----------------------------------------------------------------------------- cells


@dataclass(frozen=True)
class Cell:
    """One solve: its input parameters (table columns, as written in the grid) and what a
    worker needs to run it (resolved paths, the platform spec after overrides)."""

    key: str
    params: dict[str, Any]
    model_path: str
    sensitivity_path: str | None
    platform_spec: dict[str, Any] = field(repr=False)
    platform_file: str = ""
    """The YAML the spec came from: its folder resolves the spec's side files (cost tables)."""


@dataclass(frozen=True)
class Grid:
    path: Path
    spec: GridSpec
    platforms: dict[str, tuple[dict[str, Any], str]]
    """label -> (platform spec after overrides, source YAML path)."""


def cell_key(params: dict[str, Any]) -> str:
    """A stable 16-hex-digit hash of a cell's input parameters (canonical JSON)."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_grid(path: str | Path) -> Grid:
    """Read and validate a grid file; every error is one line naming the file and field."""
    path = Path(path)
    if not path.is_file():
        raise MilpMapError(f"{path}: grid file not found")
    raw = read_yaml_mapping(path, "a grid YAML", "'models' and 'platforms'")
    try:
        spec = GridSpec.model_validate(raw)
    except ValidationError as exc:
        raise MilpMapError(f"{path}: {describe_validation_error(exc)}") from None
    _check_methods(path, spec)
    platforms = {
        entry.label: _platform_spec(path, i, entry) for i, entry in enumerate(spec.platforms)
    }
    return Grid(path=path, spec=spec, platforms=platforms)


def expand_grid(grid: Grid) -> list[Cell]:
    """The product of the grid's axes, in grid order, without duplicate cells."""
    spec, base = grid.spec, grid.path.parent
    cells: dict[str, Cell] = {}
    for model in spec.models:
        model_path = str(_near(base, model.model)) if _is_path(model.model) else model.model
        scores = str(_near(base, model.sensitivity)) if model.sensitivity else None
        for platform in spec.platforms:
            platform_spec, platform_file = grid.platforms[platform.label]
            for granularity in spec.granularities:
                sizes = spec.group_sizes if granularity == "channel" else [None]
                for group_size in sizes:
                    for objective in spec.objectives:
                        for budget in spec.budgets:
                            for method in spec.methods:
                                for seed in method.seeds or spec.settings.seeds:
                                    params = {
                                        "model": model.model,
                                        "sensitivity": model.sensitivity,
                                        "platform": platform.label,
                                        "platform_base": platform.base,
                                        "platform_overrides": _canonical(platform.overrides),
                                        "granularity": granularity,
                                        "group_size": group_size,
                                        "objective": objective,
                                        **_budget_params(budget),
                                        **_method_params(method, spec.settings, seed),
                                    }
                                    key = cell_key(params)
                                    cells.setdefault(
                                        key,
                                        Cell(
                                            key,
                                            params,
                                            model_path,
                                            scores,
                                            platform_spec,
                                            platform_file,
                                        ),
                                    )
    return list(cells.values())


def _budget_params(budget: BudgetEntry) -> dict[str, Any]:
    fraction = budget.max_proxy_fraction
    if fraction is None and budget.max_proxy is None:
        fraction = DEFAULT_PROXY_FRACTION
    return {
        "max_proxy_fraction": fraction,
        "max_proxy": budget.max_proxy,
        "max_latency_s": budget.max_latency_s,
        "max_energy_j": budget.max_energy_j,
    }


def _method_params(method: MethodEntry, settings: Settings, seed: int) -> dict[str, Any]:
    exact = method.name in EXACT_METHODS
    return {
        "method": method.name,
        "solver": (method.solver or settings.solver) if exact else None,
        "time_limit_s": method.time_limit_s or settings.time_limit_s,
        "gap_limit": method.gap if method.gap is not None else settings.gap,
        "seed": seed,
    }


def _canonical(overrides: dict[str, Any]) -> str | None:
    return json.dumps(overrides, sort_keys=True, separators=(",", ":")) if overrides else None


def _is_path(model: str) -> bool:
    """An .onnx file (resolved near the grid file), not a zoo or shipped model name."""
    return model.endswith(".onnx") or "/" in model or "\\" in model


def _near(base: Path, name: str) -> Path:
    """A path as written in the grid, relative to the grid file's folder."""
    path = Path(name).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


# ----------------------------------------------------------------------------- methods


def compare_methods() -> tuple[str, ...]:
    """The comparator's baselines (every method but `exact`)."""
    return tuple(n for n in METHOD_NAMES if n not in EXACT_METHODS)


def known_methods() -> tuple[str, ...]:
    """`exact`, then the comparator's baselines."""
    return (*EXACT_METHODS, *compare_methods())


def _check_methods(path: Path, spec: GridSpec) -> None:
    names = [m.name for m in spec.methods]
    if all(n in EXACT_METHODS for n in names):
        return
    known = known_methods()
    for i, name in enumerate(names):
        if name not in known:
            raise MilpMapError(
                f"{path}: field 'methods[{i}].name': unknown method '{name}'; known: "
                f"{', '.join(known)}"
            )


# ----------------------------------------------------------------------------- platforms


def _platform_spec(path: Path, index: int, entry: PlatformEntry) -> tuple[dict[str, Any], str]:
    """The platform's YAML mapping with the entry's overrides applied, validated here (once,
    before any solve) so a typo in an override path stops the sweep with one line."""
    where = f"{path}: field 'platforms[{index}]"
    base = entry.base
    local = _near(path.parent, base)
    if base.endswith((".yaml", ".yml")) or local.is_file():
        base = str(local)
    try:
        source = resolve_platform_path(base)
        if not entry.overrides:
            load_platform(source)  # the full checks of `--platform`
        raw = read_platform_yaml(source)
    except MilpMapError as exc:
        raise MilpMapError(f"{where}.base': {exc}") from None
    raw = copy.deepcopy(raw)
    for dotted, value in entry.assign.items():
        _apply(raw, dotted, lambda _old, v=value: copy.deepcopy(v), f"{where}.set.{dotted}'")
    for dotted, factor in entry.scale.items():
        _apply(raw, dotted, lambda old, f=factor: _scaled(old, f), f"{where}.scale.{dotted}'")
    if entry.overrides:
        raw["name"] = entry.label
        try:
            platform_from_spec(PlatformSpec.model_validate(raw), source)
        except ValidationError as exc:
            raise MilpMapError(
                f"{where}': the platform after overrides: {describe_validation_error(exc)}"
            ) from None
        except MilpMapError as exc:
            raise MilpMapError(f"{where}': the platform after overrides: {exc}") from None
    return raw, str(source)


def _scaled(old: Any, factor: float) -> float:
    if isinstance(old, bool) or not isinstance(old, (int, float)):
        raise ValueError(f"scales a number, but the value is {old!r}")
    return old * factor


def _apply(node: Any, dotted: str, update: Any, where: str) -> None:
    """Replace every value the dotted path selects by `update(old value)`."""
    *parents, last = dotted.split(".")
    targets = [node]
    for segment in parents:
        targets = [child for t in targets for child in _select(t, segment, where)]
    changed = 0
    for target in targets:
        if isinstance(target, list):
            selected = [i for i, _ in _indexed(target, last, where)]
        elif isinstance(target, dict):
            if last == "*":
                selected = list(target)
            else:
                selected = [last]  # a new key is allowed: the spec check rejects unknown ones
        else:
            raise MilpMapError(f"{where}: '{last}' is inside {target!r}, not a mapping or list")
        for k in selected:
            try:
                target[k] = update(target.get(k) if isinstance(target, dict) else target[k])
            except ValueError as exc:
                raise MilpMapError(f"{where}: {exc}") from None
            changed += 1
    if not changed:
        raise MilpMapError(f"{where}: the path selects nothing")


def _select(node: Any, segment: str, where: str) -> list[Any]:
    if isinstance(node, dict):
        if segment == "*":
            return list(node.values())
        if segment not in node:
            raise MilpMapError(f"{where}: no field '{segment}'; there: {', '.join(map(str, node))}")
        return [node[segment]]
    if isinstance(node, list):
        return [item for _, item in _indexed(node, segment, where)]
    raise MilpMapError(f"{where}: '{segment}' is inside {node!r}, not a mapping or list")


def _indexed(items: list[Any], segment: str, where: str) -> list[tuple[int, Any]]:
    """List elements by `*`, index or `name` field."""
    if segment == "*":
        return list(enumerate(items))
    if segment.isdigit() and int(segment) < len(items):
        return [(int(segment), items[int(segment)])]
    found = [
        (i, x) for i, x in enumerate(items) if isinstance(x, dict) and x.get("name") == segment
    ]
    if not found:
        names = [str(x.get("name")) for x in items if isinstance(x, dict) and "name" in x]
        raise MilpMapError(
            f"{where}: no element named '{segment}'; names: {', '.join(names) or 'none'} "
            f"(or an index below {len(items)}, or *)"
        )
    return found


__all__ = ["Cell", "Grid", "cell_key", "expand_grid", "load_grid"]
