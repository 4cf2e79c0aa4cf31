"""The shape every solver backend answers in, and the calls formulations make on it."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from milp_map.errors import MilpMapError

Terms = Sequence[tuple[Any, float]]
"""A linear expression as (variable, coefficient) pairs."""


@dataclass(frozen=True)
class SolverSettings:
    time_limit_s: float | None = None
    rel_gap: float | None = None
    """Stop at this relative gap (None: prove optimality)."""
    threads: int = 1
    """CP-SAT workers (1: deterministic); HiGHS runs single-threaded regardless."""
    seed: int = 0
    log: bool = False
    """Stream the solver's own log (incumbent, bound, gap) to stderr."""
    deterministic_time: float | None = None
    """CP-SAT's own work limit (its deterministic time units, about seconds): unlike a wall-
    clock limit, a run stopped by it gives the same answer on a loaded machine."""
    stop: threading.Event | None = field(default=None, compare=False, repr=False)
    """Set by another thread to end the search early with the best mapping so far (a
    portfolio stops its other solve once one has a proof); not a Ctrl-C."""
    deadline_s: float | None = field(default=None, compare=False, repr=False)
    """When the whole run must end (time.perf_counter clock): every solve of the run (warm
    start, head start, race) gets only what is left of it, model building included."""

    def __post_init__(self) -> None:
        check_limits(self.time_limit_s, self.rel_gap, self.threads, self.seed)

    def with_deadline(self) -> SolverSettings:
        """These settings with `deadline_s` set from now + `time_limit_s` (if not yet set):
        `--time-limit` holds for a whole run of several solves."""
        if self.time_limit_s is None or self.deadline_s is not None:
            return self
        return replace(self, deadline_s=time.perf_counter() + self.time_limit_s)

    def seconds_left(self) -> float | None:
        """The time limit for a solve starting now: `time_limit_s`, cut to what is left
        before `deadline_s` (at least MIN_SOLVE_S, so a late solve still returns its hint)."""
        if self.time_limit_s is None:
            return None
        if self.deadline_s is None:
            return self.time_limit_s
        left = self.deadline_s - time.perf_counter()
        return max(MIN_SOLVE_S, min(self.time_limit_s, left))


MIN_SOLVE_S = 0.05
"""The shortest time limit a solve is given past its run's deadline."""


MAX_SEED = 2**31 - 1
"""Largest random seed: CP-SAT takes a 32-bit one, and result tables store it as an integer."""

FIELD_NAMES = {"time_limit": "time_limit_s", "gap": "rel_gap", "threads": "threads", "seed": "seed"}


def check_limits(
    time_limit_s: float | None,
    rel_gap: float | None,
    threads: int,
    seed: int,
    names: dict[str, str] = FIELD_NAMES,
) -> None:
    """Limits a solver would reject with a cryptic status, named on one line (`names`: how
    the caller spells them, e.g. the command line's flags)."""
    if time_limit_s is not None and not time_limit_s > 0:
        raise MilpMapError(f"{names['time_limit']} must be > 0 seconds, got {time_limit_s}")
    if rel_gap is not None and not rel_gap >= 0:
        raise MilpMapError(f"{names['gap']} must be >= 0, got {rel_gap}")
    if threads < 1:
        raise MilpMapError(f"{names['threads']} must be >= 1, got {threads}")
    if not 0 <= seed <= MAX_SEED:
        raise MilpMapError(f"{names['seed']} must be in 0..{MAX_SEED}, got {seed}")


@dataclass(frozen=True)
class SolveResult:
    status: str
    """'optimal', 'feasible', 'infeasible', 'time_limit' or 'error' (see solution.STATUSES)."""
    values: dict[Any, float] | None
    objective: float | None
    """In the normalised units the formulation built the objective in."""
    bound: float | None
    """Proven lower bound on the objective, same units, None if the solver gives none."""
    solve_time_s: float
    detail: str = ""
    interrupted: bool = False
    """Ctrl-C stopped the search; what came back is the best found so far."""


