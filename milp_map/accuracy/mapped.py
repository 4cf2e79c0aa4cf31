"""A mapping file's measured top-1: validated (milp_map/evaluation/check.py), exported as a
quantised ONNX model (export.py) and run in onnxruntime (measure.py) beside the fp32 model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from milp_map.accuracy.export import (
    calibration_inputs,
    export_mapped,
    model_proto,
    plan_from_mapping,
)
from milp_map.accuracy.measure import DEFAULT_BATCH, Measured, measure
from milp_map.evaluation.check import Checked
from milp_map.io.datasets import load_dataset


@dataclass(frozen=True)
class MappingAccuracy:
    """The checked mapping, and the measured top-1 of its export and of the fp32 model."""

    checked: Checked
    data: str
    """The dataset's name."""
    mapped: Measured
    reference: Measured

    @property
    def drop_pp(self) -> float:
        """Top-1 drop below fp32, in percentage points."""
        return 100.0 * (self.reference.top1 - self.mapped.top1)


def measure_mapping_file(
    mapping: str | Path,
    data: str,
    *,
    model: str | None = None,
    platform: str | None = None,
    sensitivity: str | None = None,
    activations: bool = True,
    batch_size: int = DEFAULT_BATCH,
) -> MappingAccuracy:
    """Top-1 of the mapping's export and of the source model on the test split of `data`;
    activation ranges are calibrated on its first training images."""
    plan, checked = plan_from_mapping(mapping, model, platform, sensitivity)
    graph = checked.problem.graph
    source = model_proto(model or graph.name, graph)
    dataset = load_dataset(data)
    exported = export_mapped(
        source, graph, plan, activations=activations, calibration=calibration_inputs(data)
    )
    reference = measure(source, dataset.x_test, dataset.y_test, batch_size)
    result = measure(exported, dataset.x_test, dataset.y_test, batch_size)
    return MappingAccuracy(checked, dataset.name, result, reference)
