"""Where shipped data lives: `milp_map.data` when installed, else the repository's data/."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def data_path(*parts: str) -> Path:
    """Path of a shipped data file or folder (platform presets, scores, models)."""
    try:
        root = Path(str(resources.files("milp_map.data")))
    except ModuleNotFoundError:
        root = Path(__file__).resolve().parent.parent / "data"
    return root.joinpath(*parts)
