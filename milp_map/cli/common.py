"""What every command line shares: a parser with `--version`, the flags several commands take,
and one wrapper that turns errors into exit codes.

Nothing heavy is imported here: a command builds and parses its arguments first, then imports
the library, so `--help` and `--version` answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from milp_map import __version__
from milp_map.defaults import DEFAULT_GROUP_SIZE, DEFAULT_PROXY_FRACTION, SOLVER_CHOICES
from milp_map.errors import MilpMapError
from milp_map.resources import preset_names

if TYPE_CHECKING:
    from milp_map.core.split import Target

EXIT_OK, EXIT_INCOMPLETE, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130
"""0 done; 1 no answer within the limits, a broken bound or a failed check; 2 bad input or
infeasible bounds (one line on stderr); 130 Ctrl-C."""
EXIT_IO = 1
"""A file that could not be read or written (OSError): one line on stderr."""


def new_parser(command: str, description: str) -> argparse.ArgumentParser:
    """A parser called as the user called it (`milp-map` or `python -m milp_map.COMMAND`)."""
    invoked = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    prog = invoked if invoked.startswith("milp-map") else f"python -m milp_map.{command}"
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"milp_map {__version__}")
    return parser


def add_model(
    parser: argparse.ArgumentParser, default: str | None, *, repeatable: bool = False
) -> None:
    """--model: a zoo or shipped model name, or an ONNX file; `repeatable` collects several
    into `models` (the caller fills in the default)."""
    if default is None:
        help_text = "zoo or shipped model name, or .onnx file (default: the mapping file's)"
    else:
        help_text = (
            f"zoo or shipped model name, or .onnx file (default {default}; list them with "
            "`python -m milp_map.zoo --list`)"
        )
    if repeatable:
        help_text += "; repeat it with --schedule concurrent to map several networks at once"
        parser.add_argument(
            "--model", action="append", dest="models", metavar="MODEL", help=help_text
        )
        return
    parser.add_argument("--model", default=default, help=help_text)


def add_platform(parser: argparse.ArgumentParser, default: str | None) -> None:
    """--platform: a preset name or a platform YAML file."""
    which = "the mapping file's" if default is None else default
    parser.add_argument(
        "--platform",
        default=default,
        help=f"preset ({', '.join(preset_names())}) or platform YAML file (default: {which})",
    )


def add_scores(parser: argparse.ArgumentParser) -> None:
    """--sensitivity and --groups: the proxy's scores and the layers mapped together."""
    parser.add_argument(
        "--sensitivity",
        help="CSV of layer,precision,score (default: the shipped scores of a zoo or shipped "
        "model, else data-free scores computed from the model's weights)",
    )
    parser.add_argument("--groups", help="CSV of [network,]group,layer: layers mapped as one unit")


def add_bounds(parser: argparse.ArgumentParser, fraction_default: str) -> None:
    """--max-latency, --max-energy, --max-proxy, --max-proxy-fraction."""
    parser.add_argument("--max-latency", type=float, metavar="SECONDS")
    parser.add_argument("--max-energy", type=float, metavar="JOULES")
    parser.add_argument("--max-proxy", type=float, metavar="SCORE", help="absolute proxy budget")
    parser.add_argument(
        "--max-proxy-fraction",
        type=float,
        metavar="F",
        help="proxy budget as a fraction of the way from the lowest to the highest achievable "
        f"proxy ({fraction_default})",
    )


SOLVE_FRACTION_DEFAULT = (
    f"default {DEFAULT_PROXY_FRACTION} unless --max-proxy is given; 1 = no budget"
)


def add_granularity(parser: argparse.ArgumentParser) -> None:
    """--granularity and --group-size."""
    parser.add_argument(
        "--granularity",
        choices=("layer", "channel"),
        default="layer",
        help="layer: each layer on one accelerator; channel: split a layer's output channels "
        "across accelerators that run in parallel (ODiMO's fine-grain mapping)",
    )
    parser.add_argument(
        "--group-size",
        type=int,
        default=DEFAULT_GROUP_SIZE,
        metavar="G",
        help="channel granularity: parts are multiples of G channels "
        f"(default {DEFAULT_GROUP_SIZE}, or the layer's channel count if smaller)",
    )


