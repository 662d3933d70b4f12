"""multi_head_attention: numbers against a per-head, per-query loop, Keras' weights and counts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from netc.ir import TensorType
from netc.ops import OPS, ShapeError

MHA = OPS["multi_head_attention"]


def f32(*shape):
    return TensorType("f32", tuple(shape))


def weights_for(data, rng, **attrs):
    specs = MHA.param_specs([f32(*a.shape) for a in data], attrs)
    return {k: rng.uniform(-0.5, 0.5, p.shape).astype(np.float32) for k, p in specs.items()}


def run(data, weights, **attrs):
    _, canon = MHA.infer([f32(*a.shape) for a in data], attrs)
    return MHA.evaluate([*data, *weights.values()], canon)


def reference(query, value, key, w, key_dim, causal=False):
    """Textbook attention: per sample, per head, per query position, in float64."""

    def bias(name, h):
        return w[name][h] if name in w else 0.0

    n, tq, _ = query.shape
    heads = w["query_kernel"].shape[1]
    out_dim = w["attention_output_kernel"].shape[2]
    out = np.zeros((n, tq, out_dim))
    for b in range(n):
        for i in range(tq):
            acc = np.array(w.get("attention_output_bias", np.zeros(out_dim)), dtype=np.float64)
            for h in range(heads):
                q = query[b, i] @ w["query_kernel"][:, h] + bias("query_bias", h)
                visible = range(i + 1) if causal else range(key.shape[1])
                scores = []
                for j in visible:
                    k = key[b, j] @ w["key_kernel"][:, h] + bias("key_bias", h)
                    scores.append(float(q @ k) / math.sqrt(key_dim))
                top = max(scores)
                exps = [math.exp(s - top) for s in scores]
                mixed = 0.0
                for j, e in zip(visible, exps, strict=True):
                    v = value[b, j] @ w["value_kernel"][:, h] + bias("value_bias", h)
                    mixed = mixed + (e / sum(exps)) * v
                acc += mixed @ w["attention_output_kernel"][h]
            out[b, i] = acc
    return out


@pytest.fixture
def rng():
    return np.random.default_rng(3)


def test_self_attention_matches_the_textbook(rng):
    x = rng.normal(size=(2, 5, 8)).astype(np.float32)
    w = weights_for([x], rng, heads=2, key_dim=3)
    out = run([x], w, heads=2, key_dim=3)
    assert out.shape == (2, 5, 8) and out.dtype == np.float32
    ref = reference(*(x.astype(np.float64),) * 3, w, key_dim=3)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_cross_attention_takes_query_value_key_in_keras_order(rng):
    q = rng.normal(size=(2, 4, 6)).astype(np.float32)
    v = rng.normal(size=(2, 7, 3)).astype(np.float32)
    k = rng.normal(size=(2, 7, 5)).astype(np.float32)
    attrs = dict(heads=3, key_dim=2, value_dim=4, output_dim=9)
    w = weights_for([q, v, k], rng, **attrs)
    assert w["key_kernel"].shape == (5, 3, 2) and w["value_kernel"].shape == (3, 3, 4)
    out = run([q, v, k], w, **attrs)
    assert out.shape == (2, 4, 9)
    ref = reference(q.astype(np.float64), v.astype(np.float64), k.astype(np.float64), w, 2)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_one_extra_input_is_both_value_and_key(rng):
    q = rng.normal(size=(1, 3, 4)).astype(np.float32)
    v = rng.normal(size=(1, 6, 4)).astype(np.float32)
    w = weights_for([q, v], rng, heads=2, key_dim=2)
    np.testing.assert_allclose(
        run([q, v], w, heads=2, key_dim=2), run([q, v, v], w, heads=2, key_dim=2), rtol=1e-6
    )
    ref = reference(q.astype(np.float64), v.astype(np.float64), v.astype(np.float64), w, 2)
    np.testing.assert_allclose(run([q, v], w, heads=2, key_dim=2), ref, rtol=1e-5, atol=1e-5)


def test_causal_attention_matches_the_textbook(rng):
    x = rng.normal(size=(2, 5, 4)).astype(np.float32)
    w = weights_for([x], rng, heads=2, key_dim=3)
    out = run([x], w, heads=2, key_dim=3, causal=True)
    ref = reference(*(x.astype(np.float64),) * 3, w, key_dim=3, causal=True)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    assert not np.allclose(out[:, 1:], run([x], w, heads=2, key_dim=3)[:, 1:], atol=1e-3)


def test_causal_first_query_attends_only_the_first_key(rng):
    q = rng.normal(size=(1, 4, 4)).astype(np.float32)
    v = rng.normal(size=(1, 4, 4)).astype(np.float32)
    w = weights_for([q, v], rng, heads=2, key_dim=3)
    out = run([q, v], w, heads=2, key_dim=3, causal=True)
    # softmax over a single key is 1: the first output is the projected first value
    v0 = np.einsum("d,dhv->hv", v[0, 0], w["value_kernel"]) + w["value_bias"]
    first = np.einsum("hv,hvo->o", v0, w["attention_output_kernel"]) + w["attention_output_bias"]
    np.testing.assert_allclose(out[0, 0], first, rtol=1e-5, atol=1e-6)
    changed = v.copy()
    changed[0, 1:] += 10.0  # later keys and values are invisible to query 0
    out2 = run([q, changed], w, heads=2, key_dim=3, causal=True)
    np.testing.assert_array_equal(out2[0, 0], out[0, 0])
    assert not np.allclose(out2[0, 1:], out[0, 1:])


def test_param_names_shapes_and_count_equal_keras():
    specs = MHA.param_specs([f32("N", "T", 32)], {"heads": 2, "key_dim": 16})
    assert {k: (p.shape, p.init) for k, p in specs.items()} == {
        "query_kernel": ((32, 2, 16), "glorot_uniform"),
        "query_bias": ((2, 16), "zeros"),
        "key_kernel": ((32, 2, 16), "glorot_uniform"),
        "key_bias": ((2, 16), "zeros"),
        "value_kernel": ((32, 2, 16), "glorot_uniform"),
        "value_bias": ((2, 16), "zeros"),
        "attention_output_kernel": ((2, 16, 32), "glorot_uniform"),
        "attention_output_bias": ((32,), "zeros"),
    }
    assert sum(math.prod(p.shape) for p in specs.values()) == 4_224


def test_without_bias_there_are_four_kernels_only(rng):
    specs = MHA.param_specs([f32("N", 6, 8)], {"heads": 2, "key_dim": 4, "bias": False})
    assert list(specs) == ["query_kernel", "key_kernel", "value_kernel", "attention_output_kernel"]
    x = rng.normal(size=(2, 6, 8)).astype(np.float32)
    w = weights_for([x], rng, heads=2, key_dim=4, bias=False)
    ref = reference(*(x.astype(np.float64),) * 3, w, key_dim=4)
    np.testing.assert_allclose(
        run([x], w, heads=2, key_dim=4, bias=False), ref, rtol=1e-5, atol=1e-5
    )


def test_symbolic_dims_and_resolved_defaults():
    t, attrs = MHA.infer([f32("N", "T", 32), f32("N", "S", 16)], {"heads": 4, "key_dim": 8})
    assert t == f32("N", "T", 32)
    assert attrs == {
        "heads": 4,
        "key_dim": 8,
        "value_dim": 8,
        "output_dim": 32,
        "bias": True,
        "causal": False,
    }
    assert MHA.infer([f32("N", "T", 32), f32("N", "S", 16)], attrs) == (t, attrs)
    t, _ = MHA.infer([f32("N", "T", 32)], {"heads": 4, "key_dim": 8, "output_dim": 10})
    assert t == f32("N", "T", 10)


def test_flops_count_projections_and_scores():
    out, attrs = MHA.infer([f32("N", 10, 32)], {"heads": 2, "key_dim": 16})
    flops = MHA.count_flops([f32("N", 10, 32)], out, attrs)
    matmuls = 4 * 2 * 10 * 32 * 32 + 2 * 2 * 10 * 10 * 16 * 2  # projections, q.k and probs.v
    assert matmuls < flops < 2 * matmuls


@pytest.mark.parametrize(
    "types, attrs, message",
    [
        (
            [f32("N", 32)],
            {"heads": 2, "key_dim": 4},
            "multi_head_attention needs a rank-3 query [N, T, D], got f32[N, 32]",
        ),
        (
            [TensorType("i32", ("N", 4, 8))],
            {"heads": 2, "key_dim": 4},
            "multi_head_attention needs a floating-point query, got i32[N, 4, 8]",
        ),
        (
            [f32("N", 4, 8), f32("N", 6, 8), f32("N", 5, 8)],
            {"heads": 2, "key_dim": 4},
            "multi_head_attention needs a key and a value of one length, got f32[N, 5, 8] and "
            "f32[N, 6, 8]",
        ),
        (
            [f32("N", 4, 8), TensorType("f16", ("N", 6, 8))],
            {"heads": 2, "key_dim": 4},
            "multi_head_attention needs query, value and key of one dtype, got f32[N, 4, 8] and "
            "f16[N, 6, 8]",
        ),
        (
            [f32(2, 4, 8), f32(3, 6, 8)],
            {"heads": 2, "key_dim": 4},
            "multi_head_attention: the value batch size 3 differs from the query's 2",
        ),
        (
            [f32("N", 4, "D")],
            {"heads": 2, "key_dim": 4},
            "multi_head_attention needs a known feature size for the query to create its weights, "
            "got f32[N, 4, D]",
        ),
        (
            [f32("N", 4, 8)] * 4,
            {"heads": 2, "key_dim": 4},
            "multi_head_attention takes a query and at most a value and a key, got 4 inputs",
        ),
        (
            [],
            {"heads": 2, "key_dim": 4},
            "multi_head_attention takes a query and at most a value and a key, got 0 inputs",
        ),
        (
            [f32("N", 4, 8)],
            {"heads": 0, "key_dim": 4},
            "multi_head_attention needs heads >= 1, got 0",
        ),
    ],
)
def test_bad_inputs_have_exact_messages(types, attrs, message):
    with pytest.raises(ShapeError) as e:
        MHA.infer(types, attrs)
    assert e.value.message == message
