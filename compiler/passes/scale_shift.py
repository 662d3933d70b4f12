"""Scale-and-shift folding: a per-channel multiply or add by a constant after a convolution
or dense goes into its kernel and bias."""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node, TensorType
from .batchnorm import CHANNEL_LAYOUT, channels, kernel_index, scale_kernel
from .rewrite import (
    Names,
    Weights,
    folded_weight_name,
    known_value,
    new_param,
    only_reader,
    op_attrs,
    rebuild,
    with_origin,
    with_weights,
)


def fold_scale_shift(
    graph: Graph, weights: Weights, *, keep_training: bool = False
) -> tuple[Graph, Weights]:
    """A multiply or add by a per-channel constant `c` after conv/dense `y = conv(x, W, b)`:

    1. `y * c`, `c * y` -> `conv(x, W * c, b * c)` (c along the kernel's output-channel axis,
       as in fold_batchnorm: the last axis, depthwise `[C, M]`, or transposed axis -2).
    2. `y / c` -> `conv(x, W / c, b / c)`, when no entry of c is 0.
    3. `y + c`, `c + y` -> `conv(x, W, b + c)`; a conv without bias gets one.
    4. `y - c` -> `conv(x, W, b - c)`.
    5. Chains fold to the end: `(conv(x) * a + b) * d` is one conv.
    `c` is per-channel when it is a `constant` whose shape, leading 1s aside, is `()`, `(1,)`
    or `(C,)` for the C output channels, so the result has the conv's own type. New weights
    are named as in fold_batchnorm (`<weight>_folded`); the conv keeps its name and span, and
    the arithmetic node's span joins its `origin`.
    Refused: `keep_training` (the kernel keeps training on its own); a conv output with other
    readers or that is a graph output; `c` a weight (its value may change after compiling)
    or any non-constant; `c` that broadcasts over more than the channel axis (it would change
    the result's shape or mix positions); a non-float type.
    """
    if keep_training:
        return graph, weights
    while True:
        new, new_weights = _fold_once(graph, weights)
        if new is graph:
            return graph, weights
        graph, weights = new, new_weights


def _fold_once(graph: Graph, weights: Weights) -> tuple[Graph, Weights]:
    names = Names(graph)
    replace: dict[str, tuple[Node, ...]] = {}
    rename: dict[str, str] = {}
    added: dict[str, np.ndarray] = {}
    for node in graph.nodes:
        if node.op not in ("mul", "div", "add", "sub"):
            continue
        a, b = node.inputs
        for y_name, c_name in ((a, b), (b, a)) if node.op in ("mul", "add") else ((a, b),):
            y = graph[y_name]
            if y.op not in CHANNEL_LAYOUT or y.name in replace or y_name == c_name:
                continue
            if only_reader(graph, y.name) != node.name or graph[c_name].op != "constant":
                continue
            if node.type != y.type or not y.tensor_type.is_float:
                continue
            c = _per_channel(graph[c_name].attrs["value"].array, y.tensor_type)
            ki = kernel_index(y.op)
            kernel = known_value(graph, weights, y.inputs[ki])
            bias = known_value(graph, weights, y.inputs[ki + 1]) if y.attrs["bias"] else 0.0
            if c is None or kernel is None or bias is None:
                continue
            if node.op == "div" and np.any(c == 0):
                continue
            shape = (channels(y),)
            c = np.broadcast_to(1.0 / c if node.op == "div" else c, shape)
            bias = np.broadcast_to(np.asarray(bias, np.float64), shape)
            inputs = list(y.inputs[: ki + 1])
            parts: list[Node] = []
            if node.op in ("mul", "div"):
                old = graph[y.inputs[ki]]
                k_name = folded_weight_name(graph, names, old.name, y.name, replace)
                k_node, added[k_name] = new_param(
                    k_name,
                    scale_kernel(y.op, kernel, c, old.tensor_type.dtype),
                    old.tensor_type.dtype,
                    old,
                )
                parts.append(k_node)
                inputs[ki] = k_name
                new_bias = bias * c
            else:
                new_bias = bias + c if node.op == "add" else bias - c
            old_bias = graph[y.inputs[ki + 1]] if y.attrs["bias"] else y
            b_name = folded_weight_name(
                graph,
                names,
                old_bias.name if y.attrs["bias"] else f"{y.name}.bias",
                y.name,
                replace,
            )
            b_node, added[b_name] = new_param(b_name, new_bias, y.tensor_type.dtype, old_bias)
            attrs = with_origin({**op_attrs(y), "bias": True}, y, [node])
            replace[y.name] = (*parts, b_node, y.with_(inputs=(*inputs, b_name), attrs=attrs))
            replace[node.name] = ()
            rename[node.name] = y.name
            break
    if not replace:
        return graph, weights
    return rebuild(graph, replace, rename), with_weights(weights, added)


def _per_channel(c: np.ndarray, t: TensorType) -> np.ndarray | None:
    """`c` as float64 of shape () or (C,) when it varies along the last axis only, else None."""
    if c.ndim > t.rank or any(d != 1 for d in c.shape[:-1]):
        return None
    if c.ndim and c.shape[-1] not in (1, t.shape[-1]):
        return None
    return np.asarray(c, np.float64).reshape(c.shape[-1:] if c.ndim else ())