def add_solver(parser: argparse.ArgumentParser, solver_help: str) -> None:
    """--solver and --time-limit."""
    parser.add_argument("--solver", choices=SOLVER_CHOICES, default="auto", help=solver_help)
    parser.add_argument("--time-limit", type=float, metavar="SECONDS", help="stop after this long")


def bounds_of(args: argparse.Namespace) -> dict[str, float | None]:
    """The bound flags as `load_problem` keywords."""
    return {
        "max_latency_s": args.max_latency,
        "max_energy_j": args.max_energy,
        "max_proxy": args.max_proxy,
        "max_proxy_fraction": args.max_proxy_fraction,
    }


def load_target(args: argparse.Namespace, model: str) -> Target:
    """The problem of `model` from the shared flags, with solve's default proxy budget (half
    the range) unless a proxy bound is given or the proxy is a --pareto quantity."""
    from milp_map.io.problems import load_problem

    bounds = bounds_of(args)
    sweeps_proxy = bool(args.pareto) and "proxy" in args.pareto
    if bounds["max_proxy_fraction"] is None and args.max_proxy is None and not sweeps_proxy:
        bounds["max_proxy_fraction"] = DEFAULT_PROXY_FRACTION
    return load_problem(
        model,
        args.platform,
        objective="energy" if args.objective == "energy" else "latency",
        sensitivity=args.sensitivity,
        groups=args.groups,
        granularity=args.granularity,
        group_size=args.group_size,
        **bounds,
    )


def check_positive(**counts: int | None) -> None:
    """Counts that must be >= 1, named by their flag (`jobs=...` is --jobs)."""
    for name, value in counts.items():
        if value is not None and value < 1:
            raise MilpMapError(f"--{name.replace('_', '-')} must be >= 1, got {value}")


def check_solver_limits(
    time_limit: float | None, gap: float | None = None, seed: int = 0, threads: int = 1
) -> None:
    """Solver limits a solver would reject with a cryptic status, named by their flags."""
    from milp_map.solvers.base import check_limits

    flags = {"time_limit": "--time-limit", "gap": "--gap", "threads": "--threads", "seed": "--seed"}
    check_limits(time_limit, gap, threads, seed, flags)


def run(
    body: Callable[[], int],
    interrupted: str = "interrupted",
    also: dict[type[BaseException], tuple[int, str]] | None = None,
) -> int:
    """`body()`'s exit code; a MilpMapError is one line on stderr and exit 2, an OSError (a
    file that cannot be read or written) one line and exit 1, Ctrl-C or SIGTERM exit 130.
    `also` maps further exception types to (exit code, text after the message)."""
    handled = tuple(also or {})
    try:
        with _term_as_ctrl_c():
            return body()
    except MilpMapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return EXIT_INTERRUPTED
    except handled as exc:
        code, suffix = next(v for k, v in (also or {}).items() if isinstance(exc, k))
        print(f"error: {exc}{suffix}", file=sys.stderr)
        return code
    except OSError as exc:  # a file that cannot be written or read: one line, exit 1
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_IO


@contextlib.contextmanager
def _term_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (a `timeout`, a batch scheduler, `kill`) is handled as Ctrl-C: the process sends
    itself SIGINT, so a solve stops with its best mapping, a front or sweep writes what it has,
    and sweep workers are ended, exactly as on Ctrl-C."""
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # SIGINT ignored (a background job of a script, a sweep worker): forwarding would
        # make SIGTERM a no-op, so it keeps its default, ending the process
        yield
        return
    previous = signal.signal(
        signal.SIGTERM, lambda signum, frame: os.kill(os.getpid(), signal.SIGINT)
    )
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
