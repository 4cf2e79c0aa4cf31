"""A sweep cell that never finishes, for tests/test_sweep.py's worker-lifetime test: each
worker writes its pid to $MILP_MAP_TEST_PIDS/<pid> and then sleeps until killed."""

from __future__ import annotations

import os
import time
from pathlib import Path


def run_cell(cell: object, threads: int) -> object:
    folder = Path(os.environ["MILP_MAP_TEST_PIDS"])
    (folder / str(os.getpid())).write_text("")
    while True:
        time.sleep(1.0)
