"""Lowering netc's IR to Keras layers: `KerasContext` (what one emission builds: each IR
value's Keras tensor, the layer computing it, each netc weight's Keras variable) and the one
rule table `RULES`, whose rules live in `keras_rules` and `keras_conv`. Keras is imported by
`keras_modules`, only when a model is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..ir import DTYPES, Graph, Node, TensorType
from . import GraphContext, Rules

RULES = Rules("keras")

# netc's dtypes by the framework's names: numpy's, TensorFlow's and Keras' are one
KERAS_DTYPES = DTYPES
NETC_DTYPES = {v: k for k, v in KERAS_DTYPES.items()}


def keras_modules() -> tuple[Any, Any]:
    """(keras, netc's keras_layers), imported with TensorFlow's quiet start-up."""
    from . import keras_layers, tensorflow

    tensorflow("keras")
    import keras

    return keras, keras_layers


# --- the context -----------------------------------------------------------------------------


class KerasContext(GraphContext):
    """What one emission builds: each IR value's Keras tensor, the layer that computes it, and
    each netc weight's Keras variable."""

    def __init__(
        self, graph: Graph, weights: Mapping[str, np.ndarray], source: Graph | None = None
    ):
        self.keras, self.custom = keras_modules()
        self.layers = self.keras.layers
        self.graph = graph
        self.weights = weights
        self.source = source
        self.values: dict[str, Any] = {}  # IR value -> Keras tensor (a tuple: multi-result)
        self.layer_of: dict[str, str] = {}  # IR value -> the Keras layer computing it
        self.variables: dict[str, Any] = {}  # netc weight -> Keras variable
        self.reserved = {n.name for n in graph.nodes} | (
            {n.name for n in source.nodes} if source is not None else set()
        )
        self.names: set[str] = set()
        self.node: Node = graph.nodes[0] if graph.nodes else Node("", "")
        self.name = ""  # the name of the layer the current rule makes

    # -- names --

    def fresh(self, base: str) -> str:
        """A layer name starting with `base`, unused, and no IR node's name."""
        name, k = base, 0
        while name in self.names or name in self.reserved:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    def claim(self, name: str) -> str:
        """`name` for a layer that computes the IR value (or absorbed node) of that name."""
        assert name not in self.names, f"two Keras layers named `{name}`"
        self.names.add(name)
        return name

    # -- IR values --

    def tensor(self, name: str) -> Any:
        """The Keras tensor of computed IR value (or input) `name`."""
        if self.is_data(name):
            raise RULES.cannot(
                self.node, f": it reads the {self.graph[name].op} `{name}` as a tensor input"
            )
        value = self.values[name]
        assert not isinstance(value, tuple), f"`{name}` is a tuple, read it through `item`"
        return value

    def operand(self, name: str) -> tuple[Any, Any, str | None]:
        """An operand of a `netc>Binary` or `netc>Unary` layer: (its spec, the tensor to call
        the layer with or None, the weight the layer owns or None)."""
        value = self.graph[name]
        t = value.tensor_type
        if value.op == "constant":
            return (
                {"constant": self.array(name).tolist(), "dtype": KERAS_DTYPES[t.dtype]},
                None,
                None,
            )
        if value.op == "param":
            spec = {
                "weight": name.rsplit(".", 1)[-1],
                "shape": list(t.shape),
                "dtype": KERAS_DTYPES[t.dtype],
                "trainable": bool(value.attrs.get("trainable", True)),
            }
            return spec, None, name
        return "input", self.tensor(name), None

    def anchor(self) -> Any:
        """A tensor to call a layer with that computes from its own weights or constants
        alone (Keras' functional models connect every layer to the inputs)."""
        if not self.graph.inputs:
            raise RULES.cannot(self.node, ": a model without inputs")
        return self.values[self.graph.inputs[0]]

    def params(self, node: Node) -> list[str]:
        """The node's weights (its `param` inputs), in input order: Keras' order."""
        return [i for i in node.inputs if self.graph[i].op == "param"]

    def dtype(self, node: Node) -> str | None:
        """The float dtype a layer for `node` computes in: its first float input's, else its
        result's (None: Keras' default, for integer and bool ops)."""
        types = [self.graph[i].type for i in node.inputs] + [node.type]
        for t in types:
            for tt in t if isinstance(t, tuple) else (t,):
                if isinstance(tt, TensorType) and tt.is_float:
                    return KERAS_DTYPES[tt.dtype]
        return None

    def kw(self, node: Node | None = None, name: str | None = None) -> dict[str, Any]:
        """Keyword arguments every layer takes: its name and dtype."""
        node = node or self.node
        out: dict[str, Any] = {"name": name or self.name}
        dtype = self.dtype(node)
        if dtype is not None:
            out["dtype"] = dtype
        return out

    def apply(self, layer: Any, *args: Any, params: Sequence[str] = (), **kwargs: Any) -> Any:
        """Call `layer` (which builds it), then set its variables, in Keras' order, to the netc
        weights `params` and remember which variable holds which weight."""
        out = layer(*args, **kwargs)
        variables = list(layer.weights)
        assert len(variables) == len(params), (
            f"keras: layer `{layer.name}` has {len(variables)} variables, netc gives "
            f"{len(params)} weights ({', '.join(params)})"
        )
        for var, name in zip(variables, params, strict=True):
            if name in self.variables:  # one Keras variable belongs to one layer
                readers = self.graph.readers.get(name, ())
                raise RULES.cannot(
                    self.node,
                    f": its weight `{name}` is read by several layers ({', '.join(readers)}), "
                    "and a Keras variable belongs to one layer",
                )
            value = self.array(name)
            assert tuple(var.shape) == value.shape, (
                f"keras: variable {var.path} has shape {tuple(var.shape)}, {name} {value.shape}"
            )
            var.assign(value)
            self.variables[name] = var
        return out

    # -- lowering --

    def lower(self, node: Node) -> None:
        """Run `node`'s rule; record its Keras tensor(s) and the layer that computes it."""
        self.node, self.name = node, self.claim(node.name)
        result = RULES.rule(node)(self, node)
        self.values[node.name] = tuple(result) if isinstance(result, (list, tuple)) else result
        self.layer_of[node.name] = self.layer_name(result)

    def lower_as(self, node: Node, name: str) -> Any:
        """Run the rule of `node`, a source-graph node the optimizer merged away, as a layer
        named `name`; the current node stays current."""
        current = self.node, self.name
        self.node, self.name = node, self.claim(name)
        try:
            return RULES.rule(node)(self, node)
        finally:
            self.node, self.name = current

    @staticmethod
    def layer_name(tensor: Any) -> str:
        t = tensor[0] if isinstance(tensor, (list, tuple)) else tensor
        return t._keras_history.operation.name  # the Keras layer whose output it is


def ints(values: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in values)
