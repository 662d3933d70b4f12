"""The ONNX backend: a checked IR graph and its weights -> an ONNX model (standard domain only).

One rule per IR op in `RULES`. The context tracks a layout per value: the IR is channels-last,
ONNX convolutions and pools are channels-first, so spatial ops run channels-first and other
ops follow whatever layout their input has; a transpose appears only where an op needs the
other order (docs/onnx.md). `onnx` is imported lazily, inside the functions that need it.
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
from . import Rules

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


# --- the context -----------------------------------------------------------------------------


class OnnxContext:
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

    def type(self, name: str) -> TensorType:
        return self.graph[name].tensor_type

    def rank(self, name: str) -> int:
        return self.type(name).rank

    def is_data(self, name: str) -> bool:
        """Whether `name` is a weight or a constant (its value is known at emit time)."""
        return self.graph[name].op in ("param", "constant")

    def array(self, name: str) -> np.ndarray:
        node = self.graph[name]
        if node.op == "constant":
            return node.attrs["value"].array
        return np.asarray(self.weights[name])

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
    tensor.dims.extend(array.shape or (1,))  # a scalar as [1], as it has always been written
    tensor.raw_data = np.asarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


# ONNX ops ONNX Runtime (1.31) has no float64 CPU kernel for: a model using one would not load
NO_F64_KERNEL = ("Conv", "ConvTranspose", "AveragePool", "Erf", "Resize")


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


# --- rules: dense, convolutions, pooling ------------------------------------------------------


@RULES.on("dense")
def _dense(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0], cf=False).name
    ins = [x] + [ctx.weight(w) for w in node.inputs[1:]]
    if node.tensor_type.rank == 2:
        return Value(ctx.add("Gemm", ins))
    y = ctx.add("MatMul", ins[:2])
    return Value(ctx.add("Add", [y, ins[2]]) if node.attrs["bias"] else y)


def _window(attrs: Mapping[str, Any], key: str = "kernel") -> dict[str, Any]:
    pads = attrs["padding"]
    out = dict(
        kernel_shape=list(attrs[key]),
        strides=list(attrs["stride"]),
        pads=[p[0] for p in pads] + [p[1] for p in pads],
    )
    if "dilation" in attrs:
        out["dilations"] = list(attrs["dilation"])
    return out


def _bias(ctx: OnnxContext, node: Node) -> list[str]:
    return [ctx.weight(node.inputs[2])] if node.attrs["bias"] else []


@RULES.on("conv1d", "conv2d", "conv3d")
def _conv(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0], cf=True)
    n = len(node.attrs["kernel"])
    kernel = ctx.array(node.inputs[1]).transpose(n + 1, n, *range(n))  # [F, C/g, *k]
    w = ctx.weight(node.inputs[1], kernel, "oihw")
    return Value(
        ctx.add(
            "Conv",
            [x.name, w, *_bias(ctx, node)],
            group=node.attrs["groups"],
            **_window(node.attrs),
        ),
        True,
    )


@RULES.on("depthwise_conv1d", "depthwise_conv2d")
def _depthwise(ctx: OnnxContext, node: Node) -> Value:
    # a grouped conv with one group per input channel; output channel c*M + j is filter j of c
    x = ctx.get(node.inputs[0], cf=True)
    n = len(node.attrs["kernel"])
    k = ctx.array(node.inputs[1])  # [*k, C, M]
    c = k.shape[-2]
    kernel = k.reshape(*k.shape[:-2], -1).transpose(n, *range(n))[:, None]  # [C*M, 1, *k]
    w = ctx.weight(node.inputs[1], kernel, "oihw")
    return Value(
        ctx.add("Conv", [x.name, w, *_bias(ctx, node)], group=c, **_window(node.attrs)), True
    )


@RULES.on("conv1d_transpose", "conv2d_transpose", "conv3d_transpose")
def _conv_transpose(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0], cf=True)
    n = len(node.attrs["kernel"])
    kernel = ctx.array(node.inputs[1]).transpose(n + 1, n, *range(n))  # [C, F, *k]
    w = ctx.weight(node.inputs[1], kernel, "iohw")
    return Value(
        ctx.add(
            "ConvTranspose",
            [x.name, w, *_bias(ctx, node)],
            output_padding=list(node.attrs["output_padding"]),
            **_window(node.attrs),
        ),
        True,
    )


@RULES.on("maxpool")
def _maxpool(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0], cf=True)
    return Value(ctx.add("MaxPool", [x.name], **_window(node.attrs, "size")), True)


@RULES.on("avgpool")
def _avgpool(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0], cf=True)
    return Value(
        ctx.add("AveragePool", [x.name], count_include_pad=0, **_window(node.attrs, "size")), True
    )


@RULES.on("global_avgpool", "global_maxpool")
def _global_pool(ctx: OnnxContext, node: Node) -> Value:
    name, keep = node.inputs[0], node.attrs["keepdims"]
    r = ctx.rank(name)
    if ctx.has(name, True):  # channels-first: the global pool op, then drop the spatial axes
        x = ctx.get(name, cf=True)
        y = ctx.add(
            "GlobalAveragePool" if node.op == "global_avgpool" else "GlobalMaxPool", [x.name]
        )
        if keep:
            return Value(y, True)
        return Value(ctx.add("Squeeze", [y, ctx.ints(range(2, r), "axes")]))
    reduce = "ReduceMean" if node.op == "global_avgpool" else "ReduceMax"
    x = ctx.get(name, cf=False)  # channels-last: a reduction, no transpose
    return Value(ctx.add(reduce, [x.name, ctx.ints(range(1, r - 1), "axes")], keepdims=int(keep)))


@RULES.on("fused_dense", "fused_conv")
def _fused(ctx: OnnxContext, node: Node) -> Value:
    """The base op's rule, then Add for the residual, then the activation (ops/fused.py)."""
    from ..ops.fused import base_attrs, epilogue

    residual, activation, act_attrs = epilogue(node.attrs)
    x, rest = node.inputs[0], node.inputs[1:]
    skip = rest[0] if residual else None
    base = Node(
        node.name,
        "dense" if node.op == "fused_dense" else node.attrs["base"],
        (x, *rest[int(residual) :]),
        base_attrs(node.attrs),
        node.type,
        node.span,
        node.calls,
    )
    y = RULES.rule(base)(ctx, base)
    if skip is not None:
        y = Value(ctx.add("Add", [y.name, ctx.get(skip, cf=y.cf).name]), y.cf)
    if activation != "none":
        y = Value(ACTIVATIONS[activation](ctx, y.name, node.tensor_type.dtype, act_attrs), y.cf)
    return y


