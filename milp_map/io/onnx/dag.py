"""The reader's last stage: walk the nodes in order, start a layer at each layer node, fold the
cheap ops into their producer, and wire the tensors between layers into the layer DAG."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace

import onnx

from milp_map.core.graph import OP_KINDS, InvalidLayer, Layer, LayerGraph, assemble
from milp_map.errors import MilpMapError
from milp_map.io.onnx.kinds import ELEMENTWISE, FOLD, STATIC, classify
from milp_map.io.onnx.layers import make_layer
from milp_map.io.onnx.model import ModelView, Node, read_model

ADDITIVE_OPS = frozenset({"Add", "Sum"})
"""Element-wise ops whose layer (when their operands come from different layers) is `add`."""


def load_onnx(
    source: str | os.PathLike[str] | onnx.ModelProto, name: str | None = None
) -> LayerGraph:
    """Read an ONNX model (path or in-memory proto) into a LayerGraph of folded layers.

    Every problem with the input raises MilpMapError with a one-line message naming the file.
    """
    model, origin = read_model(source, name)
    view = ModelView.build(model, origin.label, origin.base_dir)
    builder = DagBuilder(view)
    for node in view.nodes:
        kind = classify(node, view)
        if kind == FOLD:
            builder.fold(node)
        elif kind == ELEMENTWISE:
            builder.elementwise(node)
        elif kind != STATIC:
            builder.add_layer(node, kind)
    graph = builder.finish(origin.name, origin.source)
    return replace(graph, model=view.export_model)


@dataclass
class _Draft:
    """A layer while the nodes after it are still being folded in."""

    layer: Layer
    node: Node
    folded: list[Node] = field(default_factory=list)
    output: str = ""


class DagBuilder:
    """Walks nodes in topological order, folding cheap ops and wiring layer-to-layer edges."""

    def __init__(self, view: ModelView) -> None:
        self.view = view
        self.drafts: dict[str, _Draft] = {}
        self.owner: dict[str, str] = {}
        self.prelude: dict[str, tuple[Node, ...]] = dict.fromkeys(view.graph_inputs, ())
        self.edges: dict[tuple[str, str], int] = {}

    def add_layer(self, node: Node, kind: str) -> None:
        """Start a layer at `node`; graph-input-side folded nodes feeding it join the layer."""
        try:
            layer = make_layer(kind, node, self.view)
        except InvalidLayer as exc:
            raise MilpMapError(f"{self.view.label}: {exc}; check the model's shapes") from exc
        draft = _Draft(layer, node, output=node.outputs[0])
        for tensor in dict.fromkeys(self.view.activation_inputs(node)):
            if tensor in self.owner:
                key = (self.owner[tensor], node.name)
                self.edges[key] = self.edges.get(key, 0) + self.view.elems(tensor, node)
            else:
                draft.folded.extend(n for n in self.prelude[tensor] if n not in draft.folded)
        self.drafts[node.name] = draft
        self.owner.update(dict.fromkeys(node.outputs, node.name))

    def elementwise(self, node: Node) -> None:
        """An element-wise op: folded when its run-time operands come from one layer (or all
        from the graph-input side), else a layer of its own (`add` or `eltwise`)."""
        tensors = self.view.activation_inputs(node)
        owners = set(self.owner.get(tensor) for tensor in tensors)
        if node.op in ADDITIVE_OPS and len(tensors) >= 2:
            self.add_layer(node, "add")
        elif len(owners) == 1:
            self.fold(node)
        else:
            self.add_layer(node, "eltwise")

    def fold(self, node: Node) -> None:
        """Fold `node` into the single layer producing its activations (or the graph-input side)."""
        tensors = self.view.activation_inputs(node)
        owners = list(dict.fromkeys(self.owner.get(tensor) for tensor in tensors))
        if len(owners) > 1:
            sources = " and ".join(
                f"layer '{owner}'" if owner else "the graph input" for owner in owners
            )
            raise self.view.fail(
                node,
                f"combines the outputs of {sources}; milp_map folds {node.op} only into a single "
                "producer layer; export the model without it or open an issue",
            )
        owner = owners[0]
        if owner is None:
            chain = tuple(dict.fromkeys(n for tensor in tensors for n in self.prelude[tensor]))
            self.prelude.update(dict.fromkeys(node.outputs, (*chain, node)))
            return
        draft = self.drafts[owner]
        draft.folded.append(node)
        draft.output = node.outputs[0]
        self.owner.update(dict.fromkeys(node.outputs, owner))

    def finish(self, name: str, source: str) -> LayerGraph:
        """Freeze the drafts into layers (folded nodes after the main one, in data-flow order)."""
        if not self.drafts:
            ops = sorted({node.op for node in self.view.nodes})
            found = f"only {', '.join(ops)}" if ops else "no nodes"
            raise MilpMapError(
                f"{self.view.label}: the model has no layer ({found}); milp_map needs at least "
                f"one {', '.join(OP_KINDS)} node"
            )
        layers = []
        for draft in sorted(self.drafts.values(), key=lambda d: d.node.index):
            folded = sorted(draft.folded, key=lambda n: n.position)
            output_elems = (
                draft.layer.output_elems
                if len(draft.node.outputs) > 1
                else self.view.elems(draft.output, draft.node)
            )
            layers.append(
                replace(
                    draft.layer,
                    output_elems=output_elems,
                    onnx_nodes=(draft.node.name, *(n.name for n in folded)),
                    channel_group=self._head_width(draft),
                )
            )
        return assemble(name, source, layers, self.edges)

    def _head_width(self, draft: _Draft) -> int:
        """For a gemm whose output features are reshaped into heads, (..., H * D) -> (..., H, D)
        (or (..., 3, H, D) for packed q, k, v), in its own folded nodes or in a slice layer
        that reads it: the smallest such D, else 1."""
        if draft.layer.op != "gemm":
            return 1
        readers = [
            self.drafts[dst]
            for (src, dst) in self.edges
            if src == draft.node.name and self.drafts[dst].layer.op == "slice"
        ]
        widths = [
            width
            for node in (n for d in (draft, *readers) for n in d.folded if n.op == "Reshape")
            if (width := self._split_width(node)) > 1 and draft.layer.out_channels % width == 0
        ]
        return min(widths, default=1)

    def _split_width(self, node: Node) -> int:
        """D when a Reshape splits the last dim F into trailing (..., H, D) (the leading dims
        may merge or split, as `view(seq, batch * heads, head_dim)` does), else 1."""
        before = self.view.shapes.get(node.inputs[0]) or ()
        after = self.view.shapes.get(node.outputs[0]) or ()
        if not before or len(after) < 2 or None in before or None in after:
            return 1
        features, rows = before[-1], math.prod(before[:-1])  # type: ignore[arg-type]
        for k in range(2, len(after) + 1):
            if math.prod(after[-k:]) == features and math.prod(after[:-k]) == rows:  # type: ignore[arg-type]
                width = int(after[-1])  # type: ignore[arg-type]
                return width if width < features else 1
        return 1
