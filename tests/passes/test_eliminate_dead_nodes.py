"""eliminate_dead_nodes: drop what no output depends on, with the weights of dropped params."""

from __future__ import annotations

from netc.passes import eliminate_dead_nodes


def test_eliminate_dead_nodes_golden(net, ir, same_numbers):
    g, w = net("""
        model m(x: f32[N, 4], unused: f32[N, 2]) -> (y: f32[N, 4]) {
            d = x |> dense(3)
            y = relu(x)
        }""")
    g2, w2 = eliminate_dead_nodes(g, w)
    # the dead dense goes with its weights; the unread input stays: it is the signature
    assert (
        ir(g2)
        == """\
graph m(x: f32[N, 4], unused: f32[N, 2]) -> (y: f32[N, 4]) {
  relu: f32[N, 4] = relu(x)
  return y=relu
}"""
    )
    assert w2 == {} and sorted(w) == ["dense.bias", "dense.kernel"]
    same_numbers((g, w), (g2, w2))


def test_eliminate_dead_nodes_of_a_live_graph_is_the_same_graph_and_weights(net):
    g, w = net("""
        model m(x: f32[N, 4]) -> (y: f32[N, 3]) {
            y = x |> dense(3) |> relu
        }""")
    g2, w2 = eliminate_dead_nodes(g, w)
    assert g2 is g and w2 is w


def test_eliminate_dead_nodes_drops_dead_constants(net):
    g, w = net("""
        model m(x: f32[N, 4]) -> (y: f32[N, 4]) {
            z = x * 3.0
            y = relu(x)
        }""")
    g2, _ = eliminate_dead_nodes(g, w)
    assert [n.op for n in g2.nodes] == ["input", "relu"]


def test_eliminate_dead_nodes_keeps_a_multi_result_op_while_an_item_is_live(net, same_numbers):
    g, w = net("""
        model m(x: f32[N, 5, 3]) -> (y: f32[N, 4]) {
            seq, h, c = x |> lstm(4, return_sequences=true, return_state=true)
            y = h
        }""")
    g2, w2 = eliminate_dead_nodes(g, w)
    assert g2["lstm"].op == "lstm" and "lstm.1" in g2.by_name
    assert "lstm.0" not in g2.by_name and "lstm.2" not in g2.by_name
    assert sorted(w2) == sorted(w)
    same_numbers((g, w), (g2, w2))
