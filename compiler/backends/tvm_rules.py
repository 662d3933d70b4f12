"""The TVM backend's op rules (activations, arithmetic, dense and matmul, convolutions, pooling,
normalization, reductions, shapes): each lowers one IR node to Relax ops (TE where Relax has
none) in `RULES`, the backend's one table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..ir import DTYPES, Dim, Node, numpy_dtype
from .tvm_lower import HALF, RULES, TvmContext, identifier

# kernel and data layouts of the 1-D, 2-D and 3-D convolutions: the IR's own (channels-last)
SPATIAL = {1: ("NWC", "WIO"), 2: ("NHWC", "HWIO"), 3: ("NDHWC", "DHWIO")}


# --- helpers ---------------------------------------------------------------------------------


def _in_float32(ctx: TvmContext, x: Any, dtype: str, compute: Callable[[Any], Any]) -> Any:
    """`compute(x)` in float32 for an f16 `x` (cast back after), as netc's reference rounds
    once per op: normalizations, accumulating reductions, transcendental functions."""
    if dtype not in HALF:
        return compute(x)
    return ctx.cast(compute(ctx.cast(x, "f32")), dtype)


def _pads(pairs: Sequence[tuple[int, int]]) -> list[int]:
    """netc's (before, after) pairs as TVM's padding: every before, then every after."""
    return [b for b, _ in pairs] + [a for _, a in pairs]


def _activation(ctx: TvmContext, x: Any, op: str, attrs: Mapping[str, Any], dtype: str) -> Any:
    """Activation `op` (an elementwise op of netc) of `x`."""
    R, emit = ctx.R, ctx.emit

    def s(v: float) -> Any:
        return ctx.scalar(v, dtype)

    if op == "relu":
        return emit(R.nn.relu(x))
    if op == "relu6":
        return emit(R.minimum(R.maximum(x, s(0)), s(6)))
    if op == "neg":
        return emit(R.negative(x))
    if op == "abs":
        return emit(R.abs(x))
    if op == "leaky_relu":  # x >= 0 keeps x, as netc's meaning
        return emit(R.where(R.greater_equal(x, s(0)), x, R.multiply(x, s(attrs["alpha"]))))
    if op in ("hard_sigmoid", "hard_swish"):  # Keras' order: relu6(x + 3) / 6 (times x)
        y = emit(R.divide(R.minimum(R.maximum(R.add(x, s(3)), s(0)), s(6)), s(6)))
        return emit(R.multiply(x, y)) if op == "hard_swish" else y

    def transcendental(v: Any) -> Any:
        f32 = "f32" if dtype in HALF else dtype

        def c(value: float) -> Any:
            return ctx.scalar(value, f32)

        # written with R.exp, R.tanh and R.erf, which the pipeline's FastMathTransform makes
        # vectorizable (R.sigmoid and R.nn.gelu compile to the C library's scalar calls, one
        # element at a time: the Transformer's first feed-forward layer spent 3/4 of its time
        # in erf)
        def sigmoid(v: Any) -> Any:
            return R.divide(c(1), R.add(c(1), R.exp(R.negative(v))))

        if op == "sigmoid":
            return emit(sigmoid(v))
        if op == "tanh":
            return emit(R.tanh(v))
        if op == "silu":
            return emit(R.multiply(v, sigmoid(v)))
        if op == "softplus":
            return emit(R.nn.softplus(v))
        if op == "exp":
            return emit(R.exp(v))
        if op == "log":
            return emit(R.log(v))
        if op == "sqrt":
            return emit(R.sqrt(v))
        if op == "elu":
            expm1 = R.subtract(R.exp(R.minimum(v, c(0))), c(1))
            return emit(R.where(R.greater(v, c(0)), v, R.multiply(c(attrs["alpha"]), expm1)))
        if op == "gelu":  # x (1 + erf(x / sqrt 2)) / 2, or its tanh approximation
            if attrs.get("approximate"):
                cube = R.multiply(c(0.044715), R.multiply(v, R.multiply(v, v)))
                inner = R.multiply(c(math.sqrt(2 / math.pi)), R.add(v, cube))
                return emit(R.multiply(R.multiply(c(0.5), v), R.add(c(1), R.tanh(inner))))
            erf = R.erf(R.multiply(v, c(1 / math.sqrt(2))))
            return emit(R.multiply(R.multiply(c(0.5), v), R.add(c(1), erf)))
        raise AssertionError(f"tvm: no activation {op}")

    return _in_float32(ctx, x, dtype, transcendental)


def _epilogue(ctx: TvmContext, node: Node, y: Any, residual: str | None) -> Any:
    """The fused op's tail: `+ residual`, then its activation."""
    from ..ops.fused import epilogue

    dtype = node.tensor_type.dtype
    if residual is not None:
        y = ctx.emit(ctx.R.add(y, ctx.get(residual)))
    _, act, act_attrs = epilogue(node.attrs)
    return y if act == "none" else _activation(ctx, y, act, act_attrs, dtype)


