"""The results folder of a sweep: one atomic row file per finished cell, merged into a table.

    OUT/cells/KEY.json       the cell's row, written (atomically) when the cell finishes
    OUT/mappings/KEY.json    its mapping (the `solve --out` schema), written before the row
    OUT/results.csv          every row, rewritten atomically from the rows every few seconds
                             and at the end (results.parquet too when pyarrow is installed)

Row files are the durable record: a crash or Ctrl-C loses only the cells in flight, and a
rerun skips every key found in cells/ or in results.csv. Only the sweep's own process writes
here, under an exclusive lock, so two sweeps cannot interleave in one folder.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from milp_map.errors import MilpMapError
from milp_map.experiments.sweep.cell import SOLVED, CellOutcome
from milp_map.io.files import write_bytes_atomic, write_json_atomic, write_text_atomic

INPUT_COLUMNS = (
    "key",
    "model",
    "sensitivity",
    "platform",
    "platform_base",
    "platform_overrides",
    "granularity",
    "group_size",
    "objective",
    "max_proxy_fraction",
    "max_proxy",
    "max_latency_s",
    "max_energy_j",
    "method",
    "solver",
    "time_limit_s",
    "gap_limit",
    "seed",
)
RESULT_COLUMNS = (
    "status",
    "error",
    "backend",
    "objective_value",
    "best_bound",
    "gap",
    "latency_s",
    "energy_j",
    "accuracy_proxy",
    "proxy_budget",
    "units",
    "mapping_path",
)
RUN_COLUMNS = ("threads", "solve_time_s", "wall_time_s", "worker", "finished_at")
"""How and when a cell ran: they differ between runs of the same cell."""
COLUMNS = INPUT_COLUMNS + RESULT_COLUMNS + RUN_COLUMNS
INTEGER_COLUMNS = ("group_size", "seed", "units", "threads")

TABLE = "results.csv"
TABLE_EVERY_S = 2.0
"""Rewrite the table at most this often while cells finish (row files are written at once)."""


class ResultStore:
    """The results folder: finished rows in memory, row and mapping files on disk."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise MilpMapError(f"{self.out}: not a folder; --out takes a results folder")
        self.cells = self.out / "cells"
        self.mappings = self.out / "mappings"
        self.rows: dict[str, dict[str, Any]] = {}
        self.order: Sequence[str] = ()
        """Keys in grid order: the table lists them first."""
        self._lock: Any = None
        self._written_at = 0.0

    def __enter__(self) -> ResultStore:
        self.cells.mkdir(parents=True, exist_ok=True)
        self.mappings.mkdir(exist_ok=True)
        self._take_lock()
        self.rows = self._read_rows()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    @property
    def table_path(self) -> Path:
        return self.out / TABLE

    def finished(self, retry_failed: bool = False) -> set[str]:
        """Keys of recorded cells (with `retry_failed`, minus those whose status is error)."""
        return {k for k, r in self.rows.items() if not (retry_failed and r["status"] == "error")}

    def record(self, outcome: CellOutcome) -> dict[str, Any]:
        """Write the cell's mapping, then its row: a row never names a missing mapping."""
        row = dict(outcome.row)
        if outcome.mapping is not None:
            path = write_json_atomic(outcome.mapping, self.mappings / f"{outcome.key}.json")
            row["mapping_path"] = path.relative_to(self.out).as_posix()
        write_json_atomic(row, self.cells / f"{outcome.key}.json")
        self.rows[outcome.key] = row
        return row

    def write_table(self, force: bool = True) -> Path | None:
        """Rewrite results.csv from the rows (grid order first, then older keys); with
        force=False only if the last write is older than TABLE_EVERY_S."""
        now = time.monotonic()
        if not force and now - self._written_at < TABLE_EVERY_S:
            return None
        self._written_at = now
        frame = table_frame(self.rows, self.order)
        write_text_atomic(frame.to_csv(index=False), self.table_path, durable=True)
        if _has_pyarrow():
            write_bytes_atomic(frame.to_parquet(index=False), self.out / "results.parquet")
        return self.table_path

    def _take_lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: run unlocked
            return
        handle = open(self.out / ".sweep.lock", "w")  # noqa: SIM115 (held until __exit__)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise MilpMapError(
                f"{self.out}: another sweep is writing to this folder; wait for it to end "
                "or choose another --out"
            ) from None
        self._lock = handle

    def _read_rows(self) -> dict[str, dict[str, Any]]:
        """Rows of results.csv, then of cells/ (newer, they win); stray temp files ignored."""
        rows: dict[str, dict[str, Any]] = {}
        if self.table_path.is_file():
            rows.update(_table_rows(self.table_path))
        for path in sorted(self.cells.glob("*.json")):
            if path.name.startswith("."):
                continue
            try:
                row = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise MilpMapError(f"{path}: unreadable row file ({exc}); delete it") from None
            if not isinstance(row, dict) or "key" not in row or "status" not in row:
                raise MilpMapError(f"{path}: not a sweep row file (no key or status); delete it")
            rows[row["key"]] = row
        return rows


def table_frame(rows: dict[str, dict[str, Any]], order: Sequence[str] = ()) -> pd.DataFrame:
    """Rows as a DataFrame with the documented column order."""
    rank = {key: i for i, key in enumerate(order)}
    keys = sorted(rows, key=lambda k: (rank.get(k, len(rank)), k))
    extra = sorted({c for r in rows.values() for c in r} - set(COLUMNS))
    frame = pd.DataFrame.from_records([rows[k] for k in keys], columns=[*COLUMNS, *extra])
    return frame.astype({c: "Int64" for c in INTEGER_COLUMNS})


def load_table(out: str | Path) -> pd.DataFrame:
    """A sweep's table for analysis: results.csv, or the row files if the table is missing."""
    out = Path(out)
    if (out / TABLE).is_file():
        return read_table(out / TABLE)
    rows = {}
    for path in sorted((out / "cells").glob("*.json")):
        if not path.name.startswith("."):
            row = json.loads(path.read_text())
            rows[row["key"]] = row
    if not rows:
        raise MilpMapError(f"{out}: no {TABLE} and no cells/*.json; is it a sweep folder?")
    return table_frame(rows)


def read_table(path: Path) -> pd.DataFrame:
    """results.csv with its integer columns as nullable integers and keys as text."""
    types = {"key": str, **{c: "Int64" for c in INTEGER_COLUMNS}}
    return pd.read_csv(path, dtype=types)


def count_failed(rows: dict[str, dict[str, Any]]) -> int:
    return sum(1 for r in rows.values() if r["status"] not in SOLVED)


def _table_rows(path: Path) -> dict[str, dict[str, Any]]:
    try:
        frame = read_table(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MilpMapError(f"{path}: unreadable results table ({first})") from None
    missing = [c for c in ("key", "status") if c not in frame.columns]
    if missing:
        raise MilpMapError(f"{path}: not a sweep table (no column {', '.join(missing)})")
    return {
        str(rec["key"]): {k: _clean(v) for k, v in rec.items()} for rec in frame.to_dict("records")
    }


def _clean(value: Any) -> Any:
    """NaN (an empty CSV cell) -> None; numpy scalars -> Python numbers."""
    if value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True
