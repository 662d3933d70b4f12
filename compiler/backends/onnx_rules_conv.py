"""The ONNX backend's rules for dense layers, convolutions (plain, depthwise, transposed,
separable), pooling, the fused ops and normalization; they register in `to_onnx.RULES`, which
imports this module. Every spatial op runs channels-first, as ONNX's Conv and pools do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..ir import Node, numpy_dtype
from .to_onnx import ACTIVATIONS, RULES, OnnxContext, Value, _window, onnx_axis, to_cf

# --- rules: dense, convolutions, pooling ------------------------------------------------------


@RULES.on("dense")
def _dense(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0], cf=False).name
    ins = [x] + [ctx.weight(w) for w in node.inputs[1:]]
    if node.tensor_type.rank == 2:
        return Value(ctx.add("Gemm", ins))
    y = ctx.add("MatMul", ins[:2])
    return Value(ctx.add("Add", [y, ins[2]]) if node.attrs["bias"] else y)


def _bias(ctx: OnnxContext, node: Node) -> list[str]:
    return [ctx.weight(node.inputs[2])] if node.attrs["bias"] else []


@RULES.on("conv1d", "conv2d", "conv3d")
def _conv(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0], cf=True)
    n = len(node.attrs["kernel"])
    kernel = ctx.array(node.inputs[1]).transpose(n + 1, n, *range(n))  # [F, C/g, *k]
    w = ctx.weight(node.inputs[1], kernel, "oihw")
    return Value(
        ctx.add(
            "Conv",
            [x.name, w, *_bias(ctx, node)],
            group=node.attrs["groups"],
            **_window(node.attrs),
        ),
        True,
    )


@RULES.on("depthwise_conv1d", "depthwise_conv2d")
def _depthwise(ctx: OnnxContext, node: Node) -> Value:
    # a grouped conv with one group per input channel; output channel c*M + j is filter j of c
    x = ctx.get(node.inputs[0], cf=True)
    n = len(node.attrs["kernel"])
    k = ctx.array(node.inputs[1])  # [*k, C, M]
    c = k.shape[-2]
    kernel = k.reshape(*k.shape[:-2], -1).transpose(n, *range(n))[:, None]  # [C*M, 1, *k]
    w = ctx.weight(node.inputs[1], kernel, "oihw")
    return Value(
        ctx.add("Conv", [x.name, w, *_bias(ctx, node)], group=c, **_window(node.attrs)), True
    )


@RULES.on("conv1d_transpose", "conv2d_transpose", "conv3d_transpose")
def _conv_transpose(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0], cf=True)
    n = len(node.attrs["kernel"])
    kernel = ctx.array(node.inputs[1]).transpose(n + 1, n, *range(n))  # [C, F, *k]
    w = ctx.weight(node.inputs[1], kernel, "iohw")
    return Value(
        ctx.add(
            "ConvTranspose",
            [x.name, w, *_bias(ctx, node)],
            output_padding=list(node.attrs["output_padding"]),
            **_window(node.attrs),
        ),
        True,
    )


@RULES.on("maxpool")
def _maxpool(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0], cf=True)
    return Value(ctx.add("MaxPool", [x.name], **_window(node.attrs, "size")), True)


@RULES.on("avgpool")
def _avgpool(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0], cf=True)
    return Value(
        ctx.add("AveragePool", [x.name], count_include_pad=0, **_window(node.attrs, "size")), True
    )


@RULES.on("global_avgpool", "global_maxpool")
def _global_pool(ctx: OnnxContext, node: Node) -> Value:
    name, keep = node.inputs[0], node.attrs["keepdims"]
    r = ctx.rank(name)
    if ctx.has(name, True):  # channels-first: the global pool op, then drop the spatial axes
        x = ctx.get(name, cf=True)
        y = ctx.add(
            "GlobalAveragePool" if node.op == "global_avgpool" else "GlobalMaxPool", [x.name]
        )
        if keep:
            return Value(y, True)
        return Value(ctx.add("Squeeze", [y, ctx.ints(range(2, r), "axes")]))
    reduce = "ReduceMean" if node.op == "global_avgpool" else "ReduceMax"
    x = ctx.get(name, cf=False)  # channels-last: a reduction, no transpose
    return Value(ctx.add(reduce, [x.name, ctx.ints(range(1, r - 1), "axes")], keepdims=int(keep)))


@RULES.on("fused_dense", "fused_conv")
def _fused(ctx: OnnxContext, node: Node) -> Value:
    """The base op's rule, then Add for the residual, then the activation (ops/fused.py)."""
    from ..ops.fused import base_attrs, epilogue

    residual, activation, act_attrs = epilogue(node.attrs)
    x, rest = node.inputs[0], node.inputs[1:]
    skip = rest[0] if residual else None
    base = Node(
        node.name,
        "dense" if node.op == "fused_dense" else node.attrs["base"],
        (x, *rest[int(residual) :]),
        base_attrs(node.attrs),
        node.type,
        node.span,
        node.calls,
    )
    y = RULES.rule(base)(ctx, base)
    if skip is not None:
        y = Value(ctx.add("Add", [y.name, ctx.get(skip, cf=y.cf).name]), y.cf)
    if activation != "none":
        y = Value(ACTIVATIONS[activation](ctx, y.name, node.tensor_type.dtype, act_attrs), y.cf)
    return y


# --- rules: separable convolutions ----------------------------------------------------------


