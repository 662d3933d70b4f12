"""fuse_activation: conv/dense (+ residual add) + activation -> fused_conv / fused_dense; and
the fused ops themselves (shape rule, meaning, FLOPs)."""

from __future__ import annotations

import numpy as np
import pytest

from netc.ir import TensorType
from netc.ops import OPS, ShapeError
from netc.passes import fuse_activation

RESIDUAL = """
model m(x: f32[N, 4]) -> (y: f32[N, 4]) {
    h = x |> dense(4) |> relu
    y = leaky_relu(h + dense(h, 4), alpha=0.1)
}
"""


def test_fuse_activation_golden_with_a_residual(net, ir, same_numbers):
    g, w = net(RESIDUAL)
    g2, w2 = fuse_activation(g, w)
    assert (
        ir(g2)
        == """\
graph m(x: f32[N, 4]) -> (y: f32[N, 4]) {
  dense.kernel: f32[4, 4] = param(init="glorot_uniform", trainable=true)
  dense.bias: f32[4] = param(init="zeros", trainable=true)
  dense: f32[N, 4] = fused_dense(x, dense.kernel, dense.bias, units=4, bias=true, \
activation="relu", residual=false, origin=("t.net:3:26",))
  dense_1.kernel: f32[4, 4] = param(init="glorot_uniform", trainable=true)
  dense_1.bias: f32[4] = param(init="zeros", trainable=true)
  dense_1: f32[N, 4] = fused_dense(dense, dense, dense_1.kernel, dense_1.bias, units=4, \
bias=true, activation="leaky_relu", alpha=0.1, residual=true, origin=("t.net:4:20", "t.net:4:9"))
  return y=dense_1
}"""
    )
    assert w2 is w
    same_numbers((g, w), (g2, w2))


ACTIVATIONS = [
    "relu",
    "relu6",
    "sigmoid",
    "tanh",
    "gelu",
    "gelu(approximate=true)",
    "silu",
    "leaky_relu",
    "leaky_relu(alpha=0.05)",
]


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_fuse_activation_keeps_the_numbers_for_every_activation(net, same_numbers, act):
    g, w = net(f"""
        model m(x: f32[N, 6, 3]) -> (y: f32[N, 6, 4]) {{
            y = x |> conv1d(4, 3, padding="same") |> {act}
        }}""")
    g2, w2 = fuse_activation(g, w)
    fused = g2["conv1d"]
    assert fused.op == "fused_conv" and fused.attrs["activation"] == act.split("(")[0]
    same_numbers((g, w), (g2, w2))


LAYERS = {
    "conv1d": ("f32[N, 6, 3]", 'conv1d(3, 3, padding="same")'),
    "conv2d": ("f32[N, 5, 5, 3]", 'conv2d(3, 3, padding="same", bias=false)'),
    "conv3d": ("f32[N, 3, 3, 3, 2]", 'conv3d(2, 3, padding="same")'),
    "depthwise_conv2d": ("f32[N, 5, 5, 3]", 'depthwise_conv2d(3, padding="same")'),
    "conv2d_transpose": ("f32[N, 3, 3, 3]", 'conv2d_transpose(3, 3, padding="same")'),
    "dense": ("f32[N, 3, 3]", "dense(3)"),
}


@pytest.mark.parametrize("layer", LAYERS, ids=list(LAYERS))
@pytest.mark.parametrize("form", ["plain", "y + x", "x + y"])
def test_fuse_activation_for_every_base_op_with_and_without_residual(
    net, same_numbers, layer, form
):
    t, op = LAYERS[layer]
    expr = "y" if form == "plain" else form
    g, w = net(f"""
        model m(x: {t}) -> (z: {t}) {{
            y = x |> {op}
            z = relu({expr})
        }}""")
    g2, w2 = fuse_activation(g, w)
    ops = [n.op for n in g2.nodes if n.op not in ("input", "param")]
    assert ops == ["fused_dense" if layer == "dense" else "fused_conv"]
    assert g2.nodes[-1].attrs["residual"] == (form != "plain")
    same_numbers((g, w), (g2, w2))


def test_fuse_activation_of_two_convs_takes_the_other_as_residual(net, same_numbers):
    g, w = net("""
        model m(x: f32[N, 4, 4, 2]) -> (z: f32[N, 4, 4, 3]) {
            z = relu(conv2d(x, 3, 1) + conv2d(x, 3, 3, padding="same"))
        }""")
    g2, w2 = fuse_activation(g, w)
    fused = [n for n in g2.nodes if n.op == "fused_conv"]
    assert len(fused) == 1 and fused[0].inputs[:2] == ("x", "conv2d_1")
    same_numbers((g, w), (g2, w2))


def test_fuse_activation_moves_a_graph_output_to_the_fused_node(net):
    g, w = net("""
        model m(x: f32[N, 4]) -> (y: f32[N, 3]) {
            y = x |> dense(3) |> sigmoid
        }""")
    assert fuse_activation(g, w)[0].outputs == (("y", "dense"),)


