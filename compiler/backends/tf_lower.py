"""Lowering netc's IR to raw TensorFlow ops: `TfContext` (what one trace builds: each IR
value's TF tensor, the weights as constants), the one rule table `RULES`, and the helpers the
rules of `tf_rules`, `tf_conv` and `tf_sequence` share (padding, float32 compute for half
dtypes). TensorFlow comes in as `ctx.tf`; nothing here imports it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..ir import DTYPES, Dim, Graph, Node, TensorType
from . import GraphContext, Rules

RULES = Rules("tf")
# netc's dtypes by the framework's names: numpy's, TensorFlow's and Keras' are one
TF_DTYPES = DTYPES
HALF = ("f16", "bf16")


# --- the context -----------------------------------------------------------------------------


def tf_dtype(tf: Any, node_or_dtype: Node | str) -> Any:
    dtype = node_or_dtype if isinstance(node_or_dtype, str) else node_or_dtype.tensor_type.dtype
    return tf.as_dtype(TF_DTYPES[dtype])


def tf_shape(t: TensorType) -> list[int | None]:
    return [d if isinstance(d, int) else None for d in t.shape]


_SCOPE_CHARS = re.compile(r"[^A-Za-z0-9_.\-]")


def scope_name(name: str, reserved: set[str]) -> str:
    """A TF name scope for IR value `name`: TF's characters only, and never an input's or an
    output's name, which name the signature's placeholders and Identity ops."""
    scope = _SCOPE_CHARS.sub("_", name)
    if not scope[:1].isalnum():
        scope = "v" + scope
    return f"{scope}_value" if scope in reserved else scope


class TfContext(GraphContext):
    """What one trace builds: each IR value's TF tensor (a tuple for a multi-result op), and
    the weight constants made so far. `xla`: the function is jit-compiled, so rules pick the
    forms XLA compiles well (and avoid those it cannot compile)."""

    def __init__(
        self,
        tf: Any,
        graph: Graph,
        weights: Mapping[str, np.ndarray],
        feeds: Mapping[str, Any],
        reserved: set[str],
        *,
        xla: bool = False,
    ):
        self.tf = tf
        self.xla = xla
        self.graph = graph
        self.weights = weights
        self.values: dict[str, Any] = dict(feeds)
        self.consts: dict[tuple[str, str], Any] = {}
        self.reserved = reserved

    def dtype(self, dtype: str) -> Any:
        return self.tf.as_dtype(TF_DTYPES[dtype])

    def const(self, name: str, array: np.ndarray | None = None, form: str = "") -> Any:
        """Weight or constant `name` as a TF constant in its IR dtype, in the `form` the rule
        made of it (`array`); each form is made once per trace."""
        key = (name, form)
        if key not in self.consts:
            value = self.array(name) if array is None else np.asarray(array)
            self.consts[key] = self.tf.constant(value, dtype=self.dtype(self.type(name).dtype))
        return self.consts[key]

    def constant(self, array: Any, dtype: str) -> Any:
        """A helper constant (a scale, a mask) in netc dtype `dtype`."""
        return self.tf.constant(np.asarray(array), dtype=self.dtype(dtype))

    def get(self, name: str) -> Any:
        """IR value `name` as a tensor (weights and constants as TF constants)."""
        if self.is_data(name):
            return self.const(name)
        value = self.values[name]
        assert not isinstance(value, tuple), f"`{name}` is a tuple, read it through `item`"
        return value

    def result(self, key: tuple[str, int | None]) -> Any:
        """Result `key[1]` of IR value `key[0]` (the value itself when None)."""
        value = self.values[key[0]]
        return value if key[1] is None else value[key[1]]

    def dim(self, x: Any, t: TensorType, axis: int) -> Any:
        """Axis `axis` of `x` (of IR type `t`): an int when known, else a scalar tensor."""
        d = t.shape[axis]
        return d if isinstance(d, int) else self.tf.shape(x)[axis]

    def lower(self, node: Node) -> None:
        """Run `node`'s rule inside a name scope named after it; record its result(s)."""
        if node.op in ("input", "param", "constant"):
            return
        if node.op == "item":
            self.values[node.name] = self.values[node.inputs[0]][node.attrs["index"]]
            return
        rule = RULES.rule(node)
        with self.tf.name_scope(scope_name(node.name, self.reserved)):
            try:
                result = rule(self, node)
            except (TypeError, ValueError) as e:  # TF's shape and dtype checks while tracing
                raise RULES.cannot(node, f": TensorFlow refuses it: {first_line(e)}") from None
        results = result if isinstance(node.type, tuple) else (result,)
        types = node.type if isinstance(node.type, tuple) else (node.tensor_type,)
        assert isinstance(results, tuple) and len(results) == len(types), node.name
        for value, t in zip(results, types, strict=True):
            if value.dtype != self.dtype(t.dtype) or not value.shape.is_compatible_with(
                tf_shape(t)
            ):
                raise RULES.cannot(
                    node,
                    f": its rule made a {value.dtype.name} tensor of shape {value.shape}, netc's "
                    f"type is {t} (a bug in the tf backend)",
                )
        self.values[node.name] = result


# --- helpers ---------------------------------------------------------------------------------


def first_line(e: BaseException) -> str:
    lines = [s.strip() for s in str(e).splitlines() if s.strip()]
    return lines[0] if lines else type(e).__name__


def in_float32(ctx: TfContext, x: Any, dtype: str, compute: Callable[[Any], Any]) -> Any:
    """`compute(x)` in float32 for an f16/bf16 `x` (cast back after), as netc's reference
    does for normalizations and accumulating reductions; as it is for other dtypes."""
    if dtype not in HALF:
        return compute(x)
    tf = ctx.tf
    return tf.cast(compute(tf.cast(x, tf.float32)), x.dtype)


def _same_pads(
    spatial: Sequence[Dim], window: Sequence[int], stride: Sequence[int]
) -> tuple[tuple[int, int], ...] | None:
    """TF's "SAME" pads for these sizes (None when a symbolic size with stride > 1 hides them)."""
    out = []
    for d, k, s in zip(spatial, window, stride, strict=True):
        if isinstance(d, int):
            total = max((-(-d // s) - 1) * s + k - d, 0)
        elif s == 1:
            total = k - 1
        else:
            return None
        out.append((total // 2, total - total // 2))
    return tuple(out)


def named_padding(
    spatial: Sequence[Dim],
    window: Sequence[int],
    stride: Sequence[int],
    pads: Sequence[tuple[int, int]],
) -> str | None:
    """TF's padding name, "VALID" or "SAME", when it means exactly `pads`; else None."""
    pairs = tuple((int(b), int(a)) for b, a in pads)
    if all(p == (0, 0) for p in pairs):
        return "VALID"
    if _same_pads(spatial, window, stride) == pairs:
        return "SAME"
    return None


def pad_spatial(ctx: TfContext, x: Any, pads: Sequence[tuple[int, int]], value: float) -> Any:
    """`x` [N, *spatial, C] padded by `pads` on the spatial axes with `value`."""
    if all(tuple(p) == (0, 0) for p in pads):
        return x
    tf = ctx.tf
    paddings = [[0, 0], *[list(p) for p in pads], [0, 0]]
    return tf.pad(x, paddings, constant_values=tf.constant(value, x.dtype))
