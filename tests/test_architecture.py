"""The house rules: imports point one way, down the declared layer order, and form no circle,
counting imports inside functions and under TYPE_CHECKING (docs/architecture.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "milp_map"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("milp_map.errors", "milp_map.resources", "milp_map.defaults"),
    ("milp_map.core",),
    ("milp_map.solvers",),
    ("milp_map.io",),
    ("milp_map.evaluation",),
    ("milp_map.formulations",),
    ("milp_map.exact",),
    ("milp_map.baselines",),
    ("milp_map.accuracy",),
    ("milp_map.pipeline",),
    ("milp_map.experiments",),
    ("milp_map.api",),
    ("milp_map",),
    ("milp_map.cli",),
    (
        "milp_map.__main__",
        "milp_map.solve",
        "milp_map.check",
        "milp_map.evaluate",
        "milp_map.export",
        "milp_map.compare",
        "milp_map.sweep",
        "milp_map.zoo",
        "milp_map.fit_platform",
        "milp_map.proxy",
        "milp_map.sensitivity",
        "milp_map.finetune",
    ),
)
"""Bottom to top: a module may import modules of its own layer and of the layers below it.
The package face (`milp_map`, lazy API names) sits under the command lines, which read its
version; the `python -m milp_map.X` shims sit on top."""


def modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts).removesuffix(".__init__")
        found[name] = path
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """Package modules `path` imports anywhere in the file (module level, in functions, under
    TYPE_CHECKING); `from pkg import name` counts as pkg.name when that is a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "milp_map")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "milp_map":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return found & known


def layer_of(module: str) -> int:
    """Index of the layer whose entry is `module` or a package above it (the longest match)."""
    best, length = -1, -1
    for index, entries in enumerate(LAYERS):
        for entry in entries:
            if (module == entry or module.startswith(entry + ".")) and len(entry) > length:
                best, length = index, len(entry)
    return best


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    known = modules()
    dag = nx.DiGraph()
    dag.add_nodes_from(known)
    for name, path in known.items():
        dag.add_edges_from((name, target) for target in imports(path, set(known)) if target != name)
    return dag


def test_every_module_has_a_layer(graph: nx.DiGraph) -> None:
    assert [m for m in graph if layer_of(m) < 0] == []


def test_imports_point_down_the_layers(graph: nx.DiGraph) -> None:
    upward = [
        f"{src} (layer {layer_of(src)}) imports {dst} (layer {layer_of(dst)})"
        for src, dst in graph.edges
        if layer_of(dst) > layer_of(src)
    ]
    assert upward == []


def test_no_import_circle(graph: nx.DiGraph) -> None:
    circles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert circles == []


def test_the_checker_sees_function_level_imports(tmp_path: Path) -> None:
    """The test would catch the old circle: an import inside a function counts."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from milp_map.cli import solve\n    import milp_map.api\n")
    assert imports(source, {"milp_map.cli.solve", "milp_map.api"}) == {
        "milp_map.cli.solve",
        "milp_map.api",
    }


COMMANDS = tuple(shim.split(".")[1] for shim in LAYERS[-1] if shim != "milp_map.__main__")
"""Every `python -m milp_map.X` command (the shims of the top layer)."""


def test_help_and_version_load_no_heavy_library() -> None:
    """Every command parses `--help` and `--version` before numpy, onnx or a solver loads."""
    script = (
        "import contextlib, importlib, io, sys\n"
        f"for command in {COMMANDS!r}:\n"
        "    cli = importlib.import_module(f'milp_map.cli.{command}')\n"
        "    for flag in ('--help', '--version'):\n"
        "        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "            cli.parse_args([flag])\n"
        "heavy = {'numpy', 'onnx', 'pandas', 'ortools', 'pulp', 'highspy', 'torch', 'pydantic'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]", result.stderr
