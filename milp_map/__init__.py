"""milp_map: provably optimal mappings of DNN layers onto heterogeneous accelerators.

The Python API (milp_map/api.py), loaded on first use so that `import milp_map` and the
command lines' `--help` stay fast:

    import milp_map
    best = milp_map.solve_mapping("resnet20", "diana")
    front = milp_map.pareto_front("mobilenet_v1", "rockpi-n10", ("latency", "energy"))
    table = milp_map.compare("resnet20", "diana").to_frame()
    tuned = milp_map.finetune_mapping("mnist_resnet", "diana", epochs=3)  # milp_map[torch]
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

_API = {
    "solve_mapping": "milp_map.api",
    "pareto_front": "milp_map.api",
    "compare": "milp_map.api",
    "finetune_mapping": "milp_map.api",
    "load_problem": "milp_map.io.problems",
    "Solution": "milp_map.core.solution",
    "Front": "milp_map.core.solution",
    "Comparison": "milp_map.experiments.compare",
    "MilpMapError": "milp_map.errors",
}
__all__ = [
    "Comparison",
    "Front",
    "MilpMapError",
    "Solution",
    "__version__",
    "compare",
    "finetune_mapping",
    "load_problem",
    "pareto_front",
    "solve_mapping",
]

if TYPE_CHECKING:
    from milp_map.api import compare, finetune_mapping, pareto_front, solve_mapping
    from milp_map.core.solution import Front, Solution
    from milp_map.errors import MilpMapError
    from milp_map.experiments.compare import Comparison
    from milp_map.io.problems import load_problem


def __getattr__(name: str) -> Any:
    """The API names, imported when first used (PEP 562)."""
    if name not in _API:
        raise AttributeError(f"module 'milp_map' has no attribute {name!r}")
    value = getattr(import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
