"""JSON Schemas of the files milp_map writes and reads (data/schemas/*.schema.json): a mapping,
a result, a concurrent schedule, a Pareto front, a sweep cell, check's verdict and evaluate's
measured accuracy. Shipped with the package so another tool (or a
user writing a mapping by hand) can validate against them; `check` reports a mapping file's
first schema error before anything else.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from milp_map.resources import data_path

KINDS = ("mapping", "result", "schedule", "front", "cell", "verdict", "measurement")


@cache
def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of `kind` (one of KINDS)."""
    if kind not in KINDS:
        raise ValueError(f"unknown schema '{kind}'; known: {', '.join(KINDS)}")
    return json.loads(data_path("schemas", f"{kind}.schema.json").read_text())


@cache
def _validator(kind: str) -> Any:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    registry = Registry().with_resources(
        (schema(k)["$id"], Resource.from_contents(schema(k))) for k in KINDS
    )
    return Draft202012Validator(schema(kind), registry=registry)


def schema_errors(data: Any, kind: str, limit: int = 5) -> list[str]:
    """Up to `limit` violations of `kind`'s schema, each as `where: what` (JSON path first),
    the shallowest first."""
    leaves = [leaf for e in _validator(kind).iter_errors(data) for leaf in _leaves(e)]
    # specific errors first; "needs one of ..." (a failed alternative) after them
    leaves.sort(key=lambda e: (bool(e.context), len(e.absolute_path), str(list(e.absolute_path))))
    return [f"{_where(e.absolute_path)}: {_what(e)}" for e in leaves[:limit]]


def _leaves(error: Any) -> list[Any]:
    """The errors that say what is wrong: for a failed oneOf/anyOf, those of the alternative
    the document came closest to (not one it fails by its very type)."""
    if not error.context:
        return [error]
    branches: dict[Any, list[Any]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    if all(any(_missing(s) for s in subs) for subs in branches.values()):
        return [error]  # every alternative needs a key that is missing: say which ones
    plausible = [
        subs
        for subs in branches.values()
        if not any(s.validator == "type" and not s.relative_path for s in subs)
    ]
    if not plausible:
        return [error]
    # fewest errors; among those, the alternative that got furthest into the document
    closest = min(plausible, key=lambda subs: (len(subs), -max(len(x.path) for x in subs)))
    return [leaf for sub in closest for leaf in _leaves(sub)]


def kind_of(data: Any) -> str | None:
    """Which schema a JSON document of ours follows, from its shape (None: none of them)."""
    if isinstance(data, list):
        return "mapping"
    if not isinstance(data, dict):
        return None
    if data.get("schedule") == "concurrent":
        return "schedule"
    if "valid" in data and "broken" in data:
        return "verdict"
    if "top1" in data and "fp32_top1" in data:
        return "measurement"
    if "key" in data and "finished_at" in data:
        return "cell"
    if "points" in data and "quantities" in data:
        return "front"
    if "layers" in data:
        return "result" if "status" in data else "mapping"
    return None


def _missing(error: Any) -> bool:
    """A required key that is absent, or present as null where a value is needed."""
    return error.validator == "required" or (error.validator == "type" and error.instance is None)


def _where(path: Any) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    return text.lstrip(".") or "(top level)"


def _what(error: Any) -> str:
    """The validator's message, shortened where it would print a whole instance."""
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"unknown key(s) {', '.join(repr(k) for k in extra)}"
    if error.validator in ("anyOf", "oneOf"):
        needed = list(
            dict.fromkeys(
                f"`{key}`"
                for sub in error.context
                if sub.validator == "required"
                for key in sub.validator_value
                if isinstance(error.instance, dict) and error.instance.get(key) is None
            )
        )
        if len(needed) == 1:
            return f"needs {needed[0]}"
        if needed:
            return f"needs one of {', '.join(needed)}"
        if isinstance(error.instance, dict | list):
            return "is none of the allowed forms"
        return f"{error.instance!r} is none of the allowed forms"
    message = error.message
    return message if len(message) <= 160 else message[:157] + "..."
