"""Every notebook in notebooks/ (jupytext percent-format NN_name.py) executes without error,
and its executed copy NN_name.ipynb (kept for readers, with figures) is of the current source
and shows what a run shows now.

Each file is converted with jupytext and run cell by cell by nbclient on the python3 kernel,
in a temporary folder (notebooks/execute.py, which also writes the .ipynb copies), so
notebooks added later are covered without touching this test. Outputs are compared with
numbers and temporary paths masked (solve times differ from run to run); figures by their
number and pixel size.
"""

from __future__ import annotations

import base64
import re
import struct
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("jupytext")
pytest.importorskip("nbclient")

FOLDER = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("[0-9]*.py"))
sys.path.insert(0, str(FOLDER))
from execute import executed  # noqa: E402


def _masked(text: str) -> str:
    text = re.sub(r"/tmp/\S+|[A-Za-z]:\\\S+|/var/folders/\S+", "<tmp>", text)
    return re.sub(r"\d", "#", text)


def _png_size(data: str) -> tuple[int, int]:
    raw = base64.b64decode(data)
    return struct.unpack(">II", raw[16:24])


def _shown(notebook) -> list[tuple]:
    """Per cell: its source and, for code, what it shows (masked text, figure sizes, errors)."""
    shown: list[tuple] = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            shown.append((cell.cell_type, cell.source))
            continue
        outputs = []
        for output in cell.get("outputs", []):
            kind = output["output_type"]
            if kind == "stream":
                outputs.append((kind, output["name"], _masked(output["text"])))
            elif kind in ("display_data", "execute_result"):
                data = output["data"]
                image = _png_size(data["image/png"]) if "image/png" in data else None
                outputs.append((kind, _masked(data.get("text/plain", "")), image))
            else:
                outputs.append((kind, output.get("ename"), output.get("evalue")))
        shown.append((cell.source, outputs))
    return shown


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_and_its_stored_copy_is_current(path: Path, tmp_path: Path) -> None:
    notebook = executed(path, tmp_path)
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors
    stored = path.with_suffix(".ipynb")
    stale = (
        f"{stored.name} is not what {path.name} shows now: "
        f"run `python notebooks/execute.py {path.stem}`"
    )
    assert stored.is_file(), stale
    assert _shown(nbformat.read(stored, as_version=4)) == _shown(notebook), stale
