"""Real networks through the front door: torchvision and transformers architectures (random
weights), exported with both torch exporters, loaded, and solved on diana and jetson-xavier.

    python benchmarks/real_networks.py [--models resnet18 bert_tiny ...] [--cache DIR]
        [--time-limit 60] [--granularities layer channel] [--platforms diana jetson-xavier]
        [--channel-solver auto|cpsat|highs] [--exporters torchscript dynamo]

Needs torch (milp_map[torch]), onnxscript (torch's default exporter), torchvision==0.28.0 and
transformers; nothing is downloaded: weights are random, transformers build from configs.
torchvision's PyPI wheel for the CPU build of torch 2.13 needs its two op-registration modules
stubbed out, which this script does. Exports are cached in --cache (default: a temporary
folder). Prints one row per (model, exporter, platform, granularity): ONNX nodes, layers,
load time, solve status and time, with the default proxy budget (half the range).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform as host
import sys
import tempfile
import time
import types
import warnings
from pathlib import Path

import onnx
import pandas as pd
import torch

from milp_map.errors import MilpMapError
from milp_map.io.onnx import load_onnx
from milp_map.io.problems import load_problem
from milp_map.pipeline import solve
from milp_map.solvers import SolverSettings

PLATFORMS = ("diana", "jetson-xavier")
EXPORTERS = ("torchscript", "dynamo")
IMAGE = 224

TORCHVISION = {
    "alexnet": {},
    "convnext_tiny": {},
    "densenet121": {},
    "efficientnet_b0": {},
    "efficientnet_v2_s": {},
    "googlenet": {"aux_logits": False, "init_weights": True},
    "inception_v3": {"aux_logits": False, "init_weights": True, "size": 299},
    "maxvit_t": {},
    "mnasnet0_5": {},
    "mobilenet_v2": {},
    "mobilenet_v3_small": {},
    "regnet_y_400mf": {},
    "resnet18": {},
    "resnet50": {},
    "resnext50_32x4d": {},
    "shufflenet_v2_x1_0": {},
    "squeezenet1_0": {},
    "swin_t": {},
    "swin_v2_t": {},
    "vgg11": {},
    "vit_b_16": {},
    "wide_resnet50_2": {},
    "deeplabv3_mobilenet_v3_large": {"weights_backbone": None, "aux_loss": False},
    "fcn_resnet50": {"weights_backbone": None, "aux_loss": False},
    "lraspp_mobilenet_v3_large": {"weights_backbone": None},
}
"""torchvision classification and segmentation architectures, with their keyword options."""
TRANSFORMERS = ("bert_tiny", "gpt2_tiny", "vit_tiny")


def import_torchvision():
    """torchvision beside the CPU build of torch 2.13: its compiled ops are registered for
    another build, so the two modules that register them are stubbed (nothing here uses them)."""
    for name in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
        sys.modules.setdefault(name, types.ModuleType(name))
    import torchvision

    return torchvision


def build(name: str) -> tuple[torch.nn.Module, tuple]:
    """(eval-mode torch module returning one tensor, example inputs) for a model name."""
    torch.manual_seed(0)
    if name in TRANSFORMERS:
        return _transformer(name)
    tv = import_torchvision()
    options = dict(TORCHVISION[name])
    size = options.pop("size", IMAGE)
    maker = getattr(tv.models, name, None) or getattr(tv.models.segmentation, name)
    model = maker(weights=None, **options).eval()
    return OneTensor(model).eval(), (torch.randn(1, 3, size, size),)


def _transformer(name: str) -> tuple[torch.nn.Module, tuple]:
    """Tiny BERT, GPT-2 and ViT from transformers configs (random weights, no download)."""
    import_torchvision()  # transformers imports torchvision when it is installed
    import transformers as hf

    tokens = (torch.randint(0, 1000, (1, 16)),)
    if name == "bert_tiny":
        config = hf.BertConfig(
            vocab_size=1000,
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=128,
            max_position_embeddings=64,
        )
        return OneTensor(hf.BertModel(config).eval()).eval(), tokens
    if name == "gpt2_tiny":
        config = hf.GPT2Config(vocab_size=1000, n_embd=64, n_layer=2, n_head=4, n_positions=64)
        return OneTensor(hf.GPT2Model(config).eval(), with_mask=True).eval(), tokens
    config = hf.ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        num_labels=10,
    )
    model = hf.ViTForImageClassification(config).eval()
    return OneTensor(model).eval(), (torch.randn(1, 3, 32, 32),)


class OneTensor(torch.nn.Module):
    """The model's main output as one tensor (segmentation `out`, logits, hidden states)."""

    def __init__(self, model: torch.nn.Module, with_mask: bool = False) -> None:
        super().__init__()
        self.model = model
        self.with_mask = with_mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_mask:  # GPT-2's default mask needs an op TorchScript cannot export
            y = self.model(input_ids=x, attention_mask=torch.ones_like(x), use_cache=False)
        else:
            y = self.model(x)
        for key in ("logits", "last_hidden_state"):
            if hasattr(y, key):
                return getattr(y, key)
        return y["out"] if isinstance(y, dict) else y


