"""Platform YAML -> the validated Platform of milp_map/core/platform.py.

The schema (pydantic), the preset lookup, measured cost and transition tables, layer groups;
every problem with a file is one line naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from milp_map.core.costmodels import ANALYTICAL_MODELS, AnalyticalModel
from milp_map.core.graph import OP_KINDS
from milp_map.core.names import check_name
from milp_map.core.platform import (
    ACTIVATION_BYTES,
    Accelerator,
    CostTable,
    OperatingPoint,
    Platform,
    Transition,
)
from milp_map.errors import MilpMapError
from milp_map.io.tables import (
    cell_number,
    describe_validation_error,
    read_csv_checked,
    read_yaml_mapping,
)
from milp_map.resources import data_path, preset_names

# ----------------------------------------------------------------------------- YAML schema

# Plausibility: a value past these is a unit slip (W for mW, Hz for kHz) or hostile input, and
# would make "optimal" numbers meaningless (1e300 W gives latencies of 1e-298 s).
MAX_POWER_W = 1e4
"""Most power of one accelerator or of the board (a data-centre GPU draws under 1 kW)."""
MAX_FREQ_SCALE = 1e3
"""Largest operating-point speed-up over an accelerator's nominal cost."""
MAX_MEASURED_S = 3600.0
"""Longest one layer (or layer group) or one transfer may take: an hour, in a table or YAML."""
MAX_MEASURED_J = 1e6
"""Most energy one layer or one transfer may take: a megajoule (10 kW for 100 s)."""
MAX_BYTES_PER_S = 1e15
"""Fastest link or memory (1 PB/s, beyond any HBM)."""
MODEL_PARAMETER_RANGES: dict[str, tuple[float, float, str]] = {
    "freq_hz": (1e3, 1e11, "1 kHz to 100 GHz"),
    "macs_per_s": (1e3, 1e18, "1e3 to 1e18 MAC/s"),
    "bytes_per_s": (1e3, MAX_BYTES_PER_S, "1 kB/s to 1 PB/s"),
    "overhead_s": (0.0, 10.0, "0 to 10 s"),
    "bytes_per_element": (0.01, 64.0, "0.01 to 64 bytes"),
}
"""Plausible range of each analytical cost-model parameter, with how to say it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class OperatingPointSpec(_Strict):
    name: str
    freq_scale: float = Field(gt=0, le=MAX_FREQ_SCALE)
    dynamic_power_w: float = Field(ge=0, le=MAX_POWER_W)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        return check_name(name, "operating point name")


class CostSpec(BaseModel):
    """`{table: file.csv}` or `{model: NAME, <parameters>}`."""

    model_config = ConfigDict(extra="allow", frozen=True)
    table: str | None = None
    model: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> CostSpec:
        if (self.table is None) == (self.model is None):
            raise ValueError("give exactly one of 'table: file.csv' or 'model: NAME'")
        if self.model is not None and self.model not in ANALYTICAL_MODELS:
            raise ValueError(
                f"unknown cost model '{self.model}'; choose one of {', '.join(ANALYTICAL_MODELS)}"
            )
        if self.table is not None and self.model_extra:
            raise ValueError(f"a table cost takes no parameters, got {sorted(self.model_extra)}")
        return self


class AcceleratorSpec(_Strict):
    name: str = Field(min_length=1)
    precision: str = Field(min_length=1)
    ops: list[str] | None = None
    cost: CostSpec
    dynamic_power_w: float = Field(default=0.0, ge=0, le=MAX_POWER_W)
    operating_points: list[OperatingPointSpec] | None = None

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        return check_name(name, "accelerator name")

    @field_validator("ops")
    @classmethod
    def _known_ops(cls, ops: list[str] | None) -> list[str] | None:
        unknown = sorted(set(ops or ()) - set(OP_KINDS))
        if unknown:
            raise ValueError(f"unknown op kinds {unknown}; known: {', '.join(OP_KINDS)}")
        return ops

    @field_validator("operating_points")
    @classmethod
    def _unique_points(
        cls, points: list[OperatingPointSpec] | None
    ) -> list[OperatingPointSpec] | None:
        """A mapping names its operating point: two of one name would cost differently in
        `check` (the first) than in `solve` (either)."""
        names = [p.name for p in points or ()]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"operating point names must be unique, repeated: {repeated}")
        return points

    @model_validator(mode="after")
    def _table_sets_its_own_power(self) -> AcceleratorSpec:
        ignored = {"dynamic_power_w", "operating_points"} & self.model_fields_set
        if self.cost.table is not None and ignored:
            raise ValueError(
                f"accelerator '{self.name}' has a measured table, which gives energy and "
                f"operating points per row; remove {', '.join(sorted(ignored))}"
            )
        return self


class TransitionSpec(_Strict):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )
    src: str = Field(alias="from")
    dst: str = Field(alias="to")
    latency_s: float = Field(default=0.0, ge=0, le=MAX_MEASURED_S)
    energy_j: float = Field(default=0.0, ge=0, le=MAX_MEASURED_J)
    bytes_per_s: float | None = Field(default=None, gt=0, le=MAX_BYTES_PER_S)


class PlatformSpec(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    static_power_w: float = Field(default=0.0, ge=0, le=MAX_POWER_W)
    accelerators: list[AcceleratorSpec] = Field(min_length=1)
    transitions: list[TransitionSpec] = []
    transition_table: str | None = None
    groups: str | dict[str, list[str]] | None = None
    activation_bytes: dict[str, float] = {}

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        return check_name(name, "platform name")

    @field_validator("groups", mode="before")
    @classmethod
    def _groups_shape(cls, groups: Any) -> Any:
        valid = isinstance(groups, str) or (
            isinstance(groups, dict)
            and all(
                isinstance(layers, list) and all(isinstance(x, str) for x in layers)
                for layers in groups.values()
            )
        )
        if groups is not None and not valid:
            raise ValueError(
                "give a CSV file of group,layer rows or a mapping {group: [layer, ...]}"
            )
        return groups

    @field_validator("activation_bytes")
    @classmethod
    def _positive_bytes(cls, sizes: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in sizes.items() if not (math.isfinite(v) and v > 0)}
        if bad:
            raise ValueError(f"bytes per element must be finite and > 0, got {bad}")
        return sizes

    @model_validator(mode="after")
    def _consistent(self) -> PlatformSpec:
        names = [a.name for a in self.accelerators]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"accelerator names must be unique, repeated: {duplicates}")
        seen: set[tuple[str, str]] = set()
        for i, t in enumerate(self.transitions):
            for end in (t.src, t.dst):
                if end not in names:
                    raise ValueError(
                        f"transitions[{i}] names unknown accelerator '{end}'; known: {names}"
                    )
            if t.src == t.dst:
                raise ValueError(
                    f"transitions[{i}] goes from '{t.src}' to itself; a transition joins "
                    "two different accelerators"
                )
            if (t.src, t.dst) in seen:
                raise ValueError(f"transitions[{i}] repeats {t.src} -> {t.dst}")
            seen.add((t.src, t.dst))
        return self


# ----------------------------------------------------------------------------- loading


def resolve_platform_path(name_or_path: str | Path) -> Path:
    """A preset name or a YAML path -> the YAML file; clear error when neither exists."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise MilpMapError(f"{path}: platform file not found")
        return path
    preset = data_path("platforms", f"{name_or_path}.yaml")
    if not preset.is_file():
        raise MilpMapError(
            f"unknown platform '{name_or_path}': neither a YAML file nor a preset; "
            f"presets: {', '.join(preset_names())}"
        )
    return preset


