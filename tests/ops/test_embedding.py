"""embedding and positional_embedding: lookups and sums against loops, Keras' weights."""

from __future__ import annotations

import numpy as np
import pytest

from netc.ir import TensorType
from netc.ops import OPS, ShapeError

EMB, POS = OPS["embedding"], OPS["positional_embedding"]


def f32(*shape):
    return TensorType("f32", tuple(shape))


def i32(*shape):
    return TensorType("i32", tuple(shape))


@pytest.fixture
def rng():
    return np.random.default_rng(5)


def test_embedding_picks_one_table_row_per_id(rng):
    table = rng.normal(size=(10, 4)).astype(np.float32)
    ids = rng.integers(0, 10, size=(2, 3, 5)).astype(np.int32)
    out = EMB.evaluate([ids, table], {"vocab": 10, "dim": 4})
    assert out.shape == (2, 3, 5, 4) and out.dtype == np.float32
    for index in np.ndindex(ids.shape):
        np.testing.assert_array_equal(out[index], table[ids[index]])


def test_embedding_accepts_i64_ids_and_keeps_symbolic_dims():
    assert EMB.infer([i32("N", "T")], {"vocab": 100, "dim": 8})[0] == f32("N", "T", 8)
    t, _ = EMB.infer([TensorType("i64", ("N",))], {"vocab": 100, "dim": 8})
    assert t == f32("N", 8)


def test_embedding_weight_is_an_f32_uniform_table():
    specs = EMB.param_specs([TensorType("i64", ("N", "T"))], {"vocab": 1000, "dim": 64})
    assert {k: (p.shape, p.init, p.dtype) for k, p in specs.items()} == {
        "embeddings": ((1000, 64), "uniform", "f32")
    }


def test_embedding_rejects_float_ids():
    with pytest.raises(ShapeError) as e:
        EMB.infer([f32("N", "T")], {"vocab": 10, "dim": 4})
    assert e.value.message == "embedding needs integer ids (i32 or i64), got f32[N, T]"
    assert e.value.hint == "declare the ids input as i32"


def test_embedding_rejects_scalar_ids_and_empty_sizes():
    cases = [
        ([i32()], {"vocab": 10, "dim": 4}, "embedding needs ids of rank >= 1 [N, ...], got i32[]"),
        ([i32("N")], {"vocab": 0, "dim": 4}, "embedding needs vocab >= 1, got 0"),
        ([i32("N")], {"vocab": 10, "dim": 0}, "embedding needs dim >= 1, got 0"),
    ]
    for types, attrs, message in cases:
        with pytest.raises(ShapeError) as e:
            EMB.infer(types, attrs)
        assert e.value.message == message


def test_embedding_out_of_range_ids_are_an_error(rng):
    table = np.zeros((4, 2), np.float32)
    for bad in (4, -1):
        with pytest.raises(ValueError, match=r"embedding ids must lie in \[0, 4\)"):
            EMB.evaluate([np.array([[0, bad]], np.int32), table], {"vocab": 4, "dim": 2})


def test_positional_embedding_adds_one_row_per_position(rng):
    x = rng.normal(size=(2, 3, 4)).astype(np.float32)
    table = rng.normal(size=(6, 4)).astype(np.float32)
    out = POS.evaluate([x, table], {"max_length": 6})
    assert out.shape == x.shape and out.dtype == np.float32
    for b in range(2):
        for t in range(3):
            np.testing.assert_array_equal(out[b, t], x[b, t] + table[t])


def test_positional_embedding_weight_and_symbolic_length():
    assert POS.infer([f32("N", "T", 16)], {"max_length": 128})[0] == f32("N", "T", 16)
    specs = POS.param_specs([f32("N", "T", 16)], {"max_length": 128})
    assert {k: (p.shape, p.init) for k, p in specs.items()} == {
        "embeddings": ((128, 16), "glorot_uniform")
    }


def test_positional_embedding_rejects_a_sequence_longer_than_max_length():
    with pytest.raises(ShapeError) as e:
        POS.infer([f32("N", 12, 16)], {"max_length": 10})
    assert e.value.message == (
        "positional_embedding: the sequence has 12 steps, more than "
        "max_length=10, in f32[N, 12, 16]"
    )
    assert e.value.hint == "raise max_length to at least 12"
    x, table = np.zeros((1, 12, 2), np.float32), np.zeros((10, 2), np.float32)
    with pytest.raises(ValueError, match="12 steps, more than max_length=10"):
        POS.evaluate([x, table], {"max_length": 10})


def test_positional_embedding_rejects_bad_inputs():
    cases = [
        (f32("N", 16), "positional_embedding needs a rank-3 input [N, T, D], got f32[N, 16]"),
        (i32("N", 4, 8), "positional_embedding needs a floating-point input, got i32[N, 4, 8]"),
        (
            f32("N", 4, "D"),
            "positional_embedding needs a known feature size D to create its "
            "weights, got f32[N, 4, D]",
        ),
    ]
    for t, message in cases:
        with pytest.raises(ShapeError) as e:
            POS.infer([t], {"max_length": 8})
        assert e.value.message == message
