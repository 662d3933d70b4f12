"""Keras weights into a netc model, paired by the two graphs' structure, never by name or order.

`from_keras(model, source)` reads a Keras model (a `keras.Model`, a `.keras` file, or a
`.weights.h5` file with the architecture it belongs to) and reduces both graphs to a skeleton:
the inputs, the layers that hold weights, the joins (concat, add, mul, ...) and the outputs,
linked by which feeds which; weightless one-input ops (activations, padding, pooling, reshapes)
are the links. The skeletons are paired by colour refinement: a vertex is first described by
its kind and weight shapes, then, round after round, by what it reads (in order at a concat)
and what reads it, until nothing more splits. Every netc layer must end up with exactly one
Keras layer of its colour; then the settings the weights do not show (strides, padding,
epsilon, activation, output shape) are compared pair by pair. Where a layer has no
counterpart, several, or different settings, a NetcError names both sides: the netc layer at
its source line and the Keras layer. docs/keras-weights.md tells the whole story.
"""

from __future__ import annotations

import inspect
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .ir import Graph, Node
from .source import Diagnostic, NetcError, error
from .summary import Model

# Keras layer class -> the netc op that holds the same weights, in the same layouts and under
# the same names (docs/ops.md: netc took Keras' layouts and names for every op with weights).
KERAS_OPS = {
    "Dense": "dense",
    "Conv1D": "conv1d",
    "Conv2D": "conv2d",
    "Conv3D": "conv3d",
    "DepthwiseConv1D": "depthwise_conv1d",
    "DepthwiseConv2D": "depthwise_conv2d",
    "SeparableConv1D": "separable_conv1d",
    "SeparableConv2D": "separable_conv2d",
    "Conv1DTranspose": "conv1d_transpose",
    "Conv2DTranspose": "conv2d_transpose",
    "Conv3DTranspose": "conv3d_transpose",
    "BatchNormalization": "batchnorm",
    "LayerNormalization": "layernorm",
    "LSTM": "lstm",
    "GRU": "gru",
    "MultiHeadAttention": "multi_head_attention",
    "Embedding": "embedding",
    # keras.applications' ConvNeXt: x * gamma, netc's `x * weight([C])`
    "LayerScale": "mul",
}

# Weightless Keras layers and ops with several tensor inputs -> the netc join they are. Average
# is a sum scaled by a constant, and constants are links, not vertices: it is an add.
KERAS_JOINS = {
    "Add": "add",
    "Average": "add",
    "Multiply": "mul",
    "Subtract": "sub",
    "Maximum": "maximum",
    "Minimum": "minimum",
    "Concatenate": "concat",
    "Divide": "div",
    "TrueDivide": "div",
    "Matmul": "matmul",
    "Split": "split",
}
# Joins whose inputs may come in any order; the others are paired input by input.
COMMUTATIVE = frozenset({"add", "mul", "maximum", "minimum"})

# Keras activation names -> the netc op that computes it.
ACTIVATIONS = {
    "relu": "relu",
    "relu6": "relu6",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "softmax": "softmax",
    "gelu": "gelu",
    "silu": "silu",
    "swish": "silu",
    "elu": "elu",
    "softplus": "softplus",
    "leaky_relu": "leaky_relu",
    "hard_sigmoid": "hard_sigmoid",
    "hard_silu": "hard_swish",
    "hard_swish": "hard_swish",
    "exponential": "exp",
}

NETC, KERAS = "netc", "Keras"


# --- the skeleton ------------------------------------------------------------------------------


@dataclass
class Vertex:
    """An input, a layer with weights, a join or an output of one side's graph."""

    side: str  # NETC or KERAS
    name: str  # the netc layer (node) name, or the Keras layer name
    kind: str  # "input", "output", a netc op with weights, or a join ("add", "concat", ...)
    facts: tuple  # what must be equal besides the links: weight names and shapes, concat axis
    inputs: list[tuple[int, int]] = field(default_factory=list)  # (vertex, result index)
    direct: list[bool] = field(default_factory=list)  # per input: no op between (for merging)
    ref: Any = None  # the netc Node; the Keras (operation, node)
    weights: dict[str, Any] = field(default_factory=dict)  # netc weight name -> param / variable

    @property
    def ordered(self) -> bool:
        return self.kind not in COMMUTATIVE

    @property
    def has_weights(self) -> bool:
        return bool(self.weights)


Link = tuple[int, int, bool]  # (vertex, result index, direct)


def _weight_facts(shapes: Mapping[str, Sequence[Any]]) -> tuple:
    return tuple(sorted((k, tuple(int(d) for d in s)) for k, s in shapes.items()))


def _add_join(vertices: list[Vertex], v: Vertex, links: Sequence[Link]) -> int:
    v.inputs = [(i, k) for i, k, _ in links]
    v.direct = [d for _, _, d in links]
    vertices.append(v)
    return len(vertices) - 1


def _merge_commutative(vertices: list[Vertex]) -> list[Vertex]:
    """`(a + b) + c` and `Add()([a, b, c])` are one sum: a commutative join that feeds only a
    join of its own kind, with no op between, is folded into it. Returns the kept vertices,
    renumbered."""
    readers = Counter(i for v in vertices for i, _ in v.inputs)
    folded: set[int] = set()
    for v in vertices:
        if v.kind not in COMMUTATIVE or v.has_weights:  # a LayerScale's mul reads one tensor
            continue
        inputs, direct = [], []
        for (i, k), d in zip(v.inputs, v.direct):
            u = vertices[i]
            if d and u.kind == v.kind and readers[i] == 1 and not u.has_weights:
                inputs += u.inputs
                direct += u.direct
                folded.add(i)
            else:
                inputs.append((i, k))
                direct.append(d)
        v.inputs, v.direct = inputs, direct
    keep = [i for i in range(len(vertices)) if i not in folded]
    renumber = {old: new for new, old in enumerate(keep)}
    out = []
    for i in keep:
        v = vertices[i]
        v.inputs = [(renumber[j], k) for j, k in v.inputs]
        out.append(v)
    return out


