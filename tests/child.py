"""A command-line child process for tests: its stderr read line by line as it comes, and
killed whatever happens (a timeout, a failed assertion), so no test leaves a solver running."""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO


class Child:
    """A running command; `wait_for` reads its stderr until a line matches."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None and process.stderr is not None
        self.process = process
        self.stderr_lines: list[str] = []
        self._stdout: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._collect, args=(process.stdout,), daemon=True),
            threading.Thread(target=self._queue, args=(process.stderr,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _collect(self, stream: IO[str]) -> None:
        self._stdout.extend(stream)

    def _queue(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, matches: Callable[[str], bool], timeout_s: float) -> str:
        """The first stderr line for which `matches` is true; AssertionError after timeout_s
        or if the process ends first."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError("the process ended first:\n" + "".join(self.stderr_lines))
            self.stderr_lines.append(line)
            if matches(line):
                return line
        raise AssertionError(f"no such line within {timeout_s} s")

    def finish(self, timeout_s: float) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) once it ends; subprocess.TimeoutExpired after timeout_s
        (the `child` block then kills it)."""
        self.process.wait(timeout=timeout_s)
        for reader in self._readers:
            reader.join(timeout_s)
        while (line := self._lines.get_nowait()) is not None:
            self.stderr_lines.append(line)
        return self.process.returncode, "".join(self._stdout), "".join(self.stderr_lines)


@contextmanager
def child(command: Sequence[str]) -> Iterator[Child]:
    """Run `command`; on leaving the block a process still running is killed."""
    process = subprocess.Popen(
        list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield Child(process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
