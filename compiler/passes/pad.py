"""Pad folding: an explicit zero pad before a convolution or max pooling becomes the op's own
padding."""

from __future__ import annotations

import math

from ..ir import Graph, Node
from .rewrite import Weights, infer, op_attrs, rebuild, with_origin

CONVS = ("conv1d", "conv2d", "conv3d", "depthwise_conv1d", "depthwise_conv2d")
# Ops whose every value is >= 0, so a zero pad before a max never wins it.
NON_NEGATIVE = ("relu", "relu6", "sigmoid", "softplus", "exp", "abs", "sqrt")


def fold_pad(graph: Graph, weights: Weights) -> tuple[Graph, Weights]:
    """`op(pad(x))` -> `op(x)` with the pad's (before, after) cells added to the op's padding.

    1. conv1d/2d/3d and depthwise_conv1d/2d after a "constant" pad of value 0: padded cells
       multiply the kernel by 0 either way.
    2. maxpool after a "constant" pad whose value never wins a max: -inf, or a value <= 0
       when `x` is never negative (it comes from relu, relu6, sigmoid, softplus, exp, abs,
       sqrt, or a fused op ending in relu, relu6 or sigmoid): ResNet-50's pad before its max
       pooling. The merged padding must stay smaller than the window (maxpool's own rule),
       so every window still holds a real cell.
    3. A pad read by several ops: each one that qualifies reads `x`; the pad stays for the rest.
    Refused: avgpool (it divides by the real cells a window covers: the pad's cells count,
    its own padding's do not, so merging changes border values); transposed convolutions;
    "reflect" and "edge" pads; a nonzero value before a conv; padding on the batch or
    channel axis; a merged padding the op's shape rule refuses or that changes its type.
    """
    replace: dict[str, tuple[Node, ...]] = {}
    for pad in graph.nodes:
        if pad.op != "pad" or pad.attrs["mode"] != "constant":
            continue
        pads = pad.attrs["pads"]
        if pads[0] != (0, 0) or pads[-1] != (0, 0):
            continue
        x = graph[pad.inputs[0]]
        for name in set(graph.readers[pad.name]) - {"<output>"}:
            op = graph[name]
            if op.inputs[0] != pad.name or pad.name in op.inputs[1:]:
                continue
            if not _pad_is_neutral(op, pad.attrs["value"], x):
                continue
            merged = tuple(
                (b0 + b1, a0 + a1)
                for (b0, a0), (b1, a1) in zip(pads[1:-1], op.attrs["padding"], strict=True)
            )
            inferred = infer(op.op, [x.tensor_type], {**op_attrs(op), "padding": merged})
            if inferred is None or inferred[0] != op.type:
                continue
            attrs = with_origin(inferred[1], op, [pad])
            replace[op.name] = (op.with_(inputs=(x.name, *op.inputs[1:]), attrs=attrs),)
    if not replace:
        return graph, weights
    return rebuild(graph, replace, {}), weights


def _pad_is_neutral(op: Node, value: float, x: Node) -> bool:
    """Padding `op`'s input with `value` means what `op`'s own padding means."""
    if op.op in CONVS:
        return value == 0
    if op.op == "maxpool":
        return value == -math.inf or (value <= 0 and _never_negative(x))
    return False


def _never_negative(x: Node) -> bool:
    if x.op in NON_NEGATIVE:
        return True
    return x.op in ("fused_conv", "fused_dense") and x.attrs["activation"] in (
        "relu",
        "relu6",
        "sigmoid",
    )
