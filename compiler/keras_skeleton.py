"""The skeletons `keras_weights` pairs: a netc graph or a Keras model reduced to its inputs,
the layers that hold weights, the joins and the outputs, linked by which feeds which (the
weightless one-input ops in between are the links)."""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .ir import Graph, Node
from .source import error

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
    model = functional_model(keras_model)
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


def functional_model(model: Any) -> Any:
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
        return functional_model(op)
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
