"""Pairing two skeletons (`keras_skeleton`) by colour refinement, the errors that name both
sides where a layer has no counterpart, several or different settings, and the settings the
weights do not show (strides, padding, epsilon, activation, output shape) compared pair by
pair."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .ir import Graph, Node
from .keras_skeleton import ACTIVATIONS, KERAS, NETC, Vertex
from .source import Diagnostic, NetcError, error
from .summary import Model

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
            raise diagnostic(
                f"{describe(a[i])} cannot pair with {describe(c.vertices[j])} (given in the "
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


def describe(v: Vertex) -> str:
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


def diagnostic(message: str, v: Vertex, notes: list[str], hint: str | None, model) -> NetcError:
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
        notes.append(f"in its place is {describe(theirs[t])}, which {around(t + base)}")
    if not there:
        notes.append(f"the {other} model has nothing in its place")
    message = f"{describe(v)} has no counterpart in the {other} model"
    hint = _hint(v, [theirs[t] for t in there])
    anchor = v if v.side == NETC else next((theirs[t] for t in there), v)
    return diagnostic(message, anchor, notes, hint, model)


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
    notes += [f"in the Keras model: {describe(b[j])}" for j in theirs[:4]]
    return diagnostic(
        f"{describe(v)} cannot be paired: the two graphs differ around it", v, notes, None, model
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
                f"cannot tell which Keras layer pairs with {describe(v)}",
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
            applied = netc_activation(node, graph)
            wanted = ACTIVATIONS.get(activation) if isinstance(activation, str) else None
            if wanted is None or applied != wanted:
                out.append(
                    f"Keras applies the activation {activation!r} inside the layer; netc's "
                    f"layer is followed by {applied or 'no activation'}"
                )
    return out


def netc_activation(node: Node, graph: Graph) -> str | None:
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
