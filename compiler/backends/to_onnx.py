"""The ONNX backend: a checked IR graph and its weights -> an ONNX model (standard domain only).

One rule per IR op in `RULES`. The context tracks a layout per value: the IR is channels-last,
ONNX convolutions and pools are channels-first, so spatial ops run channels-first and other
ops follow whatever layout their input has; a transpose appears only where an op needs the
other order (docs/onnx.md). `onnx` is imported lazily, inside the functions that need it.

This module holds the table, the context, emission and the elementwise rules; the other rules
register in `RULES` from their modules by concern, imported at the end: `onnx_rules_conv`
(dense, convolutions, pooling, normalization), `onnx_rules_shape` (reductions, shapes) and
`onnx_rules_sequence` (embeddings, recurrent layers, attention).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write
from ..ir import Graph, Node, TensorType, numpy_dtype
from ..source import error
from ..weights import check_weights
from . import GraphContext, Rules

OPSET = 18  # Softmax over one axis (>= 13), LayerNormalization (17); see docs/onnx.md
IR_VERSION = 8  # the lowest IR version opset 18 allows: every ONNX Runtime >= 1.14 reads it
IO_LAYOUTS = ("channels-last", "channels-first")
INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)

RULES = Rules("onnx")

# --- layouts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """An IR value as emitted: its ONNX tensor, and whether that tensor is channels-first
    (the IR value transposed by `to_cf(rank)`); values of rank < 3 are never channels-first."""

    name: str
    cf: bool = False


def to_cf(rank: int) -> tuple[int, ...]:
    """The permutation taking channels-last [N, *spatial, C] to channels-first [N, C, *spatial]."""
    return (0, rank - 1, *range(1, rank - 1))


def to_cl(rank: int) -> tuple[int, ...]:
    """The inverse of `to_cf`."""
    return (0, *range(2, rank), 1)


def onnx_axis(axis: int, rank: int, cf: bool) -> int:
    """Where IR axis `axis` sits in the emitted tensor."""
    axis %= rank
    return to_cf(rank).index(axis) if cf else axis


def _onnx_dtype(dtype: str) -> int:
    from onnx import TensorProto

    return {
        "f32": TensorProto.FLOAT,
        "f16": TensorProto.FLOAT16,
        "f64": TensorProto.DOUBLE,
        "i32": TensorProto.INT32,
        "i64": TensorProto.INT64,
        "bool": TensorProto.BOOL,
        "bf16": TensorProto.BFLOAT16,
    }[dtype]


def _location(node: Node) -> str:
    """The node's `.net` source location and block call chain, for its doc_string."""
    if node.span is None:
        return ""
    calls = "".join(f"; in block `{c.block}`, called at {c.span}" for c in node.calls)
    fused = node.attrs.get("origin", ())  # what the optimizer folded into this node
    return f"{node.span}{calls}" + (f"; fused with {', '.join(fused)}" if fused else "")


def _value_info(name: str, t: TensorType, cf: bool) -> Any:
    from onnx import helper

    shape = [t.shape[i] for i in to_cf(t.rank)] if cf else list(t.shape)
    return helper.make_tensor_value_info(name, _onnx_dtype(t.dtype), shape)


def _window(attrs: Mapping[str, Any], key: str = "kernel") -> dict[str, Any]:
    """The ONNX attributes of a convolution's or pool's window (`key`: its size)."""
    pads = attrs["padding"]
    out = dict(
        kernel_shape=list(attrs[key]),
        strides=list(attrs["stride"]),
        pads=[p[0] for p in pads] + [p[1] for p in pads],
    )
    if "dilation" in attrs:
        out["dilations"] = list(attrs["dilation"])
    return out


# --- the context -----------------------------------------------------------------------------


