"""netc.runtime's per-call cost (issue 14, item 4): `FeedCheck`, the input check an ONNX session
makes once, must accept and refuse exactly what the generic `check_feed` does, with the same
words; and the ONNX session must still check its inputs. The cost itself is measured by
bench/runtime_overhead.py, never here."""

from __future__ import annotations

import numpy as np
import pytest

from netc.runtime.api import Signature, check_feed
from netc.runtime.feed import FeedCheck
from netc.source import NetcError

IMAGE = (Signature("x", "f32", ("N", 28, 28)),)
PAIR = (
    Signature("tokens", "i32", ("N", "T")),
    Signature("mask", "bool", ("N", "T")),
    Signature("scale", "f32", (1,)),
)
HALF = (Signature("h", "bf16", ("N", 4)), Signature("d", "f64", ("K*2",)))
SCALAR = (Signature("s", "f32", ()),)


def f32(*shape: int) -> np.ndarray:
    return np.ones(shape, np.float32)


CASES = [
    (IMAGE, {"x": f32(1, 28, 28)}),
    (IMAGE, {"x": f32(5, 28, 28)}),
    (IMAGE, {"x": f32(1, 28, 27)}),  # a fixed dim off
    (IMAGE, {"x": f32(28, 28)}),  # a rank off
    (IMAGE, {"x": np.ones((1, 28, 28), np.float64)}),  # a dtype off
    (IMAGE, {"x": np.ones((1, 28, 28), ">f4")}),  # big-endian float32: a float32
    (IMAGE, {"x": f32(1, 28, 28).tolist()}),  # a list: made an array
    (IMAGE, {"y": f32(1, 28, 28)}),  # missing, and unexpected
    (IMAGE, {"x": f32(1, 28, 28), "y": f32(1)}),  # unexpected
    (IMAGE, {}),
    (PAIR, {"tokens": np.ones((2, 7), np.int32), "mask": np.ones((2, 7), bool), "scale": f32(1)}),
    (PAIR, {"tokens": np.ones((2, 7), np.int32), "mask": np.ones((2, 6), bool), "scale": f32(1)}),
    (PAIR, {"tokens": np.ones((3, 7), np.int32), "mask": np.ones((2, 7), bool), "scale": f32(1)}),
    (PAIR, {"tokens": np.ones((2, 7), np.int64), "mask": np.ones((2, 7), bool), "scale": f32(1)}),
    (PAIR, {"tokens": np.ones((2, 7), np.int32), "mask": np.ones((2, 7), bool), "scale": f32(2)}),
    (HALF, {"h": f32(3, 4), "d": np.ones(6)}),  # bf16 arrives as float32; K*2 is not bound
    (HALF, {"h": np.ones((3, 4), np.float16), "d": np.ones(6)}),
    (SCALAR, {"s": np.float32(2.0)}),  # a numpy scalar, not an ndarray
    (SCALAR, {"s": np.array(2.0, np.float32)}),
    (SCALAR, {"s": f32(1)}),
]


def outcome(fn, inputs):
    """What a check gives: ("ok", {name: (dtype, shape, values)}) or ("error", its text)."""
    try:
        out = fn(inputs)
    except NetcError as e:
        return "error", [(d.message, tuple(d.notes)) for d in e.diagnostics]
    return "ok", {k: (v.dtype.str, v.shape, v.tolist()) for k, v in out.items()}


@pytest.mark.parametrize("case", range(len(CASES)))
def test_the_made_check_decides_as_the_generic_one(case):
    signature, inputs = CASES[case]
    made = FeedCheck("m", signature)
    assert outcome(made, inputs) == outcome(lambda f: check_feed("m", signature, f), inputs)


def test_the_common_case_hands_back_the_callers_arrays():
    x = f32(2, 28, 28)
    assert FeedCheck("m", IMAGE)({"x": x})["x"] is x  # no copy on the fast path


def test_the_onnx_session_still_checks_and_names_what_is_wrong():
    import netc
    from netc.runtime import load

    session = load(netc.compile("model m(x: f32[N, 3]) -> (y: f32[N, 2]) { y = x |> dense(2) }"))
    for _ in range(2):  # the first call makes the check, the second uses it
        assert session.run({"x": f32(4, 3)})["y"].shape == (4, 2)
    with pytest.raises(NetcError) as e:
        session.run({"x": f32(4, 5)})
    assert e.value.diagnostics[0].message == "the inputs do not fit model `m`"
    assert e.value.diagnostics[0].notes == (
        "input `x` has shape [4, 5], the model needs f32[N, 3] (axis 1 must be 3)",
    )
