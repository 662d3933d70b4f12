"""Lowering netc's IR to Relax: `TvmContext` (what one Relax function builds: each IR value's
Relax expression, the symbolic dims as TIR variables, the weights as constants) and `lower`,
which adds one Relax function for a graph to a module. The op rules live in `tvm_rules` and
`tvm_sequence`, all in the one table `RULES`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ir import DTYPES, Dim, Graph, Node, TensorType, numpy_dtype
from ..source import error
from . import GraphContext, Rules
from .tvm_build import first_line

RULES = Rules("tvm")
HALF = ("f16",)
IOSpec = tuple[str, str, tuple[Dim, ...]]  # (name, netc dtype, shape with symbols)
Key = tuple[str, int | None]  # an IR value (and result index of a multi-result op)


@dataclass(frozen=True)
class Entry:
    """A Relax function of the module: its input and output signatures, by name."""

    inputs: tuple[IOSpec, ...]
    outputs: tuple[IOSpec, ...]


def value_key(key: Key) -> str:
    """The output name of an exposed IR value: its name, `name:i` for result i of a tuple."""
    return key[0] if key[1] is None else f"{key[0]}:{key[1]}"


def lower(
    t: Any,
    bb: Any,
    fname: str,
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    dims: Mapping[str, int],
    expose: Sequence[Key] | None,
) -> Entry:
    """Add Relax function `fname` computing `graph` (or the `expose`d values) to `bb`."""
    relax = t.relax
    ctx = TvmContext(t, bb, graph, weights, dims)
    params = []
    for name in graph.inputs:
        ty = ctx.type(name)
        if ty.dtype == "bf16":
            raise error(
                f"the tvm backend cannot take bf16 input `{name}` (netc runs bf16 only on "
                "-t tf and -t keras)",
                graph[name].span,
            )
        params.append(relax.Var(identifier(name), ctx.tensor_type(ty)))
    ctx.values.update(zip(graph.inputs, params, strict=True))
    try:
        _function(ctx, bb, fname, params, expose)
    except BaseException:
        # TVM's builder leaves the function's last block and scope open on an error (and
        # warns about them when it is freed): close them, so the error is all a user sees
        bb._end_block()
        bb.end_scope()
        raise
    inputs = tuple((name, *_spec(ctx.type(name))) for name in graph.inputs)
    outputs = ctx.outputs
    fixed = tuple(_fix(s, dims) for s in inputs), tuple(_fix(s, dims) for s in outputs)
    return Entry(*fixed)


def _function(ctx: TvmContext, bb: Any, fname: str, params: list[Any], expose: Any) -> None:
    """The Relax function `fname` of `ctx`'s graph: its outputs, or the `expose`d values."""
    graph = ctx.graph
    checks = _run_time_checks(ctx)
    with bb.function(fname, params, pure=not checks):  # an assertion is not pure
        for check in checks:
            bb.emit(check)
        with bb.dataflow():
            if expose is None:
                for node in graph.nodes:
                    ctx.lower(node)
                results = [ctx.get(value) for _, value in graph.outputs]
                outputs = tuple((out, *_spec(ctx.type(value))) for out, value in graph.outputs)
            else:
                wanted = {name for name, _ in expose}
                last = max((i for i, n in enumerate(graph.nodes) if n.name in wanted), default=-1)
                for node in graph.nodes[: last + 1]:
                    ctx.lower(node)
                results = [ctx.result(k) for k in expose]
                outputs = tuple((value_key(k), *_spec(_result_type(graph, k))) for k in expose)
            out = bb.emit_output(ctx.relax.Tuple(results))
        bb.emit_func_output(out)
    ctx.outputs = outputs


def _run_time_checks(ctx: TvmContext) -> list[Any]:
    """Assertions on the symbolic dims, made before anything runs: a positional embedding's
    steps at most its max_length (its table has no row past it; the reference refuses too)."""
    R, relax = ctx.R, ctx.relax
    checks = []
    for node in ctx.graph.nodes:
        if node.op != "positional_embedding":
            continue
        steps, most = ctx.dim(ctx.type(node.inputs[0]).shape[1]), node.attrs["max_length"]
        if isinstance(steps, int):
            continue  # a known length: the shape rule checked it
        what = f"positional_embedding `{node.name}` got a sequence of {{}} steps, more than "
        checks.append(
            R.assert_op(
                relax.prim_value(steps <= most),
                [relax.prim_value(steps)],
                format=what + f"max_length={most}",
            )
        )
    return checks


def _spec(t: TensorType) -> tuple[str, tuple[Dim, ...]]:
    return t.dtype, tuple(t.shape)


def _fix(spec: IOSpec, dims: Mapping[str, int]) -> IOSpec:
    """A signature with the fixed dims substituted (a product of them multiplied out)."""
    name, dtype, shape = spec
    out: list[Dim] = []
    for d in shape:
        if isinstance(d, str) and all(f in dims or f.isdigit() for f in d.split("*")):
            out.append(math.prod(dims[f] if f in dims else int(f) for f in d.split("*")))
        else:
            out.append(d)
    return name, dtype, tuple(out)


def _result_type(graph: Graph, key: Key) -> TensorType:
    ty = graph[key[0]].type
    if key[1] is None:
        assert isinstance(ty, TensorType)
        return ty
    assert isinstance(ty, tuple)
    return ty[key[1]]


_NOT_IDENTIFIER = re.compile(r"\W")


