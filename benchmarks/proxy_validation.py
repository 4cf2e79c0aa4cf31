"""Does the accuracy proxy rank mappings like their measured accuracy? (issue 4, part 5)

Samples diverse mappings of the shipped real model on DIANA (proven optima at several proxy
budgets, layer-wise and channel-split, under the Hessian and the data-free proxy; ODiMO's
manual mappings and single-accelerator mappings; random layer-wise mappings; random channel
splits with random channel indices), exports each one quantised (milp_map.accuracy.export)
and measures its top-1 with onnxruntime on the test split. Prints the Spearman rank
correlation between proxy and measured drop for both proxies, and proxy vs accuracy of the
optimal mappings at three budgets.

    python benchmarks/proxy_validation.py [--hessian scores.csv] [--activations none]

(-P: do not put benchmarks/ first on sys.path, where a module could shadow the standard
library.)

Deterministic: seeded sampling, deterministic solvers, one onnxruntime thread.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

from milp_map.accuracy import calibration as cal
from milp_map.baselines.manual import manual_mappings
from milp_map.baselines.single import single_accelerator
from milp_map.core.problem import Constraints
from milp_map.core.split import build_split_problem
from milp_map.errors import MilpMapError
from milp_map.evaluation.evaluator import evaluate_split

FRACTIONS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
"""Proxy-budget fractions of the optimal mappings: dense at the low end, where the drop is
still small (post-training ternary weights cost tens of points quickly)."""
TABLE_FRACTIONS = (0.01, 0.05, 0.2)
N_RANDOM_LAYER = 20
N_RANDOM_SPLIT = 15


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mnist_resnet")
    parser.add_argument("--platform", default="diana")
    parser.add_argument("--data", default="mnist")
    parser.add_argument(
        "--hessian", help="Hessian scores CSV (default: data/sensitivity/hessian/MODEL.csv)"
    )
    parser.add_argument("--activations", choices=("platform", "none"), default="platform")
    parser.add_argument("--out", help="write every measured mapping as CSV")
    return parser.parse_args(argv)


def sample(hessian, free) -> list[tuple[str, dict]]:
    """Every distinct mapping to measure, named by how it was made."""
    split = build_split_problem(hessian, cal.DEFAULT_GROUP_SIZE)
    found = []
    for problem, tag in ((hessian, "hessian"), (free, "data-free")):
        for granularity in ("layer", "channel"):
            optima = cal.optimal_mappings(problem, FRACTIONS, granularity)
            found += [(f"{name} ({tag})", mapping) for name, mapping in optima]
    found += [(s.method, s.mapping) for s in manual_mappings(hessian) + single_accelerator(hessian)]
    found += cal.random_layer_mappings(hessian, N_RANDOM_LAYER, seed=1)
    found += cal.random_split_mappings(split, N_RANDOM_SPLIT, seed=2)
    return cal.distinct(found)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    hessian_path = args.hessian or cal.hessian_sensitivity_path(args.model)
    if hessian_path is None:
        print(
            f"error: no Hessian scores for {args.model}: run python -m milp_map.sensitivity "
            "or pass --hessian scores.csv",
            file=sys.stderr,
        )
        return 2
    try:
        hessian = cal.make_problem(args.model, args.platform, hessian_path)
        free = cal.make_problem(args.model, args.platform, cal.DATA_FREE)
    except MilpMapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    samples = sample(hessian, free)
    split_h = build_split_problem(hessian, cal.DEFAULT_GROUP_SIZE)
    split_f = build_split_problem(free, cal.DEFAULT_GROUP_SIZE)
    measurer = cal.Measurer(hessian.graph, args.data, args.activations == "platform")
    rows = []
    for name, mapping in samples:
        point = measurer.point(name, hessian, mapping, cal.split_proxy(split_h, mapping))
        metrics = evaluate_split(split_h, cal.with_indices(split_h, mapping)).metrics
        rows.append(
            {
                "mapping": name,
                "hessian_proxy": point.proxy,
                "data_free_proxy": cal.split_proxy(split_f, mapping),
                "top1": point.top1,
                "drop_pp": point.drop_pp,
                "loss": point.loss,
                "latency_us": metrics.latency_s * 1e6,
                "energy_uj": metrics.energy_j * 1e6,
                "split": any(len(parts) > 1 for parts in mapping.values()),
            }
        )
    frame = pd.DataFrame(rows)
    table = budget_rows(hessian, measurer)
    elapsed = time.perf_counter() - start
    report(frame, table, args, hessian_path, measurer.reference_top1, elapsed)
    if args.out:
        frame.to_csv(args.out, index=False, float_format="%.6g")
        print(f"wrote {args.out}")
    return 0


def report(
    frame: pd.DataFrame,
    budget_table: pd.DataFrame,
    args: argparse.Namespace,
    hessian_path: str | Path,
    reference: float,
    elapsed: float,
) -> None:
    print(
        f"model {args.model} on {args.platform}: {len(frame)} distinct mappings measured on the "
        f"{args.data} test split (fp32 top-1 {100 * reference:.2f}%), activations "
        f"{args.activations}; Hessian scores {Path(str(hessian_path)).name}; {elapsed:.0f} s"
    )
    print(
        f"sampled: optima at budget fractions {FRACTIONS} under both proxies, layer-wise and "
        f"channel-split; ODiMO manual and single-accelerator; {N_RANDOM_LAYER} random "
        f"layer-wise; {N_RANDOM_SPLIT} random channel splits (duplicates dropped)"
    )
    subsets = {
        "all": frame,
        "layer-wise": frame[~frame["split"]],
        "channel-split": frame[frame["split"]],
        "drop <= 10 points": frame[frame["drop_pp"] <= 10.0],
    }
    print("Spearman rank correlation with the measured top-1 drop (and with the loss increase):")
    for label, subset in subsets.items():
        cells = []
        for proxy in ("hessian_proxy", "data_free_proxy"):
            rho_drop = spearmanr(subset[proxy], subset["drop_pp"]).statistic
            rho_loss = spearmanr(subset[proxy], subset["loss"]).statistic
            cells.append(f"{proxy.removesuffix('_proxy')} {rho_drop:+.3f} ({rho_loss:+.3f})")
        print(f"  {label:<18} N={len(subset):3d}  " + "   ".join(cells))
    print("optimal DIANA mappings (min latency) at three Hessian proxy budgets:")
    print(budget_table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def budget_rows(hessian, measurer: cal.Measurer) -> pd.DataFrame:
    """Proxy vs measured accuracy of the min-latency optima at TABLE_FRACTIONS."""
    rows = []
    for granularity in ("layer", "channel"):
        for fraction in TABLE_FRACTIONS:
            bounded = replace(hessian, constraints=Constraints(max_proxy_fraction=fraction))
            ((name, mapping),) = cal.optimal_mappings(bounded, (fraction,), granularity)
            split = build_split_problem(bounded, cal.DEFAULT_GROUP_SIZE)
            point = measurer.point(name, bounded, mapping, cal.split_proxy(split, mapping))
            metrics = evaluate_split(split, cal.with_indices(split, mapping)).metrics
            rows.append(
                {
                    "granularity": granularity,
                    "fraction": fraction,
                    "budget": bounded.proxy_budget,
                    "proxy": point.proxy,
                    "top1_%": 100 * point.top1,
                    "drop_pp": point.drop_pp,
                    "latency_us": metrics.latency_s * 1e6,
                    "energy_uJ": metrics.energy_j * 1e6,
                }
            )
    return pd.DataFrame(rows)


if __name__ == "__main__":
    raise SystemExit(main())
