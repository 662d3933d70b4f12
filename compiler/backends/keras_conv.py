"""The keras backend's rules for dense layers, convolutions (Keras' layers, or keras_layers'
padded and cropped subclasses where Keras' padding names other cells) and pooling, plain and
fused; `Absorbed` lays out again the layers of the nodes the optimizer merged into them.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..ir import Graph, Node, TensorType
from ..ops import OPS, ShapeError
from ..ops.fused import activation_attrs, base_attrs
from .keras_lower import RULES, KerasContext, ints
from .keras_rules import activation_layer

# --- nodes the optimizer merged ----------------------------------------------------------------


@dataclass(frozen=True)
class Absorbed:
    """The source-graph nodes an optimized node took in, whose layers the Keras model keeps
    (so it lists the layers `netc summary` lists): a zero `pad` folded into a convolution or
    max pooling (`pad`, with the op's own padding before the fold in `padding`), and the
    residual `add` and the activation a fused node absorbed (`add`, `activation`: their names;
    `add_first` when the sum's first operand was the residual)."""

    pad: Node | None = None
    padding: tuple[tuple[int, int], ...] | None = None
    add: str | None = None
    add_first: bool = False
    activation: str | None = None


def _absorbed(graph: Graph, source: Graph | None, node: Node) -> Absorbed:
    """What `node` absorbed, read from the `source` graph (nothing without it)."""
    if source is None or node.name not in source.by_name:
        return Absorbed()
    own = source[node.name]
    fused = node.op in ("fused_conv", "fused_dense")
    base_op = ("dense" if node.op == "fused_dense" else node.attrs["base"]) if fused else node.op
    if own.op != base_op:
        return Absorbed()
    pad, padding = None, None
    if "padding" in own.attrs and own.inputs and own.inputs[0] in source.by_name:
        before = source[own.inputs[0]]
        merged = node.attrs.get("padding")
        if (
            before.op == "pad"
            and node.inputs[0] != before.name
            and merged is not None
            and tuple(
                (b0 + b1, a0 + a1)
                for (b0, a0), (b1, a1) in zip(
                    before.attrs["pads"][1:-1], own.attrs["padding"], strict=True
                )
            )
            == tuple(merged)
        ):
            pad, padding = before, tuple(own.attrs["padding"])
    if not fused:
        return Absorbed(pad, padding)
    residual, activation = node.attrs["residual"], node.attrs["activation"]
    add, add_first, act = None, False, None
    current = own.name
    for _ in range(4):  # the chain conv -> [batchnorm] -> [add] -> activation, at most
        taken = [
            source[r]
            for r in source.readers.get(current, ())
            if r != "<output>" and r not in graph.by_name
        ]
        if not taken:
            break
        nxt = taken[0]
        if nxt.op == "add" and residual and add is None:
            add, add_first = nxt.name, nxt.inputs[1] == current
        elif nxt.op == activation:
            act = nxt.name
            break
        current = nxt.name
    return Absorbed(pad, padding, add, add_first, act)


# --- rules: helpers --------------------------------------------------------------------------


def _op_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if k != "origin"}


def _infers(op: str, x: TensorType, attrs: Mapping[str, Any], **changes: Any) -> bool:
    """Whether netc's shape rule canonicalizes `attrs` with `changes` (Keras' string padding)
    to the attributes the node has: then Keras' own option means the same cells."""
    try:
        _, canon = OPS[op].infer([x], {**_op_attrs(attrs), **changes})
    except (ShapeError, TypeError, ValueError):
        return False
    return all(canon.get(k) == v for k, v in _op_attrs(attrs).items())


def _padding_mode(op: str, x: TensorType, attrs: Mapping[str, Any]) -> str | None:
    """ "valid" or "same" when Keras' padding of that name pads exactly the node's cells."""
    if all(p == (0, 0) for p in attrs["padding"]):
        return "valid"
    if _infers(op, x, attrs, padding="same"):
        return "same"
    return None


# --- rules: dense, convolutions, pooling ------------------------------------------------------


@RULES.on("dense")
def _dense(ctx: KerasContext, node: Node) -> Any:
    a = node.attrs
    layer = ctx.layers.Dense(a["units"], use_bias=a["bias"], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]), params=ctx.params(node))


