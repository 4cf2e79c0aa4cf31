"""The mapping check: a mapping written by anyone, validated layer by layer and costed.

A hand mapping, another tool's output or a `solve --out` file is checked layer by layer (mapped
once, runnable where it is put, channel splits that add up) and then costed by the evaluator;
`python -m milp_map.check` prints the result (milp_map/cli/check.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from milp_map.core.problem import Problem
from milp_map.core.solution import Part, UnitMapping
from milp_map.core.split import SplitProblem, build_split_problem
from milp_map.defaults import DEFAULT_GROUP_SIZE, QUANTITIES
from milp_map.errors import MilpMapError
from milp_map.evaluation.evaluator import Evaluation, evaluate, evaluate_split
from milp_map.io.mappings import load_mapping_file, recorded_file
from milp_map.io.problems import load_problem
from milp_map.io.schemas import schema_errors

BOUND_KEYS = ("max_latency_s", "max_energy_j", "max_proxy", "max_proxy_fraction")
"""The bounds a check holds a mapping to, as the result file's `constraints` names them."""


@dataclass(frozen=True)
class Checked:
    """A valid mapping, its evaluation, and the bounds it breaks."""

    problem: Problem
    target: Problem | SplitProblem
    mapping: UnitMapping
    evaluation: Evaluation
    broken: list[str]
    """One phrase per broken bound: flag, value and bound."""


def check_mapping(
    mapping: str | Path,
    *,
    model: str | None = None,
    platform: str | None = None,
    sensitivity: str | None = None,
    groups: str | None = None,
    bounds: dict[str, float | None] | None = None,
    group_size: int | None = None,
) -> Checked:
    """Load, validate and evaluate the mapping file; MilpMapError names the file and layer.

    `model` / `platform` default to the file's; `bounds` (BOUND_KEYS) to the file's
    `constraints` when none is given; `group_size` of splits to the file's, else the default.
    """
    where = str(mapping)
    header, entries = load_mapping_file(where)
    _check_schema(header or entries, where)
    group_size = _group_size(group_size, header, where)
    problem = _problem(header, where, model, platform, sensitivity, groups, bounds or {})
    parts = _parts_by_layer(problem, entries, where)
    split = any(len(p) > 1 for p in parts.values())
    if split:
        target: Problem | SplitProblem = build_split_problem(problem, group_size)
        mapping_ = _split_mapping(target, parts, where)
        evaluation = _evaluated(evaluate_split, target, mapping_, where)
    else:
        target = problem
        mapping_ = _layer_mapping(problem, parts)
        evaluation = _evaluated(evaluate, problem, mapping_, where)
    return Checked(problem, target, mapping_, evaluation, _broken(target, evaluation))


# ----------------------------------------------------------------------------- the file's layers


def _check_schema(data: Any, where: str) -> None:
    """The file against the shipped mapping schema, first: a misspelt key or a wrongly typed
    value is named by its JSON path before any model is loaded."""
    errors = schema_errors(data, "mapping", limit=1)
    if errors:
        raise MilpMapError(f"{where}: {errors[0]} (see data/schemas/mapping.schema.json)")


def _group_size(given: int | None, header: dict[str, Any], where: str) -> int:
    """The split granularity: `given`, else the file's `group_size`, else the default; each
    must be an integer >= 1 (0 fell through to the default, -8 passed unread)."""
    for name, value in (("--group-size", given), ("group_size", header.get("group_size"))):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise MilpMapError(f"{where}: {name} must be an integer >= 1, got {value!r}")
        return value
    return DEFAULT_GROUP_SIZE


