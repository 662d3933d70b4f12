"""Reductions and argmax: numbers against naive loops, numpy axis semantics, canonical axes."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from op_testing import error, infer, t

from netc.ops import OPS

NETC_DTYPE = {"float32": "f32", "float16": "f16", "int32": "i32", "int64": "i64", "bool": "bool"}
REDUCTIONS = ["reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod"]


def run(name, x, **attrs):
    out_type, canon = infer(name, t(*x.shape, dtype=NETC_DTYPE[str(x.dtype)]), **attrs)
    y = OPS[name].evaluate([x], canon)
    assert isinstance(y, np.ndarray)
    assert y.shape == out_type.shape and NETC_DTYPE[str(y.dtype)] == out_type.dtype
    return y


NAIVE = {
    "reduce_sum": sum,
    "reduce_mean": lambda v: sum(v) / len(v),
    "reduce_max": max,
    "reduce_min": min,
    "reduce_prod": math.prod,
}


def naive_reduce(name, x, axes, keepdims):
    """Group the values by their index on the kept axes, then fold each group."""
    groups: dict[tuple, list] = {}
    for idx in itertools.product(*map(range, x.shape)):
        key = tuple(i for a, i in enumerate(idx) if a not in axes)
        groups.setdefault(key, []).append(float(x[idx]))
    kept = [d for a, d in enumerate(x.shape) if a not in axes]
    out = np.empty(kept)
    for key, vals in groups.items():
        out[key] = NAIVE[name](vals)
    if keepdims:
        out = out.reshape([1 if a in axes else d for a, d in enumerate(x.shape)])
    return out


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize(
    "axis,keepdims,axes",
    [
        (None, False, (0, 1, 2)),
        (1, False, (1,)),
        (-1, True, (2,)),
        ((0, 2), False, (0, 2)),
        ((2, -3), True, (0, 2)),
    ],
)
def test_reductions_match_naive_folds(name, axis, keepdims, axes):
    x = np.random.default_rng(1).uniform(0.5, 1.5, (2, 3, 4)).astype(np.float32)
    y = run(name, x, axis=axis, keepdims=keepdims)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, naive_reduce(name, x, axes, keepdims), rtol=1e-5)


@pytest.mark.parametrize("name", REDUCTIONS)
def test_reductions_store_sorted_non_negative_axes_idempotently(name):
    x = t("N", "T", 8)
    out, canon = infer(name, x, axis=(-1, 1))
    assert out == t("N") and canon["axis"] == (1, 2)
    assert infer(name, x, **canon) == (out, canon)
    out, canon = infer(name, x)
    assert out == t() and canon["axis"] == (0, 1, 2)
    assert infer(name, x, **canon) == (out, canon)
    assert infer(name, x, axis=1, keepdims=True)[0] == t("N", 1, 8)


def test_reduce_over_no_axes_is_the_identity():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert run("reduce_sum", x, axis=()).tolist() == x.tolist()


def test_integer_sums_keep_the_input_dtype():
    x = np.arange(12, dtype=np.int32).reshape(3, 4)
    y = run("reduce_sum", x, axis=1)
    assert y.dtype == np.int32 and y.tolist() == [sum(r) for r in x.tolist()]
    assert run("reduce_max", np.array([[True, False]]), axis=1).tolist() == [True]


def test_f16_mean_accumulates_in_f32():
    x = np.full((1, 4096), 1.1, np.float16)
    y = run("reduce_mean", x, axis=1)
    assert y.dtype == np.float16
    assert float(y[0]) == pytest.approx(float(np.float16(1.1)), rel=1e-3)


def test_reduction_errors():
    assert error("reduce_sum", t("N", 4), axis=2) == (
        "reduce_sum: axis 2 is out of range for rank 2"
    )
    assert error("reduce_max", t("N", 4), axis=(1, -1)) == "reduce_max lists axis 1 twice"
    assert error("reduce_mean", t("N", 4, dtype="i32")) == (
        "reduce_mean needs a floating-point input, got i32[N, 4]"
    )
    assert error("reduce_sum", t("N", 4, dtype="bool")) == (
        "reduce_sum needs a numeric input, got bool[N, 4]"
    )


def test_reductions_count_one_flop_per_input_value():
    out, canon = infer("reduce_sum", t("N", 4, 5), axis=1)
    assert OPS["reduce_sum"].count_flops([t("N", 4, 5)], out, canon) == 20


def test_argmax_gives_the_first_largest_index_as_i64():
    x = np.array([[[1, 5, 5], [7, 0, 7]], [[2, 2, 2], [0, 1, 3]]], np.float32)
    y = run("argmax", x)
    assert y.dtype == np.int64
    naive = [[max(range(3), key=lambda k, r=row: (r[k], -k)) for row in plane] for plane in x]
    assert y.tolist() == naive == [[1, 0], [0, 2]]
    assert run("argmax", x, axis=1).tolist() == [[1, 0, 1], [0, 0, 1]]


def test_argmax_type_and_canonical_axis():
    out, canon = infer("argmax", t("N", "T", 10))
    assert out == t("N", "T", dtype="i64") and canon == {"axis": 2}
    assert infer("argmax", t("N", "T", 10), **canon) == (out, canon)
    assert error("argmax", t("N", 10), axis=-3) == "argmax: axis -3 is out of range for rank 2"
