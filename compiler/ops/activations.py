"""Activations: elementwise, shape-preserving, float-only (softmax works over an axis)."""

from __future__ import annotations

import math

from ..lazy import numpy as np
from .registry import ALIASES, elementwise_flops, expect_float, normalize_axis, op


def _erf(x: np.ndarray) -> np.ndarray:
    # numpy has no erf; math.erf per element is exact, and the reference favours exactness.
    return np.vectorize(math.erf, otypes=[x.dtype])(x) if x.size else x


def _same(name: str):
    def rule(x):
        expect_float(name, x)
        return x

    rule.__name__ = name
    return rule


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _hard_sigmoid(x):
    # Keras 3's order of operations: relu6(x + 3) / 6, in the input's dtype
    return (np.clip(x + x.dtype.type(3), 0, 6) / x.dtype.type(6)).astype(x.dtype)


UNARY = {
    # name: (numpy meaning, flops per element, doc)
    "relu": (lambda x, a: np.maximum(x, 0).astype(x.dtype), 1, "max(x, 0)"),
    "relu6": (lambda x, a: np.clip(x, 0, 6).astype(x.dtype), 2, "min(max(x, 0), 6)"),
    "sigmoid": (lambda x, a: _sigmoid(x).astype(x.dtype), 4, "1 / (1 + exp(-x))"),
    "tanh": (lambda x, a: np.tanh(x), 4, "tanh(x)"),
    "silu": (lambda x, a: (x * _sigmoid(x)).astype(x.dtype), 5, "x * sigmoid(x) (swish)"),
    "softplus": (lambda x, a: np.logaddexp(0, x).astype(x.dtype), 4, "log(1 + exp(x))"),
    "hard_sigmoid": (
        lambda x, a: _hard_sigmoid(x),
        3,
        "relu6(x + 3) / 6, Keras 3's hard_sigmoid: 0 for x <= -3, 1 for x >= 3, x / 6 + 0.5 "
        "between",
    ),
    "hard_swish": (
        lambda x, a: (x * _hard_sigmoid(x)).astype(x.dtype),
        4,
        "x * hard_sigmoid(x): Keras 3's hard_silu, MobileNetV3's hard swish",
    ),
    "exp": (lambda x, a: np.exp(x), 1, "e ** x"),
    "log": (lambda x, a: np.log(x), 1, "natural logarithm"),
    "sqrt": (lambda x, a: np.sqrt(x), 1, "square root"),
    "abs": (lambda x, a: np.abs(x), 1, "absolute value"),
    "neg": (lambda x, a: -x, 1, "-x (also written `-x`)"),
}

for _name, (_fn, _flops, _doc) in UNARY.items():
    _rule = _same(_name)
    _rule.__doc__ = _doc
    op(
        _name,
        evaluate=lambda ins, attrs, fn=_fn: fn(ins[0], attrs),  # type: ignore[misc]
        flops=elementwise_flops(_flops),
        category="activation",
    )(_rule)

ALIASES["hard_silu"] = "hard_swish"  # Keras' own name; MobileNetV3 calls it hard swish


@op(
    "leaky_relu",
    evaluate=lambda ins, a: np.where(ins[0] >= 0, ins[0], ins[0] * a["alpha"]).astype(ins[0].dtype),
    flops=elementwise_flops(2),
    category="activation",
)
def leaky_relu(x, *, alpha: float = 0.3):
    """x if x >= 0 else alpha * x; alpha defaults to Keras' 0.3."""
    expect_float("leaky_relu", x)
    return x


@op(
    "elu",
    evaluate=lambda ins, a: np.where(
        ins[0] > 0, ins[0], a["alpha"] * np.expm1(np.minimum(ins[0], 0))
    ).astype(ins[0].dtype),
    flops=elementwise_flops(3),
    category="activation",
)
def elu(x, *, alpha: float = 1.0):
    """x if x > 0 else alpha * (exp(x) - 1)."""
    expect_float("elu", x)
    return x


def _gelu(inputs, attrs):
    x = inputs[0]
    if attrs["approximate"]:
        c = np.sqrt(2.0 / np.pi)
        return (0.5 * x * (1.0 + np.tanh(c * (x + 0.044715 * x**3)))).astype(x.dtype)
    return (0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))).astype(x.dtype)


@op("gelu", evaluate=_gelu, flops=elementwise_flops(8), category="activation")
def gelu(x, *, approximate: bool = False):
    """x * Phi(x), exact (erf) by default as in Keras; `approximate=true` is the tanh form."""
    expect_float("gelu", x)
    return x


def _softmax(inputs, attrs):
    x = inputs[0]
    e = np.exp(x - np.max(x, axis=attrs["axis"], keepdims=True))
    return (e / np.sum(e, axis=attrs["axis"], keepdims=True)).astype(x.dtype)


@op("softmax", evaluate=_softmax, flops=elementwise_flops(5), category="activation")
def softmax(x, *, axis: int = -1):
    """exp(x) / sum(exp(x)) over `axis` (one axis, never flattened; default the last)."""
    expect_float("softmax", x)
    normalize_axis("softmax", axis, x.rank)
    return x
