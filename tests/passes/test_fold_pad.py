"""fold_pad: a zero pad before conv/maxpool -> the op's own padding, only where that is exact
(checked on all-negative inputs, where a wrong fold into a max pooling shows)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from netc.passes import eliminate_dead_nodes, fold_pad, fuse_activation, optimize
from netc.runtime import reference
from netc.runtime.tolerance import assert_close


def test_fold_pad_golden(net, ir, same_numbers):
    g, w = net("""
        model m(x: f32[N, 5, 2]) -> (y: f32[N, 8, 3]) {
            y = x |> pad(((0, 0), (2, 1), (0, 0))) |> conv1d(3, 3, padding="same", bias=false)
        }""")
    g2, w2 = eliminate_dead_nodes(*fold_pad(g, w))
    assert (
        ir(g2)
        == """\
graph m(x: f32[N, 5, 2]) -> (y: f32[N, 8, 3]) {
  conv1d.kernel: f32[3, 2, 3] = param(init="glorot_uniform", trainable=true)
  conv1d: f32[N, 8, 3] = conv1d(x, conv1d.kernel, filters=3, kernel=(3,), stride=(1,), \
padding=((3, 2),), dilation=(1,), groups=1, bias=false, origin=("t.net:3:14",))
  return y=conv1d
}"""
    )
    same_numbers((g, w), (g2, w2))


@pytest.mark.parametrize(
    "op",
    [
        "conv2d(3, 3, stride=2)",
        "conv2d(4, 2, dilation=2, groups=2)",
        'depthwise_conv2d(3, padding="same", depth_multiplier=2)',
    ],
)
def test_fold_pad_into_convolutions(net, same_numbers, op):
    g, w = net(f"""
        model m(x: f32[N, 5, 4, 2]) -> (y: f32[N, 1]) {{
            y = x |> pad(((0, 0), (1, 2), (0, 1), (0, 0))) |> {op} |> flatten
                  |> reduce_sum(axis=1, keepdims=true)
        }}""")
    g2, w2 = fold_pad(g, w)
    conv = next(n for n in g2.nodes if "conv" in n.op)
    assert conv.inputs[0] == "x"
    same_numbers((g, w), (g2, w2))


def test_fold_pad_into_a_maxpool_after_relu(net, same_numbers):
    # ResNet-50's stem: relu, a zero pad of 1, then a 3x3/2 max pooling
    g, w = net("""
        model m(x: f32[N, 6, 6, 2]) -> (y: f32[N, 3, 3, 2]) {
            y = x |> relu |> pad(((0, 0), (1, 1), (1, 1), (0, 0))) |> maxpool(3, stride=2)
        }""")
    g2, w2 = fold_pad(g, w)
    assert g2["maxpool"].inputs == ("relu",)
    assert g2["maxpool"].attrs["padding"] == ((1, 1), (1, 1))
    same_numbers((g, w), (g2, w2))


def test_fold_pad_into_a_maxpool_with_a_minus_infinity_pad(net, same_numbers):
    g, w = net("""
        model m(x: f32[N, 6, 2]) -> (y: f32[N, 3, 2]) {
            y = x |> pad(((0, 0), (1, 1), (0, 0))) |> maxpool(3, stride=2)
        }""")
    pad = g["pad"]
    g = g.with_nodes(
        [replace(n, attrs={**n.attrs, "value": -math.inf}) if n is pad else n for n in g.nodes]
    )
    g2, w2 = fold_pad(g, w)
    assert g2["maxpool"].inputs == ("x",)
    same_numbers((g, w), (g2, w2))


def test_fold_pad_keeps_a_pad_that_others_read(net, same_numbers):
    g, w = net("""
        model m(x: f32[N, 5, 2]) -> (y: f32[N, 8, 3], p: f32[N, 8, 2]) {
            p = x |> pad(((0, 0), (2, 1), (0, 0)))
            y = p |> conv1d(3, 3, padding="same")
        }""")
    g2, w2 = eliminate_dead_nodes(*fold_pad(g, w))
    assert g2["conv1d"].inputs[0] == "x" and g2["pad"].inputs == ("x",)
    same_numbers((g, w), (g2, w2))


# --- refusals ----------------------------------------------------------------------------


def test_fold_pad_refuses_avgpool_whose_count_would_change(net):
    g, w = net("""
        model m(x: f32[N, 6, 2]) -> (y: f32[N, 4, 2]) {
            y = x |> pad(((0, 0), (1, 1), (0, 0))) |> avgpool(2)
        }""")
    assert fold_pad(g, w)[0] is g


def test_fold_pad_refuses_a_maxpool_of_values_that_may_be_negative(net):
    g, w = net("""
        model m(x: f32[N, 6, 2]) -> (y: f32[N, 3, 2]) {
            y = x |> pad(((0, 0), (1, 1), (0, 0))) |> maxpool(3, stride=2)
        }""")
    assert fold_pad(g, w)[0] is g


def test_fold_pad_refuses_a_maxpool_padding_as_wide_as_the_window(net):
    g, w = net("""
        model m(x: f32[N, 6, 2]) -> (y: f32[N, 5, 2]) {
            y = x |> relu |> pad(((0, 0), (2, 2), (0, 0))) |> maxpool(2)
        }""")
    assert fold_pad(g, w)[0] is g


@pytest.mark.parametrize(
    "pad",
    [
        "pad(((0, 0), (1, 1), (0, 0)), value=1.0)",
        'pad(((0, 0), (1, 1), (0, 0)), mode="reflect")',
        'pad(((0, 0), (1, 1), (0, 0)), mode="edge")',
        "pad(((0, 0), (1, 1), (1, 0)))",
        "pad(((1, 0), (1, 1), (0, 0)))",
    ],
    ids=["nonzero", "reflect", "edge", "channel-axis", "batch-axis"],
)
def test_fold_pad_refuses_pads_the_conv_cannot_take(net, pad):
    g, w = net(f"""
        model m(x: f32[2, 5, 2]) -> (y: f32[]) {{
            y = x |> {pad} |> conv1d(3, 3) |> reduce_sum
        }}""")
    assert fold_pad(g, w)[0] is g


def test_fold_pad_refuses_a_transposed_convolution(net):
    g, w = net("""
        model m(x: f32[N, 5, 2]) -> (y: f32[N, 7, 3]) {
            y = x |> pad(((0, 0), (1, 1), (0, 0))) |> conv1d_transpose(3, 3, padding="same")
        }""")
    assert fold_pad(g, w)[0] is g


def test_fold_pad_works_beside_a_symbolic_axis(net, same_numbers):
    g, w = net("""
        model m(x: f32[N, T, 4, 2]) -> (y: f32[N, T, 6, 3]) {
            y = x |> pad(((0, 0), (0, 0), (1, 1), (0, 0))) |> conv2d(3, 3, padding="same")
        }""")
    g2, w2 = fold_pad(g, w)
    assert g2["conv2d"].inputs[0] == "x"
    same_numbers((g, w), (g2, w2))


def test_fold_pad_of_a_graph_without_pads_is_the_same_graph(net):
    g, w = net("""
        model m(x: f32[N, 5, 2]) -> (y: f32[N, 3, 3]) {
            y = x |> conv1d(3, 3)
        }""")
    g2, w2 = fold_pad(g, w)
    assert g2 is g and w2 is w


# --- exactness on the inputs where a wrong fold shows: windows of negative values ----------


def negative_outputs(graph, weights):
    """The graph's outputs in float64 on all-negative inputs (seeded)."""
    rng = np.random.default_rng(0)
    feed = {
        i: (-np.abs(rng.standard_normal((2, 6, 6, 2))) - 0.1).astype(np.float32)
        for i in graph.inputs
    }
    return reference.run(graph, feed, weights, wide=True)


