"""Execute the jupytext notebooks and keep each as an executed .ipynb with its figures, so
the repository shows the results without running anything.

    python notebooks/execute.py [NAME ...]

Each `notebooks/NN_name.py` (percent format) runs cell by cell on the python3 kernel in a
temporary folder and is written as `notebooks/NN_name.ipynb`. tests/test_notebooks.py runs
every notebook again and checks that the stored copy is of the current source and shows the
same outputs (text with numbers masked, since solve times differ; the same figures).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import jupytext
import nbclient
import nbformat

HERE = Path(__file__).resolve().parent
CELL_TIMEOUT_S = 180


def executed(path: Path, workdir: Path) -> nbformat.NotebookNode:
    """The notebook of `path`, run in `workdir` (outputs and figures inside)."""
    notebook = jupytext.read(path)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()
    for cell in notebook.cells:  # timings and kernel ids are not content
        cell.get("metadata", {}).pop("execution", None)
    notebook.metadata.pop("widgets", None)
    return notebook


def main(names: list[str]) -> int:
    sources = sorted(HERE.glob("[0-9]*.py"))
    chosen = [p for p in sources if not names or p.stem in names]
    for path in chosen:
        with tempfile.TemporaryDirectory() as workdir:
            notebook = executed(path, Path(workdir))
        target = path.with_suffix(".ipynb")
        nbformat.write(notebook, target)
        print(f"wrote {target.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
