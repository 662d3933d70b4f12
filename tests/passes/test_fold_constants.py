"""fold_constants: ops on constants alone become constants, within a size budget."""

from __future__ import annotations

import numpy as np

from netc.ir import Const, Graph, Node
from netc.passes import eliminate_dead_nodes, fold_constants


def test_fold_constants_golden_folds_a_chain(net, ir, same_numbers):
    g, w = net(
        """
        model m(x: f32[N, 4], c: f32[4]) -> (y: f32[N, 4]) {
            y = x * (c * 2.0 + 1.0)
        }""",
        constants={"c": [0.0, 0.5, 1.0, -1.0]},
    )
    g2, w2 = eliminate_dead_nodes(*fold_constants(g, w))
    assert (
        ir(g2)
        == """\
graph m(x: f32[N, 4]) -> (y: f32[N, 4]) {
  add: f32[4] = constant(value=Const([1.0, 2.0, 3.0, -1.0]))
  mul_1: f32[N, 4] = mul(x, add)
  return y=mul_1
}"""
    )
    assert g2["add"].span == g["add"].span
    same_numbers((g, w), (g2, w2))


def test_fold_constants_leaves_weights_alone_unless_frozen(net, same_numbers):
    g, w = net(
        """
        model m(x: f32[N, 3], k: f32[4, 3]) -> (y: f32[N, 4]) {
            y = x @ transpose(k, (1, 0))
        }""",
        weights=["k"],
    )
    assert fold_constants(g, w)[0] is g
    g2, w2 = eliminate_dead_nodes(*fold_constants(g, w, freeze_weights=True))
    assert g2["transpose"].op == "constant" and w2 == {}
    same_numbers((g, w), (g2, w2))


def test_fold_constants_folds_the_items_of_a_multi_result_op(net, same_numbers):
    g, w = net(
        """
        model m(x: f32[N, 2], c: f32[4]) -> (y: f32[N, 2]) {
            a, b = split(c)
            y = x * a + b
        }""",
        constants=["c"],
    )
    g2, w2 = eliminate_dead_nodes(*fold_constants(g, w))
    assert [n.op for n in g2.nodes] == ["input", "constant", "constant", "mul", "add"]
    same_numbers((g, w), (g2, w2))


def test_fold_constants_refuses_a_value_over_the_size_budget(net):
    g, w = net(
        """
        model m(x: f32[N, 4], c: f32[4]) -> (y: f32[N, 4]) {
            y = x * (c * 2.0)
        }""",
        constants=["c"],
    )
    assert fold_constants(g, w, max_bytes=8)[0] is g
    assert fold_constants(g, w, max_bytes=16)[0] is not g


def test_fold_constants_refuses_to_grow_the_model_past_the_bound(net):
    # c [64] + d [64, 1] broadcasts to [64, 64]: 16 KiB from 512 bytes of inputs
    text = """
        model m(x: f32[N, 64, 64], c: f32[64], d: f32[64, 1]) -> (y: f32[N, 64, 64]) {
            y = x * (c + d)
        }"""
    g, w = net(text, constants=["c", "d"])
    assert fold_constants(g, w, max_growth=10_000)[0] is g
    assert fold_constants(g, w, max_growth=16_384 - 512)[0] is not g


def test_fold_constants_counts_what_a_fold_leaves_unread_as_freed(net):
    # c * 2.0 replaces c and the scalar: the model does not grow
    g, w = net(
        """
        model m(x: f32[N, 64], c: f32[64]) -> (y: f32[N, 64]) {
            y = x * (c * 2.0)
        }""",
        constants=["c"],
    )
    assert fold_constants(g, w, max_growth=0)[0] is not g


def test_fold_constants_leaves_an_op_whose_evaluation_fails(net):
    # ids out of the vocabulary: the runtime raises it, folding must not hide it
    g, w = net("""
        model m(x: f32[N, 3, 2], ids: i32[3]) -> (y: f32[N, 3, 2]) {
            y = x + embedding(ids, 2, 2)
        }""")
    nodes = [
        Node("ids", "constant", (), {"value": Const(np.array([0, 5, 1], np.int32))}, n.type)
        if n.name == "ids"
        else n
        for n in g.nodes
    ]
    g = Graph(g.name, tuple(nodes), ("x",), g.outputs)
    assert fold_constants(g, w, freeze_weights=True)[0] is g


def test_fold_constants_of_a_graph_without_constant_ops_is_the_same_graph(net):
    g, w = net("""
        model m(x: f32[N, 4]) -> (y: f32[N, 4]) {
            y = relu(x) * 2.0
        }""")
    g2, w2 = fold_constants(g, w)
    assert g2 is g and w2 is w