# --- rules: normalization ---------------------------------------------------------------------


def _broadcast(ctx: OnnxContext, name: str, rank: int, axes: Sequence[int], form: str) -> str:
    """Weight `name` (over the emitted axes `axes`, in IR order) shaped to broadcast against a
    rank-`rank` tensor."""
    a = ctx.array(name)
    order = sorted(range(len(axes)), key=lambda i: axes[i])
    shape = [1] * rank
    for i in order:
        shape[axes[i]] = a.shape[i]
    return ctx.weight(name, a.transpose(order).reshape(shape), form)


@RULES.on("batchnorm")
def _batchnorm(ctx: OnnxContext, node: Node) -> Value:
    a, name = node.attrs, node.inputs[0]
    r = ctx.rank(name)
    dt = node.tensor_type.dtype
    weights = list(node.inputs[1:])
    gamma = weights.pop(0) if a["scale"] else None
    beta = weights.pop(0) if a["center"] else None
    mean, var = weights
    channels = node.tensor_type.shape[a["axis"]]
    # BatchNormalization where the axis is ONNX's axis 1 in an available layout; elsewhere the
    # same arithmetic in the input's own layout: never a transpose of its own
    for cf in (ctx.home(name), not ctx.home(name)):
        if r >= 2 and onnx_axis(a["axis"], r, cf and r >= 3) == 1 and ctx.has(name, cf):
            x = ctx.get(name, cf=cf)
            ones = np.ones(channels, numpy_dtype(dt))
            scale = ctx.weight(gamma) if gamma else ctx.const(ones, "scale")
            shift = ctx.weight(beta) if beta else ctx.const(ones * 0, "shift")
            return Value(
                ctx.add(
                    "BatchNormalization",
                    [x.name, scale, shift, ctx.weight(mean), ctx.weight(var)],
                    epsilon=a["epsilon"],
                ),
                x.cf,
            )
    x = ctx.get(name)
    axes = [onnx_axis(a["axis"], r, x.cf)]
    inv = ctx.add(
        "Sqrt",
        [
            ctx.add(
                "Add",
                [
                    _broadcast(ctx, var, r, axes, "broadcast"),
                    ctx.scalar(a["epsilon"], dt, "epsilon"),
                ],
            )
        ],
    )
    if gamma:
        inv = ctx.add("Div", [_broadcast(ctx, gamma, r, axes, "broadcast"), inv])
    else:
        inv = ctx.add("Reciprocal", [inv])
    y = ctx.add("Mul", [ctx.add("Sub", [x.name, _broadcast(ctx, mean, r, axes, "broadcast")]), inv])
    if beta:
        y = ctx.add("Add", [y, _broadcast(ctx, beta, r, axes, "broadcast")])
    return Value(y, x.cf)


