"""Tensor arithmetic: broadcasting binary ops (`+ - * /`), `@` (matmul)."""

from __future__ import annotations

from ..ir import TensorType
from ..lazy import numpy as np
from .registry import ShapeError, broadcast_shapes, elementwise_flops, op

BINARY = {
    # name: (numpy meaning by name, operator in the language or None)
    "add": ("add", "+"),
    "sub": ("subtract", "-"),
    "mul": ("multiply", "*"),
    "div": ("divide", "/"),
    "maximum": ("maximum", None),
    "minimum": ("minimum", None),
}


def _binary_rule(name: str):
    def rule(a, b):
        if a.dtype != b.dtype:
            raise ShapeError(
                f"{name} needs operands of one dtype, got {a} and {b}",
                hint="insert `cast` to make the dtypes agree",
            )
        if a.dtype == "bool":  # ONNX has no bool arithmetic, and numpy's would be logic
            raise ShapeError(
                f"{name} needs numeric operands, got {a} and {b}",
                hint='cast them first: `x |> cast("i32")`',
            )
        if name == "div" and not a.is_float:  # `/` is true division: its result is not an int
            raise ShapeError(
                f"div needs floating-point operands, got {a} and {b}",
                hint='cast them first: `x |> cast("f32")`',
            )
        return TensorType(a.dtype, broadcast_shapes(name, a.shape, b.shape))

    rule.__doc__ = (
        f"elementwise {name} with numpy broadcasting, of two tensors of one numeric dtype "
        f"({'floating-point' if name == 'div' else 'not bool'})"
    )
    return rule


def _binary_eval(fn_name: str):
    def evaluate(inputs, attrs):
        a, b = inputs
        out = getattr(np, fn_name)(a, b)
        return out.astype(a.dtype) if a.dtype.kind == "f" else out

    return evaluate


for _name, (_fn, _sym) in BINARY.items():
    op(_name, evaluate=_binary_eval(_fn), flops=elementwise_flops(1), category="math")(
        _binary_rule(_name)
    )


def _matmul_flops(ins, out, attrs):
    return 2 * out.numel() * ins[0].shape[-1] if isinstance(ins[0].shape[-1], int) else out.numel()


@op(
    "matmul",
    evaluate=lambda ins, a: np.matmul(ins[0], ins[1]),
    flops=_matmul_flops,
    category="math",
)
def matmul(a, b):
    """Matrix product over the last two axes (`a @ b`), batch axes broadcast as in numpy; one
    numeric dtype (not bool)."""
    if a.dtype != b.dtype:
        raise ShapeError(f"matmul needs operands of one dtype, got {a} and {b}")
    if a.dtype == "bool":
        raise ShapeError(
            f"matmul needs numeric operands, got {a} and {b}",
            hint='cast them first: `x |> cast("i32")`',
        )
    if a.rank < 2 or b.rank < 2:
        raise ShapeError(f"matmul needs operands of rank >= 2, got {a} and {b}")
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError(
            f"matmul: inner dims differ, {a.shape[-1]} in {a} against {b.shape[-2]} in {b}"
        )
    batch = broadcast_shapes("matmul", a.shape[:-2], b.shape[:-2])
    return TensorType(a.dtype, batch + (a.shape[-2], b.shape[-1]))
