"""The TVM backend's rules for sequences: embeddings, the recurrent layers (a TIR scan over
time, which Relax has no op for) and multi-head attention, in `RULES`, the backend's one table.
"""

from __future__ import annotations

import math
from typing import Any, no_type_check

import numpy as np

from ..ir import Node
from ..ops.attention import attention_inputs, query_value_key
from .tvm_lower import HALF, RULES, TvmContext

# --- rules: embeddings, recurrent, attention --------------------------------------------------


@RULES.on("embedding")
def _embedding(ctx: TvmContext, node: Node) -> Any:
    # "clip": an id out of [0, vocab) reads the nearest row instead of memory past the table
    ids, table = node.inputs
    return ctx.emit(ctx.R.take(ctx.get(table), ctx.get(ids), axis=0, mode="clip"))


@RULES.on("positional_embedding")
def _positional_embedding(ctx: TvmContext, node: Node) -> Any:
    # x[n, t, d] + table[t, d]: row t of the table for step t (T at most max_length)
    x, table = node.inputs

    def add(v: Any, w: Any) -> Any:
        return ctx.t.te.compute(v.shape, lambda n, s, d: v[n, s, d] + w[s, d], name="position")

    return ctx.te(add, ctx.get(x), ctx.get(table), name="positional_embedding")


# The recurrent scans' exp and tanh, as arithmetic LLVM vectorizes: T.exp and T.tanh compile to
# calls of the C library's scalar expf and tanhf, one element at a time (the LSTM forecaster
# spent most of its scan in them). This is Cephes' expf, as TVM's own topi.fast_exp (which
# works on whole tensors, not inside a scan): n = round(x / ln 2), r = x - n ln 2 in two parts
# (Cody-Waite), a degree-7 polynomial of r, times 2^n made in the exponent bits. Measured
# against float64: a relative error under 1e-7 from -87.3 to 88.37, 0 below -88.37 and inf
# above 88.37 (float32's largest is exp(88.72)); sigmoid and tanh saturate long before.
EXP_HI, EXP_LO = 88.3762626647950, -88.3762626647949
EXP_POLY = (
    1.9875691500e-4,
    1.3981999507e-3,
    8.3334519073e-3,
    4.1665795894e-2,
    1.6666665459e-1,
    5.0000001201e-1,
)


def _exp(x: Any) -> Any:
    """exp(x) of a float32 TIR expression (above)."""
    from tvm.script import tirx as T

    f = T.float32
    x = T.max(T.min(x, f(EXP_HI)), f(EXP_LO))
    n = T.floor(x * f(1.44269504088896341) + f(0.5))
    r = x - n * f(0.693359375) + n * f(2.12194440e-4)  # ln 2 = 0.693359375 - 2.12194440e-4
    p = f(EXP_POLY[0])
    for c in EXP_POLY[1:]:
        p = p * r + f(c)
    two_n = T.reinterpret("float32", T.shift_left(T.Cast("int32", n) + 127, 23))
    return (p * r * r + r + f(1)) * two_n


def _tanh(x: Any) -> Any:
    """tanh(x) = 1 - 2 / (1 + exp(2x)) of a float32 TIR expression: -1 and 1 at the ends (exp
    0 and inf); an absolute error under 2e-7 (measured), within netc's f32 tolerance."""
    from tvm.script import tirx as T

    return T.float32(1) - T.float32(2) / (T.float32(1) + _exp(x * T.float32(2)))


