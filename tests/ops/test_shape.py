"""Shape ops: numbers against naive loops, symbolic dims, canonical attrs and exact errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from op_testing import error, infer, t

from netc.ops import OPS, ShapeError

NETC_DTYPE = {
    "float32": "f32",
    "float16": "f16",
    "float64": "f64",
    "int32": "i32",
    "int64": "i64",
    "bool": "bool",
}


def run(name, *xs, **attrs):
    """Evaluate with the canonical attrs and check the result against the inferred type."""
    out_type, canon = infer(
        name, *(t(*x.shape, dtype=NETC_DTYPE[str(x.dtype)]) for x in xs), **attrs
    )
    y = OPS[name].evaluate(list(xs), canon)
    for arr, ty in zip(
        y if isinstance(y, tuple) else (y,),
        out_type if isinstance(out_type, tuple) else (out_type,),
        strict=True,
    ):
        assert arr.shape == ty.shape and NETC_DTYPE[str(arr.dtype)] == ty.dtype
    return y


def assert_idempotent(name, *types, **attrs):
    out, canon = infer(name, *types, **attrs)
    assert infer(name, *types, **canon) == (out, canon)
    return out, canon


def values(x):
    """All values of x in row-major order, by explicit loops."""
    return [x[idx] for idx in itertools.product(*map(range, x.shape))]


rng = np.random.default_rng(0)


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


# --- flatten, reshape ------------------------------------------------------------------------


def test_flatten_keeps_row_major_channels_last_order():
    x = randn(2, 3, 4, 5)
    y = run("flatten", x)
    assert y.shape == (2, 60)
    for n in range(2):
        k = 0
        for h, w, c in itertools.product(range(3), range(4), range(5)):
            assert y[n, k] == x[n, h, w, c]
            k += 1


def test_flatten_shapes_with_symbolic_dims():
    assert infer("flatten", t("N", 7, 7, 64))[0] == t("N", 3136)
    assert infer("flatten", t("N", "T", 8))[0] == t("N", "T*8")
    assert infer("flatten", t("N"))[0] == t("N", 1)
    assert error("flatten", t()) == "flatten needs an input of rank >= 1 [N, ...], got f32[]"


def test_reshape_excludes_the_batch_axis_and_keeps_value_order():
    x = randn(2, 12)
    y = run("reshape", x, shape=(3, -1))
    assert y.shape == (2, 3, 4)
    assert values(y) == values(x)
    assert infer("reshape", t("N", 784), shape=(28, 28, 1))[0] == t("N", 28, 28, 1)


def test_reshape_fills_a_symbolic_minus_one():
    assert infer("reshape", t("N", "T", 64), shape=(-1, 32))[0] == t("N", "T*2", 32)
    assert infer("reshape", t("N", "T", 8), shape=(-1,))[0] == t("N", "T*8")
    assert infer("reshape", t("N", "T", 8), shape=(-1, 8))[0] == t("N", "T", 8)


def test_reshape_errors():
    assert error("reshape", t("N", 28, 28), shape=(10, 10)) == (
        "reshape cannot turn f32[N, 28, 28] into [N, 10, 10]: 784 values per sample against 100"
    )
    assert error("reshape", t("N", 10), shape=(-1, 3)) == (
        "reshape cannot turn f32[N, 10] into [N, -1, 3]: 10 values per sample is not a multiple "
        "of 3"
    )
    assert error("reshape", t("N", "T", 4), shape=(8,)) == (
        "reshape cannot turn f32[N, T, 4] into [N, 8]: T*4 values per sample against 8"
    )
    assert error("reshape", t("N", 4), shape=(-1, -1)) == (
        "reshape needs target dims >= 1 and at most one -1, got (-1, -1)"
    )
    assert error("reshape", t("N", 4), shape=(0, 4)) == (
        "reshape needs target dims >= 1 and at most one -1, got (0, 4)"
    )


def test_reshape_symbolic_count_mismatch_hints_at_minus_one():
    with pytest.raises(ShapeError) as info:
        infer("reshape", t("N", "T", 4), shape=(8,))
    assert info.value.hint == "write -1 for the dim that takes the symbolic size"


# --- transpose -------------------------------------------------------------------------------


def test_transpose_moves_axes_as_numpy():
    x = randn(2, 3, 4)
    y = run("transpose", x, perm=(0, 2, 1))
    assert y.shape == (2, 4, 3)
    for n, i, j in itertools.product(range(2), range(3), range(4)):
        assert y[n, j, i] == x[n, i, j]


def test_transpose_stores_a_non_negative_perm():
    out, canon = assert_idempotent("transpose", t("N", "T", 8), perm=(-3, -1, 1))
    assert out == t("N", 8, "T") and canon["perm"] == (0, 2, 1)


def test_transpose_errors():
    assert error("transpose", t("N", 4, 5), perm=(0, 1)) == (
        "transpose needs a perm of 3 axes for f32[N, 4, 5], got (0, 1)"
    )
    assert error("transpose", t("N", 4, 5), perm=(0, 1, 1)) == (
        "transpose: perm (0, 1, 1) is not a permutation of the axes 0..2"
    )
    assert error("transpose", t("N", 4, 5), perm=(0, 3, 1)) == (
        "transpose: axis 3 in perm (0, 3, 1) is out of range for rank 3"
    )


# --- concat, split ---------------------------------------------------------------------------


def test_concat_joins_along_the_last_axis():
    a, b, c = randn(2, 3, 1), randn(2, 3, 4), randn(2, 3, 2)
    y = run("concat", a, b, c)
    assert y.shape == (2, 3, 7)
    for n, i in itertools.product(range(2), range(3)):
        assert list(y[n, i]) == list(a[n, i]) + list(b[n, i]) + list(c[n, i])


def test_concat_along_another_axis_and_symbolic_batch():
    a, b = randn(1, 2), randn(3, 2)
    y = run("concat", a, b, axis=0)
    assert [list(r) for r in y] == [list(r) for r in a] + [list(r) for r in b]
    out, canon = assert_idempotent("concat", t("N", "T", 4), t("N", "T", 6))
    assert out == t("N", "T", 10) and canon["axis"] == 2
    assert infer("concat", t("N", "T"), axis=1)[0] == t("N", "T")


def test_concat_errors():
    assert error("concat", t("N", 4, 5), t("N", 3, 6), axis=-1) == (
        "concat along axis 2: dim 1 differs, 4 in f32[N, 4, 5] against 3 in f32[N, 3, 6]"
    )
    assert error("concat", t("N", 4), t("M", 4)) == (
        "concat along axis 1: dim 0 differs, N in f32[N, 4] against M in f32[M, 4]"
    )
    assert error("concat", t("N", 4), t("N", 4, dtype="f16")) == (
        "concat needs inputs of one dtype, got f32[N, 4] and f16[N, 4]"
    )
    assert error("concat", t("N", 4), t("N", 4, 1)) == (
        "concat needs inputs of one rank, got f32[N, 4] and f32[N, 4, 1]"
    )
    assert error("concat", t("N", "T"), t("N", 3), axis=1) == (
        "concat along axis 1 needs known sizes there, got symbol `T` in f32[N, T]"
    )
    assert error("concat", t("N", 4), t("N", 4), axis=2) == (
        "concat: axis 2 is out of range for rank 2"
    )
    assert error("concat") == "concat needs at least one input"


def test_split_into_equal_parts_returns_a_tuple_type():
    out, canon = assert_idempotent("split", t("N", "T", 12), sections=3)
    assert out == (t("N", "T", 4),) * 3
    assert canon == {"sections": (4, 4, 4), "axis": 2}


def test_split_by_sizes():
    x = randn(2, 6, 3)
    parts = run("split", x, sections=(1, 3, 2), axis=1)
    assert isinstance(parts, tuple) and len(parts) == 3
    rows = [0, 1, 4, 6]
    for p, lo, hi in zip(parts, rows, rows[1:], strict=False):
        for n, i, c in itertools.product(range(2), range(hi - lo), range(3)):
            assert p[n, i, c] == x[n, lo + i, c]
    out, canon = assert_idempotent("split", t("N", 6), sections=(1, 5))
    assert out == (t("N", 1), t("N", 5)) and canon == {"sections": (1, 5), "axis": 1}


def test_split_errors():
    assert error("split", t("N", 10), sections=3) == (
        "split: 3 sections do not divide dim 10 of axis 1 in f32[N, 10]"
    )
    assert error("split", t("N", 10), sections=(3, 4)) == (
        "split: sections (3, 4) add up to 7, not to dim 10 of axis 1 in f32[N, 10]"
    )
    assert error("split", t("N", 10), axis=0) == (
        "split needs a known size on axis 0, got symbol `N` in f32[N, 10]"
    )
    assert error("split", t("N", 10), sections=0) == "split needs sections >= 1, got 0"
    assert error("split", t("N", 10), sections=(10, 0)) == (
        "split needs section sizes >= 1, got (10, 0)"
    )


# --- slice, squeeze, expand_dims -------------------------------------------------------------


def test_slice_follows_python_slice_semantics():
    x = randn(2, 10, 7)
    y = run("slice", x, axes=(1, 2), starts=(1, -5), ends=(None, 100), steps=(3, 2))
    rows = list(range(10))[1::3]
    cols = list(range(7))[-5:100:2]
    assert y.shape == (2, len(rows), len(cols))
    for n, (i, r), (j, c) in itertools.product(range(2), enumerate(rows), enumerate(cols)):
        assert y[n, i, j] == x[n, r, c]


def test_slice_with_a_negative_step_reverses():
    x = randn(1, 5)
    y = run("slice", x, axes=(1,), starts=(-1,), ends=(None,), steps=(-1,))
    assert list(y[0]) == list(x[0])[::-1]
    y = run("slice", x, axes=(-1,), starts=(3,), ends=(0,), steps=(-2,))
    assert list(y[0]) == list(x[0])[3:0:-2]


def test_slice_stores_non_negative_axes_and_explicit_steps():
    out, canon = assert_idempotent("slice", t("N", 10, 4), axes=(-2,), starts=(2,), ends=(8,))
    assert out == t("N", 6, 4)
    assert canon == {"axes": (1,), "starts": (2,), "ends": (8,), "steps": (1,)}


def test_slice_takes_a_symbolic_dim_whole_or_as_a_fixed_window():
    out, _ = infer(
        "slice", t("N", "T", 4), axes=(1, 2), starts=(0, 1), ends=(None, 3), steps=(1, 1)
    )
    assert out == t("N", "T", 2)
    assert infer("slice", t("N", "T", 4), axes=(1,), starts=(-1,), ends=(None,), steps=(1,))[
        0
    ] == t("N", 1, 4)
    assert infer("slice", t("N", "T", 4), axes=(1,), starts=(-5,), ends=(-2,), steps=(1,))[0] == t(
        "N", 3, 4
    )
    assert infer("slice", t("N", "T", 4), axes=(1,), starts=(1,), ends=(3,), steps=(1,))[0] == t(
        "N", 2, 4
    )
    assert error("slice", t("N", "T", 4), axes=(1,), starts=(1,), ends=(None,), steps=(1,)) == (
        "slice cannot take 1: of symbolic dim `T` (axis 1 of f32[N, T, 4]): its size would "
        "depend on `T`"
    )
    assert error("slice", t("N", "T", 4), axes=(1,), starts=(0,), ends=(4,), steps=(2,)) == (
        "slice cannot take 0:4:2 of symbolic dim `T` (axis 1 of f32[N, T, 4]): its size would "
        "depend on `T`"
    )


def test_slice_errors():
    x = t("N", 10)
    assert error("slice", x, axes=(1,), starts=(5,), ends=(2,), steps=(1,)) == (
        "slice 5:2 of axis 1 (size 10) in f32[N, 10] is empty"
    )
    assert error("slice", x, axes=(1,), starts=(0,), ends=(None,), steps=(0,)) == (
        "slice: the step on axis 1 must not be 0"
    )
    assert error("slice", x, axes=(1, -1), starts=(0, 0), ends=(2, 2), steps=(1, 1)) == (
        "slice lists axis 1 twice"
    )
    assert error("slice", x, axes=(1,), starts=(0, 1), ends=(2,), steps=(1,)) == (
        "slice needs one start, end and step per axis, got 1 axes, 2 starts, 1 ends and 1 steps"
    )
    assert error("slice", x, axes=(2,), starts=(0,), ends=(2,), steps=(1,)) == (
        "slice: axis 2 is out of range for rank 2"
    )


def test_squeeze_removes_size_one_axes():
    x = randn(2, 1, 3, 1)
    y = run("squeeze", x, axes=(-1, 1))
    assert y.shape == (2, 3)
    assert [[y[n, c] for c in range(3)] for n in range(2)] == [
        [x[n, 0, c, 0] for c in range(3)] for n in range(2)
    ]
    out, canon = assert_idempotent("squeeze", t("N", 1, 3, 1), axes=(-1, 1))
    assert out == t("N", 3) and canon == {"axes": (1, 3)}
    assert infer("squeeze", t("N", 1, 3), axes=1)[1] == {"axes": (1,)}


def test_squeeze_errors():
    assert error("squeeze", t("N", 2, 3), axes=(1,)) == (
        "squeeze: axis 1 of f32[N, 2, 3] has size 2, not 1"
    )
    assert error("squeeze", t("N", 2, 3), axes=(0,)) == (
        "squeeze: axis 0 of f32[N, 2, 3] has size N, not 1"
    )
    assert error("squeeze", t("N", 1), axes=(1, -1)) == "squeeze lists axis 1 twice"
    assert error("squeeze", t("N", 1), axes=()) == "squeeze needs at least one axis"


def test_expand_dims_inserts_an_axis_as_numpy():
    x = randn(2, 3)
    y = run("expand_dims", x, axis=-1)
    assert y.shape == (2, 3, 1) and values(y) == values(x)
    out, canon = assert_idempotent("expand_dims", t("N", 3), axis=-1)
    assert out == t("N", 3, 1) and canon == {"axis": 2}
    assert infer("expand_dims", t("N", 3), axis=1)[0] == t("N", 1, 3)
    assert error("expand_dims", t("N", 3), axis=3) == (
        "expand_dims: axis 3 is out of range for rank 3"
    )


def test_broadcast_like_repeats_x_to_the_broadcast_shape():
    cls = randn(1, 1, 4)
    like = randn(3, 1, 4)
    y = run("broadcast_like", cls, like)
    assert y.shape == (3, 1, 4)
    for n in range(3):
        assert values(y[n]) == values(cls[0])
    z = run("broadcast_like", randn(2, 1), randn(5).astype(np.int32))  # like's values unread
    assert z.shape == (2, 5) and z.dtype == np.float32
    assert all(values(z[i]) == [z[i, 0]] * 5 for i in range(2))


def test_broadcast_like_shapes_are_numpys_with_symbols():
    assert infer("broadcast_like", t(1, 1, 8), t("N", 1, 8)) == (t("N", 1, 8), {})
    assert infer("broadcast_like", t("N", 4, 1), t(6))[0] == t("N", 4, 6)
    assert infer("broadcast_like", t(8), t("N", "T", 1))[0] == t("N", "T", 8)
    assert infer("broadcast_like", t(1, 8, dtype="f16"), t("N", 1, dtype="i32"))[0] == t(
        "N", 8, dtype="f16"
    )
    assert error("broadcast_like", t(1, 3), t("N", 4)) == (
        "broadcast_like cannot broadcast shapes [1, 3] and [N, 4]: dim 3 against 4"
    )
    assert error("broadcast_like", t("T", 3), t("N", 3)) == (
        "broadcast_like cannot broadcast shapes [T, 3] and [N, 3]: dim T against N"
    )
    out = infer("broadcast_like", t(1, 3), t("N", 3))[0]
    assert OPS["broadcast_like"].count_flops([t(1, 3), t("N", 3)], out, {}) == 0


# --- pad -------------------------------------------------------------------------------------


def naive_pad(row, before, after, mode, value=0.0):
    n = len(row)

    def source(i):  # index into row for padded position i, or None for the constant
        j = i - before
        if 0 <= j < n:
            return j
        if mode == "constant":
            return None
        if mode == "edge":
            return 0 if j < 0 else n - 1
        return -j if j < 0 else 2 * (n - 1) - j  # reflect, without repeating the edge

    return [value if source(i) is None else row[source(i)] for i in range(n + before + after)]


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_modes_on_one_axis(mode):
    x = randn(2, 5)
    attrs = {"value": 1.5} if mode == "constant" else {}
    y = run("pad", x, pads=((0, 0), (3, 4)), mode=mode, **attrs)
    for n in range(2):
        assert list(y[n]) == naive_pad(list(x[n]), 3, 4, mode, attrs.get("value", 0.0))


def test_pad_reflect_matches_the_worked_example():
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    y = run("pad", x, pads=((0, 0), (2, 0)), mode="reflect")
    assert y.tolist() == [[3.0, 2.0, 1.0, 2.0, 3.0]]


def test_pad_several_axes_with_symbolic_batch():
    x = randn(1, 2, 3, 1)
    y = run("pad", x, pads=((0, 0), (1, 1), (0, 2), (0, 0)))
    assert y.shape == (1, 4, 5, 1)
    assert y[0, 1:3, 0:3, 0].tolist() == x[0, :, :, 0].tolist()
    assert float(np.abs(y).sum()) == pytest.approx(float(np.abs(x).sum()))
    out = infer("pad", t("N", 28, 28, 1), pads=((0, 0), (2, 2), (2, 2), (0, 0)))[0]
    assert out == t("N", 32, 32, 1)


def test_pad_errors():
    x = t("N", 4)
    assert error("pad", x, pads=((0, 0),)) == (
        "pad needs one (before, after) pair per axis, 2 for f32[N, 4], got 1"
    )
    assert error("pad", x, pads=((0, 0), (-1, 0))) == ("pad needs pads >= 0, got (-1, 0) on axis 1")
    assert error("pad", x, pads=((1, 0), (0, 0))) == (
        "pad cannot pad symbolic dim `N` (axis 0 of f32[N, 4])"
    )
    assert error("pad", x, pads=((0, 0), (4, 0)), mode="reflect") == (
        'pad mode "reflect" needs pads smaller than the dim, got (4, 0) on axis 1 of size 4'
    )
    assert error("pad", x, pads=((0, 0), (1, 0)), mode="edge", value=1.0) == (
        'pad value applies only to mode "constant", got value 1.0 with mode "edge"'
    )


# --- upsample, resize ------------------------------------------------------------------------


def test_upsample_nearest_repeats_each_value():
    x = randn(1, 2, 3, 2)
    y = run("upsample", x, size=(2, 3))
    assert y.shape == (1, 4, 9, 2)
    for i, j, c in itertools.product(range(4), range(9), range(2)):
        assert y[0, i, j, c] == x[0, i // 2, j // 3, c]


def test_upsample_is_rank_generic():
    x = randn(1, 3, 2)
    y = run("upsample", x)
    assert [y[0, i, 0] for i in range(6)] == [x[0, i // 2, 0] for i in range(6)]
    out, canon = assert_idempotent("upsample", t("N", 2, "H", 4, 3), size=2)
    assert out == t("N", 4, "H*2", 8, 3) and canon["size"] == (2, 2, 2)


def test_upsample_bilinear_is_a_half_pixel_resize():
    x = np.array([[1.0, 2.0]], np.float32).reshape(1, 1, 2, 1)
    y = run("upsample", x, size=(1, 2), method="bilinear")
    assert y[0, 0, :, 0].tolist() == [1.0, 1.25, 1.75, 2.0]


def test_upsample_errors():
    assert error("upsample", t("N", 4)) == (
        "upsample needs a rank-3, 4 or 5 input [N, spatial..., C], got f32[N, 4]"
    )
    assert error("upsample", t("N", 4, 3), method="bilinear") == (
        'upsample method "bilinear" needs a rank-4 input [N, H, W, C], got f32[N, 4, 3]'
    )
    assert error("upsample", t("N", 4, 4, 3), size=(2, 2, 2)) == (
        "upsample: size needs 2 values (one per spatial axis), got (2, 2, 2)"
    )
    assert error("upsample", t("N", 4, 4, 3), size=0) == "upsample needs size >= 1, got 0"


def naive_resize_axis(n_in, n_out, method):
    """Per output index: (lower, upper, weight of upper), tf.image.resize half-pixel rules."""
    out = []
    for i in range(n_out):
        if method == "nearest":
            j = min(math.floor((i + 0.5) * n_in / n_out), n_in - 1)
            out.append((j, j, 0.0))
        else:
            s = (i + 0.5) * n_in / n_out - 0.5
            lo = math.floor(s)
            out.append((max(lo, 0), min(lo + 1, n_in - 1), s - lo))
    return out


def naive_resize(x, size, method):
    n, _, _, c = x.shape
    y = np.zeros((n, *size, c))
    rows = naive_resize_axis(x.shape[1], size[0], method)
    cols = naive_resize_axis(x.shape[2], size[1], method)
    for b, (i, (r0, r1, fr)), (j, (c0, c1, fc)), k in itertools.product(
        range(n), enumerate(rows), enumerate(cols), range(c)
    ):
        top = x[b, r0, c0, k] * (1 - fc) + x[b, r0, c1, k] * fc
        bottom = x[b, r1, c0, k] * (1 - fc) + x[b, r1, c1, k] * fc
        y[b, i, j, k] = top * (1 - fr) + bottom * fr
    return y


# Sizes where float32 (as TF computes) and exact coordinates pick the same source cells.
@pytest.mark.parametrize("method", ["bilinear", "nearest"])
@pytest.mark.parametrize("size", [(8, 10), (3, 2), (7, 5)])
def test_resize_matches_tf_half_pixel_rules(method, size):
    x = randn(2, 4, 5, 3)
    y = run("resize", x, size=size, method=method)
    np.testing.assert_allclose(y, naive_resize(x, size, method), rtol=1e-5, atol=1e-5)


def test_resize_bilinear_worked_example():
    x = np.array([1.0, 2.0], np.float32).reshape(1, 2, 1, 1)
    y = run("resize", x, size=(4, 1))
    assert y[0, :, 0, 0].tolist() == [1.0, 1.25, 1.75, 2.0]


def test_resize_shapes_and_errors():
    assert infer("resize", t("N", "H", "W", 3), size=(224, 224))[0] == t("N", 224, 224, 3)
    assert error("resize", t("N", 4, 3), size=(2, 2)) == (
        "resize needs a rank-4 input [N, H, W, C], got f32[N, 4, 3]"
    )
    assert error("resize", t("N", 4, 4, 3), size=(0, 2)) == "resize needs sizes >= 1, got (0, 2)"
    assert error("resize", t("N", 4, 4, 3, dtype="i32"), size=(2, 2)) == (
        "resize needs a floating-point input, got i32[N, 4, 4, 3]"
    )


# --- cast ------------------------------------------------------------------------------------


def test_cast_truncates_toward_zero_and_maps_nonzero_to_true():
    x = np.array([[-1.7, 2.5, 0.0, 3.9]], np.float32)
    assert run("cast", x, dtype="i32").tolist() == [[-1, 2, 0, 3]]
    assert run("cast", x, dtype="bool").tolist() == [[True, True, False, True]]
    assert run("cast", np.array([[True, False]]), dtype="f16").tolist() == [[1.0, 0.0]]
    assert infer("cast", t("N", 3), dtype="bf16")[0] == t("N", 3, dtype="bf16")


def test_shape_ops_cost_no_flops():
    for name, attrs in [
        ("flatten", {}),
        ("transpose", {"perm": (1, 0)}),
        ("cast", {"dtype": "f16"}),
    ]:
        out, canon = infer(name, t("N", 8), **attrs)
        assert OPS[name].count_flops([t("N", 8)], out, canon) == 0
