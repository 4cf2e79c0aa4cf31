"""Per-layer cost models: analytical (DIANA, roofline) and measured tables.

A cost model answers "how long does this layer take on this accelerator", optionally for only
`n_out` of its output channels (the channel-split mode needs that), or says it cannot run it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Protocol

from milp_map.core.graph import Layer

DIANA_FREQ_HZ = 260e6
"""DIANA's clock in ODiMO's cost model (Risso et al. 2024)."""

MAC_OPS = frozenset({"conv", "dwconv", "convtranspose", "gemm", "matmul"})


class AnalyticalModel(Protocol):
    """An analytical latency model: seconds for a layer, or None if the layer cannot run."""

    def latency_s(self, layer: Layer, n_out: int | None = None) -> float | None: ...


def _with_out_channels(layer: Layer, n_out: int | None) -> Layer:
    """The same layer restricted to `n_out` output channels (channel-group splits)."""
    if n_out is None or n_out == layer.out_channels:
        return layer
    if layer.op == "dwconv":
        return replace(layer, out_channels=n_out, in_channels=n_out, groups=n_out)
    return replace(layer, out_channels=n_out, channel_group=1)


def _conv_geometry(layer: Layer) -> tuple[int, int, int, int, int, int, int]:
    """(C_in, C_out, groups, KY, KX, OY, OX) with gemm seen as a 1x1 conv on a 1x1 map; a
    transposed conv scatters every input pixel, so its loop runs over the input map."""
    ky, kx = layer.kernel
    oy, ox = layer.in_hw if layer.op == "convtranspose" else layer.out_hw
    return layer.in_channels, layer.out_channels, layer.groups, ky, kx, oy, ox


@dataclass(frozen=True)
class DianaDigital:
    """DIANA's 8-bit digital engine (16x16 PEs), ODiMO's analytical model.

    cycles = ceil((C_out/groups)/16) * C_in * ceil(OX/16) * OY * KX * KY + OX*OY*(C_out+C_in)/8.
    Layers without MACs (add, pool, concat, softmax, resize) cost 0, as in ODiMO's model.
    """

    freq_hz: float = DIANA_FREQ_HZ

    def latency_s(self, layer: Layer, n_out: int | None = None) -> float | None:
        if layer.op not in MAC_OPS:
            return 0.0
        c_in, c_out, groups, ky, kx, oy, ox = _conv_geometry(_with_out_channels(layer, n_out))
        if c_out == 0:
            return 0.0
        compute = math.ceil((c_out / groups) / 16) * c_in * math.ceil(ox / 16) * oy * kx * ky
        io = ox * oy * (c_out + c_in) / 8
        return (compute + io) / self.freq_hz


@dataclass(frozen=True)
class DianaAnalog:
    """DIANA's analog in-memory engine (1152x512 ternary array), ODiMO's analytical model.

    u = largest of {1,2,4,8} with u*C_out <= 512 and (u+KX-1)*max(64,C_in)*KY <= 1152 (else 1);
    cycles = 8*C_in*KX*KY + ceil(C_out/512)*ceil(C_in/128)*OX*OY/u * 70e-9 * F.
    Only ungrouped conv and gemm layers run here; other MAC-free layers cost 0.
    """

    freq_hz: float = DIANA_FREQ_HZ

    def latency_s(self, layer: Layer, n_out: int | None = None) -> float | None:
        if layer.op not in MAC_OPS:
            return 0.0
        if layer.op not in ("conv", "gemm") or layer.groups != 1:
            return None
        c_in, c_out, _, ky, kx, oy, ox = _conv_geometry(_with_out_channels(layer, n_out))
        if c_out == 0:
            return 0.0
        unroll = 1
        for u in (8, 4, 2):
            if u * c_out <= 512 and (u + kx - 1) * max(64, c_in) * ky <= 1152:
                unroll = u
                break
        weight_load = 8 * c_in * kx * ky
        compute = math.ceil(c_out / 512) * math.ceil(c_in / 128) * ox * oy / unroll
        cycles = weight_load + compute * 70e-9 * self.freq_hz
        return cycles / self.freq_hz


@dataclass(frozen=True)
class Roofline:
    """A roofline accelerator: max(compute time, memory time) plus a fixed per-layer overhead.

    Approximate by construction: use it where no measured table exists.
    """

    macs_per_s: float
    bytes_per_s: float
    overhead_s: float = 0.0
    bytes_per_element: float = 1.0

    def latency_s(self, layer: Layer, n_out: int | None = None) -> float | None:
        part = _with_out_channels(layer, n_out)
        fraction = 1.0 if layer.out_channels == 0 else part.out_channels / layer.out_channels
        if fraction == 0:
            return 0.0
        macs = layer.macs * fraction
        elems = layer.input_elems + (layer.output_elems + layer.weight_count) * fraction
        compute = macs / self.macs_per_s
        memory = elems * self.bytes_per_element / self.bytes_per_s
        return self.overhead_s + max(compute, memory)


ANALYTICAL_MODELS: dict[str, type] = {
    "diana_digital": DianaDigital,
    "diana_analog": DianaAnalog,
    "roofline": Roofline,
}
