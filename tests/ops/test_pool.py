"""maxpool, avgpool, global pooling: shapes, canonical attrs, FLOPs, errors, and the numpy
meaning against naive loop references written here."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from netc.ir import TensorType
from netc.ops import OPS, ShapeError

RNG = np.random.default_rng(1)


def f32(*shape):
    return TensorType("f32", tuple(shape))


def infer(name, x, **attrs):
    return OPS[name].infer([x], attrs)


def evaluate(name, x, **attrs):
    out_type, canon = infer(name, TensorType("f32", x.shape), **attrs)
    y = OPS[name].evaluate([x], canon)
    assert y.shape == out_type.shape and y.dtype == x.dtype
    return y


def tup(v, n):
    return (v,) * n if isinstance(v, int) else tuple(v)


def ref_pool(x, size, stride, padding, reduce):
    """Naive pooling: each window gathers the real (unpadded) cells it covers."""
    n = x.ndim - 2
    spatial = x.shape[1:-1]
    if padding == "same":
        out = [math.ceil(spatial[i] / stride[i]) for i in range(n)]
        before = [max((out[i] - 1) * stride[i] + size[i] - spatial[i], 0) // 2 for i in range(n)]
    elif padding == "valid":
        out = [(spatial[i] - size[i]) // stride[i] + 1 for i in range(n)]
        before = [0] * n
    else:
        out = [(spatial[i] + sum(padding[i]) - size[i]) // stride[i] + 1 for i in range(n)]
        before = [p[0] for p in padding]
    y = np.zeros((x.shape[0], *out, x.shape[-1]), dtype=x.dtype)
    for b, o in itertools.product(range(x.shape[0]), itertools.product(*map(range, out))):
        cells = []
        for t in itertools.product(*map(range, size)):
            pos = [o[i] * stride[i] + t[i] - before[i] for i in range(n)]
            if all(0 <= p < spatial[i] for i, p in enumerate(pos)):
                cells.append(x[(b, *pos)])
        y[(b, *o)] = reduce(np.stack(cells), axis=0)
    return y


POOL_CASES = [
    # input shape, attrs
    ((2, 6, 6, 3), dict()),
    ((1, 7, 7, 2), dict(size=2)),
    ((1, 7, 6, 2), dict(size=3, stride=2, padding="same")),
    ((1, 5, 6, 2), dict(size=(3, 2), stride=1, padding="same")),
    ((1, 8, 9, 2), dict(size=3, stride=3, padding="same")),
    ((1, 5, 5, 1), dict(size=3, stride=2, padding=((2, 0), (1, 2)))),
    ((2, 1, 5, 2), dict(size=(1, 2))),
    ((1, 9, 3), dict(size=3, stride=2, padding="same")),
    ((2, 10, 2), dict(size=4)),
    ((1, 4, 5, 3, 2), dict(size=2, padding="same")),
    ((1, 4, 5, 3, 2), dict(size=(2, 3, 1), stride=(1, 2, 1))),
]


@pytest.mark.parametrize("name, reduce", [("maxpool", np.max), ("avgpool", np.mean)])
@pytest.mark.parametrize("shape, attrs", POOL_CASES)
def test_pool_matches_a_naive_loop(name, reduce, shape, attrs):
    x = RNG.standard_normal(shape).astype(np.float32)
    n = len(shape) - 2
    size = tup(attrs.get("size", 2), n)
    stride = tup(attrs.get("stride", size), n)
    want = ref_pool(x, size, stride, attrs.get("padding", "valid"), reduce)
    np.testing.assert_allclose(evaluate(name, x, **attrs), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["maxpool", "avgpool"])
@pytest.mark.parametrize("shape, attrs", POOL_CASES)
def test_pool_canonical_attrs_are_idempotent(name, shape, attrs):
    t1, a1 = infer(name, f32("N", *shape[1:]), **attrs)
    assert infer(name, f32("N", *shape[1:]), **a1) == (t1, a1)


def test_avgpool_same_divides_by_the_real_cells_only():
    x = np.array([1, 2, 3, 4], dtype=np.float32).reshape(1, 4, 1)
    y = evaluate("avgpool", x, size=3, stride=1, padding="same")
    np.testing.assert_allclose(y.ravel(), [1.5, 2, 3, 3.5])


def test_maxpool_padding_never_wins():
    x = -np.arange(1, 5, dtype=np.float32).reshape(1, 4, 1)
    y = evaluate("maxpool", x, size=2, stride=2, padding=((1, 1),))
    np.testing.assert_array_equal(y.ravel(), [-1, -2, -4])


def test_pool_output_size_is_floor_mode_and_stride_defaults_to_size():
    t, a = infer("maxpool", f32("N", 7, 7, 8))
    assert t == f32("N", 3, 3, 8)
    assert a == {"size": (2, 2), "stride": (2, 2), "padding": ((0, 0), (0, 0))}
    t, a = infer("maxpool", f32("N", 112, 112, 64), size=3, stride=2, padding="same")
    assert t == f32("N", 56, 56, 64) and a["padding"] == ((0, 1), (0, 1))
    assert infer("avgpool", f32("N", 9, 4), size=4, stride=2)[0] == f32("N", 3, 4)


def test_pool_keeps_symbolic_batch_and_stride_1_same_spatial_dims():
    assert infer("maxpool", f32("N", 32, 32, 8))[0] == f32("N", 16, 16, 8)
    t, a = infer("avgpool", f32("B", "T", 8), size=3, stride=1, padding="same")
    assert t == f32("B", "T", 8) and a["padding"] == ((1, 1),)


def test_pool_flops_count_every_window_cell():
    x = f32("N", 4, 4, 3)
    t, a = infer("maxpool", x)
    assert OPS["maxpool"].count_flops([x], t, a) == 2 * 2 * 3 * 4
    t, a = infer("avgpool", x, size=3, stride=1, padding="same")
    assert OPS["avgpool"].count_flops([x], t, a) == 4 * 4 * 3 * 9


@pytest.mark.parametrize(
    "name, x, attrs, message",
    [
        (
            "maxpool",
            f32("N", 10),
            {},
            "maxpool needs a rank-3, 4 or 5 input [N, *spatial, C], got f32[N, 10]",
        ),
        (
            "avgpool",
            TensorType("i32", ("N", 4, 4, 1)),
            {},
            "avgpool needs a floating-point input, got i32[N, 4, 4, 1]",
        ),
        (
            "maxpool",
            f32("N", 4, 4, 1),
            dict(size=(2, 2, 2)),
            "maxpool: size needs 2 values (one per spatial axis), got (2, 2, 2)",
        ),
        ("maxpool", f32("N", 4, 4, 1), dict(stride=0), "maxpool needs stride >= 1, got 0"),
        (
            "maxpool",
            f32("N", 4, 4, 1),
            dict(padding=((2, 0), (0, 0))),
            "maxpool needs padding smaller than the window on each side, got "
            "padding=((2, 0), (0, 0)) for size=(2, 2)",
        ),
        (
            "avgpool",
            f32("N", "T", 4),
            dict(size=2, padding="same"),
            'avgpool: padding "same" with stride 2 needs a known size for axis 1, got symbol `T` '
            "in f32[N, T, 4]",
        ),
        (
            "maxpool",
            f32("N", "T", 4),
            dict(size=2),
            "maxpool needs a known size for axis 1 of f32[N, T, 4]: a symbolic size is kept only "
            'by stride 1 with "same" padding',
        ),
        (
            "global_avgpool",
            f32("N", 10),
            {},
            "global_avgpool needs an input [N, *spatial, C] of rank >= 3, got f32[N, 10]",
        ),
    ],
)
def test_pool_bad_cases_say_what_is_wrong(name, x, attrs, message):
    with pytest.raises(ShapeError) as info:
        infer(name, x, **attrs)
    assert info.value.message == message


def test_pool_too_small_input_suggests_same():
    with pytest.raises(ShapeError) as info:
        infer("maxpool", f32("N", 2, 8, 1), size=3)
    assert info.value.message == (
        "maxpool: the input is too small: axis 1 of f32[N, 2, 8, 1] has "
        "2 cells, the pool window spans 3"
    )
    assert info.value.hint == 'use padding="same"'


@pytest.mark.parametrize("name, reduce", [("global_avgpool", np.mean), ("global_maxpool", np.max)])
@pytest.mark.parametrize("shape", [(2, 5, 3), (2, 3, 4, 3), (1, 2, 3, 2, 4)])
def test_global_pool_reduces_every_spatial_axis(name, reduce, shape):
    x = RNG.standard_normal(shape).astype(np.float32)
    want = np.zeros((shape[0], shape[-1]), dtype=np.float32)
    for b, c in itertools.product(range(shape[0]), range(shape[-1])):
        want[b, c] = reduce([x[(b, *pos, c)] for pos in np.ndindex(*shape[1:-1])])
    np.testing.assert_allclose(evaluate(name, x), want, rtol=1e-6, atol=1e-6)
    kept = evaluate(name, x, keepdims=True)
    assert kept.shape == (shape[0], *[1] * (len(shape) - 2), shape[-1])
    np.testing.assert_allclose(kept.reshape(want.shape), want, rtol=1e-6, atol=1e-6)


def test_global_pool_shapes_and_flops():
    x = f32("N", 7, 7, 512)
    t, a = infer("global_avgpool", x)
    assert t == f32("N", 512) and a == {"keepdims": False}
    assert infer("global_maxpool", x, keepdims=True)[0] == f32("N", 1, 1, 512)
    assert OPS["global_avgpool"].count_flops([x], t, {"keepdims": False}) == 7 * 7 * 512
