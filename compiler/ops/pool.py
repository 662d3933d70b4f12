"""Pooling, channels-last and rank-generic (1, 2 or 3 spatial axes): max, average, global.

Window shapes and padding are canonicalized like the convolutions' (see conv.py): size and
stride as tuples, padding as explicit ((before, after), ...) pairs, floor-mode output size.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

from ..ir import TensorType
from ..lazy import numpy as np
from .conv import Ints, Padding, explicit_pads, fmt, spatial_tuple, window_output, windows
from .registry import Infer, ShapeError, expect_float, op


def _window_rule(
    name: str, x: TensorType, size: Ints, stride: Ints | None, padding: Padding
) -> Infer:
    expect_float(name, x)
    if x.rank not in (3, 4, 5):
        raise ShapeError(f"{name} needs a rank-3, 4 or 5 input [N, *spatial, C], got {x}")
    n = x.rank - 2
    k = spatial_tuple(name, size, n, "size")
    s = k if stride is None else spatial_tuple(name, stride, n, "stride")
    pads = explicit_pads(name, x, k, s, padding)
    if any(b >= ki or a >= ki for (b, a), ki in zip(pads, k, strict=True)):
        raise ShapeError(
            f"{name} needs padding smaller than the window on each side, got "
            f"padding={fmt(pads)} for size={fmt(k)}"
        )
    out = window_output(name, x, k, s, pads, padding, "pool window")
    return Infer(
        x.with_shape((x.shape[0], *out, x.shape[-1])), dict(size=k, stride=s, padding=pads)
    )


def _pooled(x: np.ndarray, attrs: Any, fill: float, combine: Any) -> np.ndarray:
    """combine() of every window position, over x padded with `fill`."""
    size, stride, pads = attrs["size"], attrs["stride"], attrs["padding"]
    xp = np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=fill)
    out = [
        (xp.shape[1 + i] - k) // s + 1 for i, (k, s) in enumerate(zip(size, stride, strict=True))
    ]
    parts = [xp[i] for _, i in windows(xp.shape[1:-1], size, stride, (1,) * len(size), out)]
    return functools.reduce(combine, parts)


def _maxpool_eval(inputs: Sequence[np.ndarray], attrs: Any) -> np.ndarray:
    return _pooled(inputs[0], attrs, -np.inf, np.maximum)


def _avgpool_eval(inputs: Sequence[np.ndarray], attrs: Any) -> np.ndarray:
    x = inputs[0]
    total = _pooled(x.astype(np.float64), attrs, 0.0, np.add)
    cells = _pooled(np.ones((1, *x.shape[1:-1], 1)), attrs, 0.0, np.add)  # real cells only
    return (total / cells).astype(x.dtype)


def _window_flops(ins: Sequence[TensorType], out: TensorType, a: Any) -> int:
    return out.numel() * math.prod(a["size"])


@op("maxpool", evaluate=_maxpool_eval, flops=_window_flops, category="pool")
def maxpool(
    x: TensorType, *, size: Ints = 2, stride: Ints | None = None, padding: Padding = "valid"
) -> Infer:
    """Max over windows of `size` cells on every spatial axis of [N, *spatial, C] (1-3 axes).

    `stride` defaults to `size` (Keras). `padding` is "valid", "same" (TF's rule, as in conv2d:
    total = max((ceil(in / stride) - 1) * stride + size - in, 0), the odd cell after) or explicit
    ((before, after), ...) pairs, each smaller than the window; stored as pairs. Padded cells
    hold -inf, so they never win. Output size per axis is floor mode (Keras):
    floor((in + before + after - size) / stride) + 1 (ONNX/PyTorch's ceil_mode is not used).
    """
    return _window_rule("maxpool", x, size, stride, padding)


@op("avgpool", evaluate=_avgpool_eval, flops=_window_flops, category="pool")
def avgpool(
    x: TensorType, *, size: Ints = 2, stride: Ints | None = None, padding: Padding = "valid"
) -> Infer:
    """Mean over windows of `size` cells on every spatial axis of [N, *spatial, C] (1-3 axes).

    Padding, stride and output size as in maxpool. Padded cells are never counted: a window
    divides by the number of real input cells it covers (Keras' "same"; ONNX's
    count_include_pad=0), so border outputs average fewer cells.
    """
    return _window_rule("avgpool", x, size, stride, padding)


def _global_rule(name: str, x: TensorType, keepdims: bool) -> Infer:
    expect_float(name, x)
    if x.rank < 3:
        raise ShapeError(
            f"{name} needs an input [N, *spatial, C] of rank >= 3, got {x}",
            hint="the input has no spatial axes to pool" if x.rank == 2 else None,
        )
    spatial = (1,) * (x.rank - 2) if keepdims else ()
    return Infer(x.with_shape((x.shape[0], *spatial, x.shape[-1])), {"keepdims": keepdims})


def _global_eval(reduce: str):
    def evaluate(inputs: Sequence[np.ndarray], attrs: Any) -> np.ndarray:
        x = inputs[0]
        axes = tuple(range(1, x.ndim - 1))
        y = getattr(np, reduce)(x.astype(np.float64), axis=axes, keepdims=attrs["keepdims"])
        return y.astype(x.dtype)

    return evaluate


@op(
    "global_avgpool",
    evaluate=_global_eval("mean"),
    flops=lambda ins, out, a: ins[0].numel(),
    category="pool",
)
def global_avgpool(x: TensorType, *, keepdims: bool = False) -> Infer:
    """Mean over all spatial axes: [N, *spatial, C] -> [N, C] ([N, 1, ..., 1, C] with keepdims)."""
    return _global_rule("global_avgpool", x, keepdims)


@op(
    "global_maxpool",
    evaluate=_global_eval("max"),
    flops=lambda ins, out, a: ins[0].numel(),
    category="pool",
)
def global_maxpool(x: TensorType, *, keepdims: bool = False) -> Infer:
    """Max over all spatial axes: [N, *spatial, C] -> [N, C] ([N, 1, ..., 1, C] with keepdims)."""
    return _global_rule("global_maxpool", x, keepdims)
