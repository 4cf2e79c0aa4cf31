"""Reading user files (CSV tables, YAML) with one-line errors (file, what is wrong), shared by
every loader."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import ValidationError

from milp_map.errors import MilpMapError


def read_yaml_mapping(path: Path, what: str, top_keys: str) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (`what` names the kind of file, `top_keys`
    the keys it should start with); bad text, bad YAML or another shape is one line."""
    try:
        raw = yaml.safe_load(path.read_text())
    except UnicodeDecodeError:
        raise MilpMapError(f"{path}: not a UTF-8 text file; expected {what}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or first_line(exc)
        raise MilpMapError(f"{path}:{where} is not valid YAML ({problem})") from None
    except RecursionError:
        raise MilpMapError(f"{path}: YAML nested too deeply; expected {what}") from None
    if not isinstance(raw, dict):
        raise MilpMapError(f"{path}: expected a mapping with {top_keys} at the top")
    check_size(raw, path)
    return raw


MAX_YAML_VALUES = 1_000_000
"""Values a YAML file may expand to, aliases counted every time they are used: a file of
nested aliases (a 'billion laughs') is refused instead of hanging whatever reads it."""
MAX_YAML_DEPTH = 100
"""Nesting depth of lists and mappings a YAML file may have."""


def check_size(value: Any, path: Path) -> None:
    """One line if `value` (loaded YAML) contains itself (a recursive alias), or expands
    beyond MAX_YAML_VALUES or MAX_YAML_DEPTH."""
    stack: list[tuple[Any, int, bool]] = [(value, 0, False)]
    open_containers: set[int] = set()  # the containers on the path being walked
    seen = 0
    while stack:
        item, depth, leaving = stack.pop()
        if leaving:
            open_containers.discard(id(item))
            continue
        seen += 1
        if seen > MAX_YAML_VALUES:
            raise MilpMapError(
                f"{path}: the YAML expands to more than {MAX_YAML_VALUES:,} values "
                "(nested aliases?); refused"
            )
        if depth > MAX_YAML_DEPTH:
            raise MilpMapError(f"{path}: YAML nested deeper than {MAX_YAML_DEPTH} levels")
        if not isinstance(item, dict | list | tuple):
            continue
        if id(item) in open_containers:
            raise MilpMapError(f"{path}: a value contains itself (a recursive YAML alias)")
        open_containers.add(id(item))
        stack.append((item, depth, True))
        children = [v for pair in item.items() for v in pair] if isinstance(item, dict) else item
        stack.extend((child, depth + 1, False) for child in children)


def describe_validation_error(exc: ValidationError) -> str:
    """pydantic's first error as `field 'a.b[2].c': what is wrong`."""
    err = exc.errors()[0]
    loc = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in err["loc"])
    loc = loc.replace(".[", "[")
    msg = err["msg"].removeprefix("Value error, ")
    more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
    if err["type"] == "missing":
        return f"field '{loc}' is required{more}"
    if err["type"] == "extra_forbidden":
        return f"unknown field '{loc}'{more}"
    return f"field '{loc}': {msg}{more}" if loc else f"{msg}{more}"


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (its type name when it has none)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def cell_number(path: Path, row: int, column: str, text: str) -> float:
    """A CSV cell as a float, or one line naming file, row and column (range checks are the
    caller's)."""
    try:
        return float(text)
    except ValueError:
        raise MilpMapError(
            f"{path}: row {row}: column '{column}' is not a number: '{text}'"
        ) from None


def read_csv_checked(path: Path, required: Sequence[str], what: str) -> pd.DataFrame:
    """All cells as strings; errors for a missing file, unreadable CSV or missing columns."""
    if not path.is_file():
        raise MilpMapError(f"{path}: {what} file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path, dtype=str, keep_default_na=False, skipinitialspace=True, index_col=False
            )
    except pd.errors.ParserWarning:
        raise MilpMapError(
            f"{path}: unreadable CSV (a row has more fields than the header)"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MilpMapError(f"{path}: unreadable CSV ({first})") from None
    _check_one_line(path, frame)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise MilpMapError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(required)}"
        )
    return frame


def _check_one_line(path: Path, frame: pd.DataFrame) -> None:
    """Reject a (quoted) header or cell spanning lines: names and values end up in messages."""
    for column in frame.columns:
        if _has_line_break(str(column)):
            raise MilpMapError(f"{path}: column name {str(column)!r} contains a line break")
    for column in frame.columns:
        for row, text in enumerate(frame[column], start=2):
            if isinstance(text, str) and _has_line_break(text):
                raise MilpMapError(
                    f"{path}: row {row}: column '{column}' contains a line break: {text!r}"
                )


def _has_line_break(text: str) -> bool:
    return bool(text) and text.splitlines() != [text]