def _problem(
    header: dict[str, Any],
    where: str,
    model: str | None,
    platform: str | None,
    sensitivity: str | None,
    groups: str | None,
    bounds: dict[str, float | None],
) -> Problem:
    """The Problem from the one factory, with the given bounds, else the file's; model and
    platform files the mapping names (and whose SHA-256 still matches) come first."""
    model = model or recorded_file(header, "model_file", where) or header.get("model")
    platform = platform or recorded_file(header, "platform_file", where) or header.get("platform")
    for flag, value in (("--model", model), ("--platform", platform)):
        if not isinstance(value, str):
            raise MilpMapError(f"{where}: give {flag}: the file names no {flag[2:]}")
    given = {key: bounds.get(key) for key in BOUND_KEYS}
    if all(v is None for v in given.values()):
        stored = header.get("constraints") or {}
        if not isinstance(stored, dict):
            raise MilpMapError(f"{where}: `constraints` must be an object")
        given = {key: stored.get(key) for key in BOUND_KEYS}
    for key, value in given.items():
        if value is not None and not isinstance(value, (int, float)):
            raise MilpMapError(f"{where}: constraints: {key} must be a number, got {value!r}")
    return load_problem(  # type: ignore[return-value]
        model,
        platform,
        objective="energy" if header.get("objective") == "energy" else "latency",
        sensitivity=sensitivity,
        groups=groups,
        **given,
    )


def _parts_by_layer(
    problem: Problem, entries: list[Any], where: str
) -> dict[str, tuple[Part, ...]]:
    """Validated parts of every layer (sorted by accelerator); errors name the layer."""
    names = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise MilpMapError(f"{where}: layers[{i}]: expected an object with a string `name`")
        names.append(entry["name"])
    known = [layer.name for layer in problem.graph.layers()]
    counts = Counter(names)
    problems = []
    for label, found in (
        ("missing", [n for n in known if n not in counts]),
        ("unknown", [n for n in counts if n not in problem.unit_of_layer]),
        ("duplicated", [n for n, c in counts.items() if c > 1]),
    ):
        if found:
            shown = ", ".join(f"'{n}'" for n in found[:5])
            more = f" and {len(found) - 5} more" if len(found) > 5 else ""
            problems.append(f"{label} layer(s) {shown}{more}")
    if problems:
        raise MilpMapError(
            f"{where}: every layer of {problem.graph.name} must be mapped exactly once: "
            + "; ".join(problems)
        )
    parts = {e["name"]: _entry_parts(problem, e, f"{where}: layer '{e['name']}'") for e in entries}
    for unit in problem.units:
        first = unit.layers[0]
        for name in unit.layers[1:]:
            if len(parts[name]) > 1 or _placement(parts[name]) != _placement(parts[first]):
                raise MilpMapError(
                    f"{where}: layer '{name}': unit '{unit.name}' maps its layers "
                    f"({', '.join(unit.layers)}) together, but '{first}' is on "
                    f"{_describe(parts[first])} and '{name}' on {_describe(parts[name])}"
                )
    return parts


