"""Attention: `multi_head_attention`, Keras 3's `MultiHeadAttention` in inference mode.

The numpy meaning is a handful of einsums with Keras' weight layouts (per-head projections
`[D, heads, key_dim]`), so a Keras layer's weights copy over unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..ir import TensorType
from ..lazy import numpy as np
from .registry import GLOROT_UNIFORM, ZEROS, Infer, Init, Param, ShapeError, op

_ROLES = ("query", "value", "key")  # Keras' call order


def _check_dim(what: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ShapeError(f"multi_head_attention needs {what} >= 1, got {value}")


def _dims(
    inputs: Sequence[TensorType],
    heads: int,
    key_dim: int,
    value_dim: int | None,
    output_dim: int | None,
) -> dict[str, int]:
    """Validate the (query, value, key) inputs; return the feature sizes of query, value and
    key, and the resolved value_dim and output_dim."""
    if not 1 <= len(inputs) <= 3:
        raise ShapeError(
            f"multi_head_attention takes a query and at most a value and a key, "
            f"got {len(inputs)} inputs"
        )
    query = inputs[0]
    value = inputs[1] if len(inputs) > 1 else query
    key = inputs[2] if len(inputs) > 2 else value
    sizes: dict[str, int] = {}
    for role, t in zip(_ROLES, (query, value, key), strict=True):
        if not t.is_float:
            raise ShapeError(f"multi_head_attention needs a floating-point {role}, got {t}")
        if t.rank != 3:
            raise ShapeError(f"multi_head_attention needs a rank-3 {role} [N, T, D], got {t}")
        d = t.shape[2]
        if not isinstance(d, int):
            raise ShapeError(
                f"multi_head_attention needs a known feature size for the {role} "
                f"to create its weights, got {t}"
            )
        if t.dtype != query.dtype:
            raise ShapeError(
                f"multi_head_attention needs query, value and key of one dtype, got {query} and {t}"
            )
        if (
            isinstance(t.shape[0], int)
            and isinstance(query.shape[0], int)
            and t.shape[0] != query.shape[0]
        ):
            raise ShapeError(
                f"multi_head_attention: the {role} batch size {t.shape[0]} differs "
                f"from the query's {query.shape[0]}"
            )
        sizes[role] = d
    if (
        isinstance(key.shape[1], int)
        and isinstance(value.shape[1], int)
        and key.shape[1] != value.shape[1]
    ):
        raise ShapeError(
            f"multi_head_attention needs a key and a value of one length, got {key} and {value}"
        )
    _check_dim("heads", heads)
    _check_dim("key_dim", key_dim)
    _check_dim("value_dim", value_dim)
    _check_dim("output_dim", output_dim)
    sizes["value_dim"] = key_dim if value_dim is None else value_dim
    sizes["output_dim"] = sizes["query"] if output_dim is None else output_dim
    return sizes


def _mha_params(
    *query_value_key: TensorType,
    heads: int,
    key_dim: int,
    value_dim: int | None = None,
    output_dim: int | None = None,
    bias: bool = True,
    causal: bool = False,
    kernel_init: str = "glorot_uniform",
    bias_init: str = "zeros",
) -> dict[str, Param]:
    d = _dims(query_value_key, heads, key_dim, value_dim, output_dim)
    vd, od = d["value_dim"], d["output_dim"]
    shapes = {
        "query": ((d["query"], heads, key_dim), (heads, key_dim)),
        "key": ((d["key"], heads, key_dim), (heads, key_dim)),
        "value": ((d["value"], heads, vd), (heads, vd)),
        "attention_output": ((heads, vd, od), (od,)),
    }
    out = {}
    for name, (kernel, bias_shape) in shapes.items():
        out[f"{name}_kernel"] = Param(kernel, kernel_init)
        if bias:
            out[f"{name}_bias"] = Param(bias_shape, bias_init)
    return out


def attention_inputs(
    inputs: Sequence[Any], attrs: Mapping[str, Any]
) -> tuple[list[Any], list[tuple[Any, Any]]]:
    """A multi_head_attention node's inputs (names, arrays, any backend's values) split: its
    data inputs as given (the query, then the value, then the key: 1 to 3), and its
    projections' (kernel, bias) pairs in the order query, key, value, output (bias None
    without `bias`)."""
    n_weights = 8 if attrs["bias"] else 4
    data, weights = list(inputs[:-n_weights]), list(inputs[-n_weights:])
    if attrs["bias"]:
        return data, list(zip(weights[0::2], weights[1::2], strict=True))
    return data, [(w, None) for w in weights]


def query_value_key(data: Sequence[Any]) -> tuple[Any, Any, Any]:
    """The query, value and key of attention's data inputs: the value defaults to the query
    (self-attention), the key to the value."""
    query = data[0]
    value = data[1] if len(data) > 1 else query
    key = data[2] if len(data) > 2 else value
    return query, value, key


def _mha_eval(inputs: Sequence[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
    data, pairs = attention_inputs(inputs, attrs)
    query, value, key = query_value_key(data)
    (wq, bq), (wk, bk), (wv, bv), (wo, bo) = ((w, 0.0 if b is None else b) for w, b in pairs)
    q = np.einsum("ntd,dhk->nthk", query, wq) + bq
    k = np.einsum("nsd,dhk->nshk", key, wk) + bk
    v = np.einsum("nsd,dhv->nshv", value, wv) + bv
    q = q * (1.0 / math.sqrt(attrs["key_dim"]))  # Keras scales the query, not the scores
    scores = np.einsum("nthk,nshk->nhts", q, k)
    if attrs["causal"]:
        mask = np.tril(np.ones(scores.shape[-2:], dtype=bool))  # query i sees keys j <= i
        scores = np.where(mask, scores, -np.inf)  # key 0 is always visible: no empty row
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    probs = e / e.sum(axis=-1, keepdims=True)
    heads = np.einsum("nhts,nshv->nthv", probs, v)
    return (np.einsum("nthv,hvo->nto", heads, wo) + bo).astype(query.dtype)


def _mha_flops(ins: Sequence[TensorType], out: Any, attrs: Mapping[str, Any]) -> int:
    def steps(t: TensorType) -> int:
        return t.shape[1] if isinstance(t.shape[1], int) else 1

    h, kd = attrs["heads"], attrs["key_dim"]
    d = _dims(ins, h, kd, attrs["value_dim"], attrs["output_dim"])
    vd, od = d["value_dim"], d["output_dim"]
    tq, tk = steps(ins[0]), steps(ins[-1])
    b = 1 if attrs["bias"] else 0
    projections = (
        tq * h * kd * (2 * d["query"] + b)
        + tk * h * kd * (2 * d["key"] + b)
        + tk * h * vd * (2 * d["value"] + b)
        + tq * od * (2 * h * vd + b)
    )
    # scale q, q.k, softmax (5 per score), probs.v
    return projections + tq * h * kd + h * tq * tk * (2 * kd + 5 + 2 * vd)


@op(
    "multi_head_attention",
    params=_mha_params,
    evaluate=_mha_eval,
    flops=_mha_flops,
    category="attention",
)
def multi_head_attention(
    *query_value_key,
    heads: int,
    key_dim: int,
    value_dim: int | None = None,
    output_dim: int | None = None,
    bias: bool = True,
    causal: bool = False,
    kernel_init: Init = GLOROT_UNIFORM,
    bias_init: Init = ZEROS,
):
    """Multi-head scaled dot-product attention (Keras `MultiHeadAttention`, inference).

    One to three tensor inputs, in Keras' call order `(query, value, key)`:
    `x |> multi_head_attention(heads=2, key_dim=16)` is self-attention (key = value = query),
    `multi_head_attention(q, v, ...)` uses v as key and value, `(q, v, k, ...)` all three.
    Each is `[N, T, D]` (the query `[N, Tq, Dq]`; value and key of one length Tk). Per head,
    with weights in Keras' layout and names:

        q = query @ query_kernel [Dq, heads, key_dim] + query_bias [heads, key_dim]
        k = key   @ key_kernel   [Dk, heads, key_dim] + key_bias   [heads, key_dim]
        v = value @ value_kernel [Dv, heads, value_dim] + value_bias [heads, value_dim]
        a = softmax((q / sqrt(key_dim)) . k over the keys)          # [N, heads, Tq, Tk]
        out = (a . v) @ attention_output_kernel [heads, value_dim, out] + attention_output_bias

    `value_dim` defaults to `key_dim`, `output_dim` to the query's last dim Dq (both are
    stored resolved). `bias=false` drops all four biases. Kernels are glorot_uniform, biases
    zeros. `causal=true` lets query i attend only keys j <= i (a lower-triangular mask, as
    Keras' `use_causal_mask`); query 0 always sees key 0, so no row is empty. The result is
    `[N, Tq, out]`. No dropout, no attention-score output, no padding mask.
    """
    d = _dims(query_value_key, heads, key_dim, value_dim, output_dim)
    query = query_value_key[0]
    attrs = dict(
        heads=heads,
        key_dim=key_dim,
        value_dim=d["value_dim"],
        output_dim=d["output_dim"],
        bias=bias,
        causal=causal,
    )
    return Infer(query.with_shape((query.shape[0], query.shape[1], d["output_dim"])), attrs)
