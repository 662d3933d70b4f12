"""fold_scale_shift: per-channel `* c`, `/ c`, `+ c`, `- c` after conv/dense -> kernel and bias."""

from __future__ import annotations

import numpy as np
import pytest

from netc.passes import eliminate_dead_nodes, fold_scale_shift

SCALE_SHIFT = """
model m(x: f32[N, 5, 2]) -> (y: f32[N, 5, 3]) {
    y = (x |> conv1d(3, 3, padding="same", bias=false)) * 2.0 + 1.0
}
"""


def test_fold_scale_shift_golden_folds_a_whole_chain(net, ir, same_numbers):
    g, w = net(SCALE_SHIFT)
    folded = eliminate_dead_nodes(*fold_scale_shift(g, w))
    assert (
        ir(folded[0])
        == """\
graph m(x: f32[N, 5, 2]) -> (y: f32[N, 5, 3]) {
  conv1d.kernel_folded: f32[3, 2, 3] = param(init="glorot_uniform", trainable=true)
  conv1d.bias_folded: f32[3] = param(init="zeros", trainable=true)
  conv1d: f32[N, 5, 3] = conv1d(x, conv1d.kernel_folded, conv1d.bias_folded, filters=3, \
kernel=(3,), stride=(1,), padding=((1, 1),), dilation=(1,), groups=1, bias=true, \
origin=("t.net:3:9",))
  return y=conv1d
}"""
    )
    np.testing.assert_allclose(folded[1]["conv1d.kernel_folded"], 2 * w["conv1d.kernel"])
    np.testing.assert_allclose(folded[1]["conv1d.bias_folded"], np.ones(3))
    same_numbers((g, w), folded)


def test_fold_scale_shift_folding_twice_replaces_its_own_weights_in_place(net):
    # the second step reads conv1d.kernel_folded, made by the first and read by nothing else
    g, w = net(SCALE_SHIFT)
    g2, w2 = fold_scale_shift(g, w)
    assert not any(n.endswith("_folded_1") for n in w2)


@pytest.mark.parametrize("expr", ["y * c", "c * y", "y / c", "y + c", "c + y", "y - c"])
@pytest.mark.parametrize(
    "layer",
    [
        ("f32[N, 6, 3]", 'conv1d(4, 3, padding="same")'),
        ("f32[N, 5, 5, 2]", "conv2d(4, 3, groups=2, bias=false)"),
        ("f32[N, 5, 5, 2]", "depthwise_conv2d(3, depth_multiplier=2)"),
        ("f32[N, 3, 3, 2]", "conv2d_transpose(4, 2, stride=2)"),
        ("f32[N, 5, 5, 2]", "separable_conv2d(4, 3, depth_multiplier=2, bias=false)"),
        ("f32[N, 3, 6]", "dense(4, bias=false)"),
    ],
    ids=["conv1d", "grouped", "depthwise", "transpose", "separable", "dense"],
)
def test_fold_scale_shift_with_a_per_channel_constant(net, same_numbers, expr, layer):
    x, op = layer
    out = (
        "f32[N, 3, 4]"
        if op.startswith("dense")
        else "f32[N, 6, 4]"
        if op.startswith("conv1d")
        else "f32[N, 6, 6, 4]"
        if "transpose" in op
        else "f32[N, 3, 3, 4]"
    )
    g, w = net(
        f"""
        model m(x: {x}, c: f32[4]) -> (z: {out}) {{
            y = x |> {op}
            z = {expr}
        }}""",
        constants=["c"],
    )
    g2, w2 = fold_scale_shift(g, w)
    assert g2 is not g
    assert [
        n.op for n in eliminate_dead_nodes(g2, w2)[0].nodes if n.op not in ("param", "input")
    ] == [op.split("(")[0]]
    same_numbers((g, w), (g2, w2))


