"""The tf backend's rules for elementwise ops, pooling, normalization, reductions and shape
ops, one per IR op in `RULES` (convolutions are in `tf_conv`, sequences and attention in
`tf_sequence`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..ir import Node
from .tf_lower import HALF, RULES, TF_DTYPES, TfContext, in_float32, named_padding, pad_spatial

# --- rules: elementwise ----------------------------------------------------------------------


def _elu(tf: Any, x: Any, a: Mapping[str, Any]) -> Any:
    if a["alpha"] == 1.0:
        return tf.nn.elu(x)  # the form the remapper fuses
    return tf.where(x > 0, x, tf.cast(a["alpha"], x.dtype) * tf.nn.elu(x))


def _hard_sigmoid(tf: Any, x: Any) -> Any:
    return tf.nn.relu6(x + tf.constant(3, x.dtype)) / tf.constant(6, x.dtype)  # Keras 3's


# elementwise activations as (tf, x, attrs) -> y, shared with the fused ops' epilogues
ACTIVATIONS: dict[str, Callable[[Any, Any, Mapping[str, Any]], Any]] = {
    "relu": lambda tf, x, a: tf.nn.relu(x),
    "relu6": lambda tf, x, a: tf.nn.relu6(x),
    "sigmoid": lambda tf, x, a: tf.math.sigmoid(x),
    "tanh": lambda tf, x, a: tf.math.tanh(x),
    "silu": lambda tf, x, a: x * tf.math.sigmoid(x),
    "softplus": lambda tf, x, a: tf.math.softplus(x),
    "exp": lambda tf, x, a: tf.math.exp(x),
    "log": lambda tf, x, a: tf.math.log(x),
    "sqrt": lambda tf, x, a: tf.math.sqrt(x),
    "abs": lambda tf, x, a: tf.math.abs(x),
    "neg": lambda tf, x, a: tf.math.negative(x),
    "leaky_relu": lambda tf, x, a: tf.nn.leaky_relu(x, alpha=a["alpha"]),
    "elu": _elu,
    "gelu": lambda tf, x, a: tf.nn.gelu(x, approximate=a["approximate"]),
    "hard_sigmoid": lambda tf, x, a: _hard_sigmoid(tf, x),
    "hard_swish": lambda tf, x, a: x * _hard_sigmoid(tf, x),
}


@RULES.on(*ACTIVATIONS)
def _activation(ctx: TfContext, node: Node) -> Any:
    return ACTIVATIONS[node.op](ctx.tf, ctx.get(node.inputs[0]), node.attrs)


@RULES.on("softmax")
def _softmax(ctx: TfContext, node: Node) -> Any:
    return ctx.tf.nn.softmax(ctx.get(node.inputs[0]), axis=node.attrs["axis"])


@RULES.on("dropout")
def _dropout(ctx: TfContext, node: Node) -> Any:
    return ctx.tf.identity(ctx.get(node.inputs[0]))  # the identity at inference


@RULES.on("cast")
def _cast(ctx: TfContext, node: Node) -> Any:
    return ctx.tf.cast(ctx.get(node.inputs[0]), ctx.dtype(node.attrs["dtype"]))


BINARY = {
    "add": "add",
    "sub": "subtract",
    "mul": "multiply",
    "div": "divide",
    "maximum": "maximum",
    "minimum": "minimum",
}


@RULES.on(*BINARY)
def _binary(ctx: TfContext, node: Node) -> Any:
    a, b = (ctx.get(i) for i in node.inputs)
    return getattr(ctx.tf.math, BINARY[node.op])(a, b)


@RULES.on("matmul")
def _matmul(ctx: TfContext, node: Node) -> Any:
    a, b = (ctx.get(i) for i in node.inputs)
    return ctx.tf.linalg.matmul(a, b)  # batch axes broadcast (BatchMatMulV2)


# --- rules: pooling --------------------------------------------------------------------------


def _pool_padding(ctx: TfContext, node: Node, x: Any, fill: float) -> tuple[Any, Any]:
    """The input and TF's padding for a pool: SAME or VALID when they are netc's pads; else
    MaxPool's EXPLICIT pads (padded cells never win, as netc's -inf), or the pads made with
    `fill` and VALID (AvgPool takes no explicit pads, nor any pool under XLA)."""
    t = ctx.type(node.inputs[0])
    a = node.attrs
    named = named_padding(t.shape[1:-1], a["size"], a["stride"], a["padding"])
    if named is not None:
        return x, named
    if node.op == "maxpool" and t.rank == 4 and not ctx.xla:  # no pad op: one pass less
        return x, [[0, 0], *[list(p) for p in a["padding"]], [0, 0]]
    return pad_spatial(ctx, x, a["padding"], fill), "VALID"


def _pool_dtype(ctx: TfContext, node: Node, x: Any, pool: Callable[[Any], Any]) -> Any:
    """`pool(x)`, in float32 for an f16 volume: TF has no float16 MaxPool3D or AvgPool3D
    kernel on CPU (the max of f16 values is one of them, so nothing changes for maxpool)."""
    t = ctx.type(node.inputs[0])
    if t.rank == 5 and t.dtype == "f16":
        return in_float32(ctx, x, t.dtype, pool)
    return pool(x)


@RULES.on("maxpool")
def _maxpool(ctx: TfContext, node: Node) -> Any:
    a = node.attrs

    def pool(x: Any) -> Any:
        padded, padding = _pool_padding(ctx, node, x, -np.inf)
        return ctx.tf.nn.max_pool(padded, list(a["size"]), list(a["stride"]), padding)

    return _pool_dtype(ctx, node, ctx.get(node.inputs[0]), pool)


@RULES.on("avgpool")
def _avgpool(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    a = node.attrs

    def pool(x: Any) -> Any:
        padded, padding = _pool_padding(ctx, node, x, 0.0)
        y = tf.nn.avg_pool(padded, list(a["size"]), list(a["stride"]), padding)
        if padded is x:
            return y  # TF's SAME averages over the real cells only, as netc does
        # explicit pads: each window's mean of x and zeros, over the share of real cells in it
        ones = pad_spatial(ctx, tf.ones_like(x[:1, ..., :1]), a["padding"], 0.0)
        return y / tf.nn.avg_pool(ones, list(a["size"]), list(a["stride"]), "VALID")

    return _pool_dtype(ctx, node, ctx.get(node.inputs[0]), pool)


@RULES.on("global_avgpool", "global_maxpool")
def _global_pool(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    t = ctx.type(node.inputs[0])
    axes = list(range(1, t.rank - 1))
    keep = node.attrs["keepdims"]
    x = ctx.get(node.inputs[0])
    if node.op == "global_maxpool":
        return tf.math.reduce_max(x, axis=axes, keepdims=keep)
    return in_float32(ctx, x, t.dtype, lambda v: tf.math.reduce_mean(v, axis=axes, keepdims=keep))


# --- rules: normalization --------------------------------------------------------------------


def _broadcast_shape(rank: int, axes: Sequence[int], sizes: Sequence[int]) -> list[int]:
    shape = [1] * rank
    for a, s in zip(axes, sizes, strict=True):
        shape[a] = s
    return shape


@RULES.on("batchnorm")
def _batchnorm(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    a = node.attrs
    t = ctx.type(node.inputs[0])
    weights = [ctx.array(w).astype(np.float64) for w in node.inputs[1:]]
    gamma = weights.pop(0) if a["scale"] else None
    beta = weights.pop(0) if a["center"] else None
    mean, var = weights
    ones = np.ones_like(mean)
    x = ctx.get(node.inputs[0])
    # FusedBatchNormV3 for an NHWC image (epsilon within cuDNN's floor, so a GPU runs it too)
    if t.rank == 4 and a["axis"] == 3 and a["epsilon"] >= 1.001e-5 and t.dtype != "f64":
        f32 = [
            tf.constant(v.astype(np.float32))
            for v in (
                ones if gamma is None else gamma,
                ones * 0 if beta is None else beta,
                mean,
                var,
            )
        ]
        return tf.raw_ops.FusedBatchNormV3(
            x=x,
            scale=f32[0],
            offset=f32[1],
            mean=f32[2],
            variance=f32[3],
            epsilon=a["epsilon"],
            is_training=False,
            data_format="NHWC",
        )[0]
    # elsewhere netc's formula, (x - mean) * gamma / sqrt(var + eps) + beta, along the axis
    inv = (ones if gamma is None else gamma) / np.sqrt(var + a["epsilon"])
    shape = _broadcast_shape(t.rank, [a["axis"]], [mean.size])
    compute = "f32" if t.dtype in HALF else t.dtype

    def normalize(v: Any) -> Any:
        y = (v - ctx.constant(mean.reshape(shape), compute)) * ctx.constant(
            inv.reshape(shape), compute
        )
        return y if beta is None else y + ctx.constant(beta.reshape(shape), compute)

    return in_float32(ctx, x, t.dtype, normalize)


@RULES.on("layernorm")
def _layernorm(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    a = node.attrs
    t = ctx.type(node.inputs[0])
    axes = list(a["axis"])
    weights = list(node.inputs[1:])
    gamma = weights.pop(0) if a["scale"] else None
    beta = weights.pop(0) if a["center"] else None
    shape = _broadcast_shape(t.rank, axes, [t.shape[i] for i in axes])  # type: ignore[misc]
    compute = "f32" if t.dtype in HALF else t.dtype

    def normalize(v: Any) -> Any:
        mean = tf.math.reduce_mean(v, axis=axes, keepdims=True)
        centered = v - mean
        var = tf.math.reduce_mean(tf.math.square(centered), axis=axes, keepdims=True)
        y = centered * tf.math.rsqrt(var + tf.constant(a["epsilon"], v.dtype))
        if gamma is not None:
            y = y * ctx.constant(ctx.array(gamma).reshape(shape), compute)
        if beta is not None:
            y = y + ctx.constant(ctx.array(beta).reshape(shape), compute)
        return y

    return in_float32(ctx, ctx.get(node.inputs[0]), t.dtype, normalize)


# --- rules: reductions -----------------------------------------------------------------------

REDUCE = {
    "reduce_sum": "reduce_sum",
    "reduce_mean": "reduce_mean",
    "reduce_max": "reduce_max",
    "reduce_min": "reduce_min",
    "reduce_prod": "reduce_prod",
}


@RULES.on(*REDUCE)
def _reduce(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    t = ctx.type(node.inputs[0])
    axes, keep = list(node.attrs["axis"]), node.attrs["keepdims"]
    x = ctx.get(node.inputs[0])
    if not axes:
        return tf.identity(x)  # no axis: nothing reduced (TF's axis=None would reduce all)
    if t.dtype == "bool":  # max/min of bools: any/all (TF has no bool Max kernel)
        fn = tf.math.reduce_any if node.op == "reduce_max" else tf.math.reduce_all
        return fn(x, axis=axes, keepdims=keep)
    fn = getattr(tf.math, REDUCE[node.op])
    if node.op in ("reduce_max", "reduce_min"):
        return fn(x, axis=axes, keepdims=keep)
    return in_float32(ctx, x, t.dtype, lambda v: fn(v, axis=axes, keepdims=keep))


@RULES.on("argmax")
def _argmax(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    return tf.math.argmax(ctx.get(node.inputs[0]), axis=node.attrs["axis"], output_type=tf.int64)


# --- rules: shape ----------------------------------------------------------------------------


@RULES.on("flatten")
def _flatten(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    x, t = ctx.get(node.inputs[0]), ctx.type(node.inputs[0])
    rest = t.shape[1:]
    if all(isinstance(d, int) for d in rest):
        return tf.reshape(x, [-1, math.prod(rest)])  # type: ignore[arg-type]
    return tf.reshape(x, tf.stack([tf.shape(x)[0], -1]))  # row-major: channels-last order


@RULES.on("reshape")
def _reshape(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    x = ctx.get(node.inputs[0])
    shape = list(node.attrs["shape"])
    if -1 not in shape:
        return tf.reshape(x, [-1, *shape])
    return tf.reshape(x, tf.stack([tf.shape(x)[0], *shape]))


@RULES.on("transpose")
def _transpose(ctx: TfContext, node: Node) -> Any:
    return ctx.tf.transpose(ctx.get(node.inputs[0]), list(node.attrs["perm"]))


@RULES.on("concat")
def _concat(ctx: TfContext, node: Node) -> Any:
    return ctx.tf.concat([ctx.get(i) for i in node.inputs], axis=node.attrs["axis"])


@RULES.on("split")
def _split(ctx: TfContext, node: Node) -> tuple[Any, ...]:
    parts = ctx.tf.split(
        ctx.get(node.inputs[0]), list(node.attrs["sections"]), axis=node.attrs["axis"]
    )
    return tuple(parts)


@RULES.on("slice")
def _slice(ctx: TfContext, node: Node) -> Any:
    x, t = ctx.get(node.inputs[0]), ctx.type(node.inputs[0])
    a = node.attrs
    index: list[slice] = [slice(None)] * t.rank
    for axis, start, end, step in zip(a["axes"], a["starts"], a["ends"], a["steps"], strict=True):
        index[axis] = slice(start, end, step)  # StridedSlice: Python's clamping and negatives
    return x[tuple(index)]


@RULES.on("squeeze")
def _squeeze(ctx: TfContext, node: Node) -> Any:
    return ctx.tf.squeeze(ctx.get(node.inputs[0]), list(node.attrs["axes"]))


@RULES.on("expand_dims")
def _expand_dims(ctx: TfContext, node: Node) -> Any:
    return ctx.tf.expand_dims(ctx.get(node.inputs[0]), node.attrs["axis"])


@RULES.on("broadcast_like")
def _broadcast_like(ctx: TfContext, node: Node) -> Any:
    # both ways, as numpy: to the shape x and like broadcast to (like's values are not read)
    tf = ctx.tf
    x, like = (ctx.get(i) for i in node.inputs)
    return tf.broadcast_to(x, tf.broadcast_dynamic_shape(tf.shape(x), tf.shape(like)))


@RULES.on("pad")
def _pad(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    x, t = ctx.get(node.inputs[0]), ctx.type(node.inputs[0])
    a = node.attrs
    pads = [list(p) for p in a["pads"]]
    if a["mode"] == "constant":
        value = np.asarray(a["value"]).astype(TF_DTYPES[t.dtype].replace("bfloat16", "float32"))
        return tf.pad(x, pads, constant_values=tf.constant(value, x.dtype))
    if a["mode"] == "reflect":
        return tf.pad(x, pads, mode="REFLECT")
    # "edge" repeats the border cell (TF's SYMMETRIC mirrors it): a gather of clamped indices
    for axis, (before, after) in enumerate(a["pads"]):
        if before or after:
            size = t.shape[axis]
            assert isinstance(size, int), "the shape rule refuses padding a symbolic dim"
            index = np.clip(np.arange(-before, size + after), 0, size - 1)
            x = tf.gather(x, tf.constant(index, tf.int32), axis=axis)
    return x


def _resize_images(ctx: TfContext, x: Any, dtype: str, size: Any, method: str) -> Any:
    """tf.image.resize's half-pixel kernels, without antialiasing (ops/shape.py `resize`)."""
    tf = ctx.tf
    if method == "nearest":
        return tf.raw_ops.ResizeNearestNeighbor(
            images=x, size=size, align_corners=False, half_pixel_centers=True
        )
    y = tf.raw_ops.ResizeBilinear(images=x, size=size, align_corners=False, half_pixel_centers=True)
    return y if dtype == "f32" else tf.cast(y, x.dtype)  # TF's bilinear returns float32


@RULES.on("upsample")
def _upsample(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    x, t = ctx.get(node.inputs[0]), ctx.type(node.inputs[0])
    sizes = node.attrs["size"]
    if node.attrs["method"] == "bilinear":
        hw = [ctx.dim(x, t, 1) * sizes[0], ctx.dim(x, t, 2) * sizes[1]]
        size = hw if all(isinstance(d, int) for d in hw) else tf.stack(hw)
        return _resize_images(ctx, x, t.dtype, size, "bilinear")
    for axis, s in enumerate(sizes, start=1):
        if s > 1:
            x = tf.repeat(x, s, axis=axis)  # nearest: each cell `s` times
    return x


@RULES.on("resize")
def _resize(ctx: TfContext, node: Node) -> Any:
    t = ctx.type(node.inputs[0])
    x = ctx.get(node.inputs[0])
    return _resize_images(ctx, x, t.dtype, list(node.attrs["size"]), node.attrs["method"])
