"""Core layers: dense."""

from __future__ import annotations

from .registry import (
    GLOROT_UNIFORM,
    ZEROS,
    Init,
    LayerActivation,
    Param,
    ShapeError,
    expect_float,
    matmul_last,
    op,
)


def _dense_eval(inputs, attrs):
    x, kernel, *bias = inputs
    y = matmul_last(x, kernel)
    return y + bias[0] if bias else y


def _dense_params(x, *, units, bias, kernel_init, bias_init, **_):
    out = {"kernel": Param((_static(x.shape[-1], "dense input's last dim"), units), kernel_init)}
    if bias:
        out["bias"] = Param((units,), bias_init)
    return out


def _static(dim, what: str) -> int:
    if not isinstance(dim, int):
        raise ShapeError(f"{what} must be a known size to create weights, got symbol `{dim}`")
    return dim


@op(
    "dense",
    params=_dense_params,
    evaluate=_dense_eval,
    flops=lambda ins, out, a: (
        2 * out.numel() * ins[0].shape[-1] + (out.numel() if a["bias"] else 0)
    ),
)
def dense(
    x,
    *,
    units: int,
    bias: bool = True,
    activation: LayerActivation | None = None,
    kernel_init: Init = GLOROT_UNIFORM,
    bias_init: Init = ZEROS,
):
    """Fully connected layer over the last axis: `x @ kernel + bias`, kernel `[in, units]`."""
    expect_float("dense", x)
    if x.rank < 2:
        raise ShapeError(
            f"dense needs an input of rank >= 2, got {x}",
            hint="add `flatten` before it" if x.rank == 1 else None,
        )
    if units < 1:
        raise ShapeError(f"dense needs units >= 1, got {units}")
    _static(x.shape[-1], "dense input's last dim")
    return x.with_shape(x.shape[:-1] + (units,))
