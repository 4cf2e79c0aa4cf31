"""Measured accuracy: top-1 of an ONNX model on a labelled dataset, through onnxruntime.

Closes the loop of the accuracy proxy: export.py turns a mapping into a runnable quantised
model, this module measures it on real data, so proxy and true accuracy sit side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from milp_map.errors import MilpMapError

DEFAULT_BATCH = 256
DEFAULT_THREADS = 1
"""One intra-op thread: the machine is shared, and measurements stay deterministic."""


@dataclass(frozen=True)
class Measured:
    """Top-1 accuracy and mean cross-entropy of a model on `n_samples` labelled inputs."""

    top1: float
    n_samples: int
    mean_loss: float
    """Cross-entropy of the softmax of the outputs (a finer-grained signal than top-1)."""
    correct: np.ndarray | None = field(default=None, compare=False, repr=False)
    """Per input: whether the top output is the label (for paired confidence intervals)."""


Z_95 = 1.959963984540054
"""Two-sided 95% normal quantile."""


def drop_interval_pp(reference: Measured, mapped: Measured, z: float = Z_95) -> tuple[float, float]:
    """95% confidence interval of the top-1 drop (points) of `mapped` below `reference`,
    measured on the same inputs: Agresti and Min's (2005) paired interval, a Wald interval
    after adding half an input to each cell of the 2x2 table, which stays honest when few
    or no inputs changed (1,000 test images: one image is 0.1 point)."""
    if reference.correct is None or mapped.correct is None:
        raise MilpMapError("a paired interval needs both measurements' per-input results")
    if len(reference.correct) != len(mapped.correct):
        raise MilpMapError("a paired interval needs both models measured on the same inputs")
    lost = float(np.sum(reference.correct & ~mapped.correct)) + 0.5
    gained = float(np.sum(~reference.correct & mapped.correct)) + 0.5
    n = len(reference.correct) + 2.0
    drop = (lost - gained) / n
    spread = z * math.sqrt(max(lost + gained - (lost - gained) ** 2 / n, 0.0)) / n
    return 100.0 * (drop - spread), 100.0 * (drop + spread)


def make_session(model: onnx.ModelProto | str | Path, threads: int = DEFAULT_THREADS):
    """An onnxruntime CPU session for an in-memory model or a file; errors are one line."""
    ort = import_onnxruntime()

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # onnxruntime's QDQ passes would re-quantise the export's fp32 weights beside a
    # DequantizeLinear to its own int8 grid (ternary scales move by up to 0.4%): keep the
    # model's own numbers, which the torch twin (onnx_torch.py) reproduces to 1e-6
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    payload = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    try:
        return ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        label = "the model" if isinstance(model, onnx.ModelProto) else str(model)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MilpMapError(f"{label}: onnxruntime cannot load it ({first[:200]})") from exc


def import_onnxruntime():
    """The onnxruntime module, or a one-line error saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise MilpMapError(
            "measuring or calibrating a model needs onnxruntime: pip install onnxruntime"
        ) from None
    return onnxruntime


def predict(
    model: onnx.ModelProto | str | Path,
    images: np.ndarray,
    batch_size: int = DEFAULT_BATCH,
    threads: int = DEFAULT_THREADS,
) -> np.ndarray:
    """The model's first output for every image, run in batches (batch 1 if the model pins it)."""
    session = make_session(model, threads)
    check_fits(session, images, "the dataset's images")
    first = session.get_inputs()[0]
    fixed = first.shape[0] if first.shape and isinstance(first.shape[0], int) else None
    step = fixed or batch_size
    if step < 1:
        raise MilpMapError(f"batch size must be >= 1, got {batch_size}")
    outputs = []
    for start in range(0, len(images), step):
        batch = np.ascontiguousarray(images[start : start + step], dtype=np.float32)
        try:
            outputs.append(session.run(None, {first.name: batch})[0])
        except Exception as exc:
            raise MilpMapError(
                f"onnxruntime failed on a batch of {len(batch)} inputs of shape "
                f"{list(batch.shape[1:])} ({str(exc).strip().splitlines()[0][:200]}); check "
                "the dataset matches the model's input, or use batch size 1"
            ) from exc
    return np.concatenate(outputs).reshape(len(images), -1)


def check_fits(session: Any, images: np.ndarray, what: str) -> None:
    """One line when `images` (N, ...) do not have the shape of the session's first input
    (onnxruntime's own complaint is a multi-line traceback); `what` names the images."""
    first = session.get_inputs()[0]
    expected = list(first.shape or [])[1:]
    got = list(np.shape(images))[1:]
    if len(expected) == len(got) and all(
        not isinstance(e, int) or e == g for e, g in zip(expected, got, strict=True)
    ):
        return
    shown = "x".join(str(e) if isinstance(e, int) else "?" for e in expected)
    raise MilpMapError(
        f"{what} have shape {'x'.join(map(str, got)) or 'scalar'}, but the model's input "
        f"'{first.name}' takes {shown or 'a scalar'}: use a dataset of that shape"
    )


def measure(
    model: onnx.ModelProto | str | Path,
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int = DEFAULT_BATCH,
    threads: int = DEFAULT_THREADS,
) -> Measured:
    """Top-1 accuracy (fraction in [0, 1]) and mean cross-entropy over the labelled images."""
    if len(images) != len(labels) or not len(images):
        raise MilpMapError(
            f"need as many labels as images and at least one of each, got {len(images)} "
            f"images and {len(labels)} labels"
        )
    outputs = predict(model, images, batch_size, threads).astype(np.float64)
    if int(labels.max()) >= outputs.shape[1]:
        raise MilpMapError(
            f"labels go up to {int(labels.max())} but the model has {outputs.shape[1]} outputs"
        )
    correct = outputs.argmax(axis=1) == labels
    correct.setflags(write=False)
    return Measured(float(np.mean(correct)), len(labels), _cross_entropy(outputs, labels), correct)


def top1_accuracy(
    model: onnx.ModelProto | str | Path,
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int = DEFAULT_BATCH,
) -> float:
    """Fraction of images whose highest output is the label."""
    return measure(model, images, labels, batch_size).top1


def _cross_entropy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log softmax(label); outputs that already are probabilities are used as they are."""
    rows = np.arange(len(labels))
    is_probability = bool(np.all(outputs >= 0) and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-4))
    if is_probability:
        return float(-np.mean(np.log(np.clip(outputs[rows, labels], 1e-12, None))))
    shifted = outputs - outputs.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    return float(np.mean(log_norm - shifted[rows, labels]))
