"""lstm and gru: numbers against per-step textbook references, Keras' weight layouts and counts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from netc.ir import TensorType
from netc.ops import OPS, ShapeError


def f32(*shape):
    return TensorType("f32", tuple(shape))


def run(name, x, weights, **attrs):
    """Infer (to get the canonical attrs), then evaluate."""
    _, canon = OPS[name].infer([f32(*x.shape)], attrs)
    return OPS[name].evaluate([x, *weights], canon)


def random_weights(name, x, rng, **attrs):
    specs = OPS[name].param_specs([f32(*x.shape)], attrs)
    return [rng.uniform(-0.6, 0.6, p.shape).astype(np.float32) for p in specs.values()]


def sig(v):
    return 1.0 / (1.0 + math.exp(-v))


def textbook_lstm(x, kernel, recurrent, bias):
    """Per sample, per step, per unit; Keras' gate order i, f, c, o along the 4u axis."""
    n, t, _ = x.shape
    u = recurrent.shape[0]
    seq = np.zeros((n, t, u))
    cs = np.zeros((n, u))
    for b in range(n):
        h, c = np.zeros(u), np.zeros(u)
        for s in range(t):
            pre = [
                x[b, s] @ kernel[:, g * u : (g + 1) * u]
                + h @ recurrent[:, g * u : (g + 1) * u]
                + bias[g * u : (g + 1) * u]
                for g in range(4)
            ]
            new_c = np.zeros(u)
            new_h = np.zeros(u)
            for j in range(u):
                i_gate, f_gate = sig(pre[0][j]), sig(pre[1][j])
                cand, o_gate = math.tanh(pre[2][j]), sig(pre[3][j])
                new_c[j] = f_gate * c[j] + i_gate * cand
                new_h[j] = o_gate * math.tanh(new_c[j])
            h, c = new_h, new_c
            seq[b, s] = h
        cs[b] = c
    return seq, cs


def textbook_gru(x, kernel, recurrent, bias, reset_after):
    """Per sample, per step; Keras' gate order z, r, h along the 3u axis."""
    n, t, _ = x.shape
    u = recurrent.shape[0]
    b_in, b_rec = (bias[0], bias[1]) if reset_after else (bias, np.zeros(3 * u))
    W = [kernel[:, g * u : (g + 1) * u] for g in range(3)]
    U = [recurrent[:, g * u : (g + 1) * u] for g in range(3)]
    bi = [b_in[g * u : (g + 1) * u] for g in range(3)]
    br = [b_rec[g * u : (g + 1) * u] for g in range(3)]
    seq = np.zeros((n, t, u))
    for b in range(n):
        h = np.zeros(u)
        for s in range(t):
            xt = x[b, s]
            z = 1 / (1 + np.exp(-(xt @ W[0] + bi[0] + h @ U[0] + br[0])))
            r = 1 / (1 + np.exp(-(xt @ W[1] + bi[1] + h @ U[1] + br[1])))
            if reset_after:
                cand = np.tanh(xt @ W[2] + bi[2] + r * (h @ U[2] + br[2]))
            else:
                cand = np.tanh(xt @ W[2] + bi[2] + (r * h) @ U[2])
            h = z * h + (1 - z) * cand
            seq[b, s] = h
    return seq


@pytest.fixture
def rng():
    return np.random.default_rng(7)


# --- lstm ----------------------------------------------------------------------------------


def test_lstm_sequence_matches_textbook_equations(rng):
    x = rng.normal(size=(2, 6, 5)).astype(np.float32)
    w = random_weights("lstm", x, rng, units=4)
    out = run("lstm", x, w, units=4, return_sequences=True)
    seq, _ = textbook_lstm(x.astype(np.float64), *w)
    assert out.shape == (2, 6, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out, seq, rtol=1e-5, atol=1e-6)