# --- refusals ----------------------------------------------------------------------------


def test_fuse_activation_leaves_a_shared_conv_alone(net):
    g, w = net("""
        model m(x: f32[N, 4]) -> (y: f32[N, 3]) {
            d = x |> dense(3)
            y = relu(d) + d
        }""")
    assert fuse_activation(g, w)[0] is g


def test_fuse_activation_leaves_a_conv_that_is_a_graph_output_alone(net):
    g, w = net("""
        model m(x: f32[N, 4]) -> (d: f32[N, 3], y: f32[N, 3]) {
            d = x |> dense(3)
            y = relu(d)
        }""")
    assert fuse_activation(g, w)[0] is g


def test_fuse_activation_leaves_a_shared_sum_alone(net):
    g, w = net("""
        model m(x: f32[N, 3]) -> (y: f32[N, 3]) {
            s = dense(x, 3) + x
            y = relu(s) * s
        }""")
    assert fuse_activation(g, w)[0] is g


def test_fuse_activation_refuses_a_residual_that_broadcasts(net):
    g, w = net("""
        model m(x: f32[N, 5, 3], r: f32[N, 1, 3]) -> (y: f32[N, 5, 3]) {
            y = relu(dense(x, 3) + r)
        }""")
    assert fuse_activation(g, w)[0] is g


def test_fuse_activation_refuses_a_sum_of_the_same_conv_twice(net):
    g, w = net("""
        model m(x: f32[N, 3]) -> (y: f32[N, 3]) {
            d = dense(x, 3)
            y = relu(d + d)
        }""")
    assert fuse_activation(g, w)[0] is g


def test_fuse_activation_ignores_other_activations(net):
    g, w = net("""
        model m(x: f32[N, 4]) -> (y: f32[N, 3]) {
            y = x |> dense(3) |> softmax
        }""")
    g2, w2 = fuse_activation(g, w)
    assert g2 is g and w2 is w


def test_fuse_activation_works_with_symbolic_dims(net, same_numbers):
    g, w = net("""
        model m(x: f32[N, T, 3]) -> (y: f32[N, T, 3]) {
            y = relu(x + conv1d(x, 3, 3, padding="same"))
        }""")
    g2, w2 = fuse_activation(g, w)
    assert g2 is not g
    same_numbers((g, w), (g2, w2))


# --- the fused ops ---------------------------------------------------------------------------


def f32(*shape):
    return TensorType("f32", shape)


def test_fused_conv_infers_its_base_ops_type_and_canonical_attrs():
    t, attrs = OPS["fused_conv"].infer(
        [f32("N", 5, 5, 3)],
        {
            "base": "conv2d",
            "filters": 4,
            "kernel": 3,
            "padding": "same",
            "activation": "gelu",
            "approximate": True,
            "residual": False,
        },
    )
    assert t == f32("N", 5, 5, 4)
    assert attrs["padding"] == ((1, 1), (1, 1)) and attrs["approximate"] is True


def test_fused_ops_refuse_a_residual_of_another_type():
    with pytest.raises(ShapeError, match="residual"):
        OPS["fused_dense"].infer(
            [f32("N", 3), f32("N", 1)],
            {"units": 3, "bias": True, "activation": "relu", "residual": True},
        )


def test_fused_ops_refuse_a_residual_input_without_residual_true():
    with pytest.raises(ShapeError, match="residual"):
        OPS["fused_dense"].infer(
            [f32("N", 3), f32("N", 3)],
            {"units": 3, "bias": True, "activation": "relu", "residual": False},
        )


def test_fused_conv_refuses_an_unknown_base():
    with pytest.raises(ShapeError, match="unknown base"):
        OPS["fused_conv"].infer([f32("N", 5, 3)], {"base": "maxpool", "activation": "relu"})


def test_fused_dense_means_dense_then_add_then_activation():
    rng = np.random.default_rng(0)
    x, r = rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=(2, 4)).astype(np.float32)
    k, b = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=4).astype(np.float32)
    attrs = {"units": 4, "bias": True, "activation": "leaky_relu", "alpha": 0.2, "residual": True}
    got = OPS["fused_dense"].evaluate([x, r, k, b], attrs)
    want = OPS["leaky_relu"].evaluate([x @ k + b + r], {"alpha": 0.2})
    np.testing.assert_array_equal(got, want)


def test_fused_flops_are_the_base_ops_plus_the_epilogue():
    x, out = f32("N", 8), f32("N", 4)
    base = OPS["dense"].count_flops([x], out, {"units": 4, "bias": True})
    fused = OPS["fused_dense"].count_flops(
        [x, out], out, {"units": 4, "bias": True, "activation": "relu", "residual": True}
    )
    assert fused == base + out.numel() + OPS["relu"].count_flops([out], out, {})