def _accumulate(dtype: str) -> str | None:
    """The out_dtype of a convolution or matmul: float32 sums for f16 values."""
    return "float32" if dtype in HALF else None


def _add_bias(ctx: TvmContext, y: Any, bias: str | None, dtype: str) -> Any:
    """`y` (accumulated in float32 for f16) plus `bias`, rounded to `dtype` once."""
    if dtype in HALF:
        if bias is not None:
            y = ctx.emit(ctx.R.add(y, ctx.const(ctx.array(bias), "f32")))
        return ctx.cast(y, dtype)
    return y if bias is None else ctx.emit(ctx.R.add(y, ctx.get(bias)))


# --- rules: activations and arithmetic -------------------------------------------------------

UNARY = (
    "relu",
    "relu6",
    "sigmoid",
    "tanh",
    "silu",
    "softplus",
    "hard_sigmoid",
    "hard_swish",
    "exp",
    "log",
    "sqrt",
    "abs",
    "neg",
    "leaky_relu",
    "elu",
    "gelu",
)


@RULES.on(*UNARY)
def _unary(ctx: TvmContext, node: Node) -> Any:
    x = ctx.get(node.inputs[0])
    return _activation(ctx, x, node.op, node.attrs, node.tensor_type.dtype)


@RULES.on("softmax")
def _softmax(ctx: TvmContext, node: Node) -> Any:
    x, dtype = ctx.get(node.inputs[0]), node.tensor_type.dtype
    axis = node.attrs["axis"]
    return _in_float32(ctx, x, dtype, lambda v: ctx.emit(ctx.R.nn.softmax(v, axis=axis)))


@RULES.on("dropout")
def _dropout(ctx: TvmContext, node: Node) -> Any:
    return ctx.get(node.inputs[0])  # the identity at inference


@RULES.on("cast")
def _cast(ctx: TvmContext, node: Node) -> Any:
    x, src = ctx.get(node.inputs[0]), ctx.type(node.inputs[0]).dtype
    if node.attrs["dtype"] == "bool" and src != "bool":  # nonzero is true
        return ctx.emit(ctx.R.not_equal(x, ctx.scalar(0, src)))
    return ctx.cast(x, node.attrs["dtype"])


BINARY = {
    "add": "add",
    "sub": "subtract",
    "mul": "multiply",
    "div": "divide",
    "maximum": "maximum",
    "minimum": "minimum",
}


@RULES.on(*BINARY)
def _binary(ctx: TvmContext, node: Node) -> Any:
    a, b = (ctx.get(i) for i in node.inputs)
    return ctx.emit(getattr(ctx.R, BINARY[node.op])(a, b))


@RULES.on("matmul")
def _matmul(ctx: TvmContext, node: Node) -> Any:
    a, b = (ctx.get(i) for i in node.inputs)
    dtype = node.tensor_type.dtype
    y = ctx.emit(ctx.R.matmul(a, b, out_dtype=_accumulate(dtype)))
    return ctx.cast(y, dtype) if dtype in HALF else y


def _dense_core(ctx: TvmContext, node: Node, x: str, kernel: str, bias: str | None) -> Any:
    dtype = node.tensor_type.dtype
    y = ctx.emit(ctx.R.matmul(ctx.get(x), ctx.get(kernel), out_dtype=_accumulate(dtype)))
    return _add_bias(ctx, y, bias, dtype)


@RULES.on("dense")
def _dense(ctx: TvmContext, node: Node) -> Any:
    x, kernel, *bias = node.inputs
    return _dense_core(ctx, node, x, kernel, bias[0] if bias else None)


# --- rules: convolutions ---------------------------------------------------------------------


