"""`bidirectional(lstm(...))` / `bidirectional(gru(...))`: Keras' Bidirectional wrapper as the
ops it computes. Its meaning is checked against keras.layers.Bidirectional holding the same
weights, for every merge mode, with and without sequences and states; the backends run it
through tests/conformance.py's cases."""

from __future__ import annotations

import numpy as np
import pytest

import netc
from netc import NetcError
from netc.backends import tensorflow
from netc.runtime import reference
from netc.runtime.tolerance import assert_close
from netc.weights import randomized_weights

# (layer call, merge_mode, how many outputs): every merge mode, both layers, states
KERAS_CASES = [
    ("lstm(4, return_sequences=true)", "concat", 1),
    ("lstm(4)", "sum", 1),
    ("gru(3, return_sequences=true)", "mul", 1),
    ("gru(3)", "ave", 1),
    ("lstm(3, return_sequences=true)", None, 2),
    ("gru(2, return_sequences=true, return_state=true)", "concat", 3),
    ("lstm(2, return_state=true)", "ave", 5),
]


def compiled(layer: str, merge_mode: str | None, outputs: int) -> netc.Model:
    mode = "none" if merge_mode is None else f'"{merge_mode}"'
    names = ", ".join(f"y{i}" for i in range(outputs))
    typed = ", ".join(f"y{i}: tensor" for i in range(outputs))
    return netc.compile_text(
        f"model m(x: f32[N, T, 5]) -> ({typed}) {{\n"
        f"    {names} = x |> bidirectional({layer}, merge_mode={mode})\n"
        "}\n"
    )


@pytest.fixture(scope="module")
def keras() -> object:
    tensorflow()
    import keras

    return keras


@pytest.mark.parametrize(("layer", "merge_mode", "outputs"), KERAS_CASES)
def test_bidirectional_computes_what_keras_bidirectional_does(
    keras: object, layer: str, merge_mode: str | None, outputs: int
) -> None:
    model = compiled(layer, merge_mode, outputs)
    weights = randomized_weights(model.graph, seed=3)
    x = np.random.default_rng(0).standard_normal((3, 6, 5)).astype(np.float32)
    got = reference.run(model.graph, {"x": x}, weights, wide=True)

    op, _, rest = layer.partition("(")
    units = int(rest.split(",")[0].rstrip(")"))
    kwargs = {
        "return_sequences": "return_sequences=true" in layer,
        "return_state": "return_state=true" in layer,
    }
    inner = (keras.layers.LSTM if op == "lstm" else keras.layers.GRU)(units, **kwargs)  # type: ignore[attr-defined]
    wrapper = keras.layers.Bidirectional(inner, merge_mode=merge_mode)  # type: ignore[attr-defined]
    wrapper.build((None, 6, 5))
    for direction, sub in (
        ("forward", wrapper.forward_layer),
        ("backward", wrapper.backward_layer),
    ):
        sub.set_weights(
            [
                weights[f"bidirectional.{direction}_{op}.{w}"]
                for w in ("kernel", "recurrent_kernel", "bias")
            ]
        )
    want = wrapper(x)
    want = [want] if outputs == 1 else list(want)
    assert len(want) == len(got) == outputs
    for (name, value), expected in zip(got.items(), want):
        assert_close(value, np.asarray(expected), scope="model", err_msg=name)


def test_the_layers_are_named_as_keras_names_them_and_fold_into_one_row() -> None:
    model = netc.compile_text(
        "model m(x: f32[N, T, 5]) -> (y: f32[N, T, 8], z: f32[N, 4]) {\n"
        "    y = x |> bidirectional(lstm(4, return_sequences=true))\n"
        '    z = y |> bidirectional(gru(2), name="encoder")\n'
        "}\n"
    )
    assert [layer.name for layer in model.layers] == [
        "bidirectional.forward_lstm",
        "bidirectional.backward_lstm",
        "bidirectional.reverse",
        "bidirectional.concat",
        "encoder.forward_gru",
        "encoder.backward_gru",
        "encoder.concat",
    ]
    assert [(r.name, r.op, r.layers) for r in model.rows(depth=1)] == [
        ("bidirectional", "bidirectional", 4),
        ("encoder", "bidirectional", 3),
    ]
    assert model.graph["bidirectional.backward_lstm"].attrs["go_backwards"] is True


@pytest.mark.parametrize(
    ("call", "message", "hint"),
    [
        (
            "bidirectional(dense(4))",
            "bidirectional wraps one recurrent layer call, lstm(...) or gru(...)",
            'write `x |> bidirectional(lstm(64), merge_mode="concat")` (or gru)',
        ),
        (
            'bidirectional(lstm(4), merge_mode="average")',
            'bidirectional: `merge_mode` must be one of "concat", "sum", "mul", "ave" or none, '
            'got the string "average"',
            None,
        ),
        (
            "bidirectional(lstm(4), return_sequences=true)",
            "bidirectional has no attribute `return_sequences`",
            "bidirectional takes merge_mode and name; the layer's own settings go in its call: "
            '`x |> bidirectional(lstm(64), merge_mode="concat")` (or gru)',
        ),
        (
            'bidirectional(lstm(4, name="enc"))',
            "name the bidirectional wrapper, not the layer in it",
            '`bidirectional(lstm(...), name="enc")`',
        ),
    ],
)
def test_a_misused_bidirectional_says_how_to_write_it(call: str, message: str, hint: str) -> None:
    with pytest.raises(NetcError) as info:
        netc.compile_text(f"model m(x: f32[N, T, 5]) -> (y: tensor) {{\n    y = x |> {call}\n}}\n")
    (d,) = info.value.diagnostics
    assert (d.message, d.hint) == (message, hint)


def test_keras_spelling_and_a_typo_point_at_bidirectional() -> None:
    for call, hint in (
        ("Bidirectional(lstm(4))", "netc's op is `bidirectional`"),
        ("bidirectonal(lstm(4))", "did you mean `bidirectional`?"),
    ):
        with pytest.raises(NetcError) as info:
            netc.compile_text(
                f"model m(x: f32[N, T, 5]) -> (y: tensor) {{\n    y = x |> {call}\n}}\n"
            )
        assert info.value.diagnostics[0].hint == hint