def load_platform(name_or_path: str | Path) -> Platform:
    """Load and validate a platform preset (by name) or YAML file; errors name file and field."""
    path = resolve_platform_path(name_or_path)
    raw = read_platform_yaml(path)
    _check_one_line(path, {k: v for k, v in raw.items() if k != "description"}, "")
    try:
        spec = PlatformSpec.model_validate(raw)
    except ValidationError as exc:
        raise MilpMapError(f"{path}: {describe_validation_error(exc)}") from None
    return platform_from_spec(spec, path)


def read_platform_yaml(path: Path) -> dict[str, Any]:
    """The raw mapping of a platform YAML file (before validation)."""
    return read_yaml_mapping(path, "platform YAML", "'name' and 'accelerators'")


def platform_from_spec(spec: PlatformSpec, path: Path | None = None) -> Platform:
    """Build runtime objects (cost models, tables, transitions) from a validated spec."""
    base = path.parent if path else Path.cwd()
    where = str(path) if path else "<platform>"
    tables: dict[Path, CostTable] = {}
    accelerators = []
    for i, acc in enumerate(spec.accelerators):
        model = table = None
        if acc.cost.model is not None:
            model = _analytical_model(acc, f"{where}: field 'accelerators[{i}].cost'")
        else:
            table_path = _side_file(base, acc.cost.table, where, f"accelerators[{i}].cost.table")
            if table_path not in tables:
                tables[table_path] = _load_cost_table(table_path, spec)
            table = tables[table_path]
            if not any(k[2] == acc.name for k in table.rows):
                raise MilpMapError(
                    f"{table_path}: no rows for accelerator '{acc.name}' named in {where}"
                )
        points = tuple(
            OperatingPoint(p.name, p.freq_scale, p.dynamic_power_w)
            for p in acc.operating_points or ()
        )
        accelerators.append(
            Accelerator(
                name=acc.name,
                precision=acc.precision,
                ops=frozenset(acc.ops) if acc.ops is not None else None,
                dynamic_power_w=acc.dynamic_power_w,
                operating_points=points,
                model=model,
                table=table,
            )
        )
    transitions = {
        (t.src, t.dst): Transition(t.latency_s, t.energy_j, t.bytes_per_s) for t in spec.transitions
    }
    transition_table = {}
    if spec.transition_table:
        table_file = _side_file(base, spec.transition_table, where, "transition_table")
        transition_table = _load_transition_table(table_file, spec)
    groups: dict[str, dict[str, str]] = {}
    if isinstance(spec.groups, str):
        groups = _load_groups_table(_side_file(base, spec.groups, where, "groups"))
    elif isinstance(spec.groups, dict):
        groups = {"*": _invert_groups(spec.groups, where)}
    return Platform(
        name=spec.name,
        description=spec.description.strip(),
        static_power_w=spec.static_power_w,
        accelerators=tuple(accelerators),
        transitions=transitions,
        transition_table=transition_table,
        groups=groups,
        activation_bytes={**ACTIVATION_BYTES, **spec.activation_bytes},
        source=where,
    )