@RULES.on("layernorm")
def _layernorm(ctx: OnnxContext, node: Node) -> Value:
    a, name = node.attrs, node.inputs[0]
    t = node.tensor_type
    r, dt = t.rank, t.dtype
    x = ctx.get(name)
    axes = [onnx_axis(i, r, x.cf) for i in a["axis"]]  # emitted axes, in the weights' IR order
    weights = list(node.inputs[1:])
    gamma = weights.pop(0) if a["scale"] else None
    beta = weights.pop(0) if a["center"] else None
    first = min(axes)
    if sorted(axes) == list(range(first, r)):  # trailing axes: LayerNormalization itself
        order = sorted(range(len(axes)), key=lambda i: axes[i])

        def trailing(w: str) -> str:
            return ctx.weight(w, ctx.array(w).transpose(order), "trailing")

        shape = [t.shape[i] for i in (to_cf(r) if x.cf else range(r))][first:]
        scale = trailing(gamma) if gamma else ctx.const(np.ones(shape, numpy_dtype(dt)), "scale")
        ins = [x.name, scale] + ([trailing(beta)] if beta else [])
        return Value(ctx.add("LayerNormalization", ins, axis=first, epsilon=a["epsilon"]), x.cf)
    # other axes: mean and biased variance over them, in the input's own layout
    axes_in = ctx.ints(sorted(axes), "axes")
    centered = ctx.add("Sub", [x.name, ctx.add("ReduceMean", [x.name, axes_in], keepdims=1)])
    var = ctx.add("ReduceMean", [ctx.add("Mul", [centered, centered]), axes_in], keepdims=1)
    std = ctx.add("Sqrt", [ctx.add("Add", [var, ctx.scalar(a["epsilon"], dt, "epsilon")])])
    y = ctx.add("Div", [centered, std])
    if gamma:
        y = ctx.add("Mul", [y, _broadcast(ctx, gamma, r, axes, "broadcast")])
    if beta:
        y = ctx.add("Add", [y, _broadcast(ctx, beta, r, axes, "broadcast")])
    return Value(y, x.cf)


# --- rules: reductions -----------------------------------------------------------------------

REDUCE = {
    "reduce_sum": "ReduceSum",
    "reduce_mean": "ReduceMean",
    "reduce_max": "ReduceMax",
    "reduce_min": "ReduceMin",
    "reduce_prod": "ReduceProd",
}


def _reduced(ctx: OnnxContext, name: str, axes: Sequence[int], keepdims: bool) -> Value:
    """Input `name` in a layout whose reduction over IR `axes` leaves a layout netc tracks:
    channels-first stays so with keepdims, or when the removed axes leave the order valid."""
    x, r = ctx.get(name), ctx.rank(name)
    if not x.cf or keepdims:
        return x
    kept = [a for a in to_cf(r) if a not in axes]
    order = [a - sum(b < a for b in axes) for a in kept]  # as axes of the result
    if order == sorted(order) or (len(order) >= 3 and order == list(to_cf(len(order)))):
        return x
    return ctx.get(name, cf=False)