class OnnxContext(GraphContext):
    """What one emission builds: ONNX nodes, initializers, and each IR value's emitted form."""

    def __init__(self, graph: Graph, weights: Mapping[str, np.ndarray]):
        self.graph = graph
        self.weights = weights
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.value_info: list[Any] = []
        self.values: dict[str, Value | tuple[Value, ...]] = {}
        self.converted: dict[tuple[str, bool], Value] = {}  # (IR value, cf) -> its transpose
        self.consts: dict[tuple[str, str], str] = {}  # (IR name, form) -> initializer
        # IR names are reserved for the tensors holding those values; helpers get other names
        self.reserved = {n.name for n in graph.nodes} | {o for o, _ in graph.outputs}
        self.tensors: set[str] = set()
        self.node_names: set[str] = set()
        self.node: Node = graph.nodes[0] if graph.nodes else Node("", "")

    # -- names --

    def fresh(self, base: str) -> str:
        """A tensor name starting with `base`, unused and not reserved for an IR value."""
        name, k = base, 0
        while name in self.tensors or name in self.reserved:
            k += 1
            name = f"{base}_{k}"
        self.tensors.add(name)
        return name

    def claim(self, name: str) -> str:
        """`name` for an IR value's tensor (a fresh variant if it is taken)."""
        if name in self.tensors:
            return self.fresh(name)
        self.tensors.add(name)
        return name

    def name_node(self, base: str) -> str:
        """A unique node name starting with `base`."""
        name, k = base, 0
        while name in self.node_names:
            k += 1
            name = f"{base}_{k}"
        self.node_names.add(name)
        return name

    # -- nodes and constants --

    def add(
        self,
        op_type: str,
        inputs: Sequence[str],
        *,
        outputs: int = 1,
        at: Node | None = None,
        **attrs: Any,
    ) -> Any:
        """Append an ONNX node; returns its output name (a list when `outputs` > 1)."""
        from onnx import helper

        at = at or self.node
        base = f"{at.name}/{op_type}"
        outs = [self.fresh(base if outputs == 1 else f"{base}:{i}") for i in range(outputs)]
        self.nodes.append(
            helper.make_node(
                op_type,
                list(inputs),
                outs,
                name=self.name_node(base),
                doc_string=_location(at),
                **attrs,
            )
        )
        return outs[0] if outputs == 1 else outs

    def _initializer(self, name: str, array: np.ndarray) -> str:
        # kept as arrays (a transposed kernel as a view) until they are written into the
        # model: `_fill_tensor` copies each once
        self.initializers.append((name, array))
        return name

    def const(self, array: Any, what: str, dtype: Any = None) -> str:
        """A helper constant of the current node (pads, axes, scalars), as an initializer."""
        value = np.asarray(array, dtype=dtype)
        return self._initializer(self.fresh(f"{self.node.name}/{what}"), value)

    def ints(self, values: Sequence[int], what: str) -> str:
        return self.const(np.asarray(list(values), np.int64), what)

    def scalar(self, value: float, dtype: str, what: str) -> str:
        """A scalar constant in the netc `dtype`."""
        return self.const(np.asarray(value, numpy_dtype(dtype)), what)

    def weight(self, name: str, array: np.ndarray | None = None, form: str = "") -> str:
        """IR weight or constant `name` as an initializer, in the `form` the rule made of it
        (`array`); the first form used is named by the weight's name, others `name/form`."""
        key = (name, form)
        if key not in self.consts:
            value = self.array(name) if array is None else array
            init = (
                self.claim(name)
                if not any(k[0] == name for k in self.consts)
                else self.fresh(f"{name}/{form or 'value'}")
            )
            self.consts[key] = self._initializer(init, value)
        return self.consts[key]

    # -- IR values --

    def rank(self, name: str) -> int:
        return self.type(name).rank

    def home(self, name: str) -> bool:
        """Whether IR value `name` was emitted channels-first."""
        if self.is_data(name):
            return False
        value = self.values[name]
        assert isinstance(value, Value), f"`{name}` is a tuple, read it through `item`"
        return value.cf

    def has(self, name: str, cf: bool) -> bool:
        """Whether `name` is available in layout `cf` without a new transpose."""
        return self.home(name) == cf or (name, cf) in self.converted or self.rank(name) < 3

    def get(self, name: str, cf: bool | None = None) -> Value:
        """IR value `name`, in layout `cf` (None: as it is); one cached Transpose converts."""
        if self.is_data(name):
            want = bool(cf) and self.rank(name) >= 3
            if not want:
                return Value(self.weight(name))
            return Value(
                self.weight(
                    name, self.array(name).transpose(to_cf(self.rank(name))), "channels_first"
                ),
                True,
            )
        value = self.values[name]
        assert isinstance(value, Value), f"`{name}` is a tuple, read it through `item`"
        if cf is None or value.cf == cf or self.rank(name) < 3:
            return value
        if (name, cf) not in self.converted:
            rank = self.rank(name)
            tensor = self.add(
                "Transpose",
                [value.name],
                at=self.graph[name],
                perm=list(to_cf(rank) if cf else to_cl(rank)),
            )
            self.value_info.append(_value_info(tensor, self.type(name), cf))
            self.converted[(name, cf)] = Value(tensor, cf)
        return self.converted[(name, cf)]

    def operand(self, name: str, rank: int, cf: bool) -> str:
        """An input of a broadcasting op whose result has `rank`, in layout `cf`: a weight or
        constant of lower rank is reshaped and permuted now, so it broadcasts as in numpy."""
        if not cf or self.rank(name) == 0:
            return self.get(name, cf=False).name
        if self.is_data(name):
            a = self.array(name)
            a = a.reshape((1,) * (rank - a.ndim) + a.shape).transpose(to_cf(rank))
            return self.weight(name, a, f"channels_first{rank}")
        return self.get(name, cf=True).name

    def lower(self, node: Node) -> None:
        """Run `node`'s rule; name its results after the IR values, record their types."""
        self.node = node
        start = len(self.nodes)
        result = RULES.rule(node)(self, node)
        single = not isinstance(result, tuple)
        results = (result,) if single else result
        types = (node.tensor_type,) if single else node.type
        assert isinstance(types, tuple) and len(types) == len(results), node.name
        conversions = {v.name for v in self.converted.values()}
        made = {out for n in self.nodes[start:] for out in n.output} - conversions
        renamed: dict[str, str] = {}
        values = []
        for i, (value, t) in enumerate(zip(results, types, strict=True)):
            if value.name not in made:  # a rule that passed a tensor through still adds a node
                value = Value(self.add("Identity", [value.name]), value.cf)
            if value.name not in renamed:
                renamed[value.name] = self.claim(node.name if single else f"{node.name}.{i}")
                self.value_info.append(_value_info(renamed[value.name], t, value.cf))
            values.append(Value(renamed[value.name], value.cf))
        for n in self.nodes[start:]:
            n.input[:] = [renamed.get(x, x) for x in n.input]
            n.output[:] = [renamed.get(x, x) for x in n.output]
        self.node_names.discard(self.nodes[-1].name)
        self.nodes[-1].name = self.name_node(node.name)
        self.values[node.name] = values[0] if single else tuple(values)

    def rename(self, old: str, new: str) -> None:
        """Rename tensor `old` everywhere it was used so far."""
        for n in self.nodes:
            n.input[:] = [new if x == old else x for x in n.input]
            n.output[:] = [new if x == old else x for x in n.output]
        for vi in self.value_info:
            if vi.name == old:
                vi.name = new
        for name, value in list(self.values.items()):
            if isinstance(value, Value) and value.name == old:
                self.values[name] = Value(new, value.cf)
        for key, converted in list(self.converted.items()):
            if converted.name == old:
                self.converted[key] = Value(new, converted.cf)


