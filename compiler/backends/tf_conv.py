"""The tf backend's rules for dense layers and convolutions (every kind of ops/conv.py), plain
and fused (`fused_dense`, `fused_conv`): the TF op, BiasAdd, then the epilogue, in the forms
grappler's remapper fuses on CPU; where a TF kernel lacks a form netc needs (dilated Conv3D or
transposed convolutions, unequal depthwise strides, depthwise under XLA) the same thing in ops
that have it (docs/tf.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..ir import Node, TensorType
from .tf_lower import HALF, RULES, TfContext, named_padding, pad_spatial
from .tf_rules import ACTIVATIONS


def _dilated(k: Sequence[int], d: Sequence[int]) -> tuple[int, ...]:
    return tuple((ki - 1) * di + 1 for ki, di in zip(k, d, strict=True))


def _dilate_kernel(kernel: np.ndarray, dilation: Sequence[int]) -> np.ndarray:
    """A kernel [*k, ...] with dilation - 1 zeros between its taps on each spatial axis: the
    same convolution at dilation 1 (for TF kernels that take no dilation on CPU)."""
    n = len(dilation)
    if all(d == 1 for d in dilation):
        return kernel
    shape = (*_dilated(kernel.shape[:n], dilation), *kernel.shape[n:])
    out = np.zeros(shape, kernel.dtype)
    out[tuple(slice(None, None, d) for d in dilation)] = kernel
    return out


# An epilogue runs after a dense or convolution's BiasAdd, on the result as the TF op made it
# (2-D for dense, with a unit height for 1-D convolutions): `like` brings a tensor of the
# node's output shape into that form (for a residual).
Epilogue = Callable[[Any, Callable[[Any], Any]], Any]


def _no_epilogue(y: Any, like: Callable[[Any], Any]) -> Any:
    return y


# --- rules: dense ----------------------------------------------------------------------------


def _dense_core(
    ctx: TfContext, node: Node, x_name: str, weights: Sequence[str], epilogue: Epilogue
) -> Any:
    """MatMul + BiasAdd (+ the epilogue) on a 2-D view of x: the form grappler fuses."""
    tf = ctx.tf
    x, t = ctx.get(x_name), ctx.type(x_name)
    kernel = ctx.const(weights[0])
    units = node.tensor_type.shape[-1]
    if t.rank == 2:
        y = tf.linalg.matmul(x, kernel)
        if node.attrs["bias"]:
            y = tf.nn.bias_add(y, ctx.const(weights[1]))
        return epilogue(y, lambda v: v)
    lead = t.shape[:-1]
    static = all(isinstance(d, int) for d in lead[1:])
    out_shape = (
        [-1, *lead[1:], units]
        if static
        else tf.concat([tf.shape(x)[:-1], tf.constant([units], tf.int32)], 0)
    )
    y = tf.linalg.matmul(tf.reshape(x, [-1, t.shape[-1]]), kernel)
    if node.attrs["bias"]:
        y = tf.nn.bias_add(y, ctx.const(weights[1]))
    y = epilogue(y, lambda v: tf.reshape(v, [-1, units]))
    return tf.reshape(y, out_shape)


@RULES.on("dense")
def _dense(ctx: TfContext, node: Node) -> Any:
    return _dense_core(ctx, node, node.inputs[0], node.inputs[1:], _no_epilogue)


# --- rules: convolutions ---------------------------------------------------------------------


def _spatial_type(t: TensorType, n: int) -> tuple[TensorType, int]:
    """A 1-D convolution runs as a 2-D one over a unit height: the type it sees, and its n."""
    if n == 1:
        return t.with_shape((t.shape[0], 1, *t.shape[1:])), 2
    return t, n


def _conv_core(
    ctx: TfContext,
    node: Node,
    base: str,
    attrs: Mapping[str, Any],
    weights: Sequence[str],
    epilogue: Epilogue,
) -> Any:
    """Any convolution of ops/conv.py (`weights`: its kernel(s), then its bias): the TF op,
    BiasAdd, the epilogue, on the TF op's own rank (a 1-D one as 2-D with a unit height,
    squeezed after)."""
    tf = ctx.tf
    x_name, kernel_name = node.inputs[0], weights[0]
    x, t = ctx.get(x_name), ctx.type(x_name)
    n = t.rank - 2
    kernel = ctx.array(kernel_name)
    stride, pads = tuple(attrs["stride"]), tuple(tuple(p) for p in attrs["padding"])
    dilation = tuple(attrs["dilation"])
    one_d = n == 1
    if one_d:  # [N, W, C] -> [N, 1, W, C]; kernels gain a unit height
        x = tf.expand_dims(x, 1)
        kernel = kernel[None]
        # the unit axis takes W's stride and dilation, which change nothing there (one cell,
        # a kernel of height 1) and keep them equal, as TF's depthwise kernel wants
        stride, dilation, pads = (stride[0], *stride), (dilation[0], *dilation), ((0, 0), *pads)
    work, n = _spatial_type(t, n)
    if base.startswith("depthwise"):
        y = _depthwise(ctx, x, work, kernel, kernel_name, stride, pads, dilation)
    elif base.startswith("separable"):  # depthwise (no bias), then a 1x1 Conv2D
        y = _depthwise(ctx, x, work, kernel, kernel_name, stride, pads, dilation)
        pointwise = ctx.array(weights[1])
        pointwise = pointwise.reshape(1, 1, *pointwise.shape[-2:])
        y = tf.nn.conv2d(y, ctx.const(weights[1], pointwise, "2d"), 1, "VALID")
    elif base.endswith("transpose"):
        y = _conv_transpose(ctx, node, x, work, kernel, kernel_name, stride, pads, dilation, attrs)
    elif n == 2 and attrs["groups"] > 1 and kernel.shape[-2] == 1:
        # one group per input channel (ConvNeXt's, Keras' depthwise as a grouped Conv2D): a
        # depthwise convolution, output channel c * M + j from group c's filter j
        c, f = attrs["groups"], kernel.shape[-1]
        y = _depthwise(
            ctx,
            x,
            work,
            kernel.reshape(*kernel.shape[:n], c, f // c),
            kernel_name,
            stride,
            pads,
            dilation,
        )
    else:
        y = _convolution(ctx, x, work, kernel, kernel_name, stride, pads, dilation, attrs["groups"])
    if attrs["bias"] and base in ("conv1d", "conv2d") and attrs["groups"] > 1:
        # grappler fuses Conv2D + BiasAdd into a kernel that refuses groups (not + AddV2)
        y = tf.math.add(y, ctx.const(weights[-1]))
    elif attrs["bias"]:
        y = tf.nn.bias_add(y, ctx.const(weights[-1]))
    if one_d:
        y = epilogue(y, lambda v: tf.expand_dims(v, 1))
        return tf.squeeze(y, [1])
    return epilogue(y, lambda v: v)


def _convolution(
    ctx: TfContext,
    x: Any,
    t: TensorType,
    kernel: np.ndarray,
    name: str,
    stride: tuple[int, ...],
    pads: tuple[tuple[int, int], ...],
    dilation: tuple[int, ...],
    groups: int,
) -> Any:
    tf = ctx.tf
    n = t.rank - 2
    window = _dilated(kernel.shape[:n], dilation)
    padding: Any = named_padding(t.shape[1:-1], window, stride, pads)
    if padding is None and n == 2:
        padding = [[0, 0], *[list(p) for p in pads], [0, 0]]  # Conv2D's EXPLICIT padding
    elif padding is None:
        x, padding = pad_spatial(ctx, x, pads, 0.0), "VALID"
    k = ctx.const(name, kernel, f"{n}d")
    if n == 2:  # Conv2D takes groups (a kernel of C / groups input channels) and dilation
        return tf.nn.conv2d(x, k, stride, padding, dilations=list(dilation))

    def conv3d(inp: Any, kern: Any) -> Any:
        if max(dilation) == 1:
            return tf.nn.conv3d(inp, kern, [1, *stride, 1], padding)
        # Conv3D takes no dilation on CPU: space_to_batch (stride is 1 then), as tf.nn does
        return tf.nn.with_space_to_batch(
            inp,
            list(dilation),
            padding,
            lambda i, _, pad: tf.nn.conv3d(i, kern, [1, 1, 1, 1, 1], pad),
            filter_shape=list(kernel.shape[:3]),
        )

    if groups == 1:
        return conv3d(x, k)
    # Conv3D has no groups on CPU: one convolution per group
    parts = tf.split(x, groups, axis=-1)
    kernels = tf.split(k, groups, axis=-1)
    return tf.concat([conv3d(p, kk) for p, kk in zip(parts, kernels, strict=True)], axis=-1)


def _depthwise(
    ctx: TfContext,
    x: Any,
    t: TensorType,
    kernel: np.ndarray,
    name: str,
    stride: tuple[int, ...],
    pads: tuple[tuple[int, int], ...],
    dilation: tuple[int, ...],
) -> Any:
    tf = ctx.tf
    if ctx.xla:
        return _depthwise_taps(ctx, x, t, kernel, name, stride, pads, dilation)
    window = _dilated(kernel.shape[:2], dilation)
    padding: Any = named_padding(t.shape[1:-1], window, stride, pads)
    if stride[0] != stride[1]:
        # TF's depthwise kernel on CPU needs equal strides (and a grouped Conv2D is fused with
        # its BiasAdd into a kernel without groups): stride 1 on netc's pads, then every
        # stride-th cell, which is the strided result (dilation is 1 with a stride)
        y = tf.nn.depthwise_conv2d(
            x, ctx.const(name, kernel, "2d"), [1, 1, 1, 1], [[0, 0], *map(list, pads), [0, 0]]
        )
        return y[:, :: stride[0], :: stride[1]]
    if padding is None and max(dilation) > 1:  # dilation runs by space_to_batch: named pads
        x, padding = pad_spatial(ctx, x, pads, 0.0), "VALID"
    elif padding is None:
        padding = [[0, 0], *[list(p) for p in pads], [0, 0]]
    return tf.nn.depthwise_conv2d(
        x, ctx.const(name, kernel, "2d"), [1, *stride, 1], padding, dilations=list(dilation)
    )


def _depthwise_taps(
    ctx: TfContext,
    x: Any,
    t: TensorType,
    kernel: np.ndarray,
    name: str,
    stride: tuple[int, ...],
    pads: tuple[tuple[int, int], ...],
    dilation: tuple[int, ...],
) -> Any:
    """The depthwise convolution for XLA: a sum over the kernel's taps of the (strided,
    dilated) shifted input times that tap's per-channel weights. XLA compiles a depthwise
    convolution op into a generic loop 10-40x slower on CPU than TF's kernel; it fuses these
    slices, products and sums (and the bias and activation after them) into one pass. Half
    dtypes accumulate in float32, as TF's kernel does."""
    tf = ctx.tf
    kh, kw, channels, multiplier = kernel.shape
    flat = kernel.reshape(kh, kw, channels * multiplier)  # output channel c * M + m
    taps = ctx.const(name, flat, "taps")
    sizes = []  # the output's spatial sizes: ints, or tensors for symbolic dims
    for axis, (k, s, d, (before, after)) in enumerate(
        zip((kh, kw), stride, dilation, pads, strict=True), start=1
    ):
        size = ctx.dim(x, t, axis)
        sizes.append((size + before + after - (k - 1) * d - 1) // s + 1)
    compute = tf.float32 if t.dtype in HALF else x.dtype
    x = pad_spatial(ctx, x, pads, 0.0)
    if multiplier > 1:
        x = tf.repeat(x, multiplier, axis=3)  # input channel c feeds outputs c * M .. + M - 1
    x = tf.cast(x, compute)
    taps = tf.cast(taps, compute)
    y = None
    for i in range(kh):
        for j in range(kw):
            r, c = i * dilation[0], j * dilation[1]
            rows = slice(r, r + (sizes[0] - 1) * stride[0] + 1, stride[0])
            cols = slice(c, c + (sizes[1] - 1) * stride[1] + 1, stride[1])
            term = x[:, rows, cols, :] * taps[i, j]
            y = term if y is None else y + term
    return tf.cast(y, ctx.dtype(t.dtype))


def _conv_transpose(
    ctx: TfContext,
    node: Node,
    x: Any,
    t: TensorType,
    kernel: np.ndarray,
    name: str,
    stride: tuple[int, ...],
    pads: tuple[tuple[int, int], ...],
    dilation: tuple[int, ...],
    attrs: Mapping[str, Any],
) -> Any:
    """The transposed convolution as TF's (Conv2DBackpropInput, Conv3DBackpropInputV2) with
    VALID padding, which writes the full scatter output plus, when the output reaches past it,
    zeros; netc's window is then sliced out of that (see ops/conv.py)."""
    tf = ctx.tf
    n = t.rank - 2
    extra = tuple(attrs["output_padding"])
    if len(extra) < n:  # a 1-D op running as 2-D
        extra = (0, *extra)
    kernel = _dilate_kernel(kernel, dilation)  # CPU kernels take no dilation (stride is 1 then)
    window = kernel.shape[:n]
    sizes = [ctx.dim(x, t, 1 + i) for i in range(n)]
    full = [(s - 1) * st + k for s, st, k in zip(sizes, stride, window, strict=True)]
    # past the full output only zeros (plus the bias): at most stride - 1 cells, which the
    # VALID gradient still writes
    reach = [f + max(e - p[1], 0) for f, e, p in zip(full, extra, pads, strict=True)]
    out = [f - p[0] - p[1] + e for f, p, e in zip(full, pads, extra, strict=True)]
    filters = kernel.shape[-2]
    batch = tf.shape(x)[0]
    shape = tf.stack([batch, *reach, filters])
    k = ctx.const(name, kernel, "dilated" if max(dilation) > 1 else "")
    if n == 2:
        y = tf.nn.conv2d_transpose(x, k, shape, list(stride), "VALID")
    else:
        y = tf.nn.conv3d_transpose(x, k, shape, [1, *stride, 1], "VALID")
    crop = any(p[0] for p in pads) or any(
        not (isinstance(o, int) and isinstance(r, int) and o == r)
        for o, r in zip(out, reach, strict=True)
    )
    if crop:
        index = (slice(None),) + tuple(
            slice(p[0], p[0] + o) for p, o in zip(pads, out, strict=True)
        )
        y = y[index]
    static = [o if isinstance(o, int) else None for o in out]
    y.set_shape([None, *static, filters])  # the slice's sizes, known when netc's are
    return y


@RULES.on(
    "conv1d",
    "conv2d",
    "conv3d",
    "depthwise_conv1d",
    "depthwise_conv2d",
    "separable_conv1d",
    "separable_conv2d",
    "conv1d_transpose",
    "conv2d_transpose",
    "conv3d_transpose",
)
def _conv(ctx: TfContext, node: Node) -> Any:
    return _conv_core(ctx, node, node.op, node.attrs, node.inputs[1:], _no_epilogue)


@RULES.on("fused_dense", "fused_conv")
def _fused(ctx: TfContext, node: Node) -> Any:
    """The base op, BiasAdd, then Add for the residual and the activation on the TF op's own
    result: Conv2D/MatMul + BiasAdd (+ Add) + Relu/Relu6/Elu/LeakyRelu, which grappler fuses."""
    from ..ops.fused import base_attrs, epilogue

    residual, activation, act_attrs = epilogue(node.attrs)
    skip = node.inputs[1] if residual else None
    tf = ctx.tf

    def finish(y: Any, like: Callable[[Any], Any]) -> Any:
        if skip is not None:
            y = tf.math.add(y, like(ctx.get(skip)))
        if activation != "none":
            y = ACTIVATIONS[activation](tf, y, act_attrs)
        return y

    attrs = base_attrs(node.attrs)
    if node.op == "fused_dense":
        return _dense_core(ctx, node, node.inputs[0], node.inputs[1 + residual :], finish)
    return _conv_core(ctx, node, node.attrs["base"], attrs, node.inputs[1 + residual :], finish)
