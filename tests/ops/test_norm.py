"""batchnorm, layernorm and dropout: numbers against naive loops, Keras weight shapes, errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
from op_testing import error, infer, t

from netc.ops import OPS, Param

F32 = "f32"


def run(name, x, *weights, **attrs):
    _, canon = infer(
        name, t(*x.shape, dtype={"float32": F32, "float16": "f16"}[str(x.dtype)]), **attrs
    )
    return OPS[name].evaluate([x, *weights], canon)


rng = np.random.default_rng(0)


# --- batchnorm -------------------------------------------------------------------------------


def naive_batchnorm(x, gamma, beta, mean, var, eps, axis):
    out = np.empty(x.shape)
    for idx in itertools.product(*map(range, x.shape)):
        c = idx[axis]
        out[idx] = gamma[c] * (float(x[idx]) - mean[c]) / math.sqrt(var[c] + eps) + beta[c]
    return out


def bn_weights(c):
    return (
        rng.uniform(0.5, 2, c).astype(np.float32),
        rng.standard_normal(c).astype(np.float32),
        rng.standard_normal(c).astype(np.float32),
        rng.uniform(0.1, 3, c).astype(np.float32),
    )


def test_batchnorm_uses_moving_statistics_over_the_last_axis():
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    w = bn_weights(5)
    y = run("batchnorm", x, *w)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, naive_batchnorm(x, *w, 1e-3, 3), rtol=1e-5, atol=1e-5)


def test_batchnorm_normalizes_a_channels_first_axis():
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    w = bn_weights(3)
    y = run("batchnorm", x, *w, axis=1, epsilon=1e-5)
    np.testing.assert_allclose(y, naive_batchnorm(x, *w, 1e-5, 1), rtol=1e-5, atol=1e-5)


def test_batchnorm_without_center_and_scale_takes_only_the_statistics():
    x = rng.standard_normal((3, 4)).astype(np.float32)
    _, beta, mean, var = bn_weights(4)
    y = run("batchnorm", x, beta, mean, var, scale=False)
    np.testing.assert_allclose(
        y, naive_batchnorm(x, np.ones(4), beta, mean, var, 1e-3, 1), rtol=1e-5, atol=1e-5
    )
    y = run("batchnorm", x, mean, var, scale=False, center=False)
    np.testing.assert_allclose(
        y, naive_batchnorm(x, np.ones(4), np.zeros(4), mean, var, 1e-3, 1), rtol=1e-5, atol=1e-5
    )


def test_batchnorm_keeps_f16_and_computes_in_f32():
    x = rng.standard_normal((2, 6)).astype(np.float16)
    w = bn_weights(6)
    y = run("batchnorm", x, *[v.astype(np.float16) for v in w])
    assert y.dtype == np.float16
    ref = naive_batchnorm(x, *[v.astype(np.float16).astype(np.float64) for v in w], 1e-3, 1)
    np.testing.assert_allclose(y, ref, rtol=2e-3, atol=2e-3)


def test_batchnorm_weights_follow_keras_order_four_per_channel():
    x = t("N", 112, 112, 32)
    _, canon = infer("batchnorm", x)
    specs = OPS["batchnorm"].param_specs([x], canon)
    assert specs == {
        "gamma": Param((32,), "ones"),
        "beta": Param((32,), "zeros"),
        "moving_mean": Param((32,), "zeros", trainable=False),
        "moving_variance": Param((32,), "ones", trainable=False),
    }
    # Keras' BatchNormalization(32) has 128 params, 64 of them trainable.
    assert sum(math.prod(p.shape) for p in specs.values()) == 128
    assert sum(math.prod(p.shape) for p in specs.values() if p.trainable) == 64


def test_batchnorm_without_center_or_scale_drops_beta_or_gamma():
    x = t("N", 8)
    _, canon = infer("batchnorm", x, center=False)
    assert list(OPS["batchnorm"].param_specs([x], canon)) == [
        "gamma",
        "moving_mean",
        "moving_variance",
    ]
    _, canon = infer("batchnorm", x, scale=False)
    assert list(OPS["batchnorm"].param_specs([x], canon)) == [
        "beta",
        "moving_mean",
        "moving_variance",
    ]


def test_batchnorm_channel_axis_follows_axis():
    x = t("N", 16, 7, 7)
    _, canon = infer("batchnorm", x, axis=1)
    assert OPS["batchnorm"].param_specs([x], canon)["gamma"].shape == (16,)


def test_batchnorm_defaults_are_keras():
    defaults = {a.name: a.default for a in OPS["batchnorm"].attrs}
    assert defaults == {
        "axis": -1,
        "epsilon": 1e-3,
        "momentum": 0.99,
        "center": True,
        "scale": True,
        "gamma_init": "ones",
        "beta_init": "zeros",
        "moving_mean_init": "zeros",
        "moving_variance_init": "ones",
    }


def test_batchnorm_stores_a_non_negative_axis_idempotently():
    x = t("N", "H", "W", 8)
    out, canon = infer("batchnorm", x)
    assert out == x and canon["axis"] == 3
    assert infer("batchnorm", x, **canon) == (out, canon)


def test_batchnorm_errors():
    assert error("batchnorm", t("N", 4, dtype="i32")) == (
        "batchnorm needs a floating-point input, got i32[N, 4]"
    )
    assert error("batchnorm", t(4, "C")) == (
        "batchnorm needs a known size on axis 1 to create weights, got symbol `C` in f32[4, C]"
    )
    assert error("batchnorm", t("N", 4), axis=2) == ("batchnorm: axis 2 is out of range for rank 2")
    assert error("batchnorm", t("N", 4), epsilon=0.0) == "batchnorm needs epsilon > 0, got 0.0"
    assert error("batchnorm", t("N", 4), momentum=1.5) == (
        "batchnorm needs 0 <= momentum <= 1, got 1.5"
    )


def test_batchnorm_counts_one_multiply_add_per_element():
    x = t("N", 4, 4, 8)
    out, canon = infer("batchnorm", x)
    assert OPS["batchnorm"].count_flops([x], out, canon) == 2 * 128


# --- layernorm -------------------------------------------------------------------------------


def naive_layernorm(x, gamma, beta, eps, axes):
    """Loops over every index of the kept axes; gamma/beta are indexed by the normalized ones."""
    out = np.empty(x.shape)
    kept = [a for a in range(x.ndim) if a not in axes]
    for outer in itertools.product(*(range(x.shape[a]) for a in kept)):
        cells = []
        for inner in itertools.product(*(range(x.shape[a]) for a in axes)):
            idx = [0] * x.ndim
            for a, i in zip(kept, outer, strict=True):
                idx[a] = i
            for a, i in zip(axes, inner, strict=True):
                idx[a] = i
            cells.append((tuple(idx), inner))
        values = [float(x[idx]) for idx, _ in cells]
        mean = sum(values) / len(values)
        var = sum((v - mean) ** 2 for v in values) / len(values)
        for (idx, inner), v in zip(cells, values, strict=True):
            out[idx] = gamma[inner] * (v - mean) / math.sqrt(var + eps) + beta[inner]
    return out


def test_layernorm_normalizes_each_sample_over_the_last_axis():
    x = rng.standard_normal((2, 3, 6)).astype(np.float32)
    gamma, beta = (
        rng.standard_normal(6).astype(np.float32),
        rng.standard_normal(6).astype(np.float32),
    )
    y = run("layernorm", x, gamma, beta)
    np.testing.assert_allclose(y, naive_layernorm(x, gamma, beta, 1e-3, (2,)), rtol=1e-5, atol=1e-5)


def test_layernorm_normalizes_several_axes_with_weights_of_their_shape():
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    gamma = rng.standard_normal((3, 5)).astype(np.float32)
    beta = rng.standard_normal((3, 5)).astype(np.float32)
    y = run("layernorm", x, gamma, beta, axis=(-1, 1), epsilon=1e-5)
    np.testing.assert_allclose(
        y, naive_layernorm(x, gamma, beta, 1e-5, (1, 3)), rtol=1e-5, atol=1e-5
    )


def test_layernorm_without_center_and_scale_has_no_weights():
    x = rng.standard_normal((2, 7)).astype(np.float32)
    y = run("layernorm", x, center=False, scale=False)
    np.testing.assert_allclose(
        y, naive_layernorm(x, np.ones(7), np.zeros(7), 1e-3, (1,)), rtol=1e-5, atol=1e-5
    )
    assert (
        OPS["layernorm"].param_specs(
            [t("N", 7)], infer("layernorm", t("N", 7), center=False, scale=False)[1]
        )
        == {}
    )


def test_layernorm_weights_have_the_normalized_axes_shape():
    x = t("N", 128, 512)
    _, canon = infer("layernorm", x)
    specs = OPS["layernorm"].param_specs([x], canon)
    # Keras' LayerNormalization on 512 features: 1024 params.
    assert specs == {"gamma": Param((512,), "ones"), "beta": Param((512,), "zeros")}
    _, canon = infer("layernorm", x, axis=(2, 1))
    assert OPS["layernorm"].param_specs([x], canon)["gamma"].shape == (128, 512)


def test_layernorm_stores_sorted_axes_idempotently():
    x = t("N", "T", 16)
    out, canon = infer("layernorm", x)
    assert out == x and canon["axis"] == (2,)
    assert infer("layernorm", x, **canon) == (out, canon)
    out, canon = infer("layernorm", t("N", 4, 16), axis=(-1, 1))
    assert canon["axis"] == (1, 2)
    assert infer("layernorm", t("N", 4, 16), **canon) == (out, canon)


def test_layernorm_defaults_are_keras():
    defaults = {a.name: a.default for a in OPS["layernorm"].attrs}
    assert defaults == {
        "axis": -1,
        "epsilon": 1e-3,
        "center": True,
        "scale": True,
        "gamma_init": "ones",
        "beta_init": "zeros",
    }


def test_layernorm_errors():
    assert error("layernorm", t("N", "T", 8), axis=(1, 2)) == (
        "layernorm needs a known size on axis 1 to create weights, got symbol `T` in f32[N, T, 8]"
    )
    assert error("layernorm", t("N", 8), axis=(1, -1)) == "layernorm lists axis 1 twice"
    assert error("layernorm", t("N", 8), axis=()) == "layernorm needs at least one axis"
    assert error("layernorm", t("N", 8), axis=3) == "layernorm: axis 3 is out of range for rank 2"
    assert error("layernorm", t("N", 8, dtype="i64")) == (
        "layernorm needs a floating-point input, got i64[N, 8]"
    )


def test_layernorm_over_a_symbolic_axis_is_fine_without_weights():
    out, _ = infer("layernorm", t("N", "T"), center=False, scale=False)
    assert out == t("N", "T")


# --- dropout ---------------------------------------------------------------------------------


def test_dropout_is_the_identity_at_inference():
    x = rng.standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_array_equal(run("dropout", x, rate=0.5), x)
    assert infer("dropout", t("N", 5), rate=0.5) == (t("N", 5), {"rate": 0.5})
    assert OPS["dropout"].count_flops([t("N", 5)], t("N", 5), {"rate": 0.5}) == 0


def test_dropout_rate_must_be_in_zero_to_one():
    assert error("dropout", t("N", 5), rate=1.0) == "dropout needs 0 <= rate < 1, got 1.0"
    assert error("dropout", t("N", 5), rate=-0.1) == "dropout needs 0 <= rate < 1, got -0.1"
    assert infer("dropout", t("N", 5), rate=0.0)[0] == t("N", 5)