LINEAR = "linear"
"""Booleans, exactly-one, linear rows and a linear objective: every backend, every mapping model."""
CONTINUOUS = "continuous"
"""Continuous variables in [low, high] (`Backend.continuous`): the MILP backends."""
SCHEDULING = "scheduling"
"""A native model with integer times, optional intervals, no-overlap and enforced rows
(`CpSatBackend.model`, solved by `solve_native`): CP-SAT."""


CAPABILITIES: dict[str, frozenset[str]] = {
    "cpsat": frozenset({LINEAR, SCHEDULING}),
    "highs": frozenset({LINEAR, CONTINUOUS}),
    "cbc": frozenset({LINEAR, CONTINUOUS}),
}
"""What each backend declares it can model."""


class Backend(Protocol):
    """A model under construction. Coefficients of cost rows are normalised floats (~<= 1).

    `capabilities` declares what a backend offers beyond LINEAR; a formulation asks
    `make_backend` for what it needs and gets a one-line error from a backend without it.
    """

    name: str
    capabilities: frozenset[str]

    def binary(self, name: str) -> Any: ...

    def implied_binary(self, name: str) -> Any:
        """A variable that is 0/1 at every integral point of the binaries it is tied to."""
        ...

    def add_exactly_one(self, variables: Sequence[Any]) -> None: ...

    def add_equal(self, terms: Terms, rhs: int) -> None:
        """An equality with integer coefficients."""
        ...

    def add_at_most_int(self, terms: Terms, rhs: int) -> None:
        """An inequality with integer coefficients (logic between booleans)."""
        ...

    def add_at_most(self, terms: Terms, rhs: float, relax: bool = True) -> None:
        """A cost inequality with fractional coefficients (normalised units). `relax` lets
        CP-SAT widen the right-hand side by its rounding error (bounds); structural rows
        whose both sides round alike (a makespan above each part) pass relax=False."""
        ...

    def minimize(self, terms: Terms, constant: float = 0.0) -> None: ...

    def hint(self, values: dict[Any, int]) -> None: ...

    def solve(self, settings: SolverSettings) -> SolveResult: ...


class ContinuousBackend(Backend, Protocol):
    """A backend with the CONTINUOUS capability."""

    def continuous(self, name: str, low: float, high: float) -> Any:
        """A continuous variable in [low, high], named `name` as given (keep it unique)."""
        ...


def write_log(text: str) -> None:
    """A line of a solver's log, on stderr (stdout holds the result): `--verbose`."""
    sys.stderr.write(text if text.endswith("\n") else text + "\n")
    sys.stderr.flush()


WATCHDOG_GRACE_S = 2.0
"""A time-limited HiGHS solve is interrupted by the watchdog this long after its limit."""


class CtrlC:
    """Turns Ctrl-C during a HiGHS solve into a request to stop: HiGHS calls `callback` from
    its search, where Python runs the pending handler; the best mapping so far comes back.

    With a `deadline_s` (seconds on the perf_counter clock) it is also a watchdog: HiGHS 1.16
    has spun for minutes past its own time limit, so the callback stops it on the wall clock.
    With `log_kind` (HiGHS's logging callback type) it also writes the solver's log to stderr.
    """

    def __init__(
        self,
        deadline_s: float | None = None,
        log_kind: int | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.pressed = False
        self.overran = False
        self.deadline_s = deadline_s
        self.log_kind = log_kind
        self.stop = stop
        self._previous: Any = None

    def callback(self, kind: int, message: str, data_out: Any, data_in: Any, user: Any) -> None:
        if self.log_kind is not None and kind == self.log_kind:
            write_log(message)
            return
        if self.deadline_s is not None and time.perf_counter() > self.deadline_s:
            self.overran = True
        if self.pressed or self.overran or (self.stop is not None and self.stop.is_set()):
            data_in.user_interrupt = True

    def __enter__(self) -> CtrlC:
        # only where Ctrl-C is meant for this solve: not in a thread, nor in a sweep worker,
        # which ignores SIGINT because its parent handles it
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self._previous = signal.signal(signal.SIGINT, self._press)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _press(self, signum: int, frame: Any) -> None:
        self.pressed = True
        if self.stop is not None:
            self.stop.set()
