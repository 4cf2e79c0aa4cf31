"""Cost models against measured hardware: every shipped measured run, predicted by the preset
and by a fit that did not see it.

    python -P benchmarks/cost_model_validation.py [--folds 5] [--seed 0] [--out FILE.md] [--all]

Runs: data/platforms/rockpi-n10/runs.csv (PiQi's whole-network runs on the Rock Pi N10, built
by benchmarks/data_prep/build_measured_runs.py) and data/platforms/xavier-haxconn/runs.csv
(HaX-CoNN's two whole-network GoogLeNet figures). Per network, k-fold cross-validation: each
run is predicted by milp_map.evaluation.fit fitted to the other folds, so every "fitted"
number below is on a run the fit did not see. The summary table is the README's; `--all`
prints every run (preset and fitted prediction beside the measurement).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from milp_map.evaluation.fit import (
    Prediction,
    cross_validate,
    measured_set,
    predict_subset,
    unchanged,
)
from milp_map.io.platforms import load_platform
from milp_map.io.runs import read_runs
from milp_map.resources import data_path

PLATFORMS = ("rockpi-n10", "xavier-haxconn")
WITHIN = 0.05
MIN_RUNS_TO_FIT = 6
"""Fewer runs than this per network are predicted by the preset only (nothing to hold out)."""


def network_predictions(
    platform: str, network: str, folds: int, seed: int
) -> tuple[list[Prediction], float | None]:
    """Every run of `network`: preset prediction and the out-of-fold fitted one; and the
    largest |correlation| of the held-out error with any term the fit adjusts (None when
    too few mixed runs): near 0 means the terms explain what they can."""
    loaded = load_platform(platform)
    runs = read_runs(data_path("platforms", platform, "runs.csv"), network)
    data = measured_set(loaded, runs, None)
    if len(runs) < MIN_RUNS_TO_FIT:
        identity = unchanged(frozenset({network}), data.static_power_w)
        return predict_subset(data, identity, list(range(len(runs)))), None
    preds = cross_validate(
        data.terms, data.runs, data.static_power_w, min(folds, len(runs)), seed, data.fixed_scale
    )
    mixed = [i for i, p in enumerate(preds) if p.mixed]
    if len(mixed) < MIN_RUNS_TO_FIT * 5:
        return preds, None
    errors = np.array([preds[i].latency_error(True) for i in mixed])
    columns = [
        [t.compute_s.get(a, 0.0) for t in (data.terms[i] for i in mixed)]
        for a in sorted({a for t in data.terms for a in t.compute_s})
    ]
    columns.append([data.terms[i].transfer_s for i in mixed])
    pairs = sorted({p for t in data.terms for p in t.crossings})
    columns += [[float(data.terms[i].crossings.get(p, 0)) for i in mixed] for p in pairs]
    found = [abs(np.corrcoef(errors, c)[0, 1]) for c in columns if np.std(c) > 0]
    return preds, max(found)


def _stats(errors: list[float]) -> str:
    if not errors:
        return "– | –"
    worst = max(errors, key=abs)
    good = sum(abs(e) <= WITHIN for e in errors)
    return f"{worst:+.1%} | {good}/{len(errors)}"


def summary_rows(platform: str, network: str, preds: list[Prediction], fitted: bool) -> list[str]:
    rows = []
    for kind, chosen in (
        ("mixed", [p for p in preds if p.mixed]),
        ("single", [p for p in preds if not p.mixed]),
    ):
        if not chosen:
            continue
        preset = _stats([p.latency_error(False) for p in chosen])
        after = _stats([p.latency_error(True) for p in chosen]) if fitted else "– | –"
        energy = [
            (p.preset_energy_j / p.run.energy_j - 1, p.fitted_energy_j / p.run.energy_j - 1)
            for p in chosen
            if p.run.energy_j and p.fitted_energy_j
        ]
        e_cells = (
            f"{_stats([e[0] for e in energy])} | {_stats([e[1] for e in energy])}"
            if energy
            else "– | – | – | –"
        )
        rows.append(
            f"| {platform} | {network} | {kind} | {len(chosen)} | {preset} | {after} | {e_cells} |"
        )
    return rows


def repeatability(preds: list[Prediction]) -> str:
    """How far apart the same mapping measured twice is: the floor under any model's error."""
    seen: dict[tuple[str, tuple], list[float]] = {}
    for p in preds:
        key = (p.run.network, tuple(sorted(p.run.mapping.items(), key=str)))
        seen.setdefault(key, []).append(p.run.latency_s)
    spreads = [max(v) / min(v) - 1 for v in seen.values() if len(v) > 1]
    if not spreads:
        return ""
    return (
        f"The same mapping measured twice ({len(spreads)} pairs) differs by up to "
        f"{max(spreads):.1%} (median {np.median(spreads):.1%})."
    )


def run_rows(preds: list[Prediction]) -> list[str]:
    rows = []
    for p in preds:
        rows.append(
            f"| {p.run.network} | {p.run.run} | {'mixed' if p.mixed else 'single'} | "
            f"{p.run.latency_s * 1e3:.2f} | {p.preset_latency_s * 1e3:.2f} | "
            f"{p.latency_error(False):+.1%} | {p.fitted_latency_s * 1e3:.2f} | "
            f"{p.latency_error(True):+.1%} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fold split")
    parser.add_argument("--out", type=Path, help="also write the tables to this Markdown file")
    parser.add_argument("--all", action="store_true", help="print every run, not only the summary")
    args = parser.parse_args()
    lines = [
        f"Latency error (predicted / measured - 1) per network; 'fitted' is {args.folds}-fold "
        "cross-validated (each run predicted by a fit to the other folds). Worst error and "
        f"runs within {WITHIN:.0%}.",
        "",
        "| platform | network | kind | runs | preset worst | preset within 5% | fitted worst "
        "| fitted within 5% | energy preset worst | within 5% | energy fitted worst | within 5% |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    every: list[Prediction] = []
    notes: list[str] = []
    for platform in PLATFORMS:
        runs = read_runs(data_path("platforms", platform, "runs.csv"))
        for network in dict.fromkeys(r.network for r in runs):
            preds, correlation = network_predictions(platform, network, args.folds, args.seed)
            fitted = len(preds) >= MIN_RUNS_TO_FIT
            lines += summary_rows(platform, network, preds, fitted)
            every += preds
            if correlation is not None:
                notes.append(
                    f"{network}: held-out error against every fitted term of its mixed runs, "
                    f"largest |correlation| {correlation:.2f}."
                )
            print(f"{platform}/{network}: {len(preds)} runs", file=sys.stderr)
    mixed = [abs(p.latency_error(True)) for p in every if p.mixed]
    lines += [
        "",
        f"Mixed runs within {WITHIN:.0%} after the fit (held out): "
        f"{sum(e <= WITHIN for e in mixed)}/{len(mixed)}; median |error| "
        f"{np.median(mixed):.1%}. {repeatability(every)}",
        *notes,
    ]
    if args.all:
        lines += [
            "",
            "| network | run | kind | measured ms | preset ms | error | fitted ms | error |",
            "|---|---|---|---|---|---|---|---|",
            *run_rows(every),
        ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
