"""The numpy quantizers (no torch): idempotent, on their grids, and their error bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

from milp_map.core.quantize import QUANTIZERS, channel_perturbation, perturbation


def _weights(seed: int, shape: tuple[int, ...] = (6, 4, 3, 3)) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("precision", sorted(QUANTIZERS))
@pytest.mark.parametrize("shape", [(6, 4, 3, 3), (10, 48), (5,)])
def test_quantizers_round_trip(precision: str, shape: tuple[int, ...]) -> None:
    """Q(Q(W)) == Q(W): a quantized tensor is already on the grid; shape and dtype are kept."""
    weight = _weights(1, shape)
    once = QUANTIZERS[precision](weight)
    assert once.shape == weight.shape and once.dtype == weight.dtype
    np.testing.assert_allclose(QUANTIZERS[precision](once), once, rtol=0, atol=1e-6)


def test_fp32_is_exact_and_fp16_is_half_precision() -> None:
    weight = _weights(2)
    assert perturbation(weight, "fp32") == 0.0
    half = QUANTIZERS["fp16"](weight)
    np.testing.assert_array_equal(half, weight.astype(np.float16).astype(np.float32))


@pytest.mark.parametrize(("precision", "levels"), [("int8", 127), ("int4", 7)])
def test_integer_grid_per_layer(precision: str, levels: int) -> None:
    """One scale for the tensor: values are integer multiples of max|W| / levels."""
    weight = _weights(3)
    scale = np.abs(weight).max() / levels
    steps = QUANTIZERS[precision](weight) / scale
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-4)
    assert np.abs(steps).max() == pytest.approx(levels)
    assert np.abs(QUANTIZERS[precision](weight) - weight).max() <= scale / 2 + 1e-6


def test_ternary_has_one_scale_per_output_channel() -> None:
    weight = _weights(4)
    ternary = QUANTIZERS["ternary"](weight).reshape(weight.shape[0], -1)
    for row in ternary:
        magnitudes = np.unique(np.abs(row[row != 0]))
        assert len(magnitudes) == 1
    assert len({float(np.abs(row).max()) for row in ternary}) == weight.shape[0]


def test_error_order_and_channel_sums() -> None:
    """Coarser grids perturb more; per-channel errors add up to the layer's error."""
    weight = _weights(5)
    errors = [perturbation(weight, p) for p in ("fp32", "fp16", "int8", "int4")]
    assert errors == sorted(errors) and errors[0] == 0.0 < errors[1]
    for precision in QUANTIZERS:
        per_channel = channel_perturbation(weight, precision)
        assert per_channel.shape == (weight.shape[0],)
        assert per_channel.sum() == pytest.approx(perturbation(weight, precision), rel=1e-9)


def test_all_zero_weights_stay_zero() -> None:
    weight = np.zeros((3, 2, 3, 3), dtype=np.float32)
    for precision, quantize in QUANTIZERS.items():
        np.testing.assert_array_equal(quantize(weight), weight, err_msg=precision)
