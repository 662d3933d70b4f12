"""What a new user trips over in the first hour (issue 12): every bad keyword of a call at
once, Keras' spellings and habits pointed at netc's, numpy's default dtypes with the cast to
write, a reverse slice of a symbolic dim, and the CLI's messages, help and flags."""

from __future__ import annotations

import numpy as np
import pytest

import netc
from netc import NetcError
from netc.runtime import reference


def failure(text: str) -> NetcError:
    """The NetcError that compiling `text` must raise."""
    with pytest.raises(NetcError) as info:
        netc.compile_text(text, path="model.net")
    return info.value


def messages(e: NetcError) -> list[tuple[str, str | None]]:
    return [(d.message, d.hint) for d in e.diagnostics]


# --- the language: Keras habits -----------------------------------------------------------------


def test_every_bad_keyword_of_a_call_is_reported_in_one_run() -> None:
    e = failure(
        "model m(x: f32[N, 28, 28, 1]) -> (y: f32[N, 13, 13, 8]) {\n"
        '    y = x |> conv2d(8, kernel_size=3, strides=2, activation="relu", paddin="valid")\n'
        "}\n"
    )
    assert messages(e) == [
        ("conv2d has no attribute `kernel_size`", "did you mean `kernel`?"),
        ("conv2d has no attribute `strides`", "did you mean `stride`?"),
        ("conv2d has no attribute `paddin`", "did you mean `padding`?"),
    ]


def test_keras_spellings_get_netc_names() -> None:
    e = failure(
        "model m(x: f32[N, T, 8]) -> (y: f32[N, T, 8], z: f32[N, T, 16]) {\n"
        "    y = x |> multi_head_attention(x, num_heads=2, key_dim=4)\n"
        "    z = x |> lstm(16, return_sequences=True)\n"
        "}\n"
    )
    assert messages(e) == [
        ("multi_head_attention has no attribute `num_heads`", "did you mean `heads`?"),
        ("unknown name `True`", "write `true`"),
    ]


def test_an_activation_on_an_op_without_one_is_piped_after_it() -> None:
    e = failure(
        'model m(x: f32[N, 8]) -> (y: f32[N, 8]) {\n    y = x |> layernorm(activation="relu")\n}\n'
    )
    assert messages(e) == [
        (
            "layernorm has no attribute `activation`",
            "apply it after the op: `layernorm(...) |> relu`",
        )
    ]


def test_numpy_default_dtypes_get_the_cast_to_write() -> None:
    model = netc.compile_text(
        "model m(ids: i32[N, T], x: f32[N, 3]) -> (y: f32[N, 3]) {\n    y = x * 2.0\n}\n"
    )
    with pytest.raises(NetcError) as info:
        reference.run(model.graph, {"ids": np.zeros((2, 4), np.int64), "x": np.zeros((2, 3))}, {})
    (d,) = info.value.diagnostics
    assert d.notes == (
        "input `ids` has dtype int64, the model needs i32[N, T]",
        "input `x` has dtype float64, the model needs f32[N, 3]",
    )
    assert d.hint == "cast with `ids.astype(np.int32)`, `x.astype(np.float32)`"


# --- a reverse slice keeps a symbolic dim's size -------------------------------------------------


def test_a_reverse_slice_of_a_symbolic_dim_keeps_its_size() -> None:
    model = netc.compile_text(
        "model m(x: f32[N, T, 4]) -> (y: f32[N, T, 4]) {\n    y = x[:, ::-1]\n}\n"
    )
    x = np.arange(2 * 5 * 4, dtype=np.float32).reshape(2, 5, 4)
    (y,) = reference.run(model.graph, {"x": x}, {}).values()
    np.testing.assert_array_equal(y, x[:, ::-1])


def test_other_slices_of_a_symbolic_dim_stay_refused() -> None:
    e = failure("model m(x: f32[N, T, 4]) -> (y: tensor) {\n    y = x[:, ::-2]\n}\n")
    assert e.diagnostics[0].message == (
        "slice cannot take -1::-2 of symbolic dim `T` (axis 1 of f32[N, T, 4]): its size would "
        "depend on `T`"
    )