def _conv_core(
    ctx: TvmContext,
    node: Node,
    x: Any,
    kernel: np.ndarray,
    attrs: Mapping[str, Any],
    groups: int,
    bias: str | None,
    *,
    padding: Sequence[tuple[int, int]] | None = None,
    stride: Sequence[int] | None = None,
    form: str = "",
    name: str,
) -> Any:
    """A channels-last convolution of `x` by `kernel` ([*k, C / groups, F], Keras' layout,
    which TVM calls WIO/HWIO/DHWIO), plus `bias`, in the IR dtype."""
    n = kernel.ndim - 2
    data_layout, kernel_layout = SPATIAL[n]
    dtype = node.tensor_type.dtype
    conv = {1: ctx.R.nn.conv1d, 2: ctx.R.nn.conv2d, 3: ctx.R.nn.conv3d}[n]
    w = ctx.weight(name, kernel, form)
    y = ctx.emit(
        conv(
            x,
            w,
            strides=list(attrs["stride"] if stride is None else stride),
            padding=_pads(attrs["padding"] if padding is None else padding),
            dilation=list(attrs["dilation"]),
            groups=groups,
            data_layout=data_layout,
            kernel_layout=kernel_layout,
            out_dtype=_accumulate(dtype),
        )
    )
    return _add_bias(ctx, y, bias, dtype)


def _base_conv(
    ctx: TvmContext, node: Node, base: str, attrs: Mapping[str, Any], x: str, weights: list[str]
) -> Any:
    """Convolution op `base` of IR value `x` with `weights` (kernel[, bias])."""
    kernel_name, bias = weights[0], (weights[1] if len(weights) > 1 else None)
    kernel = ctx.array(kernel_name)
    xv = ctx.get(x)
    if base.startswith("conv") and base.endswith("_transpose"):
        return _conv_transpose(ctx, node, xv, kernel, attrs, bias, kernel_name)
    if base.startswith("depthwise"):
        # channel c*M + j reads input channel c through multiplier j: one group per channel,
        # kernel [*k, C, M] -> [*k, 1, C*M]
        k = kernel.reshape(*kernel.shape[:-2], 1, kernel.shape[-2] * kernel.shape[-1])
        return _conv_core(
            ctx, node, xv, k, attrs, kernel.shape[-2], bias, form="grouped", name=kernel_name
        )
    return _conv_core(ctx, node, xv, kernel, attrs, attrs["groups"], bias, name=kernel_name)


@RULES.on("conv1d", "conv2d", "conv3d", "depthwise_conv1d", "depthwise_conv2d")
@RULES.on("conv1d_transpose", "conv2d_transpose", "conv3d_transpose")
def _conv(ctx: TvmContext, node: Node) -> Any:
    return _base_conv(ctx, node, node.op, node.attrs, node.inputs[0], list(node.inputs[1:]))


def _spread(
    te: Any, tirx: Any, x: Any, stride: Sequence[int], before: Sequence[int], after: Sequence[int]
) -> Any:
    """x [N, *L, C] with stride - 1 zeros between its cells, `before` zeros in front and
    `after` behind on each spatial axis (a negative count crops)."""
    n = len(stride)
    shape = list(x.shape)
    out = [shape[0]]
    for i in range(n):
        out.append((shape[1 + i] - 1) * stride[i] + 1 + before[i] + after[i])
    out.append(shape[-1])

    def cell(*idx: Any) -> Any:
        src, ok = [idx[0]], []
        for i in range(n):
            k = idx[1 + i] - before[i]
            if stride[i] == 1:
                ok += [k >= 0, k < shape[1 + i]]
                src.append(k)
            else:
                ok += [
                    k >= 0,
                    tirx.floormod(k, stride[i]) == 0,
                    tirx.floordiv(k, stride[i]) < shape[1 + i],
                ]
                src.append(tirx.floordiv(k, stride[i]))
        src.append(idx[-1])
        return tirx.if_then_else(tirx.all(*ok), x[tuple(src)], tirx.const(0, x.dtype))

    return te.compute(out, cell, name="spread")