def _side_file(base: Path, name: str, where: str, field_name: str) -> Path:
    """A CSV the YAML names, relative to the YAML's folder; a missing one names both files."""
    path = (base / name).resolve()
    if not path.is_file():
        raise MilpMapError(f"{where}: field '{field_name}': file not found: {path}")
    return path


def _analytical_model(acc: AcceleratorSpec, where: str) -> AnalyticalModel:
    """The accelerator's cost model; its parameters must be known, given and finite numbers."""
    cls = ANALYTICAL_MODELS[acc.cost.model]  # type: ignore[index]
    params = dict(acc.cost.model_extra or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{where}: cost model '{acc.cost.model}' of accelerator '{acc.name}'"
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise MilpMapError(
            f"{prefix}: unknown parameter(s) {unknown}; it takes {', '.join(fields)}"
        )
    required = [n for n, f in fields.items() if f.default is dataclasses.MISSING]
    missing = [n for n in required if n not in params]
    if missing:
        raise MilpMapError(f"{prefix}: missing parameter(s) {', '.join(missing)}")
    for key, value in params.items():
        zero_ok = fields[key].default == 0
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
            hint = " (YAML reads 260e6 as text; write 260.0e+6)" if isinstance(value, str) else ""
            raise MilpMapError(
                f"{prefix}: parameter '{key}' must be a finite number "
                f"{'>= 0' if zero_ok else '> 0'}, got {value!r}{hint}"
            )
        low, high, span = MODEL_PARAMETER_RANGES.get(key, (0.0, math.inf, ""))
        if not low <= value <= high:
            raise MilpMapError(
                f"{prefix}: parameter '{key}' = {value:g} is implausible (expected {span}); "
                "check its unit"
            )
    return cls(**params)


def load_groups_file(path: str | Path) -> dict[str, dict[str, str]]:
    """A side file of layer groups (`[network,]group,layer`), as `--groups` takes it."""
    return _load_groups_table(Path(path))


# ----------------------------------------------------------------------------- CSV helpers


def _number(path: Path, row: int, column: str, text: str) -> float:
    """A finite, non-negative, plausible float from a cost cell (`latency_s` or `energy_j`),
    or an error naming file, row and column."""
    value = cell_number(path, row, column, text)
    if not math.isfinite(value) or value < 0:
        raise MilpMapError(
            f"{path}: row {row}: column '{column}' must be finite and >= 0, got {text}"
        )
    limit, unit = (MAX_MEASURED_S, "s") if column == "latency_s" else (MAX_MEASURED_J, "J")
    if value > limit:
        raise MilpMapError(
            f"{path}: row {row}: column '{column}' = {value:g} is implausible (at most "
            f"{limit:g} {unit} for one layer or transfer); check its unit"
        )
    return value


def _load_cost_table(path: Path, spec: PlatformSpec) -> CostTable:
    frame = read_csv_checked(path, ["layer", "accelerator", "latency_s", "energy_j"], "cost table")
    known = {a.name for a in spec.accelerators}
    rows: dict[tuple[str, str, str, str], tuple[float, float]] = {}
    for i, rec in enumerate(frame.to_dict("records"), start=2):
        acc = rec["accelerator"]
        if acc not in known:
            raise MilpMapError(
                f"{path}: row {i}: unknown accelerator '{acc}'; the platform has {sorted(known)}"
            )
        key = (rec.get("network", "") or "*", rec["layer"], acc, rec.get("operating_point", ""))
        if key[3]:
            try:
                check_name(key[3], "operating point")
            except ValueError as exc:
                raise MilpMapError(f"{path}: row {i}: {exc}") from None
        if key in rows:
            raise MilpMapError(
                f"{path}: row {i}: duplicate row for {key[1]} on {acc} {key[3]}".rstrip()
            )
        rows[key] = (
            _number(path, i, "latency_s", rec["latency_s"]),
            _number(path, i, "energy_j", rec["energy_j"]),
        )
    return CostTable(path=path, rows=rows, networks=frozenset(k[0] for k in rows))


def _load_transition_table(path: Path, spec: PlatformSpec) -> dict:
    frame = read_csv_checked(
        path, ["layer", "from", "to", "latency_s", "energy_j"], "transition table"
    )
    known = {a.name for a in spec.accelerators}
    rows: dict[tuple[str, str, str, str], tuple[float, float]] = {}
    for i, rec in enumerate(frame.to_dict("records"), start=2):
        for end in (rec["from"], rec["to"]):
            if end not in known:
                raise MilpMapError(f"{path}: row {i}: unknown accelerator '{end}'")
        if rec["from"] == rec["to"]:
            raise MilpMapError(
                f"{path}: row {i}: goes from '{rec['from']}' to itself; a transition joins two "
                "different accelerators"
            )
        key = (rec.get("network", "") or "*", rec["layer"], rec["from"], rec["to"])
        if key in rows:
            raise MilpMapError(f"{path}: row {i}: duplicate transition row {key}")
        rows[key] = (
            _number(path, i, "latency_s", rec["latency_s"]),
            _number(path, i, "energy_j", rec["energy_j"]),
        )
    return rows


def _load_groups_table(path: Path) -> dict[str, dict[str, str]]:
    frame = read_csv_checked(path, ["group", "layer"], "groups")
    groups: dict[str, dict[str, str]] = {}
    for i, rec in enumerate(frame.to_dict("records"), start=2):
        network = rec.get("network", "") or "*"
        members = groups.setdefault(network, {})
        if rec["layer"] in members:
            raise MilpMapError(
                f"{path}: row {i}: layer '{rec['layer']}' is already in group "
                f"'{members[rec['layer']]}'; a layer belongs to one group"
            )
        members[rec["layer"]] = rec["group"]
    return groups


def _invert_groups(groups: dict[str, list[str]], where: str) -> dict[str, str]:
    inverted: dict[str, str] = {}
    for group, layers in groups.items():
        for layer in layers:
            if layer in inverted:
                raise MilpMapError(
                    f"{where}: groups: layer '{layer}' is in both '{inverted[layer]}' and '{group}'"
                )
            inverted[layer] = group
    return inverted


def _check_one_line(path: Path, node: Any, where: str, seen: set[int] | None = None) -> None:
    """Reject keys and text values spanning lines (all but the description): they name things.

    YAML aliases can make a list contain itself; such a cycle is an error too.
    """
    seen = set() if seen is None else seen
    if id(node) in seen:
        raise MilpMapError(f"{path}: field '{where}' contains itself (a recursive YAML alias)")
    seen.add(id(node))
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        at = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}".lstrip(".")
        for text in (key, value):
            if isinstance(text, str) and text and text.splitlines() != [text]:
                raise MilpMapError(
                    f"{path}: field '{at}': {text!r} contains a line break; write it on one line"
                )
        if isinstance(value, (dict, list)):
            _check_one_line(path, value, at, seen)
    seen.discard(id(node))
