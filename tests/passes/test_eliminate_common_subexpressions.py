"""eliminate_common_subexpressions: one node per distinct computation."""

from __future__ import annotations

from netc.passes import eliminate_common_subexpressions, eliminate_dead_nodes

TWICE = """
model m(x: f32[N, 4]) -> (y: f32[N, 4]) {
    a = x |> relu |> tanh
    b = x |> relu |> tanh
    y = a * 2.0 + b * 2.0
}
"""


def test_eliminate_common_subexpressions_golden(net, ir, same_numbers):
    g, w = net(TWICE)
    g2, w2 = eliminate_common_subexpressions(g, w)
    # chains merge step by step; the two equal constants are one; the kept nodes list the
    # merged ones' spans
    assert (
        ir(g2)
        == """\
graph m(x: f32[N, 4]) -> (y: f32[N, 4]) {
  relu: f32[N, 4] = relu(x, origin=("t.net:4:14",))
  tanh: f32[N, 4] = tanh(relu, origin=("t.net:4:22",))
  const: f32[] = constant(value=Const(2.0))
  mul: f32[N, 4] = mul(tanh, const, origin=("t.net:5:19",))
  add: f32[N, 4] = add(mul, mul)
  return y=add
}"""
    )
    same_numbers((g, w), (g2, w2))


def test_eliminate_common_subexpressions_merges_multi_result_ops_and_their_items(net):
    g, w = net("""
        model m(x: f32[N, 6]) -> (y: f32[N, 3]) {
            a, b = split(x)
            c, d = split(x)
            y = a + c
        }""")
    g2, _ = eliminate_dead_nodes(*eliminate_common_subexpressions(g, w))
    assert [n.op for n in g2.nodes] == ["input", "split", "item", "add"]
    assert g2["add"].inputs == ("split.0", "split.0")


def test_eliminate_common_subexpressions_never_merges_params(net):
    # two dense layers on the same input have two kernels, however alike
    g, w = net("""
        model m(x: f32[N, 4]) -> (y: f32[N, 3]) {
            y = dense(x, 3) + dense(x, 3)
        }""")
    g2, w2 = eliminate_common_subexpressions(g, w)
    assert g2 is g and w2 is w


def test_eliminate_common_subexpressions_compares_attributes(net):
    g, w = net("""
        model m(x: f32[N, 4]) -> (y: f32[N, 4]) {
            y = leaky_relu(x, alpha=0.1) + leaky_relu(x, alpha=0.2)
        }""")
    assert eliminate_common_subexpressions(g, w)[0] is g


def test_eliminate_common_subexpressions_compares_constants_by_value(net):
    g, w = net("""
        model m(x: f32[N, 4]) -> (y: f32[N, 4]) {
            y = x * 2.0 + x * 3.0
        }""")
    assert eliminate_common_subexpressions(g, w)[0] is g


def test_eliminate_common_subexpressions_keeps_two_outputs_two_values(net):
    g, w = net("""
        model m(x: f32[N, 4]) -> (a: f32[N, 4], b: f32[N, 4]) {
            a = relu(x)
            b = relu(x)
        }""")
    assert eliminate_common_subexpressions(g, w)[0] is g


def test_eliminate_common_subexpressions_moves_an_output_onto_an_equal_op(net, same_numbers):
    g, w = net("""
        model m(x: f32[N, 4]) -> (a: f32[N, 4], b: f32[N, 4]) {
            a = relu(x) * x
            b = relu(x)
        }""")
    g2, w2 = eliminate_common_subexpressions(g, w)
    assert dict(g2.outputs)["b"] == "relu"
    same_numbers((g, w), (g2, w2))
