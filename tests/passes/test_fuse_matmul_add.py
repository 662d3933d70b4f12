"""fuse_matmul_add: `x @ W + b` with known W and b -> dense."""

from __future__ import annotations

import pytest

from netc.passes import eliminate_dead_nodes, fuse_matmul_add


def test_fuse_matmul_add_golden_with_a_scalar_bias(net, ir, same_numbers):
    g, w = net(
        """
        model m(x: f32[N, 4], w: f32[4, 3]) -> (y: f32[N, 3]) {
            y = 0.5 + x @ w
        }""",
        weights=["w"],
    )
    fused = eliminate_dead_nodes(*fuse_matmul_add(g, w))
    assert (
        ir(fused[0])
        == """\
graph m(x: f32[N, 4]) -> (y: f32[N, 3]) {
  w: f32[4, 3] = param(init="zeros", trainable=true)
  add.bias: f32[3] = constant(value=Const([0.5, 0.5, 0.5]))
  add: f32[N, 3] = dense(x, w, add.bias, units=3, bias=true, origin=("t.net:3:9",))
  return y=add
}"""
    )
    same_numbers((g, w), fused)


@pytest.mark.parametrize(
    "expr, frozen",
    [
        ("x @ w + b", {"weights": ["w"], "constants": ["b"]}),
        ("b + x @ w", {"weights": ["w", "b"]}),
        ("x @ w + b", {"constants": ["w", "b"]}),
    ],
    ids=["param-constant", "bias-first-param-param", "constant-constant"],
)
def test_fuse_matmul_add_takes_params_and_constants(net, same_numbers, expr, frozen):
    g, w = net(
        f"""
        model m(x: f32[N, 5, 4], w: f32[4, 3], b: f32[3]) -> (y: f32[N, 5, 3]) {{
            y = {expr}
        }}""",
        **frozen,
    )
    g2, w2 = fuse_matmul_add(g, w)
    assert g2["add"].op == "dense" and g2["add"].inputs == ("x", "w", "b")
    same_numbers((g, w), (g2, w2))


def test_fuse_matmul_add_broadcasts_a_bias_with_leading_unit_dims(net, same_numbers):
    g, w = net(
        """
        model m(x: f32[N, 4], w: f32[4, 3], b: f32[1, 3]) -> (y: f32[N, 3]) {
            y = x @ w + b
        }""",
        weights=["w"],
        constants=["b"],
    )
    g2, w2 = fuse_matmul_add(g, w)
    assert g2["add"].op == "dense" and g2["add.bias"].tensor_type.shape == (3,)
    same_numbers((g, w), (g2, w2))


# --- refusals ----------------------------------------------------------------------------


def test_fuse_matmul_add_refuses_a_matrix_that_is_an_input(net):
    g, w = net(
        """
        model m(x: f32[N, 4], w: f32[4, 3], b: f32[3]) -> (y: f32[N, 3]) {
            y = x @ w + b
        }""",
        constants=["b"],
    )
    assert fuse_matmul_add(g, w)[0] is g


def test_fuse_matmul_add_refuses_a_bias_that_is_an_input(net):
    g, w = net(
        """
        model m(x: f32[N, 4], w: f32[4, 3], b: f32[3]) -> (y: f32[N, 3]) {
            y = x @ w + b
        }""",
        weights=["w"],
    )
    assert fuse_matmul_add(g, w)[0] is g


def test_fuse_matmul_add_leaves_a_shared_matmul_alone(net):
    g, w = net(
        """
        model m(x: f32[N, 4], w: f32[4, 3], b: f32[3]) -> (y: f32[N, 3]) {
            p = x @ w
            y = (p + b) * p
        }""",
        weights=["w"],
        constants=["b"],
    )
    assert fuse_matmul_add(g, w)[0] is g


def test_fuse_matmul_add_leaves_a_matmul_that_is_a_graph_output_alone(net):
    g, w = net(
        """
        model m(x: f32[N, 4], w: f32[4, 3], b: f32[3]) -> (p: f32[N, 3], y: f32[N, 3]) {
            p = x @ w
            y = p + b
        }""",
        weights=["w"],
        constants=["b"],
    )
    assert fuse_matmul_add(g, w)[0] is g


def test_fuse_matmul_add_refuses_a_bias_that_broadcasts_along_another_axis(net):
    g, w = net(
        """
        model m(x: f32[N, 5, 4], w: f32[4, 3], b: f32[5, 1]) -> (y: f32[N, 5, 3]) {
            y = x @ w + b
        }""",
        weights=["w"],
        constants=["b"],
    )
    assert fuse_matmul_add(g, w)[0] is g


def test_fuse_matmul_add_refuses_a_bias_weight_that_needs_broadcasting(net):
    g, w = net(
        """
        model m(x: f32[N, 4], w: f32[4, 3], b: f32[1, 3]) -> (y: f32[N, 3]) {
            y = x @ w + b
        }""",
        weights=["w", "b"],
    )
    assert fuse_matmul_add(g, w)[0] is g


def test_fuse_matmul_add_refuses_a_batched_matrix(net):
    g, w = net(
        """
        model m(x: f32[N, 2, 5, 4], w: f32[2, 4, 3], b: f32[3]) -> (y: f32[N, 2, 5, 3]) {
            y = x @ w + b
        }""",
        weights=["w"],
        constants=["b"],
    )
    assert fuse_matmul_add(g, w)[0] is g


def test_fuse_matmul_add_refuses_when_training(net):
    g, w = net(
        """
        model m(x: f32[N, 4], w: f32[4, 3], b: f32[3]) -> (y: f32[N, 3]) {
            y = x @ w + b
        }""",
        weights=["w"],
        constants=["b"],
    )
    assert fuse_matmul_add(g, w, keep_training=True)[0] is g


def test_fuse_matmul_add_ignores_other_sums(net):
    g, w = net("""
        model m(x: f32[N, 4]) -> (y: f32[N, 4]) {
            y = relu(x) + 1.0
        }""")
    g2, w2 = fuse_matmul_add(g, w)
    assert g2 is g and w2 is w


def test_fuse_matmul_add_refuses_integer_matmuls(net):
    g, w = net(
        """
        model m(x: i32[N, 4], w: i32[4, 3]) -> (y: i32[N, 3]) {
            y = x @ w + 1
        }""",
        constants=["w"],
    )
    assert fuse_matmul_add(g, w)[0] is g
