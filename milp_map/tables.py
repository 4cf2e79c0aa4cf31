"""Reading user CSV files with one-line errors (file, what is wrong), shared by every loader."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from milp_map.errors import MilpMapError


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
