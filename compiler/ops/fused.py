"""Fused ops made by the optimizer (never written by users): a dense or convolution, then an
optional residual add, then an optional activation, as one node.

`fused_dense` and `fused_conv` (any convolution, named by `base`) mean exactly the unfused
sequence: the base op's `evaluate`, then `add`'s, then the activation's, so folding, the
reference and the unfused graph agree bit for bit. Inputs are data first, then weights:
`(x, [residual], kernel, [bias])`. A backend lowers one as its base op (the attrs minus
`EPILOGUE_ATTRS`), an Add when `residual`, then the activation (see `epilogue`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..ir import TensorType
from ..lazy import numpy as np
from .registry import OPS, Infer, ShapeError, op

ACTIVATIONS = ("relu", "relu6", "sigmoid", "tanh", "gelu", "silu", "leaky_relu")
Activation = Literal["none", "relu", "relu6", "sigmoid", "tanh", "gelu", "silu", "leaky_relu"]
CONV_OPS = (
    "conv1d",
    "conv2d",
    "conv3d",
    "depthwise_conv1d",
    "depthwise_conv2d",
    "conv1d_transpose",
    "conv2d_transpose",
    "conv3d_transpose",
)
ConvOp = Literal[
    "conv1d",
    "conv2d",
    "conv3d",
    "depthwise_conv1d",
    "depthwise_conv2d",
    "conv1d_transpose",
    "conv2d_transpose",
    "conv3d_transpose",
]
# Attributes that describe the epilogue; every other attribute (but `base` and the optimizer's
# `origin`) belongs to the base op.
EPILOGUE_ATTRS = ("activation", "alpha", "approximate", "residual")


def activation_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes of the fused activation op: `alpha` for leaky_relu, `approximate` for gelu."""
    act = attrs["activation"]
    if act == "leaky_relu":
        return {"alpha": attrs["alpha"]}
    if act == "gelu":
        return {"approximate": attrs["approximate"]}
    return {}


def base_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes of the base op (dense or the convolution named by `base`)."""
    return {
        k: v for k, v in attrs.items() if k not in EPILOGUE_ATTRS and k not in ("base", "origin")
    }


def epilogue(attrs: Mapping[str, Any]) -> tuple[bool, str, dict[str, Any]]:
    """(residual?, activation op or "none", its attrs): what follows the base op."""
    return attrs["residual"], attrs["activation"], activation_attrs(attrs)


def _split(inputs: Sequence[Any], attrs: Mapping[str, Any]) -> tuple[list[Any], Any]:
    """(the base op's inputs x, kernel, [bias]; the residual or None)."""
    n_weights = 1 + bool(attrs["bias"])
    data, weights = list(inputs[: len(inputs) - n_weights]), list(inputs[len(inputs) - n_weights :])
    residual = data[1] if attrs["residual"] else None
    return [data[0], *weights], residual


def _evaluate(base: str | None):
    def evaluate(inputs: Sequence[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
        base_inputs, residual = _split(inputs, attrs)
        y = OPS[base or attrs["base"]].evaluate(base_inputs, base_attrs(attrs))
        if residual is not None:
            y = OPS["add"].evaluate([y, residual], {})
        if attrs["activation"] != "none":
            y = OPS[attrs["activation"]].evaluate([y], activation_attrs(attrs))
        return y

    return evaluate


def _flops(base: str | None):
    def flops(ins: Sequence[TensorType], out: TensorType, attrs: Mapping[str, Any]) -> int:
        total = OPS[base or attrs["base"]].count_flops(ins[:1], out, base_attrs(attrs))
        if attrs["residual"]:
            total += out.numel()
        if attrs["activation"] != "none":
            total += OPS[attrs["activation"]].count_flops([out], out, activation_attrs(attrs))
        return total

    return flops


def _infer(
    name: str,
    base: str,
    x: TensorType,
    rest: Sequence[TensorType],
    attrs: dict[str, Any],
    activation: str,
    alpha: float,
    approximate: bool,
    residual: bool,
) -> Infer:
    if len(rest) != int(residual):
        raise ShapeError(
            f"{name} takes a residual input exactly when residual=true, got "
            f"{len(rest)} extra inputs with residual={str(residual).lower()}"
        )
    out, canon = OPS[base].infer([x], attrs)
    assert isinstance(out, TensorType)
    if residual and rest[0] != out:
        raise ShapeError(f"{name}: the residual {rest[0]} must have the output's type {out}")
    extra: dict[str, Any] = {"activation": activation}
    if activation == "leaky_relu":
        extra["alpha"] = alpha
    if activation == "gelu":
        extra["approximate"] = approximate
    extra["residual"] = residual
    return Infer(out, {**canon, **extra})


@op("fused_dense", evaluate=_evaluate("dense"), flops=_flops("dense"), category="fused")
def fused_dense(
    x,
    *rest,
    units: int,
    bias: bool = True,
    activation: Activation = "none",
    alpha: float = 0.3,
    approximate: bool = False,
    residual: bool = False,
):
    """`dense`, then `+ residual` (when `residual`), then `activation`: one node.

    Made by the optimizer's fuse_activation pass. Inputs `(x, [residual], kernel, [bias])`;
    the residual has the output's type. `alpha` (leaky_relu) and `approximate` (gelu) are
    stored only for the activation that takes them.
    """
    return _infer(
        "fused_dense",
        "dense",
        x,
        rest,
        {"units": units, "bias": bias},
        activation,
        alpha,
        approximate,
        residual,
    )


@op("fused_conv", evaluate=_evaluate(None), flops=_flops(None), category="fused")
def fused_conv(
    x,
    *rest,
    base: ConvOp,
    activation: Activation = "none",
    alpha: float = 0.3,
    approximate: bool = False,
    residual: bool = False,
    **attrs: Any,
):
    """The convolution `base` (with its own attributes), then `+ residual`, then `activation`.

    Made by the optimizer's fuse_activation pass; `base` is any convolution (conv1d/2d/3d,
    depthwise_conv1d/2d, conv1d/2d/3d_transpose) and the other attributes are that op's.
    Inputs `(x, [residual], kernel, [bias])`; the residual has the output's type.
    """
    if base not in CONV_OPS:
        raise ShapeError(
            f"fused_conv: unknown base `{base}`, expected one of {', '.join(CONV_OPS)}"
        )
    infer = _infer("fused_conv", base, x, rest, attrs, activation, alpha, approximate, residual)
    return Infer(infer.type, {"base": base, **infer.attrs})