def netc_skeleton(graph: Graph) -> list[Vertex]:
    """The skeleton of a netc graph, in topological order."""
    vertices: list[Vertex] = []
    where: dict[str, Link | None] = {}  # value name -> where its data comes from; None: constant
    for n in graph.nodes:
        if n.op == "input":
            where[n.name] = (len(vertices), 0, True)
            vertices.append(Vertex(NETC, n.name, "input", (graph.inputs.index(n.name),), ref=n))
            continue
        if n.op in ("param", "constant"):
            where[n.name] = None
            continue
        if n.op == "item":
            source = where[n.inputs[0]]
            where[n.name] = None if source is None else (source[0], n.attrs["index"], True)
            continue
        params = [graph[i] for i in n.inputs if graph[i].op == "param"]
        data = [where[i] for i in n.inputs if graph[i].op != "param"]
        links = [x for x in data if x is not None]
        if params:
            if n.op == "multi_head_attention":  # (query, value, key), as Keras calls it
                query = links[0]
                values = links[1] if len(links) > 1 else query
                links = [query, values, links[2] if len(links) > 2 else values]
            weights = _netc_layer_weights(n, graph)
            v = Vertex(
                NETC,
                n.name,
                n.op,
                _weight_facts({k: p.tensor_type.shape for k, p in weights.items()}),
                ref=n,
                weights=weights,
            )
            where[n.name] = (_add_join(vertices, v, links), 0, True)
        elif isinstance(n.type, tuple) and links:  # a weightless op with several results
            v = Vertex(NETC, n.name, n.op, (len(n.type),), ref=n)
            where[n.name] = (_add_join(vertices, v, links), 0, True)
        elif len({(i, k) for i, k, _ in links}) >= 2:
            facts = (n.attrs["axis"],) if n.op == "concat" else ()
            v = Vertex(NETC, n.name, n.op, facts, ref=n)
            where[n.name] = (_add_join(vertices, v, links), 0, True)
        elif links:  # one source (perhaps read twice, as in x * sigmoid(x)): a link
            i, k, _ = links[0]
            where[n.name] = (i, k, False)
        else:
            where[n.name] = None
    for position, (output, value) in enumerate(graph.outputs):
        link = where[value]
        v = Vertex(NETC, output, "output", (position,), ref=graph[value])
        _add_join(vertices, v, [link] if link is not None else [])
    return _merge_commutative(vertices)


def _netc_layer_weights(node: Node, graph: Graph) -> dict[str, Node]:
    """A netc layer's weights by the names a Keras layer has for them: an op's own weights by
    their names in ops.md (`conv2d_3.kernel` is `kernel`); weights a block declares with
    `weight(...)` by where the op reads them (`x * gamma`: `operand`, Keras' LayerScale)."""
    from .ops import OPS

    params = [(i, graph[name]) for i, name in enumerate(node.inputs) if graph[name].op == "param"]
    if OPS[node.op].params is not None:
        prefix = node.name + "."
        return {p.name.removeprefix(prefix): p for _, p in params}
    if node.op in COMMUTATIVE and len(params) == 1:
        return {"operand": params[0][1]}
    return {f"operand_{i}": p for i, p in params}


def keras_skeleton(keras_model: Any) -> list[Vertex]:
    """The skeleton of a functional or Sequential Keras model (nested models are flattened),
    in topological order."""
    model = _functional(keras_model)
    graph = _KerasGraph(model)
    vertices: list[Vertex] = []
    where: dict[int, Link | None] = {}
    for position, t in enumerate(model.inputs):
        where[id(t)] = (len(vertices), 0, True)
        op = t._keras_history[0]
        vertices.append(Vertex(KERAS, op.name, "input", (position,), ref=(op, None)))
    for node in graph.order():
        op = node.operation
        inputs = [graph.canonical(t) for t in node.input_tensors]
        links = [x for x in (where[id(t)] for t in inputs) if x is not None]
        outputs = node.output_tensors
        if getattr(op, "weights", None):
            cls = type(op).__name__
            kind = KERAS_OPS.get(cls)
            if kind is None:
                raise error(
                    f"netc has no op that takes the weights of Keras layer `{op.name}` ({cls})",
                    notes=[_keras_weight_list(op)],
                )
            graph.use(op)
            weights = _keras_layer_weights(op)
            links = _keras_data_links(op, node, graph, where, kind)
            v = Vertex(
                KERAS,
                op.name,
                kind,
                _weight_facts({k: tuple(w.shape) for k, w in weights.items()}),
                ref=(op, node),
                weights=weights,
            )
            index = _add_join(vertices, v, links)
            for k, t in enumerate(outputs):
                where[id(t)] = (index, k, True)
        elif len(outputs) > 1 and links:
            v = Vertex(KERAS, op.name, _keras_join_kind(op), (len(outputs),), ref=(op, node))
            index = _add_join(vertices, v, links)
            for k, t in enumerate(outputs):
                where[id(t)] = (index, k, True)
        elif len({(i, k) for i, k, _ in links}) >= 2:
            kind = _keras_join_kind(op)
            facts = (_keras_concat_axis(op, outputs[0]),) if kind == "concat" else ()
            v = Vertex(KERAS, op.name, kind, facts, ref=(op, node))
            where[id(outputs[0])] = (_add_join(vertices, v, links), 0, True)
        else:
            link = (links[0][0], links[0][1], False) if links else None
            for t in outputs:
                where[id(t)] = link
    for position, t in enumerate(model.outputs):
        source = where[id(graph.canonical(t))]
        op = graph.canonical(t)._keras_history[0]
        v = Vertex(KERAS, op.name, "output", (position,), ref=(op, None))
        _add_join(vertices, v, [source] if source is not None else [])
    return _merge_commutative(vertices)


def _functional(model: Any) -> Any:
    """The functional graph of a Keras model: itself, or a Sequential's inner one."""
    if hasattr(model, "_nodes_by_depth") and hasattr(model, "inputs"):
        return model
    inner = getattr(model, "_functional", None)
    if inner is not None:
        return inner
    kind = type(model).__name__
    if kind == "Sequential":
        raise error(
            f"the Sequential Keras model `{model.name}` has no input shape, so it has no graph",
            hint="start it with keras.Input(shape=...), or build it before passing it",
        )
    raise error(
        f"the Keras model `{getattr(model, 'name', kind)}` ({kind}) is subclassed: its graph "
        f"is Python code, with no structure to pair netc's layers with",
        hint="rebuild it as a functional or Sequential model (same layers, same weights)",
    )


