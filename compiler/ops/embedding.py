"""Embeddings: `embedding` (a learned lookup table for integer ids) and `positional_embedding`
(a learned per-position vector added to a sequence)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..ir import INT_DTYPES, TensorType
from ..lazy import numpy as np
from .registry import GLOROT_UNIFORM, UNIFORM, Init, Param, ShapeError, expect_float, op


def _embedding_eval(inputs: Sequence[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
    ids, table = inputs
    if ids.size and (ids.min() < 0 or ids.max() >= attrs["vocab"]):
        raise ValueError(
            f"embedding ids must lie in [0, {attrs['vocab']}), got values from "
            f"{ids.min()} to {ids.max()}"
        )
    return np.take(table, ids, axis=0)


def _embedding_params(
    ids: TensorType, *, vocab: int, dim: int, embeddings_init: str = "uniform"
) -> dict[str, Param]:
    return {"embeddings": Param((vocab, dim), embeddings_init, dtype="f32")}


@op(
    "embedding",
    params=_embedding_params,
    evaluate=_embedding_eval,
    flops=lambda ins, out, attrs: 0,
    category="embedding",
)
def embedding(ids, *, vocab: int, dim: int, embeddings_init: Init = UNIFORM):
    """Look up a learned vector per integer id (Keras `Embedding(vocab, dim)`).

    `ids` is an integer tensor (i32 or i64) `[N, ...]`; the result is f32 `[N, ..., dim]`,
    row `ids[...]` of the weight `embeddings [vocab, dim]` (initializer "uniform": Keras'
    uniform(-0.05, 0.05)). Ids must lie in `[0, vocab)`: out-of-range ids are an error in
    the reference (backends differ: TF on GPU returns zeros, ONNX wraps negative ids), so
    never rely on them. No `mask_zero`: id 0 is an ordinary row.
    """
    if ids.dtype not in INT_DTYPES:
        raise ShapeError(
            f"embedding needs integer ids (i32 or i64), got {ids}",
            hint="declare the ids input as i32",
        )
    if ids.rank < 1:
        raise ShapeError(f"embedding needs ids of rank >= 1 [N, ...], got {ids}")
    if vocab < 1:
        raise ShapeError(f"embedding needs vocab >= 1, got {vocab}")
    if dim < 1:
        raise ShapeError(f"embedding needs dim >= 1, got {dim}")
    return TensorType("f32", ids.shape + (dim,))


def _positional_eval(inputs: Sequence[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
    x, table = inputs
    t = x.shape[1]
    if t > attrs["max_length"]:
        raise ValueError(
            f"positional_embedding got a sequence of {t} steps, more than "
            f"max_length={attrs['max_length']}"
        )
    return (x + table[:t]).astype(x.dtype)


def _feature_size(x: TensorType) -> int:
    expect_float("positional_embedding", x)
    if x.rank != 3:
        raise ShapeError(f"positional_embedding needs a rank-3 input [N, T, D], got {x}")
    d = x.shape[2]
    if not isinstance(d, int):
        raise ShapeError(
            f"positional_embedding needs a known feature size D to create its weights, got {x}"
        )
    return d


def _positional_params(
    x: TensorType, *, max_length: int, embeddings_init: str = "glorot_uniform"
) -> dict[str, Param]:
    return {"embeddings": Param((max_length, _feature_size(x)), embeddings_init)}


@op(
    "positional_embedding",
    params=_positional_params,
    evaluate=_positional_eval,
    category="embedding",
)
def positional_embedding(x, *, max_length: int, embeddings_init: Init = GLOROT_UNIFORM):
    """Add a learned vector per position: `x + embeddings[:T]` for `x [N, T, D]`.

    The weight `embeddings [max_length, D]` (glorot_uniform, as Keras-hub's
    `PositionEmbedding(sequence_length=max_length)`) holds one row per position; step t of
    every sequence gets row t added. Note the difference from Keras-hub: its layer returns
    the position vectors alone (broadcast to x's shape) and leaves the addition to the user;
    this op returns the sum. T may be symbolic (then a sequence longer than `max_length` is
    an error at run time); a known T must be at most `max_length`.
    """
    _feature_size(x)
    if max_length < 1:
        raise ShapeError(f"positional_embedding needs max_length >= 1, got {max_length}")
    t = x.shape[1]
    if isinstance(t, int) and t > max_length:
        raise ShapeError(
            f"positional_embedding: the sequence has {t} steps, more than "
            f"max_length={max_length}, in {x}",
            hint=f"raise max_length to at least {t}",
        )
    return x
