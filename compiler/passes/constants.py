"""Constant folding under a size budget: ops whose inputs are all known become `constant` nodes,
computed by the op's own `evaluate` (the reference runtime's), so the two cannot disagree."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ir import Const, Graph, Node, concrete_shape, numpy_dtype
from ..ops import OPS
from .rewrite import Weights, output_values, rebuild

MAX_FOLDED_BYTES = 1 << 20  # the largest value folding may create
MAX_GROWTH_BYTES = 1 << 20  # how much folding may grow the model's constants and weights


def fold_constants(
    graph: Graph,
    weights: Weights,
    *,
    freeze_weights: bool = False,
    max_bytes: int = MAX_FOLDED_BYTES,
    max_growth: int = MAX_GROWTH_BYTES,
) -> tuple[Graph, Weights]:
    """Replace each op whose inputs are all constants by a `constant` holding its value.

    1. An op reading only `constant` nodes (and, with `freeze_weights`, `param` nodes, whose
       values then come from `weights`) is evaluated with its op's `evaluate` and becomes a
       `constant` with the same name, type and span.
    2. The `item`s of a folded multi-result op become constants; the op itself is left to
       dead-node elimination.
    3. Folding chains: a node reading values folded by case 1 or 2 folds in turn.
    Refused, leaving the op as it is: a value over `max_bytes` (1 MiB); a fold that would grow
    the bytes of all constants and weights by more than `max_growth` (1 MiB) in total, counting
    the inputs a fold leaves unread as freed; a value whose shape is not its type's (a compiler
    bug caught early); an op whose `evaluate` raises (the runtime raises it again).
    Params are not constants unless `freeze_weights`: a weight may be replaced after compiling.
    """
    values: dict[str, Any] = {}
    for node in graph.nodes:
        if node.op == "constant":
            values[node.name] = node.attrs["value"].array
        elif node.op == "param" and freeze_weights and node.name in weights:
            values[node.name] = np.asarray(weights[node.name])
    unread = {name: len(readers) for name, readers in graph.readers.items()}
    outputs = output_values(graph)
    growth = 0
    replace: dict[str, tuple[Node, ...]] = {}
    for node in graph.nodes:
        if (
            node.op in ("input", "param", "constant")
            or not node.inputs
            or not all(i in values for i in node.inputs)
        ):
            continue
        if node.op == "item":
            value = values[node.inputs[0]][node.attrs["index"]]
        else:
            try:
                with np.errstate(all="ignore"):
                    value = OPS[node.op].evaluate([values[i] for i in node.inputs], node.attrs)
            except Exception:  # noqa: BLE001  (folding is optional; the runtime reports it)
                continue
        if isinstance(node.type, tuple):  # multi-result: only its items become constants
            values[node.name] = value
            continue
        value = np.asarray(value)
        t = node.tensor_type
        if not t.is_static or value.shape != concrete_shape(t, {}) or value.nbytes > max_bytes:
            continue
        left = {i: unread[i] - node.inputs.count(i) for i in set(node.inputs)}
        freed = [
            i
            for i, n in left.items()
            if n == 0
            and i not in outputs
            and (graph[i].op in ("constant", "param") or i in replace)
        ]
        gain = value.nbytes - sum(np.asarray(values[i]).nbytes for i in freed)
        if growth + gain > max_growth:
            continue
        growth += gain
        unread.update(left)
        values[node.name] = value
        array = value.astype(numpy_dtype(t.dtype), copy=False)
        replace[node.name] = (
            Node(node.name, "constant", (), {"value": Const(array)}, t, node.span, node.calls),
        )
    if not replace:
        return graph, weights
    return rebuild(graph, replace, {}), weights
