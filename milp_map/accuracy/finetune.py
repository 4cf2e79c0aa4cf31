"""Quantisation-aware fine-tuning of a mapped model (straight-through estimator), so accuracy
figures describe the mapping as the field deploys it, not only after post-training rounding.

The network trained is the mapped export itself (export.rewrite_mapped), run in torch by
onnx_torch.OnnxModule: split layers are one node per part over that part's output channels,
activations go through the export's QuantizeLinear/DequantizeLinear (ranges calibrated once on
the fp32 model, then fixed) or Cast round trips. Every quantised weight is recomputed at each
step from its latent fp32 copy exactly as export quantises it (fake_quant.derive); gradients
pass the rounding straight through. The result is written by export with the trained latent
weights and the same activation ranges, so onnxruntime runs what training optimised.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import numpy_helper

from milp_map.accuracy.export import (
    LayerPlan,
    MappedModel,
    model_proto,
    plan_from_mapping,
    rewrite_mapped,
)
from milp_map.accuracy.measure import DEFAULT_BATCH, Measured, measure
from milp_map.core.graph import LayerGraph
from milp_map.errors import MilpMapError
from milp_map.io.datasets import Dataset, load_dataset

if TYPE_CHECKING:
    from milp_map.evaluation.check import Checked

DEFAULT_EPOCHS = 3
DEFAULT_LEARNING_RATE = 1e-3
DEFAULT_TRAIN_BATCH = 64
CALIBRATION_IMAGES = 256
"""Training images that calibrate activation ranges (as evaluate and the calibration do)."""
TRAINED_INPUTS = {
    "Conv": (1, 2),
    "ConvTranspose": (1, 2),
    "Gemm": (1, 2),
    "MatMul": (1,),
    "BatchNormalization": (1, 2),
    "LayerNormalization": (1, 2),
    "InstanceNormalization": (1, 2),
    "GroupNormalization": (1, 2),
}
"""Inputs whose float initializers are trained (weights, biases, normalisation scale and
shift); running statistics, quantisation scales and other constants stay as they are."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class FineTuneSettings:
    """How long and how to fine-tune: Adam with a cosine-decayed learning rate, seeded."""

    epochs: int = DEFAULT_EPOCHS
    seed: int = 0
    learning_rate: float = DEFAULT_LEARNING_RATE
    batch_size: int = DEFAULT_TRAIN_BATCH
    threads: int = 1
    """torch intra-op threads (one: deterministic and polite on a shared machine)."""
    activations: bool = True
    """Fake-quantise conv / gemm inputs as the export does (False: weights only)."""

    def __post_init__(self) -> None:
        if not (isinstance(self.epochs, int) and self.epochs >= 0):
            raise MilpMapError(f"fine-tuning epochs must be an integer >= 0, got {self.epochs}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise MilpMapError(
                f"the learning rate (--learning-rate) must be > 0, got {self.learning_rate}"
            )
        if self.batch_size < 1:
            raise MilpMapError(
                f"the training batch size (--train-batch-size) must be >= 1, got {self.batch_size}"
            )
        if self.threads < 1:
            raise MilpMapError(f"fine-tuning threads must be >= 1, got {self.threads}")
        if not 0 <= self.seed < 2**63:
            raise MilpMapError(f"the fine-tuning seed must be in [0, 2^63), got {self.seed}")

    def key(self) -> str:
        """What determines the fine-tuned weights (threads do not), for calibration caches."""
        activations = "platform" if self.activations else "none"
        return (
            f"qat epochs={self.epochs} lr={self.learning_rate:g} batch={self.batch_size} "
            f"seed={self.seed} activations={activations}"
        )

    @property
    def is_default_recipe(self) -> bool:
        """Default learning rate, batch, seed and activations (only the epochs differ)."""
        defaults = FineTuneSettings(epochs=self.epochs)
        return self.key() == defaults.key()

    def label(self, dataset: Dataset) -> str:
        """One line for the model's metadata and for reports."""
        return (
            f"{self.epochs} epoch{'' if self.epochs == 1 else 's'} of straight-through QAT "
            f"on {len(dataset.x_train)} training images of {dataset.name}: Adam lr "
            f"{self.learning_rate:g} (cosine), batch {self.batch_size}, seed {self.seed}"
        )


@dataclass(frozen=True)
class FineTuned:
    """The fine-tuned mapped model and how training went."""

    model: onnx.ModelProto
    settings: FineTuneSettings
    train_loss: tuple[float, ...]
    """Mean training cross-entropy of each epoch."""
    seconds: float = field(compare=False)


def calibration_images(dataset: Dataset) -> np.ndarray:
    """The training images that calibrate activation ranges (test images if none)."""
    images = dataset.x_train if len(dataset.x_train) else dataset.x_test
    return images[:CALIBRATION_IMAGES]


