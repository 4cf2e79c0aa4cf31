"""pyproject.toml lists every importable folder, so a non-editable install drops nothing (a
subpackage missing from the list was once left out of the wheel) and setuptools warns of
nothing; the command-line entry point and the version come from the code."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parent.parent


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_importable_folder_is_a_listed_package() -> None:
    listed = set(_config()["tool"]["setuptools"]["packages"])
    code = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "milp_map").rglob("__init__.py")
    }
    data = {
        "milp_map.data" + "".join(f".{part}" for part in d.relative_to(ROOT / "data").parts)
        for d in [ROOT / "data", *(ROOT / "data").rglob("*")]
        if d.is_dir() and d.name != "__pycache__" and d.name.isidentifier()
    }
    assert sorted((code | data) - listed) == []
    assert sorted(listed - code - data) == []


def test_the_entry_point_and_version_come_from_the_code() -> None:
    config = _config()
    module, _, function = config["project"]["scripts"]["milp-map"].partition(":")
    assert callable(getattr(importlib.import_module(module), function))
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "milp_map.__version__"}
