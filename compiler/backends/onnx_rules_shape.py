"""The ONNX backend's rules for reductions and shapes (reshape, transpose, concat, split, slice,
pad, resize, ...); they register in `to_onnx.RULES`, which imports this module. Each follows
its input's layout where ONNX lets it, so a channels-first value needs no transpose.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..ir import Node
from .to_onnx import INT64_MAX, INT64_MIN, RULES, OnnxContext, Value, onnx_axis, to_cf

# --- rules: reductions -----------------------------------------------------------------------

REDUCE = {
    "reduce_sum": "ReduceSum",
    "reduce_mean": "ReduceMean",
    "reduce_max": "ReduceMax",
    "reduce_min": "ReduceMin",
    "reduce_prod": "ReduceProd",
}


def _reduced(ctx: OnnxContext, name: str, axes: Sequence[int], keepdims: bool) -> Value:
    """Input `name` in a layout whose reduction over IR `axes` leaves a layout netc tracks:
    channels-first stays so with keepdims, or when the removed axes leave the order valid."""
    x, r = ctx.get(name), ctx.rank(name)
    if not x.cf or keepdims:
        return x
    kept = [a for a in to_cf(r) if a not in axes]
    order = [a - sum(b < a for b in axes) for a in kept]  # as axes of the result
    if order == sorted(order) or (len(order) >= 3 and order == list(to_cf(len(order)))):
        return x
    return ctx.get(name, cf=False)


def _result_cf(x: Value, rank: int, axes: Sequence[int], keepdims: bool) -> bool:
    if not x.cf:
        return False
    if keepdims:
        return True
    kept = [a for a in to_cf(rank) if a not in axes]
    order = [a - sum(b < a for b in axes) for a in kept]
    return order != sorted(order)


@RULES.on(*REDUCE)
def _reduce(ctx: OnnxContext, node: Node) -> Value:
    name, axes, keep = node.inputs[0], node.attrs["axis"], node.attrs["keepdims"]
    if node.tensor_type.dtype == "bool" and node.op in ("reduce_max", "reduce_min"):
        raise RULES.cannot(node, " on bool values (ONNX opset 18 has no bool reduction)")
    x, r = _reduced(ctx, name, axes, keep), ctx.rank(name)
    onnx_axes = ctx.ints(sorted(onnx_axis(a, r, x.cf) for a in axes), "axes")
    y = ctx.add(
        REDUCE[node.op], [x.name, onnx_axes], keepdims=int(keep), noop_with_empty_axes=1
    )  # no axes: nothing reduced, as in netc
    return Value(y, _result_cf(x, r, axes, keep))


@RULES.on("argmax")
def _argmax(ctx: OnnxContext, node: Node) -> Value:
    name, axis = node.inputs[0], node.attrs["axis"]
    x, r = _reduced(ctx, name, [axis], False), ctx.rank(name)
    y = ctx.add("ArgMax", [x.name], axis=onnx_axis(axis, r, x.cf), keepdims=0)
    return Value(y, _result_cf(x, r, [axis], False))


# --- rules: shape ----------------------------------------------------------------------------


@RULES.on("flatten")
def _flatten(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0], cf=False)  # keeps the channels-last element order (Keras')
    return Value(ctx.add("Flatten", [x.name], axis=1))


@RULES.on("reshape")
def _reshape(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0], cf=False)
    shape = ctx.ints([0, *node.attrs["shape"]], "shape")  # 0 copies the batch dim
    return Value(ctx.add("Reshape", [x.name, shape]))


@RULES.on("transpose")
def _transpose(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0])  # a channels-first input folds into the one permutation
    r = node.tensor_type.rank
    perm = [onnx_axis(p, r, x.cf) for p in node.attrs["perm"]]
    return Value(ctx.add("Transpose", [x.name], perm=perm))


@RULES.on("concat")
def _concat(ctx: OnnxContext, node: Node) -> Value:
    r = node.tensor_type.rank
    cf = r >= 3 and any(not ctx.is_data(i) and ctx.home(i) for i in node.inputs)
    xs = [ctx.get(i, cf=cf).name for i in node.inputs]
    return Value(ctx.add("Concat", xs, axis=onnx_axis(node.attrs["axis"], r, cf)), cf)


@RULES.on("split")
def _split(ctx: OnnxContext, node: Node) -> tuple[Value, ...]:
    x = ctx.get(node.inputs[0])
    sizes = node.attrs["sections"]
    axis = onnx_axis(node.attrs["axis"], ctx.rank(node.inputs[0]), x.cf)
    outs = ctx.add("Split", [x.name, ctx.ints(sizes, "sizes")], outputs=len(sizes), axis=axis)
    outs = [outs] if len(sizes) == 1 else outs
    return tuple(Value(o, x.cf) for o in outs)


@RULES.on("slice")
def _slice(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0])
    a, r = node.attrs, node.tensor_type.rank
    ends = [
        (INT64_MAX if s > 0 else INT64_MIN) if e is None else e
        for e, s in zip(a["ends"], a["steps"], strict=True)
    ]
    ins = [
        ctx.ints(a["starts"], "starts"),
        ctx.ints(ends, "ends"),
        ctx.ints([onnx_axis(i, r, x.cf) for i in a["axes"]], "axes"),
        ctx.ints(a["steps"], "steps"),
    ]
    return Value(ctx.add("Slice", [x.name, *ins]), x.cf)


@RULES.on("squeeze")
def _squeeze(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0], cf=False)
    return Value(ctx.add("Squeeze", [x.name, ctx.ints(node.attrs["axes"], "axes")]))


@RULES.on("expand_dims")
def _expand_dims(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0], cf=False)
    return Value(ctx.add("Unsqueeze", [x.name, ctx.ints([node.attrs["axis"]], "axes")]))


# ONNX Runtime's PadFusion (ENABLE_BASIC and above; onnxruntime/core/optimizer/pad_fusion.cc)
# folds a constant-0 Pad into the Conv, MaxPool or AveragePool it feeds, directly or through a
# Cast. Into Conv that is exact. Into MaxPool it is not: MaxPool's own padding is -inf, so a
# window of negative values loses the pad's 0 (ResNet-50 v2's stem: conv, pad, maxpool). The
# fusion leaves alone a Pad given its `axes` input (opset 18), which means the same when it
# lists every axis: netc emits that form unless only convolutions read the pad.
PAD_FUSES_EXACTLY = ("conv1d", "conv2d", "conv3d", "depthwise_conv1d", "depthwise_conv2d")


def _pad_fusion_is_exact(ctx: OnnxContext, pad: Node) -> bool:
    """Whether every reader of `pad` is a convolution reading it as its data input."""
    for name in ctx.graph.readers[pad.name]:
        if name == "<output>":
            return False
        n = ctx.graph[name]
        base = n.attrs["base"] if n.op == "fused_conv" else n.op
        if base not in PAD_FUSES_EXACTLY or pad.name in n.inputs[1:]:
            return False
    return True


@RULES.on("pad")
def _pad(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0])
    r, a = node.tensor_type.rank, node.attrs
    pairs = [a["pads"][i] for i in (to_cf(r) if x.cf else range(r))]
    ins = [x.name, ctx.ints([p[0] for p in pairs] + [p[1] for p in pairs], "pads")]
    if a["mode"] == "constant":
        ins.append(ctx.scalar(a["value"], node.tensor_type.dtype, "value"))
        if a["value"] == 0 and not _pad_fusion_is_exact(ctx, node):
            ins.append(ctx.ints(range(r), "axes"))  # every axis: ONNX Runtime does not fuse it
    return Value(ctx.add("Pad", ins, mode=a["mode"]), x.cf)


@RULES.on("upsample")
def _upsample(ctx: OnnxContext, node: Node) -> Value:
    # integer factors: nearest with asymmetric floor coordinates repeats each cell exactly;
    # bilinear is TF's half-pixel resize, which ONNX calls half_pixel
    x = ctx.get(node.inputs[0], cf=True)
    sizes = node.attrs["size"]
    scales = ctx.const(np.asarray([1, 1, *sizes], np.float32), "scales")
    modes: dict[str, Any]
    if node.attrs["method"] == "nearest":
        modes = dict(
            mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"
        )
    else:
        modes = dict(mode="linear", coordinate_transformation_mode="half_pixel")
    return Value(ctx.add("Resize", [x.name, "", scales], **modes), True)


@RULES.on("resize")
def _resize(ctx: OnnxContext, node: Node) -> Value:
    # sizes for every axis, [N, C] read at run time: ONNX Runtime's optimizer (1.2x) breaks
    # Resize's `axes` attribute
    x = ctx.get(node.inputs[0], cf=True)
    batch_channels = ctx.add("Shape", [x.name], start=0, end=2)
    sizes = ctx.add("Concat", [batch_channels, ctx.ints(node.attrs["size"], "sizes")], axis=0)
    modes: dict[str, Any]
    if node.attrs["method"] == "nearest":  # TF's floor((i + 0.5) / scale), said without the
        # deprecated tf_half_pixel_for_nn: round_prefer_ceil((i + 0.5) / scale - 0.5)
        modes = dict(
            mode="nearest",
            coordinate_transformation_mode="half_pixel",
            nearest_mode="round_prefer_ceil",
        )
    else:
        modes = dict(mode="linear", coordinate_transformation_mode="half_pixel")
    return Value(ctx.add("Resize", [x.name, "", "", sizes], **modes), True)


@RULES.on("broadcast_like")
def _broadcast_like(ctx: OnnxContext, node: Node) -> Value:
    # Expand broadcasts both ways, as numpy: to the shape of x and like broadcast together
    x, like = (ctx.get(i, cf=False).name for i in node.inputs)
    return Value(ctx.add("Expand", [x, ctx.add("Shape", [like])]))
