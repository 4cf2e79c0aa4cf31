"""The ONNX reader: an .onnx file (or proto) -> the layer DAG of milp_map/core/graph.py.

The first stage of milp_map, in three steps: `model` checks the file, normalises it (order,
batch of one, constants folded by onnxruntime) and infers every shape; `kinds` says which
nodes are layers and which fold into their neighbours; `layers` and `dag` build the layers
(channels, sizes, MACs, weights) and the tensors between them.
"""

from milp_map.io.onnx.dag import load_onnx
from milp_map.io.onnx.kinds import FOLDED_OPS
from milp_map.io.onnx.model import node_names

__all__ = ["FOLDED_OPS", "load_onnx", "node_names"]
