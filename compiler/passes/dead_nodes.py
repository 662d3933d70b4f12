"""Dead-node elimination: drop what no graph output depends on."""

from __future__ import annotations

from ..ir import Graph
from .rewrite import Weights


def eliminate_dead_nodes(graph: Graph, weights: Weights) -> tuple[Graph, Weights]:
    """Drop every node no output depends on, and the weights of the dropped params.

    1. An op node whose value no output reaches is dropped (a multi-result op stays while
       any of its `item`s is live).
    2. A `param` node nothing live reads is dropped, and its weight leaves `weights`.
    3. A `constant` node nothing live reads is dropped.
    Graph inputs always stay, read or not: they are the model's signature.
    """
    live: set[str] = set(graph.inputs)
    stack = [v for _, v in graph.outputs]
    while stack:
        name = stack.pop()
        if name not in live:
            live.add(name)
            stack.extend(graph[name].inputs)
    if len(live) == len(graph.nodes):
        return graph, weights
    new = graph.with_nodes([n for n in graph.nodes if n.name in live])
    dropped = {n.name for n in graph.params if n.name not in live}
    if not dropped & weights.keys():
        return new, weights
    return new, {k: v for k, v in weights.items() if k not in dropped}