@no_type_check  # TVMScript: its annotations (T.Buffer(...)) are TVM's types, not Python's
def _sequence_kernel(kind: str, units: int, backwards: bool) -> Any:
    """The TIR PrimFunc of one recurrent layer's scan over time, in float32: it reads the input
    projection xp [N, T, G*u] (x @ kernel + input bias, made by Relax) and the recurrent
    weights, and writes every step's h (in processing order) and the last states. No
    schedule rule takes it (its loops are plain TIR): each sequence's scan (a macro) runs on
    its own, the sequences in parallel when there are several (the LSTM forecaster 1.5x
    faster at batch 8 and 32 on two threads; at batch 1 a serial loop: waking the pool for
    one sequence cost more than it saved); the products loop over the output's columns last,
    along the rows of the recurrent kernel, which LLVM vectorizes; each sum still adds its
    terms in the order of k."""
    from tvm.script import tirx as T

    u, back = units, int(backwards)
    if kind == "lstm":

        @T.macro
        def lstm_scan(XP, rk, Y, H, C, z, t, i):  # noqa: N803 - one sequence's scan
            for j in range(u):
                H[i, j] = T.float32(0)
                C[i, j] = T.float32(0)
            for s in range(t):
                src = s + back * (t - 1 - 2 * s)
                for j in range(4 * u):
                    z[i, j] = XP[i, src, j]
                for k, j in T.grid(u, 4 * u):  # j last: rows of rk, vectorized
                    z[i, j] = z[i, j] + H[i, k] * rk[k, j]
                for j in range(u):  # Keras' gates: i f c o
                    C[i, j] = C[i, j] / (T.float32(1) + _exp(-z[i, u + j])) + _tanh(
                        z[i, 2 * u + j]
                    ) / (T.float32(1) + _exp(-z[i, j]))
                    H[i, j] = _tanh(C[i, j]) / (T.float32(1) + _exp(-z[i, 3 * u + j]))
                    Y[i, s, j] = H[i, j]

        @T.prim_func(private=True)
        def lstm(
            var_xp: T.handle,
            rk: T.Buffer((u, 4 * u), "float32"),
            var_y: T.handle,
            var_h: T.handle,
            var_c: T.handle,
        ):
            n = T.int64()
            t = T.int64()
            XP = T.match_buffer(var_xp, (n, t, 4 * u), "float32")
            Y = T.match_buffer(var_y, (n, t, u), "float32")
            H = T.match_buffer(var_h, (n, u), "float32")
            C = T.match_buffer(var_c, (n, u), "float32")
            z = T.alloc_buffer((n, 4 * u), "float32")
            if n > 1:  # the sequences' scans in parallel (a pool woken for one cost more)
                for i in T.parallel(n):
                    lstm_scan(XP, rk, Y, H, C, z, t, i)
            else:
                for i in range(n):
                    lstm_scan(XP, rk, Y, H, C, z, t, i)

        return lstm

    if kind == "gru_after":

        @T.macro
        def gru_after_scan(XP, rk, rb, Y, H, inner, t, i):  # noqa: N803 - one sequence
            for j in range(u):
                H[i, j] = T.float32(0)
            for s in range(t):
                src = s + back * (t - 1 - 2 * s)
                for j in range(3 * u):  # h @ recurrent_kernel + recurrent bias
                    inner[i, j] = rb[j]
                for k, j in T.grid(u, 3 * u):
                    inner[i, j] = inner[i, j] + H[i, k] * rk[k, j]
                for j in range(u):  # gates z r h; reset after the product
                    z = T.float32(1) / (T.float32(1) + _exp(-(XP[i, src, j] + inner[i, j])))
                    r = T.float32(1) / (T.float32(1) + _exp(-(XP[i, src, u + j] + inner[i, u + j])))
                    hh = _tanh(XP[i, src, 2 * u + j] + r * inner[i, 2 * u + j])
                    H[i, j] = z * H[i, j] + (T.float32(1) - z) * hh
                    Y[i, s, j] = H[i, j]

        @T.prim_func(private=True)
        def gru_after(
            var_xp: T.handle,
            rk: T.Buffer((u, 3 * u), "float32"),
            rb: T.Buffer((3 * u,), "float32"),
            var_y: T.handle,
            var_h: T.handle,
        ):
            n = T.int64()
            t = T.int64()
            XP = T.match_buffer(var_xp, (n, t, 3 * u), "float32")
            Y = T.match_buffer(var_y, (n, t, u), "float32")
            H = T.match_buffer(var_h, (n, u), "float32")
            inner = T.alloc_buffer((n, 3 * u), "float32")
            if n > 1:  # the sequences' scans in parallel, as the LSTM's
                for i in T.parallel(n):
                    gru_after_scan(XP, rk, rb, Y, H, inner, t, i)
            else:
                for i in range(n):
                    gru_after_scan(XP, rk, rb, Y, H, inner, t, i)

        return gru_after

    @T.macro
    def gru_before_scan(XP, rk, Y, H, inner, zs, rh, acc, t, i):  # noqa: N803 - one sequence
        for j in range(u):
            H[i, j] = T.float32(0)
        for s in range(t):
            src = s + back * (t - 1 - 2 * s)
            for j in range(2 * u):  # h @ recurrent_kernel[:, :2u]
                inner[i, j] = T.float32(0)
            for k, j in T.grid(u, 2 * u):
                inner[i, j] = inner[i, j] + H[i, k] * rk[k, j]
            for j in range(u):
                zs[i, j] = T.float32(1) / (T.float32(1) + _exp(-(XP[i, src, j] + inner[i, j])))
                rh[i, j] = H[i, j] / (T.float32(1) + _exp(-(XP[i, src, u + j] + inner[i, u + j])))
            for j in range(u):  # (r * h) @ recurrent_kernel[:, 2u:]
                acc[i, j] = XP[i, src, 2 * u + j]
            for k, j in T.grid(u, u):
                acc[i, j] = acc[i, j] + rh[i, k] * rk[k, 2 * u + j]
            for j in range(u):
                H[i, j] = zs[i, j] * H[i, j] + (T.float32(1) - zs[i, j]) * _tanh(acc[i, j])
                Y[i, s, j] = H[i, j]

    @T.prim_func(private=True)
    def gru_before(
        var_xp: T.handle, rk: T.Buffer((u, 3 * u), "float32"), var_y: T.handle, var_h: T.handle
    ):
        n = T.int64()
        t = T.int64()
        XP = T.match_buffer(var_xp, (n, t, 3 * u), "float32")
        Y = T.match_buffer(var_y, (n, t, u), "float32")
        H = T.match_buffer(var_h, (n, u), "float32")
        inner = T.alloc_buffer((n, 2 * u), "float32")
        zs = T.alloc_buffer((n, u), "float32")
        rh = T.alloc_buffer((n, u), "float32")
        acc = T.alloc_buffer((n, u), "float32")
        if n > 1:  # the sequences' scans in parallel, as the LSTM's
            for i in T.parallel(n):
                gru_before_scan(XP, rk, Y, H, inner, zs, rh, acc, t, i)
        else:
            for i in range(n):
                gru_before_scan(XP, rk, Y, H, inner, zs, rh, acc, t, i)

    return gru_before


