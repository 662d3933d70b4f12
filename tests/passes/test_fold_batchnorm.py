"""fold_batchnorm: conv/dense + batchnorm -> the conv with a rescaled kernel and a new bias."""

from __future__ import annotations

import numpy as np
import pytest

from netc.passes import eliminate_dead_nodes, fold_batchnorm

CONV1D_BN = """
model m(x: f32[N, 5, 2]) -> (y: f32[N, 5, 3]) {
    y = x |> conv1d(3, 3, padding="same") |> batchnorm(epsilon=0.01)
}
"""


def test_fold_batchnorm_golden(net, ir, same_numbers):
    g, w = net(CONV1D_BN)
    folded = eliminate_dead_nodes(*fold_batchnorm(g, w))
    assert (
        ir(folded[0])
        == """\
graph m(x: f32[N, 5, 2]) -> (y: f32[N, 5, 3]) {
  conv1d.kernel_folded: f32[3, 2, 3] = param(init="glorot_uniform", trainable=true)
  conv1d.bias_folded: f32[3] = param(init="zeros", trainable=true)
  conv1d: f32[N, 5, 3] = conv1d(x, conv1d.kernel_folded, conv1d.bias_folded, filters=3, \
kernel=(3,), stride=(1,), padding=((1, 1),), dilation=(1,), groups=1, bias=true, \
origin=("t.net:3:46",))
  return y=conv1d
}"""
    )
    assert sorted(folded[1]) == ["conv1d.bias_folded", "conv1d.kernel_folded"]
    same_numbers((g, w), folded)


def test_fold_batchnorm_computes_the_documented_formula(net):
    g, w = net(CONV1D_BN)
    g2, w2 = fold_batchnorm(g, w)
    s = w["batchnorm.gamma"].astype(np.float64) / np.sqrt(
        w["batchnorm.moving_variance"].astype(np.float64) + 0.01
    )
    np.testing.assert_allclose(w2["conv1d.kernel_folded"], w["conv1d.kernel"] * s, rtol=1e-6)
    np.testing.assert_allclose(
        w2["conv1d.bias_folded"],
        (w["conv1d.bias"] - w["batchnorm.moving_mean"]) * s + w["batchnorm.beta"],
        rtol=1e-5,
    )
    assert w2["conv1d.kernel_folded"].dtype == np.float32


def test_fold_batchnorm_never_writes_into_its_input_weights(net):
    g, w = net(CONV1D_BN)
    copies = {k: v.copy() for k, v in w.items()}
    g2, w2 = fold_batchnorm(g, w)
    assert w2 is not w and sorted(w) == sorted(copies)
    assert all(np.array_equal(w[k], copies[k]) for k in w)
    # the originals stay (with their values) until dead-node elimination
    assert np.array_equal(w2["conv1d.kernel"], copies["conv1d.kernel"])


# Every op kind with its kernel layout: conv [*k, in/groups, out], depthwise [*k, C, M],
# transpose [*k, out, in], separable (the pointwise kernel [*1, C*M, out]), dense [in, units].
LAYERS = {
    "conv1d": ("f32[N, 7, 4]", "conv1d(6, 3)"),
    "conv2d_no_bias": ("f32[N, 5, 5, 3]", 'conv2d(4, 3, padding="same", bias=false)'),
    "conv2d_grouped": ("f32[N, 5, 5, 4]", "conv2d(6, 3, groups=2)"),
    "conv3d": ("f32[N, 3, 4, 4, 2]", 'conv3d(3, 2, padding="same")'),
    "depthwise_conv2d": ("f32[N, 5, 5, 3]", "depthwise_conv2d(3, depth_multiplier=2)"),
    "depthwise_conv1d": ("f32[N, 6, 3]", "depthwise_conv1d(3, bias=false)"),
    "conv2d_transpose": ("f32[N, 3, 3, 2]", "conv2d_transpose(5, 3, stride=2)"),
    "conv1d_transpose": ("f32[N, 4, 3]", 'conv1d_transpose(2, 3, padding="same", bias=false)'),
    "separable_conv2d": ("f32[N, 5, 5, 3]", "separable_conv2d(4, 3, depth_multiplier=2)"),
    "separable_conv1d_no_bias": ("f32[N, 6, 3]", "separable_conv1d(4, 3, bias=false)"),
    "dense": ("f32[N, 6]", "dense(4)"),
    "dense_rank3_no_bias": ("f32[N, 3, 6]", "dense(4, bias=false)"),
}


@pytest.mark.parametrize("layer", LAYERS, ids=list(LAYERS))
@pytest.mark.parametrize(
    "bn",
    ["batchnorm", "batchnorm(epsilon=1e-5)", "batchnorm(center=false)", "batchnorm(scale=false)"],
)
def test_fold_batchnorm_keeps_the_numbers_for_every_kernel_layout(net, same_numbers, layer, bn):
    x, op = LAYERS[layer]
    g, w = net(f"""
        model m(x: {x}) -> (y: f32[N, 1]) {{
            y = x |> {op} |> {bn} |> flatten |> reduce_sum(axis=1, keepdims=true)
        }}""")
    g2, w2 = fold_batchnorm(g, w)
    assert g2 is not g and not any(n.op == "batchnorm" for n in eliminate_dead_nodes(g2, w2)[0])
    same_numbers((g, w), (g2, w2))


