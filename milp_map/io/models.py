"""Resolve `--model` (a zoo name, a shipped trained model or an .onnx path) to a layer graph.

Zoo models are generated in memory with seeded weights; shipped models are real networks
trained by the project's own scripts (data/models/NAME.onnx with NAME.json provenance, e.g.
`mnist_resnet` from benchmarks/data_prep/train_mnist.py).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import onnx

from milp_map.core.graph import LayerGraph
from milp_map.errors import MilpMapError
from milp_map.io.onnx import load_onnx
from milp_map.io.zoo import build_model, is_zoo_name, list_models
from milp_map.resources import data_path


def shipped_models() -> list[str]:
    """Names of the trained models shipped in data/models/, sorted."""
    folder = data_path("models")
    return sorted(path.stem for path in folder.glob("*.onnx")) if folder.is_dir() else []


def shipped_model_path(name: str) -> Path | None:
    """The ONNX file of a shipped trained model, or None if `name` is not one."""
    if not name or "/" in name or "\\" in name or name.endswith(".onnx"):
        return None
    path = data_path("models", f"{name}.onnx")
    return path if path.is_file() else None


def shipped_provenance() -> list[dict]:
    """The provenance records (data/models/NAME.json) of the shipped trained models, by name."""
    return [json.loads(p.read_text()) for p in sorted(data_path("models").glob("*.json"))]


def is_shipped_model(name: str) -> bool:
    """Whether `name` names a trained model in data/models/ (and not a zoo model)."""
    return not is_zoo_name(name) and shipped_model_path(name) is not None


@lru_cache(maxsize=16)
def load_model(name_or_path: str) -> LayerGraph:
    """A zoo model (generated in memory), a shipped trained model or an ONNX file, as a DAG."""
    if is_zoo_name(name_or_path):
        return load_onnx(build_model(name_or_path), name=name_or_path)
    shipped = shipped_model_path(name_or_path)
    if shipped is not None:
        return load_onnx(shipped, name=name_or_path)
    path = Path(name_or_path)
    if path.suffix != ".onnx" and not path.exists():
        raise MilpMapError(
            f"unknown model '{name_or_path}': not a zoo or shipped model name and no such .onnx "
            f"file; zoo models: {', '.join(list_models())}; shipped models: "
            f"{', '.join(shipped_models()) or 'none'}"
        )
    return load_onnx(path)


def model_proto(name_or_path: str) -> onnx.ModelProto:
    """The ONNX proto behind `load_model(name_or_path)`, weights included.

    Call `load_model` first: it turns every problem with the file into a one-line error.
    """
    if is_zoo_name(name_or_path):
        return build_model(name_or_path)
    path = shipped_model_path(name_or_path) or Path(name_or_path)
    return onnx.load(path)