def _result_cf(x: Value, rank: int, axes: Sequence[int], keepdims: bool) -> bool:
    if not x.cf:
        return False
    if keepdims:
        return True
    kept = [a for a in to_cf(rank) if a not in axes]
    order = [a - sum(b < a for b in axes) for a in kept]
    return order != sorted(order)


@RULES.on(*REDUCE)
def _reduce(ctx: OnnxContext, node: Node) -> Value:
    name, axes, keep = node.inputs[0], node.attrs["axis"], node.attrs["keepdims"]
    if node.tensor_type.dtype == "bool" and node.op in ("reduce_max", "reduce_min"):
        raise RULES.cannot(node, " on bool values (ONNX opset 18 has no bool reduction)")
    x, r = _reduced(ctx, name, axes, keep), ctx.rank(name)
    onnx_axes = ctx.ints(sorted(onnx_axis(a, r, x.cf) for a in axes), "axes")
    y = ctx.add(
        REDUCE[node.op], [x.name, onnx_axes], keepdims=int(keep), noop_with_empty_axes=1
    )  # no axes: nothing reduced, as in netc
    return Value(y, _result_cf(x, r, axes, keep))


@RULES.on("argmax")
def _argmax(ctx: OnnxContext, node: Node) -> Value:
    name, axis = node.inputs[0], node.attrs["axis"]
    x, r = _reduced(ctx, name, [axis], False), ctx.rank(name)
    y = ctx.add("ArgMax", [x.name], axis=onnx_axis(axis, r, x.cf), keepdims=0)
    return Value(y, _result_cf(x, r, [axis], False))


# --- rules: shape ----------------------------------------------------------------------------


@RULES.on("flatten")
def _flatten(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0], cf=False)  # keeps the channels-last element order (Keras')
    return Value(ctx.add("Flatten", [x.name], axis=1))


@RULES.on("reshape")
def _reshape(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0], cf=False)
    shape = ctx.ints([0, *node.attrs["shape"]], "shape")  # 0 copies the batch dim
    return Value(ctx.add("Reshape", [x.name, shape]))


@RULES.on("transpose")
def _transpose(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0])  # a channels-first input folds into the one permutation
    r = node.tensor_type.rank
    perm = [onnx_axis(p, r, x.cf) for p in node.attrs["perm"]]
    return Value(ctx.add("Transpose", [x.name], perm=perm))


@RULES.on("concat")
def _concat(ctx: OnnxContext, node: Node) -> Value:
    r = node.tensor_type.rank
    cf = r >= 3 and any(not ctx.is_data(i) and ctx.home(i) for i in node.inputs)
    xs = [ctx.get(i, cf=cf).name for i in node.inputs]
    return Value(ctx.add("Concat", xs, axis=onnx_axis(node.attrs["axis"], r, cf)), cf)


@RULES.on("split")
def _split(ctx: OnnxContext, node: Node) -> tuple[Value, ...]:
    x = ctx.get(node.inputs[0])
    sizes = node.attrs["sections"]
    axis = onnx_axis(node.attrs["axis"], ctx.rank(node.inputs[0]), x.cf)
    outs = ctx.add("Split", [x.name, ctx.ints(sizes, "sizes")], outputs=len(sizes), axis=axis)
    outs = [outs] if len(sizes) == 1 else outs
    return tuple(Value(o, x.cf) for o in outs)


@RULES.on("slice")
def _slice(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0])
    a, r = node.attrs, node.tensor_type.rank
    ends = [
        (INT64_MAX if s > 0 else INT64_MIN) if e is None else e
        for e, s in zip(a["ends"], a["steps"], strict=True)
    ]
    ins = [
        ctx.ints(a["starts"], "starts"),
        ctx.ints(ends, "ends"),
        ctx.ints([onnx_axis(i, r, x.cf) for i in a["axes"]], "axes"),
        ctx.ints(a["steps"], "steps"),
    ]
    return Value(ctx.add("Slice", [x.name, *ins]), x.cf)


@RULES.on("squeeze")
def _squeeze(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0], cf=False)
    return Value(ctx.add("Squeeze", [x.name, ctx.ints(node.attrs["axes"], "axes")]))


@RULES.on("expand_dims")
def _expand_dims(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0], cf=False)
    return Value(ctx.add("Unsqueeze", [x.name, ctx.ints([node.attrs["axis"]], "axes")]))


