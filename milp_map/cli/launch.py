"""Start a command so that Ctrl-C (or SIGTERM's Ctrl-C) during start-up, while its modules
load and its arguments are parsed, ends it as it would later: "interrupted", exit 130, no
traceback. Only the standard library is imported here, so nothing can be interrupted first."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

EXIT_INTERRUPTED = 130  # as milp_map.cli.common.EXIT_INTERRUPTED


def start(module: str, caller: str) -> Callable[..., int]:
    """The command line `module`'s main. Run as `python -m` (`caller` is "__main__"), it is
    also imported and run here and the process exits with its code."""
    if caller != "__main__":
        return importlib.import_module(module).main
    raise SystemExit(_guarded(lambda: importlib.import_module(module).main()))


def solve_script() -> int:
    """The `milp-map` console script: `python -m milp_map.solve`."""
    return _guarded(lambda: importlib.import_module("milp_map.cli.solve").main())


def _guarded(body: Callable[[], int]) -> int:
    try:
        return body()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