def export(name: str, exporter: str, folder: Path) -> Path:
    """NAME_EXPORTER.onnx in `folder` (reused when it is there)."""
    path = folder / f"{name}_{exporter}.onnx"
    if path.is_file():
        return path
    module, inputs = build(name)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.backends.mha.set_fastpath_enabled(False)
        with torch.no_grad():
            torch.onnx.export(
                module, inputs, str(path), dynamo=exporter == "dynamo", opset_version=18
            )
    return path


def run(
    names: list[str],
    folder: Path,
    granularities: list[str],
    time_limit_s: float,
    platforms: list[str],
    solvers: dict[str, tuple[str, int]],
    exporters: tuple[str, ...] = EXPORTERS,
    fp32_check: bool = False,
) -> pd.DataFrame:
    rows = []
    for name in names:
        for exporter in exporters:
            row: dict[str, object] = {"model": name, "exporter": exporter}
            try:
                path = export(name, exporter, folder)
            except Exception as exc:  # the exporter's own failure, not milp_map's
                rows.append({**row, "status": f"export failed: {_first(exc)}"})
                continue
            nodes = len(onnx.load(path, load_external_data=False).graph.node)
            start = time.perf_counter()
            try:
                graph = load_onnx(path)
            except MilpMapError as exc:
                rows.append({**row, "onnx_nodes": nodes, "status": f"refused: {_first(exc)}"})
                continue
            load_s = time.perf_counter() - start
            row.update(onnx_nodes=nodes, layers=len(graph), load_s=load_s)
            if fp32_check:
                row["fp32_max_diff"] = fp32_identity(path, graph, folder)
            for platform in platforms:
                for granularity in granularities:
                    backend = solvers[granularity]
                    rows.append(
                        {**row, **_solve(graph, platform, granularity, time_limit_s, backend)}
                    )
            print(f"{name} {exporter}: {len(graph)} layers", file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def fp32_identity(path: Path, graph: object, folder: Path) -> float:
    """Largest |difference| between the source model's outputs and those of its exported
    min-latency mapping on two fp32 accelerators, on one seeded input, both run by
    onnxruntime with its own graph rewrites off (0.0: the same bits)."""
    import numpy as np
    import onnxruntime as ort

    from milp_map.accuracy.export import export_mapped, plan_of, sample_inputs

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from platforms import FP32_PLATFORM  # the tests' two fp32 accelerators

    platform = folder / "fp32.yaml"
    platform.write_text(FP32_PLATFORM)
    problem = load_problem(graph, platform, max_proxy_fraction=1.0)  # type: ignore[arg-type]
    solution = solve(problem, "highs").solution
    mapped = export_mapped(graph.model, graph, plan_of(problem, solution.mapping))  # type: ignore[attr-defined]
    feeds = sample_inputs(mapped, 1)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    runs = [
        ort.InferenceSession(model, options, providers=["CPUExecutionProvider"]).run(None, feeds)
        for model in (str(path), mapped.SerializeToString())
    ]
    return max(
        float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0.0))
        for a, b in zip(*runs, strict=True)
    )


SOLVERS = {"layer": ("auto", 1), "channel": ("auto", 1)}
"""(method, CP-SAT workers) per granularity: what `solve` picks (HiGHS layer-wise, the CP-SAT /
HiGHS portfolio for channel splits; benchmarks/solver_policy.py)."""


