"""Elaboration: names, blocks, loops, conditionals, compile-time values, imports, warnings."""

from __future__ import annotations

import netc
from netc.ir import TensorType

MLP = """
block layer(x, units: int, act: str = "relu") {
    y = x |> dense(units)
    return if act == "relu" { relu(y) } else { y |> tanh }
}

model mlp(x: f32[N, 16]) -> (y: f32[N, 4]) {
    h = x
    for units in [32, 32] {
        h = h |> layer(units)
    }
    y = h |> layer(4, act="tanh", name="head")
}
"""


def test_weight_names_follow_the_block_path(compile_net):
    m = compile_net(MLP)
    assert list(m.weights) == [
        "layer_0.dense.kernel",
        "layer_0.dense.bias",
        "layer_1.dense.kernel",
        "layer_1.dense.bias",
        "head.dense.kernel",
        "head.dense.bias",
    ]
    assert m.weights["layer_0.dense.kernel"].shape == (16, 32)
    assert m.weights["head.dense.kernel"].init == "glorot_uniform"


def test_compile_time_if_chooses_one_branch(compile_net):
    m = compile_net(MLP)
    ops = [n.op for n in m.graph.nodes if n.op not in ("param", "input")]
    assert ops == ["dense", "relu", "dense", "relu", "dense", "tanh"]


def test_nodes_keep_their_span_and_call_chain(compile_net):
    m = compile_net(MLP)
    node = m.graph["head.tanh"]
    assert (node.span.line, node.span.col) == (4, 53)
    assert [(c.block, c.span.line, c.span.col) for c in node.calls] == [("layer", 12, 14)]


def test_ops_are_numbered_like_keras_layers(compile_net):
    m = compile_net("""
        model m(x: f32[N, 8]) -> (y: f32[N, 2]) {
            y = x |> dense(8) |> dense(4) |> dense(2)
        }""")
    assert [n.name for n in m.graph.nodes if n.op == "dense"] == ["dense", "dense_1", "dense_2"]


def test_symbolic_dims_flow_through(compile_net):
    m = compile_net("""
        model m(a: f32[N, T, 8], b: f32[N, T, 8]) -> (y: f32[N, T, 3]) {
            y = (a + b) * 0.5 |> dense(3)
        }""")
    out = m.graph[m.graph.outputs[0][1]]
    assert out.type == TensorType("f32", ("N", "T", 3))


def test_scalar_constants_take_the_tensors_dtype(compile_net):
    m = compile_net("""
        model m(x: f16[N, 4]) -> (y: f16[N, 4]) { y = 2 * x - 1 }""")
    consts = [n for n in m.graph.nodes if n.op == "constant"]
    assert [str(c.type) for c in consts] == ["f16[]", "f16[]"]
    assert [float(c.attrs["value"].array) for c in consts] == [2.0, 1.0]


def test_compile_time_arithmetic_and_builtins(compile_net):
    m = compile_net("""
        const BASE = 8
        block widen(x, factor: int) { return x |> dense(channels(x) * factor) }
        model m(x: f32[N, 4]) -> (y: f32[N, 48]) {
            sizes = range(3)
            y = x |> widen(BASE // 4) |> widen(max(sizes) + 1 + len(sizes) * 2 - 3)
        }""")
    assert [n.attrs["units"] for n in m.graph.nodes if n.op == "dense"] == [8, 48]


def test_loops_unpack_tuples(compile_net):
    m = compile_net("""
        model m(x: f32[N, 4]) -> (y: f32[N, 3]) {
            y = x
            for i, units in enumerate([5, 3]) {
                y = y |> dense(units, bias=i == 0)
            }
        }""")
    assert [n.attrs["bias"] for n in m.graph.nodes if n.op == "dense"] == [True, False]


def test_multiple_outputs_and_return_values(compile_net):
    m = compile_net("""
        block two(x) { return relu(x), sigmoid(x) }
        model m(x: f32[N, 4]) -> (a: f32[N, 4], b: f32[N, 4]) {
            a, b = two(x)
        }""")
    assert [o for o, _ in m.graph.outputs] == ["a", "b"]
    assert [m.graph[v].op for _, v in m.graph.outputs] == ["relu", "sigmoid"]


def test_tensor_type_parameters_bind_symbols(errors_of):
    errors = errors_of("""
        block pair(a: f32[N, C], b: f32[N, C]) { return a + b }
        model m(x: f32[N, 4], y: f32[N, 5]) -> (z: f32[N, 4]) {
            z = pair(x, y)
        }""")
    assert errors == [(4, 17, "error", "block `pair`: `b` must be f32[N, C], got f32[N, 5]")]


def test_imports_bring_blocks_and_constants(tmp_path):
    (tmp_path / "layers.net").write_text("const WIDTH = 6\nblock act(x) { return x |> relu }\n")
    (tmp_path / "main.net").write_text(
        'import "layers.net"\nmodel m(x: f32[N, 3]) -> (y: f32[N, 6]) '
        "{ y = x |> dense(WIDTH) |> act }\n"
    )
    m = netc.compile(tmp_path / "main.net")
    assert [n.name for n in m.graph.nodes if n.op == "relu"] == ["act_0.relu"]


