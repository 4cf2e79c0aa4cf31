"""Sensitivity scores in and out: score CSVs (per layer or per channel), the shipped files, and
data-free scores computed from a model's weights (||Q_p(W) - W||^2 per layer and precision)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from milp_map.core.graph import LayerGraph
from milp_map.core.quantize import QUANTIZERS, perturbation
from milp_map.core.scores import Sensitivity
from milp_map.defaults import DEFAULT_PRECISIONS
from milp_map.errors import MilpMapError
from milp_map.io.files import write_text_atomic
from milp_map.io.tables import read_csv_checked
from milp_map.resources import data_path


def load_sensitivity(path: str | Path) -> Sensitivity:
    """Read `layer,precision,score` rows; errors name the file, row and problem."""
    path = Path(path)
    frame = read_csv_checked(path, ("layer", "precision", "score"), "sensitivity")
    per_channel = "channel" in frame.columns
    scores: dict[tuple[str, str], float] = {}
    channel_rows: dict[tuple[str, str], dict[int, float]] = {}
    for row, rec in enumerate(frame.to_dict("records"), start=2):
        value = _score(path, row, rec["score"])
        key = (rec["layer"], rec["precision"])
        if per_channel:
            channel = _channel(path, row, rec["channel"])
            by_channel = channel_rows.setdefault(key, {})
            if channel in by_channel:
                raise MilpMapError(
                    f"{path}: row {row}: duplicate score for layer '{key[0]}' channel "
                    f"{channel} at {key[1]}"
                )
            by_channel[channel] = value
            continue
        if key in scores:
            raise MilpMapError(
                f"{path}: row {row}: duplicate score for layer '{key[0]}' at {key[1]}"
            )
        scores[key] = value
    channel_scores = {key: _dense(path, key, rows) for key, rows in channel_rows.items()}
    scores.update({key: float(values.sum()) for key, values in channel_scores.items()})
    if not scores:
        raise MilpMapError(f"{path}: no scores in the file")
    return Sensitivity(scores, str(path), "file", channel_scores)


def _score(path: Path, row: int, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise MilpMapError(f"{path}: row {row}: score is not a number: '{text}'") from None
    if not math.isfinite(value) or value < 0:
        raise MilpMapError(f"{path}: row {row}: score must be finite and >= 0, got {text}")
    return value


def _channel(path: Path, row: int, text: str) -> int:
    if not (text.strip().isascii() and text.strip().isdigit()):
        raise MilpMapError(f"{path}: row {row}: channel must be an integer >= 0, got '{text}'")
    return int(text)


def _dense(path: Path, key: tuple[str, str], rows: dict[int, float]) -> np.ndarray:
    """Channel rows 0..C-1 as an array; a gap is an error naming the first missing channel."""
    first_missing = next(c for c in range(len(rows) + 1) if c not in rows)
    if first_missing < max(rows):
        raise MilpMapError(
            f"{path}: layer '{key[0]}' at {key[1]} has no score for channel {first_missing}; "
            "per-channel rows must cover channels 0..C-1"
        )
    return np.array([rows[c] for c in range(len(rows))], dtype=float)


def data_free_sensitivity(
    graph: LayerGraph, precisions: Iterable[str] = DEFAULT_PRECISIONS
) -> Sensitivity:
    """Weight-perturbation scores ||Q_p(W) - W||^2 per layer, no data needed.

    Layers without weights (add, pool, concat, softmax, resize) score 0 at every precision.
    """
    precisions = tuple(precisions)
    unknown = [p for p in precisions if p not in QUANTIZERS]
    if unknown:
        raise MilpMapError(
            f"no quantizer for precision(s) {unknown}; known: {', '.join(QUANTIZERS)}"
        )
    scores: dict[tuple[str, str], float] = {}
    for layer in graph.layers():
        for precision in precisions:
            weight = layer.weight
            scores[(layer.name, precision)] = (
                0.0 if weight is None else perturbation(weight, precision)
            )
    return Sensitivity(scores=scores, source=f"data-free:{graph.name}", kind="data-free")


def shipped_sensitivity(model_name: str) -> Sensitivity | None:
    """The scores shipped for a model: Hessian (data/sensitivity/hessian/) when present, else
    data-free (data/sensitivity/data_free/); None if neither exists.

    `kind` says which ('hessian' or 'data-free') and `source` names the file.
    """
    for folder, kind in (("hessian", "hessian"), ("data_free", "data-free")):
        path = data_path("sensitivity", folder, f"{model_name}.csv")
        if path.is_file():
            loaded = load_sensitivity(path)
            return Sensitivity(loaded.scores, loaded.source, kind, loaded.channel_scores)
    return None


def write_sensitivity(sensitivity: Sensitivity, path: str | Path) -> None:
    """Write scores as CSV with a fixed float format so files are reproducible."""
    frame = sensitivity.to_frame()
    frame["score"] = frame["score"].map(lambda v: f"{v:.9g}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(frame.to_csv(index=False), path)


def write_channel_sensitivity(sensitivity: Sensitivity, path: str | Path) -> None:
    """Write per-channel scores as `layer,channel,precision,score` rows (fixed float format).

    Every (layer, precision) of `scores` needs its channel array; `load_sensitivity` reads the
    file back with the layer scores as the channel sums.
    """
    missing = [key for key in sensitivity.scores if key not in sensitivity.channel_scores]
    if missing:
        layer, precision = missing[0]
        raise MilpMapError(f"no per-channel scores for layer '{layer}' at {precision}")
    rows = [
        (layer, channel, precision, f"{value:.9g}")
        for (layer, precision) in sensitivity.scores
        for channel, value in enumerate(sensitivity.channel_scores[(layer, precision)])
    ]
    frame = pd.DataFrame(rows, columns=["layer", "channel", "precision", "score"])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(frame.to_csv(index=False), path)
