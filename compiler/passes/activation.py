"""Activation fusion: a dense or convolution, an optional residual add and an activation
become one `fused_dense` or `fused_conv` node (see ops/fused.py)."""

from __future__ import annotations

from typing import Any

from ..ir import Graph, Node
from ..ops.fused import ACTIVATIONS, CONV_OPS
from .rewrite import Weights, infer, may_replace, only_reader, op_attrs, rebuild, with_origin


def fuse_activation(graph: Graph, weights: Weights) -> tuple[Graph, Weights]:
    """`act(conv(x))` -> `fused_conv(x, activation=act)`, and with a residual add between.

    1. `act(dense(x, W, b))` -> `fused_dense(x, W, b, activation=act)`.
    2. `act(conv(x, W, b))` for any convolution (conv1d/2d/3d, depthwise, transposed) ->
       `fused_conv(x, W, b, base=conv, activation=act)`.
    3. `act(conv(x) + r)` and `act(r + conv(x))` -> `fused_conv(x, r, W, b, residual=true)`
       (likewise for dense), when `r` has the sum's type: ResNet's `relu(y + skip)`. When
       both operands are convolutions, the first that qualifies takes the other as residual.
    `act` is relu, relu6, sigmoid, tanh, gelu (its `approximate` kept), silu or leaky_relu
    (its `alpha` kept). The fused node takes the conv's name and span, sits where the
    activation was, lists the add's and the activation's spans in its `origin`, and readers of
    the activation read it.
    Refused: a conv (or add) output with other readers or that is a graph output (its value
    is needed unactivated); a residual that broadcasts (its type differs from the sum's); an
    activation output that is a graph output and cannot move (`rewrite.may_replace`).
    """
    replace: dict[str, tuple[Node, ...]] = {}
    rename: dict[str, str] = {}
    for act in graph.nodes:
        if act.op not in ACTIVATIONS:
            continue
        found = _match(graph, graph[act.inputs[0]], act)
        if found is None:
            continue
        base, add, residual = found
        if base.name in replace or not may_replace(graph, act.name, base.name):
            continue
        fused = _fused(graph, base, add, residual, act)
        if fused is None:
            continue
        replace[base.name] = ()
        if add is not None:
            replace[add.name] = ()
        replace[act.name] = (fused,)
        rename[act.name] = base.name
    if not replace:
        return graph, weights
    return rebuild(graph, replace, rename), weights


def _is_base(node: Node) -> bool:
    return node.op == "dense" or node.op in CONV_OPS


def _match(graph: Graph, p: Node, act: Node) -> tuple[Node, Node | None, str | None] | None:
    """(base op, the add or None, the residual value or None) feeding `act`, or None."""
    if only_reader(graph, p.name) != act.name:
        return None
    if _is_base(p):
        return p, None, None
    if p.op != "add" or p.inputs[0] == p.inputs[1]:
        return None
    for y_name, r_name in (p.inputs, p.inputs[::-1]):
        y = graph[y_name]
        if (
            _is_base(y)
            and only_reader(graph, y_name) == p.name
            and (graph[r_name].type == p.type == y.type)
        ):
            return y, p, r_name
    return None


def _fused(
    graph: Graph, base: Node, add: Node | None, residual: str | None, act: Node
) -> Node | None:
    epilogue: dict[str, Any] = {"activation": act.op}
    if act.op == "leaky_relu":
        epilogue["alpha"] = act.attrs["alpha"]
    if act.op == "gelu":
        epilogue["approximate"] = act.attrs["approximate"]
    epilogue["residual"] = residual is not None
    if base.op == "dense":
        op, attrs = "fused_dense", {**op_attrs(base), **epilogue}
    else:
        op, attrs = "fused_conv", {"base": base.op, **op_attrs(base), **epilogue}
    x, *params = base.inputs
    data = [x] if residual is None else [x, residual]
    inferred = infer(op, [graph[i].tensor_type for i in data], attrs)
    if inferred is None or inferred[0] != act.type:
        return None
    absorbed = [n for n in (add, act) if n is not None]
    return Node(
        base.name,
        op,
        (*data, *params),
        with_origin(inferred[1], base, absorbed),
        act.type,
        base.span,
        base.calls,
    )