class _KerasGraph:
    """A functional Keras model's graph, nested models flattened: the nodes in topological
    order, each tensor seen through model boundaries."""

    def __init__(self, model: Any):
        self.model = model
        self.inputs = {id(t) for t in model.inputs}
        self.alias: dict[int, Any] = {}  # a nested model's input tensor -> the outer tensor
        self.used: dict[int, Any] = {}
        self.expanded: set[int] = set()  # the nested models' calls seen

    def canonical(self, t: Any) -> Any:
        """The tensor `t` is: through the inputs and outputs of nested models."""
        while True:
            if id(t) in self.alias:
                t = self.alias[id(t)]
                continue
            if id(t) in self.inputs:
                return t
            op, node_index, tensor_index = t._keras_history
            inner = _nested(op)
            if inner is None:
                return t
            node = op._inbound_nodes[node_index]
            if id(node) not in self.expanded:  # a call seen for the first time
                self.expanded.add(id(node))
                self.use(op)
                for a, b in zip(inner.inputs, node.input_tensors):
                    self.alias[id(a)] = b
            t = inner.outputs[tensor_index]

    def use(self, op: Any) -> None:
        """Note that `op` is called here; a layer called twice shares its weights, which netc
        cannot (each op call owns its weights)."""
        if id(op) in self.used:
            raise error(
                f"Keras layer `{op.name}` is called more than once (shared weights); every netc "
                f"op owns its weights, so no netc model pairs with this one"
            )
        self.used[id(op)] = op

    def order(self) -> list[Any]:
        """Every node the outputs depend on, inputs first (an iterative depth-first search:
        deep models exceed Python's recursion limit)."""
        out: list[Any] = []
        seen: set[int] = set()
        stack: list[tuple[Any, bool]] = []
        for t in reversed(self.model.outputs):
            node = self._producer(self.canonical(t))
            if node is not None:
                stack.append((node, False))
        while stack:
            node, done = stack.pop()
            if done:
                out.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            for t in reversed(node.input_tensors):
                parent = self._producer(self.canonical(t))
                if parent is not None and id(parent) not in seen:
                    stack.append((parent, False))
        done_ids: set[int] = set()
        ordered = []
        for node in out:  # a node pushed twice appears once, after its inputs
            if id(node) not in done_ids:
                done_ids.add(id(node))
                ordered.append(node)
        return ordered

    def _producer(self, t: Any) -> Any:
        if id(t) in self.inputs:
            return None
        op, node_index, _ = t._keras_history
        if type(op).__name__ == "InputLayer":
            raise error(
                f"the Keras model `{self.model.name}` reads the input `{op.name}`, which is not "
                f"one of its inputs"
            )
        return op._inbound_nodes[node_index]


def _nested(op: Any) -> Any:
    """The functional graph of a model used as a layer, or None for a plain layer or op."""
    if type(op).__name__ in ("Functional", "Sequential", "Model") or (
        hasattr(op, "_nodes_by_depth") and hasattr(op, "inputs")
    ):
        return _functional(op)
    return None


def _keras_layer_weights(layer: Any) -> dict[str, Any]:
    """A Keras layer's weights under netc's names for them (netc took Keras' names: the last
    part of a weight's path, and `<sublayer>_<name>` for MultiHeadAttention's four denses)."""
    if type(layer).__name__ == "LayerScale":
        return {"operand": layer.gamma}
    out: dict[str, Any] = {}
    for w in layer.weights:
        name = w.name
        if type(layer).__name__ == "MultiHeadAttention":
            name = f"{w.path.split('/')[-2]}_{w.name}"
        if name in out:
            raise error(f"Keras layer `{layer.name}` has two weights named `{name}`")
        out[name] = w
    return out


def _keras_weight_list(layer: Any) -> str:
    return "its weights: " + ", ".join(f"{w.path} {list(w.shape)}" for w in layer.weights)


def _keras_join_kind(op: Any) -> str:
    cls = type(op).__name__
    return KERAS_JOINS.get(cls, f"Keras {cls}")


def _keras_concat_axis(op: Any, out: Any) -> int:
    """A concatenation's axis, non-negative: a Concatenate layer's, or keras.ops.concatenate's."""
    axis = getattr(op, "axis", None)
    if axis is None:
        axis = op.get_config().get("axis", -1)
    return int(axis) % len(out.shape)


def _keras_data_links(
    layer: Any, node: Any, graph: _KerasGraph, where: dict[int, Link | None], kind: str
) -> list[Link]:
    """The data inputs of a Keras layer with weights, as the netc op takes them: one tensor,
    or (query, value, key) for attention; a mask, an initial state or another tensor netc's op
    does not take is an error."""
    args, kwargs = node.arguments.args, node.arguments.kwargs
    try:
        bound = inspect.signature(layer.call).bind(*args, **kwargs).arguments
    except TypeError:
        bound = {f"arg{i}": a for i, a in enumerate(args)} | dict(kwargs)
    tensors = {k: v for k, v in bound.items() if _is_tensor(v)}
    if kind == "multi_head_attention":
        query, value = tensors.pop("query", None), tensors.pop("value", None)
        key = tensors.pop("key", None)
        key = value if key is None else key
        wanted = [query, value, key]
    else:
        first = next(iter(bound))
        wanted = [tensors.pop(first, None)]
    if tensors or any(t is None for t in wanted):
        extra = ", ".join(f"`{k}`" for k in tensors) or "a nested structure"
        masked = "mask" in tensors
        raise error(
            f"Keras layer `{layer.name}` ({type(layer).__name__}) is called with {extra}, which "
            f"netc's `{kind}` does not take",
            hint="netc has no masks: build the Keras model without mask_zero=True or Masking"
            if masked
            else None,
        )
    links = []
    for t in wanted:
        link = where[id(graph.canonical(t))]
        assert link is not None, f"{layer.name} reads a constant"
        links.append(link)
    return links


def _is_tensor(x: Any) -> bool:
    return type(x).__name__ == "KerasTensor"


# --- pairing -----------------------------------------------------------------------------------


class _Colours:
    """Colour refinement on the disjoint union of the two skeletons: equal colours mean equal
    kinds and facts, and equally coloured inputs (in order, unless commutative) and readers."""

    def __init__(self, a: list[Vertex], b: list[Vertex]):
        self.vertices = a + b
        self.split = len(a)
        self.readers: list[list[tuple[int, int, int]]] = [[] for _ in self.vertices]
        for j, v in enumerate(self.vertices):
            offset = 0 if j < self.split else self.split
            for port, (i, k) in enumerate(v.inputs):
                self.readers[i + offset].append((j, port if v.ordered else -1, k))
        self.ids: dict[Any, int] = {}

    def offset(self, j: int) -> int:
        return 0 if j < self.split else self.split

    def colour(self, signature: Any) -> int:
        return self.ids.setdefault(signature, len(self.ids))

    def label(self, v: Vertex) -> tuple:
        return (v.kind, v.facts)

    def ins(self, j: int, colours: Sequence[int]) -> tuple:
        v, o = self.vertices[j], self.offset(j)
        items = [(colours[i + o], k) for i, k in v.inputs]
        return tuple(items if v.ordered else sorted(items))

    def up(self) -> list[int]:
        """From the inputs: a vertex's colour is its label and its inputs' colours (the graph
        unfolded into the tree of everything it reads)."""
        colours = [0] * len(self.vertices)
        for j, v in enumerate(self.vertices):  # each side is in topological order
            colours[j] = self.colour(("up", self.label(v), self.ins(j, colours)))
        return colours

    def down(self) -> list[int]:
        """From the outputs: a vertex's label and its readers' colours, with the port."""
        colours = [0] * len(self.vertices)
        for j in reversed(range(len(self.vertices))):
            outs = sorted((colours[r], port, k) for r, port, k in self.readers[j])
            colours[j] = self.colour(("down", self.label(self.vertices[j]), tuple(outs)))
        return colours

    def refine(self, colours: list[int]) -> list[int]:
        """Split colours by neighbours' colours until nothing splits."""
        count = len(set(colours))
        while True:
            signatures = []
            for j in range(len(self.vertices)):
                outs = sorted((colours[r], port, k) for r, port, k in self.readers[j])
                signatures.append((colours[j], self.ins(j, colours), tuple(outs)))
            order = {s: i for i, s in enumerate(sorted(set(signatures)))}
            colours = [order[s] for s in signatures]
            if len(order) == count:
                return colours
            count = len(order)


