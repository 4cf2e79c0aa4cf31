"""The layer DAG every later stage reads: layers (what an accelerator runs as one job) and the
tensors between them. Built by the ONNX reader (milp_map/io/onnx.py) or by hand for tests.

A *layer* is a conv, gemm, pool, ... with the cheap element-wise and reshaping nodes around it
folded in; shapes are for a batch of one.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from milp_map.errors import MilpMapError

if TYPE_CHECKING:
    import pandas as pd


OP_KINDS: tuple[str, ...] = (
    "conv",
    "dwconv",
    "convtranspose",
    "gemm",
    "matmul",
    "add",
    "eltwise",
    "concat",
    "pool",
    "softmax",
    "resize",
    "norm",
    "reduce",
    "embedding",
    "slice",
)
"""What a layer can be: convolutions (conv, depthwise dwconv, transposed), gemm (a weight
matrix: Gemm, MatMul with a constant operand, fully connected), matmul (between two run-time
tensors: attention), add (residual) and eltwise (other element-wise ops between layers: gates),
concat, pool, softmax, resize, norm (layer, group, instance normalisation), reduce, embedding
(a lookup in a weight table) and slice (Slice, Split, Gather of run-time data)."""


class InvalidLayer(MilpMapError):
    """A Layer whose fields contradict each other; the ONNX loader adds the file to the message."""


@dataclass(frozen=True, eq=False)
class Layer:
    """One schedulable layer: the main ONNX node plus the nodes folded into it.

    Channels and spatial sizes read NCHW for conv-like ops and (rows, features) for gemm and
    matmul; the `in_*` fields describe the first activation input.
    """

    name: str
    op: str
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    groups: int
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    macs: int
    weight_count: int
    input_elems: int
    output_elems: int
    weight: np.ndarray | None = None
    onnx_nodes: tuple[str, ...] = ()
    channel_group: int = 1
    """Output channels that belong together (an attention head's width when the output is
    reshaped into heads): channel splits keep whole groups on one accelerator."""

    def __post_init__(self) -> None:
        if self.op not in OP_KINDS:
            raise InvalidLayer(
                f"layer '{self.name}': unknown op '{self.op}'; use one of {', '.join(OP_KINDS)}"
            )
        if self.in_channels < 1 or self.out_channels < 1:
            raise InvalidLayer(
                f"layer '{self.name}' ({self.op}) has {self.in_channels} input and "
                f"{self.out_channels} output channels; every layer needs at least one of each"
            )
        if self.channel_group < 1 or self.out_channels % self.channel_group:
            raise InvalidLayer(
                f"layer '{self.name}' ({self.op}) groups its {self.out_channels} output channels "
                f"by {self.channel_group}, which does not divide them"
            )
        if self.groups < 1 or self.in_channels % self.groups:
            raise InvalidLayer(
                f"layer '{self.name}' ({self.op}) has groups={self.groups}, which does not "
                f"divide its {self.in_channels} input channels"
            )


@dataclass(frozen=True)
class LayerGraph:
    """Layers as nodes of a DAG (attribute "layer"), tensors as edges (attribute "elems").

    Treat `dag` as read-only: the topological order is computed once and cached.
    """

    name: str
    dag: nx.DiGraph
    source: str
    model: Any = field(default=None, compare=False, repr=False)
    """The normalised ONNX model the layers were read from (an onnx.ModelProto; node names
    match the layers' `onnx_nodes`), for export and measurement; None for graphs made by hand."""

    @cached_property
    def _layers(self) -> tuple[Layer, ...]:
        insertion = {node: k for k, node in enumerate(self.dag.nodes)}
        order = nx.lexicographical_topological_sort(self.dag, key=insertion.__getitem__)
        return tuple(self.dag.nodes[node]["layer"] for node in order)

    @cached_property
    def _position(self) -> dict[str, int]:
        return {layer.name: k for k, layer in enumerate(self._layers)}

    def layers(self) -> list[Layer]:
        """Layers in topological order, ties broken by ONNX node (or insertion) order."""
        return list(self._layers)

    def layer(self, name: str) -> Layer:
        """The layer called `name`."""
        self._check_known(name)
        return self.dag.nodes[name]["layer"]

    def edges(self) -> list[tuple[str, str]]:
        """Producer -> consumer pairs, sorted by the topological position of both ends."""
        position = self._position
        return sorted(self.dag.edges, key=lambda edge: (position[edge[0]], position[edge[1]]))

    def predecessors(self, name: str) -> list[str]:
        """Layers whose output `name` reads, in topological order."""
        self._check_known(name)
        return sorted(self.dag.predecessors(name), key=self._position.__getitem__)

    def __len__(self) -> int:
        return self.dag.number_of_nodes()

    def _check_known(self, name: str) -> None:
        """Raise for an unknown layer name, suggesting the closest known one."""
        if name in self.dag:
            return
        close = difflib.get_close_matches(name, list(self.dag.nodes), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise MilpMapError(f"graph '{self.name}': no layer named '{name}'{hint}")


def graph_from_layers(
    name: str, layers: Sequence[Layer], edges: Sequence[tuple[str, str]]
) -> LayerGraph:
    """A LayerGraph from hand-made layers, for synthetic tests and benchmarks.

    Each edge carries the producer's `output_elems`; unknown names and cycles raise MilpMapError.
    """
    if not layers:
        raise MilpMapError(f"graph '{name}': no layers given; a layer graph needs at least one")
    by_name: dict[str, Layer] = {}
    for layer in layers:
        if layer.name in by_name:
            raise MilpMapError(
                f"graph '{name}': two layers are named '{layer.name}'; layer names must be unique"
            )
        by_name[layer.name] = layer
    weighted: dict[tuple[str, str], int] = {}
    for src, dst in edges:
        for end in (src, dst):
            if end not in by_name:
                raise MilpMapError(
                    f"graph '{name}': edge {src} -> {dst} names unknown layer '{end}'; "
                    "add the layer or fix the edge"
                )
        weighted[(src, dst)] = by_name[src].output_elems
    return assemble(name, "<memory>", list(layers), weighted)


def layer_table(graph: LayerGraph) -> pd.DataFrame:
    """One row per layer in topological order, for printing and quick inspection."""
    import pandas as pd

    columns = [
        "name",
        "op",
        "C_in",
        "C_out",
        "kernel",
        "stride",
        "groups",
        "out_hw",
        "macs",
        "weights",
    ]
    rows = [
        (
            layer.name,
            layer.op,
            layer.in_channels,
            layer.out_channels,
            layer.kernel,
            layer.stride,
            layer.groups,
            layer.out_hw,
            layer.macs,
            layer.weight_count,
        )
        for layer in graph.layers()
    ]
    return pd.DataFrame(rows, columns=columns)


def assemble(
    name: str, source: str, layers: list[Layer], edges: dict[tuple[str, str], int]
) -> LayerGraph:
    """Build the DAG in the given layer order (the topological tie-breaker) and reject cycles."""
    dag = nx.DiGraph()
    for layer in layers:
        dag.add_node(layer.name, layer=layer)
    for (src, dst), elems in edges.items():
        dag.add_edge(src, dst, elems=elems)
    if not nx.is_directed_acyclic_graph(dag):
        cycle = [src for src, _ in nx.find_cycle(dag)]
        path = " -> ".join([*cycle, cycle[0]])
        raise MilpMapError(
            f"graph '{name}': layers form a cycle {path}; a layer graph must be acyclic"
        )
    return LayerGraph(name=name, dag=dag, source=source)