def test_import_cycles_are_reported(tmp_path):
    (tmp_path / "a.net").write_text('import "b.net"\nblock fa(x) { return x }\n')
    (tmp_path / "b.net").write_text('import "a.net"\nblock fb(x) { return x }\n')
    (tmp_path / "main.net").write_text(
        'import "a.net"\nmodel m(x: f32[N, 3]) -> (y: f32[N, 3]) { y = fa(x) }\n'
    )
    try:
        netc.compile(tmp_path / "main.net")
    except netc.NetcError as e:
        assert "import cycle" in e.diagnostics[0].message
    else:
        raise AssertionError("an import cycle compiled")


def test_independent_errors_are_all_reported_and_do_not_cascade(errors_of):
    errors = errors_of("""
        model m(x: f32[N, 4]) -> (y: f32[N, 2]) {
            a = x |> dense(3) |> conv9
            b = a |> relu
            c = x |> dense(units="two")
            y = x |> dense(2)
        }""")
    assert errors == [
        (3, 26, "error", "unknown op or block `conv9`"),
        (5, 26, "error", 'dense: `units` must be an int, got the string "two"'),
    ]


def test_warnings_for_unused_values_and_shadowing(compile_net):
    m = compile_net("""
        model m(x: f32[N, 4]) -> (y: f32[N, 2]) {
            spare = x |> relu
            dense = 3
            y = x |> dense(2)
        }""")
    assert [(w.span.line, w.message) for w in m.warnings] == [
        (3, "value `spare` is never used"),
        (4, "`dense` shadows the built-in op `dense`"),
        (4, "value `dense` is never used"),
    ]


def test_indexing_a_tensor_makes_slice_and_squeeze(compile_net):
    m = compile_net("""
        model m(x: f32[N, 5, 6]) -> (y: f32[N, 2]) {
            y = x[:, 1:5:2, -1]
        }""")
    ops = [(n.op, dict(n.attrs)) for n in m.graph.nodes if n.op not in ("input",)]
    assert ops == [
        ("slice", {"axes": (1, 2), "starts": (1, -1), "ends": (5, None), "steps": (2, 1)}),
        ("squeeze", {"axes": (2,)}),
    ]


def test_train_section_is_checked(compile_net):
    m = compile_net("""
        model m(x: f32[N, 4]) -> (y: f32[N, 2]) { y = x |> dense(2) }
        train {
            loss = sparse_categorical_crossentropy(from_logits=true)
            optimizer = adam(1e-3)
            metrics = [accuracy]
            epochs = 3
        }""")
    t = m.train
    assert (t.loss.name, dict(t.loss.kwargs)) == (
        "sparse_categorical_crossentropy",
        {"from_logits": True},
    )
    assert (t.optimizer.name, dict(t.optimizer.kwargs)) == ("adam", {"learning_rate": 1e-3})
    assert (t.metrics, t.epochs, t.batch_size) == (("accuracy",), 3, 32)


def test_choosing_among_several_models(compile_net, errors_of):
    text = """
        model a(x: f32[N, 4]) -> (y: f32[N, 4]) { y = relu(x) }
        model b(x: f32[N, 4]) -> (y: f32[N, 4]) { y = tanh(x) }"""
    assert compile_net(text, model="b").graph.name == "b"
    assert errors_of(text)[0][3].endswith("defines 2 models (a, b); choose one")


def test_abs_and_sqrt_are_builtins_on_numbers_and_ops_on_tensors(compile_net):
    m = compile_net("""
        model m(x: f32[N, 4]) -> (y: f32[N, 6]) {
            y = x |> abs |> dense(int(sqrt(16)) + abs(-2))
        }""")
    assert [n.op for n in m.graph.nodes if n.op not in ("input", "param")] == ["abs", "dense"]
    assert m.graph["dense"].attrs["units"] == 6


def test_list_repetition_and_untyped_parameters_with_defaults(compile_net):
    m = compile_net("""
        block widen(x, k = 2) { return x |> dense(channels(x) * k) }
        model m(x: f32[N, 4]) -> (y: f32[N, 16]) {
            y = x
            for k in [2] * 2 {
                y = y |> widen(k)
            }
        }""")
    assert [n.attrs["units"] for n in m.graph.nodes if n.op == "dense"] == [8, 16]


def test_explicit_block_names_take_no_number(compile_net):
    m = compile_net("""
        block r(x) { return relu(x) }
        model m(x: f32[N, 4]) -> (y: f32[N, 4]) { y = x |> r(name="first") |> r }""")
    assert [n.name for n in m.graph.nodes if n.op == "relu"] == ["first.relu", "r_0.relu"]


def test_output_symbols_must_be_the_models_own(errors_of):
    errors = errors_of("""
        model m(x: f32[N, 4], s: f32[4, 4]) -> (y: f32[N, 4], z: f32[N, 4]) {
            y = x
            z = s
        }""")
    assert errors == [(4, 5, "error", "output `z` is declared f32[N, 4], got f32[4, 4]")]
