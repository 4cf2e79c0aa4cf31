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

    def parameter(self, name: str, shape: tuple[int, ...], std: float) -> str:
        """A learned tensor used as an operand (a class token, position embeddings), named
        NAME:weight so it counts as a parameter; its last dim is its feature count."""
        tensor = self.constant(f"{name}:weight", self._normal(shape, std))
        self.n_channels[tensor], self.mean_square[tensor] = shape[-1], std**2
        return tensor

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

    def linear(self, block: str, part: str, x: str, n_out: int) -> str:
        """Token-wise linear layer on (N, tokens, features): MatMul(x, W) + b, W stored
        [n_in, n_out] (as torch's exporters write nn.Linear on 3-D inputs)."""
        n_in = self.n_channels[x]
        name = f"{block}/{part}"
        weight = self.constant(f"{name}:weight", self._normal((n_in, n_out), np.sqrt(1.0 / n_in)))
        y = self.node(
            "MatMul", block, part, [x, weight], n_channels=n_out, mean_square=self.mean_square[x]
        )
        bias = self.constant(f"{name}:bias", self._normal((n_out,), 0.01))
        return self.node("Add", block, f"{part}_bias", [y, bias])

    def layer_norm(self, block: str, part: str, x: str) -> str:
        """LayerNormalization over the last axis: gamma ~ 1, beta ~ 0."""
        n = self.n_channels[x]
        name = f"{block}/{part}"
        scale = self.constant(f"{name}:gamma", 1.0 + self._normal((n,), 0.05))
        shift = self.constant(f"{name}:beta", self._normal((n,), 0.05))
        return self.node(
            "LayerNormalization", block, part, [x, scale, shift], mean_square=1.0, axis=-1
        )

    def gelu(self, block: str, part: str, x: str) -> str:
        """GELU as the exact erf form torch exports below opset 20: x * (1 + erf(x/sqrt2)) / 2."""
        scaled = self.node("Div", block, f"{part}_div", [x, self._scalar("gelu:sqrt2", 2**0.5)])
        erf = self.node("Erf", block, f"{part}_erf", [scaled])
        shifted = self.node("Add", block, f"{part}_add", [erf, self._scalar("gelu:one", 1.0)])
        half = self.node("Mul", block, f"{part}_half", [shifted, self._scalar("gelu:half", 0.5)])
        return self.node("Mul", block, part, [x, half], mean_square=0.5 * self.mean_square[x])

    def _scalar(self, name: str, value: float) -> str:
        if not any(t.name == name for t in self.initializers):
            self.constant(name, np.array(value, dtype=np.float32))
        return name

    def reshape(self, block: str, part: str, x: str, shape: Sequence[int], n_channels: int) -> str:
        target = self.constant(f"{block}/{part}:shape", np.array(shape, dtype=np.int64))
        return self.node("Reshape", block, part, [x, target], n_channels=n_channels)

    def transpose(self, block: str, part: str, x: str, perm: Sequence[int], n_channels: int) -> str:
        return self.node("Transpose", block, part, [x], n_channels=n_channels, perm=list(perm))

    def matmul(self, block: str, part: str, a: str, b: str, n_out: int) -> str:
        """MatMul of two run-time tensors (attention scores, attention-weighted values)."""
        return self.node("MatMul", block, part, [a, b], n_channels=n_out)

    def split(self, block: str, part: str, x: str, n_parts: int, axis: int = -1) -> list[str]:
        """Equal parts along `axis` (Split with a constant `split` input, opset 13 on)."""
        size = self.n_channels[x] // n_parts
        name = f"{block}/{part}"
        sizes = self.constant(f"{name}:split", np.array([size] * n_parts, dtype=np.int64))
        outs = [f"{name}:out{k}" for k in range(n_parts)]
        self.nodes.append(helper.make_node("Split", [x, sizes], outs, name=name, axis=axis))
        for out in outs:
            self.n_channels[out], self.mean_square[out] = size, self.mean_square[x]
        return outs

    def gather(self, block: str, part: str, x: str, index: int, axis: int) -> str:
        """One slice of `x` along `axis` (the class token of a ViT)."""
        indices = self.constant(f"{block}/{part}:index", np.array(index, dtype=np.int64))
        return self.node("Gather", block, part, [x, indices], axis=axis)

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

    def concat(
        self, block: str, part: str, xs: Sequence[str], *, n_channels: int | None = None
    ) -> str:
        """Concat along axis 1 (channels; tokens, given `n_channels` of the features)."""
        total = sum(self.n_channels[x] for x in xs)
        mean_square = sum(self.n_channels[x] * self.mean_square[x] for x in xs) / total
        return self.node(
            "Concat",
            block,
            part,
            xs,
            n_channels=total if n_channels is None else n_channels,
            mean_square=mean_square,
            axis=1,
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