def identifier(name: str) -> str:
    """An IR name as a Relax variable name (TVMScript prints it as code)."""
    out = _NOT_IDENTIFIER.sub("_", name)
    return out if out and not out[0].isdigit() else f"v_{out}"


class TvmContext(GraphContext):
    """What one Relax function builds: each IR value's Relax expression (a tuple for a
    multi-result op), the symbolic dims as TIR variables, the weights as constants."""

    def __init__(
        self,
        t: Any,
        bb: Any,
        graph: Graph,
        weights: Mapping[str, np.ndarray],
        dims: Mapping[str, int],
    ):
        self.t = t
        self.relax = t.relax
        self.R = t.relax.op
        self.bb = bb
        self.graph = graph
        self.weights = weights
        self.dims = dims
        self.symbols: dict[str, Any] = {}
        self.values: dict[str, Any] = {}
        self.consts: dict[tuple[str, str], Any] = {}
        self.node: Node | None = None
        self.outputs: tuple[IOSpec, ...] = ()

    # -- types --

    def dim(self, d: Dim) -> Any:
        """A netc dim as Relax sees it: an int, or a product of symbolic TIR variables (a
        symbol in `dims` is its fixed size)."""
        if isinstance(d, int):
            return d
        out: Any = 1
        for factor in d.split("*"):
            if factor.isdigit():
                value: Any = int(factor)
            elif factor in self.dims:
                value = self.dims[factor]
            else:
                if factor not in self.symbols:
                    self.symbols[factor] = self.t.tirx.Var(identifier(factor), "int64")
                value = self.symbols[factor]
            out = value if isinstance(out, int) and out == 1 else out * value
        return out

    def shape(self, t: TensorType) -> list[Any]:
        return [self.dim(d) for d in t.shape]

    def tensor_type(self, t: TensorType) -> Any:
        return self.relax.TensorType(self.shape(t), DTYPES[t.dtype])

    # -- values --

    def const(self, array: Any, dtype: str | None = None) -> Any:
        """A helper constant (a scale, a table) in netc `dtype` (default: the array's own)."""
        a = np.asarray(array)
        if dtype is not None:
            a = a.astype(numpy_dtype(dtype))
        return self.relax.const(np.ascontiguousarray(a))

    def weight(self, name: str, array: np.ndarray | None = None, form: str = "") -> Any:
        """Weight or constant `name` as a Relax constant, in the `form` the rule made of it
        (`array`); each form is made once per function."""
        key = (name, form)
        if key not in self.consts:
            value = self.array(name) if array is None else np.asarray(array)
            self.consts[key] = self.const(value.astype(numpy_dtype(self.type(name).dtype)))
        return self.consts[key]

    def get(self, name: str) -> Any:
        """IR value `name` as a Relax expression (weights and constants as constants)."""
        if self.is_data(name):
            return self.weight(name)
        value = self.values[name]
        assert not isinstance(value, tuple), f"`{name}` is a tuple, read it through `item`"
        return value

    def result(self, key: Key) -> Any:
        if self.is_data(key[0]):
            return self.weight(key[0])
        value = self.values[key[0]]
        return value if key[1] is None else value[key[1]]

    # -- building --

    def emit(self, expr: Any, name: str = "") -> Any:
        """Bind `expr` to a variable named after the IR value being lowered."""
        hint = name or (identifier(self.node.name) if self.node is not None else "")
        return self.bb.emit(expr, name_hint=hint)

    def te(self, fn: Callable[..., Any], *args: Any, name: str) -> Any:
        """A TE computation over Relax values, emitted as a PrimFunc and its call."""
        return self.bb.emit_te(fn, *args, primfunc_name_hint=name)

    def scalar(self, value: float, dtype: str) -> Any:
        return self.const(np.asarray(value, numpy_dtype(dtype)))

    def cast(self, x: Any, dtype: str) -> Any:
        return self.emit(self.R.astype(x, DTYPES[dtype]))

    def lower(self, node: Node) -> None:
        """Run `node`'s rule; record its result(s), checked against netc's types."""
        if node.op in ("input", "param", "constant"):
            return
        if node.op == "item":
            self.values[node.name] = self.values[node.inputs[0]][node.attrs["index"]]
            return
        types = node.type if isinstance(node.type, tuple) else (node.tensor_type,)
        if any(ty.dtype == "bf16" for ty in types):
            raise RULES.cannot(node, " on bf16 values (netc runs bf16 only on -t tf and -t keras)")
        rule = RULES.rule(node)
        self.node = node
        try:
            result = rule(self, node)
        except (TypeError, ValueError, RuntimeError) as e:  # TVM's checks while it builds
            raise RULES.cannot(node, f": TVM refuses it: {first_line(e)}") from None
        results = result if isinstance(node.type, tuple) else (result,)
        assert isinstance(results, tuple) and len(results) == len(types), node.name
        for value, ty in zip(results, types, strict=True):
            self._check(node, value, ty)
        self.values[node.name] = result

    def _check(self, node: Node, value: Any, ty: TensorType) -> None:
        info = value.ty
        dims = getattr(info.shape, "values", None) or []
        shape = [int(d.value) if hasattr(d, "value") else None for d in dims]
        want = self.shape(ty)
        fits = info.dtype == DTYPES[ty.dtype] and len(shape) == len(want)
        if fits:
            fits = all(g is None or not isinstance(w, int) or g == w for g, w in zip(shape, want))
        if not fits:
            raise RULES.cannot(
                node,
                f": its rule made {info}, netc's type is {ty} (a bug in the tvm backend)",
            )
