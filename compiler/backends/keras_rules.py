"""The keras backend's rules for elementwise ops, normalization, reductions, shape ops,
embeddings, recurrent layers and attention: Keras' own layer where one exists, else a layer of
keras_layers.py (convolutions and pooling are in `keras_conv`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..ir import Node
from ..ops import OPS
from .keras_lower import KERAS_DTYPES, RULES, KerasContext, ints

# --- rules: elementwise ----------------------------------------------------------------------

ACTIVATIONS = {"sigmoid": "sigmoid", "tanh": "tanh", "silu": "silu", "softplus": "softplus"}
ACTIVATIONS["exp"] = "exponential"
UNARY = ("log", "sqrt", "abs", "neg")


def activation_layer(
    ctx: KerasContext, op: str, attrs: Mapping[str, Any], node: Node, name: str
) -> Any:
    """A Keras layer computing activation `op` (relu, gelu, ...) with `attrs`."""
    L, kw = ctx.layers, ctx.kw(node, name)
    if op == "relu":
        return L.ReLU(**kw)
    if op == "relu6":
        return L.ReLU(max_value=6.0, **kw)
    if op == "leaky_relu":
        return L.LeakyReLU(negative_slope=attrs["alpha"], **kw)
    if op == "elu":
        return L.ELU(alpha=attrs["alpha"], **kw)
    if op == "gelu":  # Keras' gelu is exact (erf) by default; the tanh form has no name
        if attrs["approximate"]:
            return ctx.custom.Unary("gelu_tanh", **kw)
        return L.Activation("gelu", **kw)
    if op in ACTIVATIONS:
        return L.Activation(ACTIVATIONS[op], **kw)
    if op in ("hard_sigmoid", "hard_swish", "hard_silu"):  # Keras 3's own definitions
        return L.Activation("hard_silu" if op != "hard_sigmoid" else "hard_sigmoid", **kw)
    assert op in UNARY, op
    return ctx.custom.Unary(op, **kw)


ELEMENTWISE = ("relu", "relu6", "leaky_relu", "elu", "gelu", *ACTIVATIONS, *UNARY)


# each activation as a Keras activation function (name, arguments), for a weight's value
FUNCTIONS: dict[str, Any] = {
    "exp": lambda a: ("exponential", {}),
    "leaky_relu": lambda a: ("leaky_relu", {"negative_slope": a["alpha"]}),
    "elu": lambda a: ("elu", {"alpha": a["alpha"]}),
    "gelu": lambda a: ("gelu_tanh" if a["approximate"] else "gelu", {}),
    "hard_swish": lambda a: ("hard_silu", {}),
}


@RULES.on(*ELEMENTWISE)
def _elementwise(ctx: KerasContext, node: Node) -> Any:
    x = node.inputs[0]
    if ctx.is_data(x):  # a weight or constant of the model (`sigmoid(gate)`)
        spec, _, param = ctx.operand(x)
        function, args = FUNCTIONS.get(node.op, lambda a: (node.op, {}))(node.attrs)
        layer = ctx.custom.Unary(function, spec, args, **ctx.kw())
        return ctx.apply(layer, ctx.anchor(), params=[param] if param else [])
    layer = activation_layer(ctx, node.op, node.attrs, node, ctx.name)
    return ctx.apply(layer, ctx.tensor(x))


def _register_optional(*ops: str) -> None:
    """Rules for activations that only some versions of the op table have."""
    present = [op for op in ops if op in OPS and op not in RULES]
    if present:
        RULES.on(*present)(_elementwise)


_register_optional("hard_sigmoid", "hard_swish", "hard_silu")


@RULES.on("softmax")
def _softmax(ctx: KerasContext, node: Node) -> Any:
    layer = ctx.layers.Softmax(axis=node.attrs["axis"], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("dropout")
def _dropout(ctx: KerasContext, node: Node) -> Any:
    # Keras' Dropout: the identity unless training (survivors scaled by 1 / (1 - rate))
    layer = ctx.layers.Dropout(node.attrs["rate"], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("cast")
def _cast(ctx: KerasContext, node: Node) -> Any:
    layer = ctx.custom.Cast(KERAS_DTYPES[node.attrs["dtype"]], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


MERGE = {
    "add": "Add",
    "sub": "Subtract",
    "mul": "Multiply",
    "maximum": "Maximum",
    "minimum": "Minimum",
}


@RULES.on(*MERGE, "div", "matmul", *(op for op in ("broadcast_like",) if op in OPS))
def _binary(ctx: KerasContext, node: Node) -> Any:
    a, b = node.inputs
    if (
        node.op in MERGE
        and not ctx.is_data(a)
        and not ctx.is_data(b)
        and ctx.type(a) == ctx.type(b) == node.type
    ):  # Keras' merge layers: same shapes, no broadcasting
        layer = getattr(ctx.layers, MERGE[node.op])(**ctx.kw())
        return ctx.apply(layer, [ctx.tensor(a), ctx.tensor(b)])
    operands = [ctx.operand(i) for i in (a, b)]
    inputs = [t for _, t, _ in operands if t is not None]
    params = [p for _, _, p in operands if p is not None]
    if not inputs:
        raise RULES.cannot(node, ": both operands are weights or constants")
    layer = ctx.custom.Binary(node.op, [spec for spec, _, _ in operands], **ctx.kw())
    return ctx.apply(layer, inputs[0] if len(inputs) == 1 else inputs, params=params)


# --- rules: normalization --------------------------------------------------------------------


@RULES.on("batchnorm")
def _batchnorm(ctx: KerasContext, node: Node) -> Any:
    # netc's epsilon and momentum are Keras' (momentum weighs the old moving statistic)
    a = node.attrs
    layer = ctx.layers.BatchNormalization(
        axis=a["axis"],
        epsilon=a["epsilon"],
        momentum=a["momentum"],
        center=a["center"],
        scale=a["scale"],
        **ctx.kw(),
    )
    return ctx.apply(layer, ctx.tensor(node.inputs[0]), params=ctx.params(node))


@RULES.on("layernorm")
def _layernorm(ctx: KerasContext, node: Node) -> Any:
    a = node.attrs
    layer = ctx.layers.LayerNormalization(
        axis=list(a["axis"]), epsilon=a["epsilon"], center=a["center"], scale=a["scale"], **ctx.kw()
    )
    return ctx.apply(layer, ctx.tensor(node.inputs[0]), params=ctx.params(node))


# --- rules: reductions -----------------------------------------------------------------------


@RULES.on("reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod")
def _reduce(ctx: KerasContext, node: Node) -> Any:
    a = node.attrs
    layer = ctx.custom.Reduce(node.op, list(a["axis"]), a["keepdims"], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("argmax")
def _argmax(ctx: KerasContext, node: Node) -> Any:
    layer = ctx.custom.ArgMax(node.attrs["axis"], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


# --- rules: shape ----------------------------------------------------------------------------


@RULES.on("flatten")
def _flatten(ctx: KerasContext, node: Node) -> Any:
    # channels-last element order, as netc's (Keras' data_format default)
    layer = ctx.layers.Flatten(**ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("reshape")
def _reshape(ctx: KerasContext, node: Node) -> Any:
    layer = ctx.layers.Reshape(ints(node.attrs["shape"]), **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("transpose")
def _transpose(ctx: KerasContext, node: Node) -> Any:
    perm = ints(node.attrs["perm"])
    if perm[0] == 0:  # Keras' Permute: the non-batch axes, counted from 1
        layer = ctx.layers.Permute(perm[1:], **ctx.kw())
    else:
        layer = ctx.custom.Transpose(list(perm), **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("concat")
def _concat(ctx: KerasContext, node: Node) -> Any:
    xs = [ctx.tensor(i) for i in node.inputs]
    axis = node.attrs["axis"]
    if len(xs) >= 2 and axis >= 1:
        return ctx.apply(ctx.layers.Concatenate(axis=axis, **ctx.kw()), xs)
    return ctx.apply(ctx.custom.Concat(axis, **ctx.kw()), xs)


@RULES.on("split")
def _split(ctx: KerasContext, node: Node) -> Any:
    a = node.attrs
    layer = ctx.custom.Split(list(a["sections"]), a["axis"], **ctx.kw())
    return tuple(ctx.apply(layer, ctx.tensor(node.inputs[0])))


@RULES.on("slice")
def _slice(ctx: KerasContext, node: Node) -> Any:
    a = node.attrs
    layer = ctx.custom.Slice(
        list(a["axes"]), list(a["starts"]), list(a["ends"]), list(a["steps"]), **ctx.kw()
    )
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("squeeze")
def _squeeze(ctx: KerasContext, node: Node) -> Any:
    layer = ctx.custom.Squeeze(list(node.attrs["axes"]), **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("expand_dims")
def _expand_dims(ctx: KerasContext, node: Node) -> Any:
    layer = ctx.custom.ExpandDims(node.attrs["axis"], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


def _zero_padding(pads: Sequence[Sequence[int]]) -> Any:
    spatial = tuple(ints(p) for p in pads[1:-1])
    return spatial[0] if len(spatial) == 1 else spatial


@RULES.on("pad")
def _pad(ctx: KerasContext, node: Node) -> Any:
    a = node.attrs
    pads = a["pads"]
    r = len(pads)
    if (
        a["mode"] == "constant"
        and a["value"] == 0
        and 3 <= r <= 5
        and pads[0] == (0, 0)
        and pads[-1] == (0, 0)
    ):
        layer = getattr(ctx.layers, f"ZeroPadding{r - 2}D")(padding=_zero_padding(pads), **ctx.kw())
    else:
        layer = ctx.custom.Pad(pads, a["mode"], a["value"], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("upsample")
def _upsample(ctx: KerasContext, node: Node) -> Any:
    a = node.attrs
    size = ints(a["size"])
    n = len(size)
    if n == 1:
        layer = ctx.layers.UpSampling1D(size[0], **ctx.kw())
    elif n == 2:  # bilinear: TF's half-pixel resize, as netc's
        layer = ctx.layers.UpSampling2D(size, interpolation=a["method"], **ctx.kw())
    else:
        layer = ctx.layers.UpSampling3D(size, **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("resize")
def _resize(ctx: KerasContext, node: Node) -> Any:
    # tf.image.resize without antialias: half-pixel centers, as netc's
    h, w = ints(node.attrs["size"])
    layer = ctx.layers.Resizing(h, w, interpolation=node.attrs["method"], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


# --- rules: embeddings, recurrent, attention --------------------------------------------------


@RULES.on("embedding")
def _embedding(ctx: KerasContext, node: Node) -> Any:
    a = node.attrs
    layer = ctx.layers.Embedding(a["vocab"], a["dim"], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]), params=ctx.params(node))


@RULES.on("positional_embedding")
def _positional_embedding(ctx: KerasContext, node: Node) -> Any:
    layer = ctx.custom.PositionalEmbedding(node.attrs["max_length"], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]), params=ctx.params(node))


@RULES.on("lstm", "gru")
def _recurrent(ctx: KerasContext, node: Node) -> Any:
    # Keras' gate orders (LSTM i f c o, GRU z r h) and weight layouts are netc's; go_backwards
    # returns the sequence in processing order in both
    a = node.attrs
    common = dict(
        units=a["units"],
        return_sequences=a["return_sequences"],
        return_state=a["return_state"],
        go_backwards=a["go_backwards"],
        **ctx.kw(),
    )
    if node.op == "lstm":
        layer = ctx.layers.LSTM(**common)
    else:
        layer = ctx.layers.GRU(reset_after=a["reset_after"], **common)
    y = ctx.apply(layer, ctx.tensor(node.inputs[0]), params=ctx.params(node))
    return tuple(y) if a["return_state"] else y


@RULES.on("multi_head_attention")
def _attention(ctx: KerasContext, node: Node) -> Any:
    a = node.attrs
    params = ctx.params(node)
    data = [i for i in node.inputs if i not in params]
    query = ctx.tensor(data[0])
    value = ctx.tensor(data[1]) if len(data) > 1 else query
    key = ctx.tensor(data[2]) if len(data) > 2 else None
    layer = ctx.layers.MultiHeadAttention(
        num_heads=a["heads"],
        key_dim=a["key_dim"],
        value_dim=a["value_dim"],
        output_shape=a["output_dim"],
        use_bias=a["bias"],
        **ctx.kw(),
    )
    kwargs: dict[str, Any] = {"use_causal_mask": a["causal"]}
    if key is not None:
        kwargs["key"] = key
    return ctx.apply(layer, query, value, params=params, **kwargs)
