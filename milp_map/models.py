"""Resolve `--model` (a zoo name or an .onnx path) to a layer graph."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from milp_map.errors import MilpMapError
from milp_map.graph import LayerGraph, load_onnx
from milp_map.zoo import build_model, is_zoo_name, list_models


@lru_cache(maxsize=16)
def load_model(name_or_path: str) -> LayerGraph:
    """A zoo model (generated in memory) or an ONNX file, as a layer DAG."""
    if is_zoo_name(name_or_path):
        return load_onnx(build_model(name_or_path), name=name_or_path)
    path = Path(name_or_path)
    if path.suffix != ".onnx" and not path.exists():
        raise MilpMapError(
            f"unknown model '{name_or_path}': not a zoo name and no such .onnx file; "
            f"zoo models: {', '.join(list_models())}"
        )
    return load_onnx(path)