def _solve(
    graph: object,
    platform: str,
    granularity: str,
    time_limit_s: float,
    solver: tuple[str, int],
) -> dict:
    cell = {"platform": platform, "granularity": granularity}
    target = load_problem(graph, platform, max_proxy_fraction=0.5, granularity=granularity)  # type: ignore[arg-type]
    backend, threads = solver
    settings = SolverSettings(time_limit_s=time_limit_s, threads=threads)
    start = time.perf_counter()
    solution = solve(target, backend, settings).solution
    return {
        **cell,
        "status": solution.status,
        "solver": solution.method,
        "gap_pct": None if solution.gap is None else 100 * solution.gap,
        "latency_ms": None if solution.metrics is None else 1e3 * solution.metrics.latency_s,
        "solve_s": time.perf_counter() - start,
    }


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per platform and granularity: cells, how many are proven optimal, solve times, gaps."""
    rows = []
    solved = table[table["status"].isin(["optimal", "feasible"])]
    for (platform, granularity), cells in solved.groupby(["platform", "granularity"], sort=False):
        proven = cells[cells["status"] == "optimal"]
        open_gaps = cells.loc[cells["status"] != "optimal", "gap_pct"].astype(float)
        rows.append(
            {
                "platform": platform,
                "granularity": granularity,
                "solver": "/".join(sorted(set(cells["solver"]))),
                "solved": len(cells),
                "proven optimal": len(proven),
                "median s (proven)": proven["solve_s"].median() if len(proven) else None,
                "max s (proven)": proven["solve_s"].max() if len(proven) else None,
                "largest open gap %": open_gaps.max() if len(open_gaps) else None,
            }
        )
    return pd.DataFrame(rows)


def wide(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, exporter): nodes, layers, load time, and per platform and
    granularity the status ("0.12 s" when proven, "gap 0.5%" when stopped)."""
    keys = ["model", "exporter", "onnx_nodes", "layers", "load_s"]
    keys += ["fp32_max_diff"] if "fp32_max_diff" in table else []
    out = table[keys].drop_duplicates(["model", "exporter"]).set_index(["model", "exporter"])
    for (platform, granularity), cells in table.groupby(["platform", "granularity"], sort=False):
        column = f"{platform} {granularity}"
        cells = cells.set_index(["model", "exporter"])
        out[column] = [
            _cell(cells.loc[index]) if index in cells.index else "" for index in out.index
        ]
    return out.reset_index()


def _cell(row: pd.Series) -> str:
    if row["status"] == "optimal":
        return f"{row['solve_s']:.2g} s"
    if row["status"] == "feasible":
        return f"gap {float(row['gap_pct']):.2g}%"
    return str(row["status"])


def _first(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:120]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=[*TORCHVISION, *TRANSFORMERS])
    parser.add_argument("--cache", type=Path, help="folder for the exported .onnx files")
    parser.add_argument("--granularities", nargs="+", default=["layer", "channel"])
    parser.add_argument("--time-limit", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument("--platforms", nargs="+", default=list(PLATFORMS))
    parser.add_argument(
        "--channel-solver",
        choices=("auto", "cpsat", "highs"),
        default="auto",
        help="method of the channel cells (auto, default: the CP-SAT / HiGHS portfolio; "
        "cpsat: two workers; highs: one thread)",
    )
    parser.add_argument("--exporters", nargs="+", default=list(EXPORTERS), choices=EXPORTERS)
    parser.add_argument(
        "--fp32-check",
        action="store_true",
        help="also export an fp32 mapping of every model and compare its outputs with the source",
    )
    parser.add_argument("--csv", type=Path, help="also write the long table as CSV")
    parser.add_argument(
        "--reuse", type=Path, metavar="CSV", help="print the tables of a saved run (--csv)"
    )
    args = parser.parse_args()
    if args.reuse:
        report(pd.read_csv(args.reuse), None)
        return
    solvers = dict(SOLVERS)
    if args.channel_solver != "auto":
        solvers["channel"] = (args.channel_solver, 2 if args.channel_solver == "cpsat" else 1)
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.cache or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        table = run(
            args.models,
            folder,
            args.granularities,
            args.time_limit,
            args.platforms,
            solvers,
            tuple(args.exporters),
            args.fp32_check,
        )
    if args.csv:
        table.to_csv(args.csv, index=False)
    report(table, f"{host.node()} {host.machine()}, Python {host.python_version()}")


def report(table: pd.DataFrame, machine: str | None) -> None:
    if machine:
        print(f"# {machine}")
    print(summary(table).to_markdown(index=False, floatfmt=".3g"))
    print()
    print(wide(table).to_markdown(index=False, floatfmt=".3g"))
    print()
    print(table.to_markdown(index=False, floatfmt=".3g"))


if __name__ == "__main__":
    main()