@dataclass(frozen=True)
class Pairing:
    """The result of pairing: the netc and Keras skeletons and, per netc vertex, its partner."""

    netc: list[Vertex]
    keras: list[Vertex]
    partner: dict[int, int]  # netc vertex index -> Keras vertex index

    def pairs(self) -> list[tuple[Vertex, Vertex]]:
        return [(self.netc[a], self.keras[b]) for a, b in sorted(self.partner.items())]


def pair(
    a: list[Vertex],
    b: list[Vertex],
    pins: Mapping[str, str] | None = None,
    model: Model | None = None,
) -> Pairing:
    """Pair the netc skeleton `a` with the Keras skeleton `b`; `pins` fixes pairs by name
    (netc layer -> Keras layer) where the structure alone cannot decide."""
    c = _Colours(a, b)
    up = c.up()
    _stop_at_first_difference(c, up, "up", model)
    down = c.down()
    _stop_at_first_difference(c, down, "down", model)
    colours = [c.colour(("both", u, d)) for u, d in zip(up, down)]
    for netc_name, keras_name in (pins or {}).items():
        i = _by_name(a, netc_name, NETC)
        j = _by_name(b, keras_name, KERAS) + c.split
        if c.label(a[i]) != c.label(c.vertices[j]):
            raise _diagnostic(
                f"{_describe(a[i])} cannot pair with {_describe(c.vertices[j])} (given in the "
                f"pairs): their kinds or weights differ",
                a[i],
                [],
                None,
                model,
            )
        fresh = c.colour(("pin", netc_name, keras_name))
        colours[i] = colours[j] = fresh
    colours = c.refine(colours)
    classes: dict[int, tuple[list[int], list[int]]] = {}
    for j, colour in enumerate(colours):
        side = classes.setdefault(colour, ([], []))
        side[0 if j < c.split else 1].append(j if j < c.split else j - c.split)
    partner: dict[int, int] = {}
    ambiguous = []
    for mine, theirs in sorted(classes.values()):
        if len(mine) != len(theirs):
            raise _differ(a, b, mine, theirs, model)
        if len(mine) == 1:
            partner[mine[0]] = theirs[0]
        elif any(a[i].has_weights for i in mine):
            ambiguous.append((mine, theirs))
        # weightless joins that nothing tells apart carry no weights: they stay unpaired
    if ambiguous:
        raise _ambiguous(a, b, ambiguous, model)
    return Pairing(a, b, partner)


def _by_name(vertices: list[Vertex], name: str, side: str) -> int:
    for i, v in enumerate(vertices):
        if v.name == name and v.has_weights:
            return i
    raise error(f"no {side} layer with weights is called `{name}` (in the pairs given)")


def _stop_at_first_difference(c: _Colours, colours: list[int], direction: str, model) -> None:
    """When the two sides' colour multisets differ, raise at the first netc vertex (from the
    inputs for "up", from the outputs for "down") with no Keras counterpart, or the first Keras
    vertex with no netc counterpart."""
    a_cols, b_cols = colours[: c.split], colours[c.split :]
    if Counter(a_cols) == Counter(b_cols):
        return
    a, b = c.vertices[: c.split], c.vertices[c.split :]
    order_a = list(range(len(a)))
    order_b = list(range(len(b)))
    if direction == "down":
        order_a.reverse()
        order_b.reverse()
    lone_a = _unmatched(order_a, a_cols, Counter(b_cols))
    lone_b = _unmatched(order_b, b_cols, Counter(a_cols))
    j = lone_a if lone_a is not None else c.split + (lone_b or 0)
    raise _no_counterpart(c, colours, j, _counterparts(c, colours, j, direction), model, direction)


def _unmatched(order: list[int], mine: list[int], theirs: Counter) -> int | None:
    left = Counter(theirs)
    for i in order:
        if left[mine[i]] > 0:
            left[mine[i]] -= 1
        else:
            return i
    return None


def _counterparts(c: _Colours, colours: list[int], j: int, direction: str) -> list[int]:
    """The other side's unmatched vertices in the place of vertex `j` (a global index): those
    reading inputs coloured as `j`'s inputs ("up"), or read by readers coloured as `j`'s
    readers ("down"); their indices on their own side."""
    n = len(c.vertices)
    mine = range(0, c.split) if j < c.split else range(c.split, n)
    other = range(c.split, n) if j < c.split else range(0, c.split)
    count_mine = Counter(colours[i] for i in mine)
    count_other = Counter(colours[i] for i in other)
    lone = [i for i in other if count_other[colours[i]] > count_mine[colours[i]]]

    def around(i: int) -> set[int]:
        if direction == "up":
            return {colours[x + c.offset(i)] for x, _ in c.vertices[i].inputs}
        return {colours[r] for r, _, _ in c.readers[i]}

    want = around(j)
    return [i - other.start for i in lone if around(i) & want]


# --- describing vertices in messages ----------------------------------------------------------


def _owner(side: str) -> str:
    return "Keras'" if side == KERAS else "netc's"


def _describe(v: Vertex) -> str:
    """`netc's `conv2d_3` (conv2d with kernel [3, 3, 8, 8], line 12)`, `Keras' `b1` (...)`."""
    if v.kind in ("input", "output"):
        return f"{_owner(v.side)} {v.kind} `{v.name}`"
    where = ""
    if v.side == NETC and v.ref is not None and v.ref.span is not None:
        where = f", line {v.ref.span.line}"
    return f"{_owner(v.side)} `{v.name}` ({_what(v)}{where})"


def _what(v: Vertex) -> str:
    kind = v.kind
    if v.side == KERAS and v.ref is not None:
        kind = type(v.ref[0]).__name__
    if v.has_weights:
        return f"{kind} with " + ", ".join(f"{k} {list(s)}" for k, s in v.facts)
    if v.kind == "concat":
        return f"{kind} on axis {v.facts[0]}"
    return kind


def _span(v: Vertex) -> Any:
    return v.ref.span if v.side == NETC and v.ref is not None else None


def _calls(v: Vertex) -> tuple:
    return v.ref.calls if v.side == NETC and v.ref is not None else ()