# ONNX Runtime's PadFusion (ENABLE_BASIC and above; onnxruntime/core/optimizer/pad_fusion.cc)
# folds a constant-0 Pad into the Conv, MaxPool or AveragePool it feeds, directly or through a
# Cast. Into Conv that is exact. Into MaxPool it is not: MaxPool's own padding is -inf, so a
# window of negative values loses the pad's 0 (ResNet-50 v2's stem: conv, pad, maxpool). The
# fusion leaves alone a Pad given its `axes` input (opset 18), which means the same when it
# lists every axis: netc emits that form unless only convolutions read the pad.
PAD_FUSES_EXACTLY = ("conv1d", "conv2d", "conv3d", "depthwise_conv1d", "depthwise_conv2d")


def _pad_fusion_is_exact(ctx: OnnxContext, pad: Node) -> bool:
    """Whether every reader of `pad` is a convolution reading it as its data input."""
    for name in ctx.graph.readers[pad.name]:
        if name == "<output>":
            return False
        n = ctx.graph[name]
        base = n.attrs["base"] if n.op == "fused_conv" else n.op
        if base not in PAD_FUSES_EXACTLY or pad.name in n.inputs[1:]:
            return False
    return True


@RULES.on("pad")
def _pad(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0])
    r, a = node.tensor_type.rank, node.attrs
    pairs = [a["pads"][i] for i in (to_cf(r) if x.cf else range(r))]
    ins = [x.name, ctx.ints([p[0] for p in pairs] + [p[1] for p in pairs], "pads")]
    if a["mode"] == "constant":
        ins.append(ctx.scalar(a["value"], node.tensor_type.dtype, "value"))
        if a["value"] == 0 and not _pad_fusion_is_exact(ctx, node):
            ins.append(ctx.ints(range(r), "axes"))  # every axis: ONNX Runtime does not fuse it
    return Value(ctx.add("Pad", ins, mode=a["mode"]), x.cf)


@RULES.on("upsample")
def _upsample(ctx: OnnxContext, node: Node) -> Value:
    # integer factors: nearest with asymmetric floor coordinates repeats each cell exactly;
    # bilinear is TF's half-pixel resize, which ONNX calls half_pixel
    x = ctx.get(node.inputs[0], cf=True)
    sizes = node.attrs["size"]
    scales = ctx.const(np.asarray([1, 1, *sizes], np.float32), "scales")
    modes: dict[str, Any]
    if node.attrs["method"] == "nearest":
        modes = dict(
            mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"
        )
    else:
        modes = dict(mode="linear", coordinate_transformation_mode="half_pixel")
    return Value(ctx.add("Resize", [x.name, "", scales], **modes), True)


@RULES.on("resize")
def _resize(ctx: OnnxContext, node: Node) -> Value:
    # sizes for every axis, [N, C] read at run time: ONNX Runtime's optimizer (1.2x) breaks
    # Resize's `axes` attribute
    x = ctx.get(node.inputs[0], cf=True)
    batch_channels = ctx.add("Shape", [x.name], start=0, end=2)
    sizes = ctx.add("Concat", [batch_channels, ctx.ints(node.attrs["size"], "sizes")], axis=0)
    modes: dict[str, Any]
    if node.attrs["method"] == "nearest":  # TF's floor((i + 0.5) / scale), said without the
        # deprecated tf_half_pixel_for_nn: round_prefer_ceil((i + 0.5) / scale - 0.5)
        modes = dict(
            mode="nearest",
            coordinate_transformation_mode="half_pixel",
            nearest_mode="round_prefer_ceil",
        )
    else:
        modes = dict(mode="linear", coordinate_transformation_mode="half_pixel")
    return Value(ctx.add("Resize", [x.name, "", "", sizes], **modes), True)


# --- rules: embeddings, recurrent, attention --------------------------------------------------


@RULES.on("embedding")
def _embedding(ctx: OnnxContext, node: Node) -> Value:
    ids = ctx.get(node.inputs[0], cf=False)
    return Value(ctx.add("Gather", [ctx.weight(node.inputs[1]), ids.name], axis=0))


