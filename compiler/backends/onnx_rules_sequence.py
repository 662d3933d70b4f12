"""The ONNX backend's rules for embeddings, recurrent layers (LSTM, GRU) and multi-head
attention; they register in `to_onnx.RULES`, which imports this module. Keras' weights are
reordered here into ONNX's gate order and matrix shapes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..ir import Node
from ..ops.attention import attention_inputs, query_value_key
from .to_onnx import INT64_MIN, RULES, OnnxContext, Value, _onnx_dtype, onnx_axis

# --- rules: embeddings, recurrent, attention --------------------------------------------------


@RULES.on("embedding")
def _embedding(ctx: OnnxContext, node: Node) -> Value:
    ids = ctx.get(node.inputs[0], cf=False)
    return Value(ctx.add("Gather", [ctx.weight(node.inputs[1]), ids.name], axis=0))


@RULES.on("positional_embedding")
def _positional_embedding(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0], cf=False)
    steps = node.tensor_type.shape[1]
    end = (
        ctx.ints([steps], "steps")
        if isinstance(steps, int)
        else ctx.add("Shape", [x.name], start=1, end=2)
    )
    rows = ctx.add("Slice", [ctx.weight(node.inputs[1]), ctx.ints([0], "start"), end])
    return Value(ctx.add("Add", [x.name, rows]))


def _time_major_last(ctx: OnnxContext, y: str, backwards: bool) -> str:
    """ONNX's Y [T, 1, N, u] as Keras' sequence [N, T, u], in processing order."""
    y = ctx.add("Squeeze", [y, ctx.ints([1], "direction_axis")])
    if backwards:  # ONNX stores step t at t; Keras returns steps in the order it ran them
        y = ctx.add(
            "Slice",
            [
                y,
                ctx.ints([-1], "starts"),
                ctx.ints([INT64_MIN], "ends"),
                ctx.ints([0], "axes"),
                ctx.ints([-1], "steps"),
            ],
        )
    return ctx.add("Transpose", [y], perm=[1, 0, 2])


@RULES.on("lstm", "gru")
def _recurrent(ctx: OnnxContext, node: Node) -> Value | tuple[Value, ...]:
    a, u = node.attrs, node.attrs["units"]
    lstm = node.op == "lstm"
    x = ctx.get(node.inputs[0])  # either layout: it folds into the time-major transpose
    kernel, recurrent, bias = (ctx.array(i) for i in node.inputs[1:])
    if lstm:  # Keras' gates i f c o -> ONNX's i o f c; ONNX's bias adds a recurrent half
        order = np.concatenate([np.arange(u), np.arange(3 * u, 4 * u), np.arange(u, 3 * u)])
        b = np.concatenate([bias[order], np.zeros_like(bias)])
    else:  # both z r h; reset_after's [2, 3u] bias is ONNX's [Wb, Rb]
        order = np.arange(3 * u)
        b = bias.reshape(-1) if a["reset_after"] else np.concatenate([bias, np.zeros_like(bias)])
    time_major = [onnx_axis(a, 3, x.cf) for a in (1, 0, 2)]  # ONNX runs [T, N, F]
    ins = [
        ctx.add("Transpose", [x.name], perm=time_major),
        ctx.weight(node.inputs[1], kernel[:, order].T[None], "onnx"),
        ctx.weight(node.inputs[2], recurrent[:, order].T[None], "onnx"),
        ctx.weight(node.inputs[3], b[None], "onnx"),
    ]
    attrs: dict[str, Any] = dict(
        hidden_size=u, direction="reverse" if a["go_backwards"] else "forward"
    )
    if not lstm:
        attrs["linear_before_reset"] = int(a["reset_after"])
    outs = ctx.add("LSTM" if lstm else "GRU", ins, outputs=3 if lstm else 2, **attrs)
    state_axis = ctx.ints([0], "state_axis")
    h = ctx.add("Squeeze", [outs[1], state_axis])
    y = _time_major_last(ctx, outs[0], a["go_backwards"]) if a["return_sequences"] else h
    if not a["return_state"]:
        return Value(y)
    states = [h] + ([ctx.add("Squeeze", [outs[2], state_axis])] if lstm else [])
    return tuple(Value(v) for v in [y, *states])


@RULES.on("multi_head_attention")
def _attention(ctx: OnnxContext, node: Node) -> Value:
    from onnx import numpy_helper

    a = node.attrs
    heads, key_dim, value_dim = a["heads"], a["key_dim"], a["value_dim"]
    data, pairs = attention_inputs(node.inputs, a)
    query, value, key = query_value_key(data)
    dt = node.tensor_type.dtype

    def project(x: str, kernel: str, bias: str | None, dim: int, perm: list[int]) -> str:
        # [N, T, D] @ [D, heads*dim] (+ bias) -> [N, T, heads, dim] -> permuted per head
        w = ctx.array(kernel)
        y = ctx.add(
            "MatMul",
            [ctx.get(x, cf=False).name, ctx.weight(kernel, w.reshape(w.shape[0], -1), "matrix")],
        )
        if bias:
            y = ctx.add("Add", [y, ctx.weight(bias, ctx.array(bias).reshape(-1), "flat")])
        y = ctx.add("Reshape", [y, ctx.ints([0, 0, heads, dim], "heads")])
        return ctx.add("Transpose", [y], perm=perm)

    (wq, bq), (wk, bk), (wv, bv), (wo, bo) = pairs
    q = project(query, wq, bq, key_dim, [0, 2, 1, 3])  # [N, h, T, k]
    q = ctx.add("Mul", [q, ctx.scalar(1 / math.sqrt(key_dim), dt, "scale")])  # as Keras
    k = project(key, wk, bk, key_dim, [0, 2, 3, 1])  # [N, h, k, S]
    v = project(value, wv, bv, value_dim, [0, 2, 1, 3])  # [N, h, S, v]
    scores = ctx.add("MatMul", [q, k])  # [N, h, T, S]
    if a["causal"]:  # query i sees keys j <= i
        tq, tk = node.tensor_type.shape[1], ctx.type(key).shape[1]
        if isinstance(tq, int) and isinstance(tk, int):
            mask = ctx.const(np.tri(tq, tk, dtype=bool), "causal_mask")
        else:
            one = numpy_helper.from_array(np.ones(1, np.float32))
            ones = ctx.add("ConstantOfShape", [ctx.add("Shape", [scores], start=2)], value=one)
            mask = ctx.add("Cast", [ctx.add("Trilu", [ones], upper=0)], to=_onnx_dtype("bool"))
        scores = ctx.add("Where", [mask, scores, ctx.scalar(-np.inf, dt, "minus_inf")])
    probs = ctx.add("Softmax", [scores], axis=-1)
    y = ctx.add("Transpose", [ctx.add("MatMul", [probs, v])], perm=[0, 2, 1, 3])  # [N, T, h, v]
    y = ctx.add("Reshape", [y, ctx.ints([0, 0, heads * value_dim], "merge_heads")])
    w = ctx.array(wo)
    y = ctx.add("MatMul", [y, ctx.weight(wo, w.reshape(-1, w.shape[-1]), "matrix")])
    return Value(ctx.add("Add", [y, ctx.weight(bo)]) if bo else y)