def _conv_transpose(
    ctx: TvmContext,
    node: Node,
    x: Any,
    kernel: np.ndarray,
    attrs: Mapping[str, Any],
    bias: str | None,
    kernel_name: str,
) -> Any:
    # the scatter full[i*s + t*d] += x[i] * w[t] is a convolution of x spread by the stride
    # (s - 1 zeros between cells) and padded by k' - 1 on both sides, with the kernel flipped
    # and its in/out channels swapped; netc's window (crop `before`, `after`, extend by
    # output_padding) becomes that padding, less `before` in front and less `after` behind
    n = kernel.ndim - 2
    t = ctx.t
    stride, dilation = attrs["stride"], attrs["dilation"]
    kd = [(k - 1) * d + 1 for k, d in zip(kernel.shape[:n], dilation, strict=True)]
    front = [k - 1 - b for k, (b, _) in zip(kd, attrs["padding"], strict=True)]
    back = [
        k - 1 - a + e
        for k, (_, a), e in zip(kd, attrs["padding"], attrs["output_padding"], strict=True)
    ]
    spread = ctx.te(lambda v: _spread(t.te, t.tirx, v, stride, front, back), x, name="spread")
    flipped = np.flip(kernel, axis=tuple(range(n))).swapaxes(-1, -2)  # [*k, C, F]
    return _conv_core(
        ctx,
        node,
        spread,
        np.ascontiguousarray(flipped),
        attrs,
        1,
        bias,
        padding=[(0, 0)] * n,
        stride=[1] * n,
        form="flipped",
        name=kernel_name,
    )


@RULES.on("separable_conv1d", "separable_conv2d")
def _separable(ctx: TvmContext, node: Node) -> Any:
    # Keras' SeparableConv: the depthwise convolution (no bias), then a 1x1 convolution of its
    # C*M channels with the bias
    x, dw_name, pw_name, *bias = node.inputs
    dw, pw = ctx.array(dw_name), ctx.array(pw_name)
    n = dw.ndim - 2
    k = dw.reshape(*dw.shape[:-2], 1, dw.shape[-2] * dw.shape[-1])
    dtype = node.tensor_type.dtype
    y = _conv_core(
        ctx, node, ctx.get(x), k, node.attrs, dw.shape[-2], None, form="grouped", name=dw_name
    )
    ones = {"stride": (1,) * n, "padding": ((0, 0),) * n, "dilation": (1,) * n}
    y = _conv_core(ctx, node, y, pw, ones, 1, bias[0] if bias else None, name=pw_name)
    assert y.ty.dtype == DTYPES[dtype]
    return y


@RULES.on("fused_conv")
def _fused_conv(ctx: TvmContext, node: Node) -> Any:
    from ..ops.fused import base_attrs

    a = node.attrs
    n_weights = 1 + bool(a["bias"])
    data, weights = node.inputs[: len(node.inputs) - n_weights], node.inputs[-n_weights:]
    y = _base_conv(ctx, node, a["base"], base_attrs(a), data[0], list(weights))
    return _epilogue(ctx, node, y, data[1] if a["residual"] else None)


@RULES.on("fused_dense")
def _fused_dense(ctx: TvmContext, node: Node) -> Any:
    a = node.attrs
    n_weights = 1 + bool(a["bias"])
    data, weights = node.inputs[: len(node.inputs) - n_weights], node.inputs[-n_weights:]
    y = _dense_core(ctx, node, data[0], weights[0], weights[1] if a["bias"] else None)
    return _epilogue(ctx, node, y, data[1] if a["residual"] else None)


# --- rules: pooling and normalization ---------------------------------------------------------


@RULES.on("maxpool", "avgpool")
def _pool(ctx: TvmContext, node: Node) -> Any:
    a, dtype = node.attrs, node.tensor_type.dtype
    n = len(a["size"])
    R = ctx.R
    layout = SPATIAL[n][0]
    if node.op == "maxpool":  # padded cells are -inf: they never win
        pool = {1: R.nn.max_pool1d, 2: R.nn.max_pool2d, 3: R.nn.max_pool3d}[n]
        return ctx.emit(
            pool(
                ctx.get(node.inputs[0]),
                list(a["size"]),
                list(a["stride"]),
                _pads(a["padding"]),
                layout=layout,
            )
        )
    pool = {1: R.nn.avg_pool1d, 2: R.nn.avg_pool2d, 3: R.nn.avg_pool3d}[n]
    # count_include_pad=False: a window divides by the real cells it covers, as netc's meaning
    return _in_float32(
        ctx,
        ctx.get(node.inputs[0]),
        dtype,
        lambda v: ctx.emit(
            pool(
                v,
                list(a["size"]),
                list(a["stride"]),
                _pads(a["padding"]),
                count_include_pad=False,
                layout=layout,
            )
        ),
    )