# --- emission --------------------------------------------------------------------------------


def emit(
    graph: Graph, weights: Mapping[str, np.ndarray], *, io_layout: str = "channels-last"
) -> Any:
    """Lower `graph` with `weights` to an `onnx.ModelProto` (opset 18, IR version 8).

    With `io_layout="channels-first"` every input and output of rank >= 3 is declared
    channels-first ([N, C, *spatial]) and no boundary transpose is emitted for it.
    """
    return emit_with_values(graph, weights, io_layout=io_layout)[0]


def emit_with_values(
    graph: Graph, weights: Mapping[str, np.ndarray], *, io_layout: str = "channels-last"
) -> tuple[Any, dict[str, Value | tuple[Value, ...]]]:
    """`emit`, and where each IR value ended up: its ONNX tensor and whether that tensor is
    channels-first (a tuple for a multi-result op); `netc verify` reads every value through it."""
    from onnx import helper

    from .. import __version__

    if io_layout not in IO_LAYOUTS:
        raise error(
            f"unknown io layout `{io_layout}`", hint='use "channels-last" or "channels-first"'
        )
    io_cf = io_layout == "channels-first"
    ctx = OnnxContext(graph, check_weights(graph, weights))
    inputs = []
    for name in graph.inputs:
        t = ctx.type(name)
        cf = io_cf and t.rank >= 3
        inputs.append(_value_info(ctx.claim(name), t, cf))
        ctx.values[name] = Value(name, cf)
    for node in graph.nodes:
        types = node.type if isinstance(node.type, tuple) else (node.type,)
        if any(t is not None and t.dtype == "bf16" for t in types):
            raise RULES.cannot(node, " on bf16 values (ONNX Runtime runs few bf16 kernels)")
        if node.op in ("input", "param", "constant"):
            continue
        if node.op == "item":
            items = ctx.values[node.inputs[0]]
            assert isinstance(items, tuple)
            ctx.values[node.name] = items[node.attrs["index"]]
            continue
        start = len(ctx.nodes)
        ctx.lower(node)
        _check_f64_kernels(node, ctx.nodes[start:])
    outputs = []
    for out, name in graph.outputs:
        t = ctx.type(name)
        ctx.node = graph[name]
        value = ctx.get(name, cf=io_cf and t.rank >= 3)
        if value.name != out:
            if out in ctx.tensors:  # taken: by this value in the other layout, or another value
                ctx.rename(out, ctx.fresh(f"{out}/{'value' if out != name else 'inner'}"))
                value = ctx.get(name, cf=io_cf and t.rank >= 3)
            ctx.tensors.add(out)
            ctx.nodes.append(
                helper.make_node(
                    "Identity",
                    [value.name],
                    [out],
                    name=ctx.name_node(out),
                    doc_string=_location(graph[name]),
                )
            )
        outputs.append(_value_info(out, t, value.cf))
    boundary = {vi.name for vi in inputs + outputs}
    model = helper.make_model(
        helper.make_graph([], graph.name, [], []),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="netc",
        producer_version=__version__,
        ir_version=IR_VERSION,
    )
    # Filled in place, as make_graph would: make_model copies the graph it is given, and the
    # weights are most of a model's bytes (100 MB for ResNet-50)
    g = model.graph
    g.node.extend(ctx.nodes)
    g.input.extend(inputs)
    g.output.extend(outputs)
    for name, array in ctx.initializers:
        _fill_tensor(g.initializer.add(), name, array)
    g.value_info.extend(vi for vi in ctx.value_info if vi.name not in boundary)
    return model, dict(ctx.values)


