"""Accuracy-proxy scores as data: one score per (layer, precision), optionally per channel.

A mapping's proxy is the sum over layers of the score of the precision its accelerator runs
(HAWQ-style Omega = Hessian trace * ||Q_p(W) - W||^2; data-free scores drop the trace). Read
and computed by milp_map/io/scores.py (files, data-free) and milp_map/accuracy/hessian.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Sensitivity:
    """Scores keyed by (layer, precision); `kind` says how they were made ('file', 'data-free')."""

    scores: Mapping[tuple[str, str], float]
    source: str
    kind: str
    channel_scores: Mapping[tuple[str, str], np.ndarray] = field(default_factory=dict)
    """Optional per-output-channel scores, (layer, precision) -> array indexed by channel;
    `scores` then holds their sums, so layer-wise mode reads the same file."""

    def score(self, layer: str, precision: str) -> float | None:
        return self.scores.get((layer, precision))

    @property
    def layers(self) -> set[str]:
        return {layer for layer, _ in self.scores}

    def to_frame(self) -> pd.DataFrame:
        rows = [(layer, p, s) for (layer, p), s in self.scores.items()]
        return pd.DataFrame(rows, columns=["layer", "precision", "score"])