def test_lstm_returns_the_last_step_by_default(rng):
    x = rng.normal(size=(3, 4, 2)).astype(np.float32)
    w = random_weights("lstm", x, rng, units=3)
    out = run("lstm", x, w, units=3)
    seq, _ = textbook_lstm(x.astype(np.float64), *w)
    assert out.shape == (3, 3)
    np.testing.assert_allclose(out, seq[:, -1], rtol=1e-5, atol=1e-6)


def test_lstm_return_state_gives_output_h_and_c(rng):
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    t, _ = OPS["lstm"].infer(
        [f32("N", 5, 3)], {"units": 4, "return_sequences": True, "return_state": True}
    )
    assert t == (f32("N", 5, 4), f32("N", 4), f32("N", 4))
    w = random_weights("lstm", x, rng, units=4)
    out, h, c = run("lstm", x, w, units=4, return_sequences=True, return_state=True)
    seq, cs = textbook_lstm(x.astype(np.float64), *w)
    np.testing.assert_allclose(out, seq, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h, seq[:, -1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c, cs, rtol=1e-5, atol=1e-6)


def test_lstm_go_backwards_returns_the_sequence_in_processing_order(rng):
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    w = random_weights("lstm", x, rng, units=4)
    out = run("lstm", x, w, units=4, return_sequences=True, go_backwards=True)
    seq, _ = textbook_lstm(x[:, ::-1].astype(np.float64), *w)
    np.testing.assert_allclose(out, seq, rtol=1e-5, atol=1e-6)
    last = run("lstm", x, w, units=4, go_backwards=True)
    np.testing.assert_allclose(last, seq[:, -1], rtol=1e-5, atol=1e-6)


def test_lstm_weights_follow_keras_layout_and_count():
    specs = OPS["lstm"].param_specs([f32("N", 10, 32)], {"units": 64})
    assert {k: (p.shape, p.init) for k, p in specs.items()} == {
        "kernel": ((32, 256), "glorot_uniform"),
        "recurrent_kernel": ((64, 256), "orthogonal"),
        "bias": ((256,), "lstm_bias"),
    }
    assert sum(math.prod(p.shape) for p in specs.values()) == 24_832  # keras LSTM(64) on 32


def test_lstm_keeps_symbolic_batch_and_time():
    t, attrs = OPS["lstm"].infer([f32("N", "T", 32)], {"units": 64, "return_sequences": True})
    assert t == f32("N", "T", 64)
    assert attrs == {
        "units": 64,
        "return_sequences": True,
        "return_state": False,
        "go_backwards": False,
    }
    assert OPS["lstm"].infer([f32("N", "T", 32)], attrs) == (t, attrs)  # idempotent
    assert OPS["lstm"].infer([f32("N", "T", 32)], {"units": 64})[0] == f32("N", 64)


def test_lstm_keeps_the_input_float_dtype(rng):
    x = rng.normal(size=(1, 3, 2)).astype(np.float16)
    w = [a.astype(np.float16) for a in random_weights("lstm", x, rng, units=2)]
    assert run("lstm", x, w, units=2).dtype == np.float16


def test_lstm_rejects_a_rank_2_input():
    with pytest.raises(ShapeError) as e:
        OPS["lstm"].infer([f32("N", 32)], {"units": 8})
    assert e.value.message == "lstm needs a rank-3 input [N, T, F], got f32[N, 32]"
    assert e.value.hint == "lstm reads a sequence; reshape the input to [N, T, F]"


def test_lstm_rejects_integer_input_unknown_features_and_zero_units():
    cases = [
        (
            [TensorType("i32", ("N", 4, 3))],
            {"units": 2},
            "lstm needs a floating-point input, got i32[N, 4, 3]",
        ),
        (
            [f32("N", "T", "F")],
            {"units": 2},
            "lstm needs a known feature size F to create its weights, got f32[N, T, F]",
        ),
        ([f32("N", 4, 3)], {"units": 0}, "lstm needs units >= 1, got 0"),
        ([f32("N", 0, 3)], {"units": 2}, "lstm needs at least one time step, got f32[N, 0, 3]"),
    ]
    for types, attrs, message in cases:
        with pytest.raises(ShapeError) as e:
            OPS["lstm"].infer(types, attrs)
        assert e.value.message == message


def test_lstm_flops_grow_with_the_number_of_steps():
    def flops(t):
        out, attrs = OPS["lstm"].infer([f32("N", t, 8)], {"units": 4})
        return OPS["lstm"].count_flops([f32("N", t, 8)], out, attrs)

    assert flops(10) == 2 * flops(5) > 0
    assert flops("T") == flops(1)


# --- gru -----------------------------------------------------------------------------------


def test_gru_reset_after_matches_textbook_equations(rng):
    x = rng.normal(size=(2, 6, 5)).astype(np.float32)
    w = random_weights("gru", x, rng, units=4)
    assert w[2].shape == (2, 12)
    out = run("gru", x, w, units=4, return_sequences=True)
    ref = textbook_gru(x.astype(np.float64), *w, reset_after=True)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_gru_reset_before_matches_textbook_equations(rng):
    x = rng.normal(size=(2, 6, 5)).astype(np.float32)
    w = random_weights("gru", x, rng, units=4, reset_after=False)
    assert w[2].shape == (12,)
    out = run("gru", x, w, units=4, return_sequences=True, reset_after=False)
    ref = textbook_gru(x.astype(np.float64), *w, reset_after=False)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_gru_reset_after_differs_from_reset_before(rng):
    x = rng.normal(size=(1, 4, 3)).astype(np.float32)
    k, r, b = random_weights("gru", x, rng, units=3)
    b = np.zeros_like(b)
    after = run("gru", x, [k, r, b], units=3)
    before = run("gru", x, [k, r, b[0]], units=3, reset_after=False)
    assert not np.allclose(after, before)


def test_gru_return_state_gives_output_and_h(rng):
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    t, _ = OPS["gru"].infer([f32("N", "T", 3)], {"units": 4, "return_state": True})
    assert t == (f32("N", 4), f32("N", 4))
    w = random_weights("gru", x, rng, units=4)
    out, h = run("gru", x, w, units=4, return_state=True)
    ref = textbook_gru(x.astype(np.float64), *w, reset_after=True)
    np.testing.assert_allclose(out, ref[:, -1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h, ref[:, -1], rtol=1e-5, atol=1e-6)


def test_gru_go_backwards_returns_the_sequence_in_processing_order(rng):
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    w = random_weights("gru", x, rng, units=4)
    out = run("gru", x, w, units=4, return_sequences=True, go_backwards=True)
    ref = textbook_gru(x[:, ::-1].astype(np.float64), *w, reset_after=True)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_gru_weights_follow_keras_layout_and_count():
    specs = OPS["gru"].param_specs([f32("N", 10, 32)], {"units": 64})
    assert {k: (p.shape, p.init) for k, p in specs.items()} == {
        "kernel": ((32, 192), "glorot_uniform"),
        "recurrent_kernel": ((64, 192), "orthogonal"),
        "bias": ((2, 192), "zeros"),
    }
    assert sum(math.prod(p.shape) for p in specs.values()) == 18_816  # keras GRU(64) on 32
    before = OPS["gru"].param_specs([f32("N", 10, 32)], {"units": 64, "reset_after": False})
    assert sum(math.prod(p.shape) for p in before.values()) == 18_624


def test_gru_keeps_symbolic_time_and_canonical_attrs():
    t, attrs = OPS["gru"].infer([f32("N", "T", 16)], {"units": 8, "return_sequences": True})
    assert t == f32("N", "T", 8)
    assert attrs["reset_after"] is True and attrs["go_backwards"] is False
    assert OPS["gru"].infer([f32("N", "T", 16)], attrs) == (t, attrs)


def test_gru_rejects_a_rank_4_input():
    with pytest.raises(ShapeError) as e:
        OPS["gru"].infer([f32("N", 8, 8, 3)], {"units": 8})
    assert e.value.message == "gru needs a rank-3 input [N, T, F], got f32[N, 8, 8, 3]"
    assert e.value.hint is None
