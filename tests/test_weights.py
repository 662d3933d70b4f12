"""Initializers (netc.weights): canonical text, argument checking, Keras 3's formulas (fans,
limits, deviations, truncation), and the same distributions as Keras' own initializers."""

from __future__ import annotations

import math

import numpy as np
import pytest

import netc
from netc.weights import (
    INITIALIZER_ARGS,
    USER_INITIALIZERS,
    draw,
    initial_weights,
    keras_initializer,
    make_initializer,
    parse_initializer,
    randomized_weights,
)

CONV = (3, 3, 64, 128)  # fan_in 576, fan_out 1152: 73,728 values, enough for tight statistics
DENSE = (300, 200)


def sample(text: str, shape: tuple[int, ...] = CONV, seed: int = 0) -> np.ndarray:
    return draw(parse_initializer(text), np.random.default_rng(seed), shape)


def test_canonical_text_round_trips_and_omits_defaults():
    for text in (
        "glorot_uniform",
        "constant(value=1e-06)",
        "random_normal(stddev=0.02)",
        "random_uniform(minval=-1.0, maxval=2.0)",
        'variance_scaling(scale=2.0, mode="fan_out", distribution="uniform")',
        'lstm_bias(rest="variance_scaling(mode=\\"fan_avg\\")")',
    ):
        assert str(parse_initializer(text)) == text
    assert str(make_initializer("random_normal", 0.0, 0.05)) == "random_normal"
    assert str(make_initializer("constant", 3)) == "constant(value=3.0)"
    assert str(make_initializer("variance_scaling", distribution="normal")) == "variance_scaling"
    assert make_initializer("truncated_normal", stddev=0.02).kwargs == {
        "mean": 0.0,
        "stddev": 0.02,
    }


def test_argument_mistakes_say_what_is_wrong():
    def message(*args, **kwargs):
        with pytest.raises(ValueError) as info:
            make_initializer(*args, **kwargs)
        return str(info.value)

    assert message("he_normall") == 'unknown initializer "he_normall"'
    assert message("zeros", 1) == "initializer `zeros` takes no arguments, got 1"
    assert message("constant", 1, 2) == "initializer `constant` takes at most 1 argument, got 2"
    assert message("random_normal", 0.0, stddev=1.0, mean=1.0) == (
        "initializer `random_normal`: `mean` is given twice"
    )
    assert message("orthogonal", scale=2.0) == (
        "initializer `orthogonal` has no argument `scale` (it takes `gain`)"
    )
    assert message("constant", "1") == 'initializer `constant`: `value` must be a number, got "1"'
    assert message("constant", True) == "initializer `constant`: `value` must be a number, got true"
    assert (
        message("variance_scaling", 0.0)
        == "initializer `variance_scaling`: `scale` must be > 0, got 0.0"
    )
    assert message("random_normal", stddev=-1) == (
        "initializer `random_normal`: `stddev` must be >= 0, got -1.0"
    )
    assert message("random_uniform", 1, 0) == (
        "initializer `random_uniform`: `minval` must be <= `maxval`"
    )
    assert message("variance_scaling", distribution="gauss") == (
        'initializer `variance_scaling`: `distribution` must be "truncated_normal" or '
        '"untruncated_normal" or "uniform" or "normal", got "gauss"'
    )
    with pytest.raises(ValueError, match='cannot read initializer "constant\\(value=x\\)"'):
        parse_initializer("constant(value=x)")


# Keras 3 (keras/src/initializers/random_initializers.py): VarianceScaling divides `scale` by
# max(1, n), n = fan_in, fan_out or their mean; uniform within +-sqrt(3 scale), truncated normal
# of deviation sqrt(scale) / .87962566103423978 cut at two deviations.
KERAS_VARIANCE = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    'variance_scaling(scale=3.0, mode="fan_out", distribution="uniform")': (
        3.0,
        "fan_out",
        "uniform",
    ),
    'variance_scaling(mode="fan_avg", distribution="untruncated_normal")': (
        1.0,
        "fan_avg",
        "untruncated_normal",
    ),
}


def keras_fans(shape):
    receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
    if len(shape) == 1:
        return shape[0], shape[0]
    return shape[-2] * receptive, shape[-1] * receptive


@pytest.mark.parametrize("text", KERAS_VARIANCE)
@pytest.mark.parametrize("shape", [CONV, DENSE])
def test_variance_scaling_family_has_keras_scale(text, shape):
    scale, mode, distribution = KERAS_VARIANCE[text]
    fan_in, fan_out = keras_fans(shape)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    scale /= max(1.0, n)
    x = sample(text, shape)
    assert x.shape == shape and abs(x.mean()) < 0.05 * x.std()
    if distribution == "uniform":
        limit = math.sqrt(3 * scale)
        assert np.abs(x).max() <= limit and np.abs(x).max() > 0.999 * limit
        assert x.std() == pytest.approx(limit / math.sqrt(3), rel=0.02)
    elif distribution == "untruncated_normal":
        assert x.std() == pytest.approx(math.sqrt(scale), rel=0.02)
        assert np.abs(x).max() > 3 * math.sqrt(scale)
    else:  # the truncated normal's final deviation is sqrt(scale): the correction's purpose
        wide = math.sqrt(scale) / 0.87962566103423978
        assert np.abs(x).max() <= 2 * wide and np.abs(x).max() > 1.99 * wide
        assert x.std() == pytest.approx(math.sqrt(scale), rel=0.02)