@RULES.on("positional_embedding")
def _positional_embedding(ctx: OnnxContext, node: Node) -> Value:
    x = ctx.get(node.inputs[0], cf=False)
    steps = node.tensor_type.shape[1]
    end = (
        ctx.ints([steps], "steps")
        if isinstance(steps, int)
        else ctx.add("Shape", [x.name], start=1, end=2)
    )
    rows = ctx.add("Slice", [ctx.weight(node.inputs[1]), ctx.ints([0], "start"), end])
    return Value(ctx.add("Add", [x.name, rows]))


def _time_major_last(ctx: OnnxContext, y: str, backwards: bool) -> str:
    """ONNX's Y [T, 1, N, u] as Keras' sequence [N, T, u], in processing order."""
    y = ctx.add("Squeeze", [y, ctx.ints([1], "direction_axis")])
    if backwards:  # ONNX stores step t at t; Keras returns steps in the order it ran them
        y = ctx.add(
            "Slice",
            [
                y,
                ctx.ints([-1], "starts"),
                ctx.ints([INT64_MIN], "ends"),
                ctx.ints([0], "axes"),
                ctx.ints([-1], "steps"),
            ],
        )
    return ctx.add("Transpose", [y], perm=[1, 0, 2])


@RULES.on("lstm", "gru")
def _recurrent(ctx: OnnxContext, node: Node) -> Value | tuple[Value, ...]:
    a, u = node.attrs, node.attrs["units"]
    lstm = node.op == "lstm"
    x = ctx.get(node.inputs[0])  # either layout: it folds into the time-major transpose
    kernel, recurrent, bias = (ctx.array(i) for i in node.inputs[1:])
    if lstm:  # Keras' gates i f c o -> ONNX's i o f c; ONNX's bias adds a recurrent half
        order = np.concatenate([np.arange(u), np.arange(3 * u, 4 * u), np.arange(u, 3 * u)])
        b = np.concatenate([bias[order], np.zeros_like(bias)])
    else:  # both z r h; reset_after's [2, 3u] bias is ONNX's [Wb, Rb]
        order = np.arange(3 * u)
        b = bias.reshape(-1) if a["reset_after"] else np.concatenate([bias, np.zeros_like(bias)])
    time_major = [onnx_axis(a, 3, x.cf) for a in (1, 0, 2)]  # ONNX runs [T, N, F]
    ins = [
        ctx.add("Transpose", [x.name], perm=time_major),
        ctx.weight(node.inputs[1], kernel[:, order].T[None], "onnx"),
        ctx.weight(node.inputs[2], recurrent[:, order].T[None], "onnx"),
        ctx.weight(node.inputs[3], b[None], "onnx"),
    ]
    attrs: dict[str, Any] = dict(
        hidden_size=u, direction="reverse" if a["go_backwards"] else "forward"
    )
    if not lstm:
        attrs["linear_before_reset"] = int(a["reset_after"])
    outs = ctx.add("LSTM" if lstm else "GRU", ins, outputs=3 if lstm else 2, **attrs)
    state_axis = ctx.ints([0], "state_axis")
    h = ctx.add("Squeeze", [outs[1], state_axis])
    y = _time_major_last(ctx, outs[0], a["go_backwards"]) if a["return_sequences"] else h
    if not a["return_state"]:
        return Value(y)
    states = [h] + ([ctx.add("Squeeze", [outs[2], state_axis])] if lstm else [])
    return tuple(Value(v) for v in [y, *states])


