"""The IR: `TensorType`, `Node`, `Graph`, the printer and `verify`; nothing else.

A graph is a topologically ordered tuple of immutable nodes. A node names its result; edges
are names. Weights are `param` nodes (their values live outside the graph, by name), folded
values are `constant` nodes holding a `Const`. Multi-result ops have a tuple type and are
read through `item` nodes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from .lazy import numpy as np  # loaded on first use: checking a model needs none
from .source import CallSite, Span, format_value

DTYPES: dict[str, str] = {
    "f32": "float32",
    "f16": "float16",
    "bf16": "bfloat16",  # numpy has no bfloat16: the reference computes it in float32
    "f64": "float64",
    "i32": "int32",
    "i64": "int64",
    "bool": "bool",
}
FLOAT_DTYPES = ("f32", "f16", "bf16", "f64")
INT_DTYPES = ("i32", "i64")

# A dimension is a literal size or a symbol ("N", or a product such as "N*T").
Dim = int | str


def numpy_dtype(dtype: str) -> np.dtype:
    """The numpy dtype a netc dtype is computed in (bf16 is computed in float32)."""
    return np.dtype("float32" if dtype == "bf16" else DTYPES[dtype])


def dim_mul(a: Dim, b: Dim) -> Dim:
    """The product of two dims, kept symbolic when either is a symbol."""
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    if a == 1:
        return b
    if b == 1:
        return a
    return f"{a}*{b}"


def dims_product(dims: Sequence[Dim]) -> Dim:
    out: Dim = 1
    for d in dims:
        out = dim_mul(out, d)
    return out


@dataclass(frozen=True)
class TensorType:
    """A tensor's dtype and shape; symbolic dims are strings."""

    dtype: str
    shape: tuple[Dim, ...]

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    def with_shape(self, shape: Sequence[Dim]) -> TensorType:
        return TensorType(self.dtype, tuple(shape))

    def with_dtype(self, dtype: str) -> TensorType:
        return TensorType(dtype, self.shape)

    def numel(self, symbols: Mapping[str, int] | None = None) -> int:
        """Element count with symbols bound (unbound symbols count as 1: per sample)."""
        n = 1
        for d in self.shape:
            n *= d if isinstance(d, int) else _eval_dim(d, symbols or {})
        return n

    def __str__(self) -> str:
        return f"{self.dtype}[{', '.join(str(d) for d in self.shape)}]"


def _eval_dim(dim: str, symbols: Mapping[str, int]) -> int:
    n = 1
    for factor in dim.split("*"):
        n *= int(factor) if factor.isdigit() else symbols.get(factor, 1)
    return n


def concrete_shape(t: TensorType, symbols: Mapping[str, int]) -> tuple[int, ...]:
    """The shape with every symbol bound (unbound symbols count as 1)."""
    return tuple(d if isinstance(d, int) else _eval_dim(d, symbols) for d in t.shape)


Type = TensorType | tuple[TensorType, ...]


class Const:
    """An array held by value in an attribute; equal when dtype, shape and bytes are."""

    __slots__ = ("array", "_digest")

    def __init__(self, array: Any):
        self.array = np.array(array, order="C")
        self.array.setflags(write=False)
        self._digest = hashlib.sha256(
            str(self.array.dtype).encode() + str(self.array.shape).encode() + self.array.tobytes()
        ).hexdigest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Const) and self._digest == other._digest

    def __hash__(self) -> int:
        return hash(self._digest)

    def __repr__(self) -> str:
        if self.array.size <= 4:
            return f"Const({self.array.tolist()!r})"
        return f"Const({self.array.dtype}{list(self.array.shape)}, sha={self._digest[:8]})"


@dataclass(frozen=True)
class Node:
    """One operation; `name` names its result and is unique in the graph."""

    name: str
    op: str
    inputs: tuple[str, ...] = ()
    attrs: Mapping[str, Any] = field(default_factory=dict)
    type: Type | None = None  # set by shape inference
    span: Span | None = None  # where the user wrote it; fused nodes keep the first
    calls: tuple[CallSite, ...] = ()  # the block calls that led here, innermost first

    @property
    def tensor_type(self) -> TensorType:
        assert isinstance(self.type, TensorType), f"{self.name} has type {self.type}"
        return self.type

    def with_(self, **changes: Any) -> Node:
        """A copy with fields changed; `self` when nothing changes."""
        if all(getattr(self, k) == v for k, v in changes.items()):
            return self
        return replace(self, **changes)