def _diagnostic(message: str, v: Vertex, notes: list[str], hint: str | None, model) -> NetcError:
    """An error at netc vertex `v`'s line (with its block calls), rendered with the source."""
    d = Diagnostic("error", message, _span(v), _calls(v), hint, tuple(notes))
    return NetcError([d], model.sources if model is not None else None)


def _no_counterpart(
    c: _Colours, colours: list[int], j: int, there: list[int], model, direction: str
) -> NetcError:
    """Vertex `j` (a global index, either side) has no vertex of its colour on the other side;
    `there` are the other side's unmatched vertices in its place (their own indices)."""
    v = c.vertices[j]
    theirs = c.vertices[c.split :] if j < c.split else c.vertices[: c.split]
    other = KERAS if v.side == NETC else NETC

    def twin(g: int) -> str:
        """` (the other side's `name`)` for a vertex with one counterpart of its colour."""
        same = [i for i, x in enumerate(colours) if x == colours[g] and i != g]
        if len(same) == 1 and (same[0] < c.split) != (g < c.split):
            twin = c.vertices[same[0]]
            return f" ({_owner(twin.side)} `{twin.name}`)"
        return ""

    def reads(g: int) -> str:
        u, base = c.vertices[g], c.offset(g)
        if not u.inputs:
            return "reads nothing"
        return "reads " + ", ".join(
            f"`{c.vertices[i + base].name}`" + (f"[{k}]" if k else "") + twin(i + base)
            for i, k in u.inputs
        )

    def read_by(g: int) -> str:
        names = [f"`{c.vertices[r].name}`{twin(r)}" for r, _, _ in c.readers[g]]
        return "is read by " + (", ".join(names) or "nothing")

    around = reads if direction == "up" else read_by
    notes = [f"it {around(j)}"]
    base = c.split if j < c.split else 0
    for t in there:
        notes.append(f"in its place is {_describe(theirs[t])}, which {around(t + base)}")
    if not there:
        notes.append(f"the {other} model has nothing in its place")
    message = f"{_describe(v)} has no counterpart in the {other} model"
    hint = _hint(v, [theirs[t] for t in there])
    anchor = v if v.side == NETC else next((theirs[t] for t in there), v)
    return _diagnostic(message, anchor, notes, hint, model)


def _hint(v: Vertex, there: list[Vertex]) -> str | None:
    """A certain fix for the common differences: a bias or batchnorm scale/center present on
    one side only."""
    if len(there) != 1 or not v.has_weights or v.kind != there[0].kind:
        return None
    netc, keras = (v, there[0]) if v.side == NETC else (there[0], v)
    n, k = dict(netc.facts), dict(keras.facts)
    if {x: s for x, s in n.items() if x != "bias"} == {x: s for x, s in k.items() if x != "bias"}:
        if "bias" in n and "bias" not in k:
            return f"Keras' `{keras.name}` has no bias: write `{netc.kind}(..., bias=false)`"
        if "bias" in k and "bias" not in n:
            return f"Keras' `{keras.name}` has a bias: drop `bias=false`"
    if netc.kind == "batchnorm":
        fixes = [
            f"{flag}={'true' if name in k else 'false'}"
            for name, flag in (("gamma", "scale"), ("beta", "center"))
            if (name in n) != (name in k)
        ]
        if fixes:
            return f"write `batchnorm({', '.join(fixes)})` as Keras' `{keras.name}` has it"
    return None


def _differ(a, b, mine: list[int], theirs: list[int], model) -> NetcError:
    v = a[mine[0]] if mine else b[theirs[0]]
    notes = [f"netc has {len(mine)} such vertices and Keras {len(theirs)}"]
    notes += [f"in the Keras model: {_describe(b[j])}" for j in theirs[:4]]
    return _diagnostic(
        f"{_describe(v)} cannot be paired: the two graphs differ around it", v, notes, None, model
    )


def _ambiguous(a, b, groups, model) -> NetcError:
    diagnostics = []
    for mine, theirs in groups:
        if not a[mine[0]].has_weights:
            continue
        v = a[mine[0]]
        others = ", ".join(f"`{a[i].name}`" for i in mine[1:])
        keras = ", ".join(f"`{b[j].name}`" for j in theirs)
        notes = [
            f"netc's {others} and it have the same kind, weight shapes and connections",
            f"so do Keras' {keras}: which goes with which, only the numbers could tell",
        ]
        pins = ", ".join(f"{a[i].name}={b[j].name}" for i, j in zip(mine, theirs))
        hint = (
            f"pair them by name with `--pair NETC=KERAS` (`pairs={{...}}` in Python), e.g. "
            f"`--pair {pins.split(', ')[0]}` if those two go together; one pin settles the "
            f"layers linked to it too"
        )
        diagnostics.append(
            Diagnostic(
                "error",
                f"cannot tell which Keras layer pairs with {_describe(v)}",
                _span(v),
                _calls(v),
                hint,
                tuple(notes),
            )
        )
    return NetcError(diagnostics, model.sources if model is not None else None)


# --- settings the weights do not show ---------------------------------------------------------

CONVS = ("conv", "depthwise_conv", "separable_conv")


def check_pairs(pairing: Pairing, model: Model) -> None:
    """Compare each pair's settings that weight shapes do not show (strides, padding, epsilon,
    activation, output shape, recurrent and attention options); one error per differing pair."""
    same_inputs = all(
        _same_dims(_shape(a.ref.type)[1:], _keras_shape(b.ref[0].output)[1:])
        for a, b in pairing.pairs()
        if a.kind == "input"
    )
    diagnostics = []
    for a, b in pairing.pairs():
        if not a.has_weights:
            continue
        problems = _differences(a, b, model.graph, same_inputs)
        if problems:
            layer = b.ref[0]
            diagnostics.append(
                Diagnostic(
                    "error",
                    f"netc layer `{a.name}` is paired with Keras layer `{b.name}` "
                    f"({type(layer).__name__}), but they compute different things",
                    a.ref.span,
                    a.ref.calls,
                    None,
                    tuple(problems),
                )
            )
    if diagnostics:
        raise NetcError(diagnostics, model.sources)


def _same_dims(mine: Sequence[Any], theirs: Sequence[Any]) -> bool:
    """Equal ranks and equal sizes where both are known (netc's symbols, Keras' None)."""
    return len(mine) == len(theirs) and all(
        x == y for x, y in zip(mine, theirs) if isinstance(x, int) and isinstance(y, int)
    )


def _shape(t: Any) -> tuple:
    first = t[0] if isinstance(t, tuple) else t
    return tuple(first.shape)


def _keras_shape(t: Any) -> tuple:
    first = t[0] if isinstance(t, (list, tuple)) else t
    return tuple(first.shape)


