"""Normalization and regularization: batchnorm, layernorm, dropout, with their inference meaning.

Defaults, weight names, weight order and shapes are Keras' (epsilon 1e-3), so Keras weights load
by name and parameter counts equal Keras'.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..ir import TensorType
from ..lazy import numpy as np
from .registry import (
    ONES,
    ZEROS,
    Infer,
    Init,
    Param,
    ShapeError,
    elementwise_flops,
    expect_float,
    normalize_axis,
    op,
)


def _known(op_name: str, x: TensorType, axis: int) -> int:
    dim = x.shape[axis]
    if not isinstance(dim, int):
        raise ShapeError(
            f"{op_name} needs a known size on axis {axis} to create weights, "
            f"got symbol `{dim}` in {x}"
        )
    return dim


def _check_epsilon(op_name: str, epsilon: float) -> None:
    if not epsilon > 0:
        raise ShapeError(f"{op_name} needs epsilon > 0, got {epsilon}")


def _compute_dtype(x: np.ndarray) -> np.dtype:
    # Keras normalizes f16/bf16 inputs in float32 and casts the result back.
    return np.promote_types(x.dtype, np.float32)


# --- batchnorm -------------------------------------------------------------------------------


def _batchnorm_params(
    x: TensorType,
    *,
    axis: int,
    center: bool,
    scale: bool,
    gamma_init: str = "ones",
    beta_init: str = "zeros",
    moving_mean_init: str = "zeros",
    moving_variance_init: str = "ones",
    **_: object,
) -> dict[str, Param]:
    c = (_known("batchnorm", x, axis),)
    out = {}
    if scale:
        out["gamma"] = Param(c, gamma_init)
    if center:
        out["beta"] = Param(c, beta_init)
    out["moving_mean"] = Param(c, moving_mean_init, trainable=False)
    out["moving_variance"] = Param(c, moving_variance_init, trainable=False)
    return out


def _batchnorm_eval(inputs, attrs):
    x, *weights = inputs
    dt = _compute_dtype(x)
    shape = [1] * x.ndim
    shape[attrs["axis"]] = -1
    w = [np.asarray(v, dt).reshape(shape) for v in weights]
    gamma = w.pop(0) if attrs["scale"] else 1.0
    beta = w.pop(0) if attrs["center"] else 0.0
    mean, var = w
    inv = gamma / np.sqrt(var + attrs["epsilon"])
    return ((x.astype(dt) - mean) * inv + beta).astype(x.dtype)


# x * s + t once the statistics are folded into a scale s and a shift t: one multiply-add.
@op(
    "batchnorm",
    params=_batchnorm_params,
    evaluate=_batchnorm_eval,
    flops=elementwise_flops(2),
    category="norm",
)
def batchnorm(
    x,
    *,
    axis: int = -1,
    epsilon: float = 1e-3,
    momentum: float = 0.99,
    center: bool = True,
    scale: bool = True,
    gamma_init: Init = ONES,
    beta_init: Init = ZEROS,
    moving_mean_init: Init = ZEROS,
    moving_variance_init: Init = ONES,
):
    """Batch normalization over the channel `axis` (default the last), as Keras' BatchNormalization.

    Inference meaning (moving statistics):
    `y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta`.
    Weights, each of shape `[C]` (C = the size of `axis`), in Keras' order: `gamma` ("ones", only
    when `scale`), `beta` ("zeros", only when `center`), `moving_mean` ("zeros") and
    `moving_variance` ("ones"); the moving statistics are not trainable. With both `center` and
    `scale` that is 4 weights per channel, 2 of them trainable, as Keras counts them.

    `epsilon` defaults to 1e-3 as in Keras; ONNX and PyTorch default to 1e-5, so a model ported
    from PyTorch must say `epsilon=1e-5`. `momentum` is Keras' convention, used only in training:
    `moving = momentum * moving + (1 - momentum) * batch_statistic` (default 0.99). PyTorch's
    momentum is the weight of the *new* statistic: PyTorch's 0.1 is netc's 0.9.
    `axis` is stored non-negative. f16/bf16 inputs are normalized in float32.
    """
    expect_float("batchnorm", x)
    axis = normalize_axis("batchnorm", axis, x.rank)
    _known("batchnorm", x, axis)
    _check_epsilon("batchnorm", epsilon)
    if not 0 <= momentum <= 1:
        raise ShapeError(f"batchnorm needs 0 <= momentum <= 1, got {momentum}")
    return Infer(x, {"axis": axis})


# --- layernorm -------------------------------------------------------------------------------


def _axes(op_name: str, axis: int | Sequence[int], rank: int) -> tuple[int, ...]:
    """`axis` (an int or several) as sorted non-negative axes, each listed once."""
    given = (axis,) if isinstance(axis, int) else tuple(axis)
    if not given:
        raise ShapeError(f"{op_name} needs at least one axis")
    out = [normalize_axis(op_name, a, rank) for a in given]
    for a in out:
        if out.count(a) > 1:
            raise ShapeError(f"{op_name} lists axis {a} twice")
    return tuple(sorted(out))


def _layernorm_params(
    x: TensorType,
    *,
    axis: int | tuple[int, ...],
    center: bool,
    scale: bool,
    gamma_init: str = "ones",
    beta_init: str = "zeros",
    **_: object,
) -> dict[str, Param]:
    shape = tuple(_known("layernorm", x, a) for a in _axes("layernorm", axis, x.rank))
    out = {}
    if scale:
        out["gamma"] = Param(shape, gamma_init)
    if center:
        out["beta"] = Param(shape, beta_init)
    return out


def _layernorm_eval(inputs, attrs):
    x, *weights = inputs
    dt = _compute_dtype(x)
    axes = _axes("layernorm", attrs["axis"], x.ndim)
    xf = x.astype(dt)
    mean = xf.mean(axis=axes, keepdims=True)
    var = ((xf - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (xf - mean) / np.sqrt(var + attrs["epsilon"])
    shape = [d if i in axes else 1 for i, d in enumerate(x.shape)]
    w = [np.asarray(v, dt).reshape(shape) for v in weights]
    if attrs["scale"]:
        y = y * w.pop(0)
    if attrs["center"]:
        y = y + w.pop(0)
    return y.astype(x.dtype)


# mean 1, variance 3, normalize 2, scale and shift 2 per element.
@op(
    "layernorm",
    params=_layernorm_params,
    evaluate=_layernorm_eval,
    flops=elementwise_flops(8),
    category="norm",
)
def layernorm(
    x,
    *,
    axis: int | tuple[int, ...] = -1,
    epsilon: float = 1e-3,
    center: bool = True,
    scale: bool = True,
    gamma_init: Init = ONES,
    beta_init: Init = ZEROS,
):
    """Layer normalization over `axis` (default the last), as Keras' LayerNormalization.

    `y = gamma * (x - mean) / sqrt(var + epsilon) + beta`, with `mean` and the biased `var` taken
    per sample over all the `axis` axes together. Weights `gamma` ("ones", only when `scale`) and
    `beta` ("zeros", only when `center`) have the shape of the normalized axes, in increasing
    axis order (`axis=(1, 2)` on `[N, T, C]` gives `[T, C]`). `epsilon` defaults to 1e-3 as in
    Keras (PyTorch's LayerNorm uses 1e-5). `axis` is stored as a sorted tuple of non-negative
    axes. f16/bf16 inputs are normalized in float32.
    """
    expect_float("layernorm", x)
    axes = _axes("layernorm", axis, x.rank)
    if center or scale:
        for a in axes:
            _known("layernorm", x, a)
    _check_epsilon("layernorm", epsilon)
    return Infer(x, {"axis": axes})


# --- dropout ---------------------------------------------------------------------------------


@op(
    "dropout",
    evaluate=lambda ins, a: ins[0],
    flops=lambda ins, out, a: 0,
    category="regularization",
)
def dropout(x, *, rate: float):
    """Dropout: the identity at inference; in training it zeroes a `rate` fraction of values.

    Only the Keras backend trains, so only it uses `rate` (Keras' Dropout: survivors are scaled
    by `1 / (1 - rate)`); every other backend and the reference pass `x` through unchanged.
    `rate` must satisfy 0 <= rate < 1.
    """
    expect_float("dropout", x)
    if not 0 <= rate < 1:
        raise ShapeError(f"dropout needs 0 <= rate < 1, got {rate}")
    return x