@RULES.on("global_avgpool", "global_maxpool")
def _global_pool(ctx: TvmContext, node: Node) -> Any:
    x, dtype = ctx.get(node.inputs[0]), node.tensor_type.dtype
    axes = list(range(1, ctx.type(node.inputs[0]).rank - 1))
    keep = node.attrs["keepdims"]
    if node.op == "global_maxpool":
        return ctx.emit(ctx.R.max(x, axis=axes, keepdims=keep))
    return _in_float32(ctx, x, dtype, lambda v: ctx.emit(ctx.R.mean(v, axis=axes, keepdims=keep)))


def _along(array: np.ndarray, rank: int, axes: Sequence[int]) -> np.ndarray:
    """A weight over `axes` reshaped to broadcast against a rank-`rank` value."""
    shape = [1] * rank
    for a, d in zip(axes, array.shape, strict=True):
        shape[a] = d
    return array.reshape(shape)


@RULES.on("batchnorm")
def _batchnorm(ctx: TvmContext, node: Node) -> Any:
    # netc's formula, (x - mean) * (gamma / sqrt(var + eps)) + beta, with the per-channel
    # factor computed once in float64; f16 values normalize in float32
    a, dtype = node.attrs, node.tensor_type.dtype
    rank = node.tensor_type.rank
    ws = [ctx.array(i).astype(np.float64) for i in node.inputs[1:]]
    gamma = ws.pop(0) if a["scale"] else 1.0
    beta = ws.pop(0) if a["center"] else None
    mean, var = ws
    inv = gamma / np.sqrt(var + a["epsilon"])
    f32 = "f32" if dtype in HALF else dtype
    R = ctx.R

    def normalize(v: Any) -> Any:
        y = R.multiply(
            R.subtract(v, ctx.const(_along(mean, rank, [a["axis"]]), f32)),
            ctx.const(_along(inv, rank, [a["axis"]]), f32),
        )
        if beta is not None:
            y = R.add(y, ctx.const(_along(beta, rank, [a["axis"]]), f32))
        return ctx.emit(y)

    return _in_float32(ctx, ctx.get(node.inputs[0]), dtype, normalize)


@RULES.on("layernorm")
def _layernorm(ctx: TvmContext, node: Node) -> Any:
    # mean, then the mean square of the centred values (not E[x^2] - E[x]^2, which cancels)
    a, dtype = node.attrs, node.tensor_type.dtype
    rank, axes = node.tensor_type.rank, list(a["axis"])
    f32 = "f32" if dtype in HALF else dtype
    R = ctx.R
    ws = [ctx.array(i) for i in node.inputs[1:]]

    def normalize(v: Any) -> Any:
        centred = ctx.emit(R.subtract(v, R.mean(v, axis=axes, keepdims=True)))
        var = R.mean(R.multiply(centred, centred), axis=axes, keepdims=True)
        y = R.divide(centred, R.sqrt(R.add(var, ctx.scalar(a["epsilon"], f32))))
        w = list(ws)
        if a["scale"]:
            y = R.multiply(y, ctx.const(_along(w.pop(0), rank, axes), f32))
        if a["center"]:
            y = R.add(y, ctx.const(_along(w.pop(0), rank, axes), f32))
        return ctx.emit(y)

    return _in_float32(ctx, ctx.get(node.inputs[0]), dtype, normalize)


# --- rules: reductions -----------------------------------------------------------------------

REDUCE = {
    "reduce_sum": "sum",
    "reduce_mean": "mean",
    "reduce_max": "max",
    "reduce_min": "min",
    "reduce_prod": "prod",
}


@RULES.on(*REDUCE)
def _reduce(ctx: TvmContext, node: Node) -> Any:
    x, dtype = ctx.get(node.inputs[0]), node.tensor_type.dtype
    axes, keep = list(node.attrs["axis"]), node.attrs["keepdims"]
    if not axes:
        return x  # no axis: nothing reduced, as netc means it
    reduce = getattr(ctx.R, REDUCE[node.op])
    if dtype == "bool":  # any/all, as max/min over int8
        y = reduce(ctx.cast(x, "i32"), axis=axes, keepdims=keep)
        return ctx.emit(ctx.R.not_equal(y, ctx.scalar(0, "i32")))
    if node.op in ("reduce_max", "reduce_min"):
        return ctx.emit(reduce(x, axis=axes, keepdims=keep))
    return _in_float32(ctx, x, dtype, lambda v: ctx.emit(reduce(v, axis=axes, keepdims=keep)))