def _differences(a: Vertex, b: Vertex, graph: Graph, same_inputs: bool) -> list[str]:
    node: Node = a.ref
    layer, knode = b.ref
    config = layer.get_config()
    attrs = node.attrs
    out = []

    def differ(what: str, netc_value: Any, keras_value: Any) -> None:
        out.append(f"{what}: netc has {netc_value}, Keras has {keras_value}")

    if same_inputs:
        mine, theirs = _shape(node.type)[1:], _keras_shape(knode.output_tensors)[1:]
        if not _same_dims(mine, theirs):
            differ("output shape (batch aside)", list(mine), list(theirs))
    if a.kind.startswith(CONVS) or a.kind.endswith("_transpose"):
        for name, key in (("stride", "strides"), ("dilation", "dilation_rate")):
            if tuple(attrs[name]) != tuple(config[key]):
                differ(name, tuple(attrs[name]), tuple(config[key]))
        if config.get("data_format", "channels_last") != "channels_last":
            out.append(f"data format: Keras' is {config['data_format']}, netc's channels_last")
        if same_inputs and not a.kind.endswith("_transpose"):  # "same" depends on the size
            mine_pads, theirs_pads = _netc_pads(node, graph), _keras_pads(layer, knode, config)
            if mine_pads is not None and theirs_pads is not None and mine_pads != theirs_pads:
                differ(
                    "padding (before, after) per axis, pads before it included",
                    mine_pads,
                    theirs_pads,
                )
    if a.kind in ("batchnorm", "layernorm"):
        if not math.isclose(attrs["epsilon"], config["epsilon"], rel_tol=1e-6):
            differ("epsilon", attrs["epsilon"], config["epsilon"])
        rank = len(_shape(node.type))
        keras_axes = (
            config["axis"] if isinstance(config["axis"], (list, tuple)) else [config["axis"]]
        )
        netc_axes = attrs["axis"] if isinstance(attrs["axis"], tuple) else (attrs["axis"],)
        if sorted(x % rank for x in keras_axes) != sorted(netc_axes):
            differ("axis", netc_axes, tuple(keras_axes))
        if config.get("rms_scaling"):
            out.append("Keras' layer uses rms_scaling, which netc's layernorm does not")
    if a.kind in ("lstm", "gru"):
        for key, want in (("activation", "tanh"), ("recurrent_activation", "sigmoid")):
            if config[key] != want:
                out.append(f"{key}: Keras has {config[key]}, netc's {a.kind} computes {want}")
        for key in ("return_sequences", "return_state", "go_backwards"):
            if attrs[key] != config[key]:
                differ(key, attrs[key], config[key])
        if config.get("stateful"):
            out.append("Keras' layer is stateful; netc's starts every batch from zero states")
    if a.kind == "multi_head_attention":
        causal = bool(knode.arguments.kwargs.get("use_causal_mask", False))
        if attrs["causal"] != causal:
            differ("causal mask", attrs["causal"], causal)
        if config.get("attention_axes") not in (None, [1], (1,)):
            out.append(f"Keras attends over axes {config['attention_axes']}, netc over axis 1")
    if a.kind == "embedding" and config.get("mask_zero"):
        out.append("Keras masks id 0 (mask_zero=True); netc has no masks")
    activation = config.get("activation")
    if a.kind in ("dense",) or a.kind.startswith(CONVS) or a.kind.endswith("_transpose"):
        if activation not in (None, "linear"):
            applied = _netc_activation(node, graph)
            wanted = ACTIVATIONS.get(activation) if isinstance(activation, str) else None
            if wanted is None or applied != wanted:
                out.append(
                    f"Keras applies the activation {activation!r} inside the layer; netc's "
                    f"layer is followed by {applied or 'no activation'}"
                )
    return out


def _netc_activation(node: Node, graph: Graph) -> str | None:
    """The activation applied to `node`'s output: its own attribute, or its one reader's op."""
    if node.attrs.get("activation") not in (None, "none"):
        return str(node.attrs["activation"])
    readers = graph.readers.get(node.name, ())
    if len(readers) == 1 and readers[0] != "<output>":
        return graph[readers[0]].op
    return None


def _netc_pads(node: Node, graph: Graph) -> list[tuple[int, int]] | None:
    pads = [tuple(p) for p in node.attrs["padding"]]
    x = graph[node.inputs[0]]
    while x.op == "pad" and x.attrs["mode"] == "constant" and x.attrs["value"] == 0:
        outer = x.attrs["pads"]
        if tuple(outer[0]) != (0, 0) or tuple(outer[-1]) != (0, 0):
            break
        pads = [(b + p[0], e + p[1]) for (b, e), p in zip(pads, outer[1:-1])]
        x = graph[x.inputs[0]]
    return pads


