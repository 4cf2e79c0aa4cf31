"""Weight fake-quantisation in torch, mirroring milp_map/core/quantize.py, for fine-tuning.

Why: quantisation-aware training recomputes every quantised weight from its latent fp32 copy at
each step, exactly as `export` quantises (the layer as a whole at the part's precision, then
the part's output channels), and lets gradients pass the rounding straight through (STE,
Bengio et al. 2013). `derive` turns a source weight into one initializer of the mapped model,
as recorded by export.rewrite_mapped.
"""

from __future__ import annotations

from collections.abc import Callable

from milp_map.accuracy.export import Derived
from milp_map.core.quantize import QUANTIZERS
from milp_map.errors import MilpMapError

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise MilpMapError(
        "torch is not installed; fine-tuning needs it: pip install 'milp_map[torch]'"
    ) from exc

Tensor = torch.Tensor


def _symmetric_per_tensor(weight: Tensor, bits: int) -> Tensor:
    levels = 2 ** (bits - 1) - 1
    peak = float(weight.detach().abs().max()) if weight.numel() else 0.0
    if peak == 0.0:
        return weight
    scale = torch.tensor(peak / levels, dtype=weight.dtype)
    return torch.clamp(torch.round(weight / scale), -levels, levels) * scale


def _ternary(weight: Tensor) -> Tensor:
    """{-a, 0, +a} per output channel: threshold 0.7 mean|W_c|, a_c the mean of |W_c| above it."""
    flat = weight.reshape(weight.shape[0], -1) if weight.dim() > 1 else weight.reshape(1, -1)
    magnitude = flat.abs()
    threshold = 0.7 * magnitude.mean(dim=1, keepdim=True)
    kept = (magnitude > threshold).to(weight.dtype)
    count = torch.clamp(kept.sum(dim=1, keepdim=True), min=1.0)
    scale = (magnitude * kept).sum(dim=1, keepdim=True) / count
    return (torch.sign(flat) * kept * scale).reshape(weight.shape)


TORCH_QUANTIZERS: dict[str, Callable[[Tensor], Tensor]] = {
    "fp32": lambda w: w,
    "fp16": lambda w: w.half().to(w.dtype),
    "int8": lambda w: _symmetric_per_tensor(w, 8),
    "int4": lambda w: _symmetric_per_tensor(w, 4),
    "ternary": _ternary,
}
"""The torch twin of milp_map.core.quantize.QUANTIZERS (output channels first)."""

assert set(TORCH_QUANTIZERS) == set(QUANTIZERS), "every precision needs a torch twin"


def fake_quantize(weight: Tensor, precision: str) -> Tensor:
    """The quantised weight in the forward pass, the identity in the backward pass (STE)."""
    if precision not in TORCH_QUANTIZERS:
        raise MilpMapError(
            f"precision '{precision}' has no quantizer; known: {', '.join(TORCH_QUANTIZERS)}"
        )
    quantised = TORCH_QUANTIZERS[precision](weight.detach())
    return weight + (quantised - weight).detach()


def derive(rule: Derived, latent: Tensor) -> Tensor:
    """The mapped model's initializer that `rule` computes from the latent source tensor."""
    if rule.kind == "bias":
        return latent if rule.channels is None else latent[..., list(rule.channels)]
    if rule.kind == "table":
        columns = latent.reshape(latent.shape[0], -1).T
        return fake_quantize(columns, str(rule.precision)).T.reshape(latent.shape)
    out_first = _to_out_first(latent, rule)
    quantised = fake_quantize(out_first, str(rule.precision))
    if rule.channels is not None:
        quantised = quantised[list(rule.channels)]
    return _from_out_first(quantised, rule)


def _to_out_first(weight: Tensor, rule: Derived) -> Tensor:
    """Output channels on axis 0 (export._Layout.to_out_first)."""
    if rule.groups == 1:
        return torch.movedim(weight, rule.weight_axis, 0)
    return _regroup(weight, rule.groups)


def _from_out_first(weight: Tensor, rule: Derived) -> Tensor:
    if rule.groups == 1:
        return torch.movedim(weight, 0, rule.weight_axis)
    return _regroup(weight, rule.groups)


def _regroup(weight: Tensor, groups: int) -> Tensor:
    """Grouped ConvTranspose weights (C_in, C_out/g, k...) <-> (C_out, C_in/g, k...)."""
    kernel = weight.shape[2:]
    grouped = weight.reshape(groups, weight.shape[0] // groups, weight.shape[1], *kernel)
    return grouped.transpose(1, 2).reshape(
        groups * weight.shape[1], weight.shape[0] // groups, *kernel
    )