def finetune_mapped(
    source: onnx.ModelProto,
    graph: LayerGraph,
    plan: LayerPlan,
    dataset: Dataset,
    settings: FineTuneSettings | None = None,
    progress: Progress | None = None,
    metadata: dict[str, str] | None = None,
) -> FineTuned:
    """Fine-tune the mapped model of `plan` on the training split of `dataset` and return the
    mapped ONNX model with the trained weights (node metadata as export writes it)."""
    settings = settings or FineTuneSettings()
    require_torch()
    _check_training_split(source, dataset)
    started = time.perf_counter()
    mapped = rewrite_mapped(
        source,
        graph,
        plan,
        activations=settings.activations,
        calibration=calibration_images(dataset) if settings.activations else None,
    )
    trainer = _Trainer(mapped, source, graph.name)
    losses = trainer.train(dataset, settings, progress)
    trained = trainer.trained_source(source)
    metadata = {**(metadata or {}), "milp_map.finetune": settings.label(dataset)}
    model = rewrite_mapped(
        trained,
        graph,
        plan,
        activations=settings.activations,
        ranges=mapped.ranges,
        metadata=metadata,
    ).model
    return FineTuned(model, settings, losses, time.perf_counter() - started)


def require_torch() -> None:
    """One line instead of a traceback when the torch extra is missing (checked before any
    slow step)."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise MilpMapError(
            "torch is not installed; fine-tuning needs it: pip install 'milp_map[torch]'"
        ) from exc


def _check_training_split(source: onnx.ModelProto, dataset: Dataset) -> None:
    """A training split that exists, pairs every image with a label, and has images of the
    model's input shape (named on one line, before anything is computed)."""
    x, y = dataset.x_train, dataset.y_train
    name = f"dataset '{dataset.name}'"
    if not len(x):
        raise MilpMapError(
            f"{name} has no training split (x_train, y_train); fine-tuning needs one"
        )
    if len(y) != len(x):
        raise MilpMapError(f"{name}: {len(x)} training images but {len(y)} training labels")
    dims = source.graph.input[0].type.tensor_type.shape.dim if source.graph.input else []
    expected = [d.dim_value if d.HasField("dim_value") else None for d in dims][1:]
    got = list(np.shape(x))[1:]
    if len(expected) != len(got) or any(
        e not in (None, g) for e, g in zip(expected, got, strict=False)
    ):
        shown = "x".join("?" if e is None else str(e) for e in expected)
        raise MilpMapError(
            f"{name}: training images of shape {'x'.join(map(str, got))}, but the model "
            f"takes {shown}"
        )
    classes = _output_classes(source)
    labels = np.asarray(y)
    if labels.size and (labels.min() < 0 or (classes and labels.max() >= classes)):
        raise MilpMapError(
            f"{name}: training labels run from {labels.min()} to {labels.max()}, but the "
            f"model has {classes} outputs"
        )


def _output_classes(source: onnx.ModelProto) -> int | None:
    """The width of the model's (batch, classes) output, when its shape says so."""
    dims = source.graph.output[0].type.tensor_type.shape.dim if source.graph.output else []
    if len(dims) == 2 and dims[1].HasField("dim_value"):
        return int(dims[1].dim_value)
    return None


