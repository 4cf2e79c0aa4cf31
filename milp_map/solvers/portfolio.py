"""Two exact solves of one problem side by side; the first proof wins.

CP-SAT and HiGHS each win on different models (channel splits: CP-SAT on fine splits of small
networks, HiGHS on large DAGs; benchmarks/solver_policy.py), and which one will is not known
before the solve. `race` runs one solve per backend in its own thread (both release the GIL
while they search), stops the others through `SolverSettings.stop` as soon as one has proved
its answer, and otherwise (time limit, Ctrl-C) returns the best mapping either found with the
best bound either proved, so a time limit never gives a worse answer than the better backend
alone would have in that time.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Mapping

from milp_map.core.solution import Solution
from milp_map.solvers.base import CtrlC, SolverSettings

PORTFOLIO: tuple[str, ...] = ("cpsat", "highs")
"""The backends `--solver portfolio` (and `auto` for channel splits) runs side by side."""

PROOFS = ("optimal", "infeasible")
"""Statuses that end a race: nothing better can come from the other solve."""

Run = Callable[[SolverSettings], Solution]
"""One backend's solve of the problem, with the settings it is given."""


def race(runs: Mapping[str, Run], settings: SolverSettings) -> Solution:
    """The first proof among `runs` (backend name -> solve), or else the best mapping any of
    them found, with the best bound any of them proved. A run that raises is ignored while
    another answers; if every run raises, the first error is raised."""
    stop = threading.Event()
    done: queue.Queue[str] = queue.Queue()
    answers: dict[str, Solution] = {}
    errors: dict[str, BaseException] = {}
    shared = dataclasses.replace(settings, stop=stop)

    def work(name: str, run: Run) -> None:
        try:
            answers[name] = run(shared)
        except BaseException as exc:  # handed to the caller below
            errors[name] = exc
        finally:
            done.put(name)

    threads = [
        threading.Thread(target=work, args=(name, run), name=f"portfolio-{name}", daemon=True)
        for name, run in runs.items()
    ]
    start = time.perf_counter()
    order: list[str] = []
    with CtrlC(stop=stop) as ctrl_c:
        for thread in threads:
            thread.start()
        while len(order) < len(threads):
            try:
                name = done.get(timeout=0.1)  # a timeout lets Python run the Ctrl-C handler
            except queue.Empty:
                if settings.stop is not None and settings.stop.is_set():
                    stop.set()  # the caller's own stop request ends both runs
                if answers and _past(settings.deadline_s, ABANDON_AFTER_S):
                    stop.set()
                    break  # a run still building its model past the deadline is left behind
                continue
            order.append(name)
            if name in answers and settled(answers[name], settings):
                stop.set()
        for thread in threads:
            if thread.name.removeprefix("portfolio-") in order:
                thread.join()
    if not answers:
        raise errors[order[0]]
    return _pick(answers, order, settings, time.perf_counter() - start, ctrl_c.pressed)


ABANDON_AFTER_S = 5.0
"""A run that has not answered this long after the run's deadline (Python still building its
model: GIL-bound, deaf to `stop`) is left to end by itself; the race answers without it."""


def _past(deadline_s: float | None, grace_s: float) -> bool:
    return deadline_s is not None and time.perf_counter() > deadline_s + grace_s


def settled(answer: Solution, settings: SolverSettings) -> bool:
    """A proof, the solver's own proof (CP-SAT's, whose rounding allowance may leave a gap of a
    few 1e-6 on large models: no other backend would close it sooner), or a mapping within
    the requested gap."""
    if answer.status in PROOFS or answer.extra.get("solver_proved"):
        return True
    gap = answer.gap
    return settings.rel_gap is not None and gap is not None and gap <= settings.rel_gap


def _pick(
    answers: dict[str, Solution],
    order: list[str],
    settings: SolverSettings,
    elapsed_s: float,
    interrupted: bool,
) -> Solution:
    finished = [name for name in order if name in answers]
    others = ", ".join(
        f"{name} {answers[name].status}" if name in answers else f"{name} failed"
        for name in order[1:]
    )
    for name in finished:
        if settled(answers[name], settings):
            answer = answers[name]
            return _noted(answer, f"portfolio: {name} settled it first ({others})", elapsed_s)
    with_mapping = [answers[n] for n in finished if answers[n].metrics is not None]
    bounds = [answers[n].best_bound for n in finished if answers[n].best_bound is not None]
    best = min(with_mapping, key=_value) if with_mapping else answers[finished[0]]
    bound = max(bounds) if bounds else None
    if bound is not None and best.objective_value is not None:
        bound = min(bound, best.objective_value)
    summary = ", ".join(f"{name} {answers[name].status}" for name in finished)
    chosen = dataclasses.replace(
        best,
        best_bound=bound,
        extra={**best.extra, "interrupted": interrupted or bool(best.extra.get("interrupted"))},
    )
    return _noted(chosen, f"portfolio: {summary}; the best mapping and bound of both", elapsed_s)


def _value(solution: Solution) -> float:
    value = solution.objective_value
    return float("inf") if value is None else value


def _noted(answer: Solution, note: str, elapsed_s: float) -> Solution:
    detail = f"{answer.detail}; {note}" if answer.detail else note
    return dataclasses.replace(answer, detail=detail, solve_time_s=elapsed_s)
