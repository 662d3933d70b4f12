"""Removal of ops that do nothing at inference: dropout, and casts, reshapes, transposes,
slices, pads and concats that leave their input as it is."""

from __future__ import annotations

from ..ir import Graph, Node
from .rewrite import Weights, may_replace, rebuild


def eliminate_inference_ops(
    graph: Graph, weights: Weights, *, keep_training: bool = False
) -> tuple[Graph, Weights]:
    """Readers of an op that passes its input through unchanged read the input instead.

    1. `dropout(x)` -> `x` (the identity at inference); kept when `keep_training`.
    2. `cast(x, dtype)` -> `x` when `x` already has that dtype.
    3. `reshape(x)` and `flatten(x)` -> `x` when the result has `x`'s type (`flatten` of
       `[N, C]`, `reshape` to the shape it had).
    4. `transpose(x, perm)` -> `x` when `perm` is the identity.
    5. `slice(x)` -> `x` when every sliced axis is taken whole, in order (step 1).
    6. `pad(x)` -> `x` when every pad is (0, 0).
    7. `concat(x)` of a single input -> `x`.
    Not when the op's value is a graph output that cannot move to `x` (`rewrite.may_replace`:
    an output never becomes an input, a weight or a second name for another output).
    """
    rename: dict[str, str] = {}
    for node in graph.nodes:
        if _passes_through(graph, node, keep_training):
            source = rename.get(node.inputs[0], node.inputs[0])
            if may_replace(graph, node.name, source):
                rename[node.name] = source
    if not rename:
        return graph, weights
    return rebuild(graph, {name: () for name in rename}, rename), weights


def eliminate_noop_ops(graph: Graph, weights: Weights) -> tuple[Graph, Weights]:
    """eliminate_inference_ops for a model that still trains: dropout stays."""
    return eliminate_inference_ops(graph, weights, keep_training=True)


def _passes_through(graph: Graph, node: Node, keep_training: bool) -> bool:
    if not node.inputs or node.op in ("input", "param", "constant", "item"):
        return False
    x = graph[node.inputs[0]].tensor_type
    a = node.attrs
    if node.op == "dropout":
        return not keep_training
    if node.op in ("cast", "reshape", "flatten"):
        return node.type == x
    if node.op == "transpose":
        return tuple(a["perm"]) == tuple(range(len(a["perm"])))
    if node.op == "slice":
        return all(
            _whole(x.shape[axis], start, end, step)
            for axis, start, end, step in zip(
                a["axes"], a["starts"], a["ends"], a["steps"], strict=True
            )
        )
    if node.op == "pad":
        return all(before == after == 0 for before, after in a["pads"])
    if node.op == "concat":
        return len(node.inputs) == 1
    return False


def _whole(dim: object, start: int, end: int | None, step: int) -> bool:
    """`start:end:step` takes every cell of an axis of size `dim`, in order."""
    if not isinstance(dim, int):
        return (start, end, step) == (0, None, 1)
    return range(*slice(start, end, step).indices(dim)) == range(dim)