@pytest.mark.parametrize(
    "before",
    ["relu", "relu6", "sigmoid", "softplus", "exp", "abs", "conv2d(2, 1) |> relu"],
)
@pytest.mark.parametrize("value", ["0.0", "-2.0"])
def test_fold_pad_into_a_maxpool_of_non_negative_values_is_exact(net, before, value):
    g, w = net(f"""
        model m(x: f32[N, 6, 6, 2]) -> (y: f32[N, 3, 3, 2]) {{
            y = x |> {before} |> pad(((0, 0), (1, 1), (1, 1), (0, 0)), value={value})
                  |> maxpool(3, stride=2)
        }}""")
    g2, w2 = eliminate_dead_nodes(*fold_pad(g, w))
    assert "pad" not in {n.op for n in g2.nodes}
    assert g2["maxpool"].attrs["padding"] == ((1, 1), (1, 1))
    a, b = negative_outputs(g, w)["y"], negative_outputs(g2, w2)["y"]
    assert (a == b).all()


@pytest.mark.parametrize(
    "before",
    ["conv2d(2, 1)", "leaky_relu", "tanh", "elu", "gelu", "silu", "neg", "batchnorm"],
)
def test_fold_pad_refuses_a_maxpool_of_values_that_can_be_negative(net, before):
    # ResNet-50 v2's stem is conv2d, zero pad, maxpool: a window of negative values keeps the
    # pad's 0, which maxpool's own (-inf) padding would lose
    g, w = net(f"""
        model m(x: f32[N, 6, 6, 2]) -> (y: f32[N, 3, 3, 2]) {{
            y = x |> {before} |> pad(((0, 0), (1, 1), (1, 1), (0, 0))) |> maxpool(3, stride=2)
        }}""")
    assert fold_pad(g, w)[0] is g


