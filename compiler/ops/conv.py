"""Convolutions, channels-last: conv1d/2d/3d (grouped, dilated), depthwise, separable and
transposed.

Shape rules store kernel, stride and dilation as tuples and padding as explicit
((before, after), ...) pairs per spatial axis, so every backend reproduces TF's asymmetric "same".
The window helpers here are shared with the pooling ops.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from ..ir import Dim, TensorType, dim_mul
from ..lazy import numpy as np
from .registry import (
    GLOROT_UNIFORM,
    ZEROS,
    Infer,
    Init,
    LayerActivation,
    Param,
    ShapeError,
    expect_float,
    matmul_last,
    op,
)

Ints = int | tuple[int, ...]
Padding = Literal["valid", "same"] | tuple[tuple[int, int], ...]
Pairs = tuple[tuple[int, int], ...]

LAYOUT = {1: "[N, W, C]", 2: "[N, H, W, C]", 3: "[N, D, H, W, C]"}


# --- shared helpers (also used by pool.py) ---------------------------------------------------


def fmt(value: Any) -> str:
    """An attribute value as the user would write it: `3`, `(3, 3)`, `"same"`."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(fmt(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value)


def expect_layout(name: str, x: TensorType, n: int) -> None:
    """`x` is a float tensor of rank n + 2 ([N, *spatial, C])."""
    expect_float(name, x)
    if x.rank != n + 2:
        raise ShapeError(f"{name} needs a rank-{n + 2} input {LAYOUT[n]}, got {x}")


def spatial_tuple(name: str, value: Ints, n: int, what: str, minimum: int = 1) -> tuple[int, ...]:
    """An int or one int per spatial axis, as an n-tuple, each >= minimum."""
    values = (value,) * n if isinstance(value, int) else tuple(value)
    if len(values) != n:
        raise ShapeError(
            f"{name}: {what} needs {n} values (one per spatial axis), got {fmt(value)}"
        )
    if any(v < minimum for v in values):
        raise ShapeError(f"{name} needs {what} >= {minimum}, got {fmt(value)}")
    return values


def channels(name: str, x: TensorType) -> int:
    """The channel count (last dim), which must be a literal size."""
    c = x.shape[-1]
    if not isinstance(c, int):
        raise ShapeError(
            f"{name} needs a known channel count (the last dim), got symbol `{c}` in {x}"
        )
    return c