def _fill_tensor(tensor: Any, name: str, array: np.ndarray) -> None:
    """`numpy_helper.from_array` for netc's numeric dtypes, written into a TensorProto already
    in the model: the array's bytes (little-endian, C order) are copied once, where from_array
    and an `extend` would copy a 100 MB model's weights three times."""
    from onnx import helper

    tensor.name = name
    tensor.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
    tensor.dims.extend(array.shape)  # a scalar stays one (as [1] it broadcast a 0-d x to [1])
    tensor.raw_data = np.asarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


# ONNX ops ONNX Runtime (1.31, 1.32) has no float64 CPU kernel for: a model using one would not
# load (Conv, ...) or would fail at its first run (LSTM, GRU: "does not support double yet")
NO_F64_KERNEL = ("Conv", "ConvTranspose", "AveragePool", "Erf", "Resize", "LSTM", "GRU")


def _check_f64_kernels(node: Node, emitted: Sequence[Any]) -> None:
    """A located error for a float64 node lowered to an op ONNX Runtime cannot run in float64."""
    types = node.type if isinstance(node.type, tuple) else (node.type,)
    if not any(t is not None and t.dtype == "f64" for t in types):
        return
    missing = sorted({n.op_type for n in emitted} & set(NO_F64_KERNEL))
    if missing:
        raise RULES.cannot(
            node,
            f" on f64 values (ONNX Runtime has no float64 {missing[0]} kernel); "
            f'compute it in f32 with `cast("f32")` before and `cast("f64")` after',
        )


def serialize(model: Any) -> bytes:
    """The model's bytes; deterministic (the same model always gives the same bytes)."""
    return model.SerializeToString(deterministic=True)


def save(model: Any, path: str | Path) -> None:
    """Write an `onnx.ModelProto` to `path` atomically (a temporary, then a rename)."""
    data = serialize(model)

    def write_file(tmp: Path) -> None:
        tmp.write_bytes(data)

    atomic_write(path, write_file)


def write(
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    path: str | Path,
    *,
    io_layout: str = "channels-last",
) -> None:
    """Emit and save in one step; a failure anywhere leaves no file at `path`."""

    def write_file(tmp: Path) -> None:
        tmp.write_bytes(serialize(emit(graph, weights, io_layout=io_layout)))

    atomic_write(path, write_file)


# --- rules: elementwise ----------------------------------------------------------------------

UNARY = {
    "relu": "Relu",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "exp": "Exp",
    "log": "Log",
    "sqrt": "Sqrt",
    "abs": "Abs",
    "neg": "Neg",
    "softplus": "Softplus",
}
BINARY = {
    "add": "Add",
    "sub": "Sub",
    "mul": "Mul",
    "div": "Div",
    "maximum": "Max",
    "minimum": "Min",
}