def test_fold_pad_refuses_a_positive_value_even_after_relu(net):
    g, w = net("""
        model m(x: f32[N, 6, 2]) -> (y: f32[N, 3, 2]) {
            y = x |> relu |> pad(((0, 0), (1, 1), (0, 0)), value=0.5) |> maxpool(3, stride=2)
        }""")
    assert fold_pad(g, w)[0] is g


@pytest.mark.parametrize(("activation", "folds"), [("relu", True), ("leaky_relu", False)])
def test_fold_pad_after_a_fused_conv_depends_on_its_activation(net, activation, folds):
    g, w = net(f"""
        model m(x: f32[N, 6, 6, 2]) -> (y: f32[N, 3, 3, 2]) {{
            y = x |> conv2d(2, 1) |> {activation} |> pad(((0, 0), (1, 1), (1, 1), (0, 0)))
                  |> maxpool(3, stride=2)
        }}""")
    g, w = fuse_activation(g, w)
    assert g["conv2d"].op == "fused_conv"
    g2, w2 = eliminate_dead_nodes(*fold_pad(g, w))
    assert (g2["maxpool"].inputs == ("conv2d",)) is folds
    a, b = negative_outputs(g, w)["y"], negative_outputs(g2, w2)["y"]
    assert (a == b).all()


def test_the_optimizer_keeps_the_pad_of_the_resnet50_v2_stem(net):
    g, w = net("""
        model m(x: f32[N, 6, 6, 2]) -> (y: f32[N, 3, 3, 4]) {
            y = x |> conv2d(4, 3, padding="same") |> batchnorm
                  |> pad(((0, 0), (1, 1), (1, 1), (0, 0))) |> maxpool(3, stride=2)
        }""")
    g2, w2 = optimize(g, w, 2)
    assert "pad" in {n.op for n in g2.nodes}
    # the folded batchnorm rounds its kernel to float32 once: the op tolerance
    assert_close(negative_outputs(g2, w2)["y"], negative_outputs(g, w)["y"])
