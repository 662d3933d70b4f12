"""Matmul-add fusion: `x @ W + b` with a known matrix W and bias b is a `dense` layer."""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from .rewrite import (
    Names,
    Weights,
    constant_node,
    infer,
    only_reader,
    rebuild,
    with_origin,
)


def fuse_matmul_add(
    graph: Graph, weights: Weights, *, keep_training: bool = False
) -> tuple[Graph, Weights]:
    """`add(matmul(x, W), b)` -> `dense(x, W, b)`, units = W's columns.

    1. W a `param` or `constant` of rank 2 `[K, U]`; x of rank >= 2 (the batch axes of x are
       dense's leading axes, so `[N, T, K] @ [K, U]` is `[N, T, K] |> dense(U)`).
    2. b a `param` or `constant` of shape `(U,)` is dense's bias as it is.
    3. b a `constant` of shape `()`, `(1,)` or `(1, ..., 1, U)` becomes a new constant of
       shape `(U,)` (named `<add>.bias`).
    4. `b + matmul(x, W)` likewise.
    The dense node takes the add's name (its readers keep reading it) and the matmul's span,
    and lists the add's span in its `origin`.
    Refused: `keep_training` (dense would make the bias a trainable weight); a matmul output
    with other readers or that is a graph output; W of another rank, or x of rank < 2; W or b
    not known (an input or a computed value); b that broadcasts along any axis but the last
    (it would change the result's shape); a non-float type.
    """
    if keep_training:
        return graph, weights
    names = Names(graph)
    replace: dict[str, tuple[Node, ...]] = {}
    for add in graph.nodes:
        if add.op != "add":
            continue
        a, b = add.inputs
        for mm_name, b_name in ((a, b), (b, a)):
            mm = graph[mm_name]
            if mm.op != "matmul" or only_reader(graph, mm_name) != add.name or a == b:
                continue
            x, w = (graph[i] for i in mm.inputs)
            bias = graph[b_name]
            if w.op not in ("param", "constant") or w.tensor_type.rank != 2:
                continue
            if x.tensor_type.rank < 2 or not add.tensor_type.is_float or add.type != mm.type:
                continue
            units = w.tensor_type.shape[1]
            assert isinstance(units, int), f"weight {w.name} has a symbolic dim"
            shape = bias.tensor_type.shape
            if bias.op not in ("param", "constant") or len(shape) > add.tensor_type.rank:
                continue
            if any(d != 1 for d in shape[:-1]) or (shape and shape[-1] not in (1, units)):
                continue
            inferred = infer("dense", [x.tensor_type], {"units": units, "bias": True})
            if inferred is None or inferred[0] != add.type:
                continue
            parts: list[Node] = []
            if shape != (units,):
                if bias.op != "constant":
                    continue
                value = np.broadcast_to(bias.attrs["value"].array.reshape(-1), (units,))
                bias = constant_node(names.fresh(f"{add.name}.bias"), value.copy(), bias)
                parts.append(bias)
            attrs = with_origin(inferred[1], mm, [add])
            dense = Node(
                add.name, "dense", (x.name, w.name, bias.name), attrs, add.type, mm.span, mm.calls
            )
            replace[mm.name] = ()
            replace[add.name] = (*parts, dense)
            break
    if not replace:
        return graph, weights
    return rebuild(graph, replace, {}), weights