@dataclass(frozen=True)
class Graph:
    """A model: nodes in topological order, the input node names, and the named outputs."""

    name: str
    nodes: tuple[Node, ...]
    inputs: tuple[str, ...]
    outputs: tuple[tuple[str, str], ...]  # (output name, value name)

    @cached_property
    def by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    def __getitem__(self, name: str) -> Node:
        return self.by_name[name]

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    @property
    def params(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.op == "param")

    @cached_property
    def readers(self) -> dict[str, tuple[str, ...]]:
        """For each value, the nodes that read it (an output counts as the reader `<output>`)."""
        out: dict[str, list[str]] = {n.name: [] for n in self.nodes}
        for n in self.nodes:
            for i in n.inputs:
                out.setdefault(i, []).append(n.name)
        for _, value in self.outputs:
            out.setdefault(value, []).append("<output>")
        return {k: tuple(v) for k, v in out.items()}

    def with_nodes(
        self, nodes: Sequence[Node], outputs: Sequence[tuple[str, str]] | None = None
    ) -> Graph:
        """A graph with new nodes (and outputs); `self` when nothing changed."""
        nodes = tuple(nodes)
        outs = self.outputs if outputs is None else tuple(outputs)
        if (
            outs == self.outputs
            and len(nodes) == len(self.nodes)
            and all(a is b for a, b in zip(nodes, self.nodes))
        ):
            return self
        return replace(self, nodes=nodes, outputs=outs)

    def __str__(self) -> str:
        return print_graph(self)


def _fmt_type(t: Type | None) -> str:
    if t is None:
        return "?"
    if isinstance(t, tuple):
        return "(" + ", ".join(str(x) for x in t) + ")"
    return str(t)


def print_graph(graph: Graph, *, locations: bool = True, origins: bool = True) -> str:
    """The IR as text that reads like code, one node per line, with its source location
    (unless `locations` is False); without `origins`, a fused op's `origin` attribute (the
    source places of the ops it fused) is left out too: what the IR computes, wherever the
    source lies."""
    sig = ", ".join(f"{i}: {_fmt_type(graph[i].type)}" for i in graph.inputs)
    rets = ", ".join(f"{o}: {_fmt_type(graph[v].type)}" for o, v in graph.outputs)
    lines = [f"graph {graph.name}({sig}) -> ({rets}) {{"]
    for n in graph.nodes:
        if n.op == "input":
            continue
        attrs = (
            n.attrs.items() if origins else [(k, v) for k, v in n.attrs.items() if k != "origin"]
        )
        args = list(n.inputs) + [f"{k}={format_value(v)}" for k, v in attrs]
        text = f"  {n.name}: {_fmt_type(n.type)} = {n.op}({', '.join(args)})"
        if locations and n.span:
            text = f"{text:<80}  # {n.span.path}:{n.span.line}"
        lines.append(text)
    lines.append("  return " + ", ".join(o if o == v else f"{o}={v}" for o, v in graph.outputs))
    lines.append("}")
    return "\n".join(lines)


class IRError(AssertionError):
    """A broken IR invariant: a compiler bug, never a user error."""


def verify(graph: Graph, after: str = "elaboration") -> Graph:
    """Check the IR's invariants; raise `IRError` naming the stage that broke them."""
    from .ops import OPS

    def fail(msg: str) -> None:
        raise IRError(f"IR invariant broken after {after}: {msg}")

    seen: set[str] = set()
    for n in graph.nodes:
        if n.name in seen:
            fail(f"value `{n.name}` is defined twice")
        for i in n.inputs:
            if i not in seen:
                fail(f"`{n.name}` reads `{i}` before it is defined")
        if n.op not in OPS and n.op not in ("input", "param", "constant", "item"):
            fail(f"`{n.name}` has unknown op `{n.op}`")
        if n.type is None:
            fail(f"`{n.name}` has no type")
        if n.op == "item":
            src = graph.by_name[n.inputs[0]].type
            if not isinstance(src, tuple) or n.attrs.get("index", -1) >= len(src):
                fail(f"`{n.name}` reads item {n.attrs.get('index')} of non-tuple `{n.inputs[0]}`")
        seen.add(n.name)
    for i in graph.inputs:
        if i not in seen or graph.by_name[i].op != "input":
            fail(f"graph input `{i}` is not an input node")
    for o, v in graph.outputs:
        if v not in seen:
            fail(f"output `{o}` names undefined value `{v}`")
        if not isinstance(graph.by_name[v].type, TensorType):
            fail(f"output `{o}` is a tuple, not a tensor")
    return graph