def _keras_pads(layer: Any, knode: Any, config: Mapping[str, Any]) -> list[tuple[int, int]] | None:
    """The padding a Keras convolution applies, ZeroPadding layers right before it included;
    None when the input's spatial size is unknown."""
    x = knode.input_tensors[0]
    spatial = tuple(x.shape[1:-1])
    if any(d is None for d in spatial):
        return None
    pads = []
    for size, k, s, d in zip(
        spatial, config["kernel_size"], config["strides"], config["dilation_rate"]
    ):
        span = (k - 1) * d + 1
        if config["padding"] == "same":
            total = max((-(-size // s) - 1) * s + span - size, 0)
            pads.append((total // 2, total - total // 2))
        elif config["padding"] == "causal":
            pads.append((span - 1, 0))
        else:
            pads.append((0, 0))
    while True:
        op, node_index, _ = x._keras_history
        if not type(op).__name__.startswith("ZeroPadding") or not op._inbound_nodes:
            return pads
        outer = op.get_config()["padding"]
        pairs = [tuple(outer)] if isinstance(outer[0], int) else [tuple(p) for p in outer]
        pads = [(b + p[0], e + p[1]) for (b, e), p in zip(pads, pairs)]
        x = op._inbound_nodes[node_index].input_tensors[0]


# --- the weights -------------------------------------------------------------------------------


def weight_values(pairing: Pairing) -> dict[str, np.ndarray]:
    """Every netc weight, from its Keras partner. The layouts are netc's own (docs/ops.md: netc
    took Keras' layout for every op with weights), so values move as they are; the pairing has
    checked that every shape agrees."""
    out: dict[str, np.ndarray] = {}
    for a, b in pairing.pairs():
        for name, param in a.weights.items():
            value = np.asarray(b.weights[name].numpy())
            assert tuple(value.shape) == tuple(param.tensor_type.shape), (a.name, name)
            out[param.name] = value
    return out


def match(
    model: Model, keras_model: Any, pairs: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """The (netc layer, Keras layer) pairs of every layer with weights, in netc's order."""
    return [
        (a.name, b.name) for a, b in _pairing(model, keras_model, pairs).pairs() if a.has_weights
    ]


def _pairing(model: Model, keras_model: Any, pairs: Mapping[str, str] | None) -> Pairing:
    netc_side = netc_skeleton(model.graph)
    keras_side = keras_skeleton(keras_model)
    functional = _functional(keras_model)
    n_in, k_in = len(model.graph.inputs), len(functional.inputs)
    n_out, k_out = len(model.graph.outputs), len(functional.outputs)
    if (n_in, n_out) != (k_in, k_out):
        raise error(
            f"model `{model.graph.name}` has {n_in} input(s) and {n_out} output(s), the Keras "
            f"model `{keras_model.name}` {k_in} and {k_out}",
            hint="inputs and outputs are paired by position",
        )
    pairing = pair(netc_side, keras_side, pairs, model)
    check_pairs(pairing, model)
    return pairing


def from_keras_model(
    model: Model, keras_model: Any, pairs: Mapping[str, str] | None = None
) -> tuple[dict[str, np.ndarray], list[tuple[str, str]]]:
    """`model`'s weights from a loaded Keras model, and the (netc, Keras) layer pairs. A
    model netc's Keras backend built records each netc weight's variable: its weights load by
    those names (`to_keras.weights_by_name`); any other is paired by structure."""
    from .weights import check_weights

    source = f"Keras model `{keras_model.name}`"
    recorded = getattr(keras_model, "netc", None)
    if isinstance(recorded, dict) and recorded.get("weights") and not pairs:
        from .backends.to_keras import weights_by_name

        values = check_weights(model.graph, weights_by_name(keras_model), source)
        layers = {
            name.rsplit(".", 1)[0]: path.split("/")[0] for name, path in recorded["weights"].items()
        }
        return values, sorted(layers.items())
    pairing = _pairing(model, keras_model, pairs)
    values = check_weights(model.graph, weight_values(pairing), source)
    return values, [(a.name, b.name) for a, b in pairing.pairs() if a.has_weights]


def from_keras(
    model: Model,
    source: Any,
    *,
    architecture: str | Path | None = None,
    pairs: Mapping[str, str] | None = None,
    check: bool = True,
) -> dict[str, np.ndarray]:
    """Every weight of `model` by netc name, taken from the Keras model `source` (a keras.Model,
    a `.keras` file, or a `.weights.h5` file with `architecture`: a `.keras` file or a JSON
    model config) by pairing the two graphs' structure; a NetcError naming both sides where a
    layer has no partner, several, or different settings. With `check`, both models then run
    on one random input (`compare_outputs`)."""
    keras_model = load_keras(source, architecture)
    values, _ = from_keras_model(model, keras_model, pairs)
    if check:
        compare_outputs(model, keras_model, values, pairs=pairs)
    return values


# --- running both ------------------------------------------------------------------------------


def compare_outputs(
    model: Model,
    keras_model: Any,
    weights: Mapping[str, np.ndarray],
    *,
    pairs: Mapping[str, str] | None = None,
    seed: int = 0,
) -> float | None:
    """Run netc's numpy reference (float32) and Keras (`training=False`) on one seeded random
    input at batch 2; return the largest absolute difference of the outputs, or None when the
    two models take inputs of different shapes. Outputs that differ beyond the model tolerance
    (netc.runtime.tolerance) raise a NetcError at the first paired layer whose values differ:
    what the weights cannot show (an activation, a pooling) differs between there and the
    paired layers before it."""
    # the oracle and the tolerance table live in the runtime; only this check needs them
    from netc.runtime.tolerance import mismatch

    functional = _functional(keras_model)
    feed = _random_inputs(model.graph, functional, seed)
    if feed is None:
        return None
    values = _evaluate(model.graph, feed, weights)
    got = [values[v] for _, v in model.graph.outputs]
    want = keras_model(_keras_feed(feed, model.graph), training=False)
    want = [np.asarray(w) for w in (want if isinstance(want, (list, tuple)) else [want])]
    largest = max(float(np.max(np.abs(g - w), initial=0.0)) for g, w in zip(got, want))
    if all(mismatch(g, w.astype(g.dtype), scope="model") is None for g, w in zip(got, want)):
        return largest
    raise _first_difference(model, keras_model, pairs, feed, values, largest)


def _keras_feed(feed: Mapping[str, np.ndarray], graph: Graph) -> Any:
    """The inputs as a Keras model takes them: one array, or a list in the inputs' order."""
    arrays = [feed[i] for i in graph.inputs]
    return arrays[0] if len(arrays) == 1 else arrays


def _random_inputs(graph: Graph, functional: Any, seed: int) -> dict[str, np.ndarray] | None:
    from .ir import numpy_dtype

    rng = np.random.default_rng(seed)
    vocab = min([n.attrs["vocab"] for n in graph.nodes if n.op == "embedding"] or [2])
    feed = {}
    for name, keras_input in zip(graph.inputs, functional.inputs):
        t = graph[name].tensor_type
        theirs = tuple(keras_input.shape)
        if len(theirs) != t.rank:
            return None
        shape = []
        for axis, (mine, other) in enumerate(zip(t.shape, theirs)):
            if axis == 0:
                shape.append(2)
            elif isinstance(mine, int):
                if other is not None and other != mine:
                    return None
                shape.append(mine)
            else:
                shape.append(other if other is not None else 5)
        dtype = numpy_dtype(t.dtype)
        if t.is_float:
            feed[name] = rng.standard_normal(shape).astype(dtype)
        else:
            feed[name] = rng.integers(0, vocab, shape).astype(dtype)
    return feed


def _evaluate(
    graph: Graph, feed: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """Every value of the graph, by the ops' numpy meanings (the reference's loop, keeping the
    intermediate values for the comparison layer by layer)."""
    from .ops import OPS

    env: dict[str, Any] = {}
    for n in graph.nodes:
        if n.op == "input":
            env[n.name] = np.asarray(feed[n.name])
        elif n.op == "param":
            env[n.name] = np.asarray(weights[n.name])
        elif n.op == "constant":
            env[n.name] = n.attrs["value"].array
        elif n.op == "item":
            env[n.name] = env[n.inputs[0]][n.attrs["index"]]
        else:
            with np.errstate(over="ignore"):
                env[n.name] = OPS[n.op].evaluate([env[i] for i in n.inputs], n.attrs)
    return env


def _first_difference(
    model: Model,
    keras_model: Any,
    pairs: Mapping[str, str] | None,
    feed: Mapping[str, np.ndarray],
    values: dict,
    largest: float,
) -> NetcError:
    """The error for outputs that differ: at the first paired layer (in netc's order) whose
    values differ from its Keras partner's, when the Keras graph lets its values be read."""
    from netc.runtime.tolerance import mismatch

    keras = _keras()
    pairing = _pairing(model, keras_model, pairs)
    functional = _functional(keras_model)
    graph = model.graph
    compared = []
    for a, b in pairing.pairs():
        if a.kind in ("input", "output") or b.ref[1] is None:
            continue
        layer, knode = b.ref
        name = a.ref.name
        activation = layer.get_config().get("activation") if a.has_weights else None
        if activation not in (None, "linear") and _netc_activation(a.ref, graph):
            name = graph.readers[name][0]  # Keras' layer output is after its activation
        tensor = knode.output_tensors[0]
        if isinstance(a.ref.type, tuple):
            name = next(
                (
                    n.name
                    for n in graph.nodes
                    if n.op == "item" and n.inputs[0] == name and n.attrs["index"] == 0
                ),
                name,
            )
        compared.append((a, b, name, tensor))
    summary = f"the largest difference is {largest:.3g}"
    try:
        inputs = functional.inputs[0] if len(functional.inputs) == 1 else functional.inputs
        probe = keras.Model(inputs, [t for _, _, _, t in compared])
        theirs = probe(_keras_feed(feed, graph), training=False)
    except Exception:  # a nested model's tensors are not reachable from the outer inputs
        return error(
            f"with the weights paired, netc's outputs differ from Keras model "
            f"`{keras_model.name}`'s: {summary}",
            hint="the models differ where weights do not show (an activation, a pooling); "
            "`netc verify` and Keras' layer outputs can narrow it down",
        )
    if not isinstance(theirs, (list, tuple)):
        theirs = [theirs]
    agreed: dict[int, Vertex] = {}  # netc vertex index -> its Keras partner, values equal
    index = {id(v): i for i, v in enumerate(pairing.netc)}
    for (a, b, name, _), want in zip(compared, theirs):
        want = np.asarray(want)
        got = np.asarray(values[name])
        found = (
            f"shape {list(got.shape)}, Keras' {list(want.shape)}"
            if got.shape != want.shape
            else mismatch(got, want.astype(got.dtype), scope="model")
        )
        if found is None:
            agreed[index[id(a)]] = b
            continue
        inputs = [pairing.netc[i] for i, _ in a.inputs if pairing.netc[i].kind != "input"]
        if inputs and all(index[id(u)] in agreed for u in inputs):
            agreeing = ", ".join(
                f"netc's `{u.name}` with `{agreed[index[id(u)]].name}`" for u in inputs
            )
            before = f"its inputs agree with Keras': {agreeing}"
        elif not inputs:
            before = "it reads the model's inputs"
        else:
            before = "some of its inputs differ already, where Keras' values cannot be read"
        notes = [f"Keras' `{b.name}` ({type(b.ref[0]).__name__}): {found}", before]
        notes.append(f"at the outputs {summary}")
        return _diagnostic(
            f"{_describe(a).split(' (')[0]} (line {a.ref.span.line if a.ref.span else '?'}) "
            f"computes other values than Keras' `{b.name}`, with the same weights",
            a,
            notes,
            "the models differ between its inputs and it, where weights do not show: an "
            "activation, a pooling, a constant",
            model,
        )
    return error(
        f"with the weights paired, netc's outputs differ from Keras model "
        f"`{keras_model.name}`'s, after the last paired layer: {summary}",
        hint="the models differ after their last layers with weights (an activation, a pooling)",
    )


# --- reading Keras models ---------------------------------------------------------------------


def _keras() -> Any:
    """Keras, with TensorFlow imported quietly and netc's own Keras layers registered (so
    that a `.keras` file netc wrote loads); a NetcError naming the extra when missing."""
    from .backends import tensorflow

    try:
        tensorflow("--from-keras")
    except NetcError:
        raise error(
            "reading Keras weights needs TensorFlow and Keras, which are not installed",
            hint="pip install 'netc[tf]'",
        ) from None
    import keras

    from .backends import keras_layers  # noqa: F401  (registers netc>... layers)

    return keras


def load_keras(source: Any, architecture: str | Path | None = None) -> Any:
    """A keras.Model from a keras.Model (returned as it is), a `.keras` file, or a
    `.weights.h5` file loaded into the model `architecture` describes (a `.keras` file or a
    JSON config from `model.to_json()`). A `.weights.h5` alone is refused: Keras 3 addresses
    its layers by class and position, not by name, so loading it into any model but the one
    it was saved from can succeed with the wrong pairs. Never unpickles: Keras' safe mode
    refuses Lambda layers, whose code only pickled bytes hold."""
    if not isinstance(source, (str, Path)):
        if architecture is not None:
            raise error("an architecture is for a .weights.h5 file, not for a Keras model")
        return source
    path = Path(source)
    if not path.exists():
        raise error(f"no such Keras file: {path}")
    if path.name.endswith(".keras"):
        if architecture is not None:
            raise error(f"{path} holds its architecture; --keras-architecture is for .weights.h5")
        return _read(path, lambda keras: keras.saving.load_model(path, compile=False))
    if not path.name.endswith(".h5"):
        raise error(
            f"netc reads Keras models from .keras and .weights.h5 files, not {path.name}",
            hint="save the model with model.save('MODEL.keras')",
        )
    if architecture is None:
        raise error(
            f"{path} holds weights only: which layer feeds which is not in it, and Keras "
            f"addresses its layers by class and position, not by name",
            hint="pass the Keras model they were saved from: --keras-architecture MODEL.keras "
            "or a JSON file from model.to_json() (library: architecture=...)",
        )
    keras_model = load_keras_architecture(architecture)
    _read(path, lambda keras: keras_model.load_weights(path))
    return keras_model


def load_keras_architecture(path: str | Path) -> Any:
    """The Keras model a `.keras` file or a JSON config describes (weights as initialized)."""
    p = Path(path)
    if not p.exists():
        raise error(f"no such Keras architecture file: {p}")
    if p.name.endswith(".keras"):
        return _read(p, lambda keras: keras.saving.load_model(p, compile=False))
    if p.suffix == ".json":

        def build(keras: Any) -> Any:
            import json

            config = json.loads(p.read_text(encoding="utf-8"))
            return keras.saving.deserialize_keras_object(config, safe_mode=True)

        return _read(p, build)
    raise error(
        f"a Keras architecture is a .keras file or a .json config, not {p.name}",
        hint="write one with open('model.json', 'w').write(model.to_json())",
    )


def _read(path: Path, read: Any) -> Any:
    """Run `read(keras)`; Keras' errors become a NetcError naming the file (and its warnings
    about skipped variables, which come with an error, are not printed)."""
    import warnings

    keras = _keras()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return read(keras)
    except NetcError:
        raise
    except Exception as e:  # Keras raises ValueError, TypeError, OSError... for a bad file
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "safe_mode" in str(e) or "Lambda" in str(e):
            raise error(
                f"{path} holds a Lambda layer: its code is pickled Python, which netc never "
                f"loads (Keras' safe mode)",
                hint="replace the Lambda by built-in layers, or by a registered custom layer",
            ) from None
        raise error(f"cannot read Keras model {path}: {text}") from None
