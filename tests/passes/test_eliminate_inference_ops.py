"""eliminate_inference_ops: dropout and ops that leave their input as it is."""

from __future__ import annotations

import pytest

from netc.passes import eliminate_inference_ops, eliminate_noop_ops

NOOPS = """
model m(x: f32[N, 4, 6]) -> (y: f32[N, 24]) {
    y = x |> cast("f32") |> dropout(0.5) |> reshape((4, 6)) |> transpose((0, 1, 2)) |> concat
          |> pad(((0, 0), (0, 0), (0, 0))) |> relu
          |> slice(axes=(1, 2), starts=(0, -6), ends=(none, 99)) |> flatten |> tanh
}
"""


def test_eliminate_inference_ops_golden(net, ir, same_numbers):
    g, w = net(NOOPS)
    g2, w2 = eliminate_inference_ops(g, w)
    assert (
        ir(g2)
        == """\
graph m(x: f32[N, 4, 6]) -> (y: f32[N, 24]) {
  relu: f32[N, 4, 6] = relu(x)
  flatten: f32[N, 24] = flatten(relu)
  tanh: f32[N, 24] = tanh(flatten)
  return y=tanh
}"""
    )
    same_numbers((g, w), (g2, w2))


def test_eliminate_inference_ops_keeps_dropout_when_training(net):
    g, w = net(NOOPS)
    for g2, _ in (eliminate_inference_ops(g, w, keep_training=True), eliminate_noop_ops(g, w)):
        assert [n.op for n in g2.nodes] == ["input", "dropout", "relu", "flatten", "tanh"]


def test_eliminate_inference_ops_removes_a_flatten_of_a_matrix(net):
    g, w = net("""
        model m(x: f32[N, T]) -> (y: f32[N, T]) {
            y = x |> flatten |> slice(axes=(1,), starts=(0,), ends=(none,)) |> relu
        }""")
    g2, _ = eliminate_inference_ops(g, w)
    assert g2["relu"].inputs == ("x",)


@pytest.mark.parametrize(
    "op",
    [
        'cast("f16") |> cast("f32")',
        "reshape((6, 4)) |> reshape((4, 6))",
        "transpose((0, 2, 1)) |> transpose((0, 2, 1))",
        "slice(axes=(2,), starts=(-1,), ends=(none,), steps=(-1,))",
        "pad(((0, 0), (1, 0), (0, 0))) |> slice(axes=(1,), starts=(1,), ends=(none,))",
    ],
    ids=["cast", "reshape", "transpose", "reversed-slice", "pad"],
)
def test_eliminate_inference_ops_keeps_ops_that_change_their_input(net, op):
    g, w = net(f"""
        model m(x: f32[N, 4, 6]) -> (y: f32[N, 4, 6]) {{
            y = x |> {op} |> relu
        }}""")
    assert eliminate_inference_ops(g, w)[0] is g


def test_eliminate_inference_ops_keeps_a_partial_slice(net):
    g, w = net("""
        model m(x: f32[N, 4, 6]) -> (y: f32[N, 4, 5]) {
            y = x[:, :, 0:5]
        }""")
    assert eliminate_inference_ops(g, w)[0] is g


def test_eliminate_inference_ops_moves_an_output_to_the_op_before(net):
    g, w = net("""
        model m(x: f32[N, 4]) -> (y: f32[N, 3]) {
            y = x |> dense(3) |> dropout(0.5)
        }""")
    assert eliminate_inference_ops(g, w)[0].outputs == (("y", "dense"),)


def test_eliminate_inference_ops_never_makes_an_output_of_an_input(net):
    g, w = net("""
        model m(x: f32[N, 4]) -> (y: f32[N, 4]) {
            y = x |> dropout(0.5)
        }""")
    assert eliminate_inference_ops(g, w)[0] is g


def test_eliminate_inference_ops_never_makes_two_outputs_one_value(net):
    g, w = net("""
        model m(x: f32[N, 4]) -> (a: f32[N, 4], b: f32[N, 4]) {
            a = relu(x)
            b = a |> dropout(0.5)
        }""")
    assert eliminate_inference_ops(g, w)[0] is g


def test_eliminate_inference_ops_of_a_clean_graph_is_the_same_graph(net):
    g, w = net("""
        model m(x: f32[N, 4]) -> (y: f32[N, 3]) {
            y = x |> dense(3) |> relu
        }""")
    g2, w2 = eliminate_inference_ops(g, w)
    assert g2 is g and w2 is w
