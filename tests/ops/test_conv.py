"""conv1d/2d/3d, depthwise and transposed convolutions: shapes, canonical attrs, weights, FLOPs,
errors, and the numpy meaning against naive loop references written here."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from netc.ir import TensorType
from netc.ops import OPS, ShapeError

RNG = np.random.default_rng(0)


def f32(*shape):
    return TensorType("f32", tuple(shape))


def infer(name, x, **attrs):
    return OPS[name].infer([x], attrs)


def error(name, x, **attrs) -> ShapeError:
    with pytest.raises(ShapeError) as info:
        infer(name, x, **attrs)
    return info.value


def run(name, x, **attrs):
    """Random weights for `x`'s op instance, the op's output, and the weights."""
    out_type, canon = infer(name, TensorType("f32", x.shape), **attrs)
    specs = OPS[name].param_specs([TensorType("f32", x.shape)], canon)
    weights = [RNG.standard_normal(p.shape).astype(np.float32) for p in specs.values()]
    y = OPS[name].evaluate([x, *weights], canon)
    assert y.shape == out_type.shape and y.dtype == np.float32
    return y, weights


def tf_same(size, k, s):
    """TF's "same" pads for one axis: (before, after), the odd cell after."""
    total = max((math.ceil(size / s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def pads_of(spatial, kernel, stride, padding, dilation):
    if padding == "valid":
        return [(0, 0)] * len(spatial)
    if padding == "same":
        return [
            tf_same(n, (k - 1) * d + 1, s)
            for n, k, s, d in zip(spatial, kernel, stride, dilation, strict=True)
        ]
    return list(padding)


def ref_conv(x, w, stride, pads, dilation, groups):
    """Naive grouped convolution: one dot product per output cell and filter."""
    nsp = x.ndim - 2
    kernel, cg, filters = w.shape[:nsp], w.shape[nsp], w.shape[-1]
    fg = filters // groups
    out_sp = [
        (x.shape[1 + i] + sum(pads[i]) - (kernel[i] - 1) * dilation[i] - 1) // stride[i] + 1
        for i in range(nsp)
    ]
    y = np.zeros((x.shape[0], *out_sp, filters))
    for b in range(x.shape[0]):
        for o in itertools.product(*map(range, out_sp)):
            for f in range(filters):
                g = f // fg
                acc = 0.0
                for t in itertools.product(*map(range, kernel)):
                    pos = [o[i] * stride[i] + t[i] * dilation[i] - pads[i][0] for i in range(nsp)]
                    if all(0 <= p < x.shape[1 + i] for i, p in enumerate(pos)):
                        for c in range(cg):
                            acc += float(x[(b, *pos, g * cg + c)]) * float(w[(*t, c, f)])
                y[(b, *o, f)] = acc
    return y


def tup(v, n):
    return (v,) * n if isinstance(v, int) else tuple(v)


CONV_CASES = [
    # name, input shape, attrs
    ("conv2d", (2, 7, 6, 3), dict(filters=4, kernel=3)),
    ("conv2d", (1, 7, 6, 3), dict(filters=2, kernel=(3, 2), stride=2, padding="same")),
    ("conv2d", (1, 8, 7, 2), dict(filters=3, kernel=4, stride=3, padding="same")),
    ("conv2d", (1, 7, 7, 2), dict(filters=2, kernel=3, padding="same", dilation=2)),
    ("conv2d", (1, 6, 5, 4), dict(filters=6, kernel=3, groups=2, padding="same")),
    ("conv2d", (1, 5, 4, 2), dict(filters=2, kernel=(2, 3), padding=((1, 2), (0, 3)))),
    ("conv2d", (2, 1, 5, 2), dict(filters=3, kernel=(1, 3), stride=(1, 2))),
    ("conv2d", (1, 5, 5, 3), dict(filters=2, kernel=1, bias=False)),
    ("conv1d", (2, 9, 3), dict(filters=2, kernel=4, stride=3, padding="same")),
    ("conv1d", (1, 10, 4), dict(filters=4, kernel=3, dilation=3, groups=4)),
    ("conv3d", (1, 4, 5, 3, 2), dict(filters=2, kernel=(2, 3, 1), stride=2, padding="same")),
]


@pytest.mark.parametrize("name, shape, attrs", CONV_CASES)
def test_conv_matches_a_naive_loop(name, shape, attrs):
    x = RNG.standard_normal(shape).astype(np.float32)
    y, weights = run(name, x, **attrs)
    n = len(shape) - 2
    kernel, stride = tup(attrs["kernel"], n), tup(attrs.get("stride", 1), n)
    dilation = tup(attrs.get("dilation", 1), n)
    pads = pads_of(shape[1:-1], kernel, stride, attrs.get("padding", "valid"), dilation)
    want = ref_conv(x, weights[0], stride, pads, dilation, attrs.get("groups", 1))
    if attrs.get("bias", True):
        want = want + weights[1]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, shape, attrs", CONV_CASES)
def test_conv_canonical_attrs_are_idempotent(name, shape, attrs):
    t1, a1 = infer(name, f32("N", *shape[1:]), **attrs)
    t2, a2 = infer(name, f32("N", *shape[1:]), **a1)
    assert (t1, a1) == (t2, a2)


def test_conv2d_same_puts_the_odd_padding_cell_after():
    t, attrs = infer("conv2d", f32("N", 6, 7, 3), filters=8, kernel=3, stride=2, padding="same")
    assert t == f32("N", 3, 4, 8)
    assert attrs["padding"] == ((0, 1), (1, 1))
    assert attrs["kernel"] == (3, 3) and attrs["stride"] == (2, 2) and attrs["dilation"] == (1, 1)


def test_conv2d_output_size_is_floor_mode():
    assert infer("conv2d", f32("N", 28, 28, 1), filters=32, kernel=3)[0] == f32("N", 26, 26, 32)
    assert infer("conv2d", f32("N", 8, 9, 1), filters=1, kernel=3, stride=2)[0] == f32("N", 3, 4, 1)
    t, _ = infer("conv2d", f32("B", 224, 224, 3), filters=64, kernel=7, stride=2, padding="same")
    assert t == f32("B", 112, 112, 64)


def test_conv_keeps_a_symbolic_spatial_size_with_stride_1_same():
    t, attrs = infer("conv1d", f32("N", "T", 8), filters=16, kernel=5, padding="same", dilation=2)
    assert t == f32("N", "T", 16) and attrs["padding"] == ((4, 4),)
    assert infer("conv1d", f32("N", "T", 8), filters=4, kernel=1)[0] == f32("N", "T", 4)


def test_conv_param_shapes_and_counts_match_keras():
    def params(name, x, **attrs):
        _, canon = infer(name, x, **attrs)
        specs = OPS[name].param_specs([x], canon)
        return {k: (p.shape, p.init) for k, p in specs.items()}, sum(
            math.prod(p.shape) for p in specs.values()
        )

    assert params("conv2d", f32("N", 32, 32, 3), filters=64, kernel=3) == (
        {"kernel": ((3, 3, 3, 64), "glorot_uniform"), "bias": ((64,), "zeros")},
        1792,
    )
    assert params("conv2d", f32("N", 8, 8, 4), filters=8, kernel=3, groups=2)[1] == 152
    assert params("conv1d", f32("N", 20, 10), filters=32, kernel=5)[1] == 1632
    assert params("conv3d", f32("N", 8, 8, 8, 2), filters=4, kernel=3)[1] == 220
    assert params("depthwise_conv2d", f32("N", 16, 16, 32), kernel=3, bias=False) == (
        {"kernel": ((3, 3, 32, 1), "glorot_uniform")},
        288,
    )
    assert params("depthwise_conv2d", f32("N", 8, 8, 3), kernel=3, depth_multiplier=2)[1] == 60
    assert params("conv2d_transpose", f32("N", 8, 8, 8), filters=16, kernel=3) == (
        {"kernel": ((3, 3, 16, 8), "glorot_uniform"), "bias": ((16,), "zeros")},
        1168,
    )


def test_conv_flops_count_a_multiply_add_as_two():
    x = f32("N", 32, 32, 3)
    t, attrs = infer("conv2d", x, filters=64, kernel=3, padding="same")
    assert OPS["conv2d"].count_flops([x], t, attrs) == 2 * 32 * 32 * 64 * 27 + 32 * 32 * 64
    t, attrs = infer("conv2d", f32("N", 8, 8, 4), filters=8, kernel=3, groups=2, bias=False)
    assert OPS["conv2d"].count_flops([f32("N", 8, 8, 4)], t, attrs) == 2 * 6 * 6 * 8 * 9 * 2
    t, attrs = infer("depthwise_conv2d", f32("N", 8, 8, 4), kernel=3, padding="same")
    assert OPS["depthwise_conv2d"].count_flops([f32("N", 8, 8, 4)], t, attrs) == (
        2 * 8 * 8 * 4 * 9 + 8 * 8 * 4
    )


# --- depthwise ---------------------------------------------------------------------------------


def ref_depthwise(x, w, stride, pads, dilation):
    """Naive depthwise conv: output channel c*M + j from input channel c and multiplier j."""
    nsp = x.ndim - 2
    kernel, c_in, m = w.shape[:nsp], w.shape[nsp], w.shape[nsp + 1]
    out_sp = [
        (x.shape[1 + i] + sum(pads[i]) - (kernel[i] - 1) * dilation[i] - 1) // stride[i] + 1
        for i in range(nsp)
    ]
    y = np.zeros((x.shape[0], *out_sp, c_in * m))
    for b, o in itertools.product(range(x.shape[0]), itertools.product(*map(range, out_sp))):
        for c, j in itertools.product(range(c_in), range(m)):
            for t in itertools.product(*map(range, kernel)):
                pos = [o[i] * stride[i] + t[i] * dilation[i] - pads[i][0] for i in range(nsp)]
                if all(0 <= p < x.shape[1 + i] for i, p in enumerate(pos)):
                    y[(b, *o, c * m + j)] += float(x[(b, *pos, c)]) * float(w[(*t, c, j)])
    return y


DEPTHWISE_CASES = [
    ("depthwise_conv2d", (2, 6, 5, 3), dict(kernel=3, padding="same", depth_multiplier=2)),
    ("depthwise_conv2d", (1, 7, 6, 2), dict(kernel=(3, 2), stride=2)),
    ("depthwise_conv2d", (1, 7, 7, 2), dict(kernel=3, dilation=2, padding="same", bias=False)),
    ("depthwise_conv1d", (1, 9, 3), dict(kernel=4, stride=3, padding="same", depth_multiplier=3)),
]


@pytest.mark.parametrize("name, shape, attrs", DEPTHWISE_CASES)
def test_depthwise_conv_matches_a_naive_loop(name, shape, attrs):
    x = RNG.standard_normal(shape).astype(np.float32)
    y, weights = run(name, x, **attrs)
    n = len(shape) - 2
    kernel, stride = tup(attrs["kernel"], n), tup(attrs.get("stride", 1), n)
    dilation = tup(attrs.get("dilation", 1), n)
    pads = pads_of(shape[1:-1], kernel, stride, attrs.get("padding", "valid"), dilation)
    want = ref_depthwise(x, weights[0], stride, pads, dilation)
    if attrs.get("bias", True):
        want = want + weights[1]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    t, a = infer(name, f32("N", *shape[1:]), **attrs)
    assert infer(name, f32("N", *shape[1:]), **a) == (t, a)


def test_depthwise_conv2d_output_channels_are_c_times_multiplier():
    t, attrs = infer(
        "depthwise_conv2d",
        f32("N", 14, 14, 32),
        kernel=3,
        stride=2,
        padding="same",
        depth_multiplier=2,
    )
    assert t == f32("N", 7, 7, 64) and attrs["padding"] == ((0, 1), (0, 1))


# --- separable ---------------------------------------------------------------------------------

SEPARABLE_CASES = [
    (
        "separable_conv2d",
        (2, 6, 5, 3),
        dict(filters=4, kernel=3, padding="same", depth_multiplier=2),
    ),
    ("separable_conv2d", (1, 7, 6, 2), dict(filters=3, kernel=(3, 2), stride=2)),
    ("separable_conv2d", (1, 7, 7, 2), dict(filters=2, kernel=3, dilation=2, bias=False)),
    ("separable_conv1d", (2, 9, 3), dict(filters=5, kernel=4, stride=3, padding="same")),
]


@pytest.mark.parametrize("name, shape, attrs", SEPARABLE_CASES)
def test_separable_conv_is_depthwise_then_pointwise_then_bias(name, shape, attrs):
    x = RNG.standard_normal(shape).astype(np.float32)
    y, weights = run(name, x, **attrs)
    n = len(shape) - 2
    kernel, stride = tup(attrs["kernel"], n), tup(attrs.get("stride", 1), n)
    dilation = tup(attrs.get("dilation", 1), n)
    pads = pads_of(shape[1:-1], kernel, stride, attrs.get("padding", "valid"), dilation)
    mid = ref_depthwise(x, weights[0], stride, pads, dilation)
    want = ref_conv(mid, weights[1].astype(np.float64), (1,) * n, [(0, 0)] * n, (1,) * n, 1)
    if attrs.get("bias", True):
        want = want + weights[2]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    t, a = infer(name, f32("N", *shape[1:]), **attrs)
    assert infer(name, f32("N", *shape[1:]), **a) == (t, a)


def test_separable_conv_weights_are_keras_and_counted_as_keras():
    x = f32("N", 19, 19, 728)  # an Xception middle-flow layer: SeparableConv2D(728, 3)
    t, a = infer("separable_conv2d", x, filters=728, kernel=3, padding="same", bias=False)
    specs = OPS["separable_conv2d"].param_specs([x], a)
    assert {k: (p.shape, p.init) for k, p in specs.items()} == {
        "depthwise_kernel": ((3, 3, 728, 1), "glorot_uniform"),
        "pointwise_kernel": ((1, 1, 728, 728), "glorot_uniform"),
    }
    assert sum(math.prod(p.shape) for p in specs.values()) == 536_536  # keras' count
    x = f32("N", 10, 3)
    _, a = infer("separable_conv1d", x, filters=4, kernel=3, depth_multiplier=2)
    specs = OPS["separable_conv1d"].param_specs([x], a)
    assert [p.shape for p in specs.values()] == [(3, 3, 2), (1, 6, 4), (4,)]


def test_separable_conv_flops_are_the_depthwise_and_pointwise_parts():
    x = f32("N", 8, 8, 4)
    t, a = infer("separable_conv2d", x, filters=6, kernel=3, padding="same", depth_multiplier=2)
    assert t == f32("N", 8, 8, 6)
    depthwise = 2 * 8 * 8 * 8 * 9  # 8 = C * depth_multiplier channels, 9 kernel cells
    pointwise = 2 * 8 * 8 * 6 * 8
    assert OPS["separable_conv2d"].count_flops([x], t, a) == depthwise + pointwise + 8 * 8 * 6


@pytest.mark.parametrize(
    "x, attrs, message",
    [
        (
            f32("N", 8, 8),
            dict(filters=4, kernel=3),
            "separable_conv2d needs a rank-4 input [N, H, W, C], got f32[N, 8, 8]",
        ),
        (
            f32("N", 8, 8, 3),
            dict(filters=0, kernel=3),
            "separable_conv2d needs filters >= 1, got 0",
        ),
        (
            f32("N", 8, 8, 3),
            dict(filters=2, kernel=3, depth_multiplier=0),
            "separable_conv2d needs depth_multiplier >= 1, got 0",
        ),
        (
            f32("N", 8, 8, 3),
            dict(filters=2, kernel=3, stride=2, dilation=2),
            "separable_conv2d: stride > 1 together with dilation > 1 is not supported (as in "
            "Keras), got stride=(2, 2), dilation=(2, 2)",
        ),
        (
            f32("N", 8, 8, "C"),
            dict(filters=2, kernel=3),
            "separable_conv2d needs a known channel count (the last dim), got symbol `C` in "
            "f32[N, 8, 8, C]",
        ),
    ],
)
def test_separable_conv_bad_cases_say_what_is_wrong(x, attrs, message):
    assert error("separable_conv2d", x, **attrs).message == message


# --- transposed --------------------------------------------------------------------------------


def keras_length(size, k, s, padding, output_padding, d=1):
    """keras deconv_output_length."""
    k = (k - 1) * d + 1
    if output_padding is None:
        return size * s + max(k - s, 0) if padding == "valid" else size * s
    pad = k // 2 if padding == "same" else 0
    return (size - 1) * s + k - 2 * pad + output_padding


def ref_conv_transpose(x, w, stride, padding, output_padding, dilation):
    """Keras' (TF's) transposed conv, as the adjoint of a forward conv over the output grid."""
    nsp = x.ndim - 2
    kernel = w.shape[:nsp]
    ops = output_padding or (None,) * nsp
    length = [
        keras_length(x.shape[1 + i], kernel[i], stride[i], padding, ops[i], dilation[i])
        for i in range(nsp)
    ]
    # the forward conv (TF rule) that maps `length` cells back to the input's size
    before = [
        tf_same(length[i], (kernel[i] - 1) * dilation[i] + 1, stride[i])[0]
        if padding == "same"
        else 0
        for i in range(nsp)
    ]
    y = np.zeros((x.shape[0], *length, w.shape[-2]))
    for b, o in itertools.product(range(x.shape[0]), itertools.product(*map(range, x.shape[1:-1]))):
        for t in itertools.product(*map(range, kernel)):
            p = [o[i] * stride[i] + t[i] * dilation[i] - before[i] for i in range(nsp)]
            if all(0 <= p[i] < length[i] for i in range(nsp)):
                y[(b, *p)] += w[t].astype(np.float64) @ x[(b, *o)].astype(np.float64)
    return y


TRANSPOSE_CASES = [
    ("conv2d_transpose", (2, 3, 4, 3), dict(filters=2, kernel=3, stride=2, padding="same")),
    ("conv2d_transpose", (1, 3, 4, 3), dict(filters=2, kernel=3, stride=2)),
    ("conv2d_transpose", (1, 2, 3, 2), dict(filters=3, kernel=(1, 2), stride=3)),
    ("conv2d_transpose", (1, 3, 3, 2), dict(filters=2, kernel=4, stride=2, padding="same")),
    ("conv2d_transpose", (1, 4, 3, 2), dict(filters=2, kernel=3, padding="same", dilation=2)),
    (
        "conv2d_transpose",
        (1, 3, 2, 2),
        dict(filters=2, kernel=3, stride=2, padding="same", output_padding=1),
    ),
    (
        "conv2d_transpose",
        (1, 2, 3, 2),
        dict(filters=2, kernel=(4, 2), stride=3, output_padding=(2, 1), bias=False),
    ),
    (
        "conv2d_transpose",
        (1, 3, 3, 1),
        dict(filters=1, kernel=(4, 2), stride=(2, 3), padding="same", output_padding=(1, 2)),
    ),
    ("conv1d_transpose", (1, 4, 2), dict(filters=3, kernel=5, stride=3, padding="same")),
    ("conv1d_transpose", (1, 4, 2), dict(filters=3, kernel=2, stride=3, padding="same")),
    ("conv3d_transpose", (1, 2, 3, 2, 2), dict(filters=2, kernel=2, stride=2)),
]


@pytest.mark.parametrize("name, shape, attrs", TRANSPOSE_CASES)
def test_conv_transpose_matches_keras_semantics(name, shape, attrs):
    x = RNG.standard_normal(shape).astype(np.float32)
    y, weights = run(name, x, **attrs)
    n = len(shape) - 2
    op = attrs.get("output_padding")
    want = ref_conv_transpose(
        x,
        weights[0],
        tup(attrs.get("stride", 1), n),
        attrs.get("padding", "valid"),
        None if op is None else tup(op, n),
        tup(attrs.get("dilation", 1), n),
    )
    if attrs.get("bias", True):
        want = want + weights[1]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    t, a = infer(name, f32("N", *shape[1:]), **attrs)
    assert infer(name, f32("N", *shape[1:]), **a) == (t, a)


def test_conv2d_transpose_output_sizes_follow_keras():
    x = f32("N", 5, 5, 8)
    assert infer("conv2d_transpose", x, filters=4, kernel=3, stride=2)[0] == f32("N", 11, 11, 4)
    assert infer("conv2d_transpose", x, filters=4, kernel=3, stride=2, padding="same")[0] == (
        f32("N", 10, 10, 4)
    )
    assert infer("conv2d_transpose", x, filters=4, kernel=1, stride=2)[0] == f32("N", 10, 10, 4)


def test_conv2d_transpose_stores_crop_pairs_and_output_padding():
    _, a = infer(
        "conv2d_transpose", f32("N", 5, 5, 8), filters=4, kernel=3, stride=2, padding="same"
    )
    assert a["padding"] == ((0, 1), (0, 1)) and a["output_padding"] == (0, 0)
    _, a = infer(
        "conv2d_transpose",
        f32("N", 5, 5, 8),
        filters=4,
        kernel=(1, 4),
        stride=(2, 2),
        padding="same",
    )
    assert a["padding"] == ((0, 0), (1, 1)) and a["output_padding"] == (1, 0)


def test_conv_transpose_explicit_pairs_crop_the_full_output_as_onnx():
    # out = full - before - after + output_padding, read from `before` on; past the full output
    # there are only zeros (and the bias)
    x = RNG.standard_normal((1, 3, 2)).astype(np.float32)
    for pads, want_cells in [((2, 1), [2, 3, 4, 5, 6]), ((2, 0), [2, 3, 4, 5, 6, None])]:
        y, (w, b) = run(
            "conv1d_transpose",
            x,
            filters=2,
            kernel=3,
            stride=2,
            padding=(pads,),
            output_padding=(1,),
        )
        full = ref_conv_transpose(x, w, (2,), "valid", None, (1,))  # 7 cells
        want = np.stack([full[0, i] if i is not None else np.zeros(2) for i in want_cells]) + b
        np.testing.assert_allclose(y[0], want, rtol=1e-5, atol=1e-5)


def test_conv_transpose_keeps_a_symbolic_size_with_same_padding():
    t, _ = infer(
        "conv1d_transpose", f32("N", "T", 8), filters=4, kernel=3, stride=2, padding="same"
    )
    assert t == f32("N", "T*2", 4)
    e = error("conv1d_transpose", f32("N", "T", 8), filters=4, kernel=3, stride=2)
    assert e.message == (
        "conv1d_transpose needs a known size for axis 1 of f32[N, T, 8]: only "
        '"same" padding keeps a symbolic size (times the stride)'
    )


def test_conv_transpose_flops():
    x = f32("N", 4, 4, 8)
    t, a = infer("conv2d_transpose", x, filters=2, kernel=3, stride=2, padding="same")
    assert OPS["conv2d_transpose"].count_flops([x], t, a) == 2 * 4 * 4 * 8 * 9 * 2 + 8 * 8 * 2


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, x, attrs, message",
    [
        (
            "conv2d",
            f32("N", 28, 28),
            dict(filters=8, kernel=3),
            "conv2d needs a rank-4 input [N, H, W, C], got f32[N, 28, 28]",
        ),
        (
            "conv1d",
            f32("N", 8, 8, 1),
            dict(filters=8, kernel=3),
            "conv1d needs a rank-3 input [N, W, C], got f32[N, 8, 8, 1]",
        ),
        (
            "conv3d",
            f32("N", 8, 8, 1),
            dict(filters=8, kernel=3),
            "conv3d needs a rank-5 input [N, D, H, W, C], got f32[N, 8, 8, 1]",
        ),
        (
            "conv2d",
            TensorType("i32", ("N", 8, 8, 3)),
            dict(filters=8, kernel=3),
            "conv2d needs a floating-point input, got i32[N, 8, 8, 3]",
        ),
        (
            "conv2d",
            f32("N", 8, 8, 3),
            dict(filters=4, kernel=3, groups=2),
            "conv2d: the input's 3 channels do not divide into groups=2",
        ),
        (
            "conv2d",
            f32("N", 8, 8, 4),
            dict(filters=5, kernel=3, groups=2),
            "conv2d: filters=5 do not divide into groups=2",
        ),
        (
            "conv2d",
            f32("N", 8, 8, 4),
            dict(filters=0, kernel=3),
            "conv2d needs filters >= 1, got 0",
        ),
        (
            "conv2d",
            f32("N", 8, 8, 4),
            dict(filters=4, kernel=(3, 3, 3)),
            "conv2d: kernel needs 2 values (one per spatial axis), got (3, 3, 3)",
        ),
        (
            "conv2d",
            f32("N", 8, 8, 4),
            dict(filters=4, kernel=(3, 0)),
            "conv2d needs kernel >= 1, got (3, 0)",
        ),
        (
            "conv2d",
            f32("N", 8, 8, 4),
            dict(filters=4, kernel=3, stride=2, dilation=2),
            "conv2d: stride > 1 together with dilation > 1 is not supported (as in Keras), "
            "got stride=(2, 2), dilation=(2, 2)",
        ),
        (
            "conv2d",
            f32("N", 8, 8, "C"),
            dict(filters=4, kernel=3),
            "conv2d needs a known channel count (the last dim), got symbol `C` in f32[N, 8, 8, C]",
        ),
        (
            "conv2d",
            f32("N", 8, 8, 4),
            dict(filters=4, kernel=3, padding="full"),
            'conv2d: padding must be "valid", "same" or (before, after) pairs, got "full"',
        ),
        (
            "conv2d",
            f32("N", 8, 8, 4),
            dict(filters=4, kernel=3, padding=((1, 1),)),
            "conv2d: padding needs 2 (before, after) pairs (one per spatial axis), got ((1, 1),)",
        ),
        (
            "conv2d",
            f32("N", 8, 8, 4),
            dict(filters=4, kernel=3, padding=((1, -1), (0, 0))),
            "conv2d needs padding >= 0, got ((1, -1), (0, 0))",
        ),
        (
            "conv1d",
            f32("N", "T", 4),
            dict(filters=4, kernel=3, stride=2, padding="same"),
            'conv1d: padding "same" with stride 2 needs a known size for axis 1, got symbol `T` in '
            "f32[N, T, 4]",
        ),
        (
            "conv1d",
            f32("N", "T", 4),
            dict(filters=4, kernel=3),
            "conv1d needs a known size for axis 1 of f32[N, T, 4]: a symbolic size is kept only by "
            'stride 1 with "same" padding',
        ),
        (
            "depthwise_conv2d",
            f32("N", 8, 8, 4),
            dict(kernel=3, depth_multiplier=0),
            "depthwise_conv2d needs depth_multiplier >= 1, got 0",
        ),
        (
            "conv2d_transpose",
            f32("N", 8, 8, 4),
            dict(filters=4, kernel=3, stride=2, output_padding=2),
            "conv2d_transpose needs output_padding < stride, got output_padding=2, stride=(2, 2)",
        ),
        (
            "conv2d_transpose",
            f32("N", 2, 2, 4),
            dict(filters=4, kernel=1, padding=((1, 1), (0, 0))),
            "conv2d_transpose: padding (1, 1) crops away all 2 cells of axis 1",
        ),
    ],
)
def test_conv_bad_cases_say_what_is_wrong(name, x, attrs, message):
    assert error(name, x, **attrs).message == message


def test_conv_too_small_input_names_the_axis_and_suggests_same():
    e = error("conv2d", f32("N", 3, 8, 1), filters=2, kernel=5)
    assert e.message == (
        "conv2d: the input is too small: axis 1 of f32[N, 3, 8, 1] has 3 cells, the kernel spans 5"
    )
    assert e.hint == 'use padding="same"'
    e = error("conv1d", f32("N", 3, 1), filters=2, kernel=3, dilation=2, padding=((0, 1),))
    assert e.message == (
        "conv1d: the input is too small: axis 1 of f32[N, 3, 1] has 3 cells "
        "(4 with padding), the dilated kernel spans 5"
    )
    assert e.hint is None


def test_conv_evaluate_keeps_float64():
    x = RNG.standard_normal((1, 5, 2))
    _, a = infer("conv1d", f32(1, 5, 2), filters=1, kernel=3, bias=False)
    y = OPS["conv1d"].evaluate([x, np.ones((3, 2, 1))], a)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y[0, :, 0], [x[0, i : i + 3].sum() for i in range(3)])
