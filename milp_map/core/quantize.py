"""Weight quantizers for the precisions the presets use (numpy; torch code mirrors them).

Each takes a weight tensor with output channels first and returns its de-quantized copy, so
`||Q_p(W) - W||^2` is the perturbation a precision causes (HAWQ's Omega without the trace).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _symmetric_per_tensor(weight: np.ndarray, bits: int) -> np.ndarray:
    levels = 2 ** (bits - 1) - 1
    peak = float(np.max(np.abs(weight))) if weight.size else 0.0
    if peak == 0.0:
        return weight.copy()
    scale = peak / levels
    return np.clip(np.round(weight / scale), -levels, levels) * scale


def quantize_int8(weight: np.ndarray) -> np.ndarray:
    """Symmetric per-layer int8 (one scale for the tensor, levels -127..127)."""
    return _symmetric_per_tensor(weight, 8)


def quantize_int4(weight: np.ndarray) -> np.ndarray:
    """Symmetric per-layer int4 (levels -7..7)."""
    return _symmetric_per_tensor(weight, 4)


def quantize_ternary(weight: np.ndarray) -> np.ndarray:
    """Ternary per output channel {-a, 0, +a} (Ternary Weight Networks, Li et al. 2016).

    Threshold 0.7*mean|W_c| and scale a_c = mean of |W_c| above it, one per output channel
    as ODiMO does for DIANA's analog weights.
    """
    flat = weight.reshape(weight.shape[0], -1) if weight.ndim > 1 else weight.reshape(1, -1)
    magnitude = np.abs(flat)
    threshold = 0.7 * magnitude.mean(axis=1, keepdims=True)
    kept = magnitude > threshold
    count = np.maximum(kept.sum(axis=1, keepdims=True), 1)
    scale = (magnitude * kept).sum(axis=1, keepdims=True) / count
    return (np.sign(flat) * kept * scale).reshape(weight.shape).astype(weight.dtype)


def quantize_fp16(weight: np.ndarray) -> np.ndarray:
    """Round to IEEE half precision."""
    return weight.astype(np.float16).astype(weight.dtype)


def quantize_fp32(weight: np.ndarray) -> np.ndarray:
    """Full precision: the identity."""
    return weight.copy()


QUANTIZERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "fp32": quantize_fp32,
    "fp16": quantize_fp16,
    "int8": quantize_int8,
    "int4": quantize_int4,
    "ternary": quantize_ternary,
}


def perturbation(weight: np.ndarray, precision: str) -> float:
    """||Q_p(W) - W||^2 for one weight tensor."""
    w = weight.astype(np.float64)
    return float(np.sum((QUANTIZERS[precision](w) - w) ** 2))


def channel_perturbation(weight: np.ndarray, precision: str) -> np.ndarray:
    """Per-output-channel ||Q_p(W_c) - W_c||^2 (the layer quantized as a whole)."""
    w = weight.astype(np.float64)
    diff = (QUANTIZERS[precision](w) - w).reshape(w.shape[0], -1)
    return np.sum(diff**2, axis=1)
