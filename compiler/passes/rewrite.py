"""What the passes share: reading known values, rebuilding a graph with replaced and renamed
nodes, fresh weight names, and the `origin` attribute that keeps absorbed nodes' source lines.

`origin`: a node that absorbed others (a conv with its batchnorm folded in, a conv fused with
its relu) keeps its own span and lists the absorbed nodes' spans, as "path:line:col" strings
in the order they were absorbed (each once), in `attrs["origin"]`. It is metadata, not an op
attribute: shape rules never see it (`op_attrs`), backends ignore it, and common-subexpression
elimination does not compare it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..ir import DTYPES, Const, Graph, Node, TensorType, numpy_dtype
from ..ops import OPS, ShapeError

Weights = Mapping[str, np.ndarray]
ORIGIN = "origin"
SOURCES = ("input", "param", "constant")  # nodes that compute nothing


def known_value(graph: Graph, weights: Weights, name: str) -> np.ndarray | None:
    """The value of a `constant` node, or of a `param` node from `weights`; None otherwise."""
    node = graph[name]
    if node.op == "constant":
        return node.attrs["value"].array
    if node.op == "param" and name in weights:
        return np.asarray(weights[name])
    return None


def only_reader(graph: Graph, value: str) -> str | None:
    """The one node reading `value`, or None when several do, none does, or it is an output."""
    readers = graph.readers.get(value, ())
    return readers[0] if len(readers) == 1 and readers[0] != "<output>" else None


def output_values(graph: Graph) -> set[str]:
    return {v for _, v in graph.outputs}


def may_replace(graph: Graph, old: str, new: str) -> bool:
    """Whether every reader of `old` may read `new` instead. A graph output may move only to a
    value an op computes that is not already an output: backends name each output's node, and
    an output that is an input, a weight or another output has none of its own."""
    outputs = output_values(graph)
    if old not in outputs:
        return True
    return graph[new].op not in SOURCES and new not in outputs


def op_attrs(node: Node) -> dict[str, Any]:
    """The node's op attributes, without the optimizer's `origin`."""
    return {k: v for k, v in node.attrs.items() if k != ORIGIN}


def with_origin(attrs: Mapping[str, Any], keeper: Node, absorbed: Iterable[Node]) -> dict[str, Any]:
    """`attrs` with `origin` listing the spans of the `absorbed` nodes (and what they had
    absorbed) after the keeper's own list; the keeper's own span is never listed."""
    spans = list(keeper.attrs.get(ORIGIN, ()))
    own = str(keeper.span) if keeper.span else None
    for node in absorbed:
        for s in (*([str(node.span)] if node.span else []), *node.attrs.get(ORIGIN, ())):
            if s != own and s not in spans:
                spans.append(s)
    out = {k: v for k, v in attrs.items() if k != ORIGIN}
    if spans:
        out[ORIGIN] = tuple(spans)
    return out


def infer(
    op: str, in_types: Sequence[TensorType], attrs: Mapping[str, Any]
) -> tuple[TensorType, dict[str, Any]] | None:
    """The op's shape rule on these types and attrs (without `origin`), or None if it refuses."""
    try:
        out, canon = OPS[op].infer(in_types, {k: v for k, v in attrs.items() if k != ORIGIN})
    except (ShapeError, TypeError, ValueError):
        return None
    if not isinstance(out, TensorType):
        return None
    if ORIGIN in attrs:
        canon[ORIGIN] = attrs[ORIGIN]
    return out, canon


class Names:
    """Fresh value names: `base` if free, else `base_1`, `base_2`, ..."""

    def __init__(self, graph: Graph):
        self.taken = set(graph.by_name)

    def fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name


FOLDED = "_folded"
_FOLDED_NAME = re.compile(r"_folded(_[0-9]+)?$")


def folded_weight_name(
    graph: Graph, names: Names, old: str, reader: str, replace: dict[str, tuple[Node, ...]]
) -> str:
    """The name for a folded version of weight `old`, read by `reader`.

    A weight of the user's model keeps its name and value for any other reader, and the folded
    one is new: `conv2d.kernel` -> `conv2d.kernel_folded` (`_folded_1`, ... if taken). A weight
    the optimizer made (named `*_folded`) that only `reader` reads is replaced under its own
    name: its old node is dropped (through `replace`), so folding twice makes no `_folded_1`.
    """
    made = _FOLDED_NAME.search(old)
    if (
        made
        and old in graph.by_name
        and graph[old].op == "param"
        and only_reader(graph, old) == reader
    ):
        replace[old] = ()
        return old
    return names.fresh((old[: made.start()] if made else old) + FOLDED)


def new_param(name: str, value: np.ndarray, dtype: str, like: Node) -> tuple[Node, np.ndarray]:
    """A `param` node for a folded weight and its value, cast to `dtype`. Span, initializer and
    trainability come from `like`, the weight it replaces (or, for a new bias, the op: then
    "zeros" and trainable)."""
    # callers pass values they just computed: one already in `dtype` is kept, not copied
    array = np.ascontiguousarray(np.asarray(value).astype(numpy_dtype(dtype), copy=False))
    array.setflags(write=False)
    weight = like.op == "param"
    attrs = {
        "init": like.attrs["init"] if weight else "zeros",
        "trainable": like.attrs["trainable"] if weight else True,
    }
    node = Node(
        name, "param", (), attrs, TensorType(dtype, tuple(array.shape)), like.span, like.calls
    )
    return node, array


def constant_node(name: str, value: np.ndarray, like: Node) -> Node:
    """A `constant` node holding `value`, with `like`'s span."""
    return Node(
        name,
        "constant",
        (),
        {"value": Const(value)},
        TensorType(_netc_dtype(value.dtype), tuple(value.shape)),
        like.span,
        like.calls,
    )


def _netc_dtype(dtype: np.dtype) -> str:
    for k, v in DTYPES.items():
        if k != "bf16" and np.dtype(v) == dtype:
            return k
    raise AssertionError(f"no netc dtype for numpy {dtype}")


def rebuild(
    graph: Graph, replace: Mapping[str, Sequence[Node]], rename: Mapping[str, str]
) -> Graph:
    """The graph with each node named in `replace` swapped for its sequence of nodes (an empty
    one drops it), and every read of a value in `rename` (and every output naming it) redirected
    to its new name, following chains. `graph` itself when nothing changes."""

    def resolve(name: str) -> str:
        seen = 0
        while name in rename:
            name = rename[name]
            seen += 1
            assert seen <= len(rename), f"rename cycle through `{name}`"
        return name

    nodes: list[Node] = []
    for node in graph.nodes:
        for new in replace.get(node.name, (node,)):
            inputs = tuple(resolve(i) for i in new.inputs)
            nodes.append(new.with_(inputs=inputs))
    outputs = tuple((o, resolve(v)) for o, v in graph.outputs)
    return graph.with_nodes(nodes, outputs)


def with_weights(weights: Weights, added: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A new weights dict: `weights` plus `added` (never mutates `weights`)."""
    out = dict(weights)
    out.update(added)
    return out
