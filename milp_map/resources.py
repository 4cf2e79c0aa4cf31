"""Where shipped data lives: `milp_map.data` when installed, else the repository's data/.

Light on purpose (no numpy, no onnx): command lines read preset names before parsing.
"""

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


def preset_names() -> list[str]:
    """Names of the platform presets shipped in `data/platforms/`."""
    return sorted(p.stem for p in data_path("platforms").glob("*.yaml"))
