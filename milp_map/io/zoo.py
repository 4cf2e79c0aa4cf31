"""Built-in model zoo: well-known DNNs generated locally as ONNX graphs with deterministic weights.

No downloads and no torch: every model is assembled from onnx.helper ops so that benchmarks are
reproducible offline. Nodes are named "{block}/{part}" (e.g. "stage2_block1/conv1", "head/softmax");
conv layers are real Conv + BatchNormalization + activation chains, as a framework exports them.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx

from milp_map.errors import MilpMapError
from milp_map.io.onnx_builder import GraphBuilder, Kernel, Outputs, Pads

# Initializer suffixes of trainable parameters; BN ":mean"/":var" and op constants are not counted.
PARAM_SUFFIXES = (":weight", ":bias", ":gamma", ":beta")


# -------------------------------------------------------------------------- building blocks


def _conv_bn_act(
    g: GraphBuilder,
    x: str,
    block: str,
    n_out: int,
    kernel: Kernel,
    stride: int = 1,
    *,
    parts: tuple[str, str, str] = ("conv", "bn", "relu"),
    act: str = "relu",
    pads: Pads | None = None,
    group: int = 1,
) -> str:
    """Conv (no bias) + BatchNormalization + activation, the unit of every modern CNN here."""
    conv_part, bn_part, act_part = parts
    y = g.conv(block, conv_part, x, n_out, kernel, stride, pads=pads, group=group)
    y = g.batch_norm(block, bn_part, y)
    return g.activation(act, block, act_part, y)


def _conv_relu(
    g: GraphBuilder,
    x: str,
    block: str,
    n_out: int,
    kernel: Kernel,
    stride: int = 1,
    *,
    parts: tuple[str, str] = ("conv", "relu"),
    pads: Pads | None = None,
) -> str:
    """Conv with bias + Relu, for the pre-BN networks (AlexNet, SqueezeNet)."""
    y = g.conv(block, parts[0], x, n_out, kernel, stride, pads=pads, bias=True)
    return g.activation("relu", block, parts[1], y)


def _shortcut(
    g: GraphBuilder, x: str, block: str, n_out: int, stride: int, *, bn: bool = True
) -> str:
    """Identity, or a strided 1x1 projection when the shape changes (He et al. 2016, option B)."""
    if stride == 1 and g.n_channels[x] == n_out:
        return x
    y = g.conv(block, "shortcut_conv", x, n_out, 1, stride, bias=not bn)
    return g.batch_norm(block, "shortcut_bn", y) if bn else y


def _basic_block(
    g: GraphBuilder, x: str, block: str, n_out: int, stride: int = 1, *, shortcut_bn: bool = True
) -> str:
    """ResNet basic block: two 3x3 convs plus shortcut, then Relu (He et al. 2016, Fig. 2)."""
    y = _conv_bn_act(g, x, block, n_out, 3, stride, parts=("conv1", "bn1", "relu1"))
    y = g.batch_norm(block, "bn2", g.conv(block, "conv2", y, n_out, 3))
    y = g.add(block, "add", y, _shortcut(g, x, block, n_out, stride, bn=shortcut_bn))
    return g.activation("relu", block, "relu_out", y)


def _bottleneck(g: GraphBuilder, x: str, block: str, n_mid: int, stride: int = 1) -> str:
    """ResNet v1.5 bottleneck: 1x1 reduce, 3x3 (carries the stride), 1x1 expand to 4 * n_mid."""
    n_out = 4 * n_mid
    y = _conv_bn_act(g, x, block, n_mid, 1, parts=("conv1", "bn1", "relu1"))
    y = _conv_bn_act(g, y, block, n_mid, 3, stride, parts=("conv2", "bn2", "relu2"))
    y = g.batch_norm(block, "bn3", g.conv(block, "conv3", y, n_out, 1))
    y = g.add(block, "add", y, _shortcut(g, x, block, n_out, stride))
    return g.activation("relu", block, "relu_out", y)


def _separable_block(
    g: GraphBuilder, x: str, block: str, n_out: int, stride: int = 1, *, act: str = "relu"
) -> str:
    """Depthwise 3x3 + BN + act, then pointwise 1x1 + BN + act (Howard et al. 2017, Fig. 3)."""
    n_in = g.n_channels[x]
    y = _conv_bn_act(
        g, x, block, n_in, 3, stride, group=n_in, act=act, parts=("dw", "dw_bn", "dw_relu")
    )
    return _conv_bn_act(g, y, block, n_out, 1, act=act, parts=("pw", "pw_bn", "pw_relu"))


def _inception(
    g: GraphBuilder,
    x: str,
    block: str,
    n_1x1: int,
    n_3x3_reduce: int,
    n_3x3: int,
    n_5x5_reduce: int,
    n_5x5: int,
    n_pool_proj: int,
) -> str:
    """Inception module: 1x1 | 1x1->3x3 | 1x1->5x5 | maxpool->1x1, joined along channels."""
    b1 = _conv_bn_act(g, x, block, n_1x1, 1, parts=("b1_conv", "b1_bn", "b1_relu"))
    b2 = _conv_bn_act(
        g, x, block, n_3x3_reduce, 1, parts=("b2_reduce", "b2_reduce_bn", "b2_reduce_relu")
    )
    b2 = _conv_bn_act(g, b2, block, n_3x3, 3, parts=("b2_conv", "b2_bn", "b2_relu"))
    b3 = _conv_bn_act(
        g, x, block, n_5x5_reduce, 1, parts=("b3_reduce", "b3_reduce_bn", "b3_reduce_relu")
    )
    b3 = _conv_bn_act(g, b3, block, n_5x5, 5, parts=("b3_conv", "b3_bn", "b3_relu"))
    b4 = g.max_pool(block, "b4_pool", x, 3, 1, pad=1)
    b4 = _conv_bn_act(g, b4, block, n_pool_proj, 1, parts=("b4_conv", "b4_bn", "b4_relu"))
    return g.concat(block, "concat", [b1, b2, b3, b4])


def _fire(g: GraphBuilder, x: str, block: str, n_squeeze: int, n_expand: int) -> str:
    """SqueezeNet fire module: 1x1 squeeze, then 1x1 and 3x3 expands concatenated."""
    s = _conv_relu(g, x, block, n_squeeze, 1, parts=("squeeze", "squeeze_relu"))
    e1 = _conv_relu(g, s, block, n_expand, 1, parts=("expand1x1", "expand1x1_relu"))
    e3 = _conv_relu(g, s, block, n_expand, 3, parts=("expand3x3", "expand3x3_relu"))
    return g.concat(block, "concat", [e1, e3])


def _classifier_head(g: GraphBuilder, x: str, n_classes: int) -> Outputs:
    """GlobalAveragePool + Flatten + fully connected + Softmax, as block "head"."""
    y = g.flatten("head", "flatten", g.global_avg_pool("head", "pool", x))
    y = g.softmax("head", "softmax", g.fc("head", "fc", y, n_classes))
    return {"output": (y, [1, n_classes])}


class _Darknet:
    """Adds YOLOv3 layers, naming each conv block conv0..conv74 in Darknet cfg order."""

    def __init__(self, g: GraphBuilder) -> None:
        self.g = g
        self.index = itertools.count()
        self.block = ""  # block of the most recent conv; adds / upsamples attach to it

    def conv(self, x: str, n_out: int, kernel: int, stride: int = 1) -> str:
        self.block = f"conv{next(self.index)}"
        return _conv_bn_act(
            self.g, x, self.block, n_out, kernel, stride, act="leaky", parts=("conv", "bn", "leaky")
        )

    def residual(self, x: str) -> str:
        """Darknet-53 residual unit: 1x1 halving the channels, 3x3 restoring them, then Add."""
        n = self.g.n_channels[x]
        y = self.conv(self.conv(x, n // 2, 1), n, 3)
        return self.g.add(self.block, "add", y, x)

    def detection_branch(self, x: str, n_mid: int) -> str:
        """Five alternating 1x1 (n_mid) / 3x3 (2 * n_mid) convs before each YOLO head."""
        for i in range(5):
            x = self.conv(x, n_mid, 1) if i % 2 == 0 else self.conv(x, 2 * n_mid, 3)
        return x

    def detect(self, x: str) -> str:
        """3x3 conv then the linear 1x1 output conv: 3 anchors x (80 classes + 5) = 255 channels."""
        y = self.conv(x, 2 * self.g.n_channels[x], 3)
        self.block = f"conv{next(self.index)}"
        return self.g.conv(self.block, "conv", y, 255, 1, bias=True)

    def upsample_concat(self, x: str, skip: str) -> str:
        y = self.g.upsample(self.block, "upsample", x)
        return self.g.concat(self.block, "concat", [y, skip])


# ------------------------------------------------------------------------------------ models


def _resnet8(g: GraphBuilder, x: str) -> Outputs:
    """MLPerf Tiny ResNet-8 for CIFAR-10 (Banbury et al. 2021; mlcommons/tiny resnet_v1_eembc).

    Three stages of one basic block (16/32/64 filters, the v0.5 reference); as in the Keras
    model, the stride-2 shortcuts are 1x1 convs with bias and no BN. Conv biases in front of BN
    are dropped (they fold into BN's beta).
    """
    x = _conv_bn_act(g, x, "stem", 16, 3)
    for s, n_out in enumerate((16, 32, 64), start=1):
        stride = 1 if s == 1 else 2
        x = _basic_block(g, x, f"stage{s}_block1", n_out, stride, shortcut_bn=False)
    return _classifier_head(g, x, 10)


def _resnet20(g: GraphBuilder, x: str) -> Outputs:
    """CIFAR-10 ResNet-20 (He et al. 2016, Sec. 4.2): 3 stages x 3 basic blocks, 16/32/64.

    Shortcuts that change shape are 1x1 conv + BN (option B) rather than zero padding.
    """
    x = _conv_bn_act(g, x, "stem", 16, 3)
    for s, n_out in enumerate((16, 32, 64), start=1):
        for b in range(1, 4):
            stride = 2 if s > 1 and b == 1 else 1
            x = _basic_block(g, x, f"stage{s}_block{b}", n_out, stride)
    return _classifier_head(g, x, 10)


def _resnet18(
    g: GraphBuilder, x: str, *, n_classes: int = 1000, small_input: bool = False
) -> Outputs:
    """ResNet-18 (He et al. 2016, Table 1), torchvision layout.

    small_input (Tiny-ImageNet, 64x64): the 7x7/2 stem and its max pool are replaced by a 3x3/1
    stem, as in the usual CIFAR / Tiny-ImageNet adaptations, so stage 4 still sees 8x8.
    """
    if small_input:
        x = _conv_bn_act(g, x, "stem", 64, 3)
    else:
        x = _conv_bn_act(g, x, "stem", 64, 7, 2)
        x = g.max_pool("stem", "pool", x, 3, 2, pad=1)
    for s, n_out in enumerate((64, 128, 256, 512), start=1):
        for b in (1, 2):
            stride = 2 if s > 1 and b == 1 else 1
            x = _basic_block(g, x, f"stage{s}_block{b}", n_out, stride)
    return _classifier_head(g, x, n_classes)


def _resnet50(g: GraphBuilder, x: str) -> Outputs:
    """ResNet-50 (He et al. 2016, Table 1), torchvision v1.5 bottlenecks (stride on the 3x3)."""
    x = _conv_bn_act(g, x, "stem", 64, 7, 2)
    x = g.max_pool("stem", "pool", x, 3, 2, pad=1)
    for s, (n_mid, n_blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3)), start=1):
        for b in range(1, n_blocks + 1):
            stride = 2 if s > 1 and b == 1 else 1
            x = _bottleneck(g, x, f"stage{s}_block{b}", n_mid, stride)
    return _classifier_head(g, x, 1000)


# (output channels, stride) of the 13 separable blocks (Howard et al. 2017, Table 1)
_MOBILENET_V1_BLOCKS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    *[(512, 1)] * 5,
    (1024, 2),
    (1024, 1),
)


def _mobilenet_v1(
    g: GraphBuilder, x: str, *, width: float = 1.0, n_classes: int = 1000, act: str = "relu6"
) -> Outputs:
    """MobileNetV1 (Howard et al. 2017): 3x3/2 stem conv + 13 depthwise-separable blocks.

    width is the multiplier alpha applied to every layer, as in keras.applications.MobileNet;
    act is ReLU6 there, plain ReLU in the MLPerf Tiny Visual Wake Words reference (vww_model.py).
    """
    x = _conv_bn_act(g, x, "stem", int(32 * width), 3, 2, act=act)
    for i, (n_out, stride) in enumerate(_MOBILENET_V1_BLOCKS, start=1):
        x = _separable_block(g, x, f"block{i}", int(n_out * width), stride, act=act)
    return _classifier_head(g, x, n_classes)


def _ds_cnn(g: GraphBuilder, x: str) -> Outputs:
    """MLPerf Tiny DS-CNN keyword spotting (Zhang et al. 2017 "Hello Edge"; mlcommons/tiny).

    49x10 MFCC input, 10x4/2 stem conv (TF "same" padding), 4 separable blocks of 64 filters,
    average pool over the whole 25x5 map, FC to 12 classes. Dropout layers are omitted.
    """
    x = _conv_bn_act(g, x, "stem", 64, (10, 4), 2, pads=(4, 1, 5, 1))
    for i in range(1, 5):
        x = _separable_block(g, x, f"block{i}", 64)
    return _classifier_head(g, x, 12)


def _alexnet(g: GraphBuilder, x: str) -> Outputs:
    """AlexNet (Krizhevsky et al. 2012), single-tower torchvision variant (Krizhevsky 2014).

    torchvision's AdaptiveAvgPool2d(6) is the identity at 224x224 and is omitted.
    """
    x = _conv_relu(g, x, "conv1", 64, 11, 4, pads=(2, 2, 2, 2))
    x = g.max_pool("conv1", "pool", x, 3, 2)
    x = _conv_relu(g, x, "conv2", 192, 5)
    x = g.max_pool("conv2", "pool", x, 3, 2)
    x = _conv_relu(g, x, "conv3", 384, 3)
    x = _conv_relu(g, x, "conv4", 256, 3)
    x = _conv_relu(g, x, "conv5", 256, 3)
    x = g.max_pool("conv5", "pool", x, 3, 2)
    x = g.flatten("fc6", "flatten", x, n_features=256 * 6 * 6)
    for block in ("fc6", "fc7"):
        x = g.dropout(block, "dropout", x)
        x = g.activation("relu", block, "relu", g.fc(block, "fc", x, 4096))
    y = g.softmax("head", "softmax", g.fc("fc8", "fc", x, 1000))
    return {"output": (y, [1, 1000])}


# block, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj (Szegedy et al. 2015, Table 1)
_GOOGLENET_INCEPTIONS = (
    ("inception3a", 64, 96, 128, 16, 32, 32),
    ("inception3b", 128, 128, 192, 32, 96, 64),
    ("inception4a", 192, 96, 208, 16, 48, 64),
    ("inception4b", 160, 112, 224, 24, 64, 64),
    ("inception4c", 128, 128, 256, 24, 64, 64),
    ("inception4d", 112, 144, 288, 32, 64, 64),
    ("inception4e", 256, 160, 320, 32, 128, 128),
    ("inception5a", 256, 160, 320, 32, 128, 128),
    ("inception5b", 384, 192, 384, 48, 128, 128),
)


def _googlenet(g: GraphBuilder, x: str) -> Outputs:
    """GoogLeNet / Inception-v1 (Szegedy et al. 2015, Table 1) with BN after every conv.

    Follows the paper's 5x5 convs in branch 3 (torchvision uses 3x3 there); no LRN and no
    auxiliary classifiers. Max pools are 3x3/2 with ceil rounding: 112 -> 56 -> 28 -> 14 -> 7.
    """
    x = _conv_bn_act(g, x, "conv1", 64, 7, 2)
    x = g.max_pool("conv1", "pool", x, 3, 2, ceil=True)
    x = _conv_bn_act(g, x, "conv2", 64, 1, parts=("conv_reduce", "bn_reduce", "relu_reduce"))
    x = _conv_bn_act(g, x, "conv2", 192, 3)
    x = g.max_pool("conv2", "pool", x, 3, 2, ceil=True)
    for block, *widths in _GOOGLENET_INCEPTIONS:
        x = _inception(g, x, block, *widths)
        if block in ("inception3b", "inception4e"):
            x = g.max_pool(block, "pool", x, 3, 2, ceil=True)
    return _classifier_head(g, x, 1000)


# block, #squeeze, #expand (each of 1x1 and 3x3) of SqueezeNet 1.0 (Iandola et al. 2016, Table 1)
_SQUEEZENET_FIRES = (
    ("fire2", 16, 64),
    ("fire3", 16, 64),
    ("fire4", 32, 128),
    ("fire5", 32, 128),
    ("fire6", 48, 192),
    ("fire7", 48, 192),
    ("fire8", 64, 256),
    ("fire9", 64, 256),
)


def _squeezenet(g: GraphBuilder, x: str) -> Outputs:
    """SqueezeNet 1.0 (Iandola et al. 2016), torchvision squeezenet1_0 at 224x224.

    conv10 (1x1 to 1000 channels + Relu) is the classifier; the head only pools and normalizes.
    """
    x = _conv_relu(g, x, "conv1", 96, 7, 2, pads=(0, 0, 0, 0))
    x = g.max_pool("conv1", "pool", x, 3, 2, ceil=True)
    for block, n_squeeze, n_expand in _SQUEEZENET_FIRES:
        x = _fire(g, x, block, n_squeeze, n_expand)
        if block in ("fire4", "fire8"):
            x = g.max_pool(block, "pool", x, 3, 2, ceil=True)
    x = _conv_relu(g, x, "conv10", 1000, 1)
    y = g.flatten("head", "flatten", g.global_avg_pool("head", "pool", x))
    return {"output": (g.softmax("head", "softmax", y), [1, 1000])}


def _yolov3(g: GraphBuilder, x: str) -> Outputs:
    """YOLOv3 at 416x416 (Redmon & Farhadi 2018; darknet yolov3.cfg), 75 convs in cfg order.

    Darknet-53 backbone (conv0..conv51), then three heads at strides 32/16/8 whose 255-channel
    outputs are "output_13", "output_26", "output_52" (grid size); the YOLO decoding is not part
    of the graph.
    """
    d = _Darknet(g)
    x = d.conv(x, 32, 3)
    skips: dict[int, str] = {}  # backbone stage outputs by width, for the upsampling routes
    for n_out, n_residuals in ((64, 1), (128, 2), (256, 8), (512, 8), (1024, 4)):
        x = d.conv(x, n_out, 3, 2)
        for _ in range(n_residuals):
            x = d.residual(x)
        skips[n_out] = x
    x = d.detection_branch(x, 512)
    out_13 = d.detect(x)
    x = d.upsample_concat(d.conv(x, 256, 1), skips[512])
    x = d.detection_branch(x, 256)
    out_26 = d.detect(x)
    x = d.upsample_concat(d.conv(x, 128, 1), skips[256])
    x = d.detection_branch(x, 128)
    out_52 = d.detect(x)
    return {
        "output_13": (out_13, [1, 255, 13, 13]),
        "output_26": (out_26, [1, 255, 26, 26]),
        "output_52": (out_52, [1, 255, 52, 52]),
    }


def _vit(
    g: GraphBuilder,
    x: str,
    *,
    patch: int = 16,
    dim: int = 192,
    depth: int = 12,
    heads: int = 3,
    mlp_ratio: int = 4,
    n_classes: int = 1000,
) -> Outputs:
    """Vision Transformer, ViT-Tiny / DeiT-Tiny shape (Dosovitskiy et al. 2021; Touvron et al.
    2021): 16x16 patches, a class token, pre-norm blocks of multi-head self-attention (one
    packed q, k, v projection, split) and a GELU MLP, then the head on the class token."""
    size = g.input_shape[2] // patch
    tokens = size * size + 1
    head_dim = dim // heads
    y = g.conv("patch_embed", "proj", x, dim, patch, patch, pads=(0, 0, 0, 0), bias=True)
    y = g.reshape("patch_embed", "flatten", y, [1, dim, size * size], dim)
    y = g.transpose("patch_embed", "tokens", y, [0, 2, 1], dim)
    cls = g.parameter("embed/cls_token", (1, 1, dim), 0.02)
    y = g.concat("embed", "cls", [cls, y], n_channels=dim)
    y = g.node("Add", "embed", "pos", [y, g.parameter("embed/pos_embed", (1, tokens, dim), 0.02)])
    for b in range(depth):
        block = f"block{b}"
        h = g.layer_norm(block, "norm1", y)
        qkv = g.linear(block, "qkv", h, 3 * dim)
        q, k, v = (
            g.transpose(
                block,
                f"{name}_heads",
                g.reshape(block, f"{name}_split", part, [1, tokens, heads, head_dim], head_dim),
                [0, 2, 3, 1] if name == "k" else [0, 2, 1, 3],
                head_dim,
            )
            for name, part in zip("qkv", g.split(block, "qkv_split", qkv, 3), strict=True)
        )
        scores = g.matmul(block, "attn_scores", q, k, tokens)
        scale = g._scalar(f"{block}/attn:scale", head_dim**-0.5)
        scores = g.node("Mul", block, "attn_scale", [scores, scale])
        attention = g.softmax(block, "attn_softmax", scores)
        context = g.matmul(block, "attn_values", attention, v, head_dim)
        context = g.transpose(block, "attn_merge", context, [0, 2, 1, 3], head_dim)
        context = g.reshape(block, "attn_flatten", context, [1, tokens, dim], dim)
        y = g.add(block, "attn_residual", y, g.linear(block, "proj", context, dim))
        h = g.layer_norm(block, "norm2", y)
        h = g.gelu(block, "mlp_gelu", g.linear(block, "fc1", h, mlp_ratio * dim))
        y = g.add(block, "mlp_residual", y, g.linear(block, "fc2", h, dim))
    y = g.layer_norm("head", "norm", y)
    y = g.gather("head", "cls", y, 0, axis=1)
    probabilities = g.softmax("head", "softmax", g.fc("head", "fc", y, n_classes))
    return {"output": (probabilities, [1, n_classes])}


# ---------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model: what it is, its dataset, its fixed NCHW input shape and its builder."""

    name: str
    description: str
    dataset: str
    input_shape: tuple[int, ...]
    build: Callable[[], onnx.ModelProto]


def _build(
    name: str,
    description: str,
    input_shape: tuple[int, ...],
    body: Callable[[GraphBuilder, str], Outputs],
) -> onnx.ModelProto:
    g = GraphBuilder(name, input_shape)
    return g.finish(body(g, "input"), description)


def _entry(
    name: str,
    description: str,
    dataset: str,
    input_shape: tuple[int, ...],
    body: Callable[..., Outputs],
    **options: object,
) -> ZooEntry:
    body = functools.partial(body, **options)
    build = functools.partial(_build, name, description, input_shape, body)
    return ZooEntry(name, description, dataset, input_shape, build)


ZOO: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in (
        _entry(
            "resnet8",
            "MLPerf Tiny ResNet-8, image classification",
            "CIFAR-10",
            (1, 3, 32, 32),
            _resnet8,
        ),
        _entry(
            "resnet20",
            "ResNet-20 (He et al. 2016), option-B shortcuts",
            "CIFAR-10",
            (1, 3, 32, 32),
            _resnet20,
        ),
        _entry(
            "resnet18",
            "ResNet-18 (He et al. 2016), torchvision layout",
            "ImageNet",
            (1, 3, 224, 224),
            _resnet18,
        ),
        _entry(
            "resnet18_tiny",
            "ResNet-18 with 3x3/1 stem, no max pool",
            "Tiny-ImageNet",
            (1, 3, 64, 64),
            _resnet18,
            n_classes=200,
            small_input=True,
        ),
        _entry(
            "resnet50",
            "ResNet-50 v1.5 bottlenecks, torchvision layout",
            "ImageNet",
            (1, 3, 224, 224),
            _resnet50,
        ),
        _entry(
            "mobilenet_v1",
            "MobileNetV1 1.0 (Howard et al. 2017), ReLU6",
            "ImageNet",
            (1, 3, 224, 224),
            _mobilenet_v1,
        ),
        _entry(
            "mobilenet_v1_025_96",
            "MLPerf Tiny MobileNetV1 0.25, visual wake words",
            "Visual Wake Words",
            (1, 3, 96, 96),
            _mobilenet_v1,
            width=0.25,
            n_classes=2,
            act="relu",
        ),
        _entry(
            "ds_cnn",
            "MLPerf Tiny DS-CNN, keyword spotting",
            "Speech Commands (MFCC)",
            (1, 1, 49, 10),
            _ds_cnn,
        ),
        _entry(
            "alexnet",
            "AlexNet, torchvision single-tower variant",
            "ImageNet",
            (1, 3, 224, 224),
            _alexnet,
        ),
        _entry(
            "googlenet",
            "GoogLeNet / Inception-v1 with BN, paper's 5x5 branch",
            "ImageNet",
            (1, 3, 224, 224),
            _googlenet,
        ),
        _entry(
            "squeezenet",
            "SqueezeNet 1.0, torchvision squeezenet1_0",
            "ImageNet",
            (1, 3, 224, 224),
            _squeezenet,
        ),
        _entry(
            "yolov3",
            "YOLOv3 (Darknet-53 backbone), 3 detection heads",
            "COCO",
            (1, 3, 416, 416),
            _yolov3,
        ),
        _entry(
            "vit_tiny",
            "ViT-Tiny / DeiT-Tiny: 16x16 patches, 12 blocks of 3-head attention, width 192",
            "ImageNet",
            (1, 3, 224, 224),
            _vit,
        ),
    )
}


def list_models() -> list[str]:
    """Names of the zoo models, in registry order."""
    return list(ZOO)


def is_zoo_name(name: str) -> bool:
    return name in ZOO


def zoo_entry(name: str) -> ZooEntry:
    """The zoo's entry for `name`; an unknown name is a one-line error listing the zoo."""
    if name not in ZOO:
        raise MilpMapError(f"unknown zoo model {name!r}; choose one of: {', '.join(ZOO)}")
    return ZOO[name]


def build_model(name: str) -> onnx.ModelProto:
    """Builds zoo model `name` (graph name == name); raises MilpMapError for an unknown name."""
    return zoo_entry(name).build()


def count_params(model: onnx.ModelProto) -> int:
    """Trainable parameters: conv / fc weights and biases, BN gamma and beta (as torch counts)."""
    return sum(
        int(np.prod(t.dims)) for t in model.graph.initializer if t.name.endswith(PARAM_SUFFIXES)
    )