def explicit_pads(
    name: str, x: TensorType, window: Sequence[int], stride: Sequence[int], padding: Padding
) -> Pairs:
    """Padding as ((before, after), ...) per spatial axis; "same" follows TF (extra cell after).

    `window` is the spatial extent of the (dilated) kernel or pool window.
    """
    n = len(window)
    if padding == "valid":
        return ((0, 0),) * n
    if padding == "same":
        pairs = []
        for axis, (d, k, s) in enumerate(zip(x.shape[1:-1], window, stride, strict=True), start=1):
            if isinstance(d, int):
                total = max((-(-d // s) - 1) * s + k - d, 0)
            elif s == 1:
                total = k - 1
            else:
                raise ShapeError(
                    f'{name}: padding "same" with stride {s} needs a known size for '
                    f"axis {axis}, got symbol `{d}` in {x}"
                )
            pairs.append((total // 2, total - total // 2))
        return tuple(pairs)
    if isinstance(padding, str):
        raise ShapeError(
            f'{name}: padding must be "valid", "same" or (before, after) pairs, got {fmt(padding)}'
        )
    pads = tuple(tuple(p) for p in padding)
    if len(pads) != n or any(len(p) != 2 for p in pads):
        raise ShapeError(
            f"{name}: padding needs {n} (before, after) pairs (one per spatial "
            f"axis), got {fmt(padding)}"
        )
    if any(v < 0 for p in pads for v in p):
        raise ShapeError(f"{name} needs padding >= 0, got {fmt(padding)}")
    return pads  # type: ignore[return-value]


def window_output(
    name: str,
    x: TensorType,
    window: Sequence[int],
    stride: Sequence[int],
    pads: Pairs,
    padding: Padding,
    what: str,
) -> tuple[Dim, ...]:
    """Floor-mode output size per spatial axis: (in + before + after - window) // stride + 1."""
    out: list[Dim] = []
    for axis, (d, k, s, (b, a)) in enumerate(
        zip(x.shape[1:-1], window, stride, pads, strict=True), start=1
    ):
        if not isinstance(d, int):
            if s == 1 and b + a == k - 1:
                out.append(d)
                continue
            raise ShapeError(
                f"{name} needs a known size for axis {axis} of {x}: a symbolic size "
                f'is kept only by stride 1 with "same" padding'
            )
        if d + b + a < k:
            padded = f" ({d + b + a} with padding)" if b + a else ""
            raise ShapeError(
                f"{name}: the input is too small: axis {axis} of {x} has {d} cells{padded}, "
                f"the {what} spans {k}",
                hint='use padding="same"' if padding == "valid" else None,
            )
        out.append((d + b + a - k) // s + 1)
    return tuple(out)


def windows(
    shape: Sequence[int],
    window: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    out: Sequence[int],
):
    """For each window offset t: (t, the index that picks x[:, o*stride + t*dilation, :])."""
    for t in np.ndindex(*window):
        yield (
            t,
            (slice(None),)
            + tuple(
                slice(ti * di, ti * di + si * (oi - 1) + 1, si)
                for ti, di, si, oi in zip(t, dilation, stride, out, strict=True)
            ),
        )


def _dilated(kernel: Sequence[int], dilation: Sequence[int]) -> tuple[int, ...]:
    return tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True))


def _no_strided_dilation(name: str, stride: tuple[int, ...], dilation: tuple[int, ...]) -> None:
    if max(stride) > 1 and max(dilation) > 1:
        raise ShapeError(
            f"{name}: stride > 1 together with dilation > 1 is not supported "
            f"(as in Keras), got stride={fmt(stride)}, dilation={fmt(dilation)}"
        )


# --- numpy meaning ---------------------------------------------------------------------------


def _conv(
    x: np.ndarray,
    w: np.ndarray,
    stride: Sequence[int],
    pads: Pairs,
    dilation: Sequence[int],
    groups: int,
) -> np.ndarray:
    """y[n, o, g*Fg + f] = sum_{t, c} xpad[n, o*s + t*d, g*Cg + c] * w[t, c, g*Fg + f] (float64)."""
    n = x.ndim - 2
    xp = np.pad(x.astype(np.float64), ((0, 0), *pads, (0, 0)))
    kernel, cg, f = w.shape[:n], w.shape[n], w.shape[n + 1]
    out = tuple(
        (xp.shape[1 + i] - (kernel[i] - 1) * dilation[i] - 1) // stride[i] + 1 for i in range(n)
    )
    wg = w.astype(np.float64).reshape(*kernel, cg, groups, f // groups)
    y = np.zeros((x.shape[0] * math.prod(out), groups, f // groups))  # [positions, g, Fg]
    for t, index in windows(xp.shape[1:-1], kernel, stride, dilation, out):
        patch = xp[index].reshape(-1, groups, cg)  # [positions, g, Cg]
        # each tap a 2-D matrix product (BLAS), not a broadcast 4-D one numpy runs in C loops
        if groups == 1:
            y[:, 0] += patch[:, 0] @ wg[t][:, 0]
        elif cg == 1:  # depthwise: one input channel per group
            y += patch * wg[t][0]
        else:
            y += np.matmul(patch.transpose(1, 0, 2), wg[t].transpose(1, 0, 2)).transpose(1, 0, 2)
    return y.reshape(x.shape[0], *out, f)


def _with_bias(y: np.ndarray, inputs: Sequence[np.ndarray], attrs: Any) -> np.ndarray:
    if attrs["bias"]:
        y = y + inputs[2].astype(np.float64)
    return y.astype(inputs[0].dtype)


def _conv_eval(inputs: Sequence[np.ndarray], attrs: Any) -> np.ndarray:
    x, w = inputs[0], inputs[1]
    y = _conv(x, w, attrs["stride"], attrs["padding"], attrs["dilation"], attrs["groups"])
    return _with_bias(y, inputs, attrs)


def _depthwise_eval(inputs: Sequence[np.ndarray], attrs: Any) -> np.ndarray:
    # channel c*M + j of the output reads input channel c through multiplier j: a grouped conv
    # with one group per channel and kernel [*k, C, M] flattened to [*k, 1, C*M].
    x, w = inputs[0], inputs[1]
    kernel = w.reshape(*w.shape[:-2], 1, w.shape[-2] * w.shape[-1])
    y = _conv(x, kernel, attrs["stride"], attrs["padding"], attrs["dilation"], x.shape[-1])
    return _with_bias(y, inputs, attrs)


def _separable_eval(inputs: Sequence[np.ndarray], attrs: Any) -> np.ndarray:
    # the depthwise conv (no bias) then a 1x1 conv over its C*M channels, both in float64
    x, dw, pw = inputs[0], inputs[1], inputs[2]
    kernel = dw.reshape(*dw.shape[:-2], 1, dw.shape[-2] * dw.shape[-1])
    y = _conv(x, kernel, attrs["stride"], attrs["padding"], attrs["dilation"], x.shape[-1])
    y = matmul_last(y, pw.astype(np.float64).reshape(pw.shape[-2], pw.shape[-1]))
    if attrs["bias"]:
        y = y + inputs[3].astype(np.float64)
    return y.astype(x.dtype)


def _conv_transpose_eval(inputs: Sequence[np.ndarray], attrs: Any) -> np.ndarray:
    # scatter: full[n, i*s + t*d, f] += x[n, i, c] * w[t, f, c], then crop `padding` and extend by
    # `output_padding` zeros at the end of each axis.
    x, w = inputs[0].astype(np.float64), inputs[1].astype(np.float64)
    n = x.ndim - 2
    kernel, stride, dilation = w.shape[:n], attrs["stride"], attrs["dilation"]
    pads, extra = attrs["padding"], attrs["output_padding"]
    size = x.shape[1:-1]
    full = tuple((size[i] - 1) * stride[i] + (kernel[i] - 1) * dilation[i] + 1 for i in range(n))
    out = tuple(full[i] - pads[i][0] - pads[i][1] + extra[i] for i in range(n))
    buf = np.zeros(
        (x.shape[0], *(max(full[i], pads[i][0] + out[i]) for i in range(n)), w.shape[-2])
    )
    for t, index in windows(full, kernel, stride, dilation, size):
        buf[index] += matmul_last(x, w[t].T)
    y = buf[(slice(None),) + tuple(slice(p[0], p[0] + o) for p, o in zip(pads, out, strict=True))]
    return _with_bias(y, inputs, attrs)


# --- weights and FLOPs -----------------------------------------------------------------------


def _conv_params(
    x: TensorType,
    *,
    filters: int,
    kernel: Ints,
    groups: int = 1,
    bias: bool = True,
    kernel_init: str = "glorot_uniform",
    bias_init: str = "zeros",
    **_: Any,
) -> dict[str, Param]:
    k = spatial_tuple("conv", kernel, x.rank - 2, "kernel")
    out = {"kernel": Param((*k, channels("conv", x) // groups, filters), kernel_init)}
    if bias:
        out["bias"] = Param((filters,), bias_init)
    return out


def _depthwise_params(
    x: TensorType,
    *,
    kernel: Ints,
    depth_multiplier: int = 1,
    bias: bool = True,
    depthwise_init: str = "glorot_uniform",
    bias_init: str = "zeros",
    **_: Any,
) -> dict[str, Param]:
    k = spatial_tuple("depthwise_conv", kernel, x.rank - 2, "kernel")
    c = channels("depthwise_conv", x)
    out = {"kernel": Param((*k, c, depth_multiplier), depthwise_init)}
    if bias:
        out["bias"] = Param((c * depth_multiplier,), bias_init)
    return out


def _separable_params(
    x: TensorType,
    *,
    filters: int,
    kernel: Ints,
    depth_multiplier: int = 1,
    bias: bool = True,
    depthwise_init: str = "glorot_uniform",
    pointwise_init: str = "glorot_uniform",
    bias_init: str = "zeros",
    **_: Any,
) -> dict[str, Param]:
    n = x.rank - 2
    k = spatial_tuple("separable_conv", kernel, n, "kernel")
    c = channels("separable_conv", x)
    out = {
        "depthwise_kernel": Param((*k, c, depth_multiplier), depthwise_init),
        "pointwise_kernel": Param(((1,) * n + (c * depth_multiplier, filters)), pointwise_init),
    }
    if bias:
        out["bias"] = Param((filters,), bias_init)
    return out


def _transpose_params(
    x: TensorType,
    *,
    filters: int,
    kernel: Ints,
    bias: bool = True,
    kernel_init: str = "glorot_uniform",
    bias_init: str = "zeros",
    **_: Any,
) -> dict[str, Param]:
    k = spatial_tuple("conv_transpose", kernel, x.rank - 2, "kernel")
    out = {"kernel": Param((*k, filters, channels("conv_transpose", x)), kernel_init)}
    if bias:
        out["bias"] = Param((filters,), bias_init)
    return out


def _conv_flops(ins: Sequence[TensorType], out: TensorType, a: Any) -> int:
    # each output cell is a dot product over kernel cells x the channels of its group
    per_cell = math.prod(a["kernel"]) * channels("conv", ins[0]) // a["groups"]
    return 2 * out.numel() * per_cell + (out.numel() if a["bias"] else 0)


def _depthwise_flops(ins: Sequence[TensorType], out: TensorType, a: Any) -> int:
    return 2 * out.numel() * math.prod(a["kernel"]) + (out.numel() if a["bias"] else 0)


def _separable_flops(ins: Sequence[TensorType], out: TensorType, a: Any) -> int:
    # the depthwise part yields C * M channels per output cell, the pointwise part mixes them
    cells = out.numel() // a["filters"]
    mid = channels("separable_conv", ins[0]) * a["depth_multiplier"]
    depthwise = 2 * cells * mid * math.prod(a["kernel"])
    pointwise = 2 * out.numel() * mid
    return depthwise + pointwise + (out.numel() if a["bias"] else 0)


def _transpose_flops(ins: Sequence[TensorType], out: TensorType, a: Any) -> int:
    # every input element meets kernel cells x filters weights (one multiply-add each)
    per_element = math.prod(a["kernel"]) * a["filters"]
    return 2 * ins[0].numel() * per_element + (out.numel() if a["bias"] else 0)


# --- shape rules -----------------------------------------------------------------------------


def _window(
    name: str, x: TensorType, n: int, kernel: Ints, stride: Ints, dilation: Ints, padding: Padding
) -> tuple:
    """A convolution window's canonical (kernel, stride, dilation, pads) and output size."""
    k = spatial_tuple(name, kernel, n, "kernel")
    s = spatial_tuple(name, stride, n, "stride")
    d = spatial_tuple(name, dilation, n, "dilation")
    _no_strided_dilation(name, s, d)
    pads = explicit_pads(name, x, _dilated(k, d), s, padding)
    what = "kernel" if max(d) == 1 else "dilated kernel"
    return k, s, d, pads, window_output(name, x, _dilated(k, d), s, pads, padding, what)


def _make_conv(n: int):
    name = f"conv{n}d"

    def rule(
        x: TensorType,
        *,
        filters: int,
        kernel: Ints,
        stride: Ints = 1,
        padding: Padding = "valid",
        dilation: Ints = 1,
        groups: int = 1,
        bias: bool = True,
        activation: LayerActivation | None = None,
        kernel_init: Init = GLOROT_UNIFORM,
        bias_init: Init = ZEROS,
    ) -> Infer:
        expect_layout(name, x, n)
        if filters < 1:
            raise ShapeError(f"{name} needs filters >= 1, got {filters}")
        if groups < 1:
            raise ShapeError(f"{name} needs groups >= 1, got {groups}")
        k, s, d, pads, size = _window(name, x, n, kernel, stride, dilation, padding)
        c = channels(name, x)
        if c % groups:
            raise ShapeError(f"{name}: the input's {c} channels do not divide into groups={groups}")
        if filters % groups:
            raise ShapeError(f"{name}: filters={filters} do not divide into groups={groups}")
        attrs = dict(
            filters=filters, kernel=k, stride=s, padding=pads, dilation=d, groups=groups, bias=bias
        )
        return Infer(x.with_shape((x.shape[0], *size, filters)), attrs)

    rule.__name__ = name
    rule.__doc__ = f"""{n}-D convolution of a channels-last input {LAYOUT[n]} to `filters` channels.

    `kernel`, `stride` and `dilation` take an int (every axis) or one int per spatial axis.
    `padding` is "valid" (none), "same" or explicit ((before, after), ...) pairs, one per
    spatial axis; it is stored as pairs. "same" follows TensorFlow: per axis, with the dilated
    kernel k' = (k - 1) * dilation + 1, total = max((ceil(in / stride) - 1) * stride + k' - in, 0),
    before = total // 2 and the odd cell goes after (ONNX's SAME_LOWER would put it before).
    Output size per axis: floor((in + before + after - k') / stride) + 1.
    `groups` splits the channels into groups convolved separately (input channels and filters
    must both divide by it). Weights as Keras' Conv{n}D: kernel [*kernel, channels / groups,
    filters] ("glorot_uniform"), bias [filters] ("zeros"); filter f reads group
    f // (filters / groups). stride > 1 with dilation > 1 is refused, as in Keras.
    A symbolic spatial size is kept only with stride 1 and "same" padding.
    """
    return op(name, params=_conv_params, evaluate=_conv_eval, flops=_conv_flops, category="conv")(
        rule
    )


conv1d = _make_conv(1)
conv2d = _make_conv(2)
conv3d = _make_conv(3)


def _make_depthwise(n: int):
    name = f"depthwise_conv{n}d"

    def rule(
        x: TensorType,
        *,
        kernel: Ints,
        stride: Ints = 1,
        padding: Padding = "valid",
        dilation: Ints = 1,
        depth_multiplier: int = 1,
        bias: bool = True,
        activation: LayerActivation | None = None,
        depthwise_init: Init = GLOROT_UNIFORM,
        bias_init: Init = ZEROS,
    ) -> Infer:
        expect_layout(name, x, n)
        if depth_multiplier < 1:
            raise ShapeError(f"{name} needs depth_multiplier >= 1, got {depth_multiplier}")
        k, s, d, pads, size = _window(name, x, n, kernel, stride, dilation, padding)
        c = channels(name, x)
        attrs = dict(
            kernel=k,
            stride=s,
            padding=pads,
            dilation=d,
            depth_multiplier=depth_multiplier,
            bias=bias,
        )
        return Infer(x.with_shape((x.shape[0], *size, c * depth_multiplier)), attrs)

    rule.__name__ = name
    rule.__doc__ = f"""{n}-D depthwise convolution: each channel of {LAYOUT[n]} convolved alone.

    Output channels are C * depth_multiplier; output channel c * depth_multiplier + j comes
    from input channel c through multiplier j (Keras' order). Weights as Keras'
    DepthwiseConv{n}D: kernel [*kernel, C, depth_multiplier] ("glorot_uniform"), bias
    [C * depth_multiplier] ("zeros"). `kernel`, `stride`, `padding` and `dilation` work as in
    conv{n}d (TF "same", stored as explicit pairs; floor-mode output size).
    """
    return op(
        name,
        params=_depthwise_params,
        evaluate=_depthwise_eval,
        flops=_depthwise_flops,
        category="conv",
    )(rule)


depthwise_conv1d = _make_depthwise(1)
depthwise_conv2d = _make_depthwise(2)


def _make_separable(n: int):
    name = f"separable_conv{n}d"

    def rule(
        x: TensorType,
        *,
        filters: int,
        kernel: Ints,
        stride: Ints = 1,
        padding: Padding = "valid",
        dilation: Ints = 1,
        depth_multiplier: int = 1,
        bias: bool = True,
        activation: LayerActivation | None = None,
        depthwise_init: Init = GLOROT_UNIFORM,
        pointwise_init: Init = GLOROT_UNIFORM,
        bias_init: Init = ZEROS,
    ) -> Infer:
        expect_layout(name, x, n)
        if filters < 1:
            raise ShapeError(f"{name} needs filters >= 1, got {filters}")
        if depth_multiplier < 1:
            raise ShapeError(f"{name} needs depth_multiplier >= 1, got {depth_multiplier}")
        k, s, d, pads, size = _window(name, x, n, kernel, stride, dilation, padding)
        channels(name, x)
        attrs = dict(
            filters=filters,
            kernel=k,
            stride=s,
            padding=pads,
            dilation=d,
            depth_multiplier=depth_multiplier,
            bias=bias,
        )
        return Infer(x.with_shape((x.shape[0], *size, filters)), attrs)

    rule.__name__ = name
    rule.__doc__ = f"""{n}-D separable convolution of {LAYOUT[n]} to `filters` channels: one layer.

    Keras' SeparableConv{n}D: depthwise_conv{n}d(kernel, stride, padding, dilation,
    depth_multiplier, no bias), then a 1x1 convolution of its C * depth_multiplier channels to
    `filters`, then the bias. Weights as Keras': depthwise_kernel [*kernel, C,
    depth_multiplier] ("glorot_uniform"), pointwise_kernel [{", ".join(["1"] * n)},
    C * depth_multiplier, filters] ("glorot_uniform"), bias [filters] ("zeros").
    `kernel`, `stride`, `padding` and `dilation` work as in conv{n}d (TF "same", stored as
    explicit pairs; floor-mode output size); stride > 1 with dilation > 1 is refused.
    """
    return op(
        name,
        params=_separable_params,
        evaluate=_separable_eval,
        flops=_separable_flops,
        category="conv",
    )(rule)


separable_conv1d = _make_separable(1)
separable_conv2d = _make_separable(2)


def _transpose_pads(
    name: str,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Padding,
    output_padding: Ints | None,
) -> tuple[Pairs, tuple[int, ...]]:
    """Keras' padding/output_padding as (crop pairs, extension) of the full scatter output."""
    n = len(kernel)
    extra = (0,) * n
    if output_padding is not None:
        extra = spatial_tuple(name, output_padding, n, "output_padding", minimum=0)
        for e, s in zip(extra, stride, strict=True):
            if e >= s:
                raise ShapeError(
                    f"{name} needs output_padding < stride, got "
                    f"output_padding={fmt(output_padding)}, stride={fmt(stride)}"
                )
    if not isinstance(padding, str):
        pads = tuple(tuple(p) for p in padding)
        if len(pads) != n or any(len(p) != 2 for p in pads):
            raise ShapeError(
                f"{name}: padding needs {n} (before, after) pairs (one per spatial "
                f"axis), got {fmt(padding)}"
            )
        if any(v < 0 for p in pads for v in p):
            raise ShapeError(f"{name} needs padding >= 0, got {fmt(padding)}")
        return pads, extra  # type: ignore[return-value]
    if padding not in ("valid", "same"):
        raise ShapeError(
            f'{name}: padding must be "valid", "same" or (before, after) pairs, got {fmt(padding)}'
        )
    pairs, ext = [], []
    for i, (k, s) in enumerate(zip(kernel, stride, strict=True)):
        # cut = full - Keras' length, full = (in - 1) * s + k; TF crops max(cut, 0) // 2 before.
        if output_padding is None:
            cut = min(k - s, 0) if padding == "valid" else k - s
        else:
            cut = (2 * (k // 2) if padding == "same" else 0) - extra[i]
        before = max(cut, 0) // 2
        pairs.append((before, max(cut - before, 0)))
        ext.append(max(before - cut, 0))
    return tuple(pairs), tuple(ext)


def _make_transpose(n: int):
    name = f"conv{n}d_transpose"

    def rule(
        x: TensorType,
        *,
        filters: int,
        kernel: Ints,
        stride: Ints = 1,
        padding: Padding = "valid",
        dilation: Ints = 1,
        bias: bool = True,
        output_padding: Ints | None = None,
        activation: LayerActivation | None = None,
        kernel_init: Init = GLOROT_UNIFORM,
        bias_init: Init = ZEROS,
    ) -> Infer:
        expect_layout(name, x, n)
        if filters < 1:
            raise ShapeError(f"{name} needs filters >= 1, got {filters}")
        k = spatial_tuple(name, kernel, n, "kernel")
        s = spatial_tuple(name, stride, n, "stride")
        d = spatial_tuple(name, dilation, n, "dilation")
        _no_strided_dilation(name, s, d)
        channels(name, x)
        kd = _dilated(k, d)
        pads, extra = _transpose_pads(name, kd, s, padding, output_padding)
        size: list[Dim] = []
        for axis, (i, ki, si, (b, a), e) in enumerate(
            zip(x.shape[1:-1], kd, s, pads, extra, strict=True), start=1
        ):
            rest = ki - si - b - a + e  # out = in * stride + rest
            if not isinstance(i, int):
                if rest:
                    raise ShapeError(
                        f"{name} needs a known size for axis {axis} of {x}: only "
                        f'"same" padding keeps a symbolic size (times the stride)'
                    )
                size.append(dim_mul(i, si))
            elif i * si + rest < 1:
                raise ShapeError(
                    f"{name}: padding {fmt((b, a))} crops away all "
                    f"{(i - 1) * si + ki} cells of axis {axis}"
                )
            else:
                size.append(i * si + rest)
        attrs = dict(
            filters=filters,
            kernel=k,
            stride=s,
            padding=pads,
            dilation=d,
            bias=bias,
            output_padding=extra,
        )
        return Infer(x.with_shape((x.shape[0], *size, filters)), attrs)

    rule.__name__ = name
    rule.__doc__ = f"""{n}-D transposed convolution of {LAYOUT[n]} to `filters` channels.

    Keras' Conv{n}DTranspose: the gradient of conv{n}d with respect to its input. Every input
    cell i scatters x[i] * kernel[t] into cell i * stride + t * dilation of a full output of
    (in - 1) * stride + k' cells per axis (k' = (k - 1) * dilation + 1); the result is that
    full output read from cell `before` on, for
    (in - 1) * stride + k' - before - after + output_padding cells, plus the bias (cells past
    the full output hold only the bias). This is ONNX ConvTranspose's `pads`/`output_padding`.
    Weights as Keras: kernel [*kernel, filters, C] (output channels before input channels,
    "glorot_uniform"), bias [filters] ("zeros").

    With Keras' strings the output size is in * stride + max(k' - stride, 0) for "valid" and
    in * stride for "same"; with an explicit output_padding (each < stride) it is
    (in - 1) * stride + k' - 2 * pad + output_padding, pad = 0 ("valid") or k' // 2 ("same").
    The strings are stored as explicit attrs: with cut = full - that size,
    padding = (max(cut, 0) // 2, max(cut - max(cut, 0) // 2, 0)) (TF's placement: the odd
    cell is cropped after) and output_padding = max(-cut, 0). Explicit (before, after) pairs
    and output_padding are used as given. stride > 1 with dilation > 1 is refused, as in Keras.
    """
    return op(
        name,
        params=_transpose_params,
        evaluate=_conv_transpose_eval,
        flops=_transpose_flops,
        category="conv",
    )(rule)


conv1d_transpose = _make_transpose(1)
conv2d_transpose = _make_transpose(2)
conv3d_transpose = _make_transpose(3)