@RULES.on("argmax")
def _argmax(ctx: TvmContext, node: Node) -> Any:
    return ctx.emit(ctx.R.argmax(ctx.get(node.inputs[0]), axis=node.attrs["axis"]))


# --- rules: shape ----------------------------------------------------------------------------


@RULES.on("flatten", "reshape")
def _reshape(ctx: TvmContext, node: Node) -> Any:
    # row-major over the channels-last value: Keras' element order
    return ctx.emit(ctx.R.reshape(ctx.get(node.inputs[0]), ctx.shape(node.tensor_type)))


@RULES.on("transpose")
def _transpose(ctx: TvmContext, node: Node) -> Any:
    return ctx.emit(ctx.R.permute_dims(ctx.get(node.inputs[0]), list(node.attrs["perm"])))


@RULES.on("concat")
def _concat(ctx: TvmContext, node: Node) -> Any:
    xs = [ctx.get(i) for i in node.inputs]
    return ctx.emit(ctx.R.concat(xs, axis=node.attrs["axis"]))


@RULES.on("split")
def _split(ctx: TvmContext, node: Node) -> tuple[Any, ...]:
    sizes = node.attrs["sections"]
    cuts = [int(c) for c in np.cumsum(sizes)[:-1]]
    parts = ctx.emit(ctx.R.split(ctx.get(node.inputs[0]), cuts, axis=node.attrs["axis"]))
    return tuple(
        ctx.emit(ctx.relax.TupleGetItem(parts, i), f"{identifier(node.name)}_{i}")
        for i in range(len(sizes))
    )


@RULES.on("slice")
def _slice(ctx: TvmContext, node: Node) -> Any:
    # a TE gather: out[i] = x[start + i * step] per sliced axis, with Python's slice meaning
    # resolved here (negative bounds, none, clamping); a window of a symbolic dim counted from
    # its end starts at dim + start. Inside a TE function a symbolic dim is the placeholder's
    # own variable (x.shape), not the Relax function's.
    a = node.attrs
    t, out = ctx.type(node.inputs[0]), node.tensor_type
    spec = {
        axis: (start, end, step)
        for axis, start, end, step in zip(
            a["axes"], a["starts"], a["ends"], a["steps"], strict=True
        )
    }

    def gather(x: Any) -> Any:
        starts: dict[int, Any] = {}
        for axis, (start, end, step) in spec.items():
            dim = t.shape[axis]
            if isinstance(dim, int):
                starts[axis] = slice(start, end, step).indices(dim)[0]
            else:
                starts[axis] = start if start >= 0 else x.shape[axis] + start
        shape = [d if isinstance(d, int) else x.shape[i] for i, d in enumerate(out.shape)]

        def cell(*idx: Any) -> Any:
            src = [
                starts[axis] + i * spec[axis][2] if axis in spec else i
                for axis, i in enumerate(idx)
            ]
            return x[tuple(src)]

        return ctx.t.te.compute(shape, cell, name="slice")

    return ctx.te(gather, ctx.get(node.inputs[0]), name="slice")


@RULES.on("squeeze")
def _squeeze(ctx: TvmContext, node: Node) -> Any:
    return ctx.emit(ctx.R.squeeze(ctx.get(node.inputs[0]), axis=list(node.attrs["axes"])))


@RULES.on("expand_dims")
def _expand_dims(ctx: TvmContext, node: Node) -> Any:
    return ctx.emit(ctx.R.expand_dims(ctx.get(node.inputs[0]), axis=node.attrs["axis"]))


@RULES.on("broadcast_like")
def _broadcast_like(ctx: TvmContext, node: Node) -> Any:
    return ctx.emit(ctx.R.broadcast_to(ctx.get(node.inputs[0]), ctx.shape(node.tensor_type)))