def test_fold_scale_shift_accepts_leading_unit_dims(net, same_numbers):
    g, w = net(
        """
        model m(x: f32[N, 5, 2], c: f32[1, 1, 3]) -> (y: f32[N, 5, 3]) {
            y = (x |> conv1d(3, 3, padding="same")) * c
        }""",
        constants=["c"],
    )
    g2, w2 = fold_scale_shift(g, w)
    assert g2 is not g
    same_numbers((g, w), (g2, w2))


def test_fold_scale_shift_works_with_symbolic_dims(net, same_numbers):
    g, w = net("""
        model m(x: f32[N, T, 2]) -> (y: f32[N, T, 3]) {
            y = (x |> conv1d(3, 3, padding="same")) - 0.5
        }""")
    g2, w2 = fold_scale_shift(g, w)
    assert g2 is not g
    same_numbers((g, w), (g2, w2))


# --- refusals ----------------------------------------------------------------------------


def test_fold_scale_shift_leaves_a_shared_conv_alone(net):
    g, w = net("""
        model m(x: f32[N, 5, 2]) -> (y: f32[N, 5, 3]) {
            c = x |> conv1d(3, 3, padding="same")
            y = c * 2.0 + c
        }""")
    assert fold_scale_shift(g, w)[0] is g


def test_fold_scale_shift_leaves_a_conv_that_is_a_graph_output_alone(net):
    g, w = net("""
        model m(x: f32[N, 5, 2]) -> (c: f32[N, 5, 3], y: f32[N, 5, 3]) {
            c = x |> conv1d(3, 3, padding="same")
            y = c * 2.0
        }""")
    assert fold_scale_shift(g, w)[0] is g


def test_fold_scale_shift_refuses_a_constant_that_varies_along_another_axis(net):
    g, w = net(
        """
        model m(x: f32[N, 5, 2], c: f32[5, 1]) -> (y: f32[N, 5, 3]) {
            y = (x |> conv1d(3, 3, padding="same")) * c
        }""",
        constants=["c"],
    )
    assert fold_scale_shift(g, w)[0] is g


def test_fold_scale_shift_refuses_a_constant_that_broadcasts_the_result(net):
    g, w = net(
        """
        model m(x: f32[N, 5, 1], c: f32[4]) -> (y: f32[N, 5, 4]) {
            y = (x |> conv1d(1, 3, padding="same")) * c
        }""",
        constants=["c"],
    )
    assert fold_scale_shift(g, w)[0] is g


def test_fold_scale_shift_refuses_a_weight_or_an_input_as_the_scale(net):
    text = """
        model m(x: f32[N, 5, 2], c: f32[3]) -> (y: f32[N, 5, 3]) {
            y = (x |> conv1d(3, 3, padding="same")) * c
        }"""
    g, w = net(text, weights=["c"])
    assert fold_scale_shift(g, w)[0] is g
    g, w = net(text)
    assert fold_scale_shift(g, w)[0] is g


def test_fold_scale_shift_refuses_division_by_zero(net):
    g, w = net("""
        model m(x: f32[N, 5, 2]) -> (y: f32[N, 5, 3]) {
            y = (x |> conv1d(3, 3, padding="same")) / 0.0
        }""")
    assert fold_scale_shift(g, w)[0] is g


def test_fold_scale_shift_refuses_a_constant_minus_the_conv(net):
    g, w = net("""
        model m(x: f32[N, 5, 2]) -> (y: f32[N, 5, 3]) {
            y = 1.0 - (x |> conv1d(3, 3, padding="same"))
        }""")
    assert fold_scale_shift(g, w)[0] is g


def test_fold_scale_shift_refuses_when_training(net):
    g, w = net(SCALE_SHIFT)
    assert fold_scale_shift(g, w, keep_training=True)[0] is g


def test_fold_scale_shift_ignores_arithmetic_after_other_ops(net):
    g, w = net("""
        model m(x: f32[N, 5, 2]) -> (y: f32[N, 5, 2]) {
            y = relu(x) * 2.0
        }""")
    g2, w2 = fold_scale_shift(g, w)
    assert g2 is g and w2 is w