CONVS = {
    "conv1d": "Conv1D",
    "conv2d": "Conv2D",
    "conv3d": "Conv3D",
    "depthwise_conv1d": "DepthwiseConv1D",
    "depthwise_conv2d": "DepthwiseConv2D",
    "separable_conv1d": "SeparableConv1D",
    "separable_conv2d": "SeparableConv2D",
}
TRANSPOSED = {
    "conv1d_transpose": "Conv1DTranspose",
    "conv2d_transpose": "Conv2DTranspose",
    "conv3d_transpose": "Conv3DTranspose",
}


def _conv_layer(ctx: KerasContext, node: Node, x: TensorType) -> Any:
    a = node.attrs
    common: dict[str, Any] = dict(
        kernel_size=ints(a["kernel"]),
        strides=ints(a["stride"]),
        dilation_rate=ints(a["dilation"]),
        use_bias=a["bias"],
        **ctx.kw(),
    )
    if node.op.startswith("depthwise"):
        common["depth_multiplier"] = a["depth_multiplier"]
    elif node.op.startswith("separable"):
        common.update(filters=a["filters"], depth_multiplier=a["depth_multiplier"])
    else:
        common.update(filters=a["filters"], groups=a["groups"])
    mode = _padding_mode(node.op, x, a)
    if mode is not None:
        return getattr(ctx.layers, CONVS[node.op])(padding=mode, **common)
    padded = getattr(ctx.custom, "Padded" + CONVS[node.op])
    return padded(explicit_padding=a["padding"], **common)


def _transposed_layer(ctx: KerasContext, node: Node, x: TensorType) -> Any:
    a = node.attrs
    strides = ints(a["stride"])
    common: dict[str, Any] = dict(
        filters=a["filters"],
        kernel_size=ints(a["kernel"]),
        strides=strides,
        dilation_rate=ints(a["dilation"]),
        use_bias=a["bias"],
        **ctx.kw(),
    )
    # Keras' own layer when one of its (padding, output_padding) settings is the node's (and
    # not dilated: TensorFlow runs no dilated transposed convolution on the CPU)
    for mode in ("valid", "same") if all(d == 1 for d in ints(a["dilation"])) else ():
        for extra in [None, *itertools.product(*(range(s) for s in strides))]:
            if _infers(node.op, x, a, padding=mode, output_padding=extra):
                return getattr(ctx.layers, TRANSPOSED[node.op])(
                    padding=mode, output_padding=extra, **common
                )
    # otherwise the full ("valid") output, grown by output_padding where netc reads past its
    # end, then cropped by the pairs
    crop, grow = [], []
    for (before, after), extra in zip(a["padding"], a["output_padding"], strict=True):
        crop.append((before, max(after - extra, 0)))
        grow.append(max(extra - after, 0))
    cropped = getattr(ctx.custom, "Cropped" + TRANSPOSED[node.op])
    return cropped(crop=crop, output_padding=tuple(grow), **common)


def _padded_input(ctx: KerasContext, node: Node, absorbed: Absorbed) -> tuple[Any, Node]:
    """The conv or pool's input and the node to lower: with a pad the optimizer folded in,
    that pad's own layer (named after it, made once) and the node's padding before the fold."""
    x = node.inputs[0]
    if absorbed.pad is None or absorbed.padding is None:
        return ctx.tensor(x), node
    pad = absorbed.pad
    if pad.name not in ctx.values:  # not computed for other readers, nor for another fold
        ctx.values[pad.name] = ctx.lower_as(pad.with_(inputs=(x,)), pad.name)
    return ctx.values[pad.name], node.with_(attrs={**node.attrs, "padding": absorbed.padding})