@RULES.on("pad")
def _pad(ctx: TvmContext, node: Node) -> Any:
    # a TE gather: constant fills with the value, edge clamps the index, reflect mirrors it
    # once (netc's pads are smaller than the dim)
    a = node.attrs
    mode, pads, dtype = a["mode"], a["pads"], node.tensor_type.dtype
    tirx = ctx.t.tirx
    value = np.asarray(a["value"], numpy_dtype(dtype)).item()

    def padded(x: Any) -> Any:
        shape = list(x.shape)

        def cell(*idx: Any) -> Any:
            src, ok = [], []
            for i, (b, e) in enumerate(pads):
                if b == e == 0:
                    src.append(idx[i])
                    continue
                d = shape[i]
                k = idx[i] - b
                if mode == "constant":
                    ok += [k >= 0, k < d]
                    src.append(k)
                elif mode == "edge":
                    src.append(tirx.max(tirx.min(k, d - 1), 0))
                else:
                    src.append(tirx.Select(k < 0, -k, tirx.Select(k >= d, 2 * (d - 1) - k, k)))
            v = x[tuple(src)]
            return tirx.if_then_else(tirx.all(*ok), v, tirx.const(value, x.dtype)) if ok else v

        out = [d + b + e for d, (b, e) in zip(shape, pads, strict=True)]
        return ctx.t.te.compute(out, cell, name="pad")

    return ctx.te(padded, ctx.get(node.inputs[0]), name="pad")


def _resize_images(
    ctx: TvmContext, node: Node, x: Any, in_size: Sequence[Dim], size: Sequence[int], method: str
) -> Any:
    """TF's half-pixel resize of [N, H, W, C], with netc's own source-index tables (computed
    in float32, as TF and the reference compute them) as constants: gathers, then lerps."""
    from ..ops.shape import _source_index

    fixed = [ctx.dim(d) for d in in_size]  # a symbol --dim fixed is a size here
    if not all(isinstance(d, int) for d in fixed):
        raise RULES.cannot(
            node,
            " of a symbolic height or width: the tvm backend resizes with index tables made "
            "at compile time (fix the size with --dim)",
        )
    R, dtype = ctx.R, node.tensor_type.dtype
    h, w = (int(d) for d in fixed)
    if method == "nearest":
        rows = ctx.const(_source_index(h, size[0], "nearest"))
        cols = ctx.const(_source_index(w, size[1], "nearest"))
        return ctx.emit(R.take(R.take(x, rows, axis=1, mode="clip"), cols, axis=2, mode="clip"))
    y0, y1, fy = _source_index(h, size[0], "bilinear")
    x0, x1, fx = _source_index(w, size[1], "bilinear")
    f32 = "f32" if dtype in HALF else dtype

    def lerp(v: Any) -> Any:
        # mode "clip" only to say the tables are in range (TVM warns about its "fast" mode)
        def take(r: Any, index: np.ndarray, axis: int) -> Any:
            return ctx.emit(R.take(r, ctx.const(index), axis=axis, mode="clip"))

        rows0, rows1 = take(v, y0, 1), take(v, y1, 1)
        tl, tr, bl, br = (
            take(rows0, x0, 2),
            take(rows0, x1, 2),
            take(rows1, x0, 2),
            take(rows1, x1, 2),
        )
        fxc, fyc = ctx.const(fx[:, None], f32), ctx.const(fy[:, None, None], f32)
        top = R.add(tl, R.multiply(R.subtract(tr, tl), fxc))
        bottom = R.add(bl, R.multiply(R.subtract(br, bl), fxc))
        top, bottom = ctx.emit(top), ctx.emit(bottom)
        return ctx.emit(R.add(top, R.multiply(R.subtract(bottom, top), fyc)))

    return _in_float32(ctx, x, dtype, lerp)


@RULES.on("upsample")
def _upsample(ctx: TvmContext, node: Node) -> Any:
    x, size = ctx.get(node.inputs[0]), node.attrs["size"]
    t = ctx.type(node.inputs[0])
    if node.attrs["method"] == "bilinear":
        h, w = (ctx.dim(d) for d in t.shape[1:3])
        sizes = [h * size[0], w * size[1]] if isinstance(h, int) and isinstance(w, int) else []
        return _resize_images(ctx, node, x, t.shape[1:3], sizes, "bilinear")
    for i, s in enumerate(size):  # nearest: each cell repeated s times per axis
        if s > 1:
            x = ctx.emit(ctx.R.repeat(x, s, axis=1 + i))
    return x


@RULES.on("resize")
def _resize(ctx: TvmContext, node: Node) -> Any:
    t = ctx.type(node.inputs[0])
    return _resize_images(
        ctx, node, ctx.get(node.inputs[0]), t.shape[1:3], node.attrs["size"], node.attrs["method"]
    )
