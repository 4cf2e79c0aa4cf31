"""Mapping files as written (by `solve --out`, by hand, by another tool) -> header and layers,
and the input files a mapping names (`model_file`, `platform_file`: path and SHA-256).

Reading only: what the layers mean is checked against a problem by milp_map/evaluation/check.py.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from milp_map.errors import MilpMapError


def load_mapping_file(path: str | Path) -> tuple[dict[str, Any], list[Any]]:
    """(header keys, layer entries): a result JSON object with `layers`, or a bare list."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise MilpMapError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MilpMapError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise MilpMapError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise MilpMapError(f"{path}: JSON nested too deeply for a mapping file") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise MilpMapError(f"{path}: a JSON value cannot be read ({exc})") from None
    if isinstance(data, list):
        return {}, data
    if isinstance(data, dict) and isinstance(data.get("layers"), list):
        return data, data["layers"]
    raise MilpMapError(f"{path}: expected a JSON list of layers or an object with a `layers` list")


def file_record(path: str | Path) -> dict[str, str]:
    """How a result file names an input file: its absolute path and SHA-256."""
    resolved = Path(path).resolve()
    return {"path": str(resolved), "sha256": _sha256(resolved)}


def recorded_file(header: dict[str, Any], key: str, where: str | Path) -> str | None:
    """The input file a mapping file names under `key` ({path, sha256}), checked to be the one
    the mapping was made from; None when the file names none. Beside the mapping file is
    looked in too (a folder moved with its files)."""
    record = header.get(key)
    if record is None:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("path"), str):
        raise MilpMapError(f"{where}: `{key}` must be an object with a `path` (and `sha256`)")
    path = Path(record["path"])
    beside = Path(where).parent / path.name
    found = path if path.is_file() else beside if beside.is_file() else None
    flag = "--model" if key == "model_file" else "--platform"
    if found is None:
        raise MilpMapError(
            f"{where}: {key} {path} is missing (nor beside the mapping); pass {flag} FILE"
        )
    expected = record.get("sha256")
    if expected is not None and _sha256(found) != expected:
        raise MilpMapError(
            f"{where}: {found} has changed since the mapping was made (its SHA-256 differs "
            f"from {key}'s); pass {flag} {found} to check against it anyway"
        )
    return str(found)


def _sha256(path: Path) -> str:
    stat = path.stat()
    return _sha256_of(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def _sha256_of(path: str, mtime_ns: int, size: int) -> str:
    """SHA-256 of a file, once per version of it (a front writes it with every point)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
