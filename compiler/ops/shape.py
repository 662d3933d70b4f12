"""Shape manipulation: flatten, reshape, transpose, concat, split, slice, squeeze, expand_dims,
broadcast_like, pad, upsample, resize and cast.

Layout is channels-last throughout, as in Keras; none of these ops has weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from ..ir import Dim, TensorType, dim_mul, dims_product, numpy_dtype
from ..lazy import numpy as np
from .conv import spatial_tuple
from .registry import (
    Infer,
    ShapeError,
    broadcast_shapes,
    expect_float,
    expect_rank,
    normalize_axis,
    op,
)


def _no_flops(ins: Sequence[TensorType], out: object, attrs: object) -> int:
    return 0  # data movement only


def _fmt(shape: Sequence[object]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _seq(values: Sequence[object]) -> str:
    return "(" + ", ".join(str(v) for v in values) + ")"


def _set(shape: tuple[Dim, ...], axis: int, dim: Dim) -> tuple[Dim, ...]:
    return shape[:axis] + (dim,) + shape[axis + 1 :]


# --- flatten, reshape, transpose -------------------------------------------------------------


@op(
    "flatten",
    evaluate=lambda ins, a: ins[0].reshape(ins[0].shape[0], math.prod(ins[0].shape[1:])),
    flops=_no_flops,
    category="shape",
)
def flatten(x):
    """Flatten all axes but the first (batch): `[N, d1, d2, ...] -> [N, d1*d2*...]`.

    Values keep their row-major order over the channels-last layout, exactly as Keras' Flatten,
    so a following `dense` takes Keras' kernel unchanged on every backend. A rank-1 input
    `[N]` becomes `[N, 1]`; symbolic dims give a symbolic product (`[N, T, 8] -> [N, T*8]`).
    """
    if x.rank < 1:
        raise ShapeError(f"flatten needs an input of rank >= 1 [N, ...], got {x}")
    return x.with_shape((x.shape[0], dims_product(x.shape[1:])))


@op(
    "reshape",
    evaluate=lambda ins, a: ins[0].reshape((ins[0].shape[0],) + tuple(a["shape"])),
    flops=_no_flops,
    category="shape",
)
def reshape(x, *, shape: tuple[int, ...]):
    """Reshape every sample to `shape`, which excludes the batch axis (as Keras' Reshape).

    `[N, 784] |> reshape((28, 28, 1))` gives `[N, 28, 28, 1]`. One entry may be -1: it takes
    whatever size makes the element count match, and may be symbolic (`[N, T, 64]` with
    `(-1, 32)` gives `[N, T*2, 32]`). Values keep their row-major order. The element count per
    sample must match; a symbolic count matches only through a -1.
    """
    if x.rank < 1:
        raise ShapeError(f"reshape needs an input of rank >= 1 [N, ...], got {x}")
    if any(d < 1 and d != -1 for d in shape) or shape.count(-1) > 1:
        raise ShapeError(f"reshape needs target dims >= 1 and at most one -1, got {_seq(shape)}")
    rest = x.shape[1:]
    count = dims_product(rest)
    target = _fmt((x.shape[0], *shape))
    known = math.prod(d for d in shape if d != -1)
    fixed = math.prod(d for d in rest if isinstance(d, int))
    symbols = [d for d in rest if not isinstance(d, int)]
    if -1 not in shape:
        if symbols or fixed != known:
            raise ShapeError(
                f"reshape cannot turn {x} into {target}: {count} values per sample against {known}",
                hint="write -1 for the dim that takes the symbolic size" if symbols else None,
            )
        return x.with_shape((x.shape[0], *shape))
    if fixed % known:
        raise ShapeError(
            f"reshape cannot turn {x} into {target}: {count} values per sample is "
            f"not a multiple of {known}"
        )
    fill = dim_mul(dims_product(symbols), fixed // known)
    return x.with_shape((x.shape[0], *(fill if d == -1 else d for d in shape)))


@op(
    "transpose",
    evaluate=lambda ins, a: np.transpose(ins[0], a["perm"]),
    flops=_no_flops,
    category="shape",
)
def transpose(x, *, perm: tuple[int, ...]):
    """Permute the axes as numpy's transpose: output axis i is input axis `perm[i]`.

    `perm` lists every axis, the batch axis 0 included (`[N, T, C] |> transpose((0, 2, 1))`
    gives `[N, C, T]`). Negative entries count from the end; `perm` is stored non-negative.
    """
    if len(perm) != x.rank:
        raise ShapeError(f"transpose needs a perm of {x.rank} axes for {x}, got {_seq(perm)}")
    for p in perm:
        if not -x.rank <= p < x.rank:
            raise ShapeError(
                f"transpose: axis {p} in perm {_seq(perm)} is out of range for rank {x.rank}"
            )
    canon = tuple(p % x.rank for p in perm)
    if sorted(canon) != list(range(x.rank)):
        raise ShapeError(
            f"transpose: perm {_seq(perm)} is not a permutation of the axes 0..{x.rank - 1}"
        )
    return Infer(x.with_shape(x.shape[p] for p in canon), {"perm": canon})


# --- concat, split ---------------------------------------------------------------------------


@op(
    "concat",
    evaluate=lambda ins, a: np.concatenate(ins, axis=a["axis"]),
    flops=_no_flops,
    category="shape",
)
def concat(*xs, axis: int = -1):
    """Concatenate tensors along `axis` (default the last), as Keras' Concatenate.

    All inputs have one dtype and one rank, and equal sizes on every other axis (a symbolic
    dim matches only the same symbol). The sizes along `axis` must be known when there are
    several inputs. `axis` is stored non-negative.
    """
    if not xs:
        raise ShapeError("concat needs at least one input")
    first = xs[0]
    for x in xs[1:]:
        if x.dtype != first.dtype:
            raise ShapeError(
                f"concat needs inputs of one dtype, got {first} and {x}",
                hint="insert `cast` to make the dtypes agree",
            )
        if x.rank != first.rank:
            raise ShapeError(f"concat needs inputs of one rank, got {first} and {x}")
    axis = normalize_axis("concat", axis, first.rank)
    for x in xs[1:]:
        for i, (a, b) in enumerate(zip(first.shape, x.shape, strict=True)):
            if i != axis and a != b:
                raise ShapeError(
                    f"concat along axis {axis}: dim {i} differs, {a} in {first} against {b} in {x}"
                )
    total = first.shape[axis]
    if len(xs) > 1:
        for x in xs:
            if not isinstance(x.shape[axis], int):
                raise ShapeError(
                    f"concat along axis {axis} needs known sizes there, got "
                    f"symbol `{x.shape[axis]}` in {x}"
                )
        total = sum(x.shape[axis] for x in xs)
    return Infer(first.with_shape(_set(first.shape, axis, total)), {"axis": axis})


def _split_eval(inputs, attrs):
    cuts = np.cumsum(attrs["sections"])[:-1]
    return tuple(np.split(inputs[0], cuts, axis=attrs["axis"]))


@op("split", evaluate=_split_eval, flops=_no_flops, category="shape")
def split(x, *, sections: int | tuple[int, ...] = 2, axis: int = -1):
    """Split along `axis` (default the last) into several tensors: a multi-result op.

    `sections=k` gives k equal parts (k must divide the size); a tuple gives the size of each
    part (they must add up to the size): sizes as in tf.split and ONNX Split, not numpy's split
    indices. The size along `axis` must be known. Stored canonically as the tuple of sizes and
    a non-negative `axis`.
    """
    axis = normalize_axis("split", axis, x.rank)
    dim = x.shape[axis]
    if not isinstance(dim, int):
        raise ShapeError(f"split needs a known size on axis {axis}, got symbol `{dim}` in {x}")
    if isinstance(sections, int):
        if sections < 1:
            raise ShapeError(f"split needs sections >= 1, got {sections}")
        if dim % sections:
            raise ShapeError(
                f"split: {sections} sections do not divide dim {dim} of axis {axis} in {x}"
            )
        sizes = (dim // sections,) * sections
    else:
        sizes = tuple(sections)
        if not sizes or min(sizes) < 1:
            raise ShapeError(f"split needs section sizes >= 1, got {_seq(sizes)}")
        if sum(sizes) != dim:
            raise ShapeError(
                f"split: sections {_seq(sizes)} add up to {sum(sizes)}, not to dim "
                f"{dim} of axis {axis} in {x}"
            )
    types = tuple(x.with_shape(_set(x.shape, axis, s)) for s in sizes)
    return Infer(types, {"sections": sizes, "axis": axis})


# --- slice, squeeze, expand_dims -------------------------------------------------------------


def _slice_text(start: int, end: int | None, step: int) -> str:
    return f"{start}:{'' if end is None else end}" + ("" if step == 1 else f":{step}")


def _slice_eval(inputs, attrs):
    x = inputs[0]
    index = [slice(None)] * x.ndim
    spec = zip(attrs["axes"], attrs["starts"], attrs["ends"], attrs["steps"], strict=True)
    for a, start, end, step in spec:
        index[a] = slice(start, end, step)
    return x[tuple(index)].copy()


@op("slice", evaluate=_slice_eval, flops=_no_flops, category="shape")
def slice_(
    x,
    *,
    axes: tuple[int, ...],
    starts: tuple[int, ...],
    ends: tuple[int | None, ...],
    steps: tuple[int, ...] = (),
):
    """Take `start:end:step` along each listed axis, with Python's slice semantics.

    Per axis in `axes`: negative `starts`/`ends` count from the end, an end of `none` runs to
    the end (to the front for a negative step), and out-of-range values clamp as in Python.
    `steps` defaults to all 1. `x[:, 1:3, ::2]` is this op; `x[:, 0]` is a slice then
    `squeeze`. A symbolic dim can be taken whole (`0:none:1`), reversed whole (`::-1`, stored
    as `-1:none:-1`) or as a window of fixed size,
    both bounds counted from the same end (`x[:, -1]`, `x[:, -4:]`, `x[:, 2:5]`), assuming the
    axis is long enough at run time. No slice may be empty. `axes` is stored non-negative
    and `steps` explicitly.
    """
    n = len(axes)
    if len(starts) != n or len(ends) != n or len(steps) not in (0, n):
        raise ShapeError(
            f"slice needs one start, end and step per axis, got {n} axes, "
            f"{len(starts)} starts, {len(ends)} ends and {len(steps)} steps"
        )
    steps = tuple(steps) or (1,) * n
    canon = tuple(normalize_axis("slice", a, x.rank) for a in axes)
    shape = list(x.shape)
    for a, start, end, step in zip(canon, starts, ends, steps, strict=True):
        if canon.count(a) > 1:
            raise ShapeError(f"slice lists axis {a} twice")
        if step == 0:
            raise ShapeError(f"slice: the step on axis {a} must not be 0")
        dim = x.shape[a]
        if not isinstance(dim, int):
            if (start, end, step) in ((0, None, 1), (-1, None, -1)):
                continue  # the whole axis, or the whole axis reversed (`x[:, ::-1]`)
            # A window whose size does not depend on the dim (`x[:, -1]`, `x[:, 2:5]`); the
            # axis must be at least that long at run time.
            same_side = step == 1 and (
                start >= 0
                and end is not None
                and end >= 0
                or start < 0
                and (end is None or end < 0)
            )
            if not same_side or (end or 0) - start < 1:
                raise ShapeError(
                    f"slice cannot take {_slice_text(start, end, step)} of symbolic "
                    f"dim `{dim}` (axis {a} of {x}): its size would depend on `{dim}`",
                    hint="take a fixed-size window (both bounds from the same end) "
                    "or the whole axis",
                )
            shape[a] = (end or 0) - start
            continue
        shape[a] = len(range(*slice(start, end, step).indices(dim)))
        if shape[a] == 0:
            raise ShapeError(
                f"slice {_slice_text(start, end, step)} of axis {a} (size {dim}) in {x} is empty"
            )
    return Infer(x.with_shape(shape), {"axes": canon, "steps": steps})


@op(
    "squeeze",
    evaluate=lambda ins, a: np.squeeze(ins[0], axis=a["axes"]),
    flops=_no_flops,
    category="shape",
)
def squeeze(x, *, axes: int | tuple[int, ...]):
    """Remove the listed axes, each of size 1 (`[N, 1, C] |> squeeze(1)` gives `[N, C]`).

    `axes` is an int or a tuple; it is stored as a sorted tuple of non-negative axes.
    """
    given = (axes,) if isinstance(axes, int) else tuple(axes)
    if not given:
        raise ShapeError("squeeze needs at least one axis")
    canon = sorted(normalize_axis("squeeze", a, x.rank) for a in given)
    for a in canon:
        if canon.count(a) > 1:
            raise ShapeError(f"squeeze lists axis {a} twice")
        if x.shape[a] != 1:
            raise ShapeError(f"squeeze: axis {a} of {x} has size {x.shape[a]}, not 1")
    shape = [d for i, d in enumerate(x.shape) if i not in canon]
    return Infer(x.with_shape(shape), {"axes": tuple(canon)})


@op(
    "expand_dims",
    evaluate=lambda ins, a: np.expand_dims(ins[0], a["axis"]),
    flops=_no_flops,
    category="shape",
)
def expand_dims(x, *, axis: int):
    """Insert an axis of size 1 at position `axis` of the output, as numpy's expand_dims.

    `axis` ranges over -(rank + 1) .. rank (`-1` appends); it is stored non-negative.
    """
    axis = normalize_axis("expand_dims", axis, x.rank + 1)
    return Infer(x.with_shape(x.shape[:axis] + (1,) + x.shape[axis:]), {"axis": axis})


@op(
    "broadcast_like",
    evaluate=lambda ins, a: np.broadcast_to(
        ins[0], np.broadcast_shapes(ins[0].shape, ins[1].shape)
    ).copy(),
    flops=_no_flops,
    category="shape",
)
def broadcast_like(x, like):
    """`x` repeated to the shape that `x` and `like` broadcast to (numpy's rules).

    Only `like`'s shape is read, never its values; the result has `x`'s dtype. It gives a
    weight a batch axis, as Keras' `ops.broadcast_to(token, [batch, 1, dim])`: a vision
    transformer's class token `cls = weight([1, 1, D])` goes before the patches `x [N, T, D]`
    with `concat(broadcast_like(cls, x[:, :1]), x, axis=1)`. A symbolic dim broadcasts only
    against 1 or the same symbol.
    """
    return x.with_shape(broadcast_shapes("broadcast_like", x.shape, like.shape))


# --- pad -------------------------------------------------------------------------------------


def _pad_eval(inputs, attrs):
    x, mode = inputs[0], attrs["mode"]
    if mode == "constant":
        return np.pad(x, attrs["pads"], mode="constant", constant_values=attrs["value"])
    return np.pad(x, attrs["pads"], mode=mode)


@op("pad", evaluate=_pad_eval, flops=_no_flops, category="shape")
def pad(
    x,
    *,
    pads: tuple[tuple[int, int], ...],
    mode: Literal["constant", "reflect", "edge"] = "constant",
    value: float = 0.0,
):
    """Pad every axis by `(before, after)` cells: `pads` has one pair per axis, batch included.

    `[N, 28, 28, 1] |> pad(((0, 0), (2, 2), (2, 2), (0, 0)))` gives `[N, 32, 32, 1]` (Keras'
    ZeroPadding2D((2, 2)) lists the spatial pairs only). Modes, as numpy's np.pad and ONNX Pad:
    "constant" fills with `value`; "reflect" mirrors without repeating the edge value
    (`[1, 2, 3]` padded by 2 before is `[3, 2, 1, 2, 3]`; pads must be smaller than the dim, as
    in TF); "edge" repeats the edge value (TF's "SYMMETRIC" is different: it repeats the edge
    then mirrors). `value` applies to "constant" only. A symbolic dim cannot be padded.
    """
    if len(pads) != x.rank:
        raise ShapeError(
            f"pad needs one (before, after) pair per axis, {x.rank} for {x}, got {len(pads)}"
        )
    if mode != "constant" and value != 0:
        raise ShapeError(
            f'pad value applies only to mode "constant", got value {value} with mode "{mode}"'
        )
    shape = []
    for i, ((before, after), dim) in enumerate(zip(pads, x.shape, strict=True)):
        if before < 0 or after < 0:
            raise ShapeError(f"pad needs pads >= 0, got ({before}, {after}) on axis {i}")
        if before == after == 0:
            shape.append(dim)
            continue
        if not isinstance(dim, int):
            raise ShapeError(f"pad cannot pad symbolic dim `{dim}` (axis {i} of {x})")
        if mode == "reflect" and max(before, after) >= dim:
            raise ShapeError(
                f'pad mode "reflect" needs pads smaller than the dim, got '
                f"({before}, {after}) on axis {i} of size {dim}"
            )
        shape.append(dim + before + after)
    return x.with_shape(shape)


# --- upsample, resize ------------------------------------------------------------------------


def _source_index(in_size: int, out_size: int, method: str):
    """TF's half-pixel source coordinates, in float32 as TF computes them."""
    scale = np.float32(in_size) / np.float32(out_size)
    centers = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale
    if method == "nearest":
        return np.minimum(np.floor(centers).astype(np.int64), in_size - 1)
    src = centers - np.float32(0.5)
    lower = np.maximum(np.floor(src).astype(np.int64), 0)
    upper = np.minimum(np.ceil(src).astype(np.int64), in_size - 1)
    return lower, upper, (src - np.floor(src)).astype(np.float32)


def _resize(x: np.ndarray, size: Sequence[int], method: str) -> np.ndarray:
    (h, w), dt = x.shape[1:3], np.promote_types(x.dtype, np.float32)
    if method == "nearest":
        rows, cols = _source_index(h, size[0], "nearest"), _source_index(w, size[1], "nearest")
        return x[:, rows][:, :, cols]
    y0, y1, fy = _source_index(h, size[0], "bilinear")
    x0, x1, fx = _source_index(w, size[1], "bilinear")
    xf = x.astype(dt)
    fx, fy = fx.astype(dt)[:, None], fy.astype(dt)[:, None, None]
    top = xf[:, y0][:, :, x0] + (xf[:, y0][:, :, x1] - xf[:, y0][:, :, x0]) * fx
    bottom = xf[:, y1][:, :, x0] + (xf[:, y1][:, :, x1] - xf[:, y1][:, :, x0]) * fx
    return (top + (bottom - top) * fy).astype(x.dtype)


def _upsample_eval(inputs, attrs):
    x, size = inputs[0], attrs["size"]
    if attrs["method"] == "bilinear":
        return _resize(x, (x.shape[1] * size[0], x.shape[2] * size[1]), "bilinear")
    for i, s in enumerate(size):
        x = np.repeat(x, s, axis=1 + i)
    return x


def _resize_flops(ins, out, attrs):
    return (7 if attrs["method"] == "bilinear" else 0) * out.numel()  # 3 lerps of 2, and 1


@op("upsample", evaluate=_upsample_eval, flops=_resize_flops, category="shape")
def upsample(
    x, *, size: int | tuple[int, ...] = 2, method: Literal["nearest", "bilinear"] = "nearest"
):
    """Scale the spatial axes of `[N, spatial..., C]` up by integer factors `size` (default 2).

    Rank 3, 4 and 5 inputs are Keras' UpSampling1D, UpSampling2D and UpSampling3D: `size` is
    one int for every spatial axis or one per axis (stored as a tuple). "nearest" repeats each
    value `size` times per axis; "bilinear" (rank 4 only) is `resize` to `(H*sh, W*sw)` with
    half-pixel centers, as Keras' UpSampling2D(interpolation="bilinear").
    """
    if x.rank not in (3, 4, 5):
        raise ShapeError(f"upsample needs a rank-3, 4 or 5 input [N, spatial..., C], got {x}")
    n = x.rank - 2
    sizes = spatial_tuple("upsample", size, n, "size")
    if method == "bilinear":
        expect_float("upsample", x)
        if n != 2:
            raise ShapeError(
                f'upsample method "bilinear" needs a rank-4 input [N, H, W, C], got {x}'
            )
    spatial = tuple(dim_mul(d, s) for d, s in zip(x.shape[1:-1], sizes, strict=True))
    return Infer(x.with_shape((x.shape[0], *spatial, x.shape[-1])), {"size": sizes})


@op(
    "resize",
    evaluate=lambda ins, a: _resize(ins[0], a["size"], a["method"]),
    flops=_resize_flops,
    category="shape",
)
def resize(x, *, size: tuple[int, int], method: Literal["nearest", "bilinear"] = "bilinear"):
    """Resize images `[N, H, W, C]` to `[N, H', W', C]`, `size = (H', W')`, as Keras' Resizing.

    The semantics are tf.image.resize without antialias (half-pixel centers), per axis with
    `scale = in / out` computed in float32:
    - "bilinear" (default): output index i reads source coordinate `s = (i + 0.5) * scale - 0.5`
      and blends `x[floor(s)]` and `x[ceil(s)]` (both clamped to 0 .. in-1) with weight
      `s - floor(s)` on the second; along W first, then along H, as TF does.
    - "nearest": output index i reads `x[min(floor((i + 0.5) * scale), in - 1)]`.
    In ONNX terms: Resize with coordinate_transformation_mode "half_pixel", mode "linear" for
    bilinear, and nearest_mode "round_prefer_ceil" for nearest. There is no antialiasing when
    shrinking, as in Keras' default.
    """
    expect_rank("resize", x, 4, what="input [N, H, W, C]")
    expect_float("resize", x)
    if min(size) < 1:
        raise ShapeError(f"resize needs sizes >= 1, got {_seq(size)}")
    return x.with_shape((x.shape[0], *size, x.shape[3]))


# --- cast ------------------------------------------------------------------------------------


@op(
    "cast",
    evaluate=lambda ins, a: ins[0].astype(numpy_dtype(a["dtype"])),
    flops=_no_flops,
    category="shape",
)
def cast(x, *, dtype: Literal["f32", "f16", "bf16", "f64", "i32", "i64", "bool"]):
    """Convert to `dtype`: floats to ints truncate toward zero, nonzero becomes true for bool.

    A float out of an integer type's range has no defined result (as in TF and ONNX).
    """
    return x.with_dtype(dtype)