@RULES.on("separable_conv1d", "separable_conv2d")
def _separable(ctx: OnnxContext, node: Node) -> Value:
    # Keras' SeparableConv: a grouped Conv (one group per input channel, no bias), then a 1x1
    # Conv of its C*M channels with the bias; both channels-first
    x = ctx.get(node.inputs[0], cf=True)
    n = len(node.attrs["kernel"])
    dw = ctx.array(node.inputs[1])  # [*k, C, M]
    depthwise = dw.reshape(*dw.shape[:-2], -1).transpose(n, *range(n))[:, None]  # [C*M, 1, *k]
    y = ctx.add(
        "Conv",
        [x.name, ctx.weight(node.inputs[1], depthwise, "oihw")],
        group=dw.shape[-2],
        **_window(node.attrs),
    )
    pw = ctx.array(node.inputs[2])  # [*1, C*M, F]
    pointwise = pw.transpose(n + 1, n, *range(n))  # [F, C*M, *1]
    bias = [ctx.weight(node.inputs[3])] if node.attrs["bias"] else []
    w = ctx.weight(node.inputs[2], pointwise, "oihw")
    return Value(ctx.add("Conv", [y, w, *bias], kernel_shape=[1] * n), True)


# --- rules: normalization ---------------------------------------------------------------------


def _broadcast(ctx: OnnxContext, name: str, rank: int, axes: Sequence[int], form: str) -> str:
    """Weight `name` (over the emitted axes `axes`, in IR order) shaped to broadcast against a
    rank-`rank` tensor."""
    a = ctx.array(name)
    order = sorted(range(len(axes)), key=lambda i: axes[i])
    shape = [1] * rank
    for i in order:
        shape[axes[i]] = a.shape[i]
    return ctx.weight(name, a.transpose(order).reshape(shape), form)


@RULES.on("batchnorm")
def _batchnorm(ctx: OnnxContext, node: Node) -> Value:
    a, name = node.attrs, node.inputs[0]
    r = ctx.rank(name)
    dt = node.tensor_type.dtype
    weights = list(node.inputs[1:])
    gamma = weights.pop(0) if a["scale"] else None
    beta = weights.pop(0) if a["center"] else None
    mean, var = weights
    channels = node.tensor_type.shape[a["axis"]]
    # BatchNormalization where the axis is ONNX's axis 1 in an available layout; elsewhere the
    # same arithmetic in the input's own layout: never a transpose of its own
    for cf in (ctx.home(name), not ctx.home(name)):
        if r >= 2 and onnx_axis(a["axis"], r, cf and r >= 3) == 1 and ctx.has(name, cf):
            x = ctx.get(name, cf=cf)
            ones = np.ones(channels, numpy_dtype(dt))
            scale = ctx.weight(gamma) if gamma else ctx.const(ones, "scale")
            shift = ctx.weight(beta) if beta else ctx.const(ones * 0, "shift")
            return Value(
                ctx.add(
                    "BatchNormalization",
                    [x.name, scale, shift, ctx.weight(mean), ctx.weight(var)],
                    epsilon=a["epsilon"],
                ),
                x.cf,
            )
    x = ctx.get(name)
    axes = [onnx_axis(a["axis"], r, x.cf)]
    inv = ctx.add(
        "Sqrt",
        [
            ctx.add(
                "Add",
                [
                    _broadcast(ctx, var, r, axes, "broadcast"),
                    ctx.scalar(a["epsilon"], dt, "epsilon"),
                ],
            )
        ],
    )
    if gamma:
        inv = ctx.add("Div", [_broadcast(ctx, gamma, r, axes, "broadcast"), inv])
    else:
        inv = ctx.add("Reciprocal", [inv])
    y = ctx.add("Mul", [ctx.add("Sub", [x.name, _broadcast(ctx, mean, r, axes, "broadcast")]), inv])
    if beta:
        y = ctx.add("Add", [y, _broadcast(ctx, beta, r, axes, "broadcast")])
    return Value(y, x.cf)


@RULES.on("layernorm")
def _layernorm(ctx: OnnxContext, node: Node) -> Value:
    a, name = node.attrs, node.inputs[0]
    t = node.tensor_type
    r, dt = t.rank, t.dtype
    x = ctx.get(name)
    axes = [onnx_axis(i, r, x.cf) for i in a["axis"]]  # emitted axes, in the weights' IR order
    weights = list(node.inputs[1:])
    gamma = weights.pop(0) if a["scale"] else None
    beta = weights.pop(0) if a["center"] else None
    first = min(axes)
    if sorted(axes) == list(range(first, r)):  # trailing axes: LayerNormalization itself
        order = sorted(range(len(axes)), key=lambda i: axes[i])

        def trailing(w: str) -> str:
            return ctx.weight(w, ctx.array(w).transpose(order), "trailing")

        shape = [t.shape[i] for i in (to_cf(r) if x.cf else range(r))][first:]
        scale = trailing(gamma) if gamma else ctx.const(np.ones(shape, numpy_dtype(dt)), "scale")
        ins = [x.name, scale] + ([trailing(beta)] if beta else [])
        return Value(ctx.add("LayerNormalization", ins, axis=first, epsilon=a["epsilon"]), x.cf)
    # other axes: mean and biased variance over them, in the input's own layout
    axes_in = ctx.ints(sorted(axes), "axes")
    centered = ctx.add("Sub", [x.name, ctx.add("ReduceMean", [x.name, axes_in], keepdims=1)])
    var = ctx.add("ReduceMean", [ctx.add("Mul", [centered, centered]), axes_in], keepdims=1)
    std = ctx.add("Sqrt", [ctx.add("Add", [var, ctx.scalar(a["epsilon"], dt, "epsilon")])])
    y = ctx.add("Div", [centered, std])
    if gamma:
        y = ctx.add("Mul", [y, _broadcast(ctx, gamma, r, axes, "broadcast")])
    if beta:
        y = ctx.add("Add", [y, _broadcast(ctx, beta, r, axes, "broadcast")])
    return Value(y, x.cf)