def test_fold_batchnorm_the_outputs_per_channel_directly(net, same_numbers):
    # no reduction: every output channel is compared on its own
    g, w = net("""
        model m(x: f32[N, 4, 4, 3]) -> (y: f32[N, 4, 4, 6]) {
            y = x |> depthwise_conv2d(3, padding="same", depth_multiplier=2) |> batchnorm
        }""")
    same_numbers((g, w), fold_batchnorm(g, w))


def test_fold_batchnorm_moves_a_graph_output_to_the_conv(net):
    g, w = net(CONV1D_BN)
    g2, _ = fold_batchnorm(g, w)
    assert g2.outputs == (("y", "conv1d"),)


# --- refusals: each precondition leaves the graph as it is ----------------------------------


def test_fold_batchnorm_leaves_a_shared_conv_alone(net):
    g, w = net("""
        model m(x: f32[N, 5, 2]) -> (y: f32[N, 5, 3]) {
            c = x |> conv1d(3, 3, padding="same")
            y = batchnorm(c) + c
        }""")
    assert fold_batchnorm(g, w)[0] is g


def test_fold_batchnorm_leaves_a_conv_that_is_a_graph_output_alone(net):
    g, w = net("""
        model m(x: f32[N, 5, 2]) -> (c: f32[N, 5, 3], y: f32[N, 5, 3]) {
            c = x |> conv1d(3, 3, padding="same")
            y = c |> batchnorm
        }""")
    assert fold_batchnorm(g, w)[0] is g


def test_fold_batchnorm_refuses_a_batchnorm_over_another_axis_than_the_channels(net):
    g, w = net("""
        model m(x: f32[N, 5, 2]) -> (y: f32[N, 5, 3]) {
            y = x |> conv1d(3, 3, padding="same") |> batchnorm(axis=1)
        }""")
    assert fold_batchnorm(g, w)[0] is g


def test_fold_batchnorm_refuses_a_variance_plus_epsilon_that_is_not_positive(net):
    g, w = net(CONV1D_BN)
    w["batchnorm.moving_variance"] = np.array([1.0, -0.5, 1.0], np.float32)  # + 0.01 < 0
    assert fold_batchnorm(g, w)[0] is g


def test_fold_batchnorm_uses_the_batchnorm_epsilon(net, same_numbers):
    # a tiny variance makes epsilon dominate: a folded default 1e-3 would be far off
    g, w = net(CONV1D_BN.replace("epsilon=0.01", "epsilon=0.5"))
    w["batchnorm.moving_variance"] = np.full(3, 1e-4, np.float32)
    same_numbers((g, w), fold_batchnorm(g, w))


def test_fold_batchnorm_refuses_when_training(net):
    g, w = net(CONV1D_BN)
    assert fold_batchnorm(g, w, keep_training=True)[0] is g


def test_fold_batchnorm_refuses_unknown_weights(net):
    g, w = net(CONV1D_BN)
    del w["batchnorm.moving_mean"]
    assert fold_batchnorm(g, w)[0] is g


def test_fold_batchnorm_refuses_a_computed_kernel(net):
    g, w = net("""
        model m(x: f32[N, 4], k: f32[4, 3]) -> (y: f32[N, 3]) {
            y = x @ k |> batchnorm
        }""")
    assert fold_batchnorm(g, w)[0] is g


def test_fold_batchnorm_ignores_a_batchnorm_after_other_ops(net):
    g, w = net("""
        model m(x: f32[N, 5, 2]) -> (y: f32[N, 5, 2]) {
            y = x |> relu |> batchnorm
        }""")
    assert fold_batchnorm(g, w)[0] is g


def test_fold_batchnorm_of_a_graph_without_batchnorm_is_the_same_graph(net):
    g, w = net("""
        model m(x: f32[N, 5, 2]) -> (y: f32[N, 5, 3]) {
            y = x |> conv1d(3, 3, padding="same") |> relu
        }""")
    g2, w2 = fold_batchnorm(g, w)
    assert g2 is g and w2 is w


def test_fold_batchnorm_works_with_symbolic_dims(net, same_numbers):
    g, w = net("""
        model m(x: f32[N, T, 2]) -> (y: f32[N, T, 3]) {
            y = x |> conv1d(3, 3, padding="same") |> batchnorm
        }""")
    g2, w2 = fold_batchnorm(g, w)
    assert g2 is not g
    same_numbers((g, w), (g2, w2))


def test_fold_batchnorm_in_half_precision_keeps_the_weights_dtype(net, same_numbers):
    g, w = net("""
        model m(x: f16[N, 5, 2]) -> (y: f16[N, 5, 3]) {
            y = x |> conv1d(3, 3, padding="same") |> batchnorm
        }""")
    g2, w2 = fold_batchnorm(g, w)
    assert w2["conv1d.kernel_folded"].dtype == np.float16
    assert g2["conv1d.bias_folded"].tensor_type.dtype == "f16"
    same_numbers((g, w), (g2, w2))