@RULES.on("lstm", "gru")
def _recurrent(ctx: TvmContext, node: Node) -> Any:
    # the input projection of every step is one matmul (Relax); the scan over time is a TIR
    # loop (Relax has none), in float32 for every float dtype
    a, u = node.attrs, node.attrs["units"]
    lstm = node.op == "lstm"
    x, kernel_name, recurrent_name, bias_name = node.inputs
    t = ctx.type(x)
    dtype = t.dtype
    R, relax = ctx.R, ctx.relax
    kernel = ctx.array(kernel_name).astype(np.float32)
    recurrent = ctx.array(recurrent_name).astype(np.float32)
    bias = ctx.array(bias_name).astype(np.float32)
    after = not lstm and a["reset_after"]
    input_bias = bias[0] if after else bias
    xv = ctx.get(x) if dtype == "f32" else ctx.cast(ctx.get(x), "f32")
    xp = ctx.emit(R.add(R.matmul(xv, ctx.const(kernel)), ctx.const(input_bias)), "projection")
    kind = "lstm" if lstm else "gru_after" if after else "gru_before"
    fn = ctx.bb.add_func(_sequence_kernel(kind, u, a["go_backwards"]), f"{kind}_{u}")
    n, steps = ctx.dim(t.shape[0]), ctx.dim(t.shape[1])
    f32 = [relax.TensorType([n, steps, u], "float32")]
    f32 += [relax.TensorType([n, u], "float32")] * (2 if lstm else 1)
    args = [xp, ctx.const(recurrent)] + ([ctx.const(bias[1])] if after else [])
    outs = ctx.emit(relax.call_tir(fn, args, f32), "scan")
    seq, h, *c = (ctx.emit(relax.TupleGetItem(outs, i)) for i in range(len(f32)))
    results = [seq if a["return_sequences"] else h]
    if a["return_state"]:
        results += [h, *c]
    if dtype != "f32":
        results = [ctx.cast(r, dtype) for r in results]
    return tuple(results) if a["return_state"] else results[0]


