"""Elaboration: names, blocks, loops, conditionals, compile-time values, imports, warnings."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_a_numbered_block_call_skips_a_number_an_explicit_name_took(compile_net):
    # the fuzzer's valid network refused: `name="stack_1"` on the second call, then the third,
    # unnamed, took the number 1 too ("the name ... is already used by another layer")
    m = compile_net("""
        block stack(x) { return x |> dense(4, name="layer") }
        model m(x: f32[N, 4]) -> (y: tensor) {
            y = x |> stack |> stack(name="stack_1") |> stack |> stack
        }""")
    assert [n.name for n in m.graph.nodes if n.op == "dense"] == [
        "stack_0.layer",
        "stack_1.layer",
        "stack_2.layer",
        "stack_3.layer",
    ]


def test_output_symbols_must_be_the_models_own(errors_of):
    errors = errors_of("""
        model m(x: f32[N, 4], s: f32[4, 4]) -> (y: f32[N, 4], z: f32[N, 4]) {
            y = x
            z = s
        }""")
    assert errors == [(4, 5, "error", "output `z` is declared f32[N, 4], got f32[4, 4]")]


# --- weights of a block: weight(...) ----------------------------------------------------------

LAYER_SCALE = """
block layer_scale(x, init: float = 1e-6) {
    gamma = weight([channels(x)], init=constant(init))
    return x * gamma
}
"""


def test_a_weight_is_named_after_its_value_under_the_blocks_scope(compile_net):
    m = compile_net(
        LAYER_SCALE
        + """
        model m(x: f32[N, 4, 8]) -> (y: f32[N, 4, 8]) {
            y = x |> layer_scale |> layer_scale(0.1, name="stage_1")
        }"""
    )
    gamma = m.graph["layer_scale_0.gamma"]
    assert (gamma.op, str(gamma.type), dict(gamma.attrs)) == (
        "param",
        "f32[8]",
        {"init": "constant(value=1e-06)", "trainable": True},
    )
    assert m.graph["stage_1.gamma"].attrs["init"] == "constant(value=0.1)"
    assert m.graph["stage_1.mul"].inputs == ("layer_scale_0.mul", "stage_1.gamma")
    assert list(m.weights) == ["layer_scale_0.gamma", "stage_1.gamma"]
    assert (m.total_params, m.trainable_params) == (16, 16)
    assert [(r.name, r.params) for r in m.layers] == [("layer_scale_0.mul", 8), ("stage_1.mul", 8)]


def test_weights_are_numbered_like_layers_and_take_explicit_names(compile_net):
    m = compile_net("""
        model m(x: f32[N, 3]) -> (y: f32[N, 3]) {
            y = x
            for i in range(2) {
                g = weight([3], "ones")
                y = y * g
            }
            y = y + weight([3]) + weight([1, 3], dtype="f32", name="bias") * weight([3])
        }""")
    params = {n.name: n.attrs["init"] for n in m.graph.nodes if n.op == "param"}
    assert params == {
        "g": "ones",
        "g_1": "ones",
        "weight": "glorot_uniform",  # Keras' add_weight default
        "bias": "glorot_uniform",
        "weight_1": "glorot_uniform",
    }
    assert m.graph["bias"].type == TensorType("f32", (1, 3))


def test_weight_settings_dtype_and_trainable(compile_net):
    m = compile_net("""
        model m(x: f16[N, 3]) -> (y: f16[N, 3]) {
            mean = weight([3], init="zeros", dtype=dtype(x), trainable=false)
            scale = weight([3], init=variance_scaling(2.0, "fan_out"), dtype="f16")
            y = (x - mean) * scale
        }""")
    assert m.weights["mean"].dtype == "f16" and m.weights["mean"].trainable is False
    assert m.weights["scale"].init == 'variance_scaling(scale=2.0, mode="fan_out")'
    assert (m.total_params, m.trainable_params) == (6, 3)


def test_weights_of_a_block_are_written_and_loaded_by_name(compile_net, tmp_path):
    from netc.runtime import reference
    from netc.weights import check_weights, initial_weights, load_weights, save_weights

    m = compile_net(
        LAYER_SCALE
        + """
        model m(x: f32[N, 4]) -> (y: f32[N, 4]) { y = x |> layer_scale(name="scale") }"""
    )
    weights = initial_weights(m.graph, seed=3)
    np.testing.assert_array_equal(weights["scale.gamma"], np.full(4, 1e-6, np.float32))
    save_weights({"scale.gamma": np.arange(4.0)}, tmp_path / "w.npz")
    loaded = check_weights(m.graph, load_weights(tmp_path / "w.npz"))
    x = np.ones((2, 4), np.float32)
    y = reference.run(m.graph, {"x": x}, loaded)["y"]
    np.testing.assert_array_equal(y, np.tile(np.arange(4.0, dtype=np.float32), (2, 1)))


def test_a_class_token_is_a_weight_broadcast_and_concatenated(compile_net):
    m = compile_net("""
        model m(x: f32[N, 4, 6]) -> (y: f32[N, 5, 6]) {
            cls = weight([1, 1, 6], init="zeros")
            y = concat(broadcast_like(cls, x[:, :1]), x, axis=1)
        }""")
    assert str(m.graph["broadcast_like"].type) == "f32[N, 1, 6]"
    assert m.graph["broadcast_like"].inputs == ("cls", "slice")


def test_weight_mistakes_are_located(errors_of):
    errors = errors_of("""
        model m(x: f32[N, 3]) -> (y: f32[N, 3]) {
            a = weight()
            b = weight(shape(x))
            c = weight([3, 0])
            d = weight([3], init="he_normall")
            e = weight([3], init=3)
            f = weight([3], dtype="i32")
            g = weight([3], trainable=1)
            h = weight([3], initializer="zeros")
            i = weight([3], init="orthogonal")
            j = weight([3], "ones", "f32")
            k = weight([3], init=random_normal(std=1.0))
            l = weight("3")
            y = x
        }""")
    assert errors == [
        (3, 9, "error", "weight needs a shape, e.g. `weight([64])`"),
        (4, 16, "error", 'weight: the shape must be known sizes, got the symbolic dim "N"'),
        (5, 16, "error", "weight: every dim must be >= 1, got (3, 0)"),
        (6, 26, "error", 'weight: `init`: unknown initializer "he_normall"'),
        (7, 26, "error", "weight: `init` must be an initializer, got the int 3"),
        (
            8,
            27,
            "error",
            'weight: `dtype` must be a float dtype ("f32", "f16", "bf16", "f64"), got the '
            'string "i32"',
        ),
        (9, 31, "error", "weight: `trainable` must be a bool, got the int 1"),
        (10, 21, "error", "weight has no argument `initializer`"),
        (
            11,
            9,
            "error",
            "weight: the orthogonal initializer needs a weight of rank >= 2, got shape [3]",
        ),
        (12, 29, "error", "weight takes at most 2 arguments by position (shape, init), got 3"),
        (
            13,
            40,
            "error",
            "initializer `random_normal` has no argument `std` (it takes `mean`, `stddev`)",
        ),
        (14, 16, "error", 'weight: the shape must be a list of ints, got the string "3"'),
    ]


def test_weight_mistakes_give_hints(compile_net):
    with pytest.raises(netc.NetcError) as info:
        compile_net("""
            model m(x: f32[N, 3]) -> (y: f32[N, 3]) {
                d = weight([3], init="he_normall")
                h = weight([3], initializer="zeros")
                b = weight(shape(x))
                y = x * d * h * b
            }""")
    assert [d.hint for d in info.value.diagnostics] == [
        "did you mean `he_normal`?",
        "did you mean `init`?",
        "a weight is the same for every batch: give it size 1 there and let broadcasting "
        "(or `concat` after a `+`) do the rest",
    ]


def test_a_repeated_explicit_weight_name_is_an_error(errors_of):
    errors = errors_of("""
        model m(x: f32[N, 3]) -> (y: f32[N, 3]) {
            y = x * weight([3], name="g") * weight([3], name="g")
        }""")
    assert errors == [(3, 37, "error", 'the name "g" is already used by another layer')]


# --- per-channel (and broadcasting) constants from lists ---------------------------------------


def test_a_list_beside_a_tensor_is_a_constant_in_the_tensors_dtype(compile_net):
    m = compile_net("""
        const MEAN = [123.675, 116.28, 103.53]
        model m(x: f16[N, 4, 4, 3], ids: i32[N, 2]) -> (y: f16[N, 4, 4, 3], z: i32[N, 2]) {
            y = (x - MEAN) / [58.4, 57.1, 57.4] * [[1.0], [2.0], [3.0], [4.0]]
            z = [1, 2] * ids
        }""")
    consts = [n for n in m.graph.nodes if n.op == "constant"]
    assert [str(c.type) for c in consts] == ["f16[3]", "f16[3]", "f16[4, 1]", "i32[2]"]
    assert consts[0].attrs["value"].array.tolist() == [123.6875, 116.25, 103.5]  # f16
    assert consts[3].attrs["value"].array.dtype == np.int32
    assert (consts[0].span.line, consts[0].span.col) == (4, 14)  # where MEAN is written
    assert m.graph["mul_1"].inputs == ("const_3", "ids")


def test_maximum_and_minimum_take_numbers_and_lists(compile_net):
    m = compile_net("""
        model m(x: f32[N, 3]) -> (y: f32[N, 3]) {
            y = minimum(maximum(x, 0.0), [6, 5, 4]) |> add(1)
        }""")
    ops = [(n.op, str(n.type)) for n in m.graph.nodes if n.op not in ("input",)]
    assert ops == [
        ("constant", "f32[]"),
        ("maximum", "f32[N, 3]"),
        ("constant", "f32[3]"),
        ("minimum", "f32[N, 3]"),
        ("constant", "f32[]"),
        ("add", "f32[N, 3]"),
    ]


def test_list_constant_mistakes_say_both_shapes(errors_of):
    errors = errors_of("""
        model m(x: f32[N, 6, 5, 3], ids: i32[N, 4]) -> (y: f32[N, 6, 5, 3]) {
            a = x * [1.0, 2.0]
            b = x + [[1.0, 2.0], [3.0]]
            c = x - []
            d = x / [1.0, "a"]
            e = ids * [0.5, 1, 1, 1]
            f = x + [[1.0, 2.0, 3.0]] * 2
            g = maximum(x, [true])
            y = x
        }""")
    assert errors == [
        (
            3,
            13,
            "error",
            "cannot combine a list of shape [2] with a tensor f32[N, 6, 5, 3]: dim 2 against 3",
        ),
        (
            4,
            13,
            "error",
            "cannot combine a ragged list (items of shapes [2], [1]) with a tensor f32[N, 6, 5, 3]",
        ),
        (5, 13, "error", "cannot combine an empty list with a tensor f32[N, 6, 5, 3]"),
        (
            6,
            13,
            "error",
            'cannot combine a list holding the string "a" with a tensor f32[N, 6, 5, 3]',
        ),
        (
            7,
            15,
            "error",
            "cannot combine a list of shape [4] with a tensor i32[N, 4]: it would be truncated",
        ),
        (
            8,
            13,
            "error",
            "cannot combine a list of shape [2, 3] with a tensor f32[N, 6, 5, 3]: dim 2 against 5",
        ),
        (
            9,
            20,
            "error",
            "cannot combine a list holding the bool true with a tensor f32[N, 6, 5, 3]",
        ),
    ]


def test_a_list_of_the_wrong_length_hints_at_the_channel_count(compile_net):
    with pytest.raises(netc.NetcError) as info:
        compile_net("model m(x: f32[N, 8, 3]) -> (y: f32[N, 8, 3]) { y = x - [1.0, 2.0] }")
    assert info.value.diagnostics[0].hint == (
        "a list lines up with the tensor's last axis, as in numpy: give it 3 values"
    )


# --- layer attributes: activation=, initializers ------------------------------------------------


def test_activation_adds_the_activation_inside_the_layer(compile_net):
    m = compile_net("""
        model m(x: f32[N, 8, 8, 3]) -> (y: f32[N, 4]) {
            h = x |> conv2d(4, 3, activation="leaky_relu")
                  |> separable_conv2d(4, 3, activation="hard_swish", name="sep")
                  |> depthwise_conv2d(3, padding="same", activation="linear")
            y = h |> global_avgpool |> dense(4, activation="softmax")
        }""")
    ops = [
        (n.name, n.op, dict(n.attrs))
        for n in m.graph.nodes
        if n.op in ("leaky_relu", "hard_swish", "softmax")
    ]
    assert ops == [
        ("conv2d.leaky_relu", "leaky_relu", {"alpha": 0.2}),
        ("sep.hard_swish", "hard_swish", {}),
        ("dense.softmax", "softmax", {"axis": -1}),
    ]
    assert m.graph["sep.hard_swish"].inputs == ("sep",)
    assert "activation" not in m.graph["conv2d"].attrs  # a layer attribute, not the op's
    assert "depthwise_conv2d.linear" not in m.graph.by_name  # "linear" adds nothing
    assert [n.name for n in m.graph.nodes if n.op == "param"][:2] == [
        "conv2d.kernel",
        "conv2d.bias",
    ]


def test_initializer_attributes_set_each_weights_init(compile_net):
    m = compile_net("""
        const INIT = truncated_normal(stddev=0.02)
        model m(x: f32[N, 5, 8], ids: i32[N, 5]) -> (y: f32[N, 5, 4], z: f32[N, 3]) {
            h = x |> dense(8, kernel_init="he_normal", bias_init=constant(0.5))
                  |> batchnorm(gamma_init="zeros", moving_variance_init=ones())
                  |> layernorm(beta_init=INIT)
            e = ids |> embedding(10, 8, embeddings_init="uniform")
            y = (h + e) |> separable_conv1d(4, 3, padding="same", depthwise_init="lecun_normal",
                                            pointwise_init=orthogonal(gain=2.0))
            z = h |> lstm(3, kernel_init="zeros", recurrent_init="glorot_normal",
                          bias_init=random_uniform(-1, 1))
        }""")
    inits = {name: w.init for name, w in m.weights.items()}
    assert inits == {
        "dense.kernel": "he_normal",
        "dense.bias": "constant(value=0.5)",
        "batchnorm.gamma": "zeros",
        "batchnorm.beta": "zeros",
        "batchnorm.moving_mean": "zeros",
        "batchnorm.moving_variance": "ones",
        "layernorm.gamma": "ones",
        "layernorm.beta": "truncated_normal(stddev=0.02)",
        "embedding.embeddings": "uniform",
        "separable_conv1d.depthwise_kernel": "lecun_normal",
        "separable_conv1d.pointwise_kernel": "orthogonal(gain=2.0)",
        "separable_conv1d.bias": "zeros",
        "lstm.kernel": "zeros",
        "lstm.recurrent_kernel": "glorot_normal",
        "lstm.bias": 'lstm_bias(rest="random_uniform(minval=-1.0, maxval=1.0)")',
    }
    assert "kernel_init" not in m.graph["dense"].attrs


def test_keras_argument_names_get_netcs_in_a_hint(compile_net):
    with pytest.raises(netc.NetcError) as info:
        compile_net("""
            model m(x: f32[N, 8, 8, 3]) -> (y: f32[N, 6, 6, 4]) {
                y = x |> conv2d(4, kernel_size=3, kernel_initializer="he_normal")
                      |> depthwise_conv2d(3, depthwise_initializer="zeros", use_bias=false)
            }""")
    assert [(d.message, d.hint) for d in info.value.diagnostics] == [  # all of one call
        ("conv2d has no attribute `kernel_size`", "did you mean `kernel`?"),
        ("conv2d has no attribute `kernel_initializer`", "did you mean `kernel_init`?"),
    ]
    with pytest.raises(netc.NetcError) as info:
        compile_net("""
            model m(x: f32[N, 8]) -> (y: f32[N, 4]) {
                y = x |> dense(4, kernel_initializer="he_normal")
            }""")
    (d,) = info.value.diagnostics
    assert (d.span.line, d.span.col, d.message, d.hint) == (
        3,
        23,
        "dense has no attribute `kernel_initializer`",
        "did you mean `kernel_init`?",
    )


def test_layer_attribute_mistakes_are_located(errors_of):
    errors = errors_of("""
        model m(x: f32[N, 8]) -> (y: f32[N, 4]) {
            a = x |> dense(4, activation="rleu")
            b = x |> dense(4, kernel_init="he_normall")
            c = x |> dense(4, bias_init=variance_scaling(mode="fan_up"))
            d = x |> dense(4, bias_init="orthogonal")
            e = x |> dense(4, true, "relu")
            f = x |> dense(4, activation=1)
            g = x |> relu(activation="relu")
            h = x |> dense(4, kernel_init=he_normal(1))
            y = x |> dense(4)
        }""")
    assert errors == [
        (
            3,
            34,
            "error",
            'dense: `activation` must be an activation name or none, got the string "rleu"',
        ),
        (4, 35, "error", 'dense: `kernel_init`: unknown initializer "he_normall"'),
        (
            5,
            55,
            "error",
            'initializer `variance_scaling`: `mode` must be "fan_in" or "fan_out" or '
            '"fan_avg", got "fan_up"',
        ),
        (
            6,
            14,
            "error",
            "dense: weight `bias`: the orthogonal initializer needs a weight of rank >= 2, "
            "got shape [4]",
        ),
        (7, 29, "error", "dense takes at most 2 attributes after its input, got 3"),
        (8, 34, "error", "dense: `activation` must be an activation name or none, got the int 1"),
        (9, 19, "error", "relu has no attribute `activation`"),
        (10, 35, "error", "initializer `he_normal` takes no arguments, got 1"),
    ]


# --- strings of compile-time values: f-strings and str() ----------------------------------------


def test_f_strings_and_str_make_keras_names_in_loops(compile_net):
    m = compile_net("""
        block unit(x, stage: int, index: int) {
            prefix = f"conv{stage}_block{index}"
            return x |> dense(4, name=f"{prefix}_1_dense") |> relu(name=prefix + "_out")
        }
        model m(x: f32[N, 4]) -> (y: f32[N, 4]) {
            y = x
            for stage, blocks in zip([2, 3], [2, 1]) {
                for i in range(blocks) {
                    y = y |> unit(stage, i + 1, name="s" + str(stage) + f"b{i + 1}")
                }
            }
        }""")
    assert [n.name for n in m.graph.nodes if n.op == "relu"] == [
        "s2b1.conv2_block1_out",
        "s2b2.conv2_block2_out",
        "s3b1.conv3_block1_out",
    ]
    assert list(m.weights)[:2] == [
        "s2b1.conv2_block1_1_dense.kernel",
        "s2b1.conv2_block1_1_dense.bias",
    ]


def value_of(expr: str):
    """A compile-time expression's value, as the elaborator computes it."""
    from netc.elaborate import Elaborator, Frame
    from netc.parse import parse
    from netc.source import Reporter

    el = Elaborator(Reporter())
    el.frames.append(Frame("", ()))
    return el.eval(parse(f"const V = {expr}", "t.net").items[0].value, el.globals)