@RULES.on("multi_head_attention")
def _attention(ctx: OnnxContext, node: Node) -> Value:
    from onnx import numpy_helper

    a = node.attrs
    heads, key_dim, value_dim = a["heads"], a["key_dim"], a["value_dim"]
    n_weights = 8 if a["bias"] else 4
    data, ws = node.inputs[:-n_weights], list(node.inputs[-n_weights:])
    query = data[0]
    value = data[1] if len(data) > 1 else query
    key = data[2] if len(data) > 2 else value
    pairs = [(ws[i], ws[i + 1]) for i in range(0, 8, 2)] if a["bias"] else [(w, None) for w in ws]
    dt = node.tensor_type.dtype

    def project(x: str, kernel: str, bias: str | None, dim: int, perm: list[int]) -> str:
        # [N, T, D] @ [D, heads*dim] (+ bias) -> [N, T, heads, dim] -> permuted per head
        w = ctx.array(kernel)
        y = ctx.add(
            "MatMul",
            [ctx.get(x, cf=False).name, ctx.weight(kernel, w.reshape(w.shape[0], -1), "matrix")],
        )
        if bias:
            y = ctx.add("Add", [y, ctx.weight(bias, ctx.array(bias).reshape(-1), "flat")])
        y = ctx.add("Reshape", [y, ctx.ints([0, 0, heads, dim], "heads")])
        return ctx.add("Transpose", [y], perm=perm)

    (wq, bq), (wk, bk), (wv, bv), (wo, bo) = pairs
    q = project(query, wq, bq, key_dim, [0, 2, 1, 3])  # [N, h, T, k]
    q = ctx.add("Mul", [q, ctx.scalar(1 / math.sqrt(key_dim), dt, "scale")])  # as Keras
    k = project(key, wk, bk, key_dim, [0, 2, 3, 1])  # [N, h, k, S]
    v = project(value, wv, bv, value_dim, [0, 2, 1, 3])  # [N, h, S, v]
    scores = ctx.add("MatMul", [q, k])  # [N, h, T, S]
    if a["causal"]:  # query i sees keys j <= i
        tq, tk = node.tensor_type.shape[1], ctx.type(key).shape[1]
        if isinstance(tq, int) and isinstance(tk, int):
            mask = ctx.const(np.tri(tq, tk, dtype=bool), "causal_mask")
        else:
            one = numpy_helper.from_array(np.ones(1, np.float32))
            ones = ctx.add("ConstantOfShape", [ctx.add("Shape", [scores], start=2)], value=one)
            mask = ctx.add("Cast", [ctx.add("Trilu", [ones], upper=0)], to=_onnx_dtype("bool"))
        scores = ctx.add("Where", [mask, scores, ctx.scalar(-np.inf, dt, "minus_inf")])
    probs = ctx.add("Softmax", [scores], axis=-1)
    y = ctx.add("Transpose", [ctx.add("MatMul", [probs, v])], perm=[0, 2, 1, 3])  # [N, T, h, v]
    y = ctx.add("Reshape", [y, ctx.ints([0, 0, heads * value_dim], "merge_heads")])
    w = ctx.array(wo)
    y = ctx.add("MatMul", [y, ctx.weight(wo, w.reshape(-1, w.shape[-1]), "matrix")])
    return Value(ctx.add("Add", [y, ctx.weight(bo)]) if bo else y)


# --- rules: separable convolutions, hard activations ------------------------------------------


@RULES.on("separable_conv1d", "separable_conv2d")
def _separable(ctx: OnnxContext, node: Node) -> Value:
    # Keras' SeparableConv: a grouped Conv (one group per input channel, no bias), then a 1x1
    # Conv of its C*M channels with the bias; both channels-first
    x = ctx.get(node.inputs[0], cf=True)
    n = len(node.attrs["kernel"])
    dw = ctx.array(node.inputs[1])  # [*k, C, M]
    depthwise = dw.reshape(*dw.shape[:-2], -1).transpose(n, *range(n))[:, None]  # [C*M, 1, *k]
    y = ctx.add(
        "Conv",
        [x.name, ctx.weight(node.inputs[1], depthwise, "oihw")],
        group=dw.shape[-2],
        **_window(node.attrs),
    )
    pw = ctx.array(node.inputs[2])  # [*1, C*M, F]
    pointwise = pw.transpose(n + 1, n, *range(n))  # [F, C*M, *1]
    bias = [ctx.weight(node.inputs[3])] if node.attrs["bias"] else []
    w = ctx.weight(node.inputs[2], pointwise, "oihw")
    return Value(ctx.add("Conv", [y, w, *bias], kernel_shape=[1] * n), True)


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


@RULES.on("broadcast_like")
def _broadcast_like(ctx: OnnxContext, node: Node) -> Value:
    # Expand broadcasts both ways, as numpy: to the shape of x and like broadcast together
    x, like = (ctx.get(i, cf=False).name for i in node.inputs)
    return Value(ctx.add("Expand", [x, ctx.add("Shape", [like])]))
