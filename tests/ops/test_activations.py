"""Activations added for Keras' applications: hard_sigmoid and hard_swish (alias hard_silu),
with Keras 3's definitions, FLOPs, and the alias resolving to the one op."""

from __future__ import annotations

import numpy as np
import pytest
from op_testing import error, infer, t

import netc
from netc.ops import ALIASES, OPS, lookup

X = np.array([-7.0, -3.0, -2.5, -1.0, 0.0, 0.5, 2.9999, 3.0, 3.5, 100.0, -np.inf, np.inf])


def keras_hard_sigmoid(x):
    """Keras 3 (keras/src/backend/*/nn.py): relu6(x + 3) / 6, one float64 op at a time."""
    return np.minimum(np.maximum(x + 3.0, 0.0), 6.0) / 6.0


def test_hard_sigmoid_is_relu6_of_x_plus_3_over_6():
    y = OPS["hard_sigmoid"].evaluate([X], {})
    np.testing.assert_array_equal(y, keras_hard_sigmoid(X))
    assert y.tolist()[:2] == [0.0, 0.0] and y[7] == 1.0 and y[4] == 0.5


def test_hard_swish_is_x_times_hard_sigmoid():
    y = OPS["hard_swish"].evaluate([X[:-2]], {})
    np.testing.assert_array_equal(y, X[:-2] * keras_hard_sigmoid(X[:-2]))
    assert y[0] == 0.0 and y[-1] == 100.0 and y[3] == pytest.approx(-1 / 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_hard_activations_compute_in_the_inputs_dtype(dtype):
    x = X[:-2].astype(dtype)
    for name in ("hard_sigmoid", "hard_swish"):
        y = OPS[name].evaluate([x], {})
        assert y.dtype == dtype
        want = keras_hard_sigmoid(x) if name == "hard_sigmoid" else x * keras_hard_sigmoid(x)
        np.testing.assert_allclose(y, want, rtol=1e-3)


def test_hard_activations_keep_the_shape_and_count_flops():
    for name, per_element in (("hard_sigmoid", 3), ("hard_swish", 4)):
        out, attrs = infer(name, t("N", 4, 5))
        assert out == t("N", 4, 5) and attrs == {}
        assert OPS[name].count_flops([out], out, attrs) == per_element * 20
        assert error(name, t("N", 4, dtype="i32")) == (
            f"{name} needs a floating-point input, got i32[N, 4]"
        )


def test_hard_silu_is_an_alias_of_hard_swish():
    assert ALIASES["hard_silu"] == "hard_swish" and lookup("hard_silu") is OPS["hard_swish"]
    assert "hard_silu" not in OPS
    m = netc.compile_text("model m(x: f32[N, 4]) -> (y: f32[N, 4]) { y = x |> hard_silu }")
    (node,) = [n for n in m.graph.nodes if n.op != "input"]
    assert (node.op, node.name) == ("hard_swish", "hard_swish")
