"""A small ONNX graph builder with seeded weights: what the zoo's architectures are written in.

No torch: models are assembled from onnx.helper ops, deterministically, so that builds are
byte-identical on every machine.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8

Kernel = int | tuple[int, int]
Pads = tuple[int, int, int, int]  # ONNX order: top, left, bottom, right
Outputs = dict[str, tuple[str, list[int]]]  # graph output name -> (tensor, shape)


class GraphBuilder:
    """Collects the nodes and initializers of one model, tracking two facts about each tensor.

    n_channels sizes the next layer's weights. mean_square is the expected E[x^2] of the tensor
    for a unit-variance input; BN running variances are drawn around it, so that, as in a
    trained network, BN renormalizes and activations stay O(1) through deep residual stacks.
    Weights come from a generator seeded by the model name: builds are byte-identical.
    """

    def __init__(self, name: str, input_shape: tuple[int, ...]) -> None:
        self.name = name
        self.input_shape = input_shape
        self.rng = np.random.default_rng(zlib.crc32(name.encode()))
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.n_channels: dict[str, int] = {"input": input_shape[1]}
        self.mean_square: dict[str, float] = {"input": 1.0}

    def node(
        self,
        op: str,
        block: str,
        part: str,
        inputs: Sequence[str],
        *,
        n_channels: int | None = None,
        mean_square: float | None = None,
        **attrs: object,
    ) -> str:
        """Adds node "{block}/{part}"; its output keeps the first input's facts unless given."""
        name = f"{block}/{part}"
        out = f"{name}:out"
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=name, **attrs))
        self.n_channels[out] = self.n_channels[inputs[0]] if n_channels is None else n_channels
        self.mean_square[out] = self.mean_square[inputs[0]] if mean_square is None else mean_square
        return out

    def constant(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def _normal(self, shape: tuple[int, ...], std: float) -> np.ndarray:
        return self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std)

    # ------------------------------------------------------------------ layers with parameters

    def conv(
        self,
        block: str,
        part: str,
        x: str,
        n_out: int,
        kernel: Kernel,
        stride: int = 1,
        *,
        pads: Pads | None = None,
        group: int = 1,
        bias: bool = False,
    ) -> str:
        """Conv with He-normal weights (output E[x^2] doubles); default pads kernel//2 all round."""
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        n_in = self.n_channels[x]
        name = f"{block}/{part}"
        fan_in = n_in // group * kh * kw
        weight = self._normal((n_out, n_in // group, kh, kw), np.sqrt(2.0 / fan_in))
        inputs = [x, self.constant(f"{name}:weight", weight)]
        if bias:
            inputs.append(self.constant(f"{name}:bias", self._normal((n_out,), 0.01)))
        if pads is None:
            pads = (kh // 2, kw // 2, kh // 2, kw // 2)
        return self.node(
            "Conv",
            block,
            part,
            inputs,
            n_channels=n_out,
            mean_square=2.0 * self.mean_square[x],
            kernel_shape=[kh, kw],
            strides=[stride, stride],
            pads=list(pads),
            group=group,
        )

    def batch_norm(self, block: str, part: str, x: str) -> str:
        """Inference-mode BN: gamma ~ 1, beta ~ 0, running mean ~ 0, variance ~ E[x^2] of x."""
        n = self.n_channels[x]
        name = f"{block}/{part}"
        rms = np.sqrt(self.mean_square[x])
        variance = self.mean_square[x] * self.rng.uniform(0.8, 1.25, n).astype(np.float32)
        params = [
            self.constant(f"{name}:gamma", 1.0 + self._normal((n,), 0.1)),
            self.constant(f"{name}:beta", self._normal((n,), 0.1)),
            self.constant(f"{name}:mean", self._normal((n,), 0.1 * rms)),
            self.constant(f"{name}:var", variance),
        ]
        return self.node(
            "BatchNormalization", block, part, [x, *params], mean_square=1.0, epsilon=1e-5
        )

    def fc(self, block: str, part: str, x: str, n_out: int) -> str:
        """Fully connected layer: Gemm(x, W^T) + b, W stored [n_out, n_in] as in torch.nn.Linear."""
        n_in = self.n_channels[x]
        name = f"{block}/{part}"
        weight = self.constant(f"{name}:weight", self._normal((n_out, n_in), np.sqrt(2.0 / n_in)))
        bias = self.constant(f"{name}:bias", self._normal((n_out,), 0.01))
        return self.node(
            "Gemm",
            block,
            part,
            [x, weight, bias],
            n_channels=n_out,
            mean_square=2.0 * self.mean_square[x],
            transB=1,
        )

    # ---------------------------------------------------------------------------- activations

    def activation(self, kind: str, block: str, part: str, x: str) -> str:
        """kind: "relu", "relu6" (Clip to [0, 6]) or "leaky" (LeakyRelu 0.1, as in Darknet)."""
        half = 0.5 * self.mean_square[x]  # a rectifier keeps about half of a centred E[x^2]
        if kind == "relu":
            return self.node("Relu", block, part, [x], mean_square=half)
        if kind == "leaky":
            return self.node("LeakyRelu", block, part, [x], mean_square=half, alpha=0.1)
        if kind == "relu6":
            if not any(t.name == "relu6:min" for t in self.initializers):
                self.constant("relu6:min", np.array(0.0, dtype=np.float32))
                self.constant("relu6:max", np.array(6.0, dtype=np.float32))
            return self.node("Clip", block, part, [x, "relu6:min", "relu6:max"], mean_square=half)
        raise ValueError(f"unknown activation {kind!r}")

    # ---------------------------------------------------------------- parameter-free operators

    def max_pool(
        self,
        block: str,
        part: str,
        x: str,
        kernel: int,
        stride: int,
        *,
        pad: int = 0,
        ceil: bool = False,
    ) -> str:
        return self.node(
            "MaxPool",
            block,
            part,
            [x],
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=[pad] * 4,
            ceil_mode=int(ceil),
        )

    def global_avg_pool(self, block: str, part: str, x: str) -> str:
        return self.node("GlobalAveragePool", block, part, [x])

    def flatten(self, block: str, part: str, x: str, n_features: int | None = None) -> str:
        """n_features: C*H*W when the spatial size is not 1x1 (default: the channel count)."""
        return self.node("Flatten", block, part, [x], n_channels=n_features, axis=1)

    def dropout(self, block: str, part: str, x: str) -> str:
        return self.node("Dropout", block, part, [x])

    def add(self, block: str, part: str, a: str, b: str) -> str:
        mean_square = self.mean_square[a] + self.mean_square[b]
        return self.node("Add", block, part, [a, b], mean_square=mean_square)

    def concat(self, block: str, part: str, xs: Sequence[str]) -> str:
        n_channels = sum(self.n_channels[x] for x in xs)
        mean_square = sum(self.n_channels[x] * self.mean_square[x] for x in xs) / n_channels
        return self.node(
            "Concat", block, part, xs, n_channels=n_channels, mean_square=mean_square, axis=1
        )

    def upsample(self, block: str, part: str, x: str, scale: int = 2) -> str:
        """Nearest-neighbour upsampling by an integer factor (PyTorch / Darknet semantics)."""
        scales = np.array([1, 1, scale, scale], dtype=np.float32)
        scales_name = self.constant(f"{block}/{part}:scales", scales)
        return self.node(
            "Resize",
            block,
            part,
            [x, "", scales_name],
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        )

    def softmax(self, block: str, part: str, x: str) -> str:
        return self.node("Softmax", block, part, [x], axis=-1)

    # ----------------------------------------------------------------------------------- model

    def finish(self, outputs: Outputs, description: str) -> onnx.ModelProto:
        """Renames the output tensors to the graph output names and wraps everything in a model."""
        renamed = {tensor: name for name, (tensor, _) in outputs.items()}
        for node in self.nodes:
            for i, tensor in enumerate(node.output):
                node.output[i] = renamed.get(tensor, tensor)
            for i, tensor in enumerate(node.input):
                node.input[i] = renamed.get(tensor, tensor)
        graph = helper.make_graph(
            self.nodes,
            self.name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(self.input_shape))],
            [
                helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
                for name, (_, shape) in outputs.items()
            ],
            initializer=self.initializers,
        )
        return helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            ir_version=IR_VERSION,
            producer_name="milp_map.zoo",
            doc_string=description,
        )