def _conv_node(ctx: KerasContext, node: Node, absorbed: Absorbed) -> Any:
    """The layers of a convolution (any kind) node."""
    if node.op in TRANSPOSED:
        x = ctx.type(node.inputs[0])
        layer = _transposed_layer(ctx, node, x)
        return ctx.apply(layer, ctx.tensor(node.inputs[0]), params=ctx.params(node))
    padded, node = _padded_input(ctx, node, absorbed)
    x = ctx.type(node.inputs[0])
    if absorbed.pad is not None and absorbed.padding is not None:
        x = x.with_shape(
            [
                d + b + a if isinstance(d, int) else d
                for d, (b, a) in zip(x.shape, absorbed.pad.attrs["pads"], strict=True)
            ]
        )
    layer = _conv_layer(ctx, node, x)
    return ctx.apply(layer, padded, params=ctx.params(node))


@RULES.on(*(op for op in (*CONVS, *TRANSPOSED) if op in OPS))
def _conv(ctx: KerasContext, node: Node) -> Any:
    return _conv_node(ctx, node, _absorbed(ctx.graph, ctx.source, node))


@RULES.on("fused_dense", "fused_conv")
def _fused(ctx: KerasContext, node: Node) -> Any:
    """The base op's layer (named after the node), an Add for the residual, then the
    activation's layer: named after the source nodes the optimizer fused when known
    (`Absorbed`), else `<node>.add` and `<node>.<activation>`."""
    absorbed = _absorbed(ctx.graph, ctx.source, node)
    residual, activation = node.attrs["residual"], node.attrs["activation"]
    x, rest = node.inputs[0], node.inputs[1:]
    skip = rest[0] if residual else None
    base = node.with_(
        op="dense" if node.op == "fused_dense" else node.attrs["base"],
        inputs=(x, *rest[int(residual) :]),
        attrs=base_attrs(node.attrs),
    )
    if base.op == "dense":
        y = _dense(ctx, base)
    else:
        y = _conv_node(ctx, base, absorbed)
    if skip is not None:
        name = ctx.claim(absorbed.add) if absorbed.add else ctx.fresh(f"{node.name}.add")
        pair = [ctx.tensor(skip), y] if absorbed.add_first else [y, ctx.tensor(skip)]
        y = ctx.apply(ctx.layers.Add(**ctx.kw(node, name)), pair)
    if activation != "none":
        name = (
            ctx.claim(absorbed.activation)
            if absorbed.activation
            else ctx.fresh(f"{node.name}.{activation}")
        )
        layer = activation_layer(ctx, activation, activation_attrs(node.attrs), node, name)
        y = ctx.apply(layer, y)
    return y


POOLS = {"maxpool": "MaxPooling", "avgpool": "AveragePooling"}


@RULES.on(*POOLS)
def _pool(ctx: KerasContext, node: Node) -> Any:
    absorbed = _absorbed(ctx.graph, ctx.source, node)
    padded, node = _padded_input(ctx, node, absorbed)
    a = node.attrs
    x = ctx.type(node.inputs[0])
    if absorbed.pad is not None:
        x = x.with_shape(
            [
                d + b + e if isinstance(d, int) else d
                for d, (b, e) in zip(x.shape, absorbed.pad.attrs["pads"], strict=True)
            ]
        )
    n = len(a["size"])
    common = dict(pool_size=ints(a["size"]), strides=ints(a["stride"]), **ctx.kw())
    mode = _padding_mode(node.op, x, a)
    if mode is not None:
        layer = getattr(ctx.layers, f"{POOLS[node.op]}{n}D")(padding=mode, **common)
    else:  # avgpool: padded cells are not counted, as in Keras' "same"
        layer = getattr(ctx.custom, f"Padded{POOLS[node.op]}{n}D")(
            explicit_padding=a["padding"], **common
        )
    return ctx.apply(layer, padded)


@RULES.on("global_avgpool", "global_maxpool")
def _global_pool(ctx: KerasContext, node: Node) -> Any:
    n = ctx.type(node.inputs[0]).rank - 2
    kind = "Average" if node.op == "global_avgpool" else "Max"
    layer = getattr(ctx.layers, f"Global{kind}Pooling{n}D")(
        keepdims=node.attrs["keepdims"], **ctx.kw()
    )
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))