class _Trainer:
    """The mapped model in torch with its latent weights as leaves that gradients reach."""

    def __init__(self, mapped: MappedModel, source: onnx.ModelProto, label: str) -> None:
        import torch

        from milp_map.accuracy.onnx_torch import OnnxModule

        self.torch = torch
        self.mapped = mapped
        self.module = OnnxModule(mapped.model, label, logits=True)
        if len(self.module.input_names) != 1:
            raise MilpMapError(
                f"{label}: fine-tuning needs a model with one input, this one has "
                f"{len(self.module.input_names)}"
            )
        constants = self.module.constants
        sources = {rule.source for rule in mapped.derived.values()}
        direct = {
            node.input[k]
            for node in mapped.model.graph.node
            for k in TRAINED_INPUTS.get(node.op_type, ())
            if k < len(node.input) and node.input[k] in constants
        } - set(mapped.derived)
        # the mapped model keeps no copy of a weight only derived tensors read: take the source's
        self.latent: dict[str, torch.Tensor] = {
            t.name: torch.tensor(numpy_helper.to_array(t), dtype=torch.float32, requires_grad=True)
            for t in source.graph.initializer
            if t.name in sources
        }
        for name in sorted(direct):
            if constants[name].is_floating_point():
                self.latent[name] = constants[name].detach().clone().float().requires_grad_(True)
        self.direct = sorted(direct & set(self.latent))

    def weights(self) -> dict:
        from milp_map.accuracy.fake_quant import derive

        found = {
            name: derive(rule, self.latent[rule.source])
            for name, rule in self.mapped.derived.items()
        }
        found.update({name: self.latent[name] for name in self.direct})
        return found

    def train(
        self, dataset: Dataset, settings: FineTuneSettings, progress: Progress | None
    ) -> tuple[float, ...]:
        torch = self.torch
        images = torch.from_numpy(np.ascontiguousarray(dataset.x_train, dtype=np.float32))
        labels = torch.from_numpy(np.ascontiguousarray(dataset.y_train, dtype=np.int64))
        steps_per_epoch = math.ceil(len(images) / settings.batch_size)
        total_steps = max(1, settings.epochs * steps_per_epoch)
        threads = torch.get_num_threads()
        torch.set_num_threads(settings.threads)
        try:
            torch.manual_seed(settings.seed)
            generator = torch.Generator().manual_seed(settings.seed)
            optimizer = torch.optim.Adam(list(self.latent.values()), lr=settings.learning_rate)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
            losses = []
            start = time.perf_counter()
            for epoch in range(settings.epochs):
                order = torch.randperm(len(images), generator=generator)
                total = 0.0
                for first in range(0, len(order), settings.batch_size):
                    batch = order[first : first + settings.batch_size]
                    logits = self.module(images[batch], weights=self.weights())
                    loss = torch.nn.functional.cross_entropy(logits, labels[batch])
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                    total += float(loss.detach()) * len(batch)
                losses.append(total / len(images))
                if progress is not None:
                    progress(
                        f"fine-tune epoch {epoch + 1}/{settings.epochs}: train loss "
                        f"{losses[-1]:.4f} ({time.perf_counter() - start:.1f} s)"
                    )
        finally:
            torch.set_num_threads(threads)
        return tuple(losses)

    def trained_source(self, source: onnx.ModelProto) -> onnx.ModelProto:
        """A copy of the source model whose trained initializers hold the latent weights."""
        out = onnx.ModelProto()
        out.CopyFrom(source)
        for tensor in out.graph.initializer:
            if tensor.name in self.latent:
                original = numpy_helper.to_array(tensor)
                value = self.latent[tensor.name].detach().numpy().astype(original.dtype)
                tensor.CopyFrom(numpy_helper.from_array(value.reshape(original.shape), tensor.name))
        return out


# ----------------------------------------------------------------------------- measured


@dataclass(frozen=True)
class FineTuneReport:
    """A fine-tuned mapping and its measured top-1 on the test split of `data`: the fp32
    source's, the mapping's after post-training quantisation, and after fine-tuning."""

    finetuned: FineTuned
    data: str
    reference: Measured
    post_training: Measured
    after_finetune: Measured


def finetune_and_measure(
    source: onnx.ModelProto,
    graph: LayerGraph,
    plan: LayerPlan,
    dataset: Dataset,
    settings: FineTuneSettings | None = None,
    progress: Progress | None = None,
    batch_size: int = DEFAULT_BATCH,
    metadata: dict[str, str] | None = None,
) -> FineTuneReport:
    """Fine-tune the mapping of `plan` and measure it before and after, beside fp32
    (`metadata`: model properties for the fine-tuned file, as export writes them)."""
    settings = settings or FineTuneSettings()
    require_torch()
    _check_training_split(source, dataset)
    before = rewrite_mapped(
        source,
        graph,
        plan,
        activations=settings.activations,
        calibration=calibration_images(dataset) if settings.activations else None,
    ).model
    tuned = finetune_mapped(source, graph, plan, dataset, settings, progress, metadata)
    x, y = dataset.x_test, dataset.y_test
    return FineTuneReport(
        tuned,
        dataset.name,
        measure(source, x, y, batch_size),
        measure(before, x, y, batch_size),
        measure(tuned.model, x, y, batch_size),
    )


def finetune_mapping_file(
    mapping: str | Path,
    data: str,
    settings: FineTuneSettings | None = None,
    *,
    model: str | None = None,
    platform: str | None = None,
    sensitivity: str | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
) -> tuple[FineTuneReport, Checked]:
    """Validate the mapping file (milp_map.check), then `finetune_and_measure` its mapping."""
    plan, checked = plan_from_mapping(mapping, model, platform, sensitivity)
    graph = checked.problem.graph
    source = model_proto(model or graph.name, graph)
    metadata = {
        "milp_map.mapping": str(mapping),
        "milp_map.model": graph.name,
        "milp_map.platform": checked.problem.platform.name,
    }
    report = finetune_and_measure(
        source, graph, plan, load_dataset(data), settings, progress, batch_size, metadata
    )
    return report, checked
