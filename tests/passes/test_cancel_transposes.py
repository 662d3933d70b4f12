"""cancel_transposes: transpose chains compose or vanish; reshape chains keep the last."""

from __future__ import annotations

from netc.passes import cancel_transposes, eliminate_dead_nodes

CHAINS = """
model m(x: f32[N, 2, 3, 4]) -> (y: f32[N, 2, 3, 4], z: f32[N, 2, 4, 3], f: f32[N, 24]) {
    t = x |> transpose((0, 2, 3, 1))
    y = t |> transpose((0, 3, 1, 2)) |> relu
    z = t |> transpose((0, 2, 1, 3)) |> transpose((0, 2, 1, 3)) |> transpose((0, 3, 2, 1)) |> tanh
    f = x |> reshape((6, 4)) |> reshape((24,)) |> reshape((4, 6)) |> flatten
}
"""


def test_cancel_transposes_golden(net, ir, same_numbers):
    g, w = net(CHAINS)
    g2, w2 = eliminate_dead_nodes(*cancel_transposes(g, w))
    # y: a transpose and its inverse vanish; z: four transposes compose into one;
    # f: four reshapes and a flatten are the flatten of x
    assert (
        ir(g2)
        == """\
graph m(x: f32[N, 2, 3, 4]) -> (y: f32[N, 2, 3, 4], z: f32[N, 2, 4, 3], f: f32[N, 24]) {
  relu: f32[N, 2, 3, 4] = relu(x)
  transpose_4: f32[N, 2, 4, 3] = transpose(x, perm=(0, 1, 3, 2), \
origin=("t.net:5:41", "t.net:5:14", "t.net:3:14"))
  tanh: f32[N, 2, 4, 3] = tanh(transpose_4)
  flatten: f32[N, 24] = flatten(x, origin=("t.net:6:51", "t.net:6:33", "t.net:6:14"))
  return y=relu, z=tanh, f=flatten
}"""
    )
    same_numbers((g, w), (g2, w2))


def test_cancel_transposes_composes_a_non_inverse_pair(net, same_numbers):
    g, w = net("""
        model m(x: f32[N, 2, 3, 4]) -> (y: f32[N, 3, 4, 2]) {
            y = x |> transpose((0, 2, 1, 3)) |> transpose((0, 1, 3, 2)) |> relu
        }""")
    g2, w2 = cancel_transposes(g, w)
    assert g2["transpose_1"].inputs == ("x",) and g2["transpose_1"].attrs["perm"] == (0, 2, 3, 1)
    same_numbers((g, w), (g2, w2))


def test_cancel_transposes_keeps_an_inner_transpose_that_others_read(net, same_numbers):
    g, w = net("""
        model m(x: f32[N, 2, 3]) -> (y: f32[N, 2, 3], t: f32[N, 3, 2]) {
            t = x |> transpose((0, 2, 1))
            y = t |> transpose((0, 2, 1)) |> relu
        }""")
    g2, w2 = eliminate_dead_nodes(*cancel_transposes(g, w))
    assert g2["relu"].inputs == ("x",) and g2["transpose"].inputs == ("x",)
    same_numbers((g, w), (g2, w2))


def test_cancel_transposes_drops_a_reshape_back_to_the_input_shape(net, same_numbers):
    g, w = net("""
        model m(x: f32[N, 2, 6]) -> (y: f32[N, 2, 6]) {
            y = x |> reshape((3, 4)) |> reshape((2, 6)) |> relu
        }""")
    g2, w2 = cancel_transposes(g, w)
    assert g2["relu"].inputs == ("x",)
    same_numbers((g, w), (g2, w2))


def test_cancel_transposes_keeps_symbolic_reshapes_that_agree(net, same_numbers):
    g, w = net("""
        model m(x: f32[N, T, 4]) -> (y: f32[N, 2]) {
            y = x |> reshape((-1, 4)) |> reshape((-1, 2)) |> reduce_sum(axis=1)
        }""")
    g2, w2 = cancel_transposes(g, w)
    assert g2["reshape_1"].inputs == ("x",)
    same_numbers((g, w), (g2, w2))


# --- refusals ----------------------------------------------------------------------------


def test_cancel_transposes_refuses_a_reshape_whose_symbolic_type_would_change(net):
    # [N, T*2, 2] reshaped gives [N, T*2*2, 1]; reshaping x directly gives [N, T*4, 1]
    g, w = net("""
        model m(x: f32[N, T, 4]) -> (y: f32[N, 1]) {
            y = x |> reshape((-1, 2)) |> reshape((-1, 1)) |> reduce_sum(axis=1)
        }""")
    assert cancel_transposes(g, w)[0] is g


def test_cancel_transposes_refuses_to_make_an_output_of_an_input(net):
    g, w = net("""
        model m(x: f32[N, 2, 3]) -> (y: f32[N, 2, 3]) {
            y = x |> transpose((0, 2, 1)) |> transpose((0, 2, 1))
        }""")
    assert cancel_transposes(g, w)[0] is g


def test_cancel_transposes_ignores_transposes_with_something_between(net):
    g, w = net("""
        model m(x: f32[N, 2, 3]) -> (y: f32[N, 2, 3]) {
            y = x |> transpose((0, 2, 1)) |> relu |> transpose((0, 2, 1))
        }""")
    g2, w2 = cancel_transposes(g, w)
    assert g2 is g and w2 is w
