"""Common-subexpression elimination: one node per distinct computation."""

from __future__ import annotations

from typing import Any

from ..ir import Graph, Node
from .rewrite import ORIGIN, Weights, may_replace, rebuild, with_origin


def eliminate_common_subexpressions(graph: Graph, weights: Weights) -> tuple[Graph, Weights]:
    """Merge nodes that compute the same value; readers of the later one read the earlier.

    1. Two op nodes with the same op, the same inputs (after earlier merges), equal attributes
       and the same type are one node: `relu(x)` twice is `relu(x)` once. The kept node lists
       the merged one's span in its `origin`.
    2. Two `constant` nodes holding equal values (dtype, shape and bytes) are one constant.
    3. The `item`s of two merged multi-result ops then merge by case 1.
    Never merged: graph inputs, params (two weights stay two weights even while their values
    agree), and a graph output into a value that cannot become that output (see
    `rewrite.may_replace`). `origin` is not compared.
    """
    first: dict[Any, str] = {}
    rename: dict[str, str] = {}
    absorbed: dict[str, list[Node]] = {}

    def resolve(name: str) -> str:
        return rename.get(name, name)  # keepers are never renamed, so one step suffices

    for node in graph.nodes:
        if node.op in ("input", "param"):
            continue
        key = (node.op, tuple(resolve(i) for i in node.inputs), _freeze(node.attrs), node.type)
        keeper = first.setdefault(key, node.name)
        if keeper != node.name and may_replace(graph, node.name, keeper):
            rename[node.name] = keeper
            absorbed.setdefault(keeper, []).append(node)
    if not rename:
        return graph, weights
    replace: dict[str, tuple[Node, ...]] = {name: () for name in rename}
    for keeper, nodes in absorbed.items():
        node = graph[keeper]
        if node.op != "constant":
            replace[keeper] = (node.with_(attrs=with_origin(node.attrs, node, nodes)),)
    return rebuild(graph, replace, rename), weights


def _freeze(value: Any) -> Any:
    """A hashable stand-in for an attribute value (`origin` left out of attribute dicts)."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items() if k != ORIGIN))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_freeze(v) for v in value))
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return (type(value).__name__, value)
