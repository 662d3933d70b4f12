"""Transpose and reshape cancellation: consecutive transposes compose (and vanish when they
undo each other); consecutive reshapes keep only the last."""

from __future__ import annotations

from ..ir import Graph, Node
from .rewrite import Weights, infer, may_replace, op_attrs, rebuild, with_origin

RESHAPES = ("reshape", "flatten")


def cancel_transposes(graph: Graph, weights: Weights) -> tuple[Graph, Weights]:
    """Collapse chains of transposes and of reshapes.

    1. `transpose(transpose(x, p), q)` -> `transpose(x, r)`, `r[i] = p[q[i]]`.
    2. ... -> `x` when `r` is the identity: a transpose followed by its inverse.
    3. `reshape(reshape(x))` -> `reshape(x)` with the outer shape (`flatten` counts as a
       reshape): row-major order makes the intermediate shape irrelevant.
    4. ... -> `x` when the outer reshape gives `x`'s own type.
    5. Chains collapse entirely: each step reads the already-collapsed one before it.
    The inner op stays for any other reader (it does no more work than before) and is left to
    dead-node elimination otherwise; its span joins the outer one's `origin`.
    Refused: a reshape whose shape rule, applied to `x`, gives a type other than the outer
    one's (symbolic dims written differently, e.g. `T*2` against `2*T`); an output that cannot
    move to `x` (`rewrite.may_replace`).
    """
    now: dict[str, Node] = {}  # the rewritten node computing each value, when rewritten
    rename: dict[str, str] = {}

    def producer(name: str) -> Node:
        name = rename.get(name, name)
        return now.get(name, graph[name])

    for node in graph.nodes:
        if node.op not in ("transpose", *RESHAPES) or not node.inputs:
            continue
        inner = producer(node.inputs[0])
        if node.op == "transpose" and inner.op == "transpose":
            p, q = inner.attrs["perm"], node.attrs["perm"]
            perm = tuple(p[i] for i in q)
            if perm == tuple(range(len(perm))):
                _drop(graph, node, inner, rename)
            else:
                attrs = with_origin({**op_attrs(node), "perm": perm}, node, [inner])
                now[node.name] = node.with_(inputs=inner.inputs, attrs=attrs)
        elif node.op in RESHAPES and inner.op in RESHAPES:
            x = graph[rename.get(inner.inputs[0], inner.inputs[0])]
            if x.type == node.type:
                _drop(graph, node, inner, rename)
                continue
            inferred = infer(node.op, [x.tensor_type], op_attrs(node))
            if inferred is not None and inferred[0] == node.type:
                attrs = with_origin(node.attrs, node, [inner])
                now[node.name] = node.with_(inputs=inner.inputs, attrs=attrs)
    if not now and not rename:
        return graph, weights
    replace = {name: (node,) for name, node in now.items()} | {name: () for name in rename}
    return rebuild(graph, replace, rename), weights


def _drop(graph: Graph, node: Node, inner: Node, rename: dict[str, str]) -> None:
    """Readers of `node` read `inner`'s input instead, when an output allows it."""
    source = rename.get(inner.inputs[0], inner.inputs[0])
    if may_replace(graph, node.name, source):
        rename[node.name] = source