@RULES.on("multi_head_attention")
def _attention(ctx: TvmContext, node: Node) -> Any:
    # Keras' MultiHeadAttention: per-head projections as matmuls over reshaped kernels, the
    # query scaled before the scores, softmax over the keys (in float32 for f16)
    a, R = node.attrs, ctx.R
    heads, key_dim, value_dim = a["heads"], a["key_dim"], a["value_dim"]
    data, pairs = attention_inputs(node.inputs, a)
    query, value, key = query_value_key(data)
    dtype = node.tensor_type.dtype
    f32 = "f32" if dtype in HALF else dtype

    def operand(name: str) -> Any:
        v = ctx.get(name)
        return ctx.cast(v, "f32") if dtype in HALF else v

    def project(x: str, kernel: str, bias: str | None, dim: int, perm: list[int]) -> Any:
        # [N, T, D] @ [D, heads*dim] (+ bias) -> [N, T, heads, dim] -> permuted per head
        w = ctx.array(kernel)
        y = R.matmul(operand(x), ctx.const(w.reshape(w.shape[0], -1), f32))
        if bias:
            y = R.add(y, ctx.const(ctx.array(bias).reshape(-1), f32))
        t = ctx.type(x)
        y = R.reshape(ctx.emit(y), [ctx.dim(t.shape[0]), ctx.dim(t.shape[1]), heads, dim])
        return ctx.emit(R.permute_dims(ctx.emit(y), perm))

    (wq, bq), (wk, bk), (wv, bv), (wo, bo) = pairs
    q = project(query, wq, bq, key_dim, [0, 2, 1, 3])  # [N, h, T, k]
    q = ctx.emit(R.multiply(q, ctx.scalar(1 / math.sqrt(key_dim), f32)))  # as Keras
    k = project(key, wk, bk, key_dim, [0, 2, 3, 1])  # [N, h, k, S]
    v = project(value, wv, bv, value_dim, [0, 2, 1, 3])  # [N, h, S, v]
    scores = ctx.emit(R.matmul(q, k))  # [N, h, T, S]
    if a["causal"]:  # query i sees keys j <= i
        tirx, te = ctx.t.tirx, ctx.t.te

        def mask(s: Any) -> Any:
            minus_inf = tirx.const(float("-inf"), s.dtype)
            return te.compute(
                s.shape,
                lambda n, h, i, j: tirx.Select(j <= i, s[n, h, i, j], minus_inf),
                name="causal",
            )

        scores = ctx.te(mask, scores, name="causal_mask")
    probs = ctx.emit(R.nn.softmax(scores, axis=-1))
    y = ctx.emit(R.permute_dims(ctx.emit(R.matmul(probs, v)), [0, 2, 1, 3]))  # [N, T, h, v]
    tq = ctx.type(query)
    y = ctx.emit(R.reshape(y, [ctx.dim(tq.shape[0]), ctx.dim(tq.shape[1]), heads * value_dim]))
    w = ctx.array(wo)
    y = ctx.emit(R.matmul(y, ctx.const(w.reshape(-1, w.shape[-1]), f32)))
    if bo:
        y = ctx.emit(R.add(y, ctx.const(ctx.array(bo), f32)))
    return ctx.cast(y, dtype) if dtype in HALF else y