def test_values_in_strings_are_written_as_the_language_writes_them():
    assert {
        expr: value_of(expr)
        for expr in (
            "str(3)",
            "str(-0.5)",
            "str(1e-3)",
            "str(true)",
            'str("a")',
            "str(none)",
            "str([1, (2, 3)])",
            "str(random_normal(stddev=0.02))",
            'f"{1}|{2.5}|{false}|{[1]}|{{}}|{he_normal()}"',
            'f"{str(7)}{len([1, 2, 3])}{3 // 2}"',
            'f""',
        )
    } == {
        "str(3)": "3",
        "str(-0.5)": "-0.5",
        "str(1e-3)": "0.001",
        "str(true)": "true",
        'str("a")': "a",
        "str(none)": "none",
        "str([1, (2, 3)])": "(1, (2, 3))",
        "str(random_normal(stddev=0.02))": "random_normal(stddev=0.02)",
        'f"{1}|{2.5}|{false}|{[1]}|{{}}|{he_normal()}"': "1|2.5|false|(1,)|{}|he_normal",
        'f"{str(7)}{len([1, 2, 3])}{3 // 2}"': "731",
        'f""': "",
    }


def test_string_mistakes_are_located(errors_of):
    errors = errors_of("""
        model m(x: f32[N, 4]) -> (y: f32[N, 4]) {
            a = x |> relu(name=f"act{x}")
            b = str(x)
            c = x |> relu(name=f"r{undefined}")
            d = x |> relu(name=f"r-{1}")
            y = x |> relu(name=f"out{1}") |> relu(name=f"out{0 + 1}")
        }""")
    assert errors == [
        (3, 30, "error", "an f-string takes compile-time values, not a tensor f32[N, 4]"),
        (4, 9, "error", "`str` works on compile-time values, not tensors"),
        (5, 28, "error", "unknown name `undefined`"),
        (
            6,
            24,
            "error",
            '`name` must be a string of letters, digits and `_`, got the string "r-1"',
        ),
        (7, 38, "error", 'the name "out1" is already used by another layer'),
    ]
