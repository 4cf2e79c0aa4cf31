"""Mapping files as written (by `solve --out`, by hand, by another tool) -> header and layers.

Reading only: what the layers mean is checked against a problem by milp_map/evaluation/check.py.
"""

from __future__ import annotations

import json
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
    if isinstance(data, list):
        return {}, data
    if isinstance(data, dict) and isinstance(data.get("layers"), list):
        return data, data["layers"]
    raise MilpMapError(f"{path}: expected a JSON list of layers or an object with a `layers` list")
