"""The tf backend's rules for embeddings, recurrent layers (LSTM and GRU as `tf.scan` over
time-major steps, Keras' gate orders) and multi-head attention (2-D MatMuls, not Einsums).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..ir import Node
from ..ops.attention import attention_inputs, query_value_key
from .tf_lower import RULES, TfContext


def _shape(tf: Any, dims: Sequence[Any]) -> Any:
    """A shape for tf.reshape: the list itself when every dim is an int, else a stacked
    tensor (a symbolic dim read with tf.shape at run time; -1 stays the one unknown)."""
    if all(isinstance(d, int) for d in dims):
        return list(dims)
    return tf.stack([tf.cast(d, tf.int32) if not isinstance(d, int) else d for d in dims])


# --- rules: embeddings, recurrent, attention --------------------------------------------------


@RULES.on("embedding")
def _embedding(ctx: TfContext, node: Node) -> Any:
    return ctx.tf.gather(ctx.const(node.inputs[1]), ctx.get(node.inputs[0]), axis=0)


@RULES.on("positional_embedding")
def _positional_embedding(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    x, t = ctx.get(node.inputs[0]), ctx.type(node.inputs[0])
    table = ctx.const(node.inputs[1])
    steps = ctx.dim(x, t, 1)
    # tf.slice fails on a sequence longer than the table (a Python slice would clamp)
    rows = tf.slice(table, tf.stack([0, 0]), tf.stack([steps, t.shape[2]]))
    return x + rows


def _time_major(ctx: TfContext, x: Any, backwards: bool) -> Any:
    tf = ctx.tf
    xs = tf.transpose(x, [1, 0, 2])  # [T, N, F]
    return tf.reverse(xs, [0]) if backwards else xs


def _input_projection(ctx: TfContext, xs: Any, kernel: Any, bias: Any) -> Any:
    """x_t @ kernel + bias for every step at once: one MatMul, [T, N, F] -> [T, N, G]."""
    tf = ctx.tf
    shape = tf.shape(xs)
    flat = tf.linalg.matmul(tf.reshape(xs, [-1, xs.shape[-1]]), kernel)
    if bias is not None:
        flat = tf.nn.bias_add(flat, bias)
    return tf.reshape(flat, tf.stack([shape[0], shape[1], kernel.shape[-1]]))


@RULES.on("lstm")
def _lstm(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    a, u = node.attrs, node.attrs["units"]
    x = ctx.get(node.inputs[0])
    kernel, recurrent, bias = (ctx.const(w) for w in node.inputs[1:])
    xw = _input_projection(ctx, _time_major(ctx, x, a["go_backwards"]), kernel, bias)
    zeros = tf.zeros(tf.stack([tf.shape(x)[0], u]), x.dtype)

    def step(state: tuple[Any, Any], z_x: Any) -> tuple[Any, Any]:
        h, c = state
        z = z_x + tf.linalg.matmul(h, recurrent)
        i, f, g, o = tf.split(z, 4, axis=1)  # Keras' gate order: i f c o
        c = tf.math.sigmoid(f) * c + tf.math.sigmoid(i) * tf.math.tanh(g)
        return tf.math.sigmoid(o) * tf.math.tanh(c), c

    hs, cs = tf.scan(step, xw, initializer=(zeros, zeros))
    return _sequence_results(ctx, a, hs, (hs[-1], cs[-1]))


@RULES.on("gru")
def _gru(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    a, u = node.attrs, node.attrs["units"]
    x = ctx.get(node.inputs[0])
    bias = ctx.array(node.inputs[3])
    kernel, recurrent = ctx.const(node.inputs[1]), ctx.const(node.inputs[2])
    reset_after = a["reset_after"]
    b_in = ctx.const(node.inputs[3], bias[0] if reset_after else bias, "input")
    b_rec = ctx.const(node.inputs[3], bias[1], "recurrent") if reset_after else None
    xw = _input_projection(ctx, _time_major(ctx, x, a["go_backwards"]), kernel, b_in)
    if not reset_after:  # the candidate's recurrent part waits for r
        r_gates = ctx.const(node.inputs[2], ctx.array(node.inputs[2])[:, : 2 * u], "gates")
        r_candidate = ctx.const(node.inputs[2], ctx.array(node.inputs[2])[:, 2 * u :], "cand")
    zeros = tf.zeros(tf.stack([tf.shape(x)[0], u]), x.dtype)

    def step(h: Any, x_t: Any) -> Any:
        x_z, x_r, x_h = tf.split(x_t, 3, axis=1)  # gates z r h
        if reset_after:
            inner = tf.nn.bias_add(tf.linalg.matmul(h, recurrent), b_rec)
            h_z, h_r, h_h = tf.split(inner, 3, axis=1)
            r = tf.math.sigmoid(x_r + h_r)
            candidate = tf.math.tanh(x_h + r * h_h)
        else:
            h_z, h_r = tf.split(tf.linalg.matmul(h, r_gates), 2, axis=1)
            r = tf.math.sigmoid(x_r + h_r)
            candidate = tf.math.tanh(x_h + tf.linalg.matmul(r * h, r_candidate))
        z = tf.math.sigmoid(x_z + h_z)
        return z * h + (1 - z) * candidate

    hs = tf.scan(step, xw, initializer=zeros)
    return _sequence_results(ctx, a, hs, (hs[-1],))


def _sequence_results(
    ctx: TfContext, attrs: Mapping[str, Any], hs: Any, states: tuple[Any, ...]
) -> Any:
    """Keras' results: every step's h (batch-major, in processing order) or the last, then
    the states with `return_state`."""
    y = ctx.tf.transpose(hs, [1, 0, 2]) if attrs["return_sequences"] else states[0]
    if not attrs["return_state"]:
        return y
    return (y, *states)


@RULES.on("multi_head_attention")
def _attention(ctx: TfContext, node: Node) -> Any:
    """Keras' attention as 2-D MatMuls and batched matmuls instead of Keras' einsums (TF's
    Einsum kernel transposes its operands on every call; a MatMul + BiasAdd is one fused op):
    the projections of one input share one MatMul (self-attention: q, k and v at once), the
    query's scale is folded into its kernel and bias, heads move to the batch axes with one
    transpose, and the output projection is a MatMul over (head, value) pairs."""
    tf = ctx.tf
    a = node.attrs
    data, pairs = attention_inputs(node.inputs, a)
    names = dict(zip(("query", "value", "key"), query_value_key(data), strict=True))
    order = ("query", "key", "value", "output")
    kernels = {r: k for r, (k, _) in zip(order, pairs, strict=True)}
    biases = {r: b for r, (_, b) in zip(order, pairs, strict=True) if b is not None}
    heads = a["heads"]
    scale = 1 / math.sqrt(a["key_dim"])  # Keras scales the query, here its kernel and bias

    def weight(role: str, of: Mapping[str, str]) -> np.ndarray:
        w = ctx.array(of[role]).astype(np.float64)
        return w * scale if role == "query" else w

    projected: dict[str, Any] = {}
    for name in dict.fromkeys(names.values()):  # each input once, in order
        roles = [r for r in ("query", "key", "value") if names[r] == name]
        x, t = ctx.get(name), ctx.type(name)
        features = ctx.array(kernels[roles[0]]).shape[0]  # the input's (known) feature size
        kernel = np.concatenate([weight(r, kernels).reshape(features, -1) for r in roles], 1)
        y = tf.linalg.matmul(
            tf.reshape(x, [-1, features]), ctx.const(kernels[roles[0]], kernel, "+".join(roles))
        )
        if biases:
            bias = np.concatenate([weight(r, biases).reshape(-1) for r in roles])
            y = tf.nn.bias_add(y, ctx.const(biases[roles[0]], bias, "+".join(roles)))
        # heads to the batch axes: q and v as [N, heads, T, size], k as [N, heads, size, S]
        # (a batched matmul with k transposed in memory runs faster than with adj_y)
        sizes = [ctx.array(kernels[r]).shape[-1] for r in roles]
        steps = ctx.dim(x, t, 1)
        if len(set(sizes)) == 1:
            y = tf.reshape(y, _shape(tf, [-1, steps, len(roles), heads, sizes[0]]))
            if roles != ["key"]:  # one transpose for all: [roles, N, heads, T, size]
                moved = tf.transpose(y, [2, 0, 3, 1, 4])
                for r, part in zip(roles, tf.split(moved, len(roles)), strict=True):
                    if r != "key":  # a view: a split on axis 0 copies nothing
                        projected[r] = tf.squeeze(part, [0])
            if "key" in roles:
                projected["key"] = tf.transpose(y[:, :, roles.index("key")], [0, 2, 3, 1])
        else:  # key and value of other sizes: one transpose each
            parts = tf.split(y, [heads * size for size in sizes], axis=1)
            for r, part, size in zip(roles, parts, sizes, strict=True):
                perm = [0, 2, 3, 1] if r == "key" else [0, 2, 1, 3]
                shape = _shape(tf, [-1, steps, heads, size])
                projected[r] = tf.transpose(tf.reshape(part, shape), perm)
    q, k, v = projected["query"], projected["key"], projected["value"]
    scores = tf.linalg.matmul(q, k)  # [N, heads, T, S]
    if a["causal"]:  # query i sees keys j <= i
        steps = tf.shape(scores)
        mask = tf.range(steps[-2])[:, None] >= tf.range(steps[-1])[None, :]
        scores = tf.where(mask, scores, tf.constant(-np.inf, scores.dtype))
    probs = tf.nn.softmax(scores, axis=-1)
    context = tf.transpose(tf.linalg.matmul(probs, v), [0, 2, 1, 3])  # [N, T, heads, V]
    wo = ctx.array(kernels["output"])  # [heads, V, O]
    t = ctx.type(names["query"])
    y = tf.linalg.matmul(
        tf.reshape(context, [-1, wo.shape[0] * wo.shape[1]]),
        ctx.const(kernels["output"], wo.reshape(-1, wo.shape[2]), "2d"),
    )
    if biases:
        y = tf.nn.bias_add(y, ctx.const(biases["output"]))
    steps = ctx.dim(ctx.get(names["query"]), t, 1)
    return tf.reshape(y, _shape(tf, [-1, steps, wo.shape[2]]))
