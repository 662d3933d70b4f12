"""Reductions: reduce_sum, reduce_mean, reduce_max, reduce_min, reduce_prod and argmax.

Axis conventions are numpy's; every rule stores its axes canonically (sorted, non-negative).
"""

from __future__ import annotations

from ..ir import TensorType
from ..lazy import numpy as np
from .registry import Infer, ShapeError, normalize_axis, op

REDUCTIONS = {
    # name: (numpy function's name, what it computes, dtypes it refuses)
    "reduce_sum": ("sum", "sum", ("bool",)),
    "reduce_mean": ("mean", "mean", ("bool", "i32", "i64")),
    "reduce_max": ("max", "maximum", ()),
    "reduce_min": ("min", "minimum", ()),
    "reduce_prod": ("prod", "product", ("bool",)),
}


def _reduce_rule(name: str, what: str, refused: tuple[str, ...]):
    def rule(x, *, axis: int | tuple[int, ...] | None = None, keepdims: bool = False):
        if x.dtype in refused:
            kind = "floating-point" if "i32" in refused else "numeric"
            raise ShapeError(f"{name} needs a {kind} input, got {x}")
        given = range(x.rank) if axis is None else (axis,) if isinstance(axis, int) else axis
        axes = sorted(normalize_axis(name, a, x.rank) for a in given)
        for a in axes:
            if axes.count(a) > 1:
                raise ShapeError(f"{name} lists axis {a} twice")
        if keepdims:
            shape = [1 if i in axes else d for i, d in enumerate(x.shape)]
        else:
            shape = [d for i, d in enumerate(x.shape) if i not in axes]
        return Infer(x.with_shape(shape), {"axis": tuple(axes)})

    rule.__doc__ = f"""The {what} of `x` over `axis`, with numpy's axis semantics.

    `axis` is an int, a tuple of ints, or none (the default) for all axes; it is stored as the
    sorted tuple of non-negative axes, so an empty tuple means no axis is reduced (note: ONNX
    reduces all axes for empty axes unless noop_with_empty_axes=1). `keepdims=true` keeps the
    reduced axes with size 1. The output has the input's dtype; f16 accumulates in float32.
    """
    return rule


def _reduce_eval(fn_name: str):
    def evaluate(inputs, attrs):
        x = inputs[0]
        fn = getattr(np, fn_name)
        accumulates = fn_name in ("sum", "mean", "prod")
        extra = {"dtype": np.float32} if accumulates and x.dtype == np.float16 else {}
        out = fn(x, axis=tuple(attrs["axis"]), keepdims=attrs["keepdims"], **extra)
        return np.asarray(out, dtype=x.dtype)

    return evaluate


for _name, (_fn, _what, _refused) in REDUCTIONS.items():
    op(
        _name,
        evaluate=_reduce_eval(_fn),
        flops=lambda ins, out, a: ins[0].numel(),
        category="reduce",
    )(_reduce_rule(_name, _what, _refused))


@op(
    "argmax",
    evaluate=lambda ins, a: np.argmax(ins[0], axis=a["axis"]).astype(np.int64),
    flops=lambda ins, out, a: ins[0].numel(),
    category="reduce",
)
def argmax(x, *, axis: int = -1):
    """The index of the largest value along `axis` (default the last), as i64; the axis is removed.
    The input is numeric (not bool).

    Ties go to the first index, as in numpy, TF and ONNX (select_last_index=0). `axis` is
    stored non-negative.
    """
    if x.dtype == "bool":
        raise ShapeError(
            f"argmax needs a numeric input, got {x}", hint='cast it first: `x |> cast("i32")`'
        )
    axis = normalize_axis("argmax", axis, x.rank)
    return Infer(TensorType("i64", x.shape[:axis] + x.shape[axis + 1 :]), {"axis": axis})