def _gelu(ctx: OnnxContext, x: str, dt: str, attrs: Mapping[str, Any]) -> str:
    if attrs["approximate"]:  # 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
        cube = ctx.add("Mul", [x, ctx.add("Mul", [x, x])])
        inner = ctx.add("Add", [x, ctx.add("Mul", [cube, ctx.scalar(0.044715, dt, "k")])])
        inner = ctx.add("Mul", [inner, ctx.scalar(math.sqrt(2 / math.pi), dt, "c")])
        gate = ctx.add("Tanh", [inner])
    else:  # exact: 0.5 x (1 + erf(x / sqrt(2)))
        gate = ctx.add("Erf", [ctx.add("Div", [x, ctx.scalar(math.sqrt(2), dt, "sqrt2")])])
    gate = ctx.add("Add", [gate, ctx.scalar(1, dt, "one")])
    return ctx.add("Mul", [ctx.add("Mul", [x, ctx.scalar(0.5, dt, "half")]), gate])


# elementwise activations as (ctx, x, dtype, attrs) -> y, shared with the fused ops' epilogues
ACTIVATIONS: dict[str, Any] = {
    **{op: lambda ctx, x, dt, a, t=onnx_op: ctx.add(t, [x]) for op, onnx_op in UNARY.items()},
    "relu6": lambda ctx, x, dt, a: (
        ctx.add("Clip", [x, ctx.scalar(0, dt, "min"), ctx.scalar(6, dt, "max")])
        if dt != "f64"  # ONNX Runtime's Relu+Clip fusion fails to load a float64 Clip
        else ctx.add(
            "Min", [ctx.add("Max", [x, ctx.scalar(0, dt, "min")]), ctx.scalar(6, dt, "max")]
        )
    ),
    "leaky_relu": lambda ctx, x, dt, a: ctx.add("LeakyRelu", [x], alpha=a["alpha"]),
    "elu": lambda ctx, x, dt, a: ctx.add("Elu", [x], alpha=a["alpha"]),
    "silu": lambda ctx, x, dt, a: ctx.add("Mul", [x, ctx.add("Sigmoid", [x])]),
    "gelu": _gelu,
}


@RULES.on(*ACTIVATIONS)
def _activation(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0])  # elementwise: any layout
    return Value(ACTIVATIONS[node.op](ctx, x.name, node.tensor_type.dtype, node.attrs), x.cf)


@RULES.on("hard_sigmoid", "hard_swish")
def _hard_activation(ctx: OnnxContext, node: Node) -> Value:
    # Keras' own order of operations, relu6(x + 3) / 6 (times x): ONNX's HardSigmoid and
    # HardSwish compute x / 6 + 1/2, which rounds differently
    x = ctx.get(node.inputs[0])  # elementwise: any layout
    dt = node.tensor_type.dtype
    shifted = ctx.add("Add", [x.name, ctx.scalar(3, dt, "three")])
    clipped = ctx.add("Clip", [shifted, ctx.scalar(0, dt, "min"), ctx.scalar(6, dt, "max")])
    y = ctx.add("Div", [clipped, ctx.scalar(6, dt, "six")])
    return Value(ctx.add("Mul", [x.name, y]) if node.op == "hard_swish" else y, x.cf)


@RULES.on("softmax")
def _softmax(ctx: OnnxContext, node: Node) -> Value:
    x, r = ctx.get(node.inputs[0]), node.tensor_type.rank
    return Value(ctx.add("Softmax", [x.name], axis=onnx_axis(node.attrs["axis"], r, x.cf)), x.cf)


@RULES.on("dropout")
def _dropout(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0])  # the identity at inference
    return Value(ctx.add("Identity", [x.name]), x.cf)


@RULES.on("cast")
def _cast(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0])
    return Value(ctx.add("Cast", [x.name], to=_onnx_dtype(node.attrs["dtype"])), x.cf)


@RULES.on(*BINARY)
def _binary(ctx: OnnxContext, node: Node) -> Value:
    # channels-first when an input is, and every other input can follow without a transpose
    # of a lower-rank computed value: same rank (one cached transpose), a scalar, or data
    r = node.tensor_type.rank
    cf = (
        r >= 3
        and any(not ctx.is_data(i) and ctx.home(i) for i in node.inputs)
        and all(ctx.rank(i) in (0, r) or ctx.is_data(i) for i in node.inputs)
    )
    a, b = (ctx.operand(i, r, cf) for i in node.inputs)
    return Value(ctx.add(BINARY[node.op], [a, b]), cf)


@RULES.on("matmul")
def _matmul(ctx: OnnxContext, node: Node) -> Value:
    a, b = (ctx.get(i, cf=False).name for i in node.inputs)
    return Value(ctx.add("MatMul", [a, b]))


# --- the rules of the other modules ----------------------------------------------------------

# last: they import this module's names (the table, the context, `Value`), so they register
# once those exist
from . import onnx_rules_conv, onnx_rules_sequence, onnx_rules_shape  # noqa: E402, F401