def _entry_parts(problem: Problem, entry: dict[str, Any], where: str) -> tuple[Part, ...]:
    layer = problem.graph.layer(entry["name"])
    unit = problem.units[problem.unit_of_layer[layer.name]]
    split, named = entry.get("split"), entry.get("accelerator")
    if named is not None and not isinstance(named, str):
        raise MilpMapError(f"{where}: `accelerator` must be a name or null, got {named!r}")
    if split is None and named is not None:
        split = {named: layer.out_channels}
    if not isinstance(split, dict) or not split:
        raise MilpMapError(f"{where}: `split` must be an object {{accelerator: channels}}")
    for acc, n in split.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise MilpMapError(f"{where}: split: {acc} must get a channel count >= 0, got {n!r}")
    split = {acc: n for acc, n in split.items() if n > 0}
    if not split:
        raise MilpMapError(f"{where}: split gives no accelerator any channel")
    if named is not None and list(split) != [named]:
        raise MilpMapError(
            f"{where}: `accelerator` says {named} but `split` puts the channels on "
            f"{', '.join(sorted(split))}; make them agree (or set `accelerator` to null)"
        )
    points = _operating_points(entry.get("operating_point"), split, where)
    indices = _channel_indices(entry.get("channels"), split, layer.out_channels, where)
    for acc in split:
        if acc not in problem.platform.accelerator_names:
            raise MilpMapError(
                f"{where}: unknown accelerator '{acc}'; platform '{problem.platform.name}' has "
                f"{', '.join(problem.platform.accelerator_names)}"
            )
        runnable = {o.operating_point for o in unit.options if o.accelerator == acc}
        if not runnable:
            able = sorted({o.accelerator for o in unit.options})
            group = f" (in unit '{unit.name}')" if unit.layers != (layer.name,) else ""
            raise MilpMapError(
                f"{where}: op {layer.op}{group} cannot run on accelerator '{acc}'; "
                f"it can run on {', '.join(able)}"
            )
        if points[acc] not in runnable:
            names = sorted(p for p in runnable if p is not None)
            raise MilpMapError(
                f"{where}: accelerator '{acc}' has no operating point "
                f"{'(none given)' if points[acc] is None else repr(points[acc])}"
                f"{'; choose one of ' + ', '.join(names) if names else '; it has none'}"
            )
    total = sum(split.values())
    if total != layer.out_channels:
        terms = " + ".join(f"{acc} {n}" for acc, n in sorted(split.items()))
        raise MilpMapError(
            f"{where}: split gives {total} channels ({terms}), the layer has "
            f"{layer.out_channels} output channels"
        )
    return tuple(Part(acc, points[acc], n, indices.get(acc)) for acc, n in sorted(split.items()))


def _operating_points(raw: Any, split: dict[str, int], where: str) -> dict[str, str | None]:
    """`operating_point`: null, {accelerator: point | null}, or one point for a single part."""
    if raw is None:
        return dict.fromkeys(split)
    if isinstance(raw, str) and len(split) == 1:
        return {acc: raw for acc in split}
    if not isinstance(raw, dict) or not all(v is None or isinstance(v, str) for v in raw.values()):
        raise MilpMapError(
            f"{where}: `operating_point` must be null or {{accelerator: point name}}"
        )
    extra = sorted(set(raw) - set(split))
    if extra and any(raw[acc] is not None for acc in extra):
        raise MilpMapError(
            f"{where}: operating_point names {', '.join(extra)}, which the split does not use"
        )
    return {acc: raw.get(acc) for acc in split}


def _channel_indices(
    raw: Any, split: dict[str, int], n_channels: int, where: str
) -> dict[str, tuple[int, ...]]:
    """`channels`: {accelerator: [output channel indices]} that partition 0..C-1, or absent."""
    if raw is None:
        return {}
    bad = f"{where}: channels: "
    if not isinstance(raw, dict):
        raise MilpMapError(bad + "must be an object {accelerator: [channel indices]}")
    raw = {acc: v for acc, v in raw.items() if acc in split or v}
    if set(raw) != set(split):
        raise MilpMapError(
            bad + f"lists {', '.join(sorted(raw)) or 'nothing'} but the split uses "
            f"{', '.join(sorted(split))}"
        )
    seen: Counter[int] = Counter()
    for acc, values in raw.items():
        if not isinstance(values, list) or not all(
            isinstance(c, int) and not isinstance(c, bool) for c in values
        ):
            raise MilpMapError(bad + f"{acc} must be a list of integer channel indices")
        if len(values) != split[acc]:
            raise MilpMapError(
                bad + f"{acc} lists {len(values)} indices but its split is {split[acc]} channels"
            )
        seen.update(values)
    outside = sorted(c for c in seen if not 0 <= c < n_channels)
    twice = sorted(c for c, k in seen.items() if k > 1)
    missing = sorted(set(range(n_channels)) - set(seen))
    if outside or twice or missing:
        faults = [
            f"{label} {_few(found)}"
            for label, found in (
                ("out of range:", outside),
                ("listed more than once:", twice),
                ("missing:", missing),
            )
            if found
        ]
        raise MilpMapError(
            bad + f"indices must partition 0..{n_channels - 1}; " + "; ".join(faults)
        )
    return {acc: tuple(values) for acc, values in raw.items()}