def test_plain_distributions_use_their_arguments():
    x = sample("random_normal(mean=1.0, stddev=0.5)")
    assert x.mean() == pytest.approx(1.0, abs=0.01) and x.std() == pytest.approx(0.5, rel=0.02)
    x = sample("truncated_normal(mean=-1.0, stddev=0.1)")
    assert np.all(np.abs(x + 1.0) <= 0.2) and x.std() == pytest.approx(0.088, rel=0.03)
    x = sample("random_uniform(minval=2.0, maxval=3.0)")
    assert x.min() >= 2.0 and x.max() < 3.0 and x.mean() == pytest.approx(2.5, abs=0.01)
    for short, long in (("uniform", "random_uniform"), ("normal", "random_normal")):
        np.testing.assert_array_equal(sample(short), sample(long))
    assert np.abs(sample("uniform")).max() <= 0.05
    np.testing.assert_array_equal(sample("constant(value=0.25)", (2, 3)), np.full((2, 3), 0.25))
    np.testing.assert_array_equal(sample("ones", (4,)), np.ones(4))
    np.testing.assert_array_equal(sample("zeros", (4,)), np.zeros(4))


def test_orthogonal_is_orthogonal_times_the_gain():
    q = sample("orthogonal(gain=2.0)", (3, 3, 4, 8)).reshape(36, 8)
    np.testing.assert_allclose(q.T @ q, 4.0 * np.eye(8), atol=1e-9)
    wide = sample("orthogonal", (5, 12))
    np.testing.assert_allclose(wide @ wide.T, np.eye(5), atol=1e-9)


def test_lstm_bias_is_ones_on_the_forget_gate_and_rest_elsewhere():
    np.testing.assert_array_equal(sample("lstm_bias", (8,)), [0, 0, 1, 1, 0, 0, 0, 0])
    b = sample('lstm_bias(rest="constant(value=0.5)")', (12,))
    np.testing.assert_array_equal(b, [0.5] * 3 + [1.0] * 3 + [0.5] * 6)


def test_every_user_initializer_draws_and_has_a_keras_class():
    for name in USER_INITIALIZERS:
        assert sample(name, DENSE).shape == DENSE
        assert keras_initializer(name)["class_name"][0].isupper()
    assert set(INITIALIZER_ARGS) == {*USER_INITIALIZERS, "lstm_bias"}
    assert keras_initializer("random_normal(stddev=0.02)") == {
        "class_name": "RandomNormal",
        "config": {"mean": 0.0, "stddev": 0.02},
    }


@pytest.mark.parametrize(
    "text",
    [
        "glorot_uniform",
        "glorot_normal",
        "he_uniform",
        "he_normal",
        "lecun_uniform",
        "lecun_normal",
        "orthogonal(gain=1.5)",
        "random_normal(mean=0.5, stddev=0.02)",
        "random_uniform(minval=-0.2, maxval=0.1)",
        "truncated_normal(stddev=0.3)",
        'variance_scaling(scale=2.0, mode="fan_out", distribution="untruncated_normal")',
        "constant(value=-0.75)",
        "uniform",
        "normal",
    ],
)
def test_the_distributions_are_keras_own(text):
    """The same mean, deviation and quantiles as keras.initializers.get(...) on one shape."""
    import netc.backends

    netc.backends.tensorflow()  # TensorFlow imported quietly, as netc does
    import keras

    config = keras_initializer(text)
    if config["class_name"] != "Constant":  # a fixed seed: the test never depends on luck
        config["config"]["seed"] = 7
    keras_init = keras.initializers.get(config)
    theirs = np.asarray(keras_init(CONV, dtype="float64"))
    ours = sample(text, CONV)
    scale = max(theirs.std(), 1e-12)
    assert ours.mean() == pytest.approx(theirs.mean(), abs=0.02 * scale + 1e-12)
    assert ours.std() == pytest.approx(theirs.std(), rel=0.02, abs=1e-12)
    q = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)  # the shape: its tails and its middle
    np.testing.assert_allclose(np.quantile(ours, q), np.quantile(theirs, q), atol=0.08 * scale)


def test_initial_weights_follow_the_models_initializers_and_randomized_draws_constants():
    m = netc.compile_text(
        "model m(x: f32[N, 4]) -> (y: f32[N, 4]) {\n"
        '    y = x * weight([4], init=constant(1e-6), name="gamma")\n'
        '        |> dense(4, kernel_init="zeros", bias_init=constant(2.0))\n'
        "}\n"
    )
    w = initial_weights(m.graph, seed=1)
    np.testing.assert_array_equal(w["gamma"], np.full(4, 1e-6, np.float32))
    np.testing.assert_array_equal(w["dense.kernel"], np.zeros((4, 4), np.float32))
    np.testing.assert_array_equal(w["dense.bias"], np.full(4, 2.0, np.float32))
    r = randomized_weights(m.graph, seed=1)
    assert len(set(r["dense.bias"].tolist())) == 4 and len(set(r["gamma"].tolist())) == 4
    again = initial_weights(m.graph, seed=1)
    assert all(np.array_equal(w[k], again[k]) for k in w)