# ----------------------------------------------------------------------------- unit mappings


def _layer_mapping(problem: Problem, parts: dict[str, tuple[Part, ...]]) -> UnitMapping:
    """Every unit on one accelerator: one whole part per unit."""
    mapping: UnitMapping = {}
    for unit in problem.units:
        (part,) = parts[unit.layers[0]]
        mapping[unit.name] = (Part(part.accelerator, part.operating_point),)
    return mapping


def _split_mapping(
    target: SplitProblem, parts: dict[str, tuple[Part, ...]], where: str
) -> UnitMapping:
    """Parts with channel counts (and indices); splits must fit the unit's channel groups."""
    mapping: UnitMapping = {}
    for split in target.units:
        unit = target.base.units[split.index]
        layer = target.base.graph.layer(unit.layers[0])
        given = parts[layer.name]
        at = f"{where}: layer '{layer.name}'"
        if len(given) > 1 and not split.splittable:
            raise MilpMapError(
                f"{at}: a {layer.op} layer (groups {layer.groups}) on these accelerators maps "
                f"whole; it cannot be split across {_describe(given)}"
            )
        if len(given) > 1:
            for part in given:
                assert part.channels is not None
                if part.channels % split.group_size:
                    raise MilpMapError(
                        f"{at}: {part.accelerator} gets {part.channels} channels, not a "
                        f"multiple of the group size {split.group_size}"
                    )
                if not any(o.channels == part.channels for o in split.parts[part.accelerator]):
                    raise MilpMapError(
                        f"{at}: {part.accelerator} only takes the whole layer "
                        f"({layer.out_channels} channels), not {part.channels}"
                    )
        if not split.splittable:
            mapping[unit.name] = (Part(given[0].accelerator, given[0].operating_point),)
            continue
        whole = tuple(range(split.channels))
        mapping[unit.name] = tuple(
            Part(
                p.accelerator,
                p.operating_point,
                p.channels,
                p.channel_indices or (whole if len(given) == 1 else None),
            )
            for p in given
        )
    return mapping


def _evaluated(
    fn: Callable[..., Evaluation], target: object, mapping: UnitMapping, where: str
) -> Evaluation:
    """The evaluator's answer; its errors get the file name in front."""
    try:
        return fn(target, mapping)
    except MilpMapError as exc:
        raise MilpMapError(f"{where}: {exc}") from None


def _broken(target: Problem | SplitProblem, evaluation: Evaluation) -> list[str]:
    """Bounds the metrics break beyond the tolerance, each with its flag, value and bound."""
    constraints = (target.base if isinstance(target, SplitProblem) else target).constraints
    proxy_flags = [
        f"{flag} {value:g}"
        for flag, value in (
            ("--max-proxy", constraints.max_proxy),
            ("--max-proxy-fraction", constraints.max_proxy_fraction),
        )
        if value is not None
    ]
    names = {
        "latency": "--max-latency",
        "energy": "--max-energy",
        "proxy": "proxy budget (" + ", ".join(proxy_flags) + ")",
    }
    broken = []
    for quantity in QUANTITIES:
        bound = target.bound(quantity)
        value = evaluation.metrics.value(quantity)
        if bound is not None and value > bound + target.tolerance(quantity):
            broken.append(f"{names[quantity]}: {quantity} {value:.6g} > bound {bound:.6g}")
    return broken


def _placement(parts: tuple[Part, ...]) -> tuple[tuple[str, str | None], ...]:
    return tuple((p.accelerator, p.operating_point) for p in parts)


def _describe(parts: tuple[Part, ...]) -> str:
    return " + ".join(
        p.accelerator + (f"@{p.operating_point}" if p.operating_point else "") for p in parts
    )


def _few(values: list[int]) -> str:
    return ", ".join(map(str, values[:5])) + (
        f" (+{len(values) - 5} more)" if len(values) > 5 else ""
    )
