"""The graph under construction during elaboration: node names, op nodes with their weights,
constants, and the guards on every value's size, the parameter count and the node count.

`Builder` is the base of the elaborator (elaborate.py): it owns the nodes and frames, and
checks every value before it exists, so a source can only ask for what the limits allow.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

from . import syntax as ast
from .imports import ImportPaths
from .ir import Node, TensorType, Type, numpy_dtype
from .limits import PARAMS_WARNING, Limits, describe_bytes
from .ops import OPS, ShapeError
from .ops.registry import LAYER_ACTIVATIONS, broadcast_shapes
from .ops.registry import ShapeError as _ShapeError
from .source import Reporter, Span, format_value
from .values import Abort, Frame, Scope, Stop, Tensor, describe, list_shape
from .weights import check_initializer

_ITEMSIZE = {"f32": 4, "f16": 2, "bf16": 2, "f64": 8, "i32": 4, "i64": 8, "bool": 1}


class Builder:
    """The nodes made so far, the active block calls, and the running totals the limits
    bound; `eval` and friends come from the elaborator."""

    def __init__(
        self,
        reporter: Reporter,
        limits: Limits | None = None,
        paths: ImportPaths | None = None,
    ):
        self.r = reporter
        self.limits = limits or Limits()
        self.paths = paths or ImportPaths.for_text()
        self.blocks: dict[str, ast.BlockDef] = {}
        self.globals = Scope()
        self.nodes: list[Node] = []
        self.node_names: set[str] = set()
        self.name_prefixes: set[str] = set()  # every `prefix.` a node name starts with
        self.frames: list[Frame] = []
        self.params = 0  # parameters of the weights made so far
        self.weight_bytes = 0  # their memory, each in its own dtype
        self.iterations = 0  # loop iterations run so far
        self.calls = 0  # block calls made so far
        self.loaded: dict[str, Span | None] = {}  # real path of each module read -> import site
        self.definitions: dict[str, Span] = {}  # global name -> where defined
        # After a failed import, unknown names may be defined there: reporting them would only
        # repeat the import's error.
        self.import_failed = False
        # Blocks whose parameter list is wrong (reported there): calls to them stay silent,
        # since what they would say follows from it.
        self.broken_blocks: set[str] = set()
        self.later_consts: dict[str, Span] = {}  # top-level consts not yet defined -> where
        self.assign_target: tuple[ast.Expr, str] | None = None  # (value, the name it gets)
        self._assigned_in: dict[str, tuple[ast.BlockDef, dict[str, Span]]] = {}  # per block

    # the elaborator's, used here
    def eval(self, e: ast.Expr, scope: Scope) -> Any:
        raise NotImplementedError

    @property
    def frame(self) -> Frame:
        return self.frames[-1]

    # -- naming and nodes --

    def _unique(self, base: str, explicit: bool = False, span: Span | None = None) -> str:
        """A node name under the current prefix: `dense`, `dense_1`, ... (Keras' scheme)."""
        prefix = self.frame.prefix
        if explicit:
            name = prefix + base
            if name in self.node_names:
                first = next((n.span for n in self.nodes if n.name == name), None)
                again = first is not None and span is not None and first == span
                self.r.error(
                    f'the name "{base}" is already used by another layer',
                    span,
                    calls=self.frame.calls,
                    # the same call made twice: a loop's body (a block's names get its prefix)
                    hint="this call runs once per iteration of a loop: put the loop's variable "
                    'in the name, e.g. `name=f"' + base + '_{i}"`'
                    if again
                    else None,
                    notes=(f"first used at {first}",) if first is not None and not again else (),
                )
                raise Stop
            self.node_names.add(name)
            return name
        counters = self.frame.counters
        while True:
            k = counters.get(base, 0)
            counters[base] = k + 1
            name = prefix + (base if k == 0 else f"{base}_{k}")
            if name not in self.node_names:
                self.node_names.add(name)
                return name

    def add_node(self, node: Node) -> None:
        if len(self.nodes) >= self.limits.nodes:
            self.r.error(
                f"the model has more than {self.limits.nodes:,} nodes, the limit",
                node.span,
                calls=node.calls,
                hint="raise it with `--limit nodes=N` if the model is meant to be this large",
            )
            raise Abort
        self.nodes.append(node)
        name = node.name
        if "." in name:  # `a.b.c` -> `a.`, `a.b.`: the block-call prefixes names are under
            dot = name.find(".")
            while dot != -1:
                self.name_prefixes.add(name[: dot + 1])
                dot = name.find(".", dot + 1)

    def check_type(self, t: Type, what: str | Callable[[], str], span: Span | None) -> None:
        """A value's dims are >= 1 and its element count within the limit, before it exists
        (`what` names it in a message: a string, or a function making one)."""
        for one in t if isinstance(t, tuple) else (t,):
            empty = any(isinstance(d, int) and d < 1 for d in one.shape)
            n = 0 if empty else one.numel()
            if not empty and n <= self.limits.elements:
                continue
            name = what() if callable(what) else what
            if empty:
                self.r.error(
                    f"{name} would be {one}: every dim must be >= 1",
                    span,
                    calls=self.frame.calls,
                )
                raise Stop
            self.r.error(
                f"{name} would be {one}, {n:,} elements"
                f"{' per sample' if not one.is_static else ''}, more than the limit of "
                f"{self.limits.elements:,}",
                span,
                calls=self.frame.calls,
                hint="raise it with `--limit elements=N` if the model is meant to be this large",
            )
            raise Stop

    def count_weight(self, t: TensorType, name: str, span: Span | None) -> None:
        """Add a weight to the model's totals; an error past the limits on the parameter count
        and the weights' memory (each weight in its own dtype)."""
        n = t.numel()
        before = self.params
        self.params += n
        self.weight_bytes += n * _ITEMSIZE[t.dtype]
        if self.params > self.limits.params:
            self.r.error(
                f"weight `{name}` brings the model to {self.params:,} parameters, more than "
                f"the limit of {self.limits.params:,}",
                span,
                calls=self.frame.calls,
                hint="raise it with `--limit params=N` if the model is meant to be this large",
            )
            raise Abort
        if self.weight_bytes > self.limits.weight_bytes:
            self.r.error(
                f"weight `{name}` brings the model's weights to "
                f"{describe_bytes(self.weight_bytes)}, more than the limit of "
                f"{describe_bytes(self.limits.weight_bytes)}",
                span,
                calls=self.frame.calls,
                hint="raise it with `--limit weight-bytes=N` if the model is meant to be "
                "this large",
            )
            raise Abort
        if before <= PARAMS_WARNING < self.params:
            self.r.warning(
                f"weight `{name}` brings the model past {PARAMS_WARNING:,} parameters",
                span,
                calls=self.frame.calls,
            )

    def constant(self, value: Any, dtype: str, span: Span) -> Tensor:
        """A constant node (a scalar, or an array from nested lists) in the dtype of the tensor
        it meets."""
        from .ir import Const
        from .lazy import numpy as np

        array = np.asarray(value, dtype=numpy_dtype(dtype))
        t = TensorType(dtype, tuple(int(d) for d in array.shape))
        name = self._unique("const")
        self.add_node(
            Node(name, "constant", (), {"value": Const(array)}, t, span, self.frame.calls)
        )
        return Tensor(name, t)

    def apply_op(
        self,
        op_name: str,
        inputs: Sequence[Tensor],
        attrs: dict[str, Any],
        span: Span,
        layer_name: str | None = None,
    ) -> Any:
        """Create one op node (and its weight nodes); returns a Tensor or a tuple of them."""
        opdef = OPS[op_name]
        in_types = [t.type for t in inputs]
        calls = self.frame.calls
        try:
            out_type, attrs = opdef.infer(in_types, attrs)
            specs = opdef.param_specs(in_types, attrs)
        except ShapeError as e:
            self.r.error(e.message, span, hint=e.hint, calls=calls)
            raise Stop from None
        self.check_type(out_type, lambda: f"the result of {op_name}", span)
        # layer attributes live on the weights (initializers) or after the node (activation)
        activation = attrs.get("activation")
        layer_attrs = opdef.layer_attrs
        if layer_attrs:
            attrs = {k: v for k, v in attrs.items() if k not in layer_attrs}
        weight_types = []
        for pname, spec in specs.items():
            why = check_initializer(spec.init, spec.shape)
            if why is not None:
                self.r.error(f"{op_name}: weight `{pname}`: {why}", span, calls=calls)
                raise Stop
            dtype = spec.dtype or (in_types[0].dtype if in_types[0].is_float else "f32")
            t = TensorType(dtype, spec.shape)
            self.check_type(t, functools.partial(_weight_name, op_name, pname), span)
            weight_types.append(t)
        name = self._unique(layer_name or op_name, explicit=layer_name is not None, span=span)
        param_names = []
        for (pname, spec), t in zip(specs.items(), weight_types):
            wname = f"{name}.{pname}"
            self.count_weight(t, wname, span)
            self.node_names.add(wname)
            self.add_node(
                Node(
                    wname,
                    "param",
                    (),
                    {"init": spec.init, "trainable": spec.trainable},
                    t,
                    span,
                    calls,
                )
            )
            param_names.append(wname)
        self.add_node(
            Node(
                name,
                op_name,
                tuple(t.name for t in inputs) + tuple(param_names),
                attrs,
                out_type,
                span,
                calls,
            )
        )
        if isinstance(out_type, tuple):
            items = []
            for i, t in enumerate(out_type):
                iname = f"{name}.{i}"
                self.node_names.add(iname)
                self.add_node(Node(iname, "item", (name,), {"index": i}, t, span, calls))
                items.append(Tensor(iname, t))
            return tuple(items)
        if activation is not None and LAYER_ACTIVATIONS[activation] is not None:
            return self.layer_activation(Tensor(name, out_type), activation, span)
        return Tensor(name, out_type)

    def layer_activation(self, x: Tensor, activation: str, span: Span) -> Tensor:
        """`activation="relu"` on layer `x`: the activation op after it, named `LAYER.relu`
        (one Keras layer: the weights stay `LAYER.kernel`, ...)."""
        found = LAYER_ACTIVATIONS[activation]
        assert found is not None
        op_name, attrs = found
        try:
            out_type, attrs = OPS[op_name].infer([x.type], attrs)
        except ShapeError as e:
            self.r.error(e.message, span, hint=e.hint, calls=self.frame.calls)
            raise Stop from None
        name = f"{x.name}.{op_name}"
        if name in self.node_names:
            self.r.error(
                f'the name "{name}" of the activation is already used by another layer',
                span,
                calls=self.frame.calls,
            )
            raise Stop
        self.node_names.add(name)
        assert isinstance(out_type, TensorType)
        self.add_node(Node(name, op_name, (x.name,), attrs, out_type, span, self.frame.calls))
        return Tensor(name, out_type)

    # -- numbers and lists beside tensors --

    def as_tensor(self, v: Any, other: Any, span: Span) -> Tensor:
        if isinstance(v, Tensor):
            return v
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if not other.type.is_float and (other.type.dtype == "bool" or v != int(v)):
                self.r.error(
                    f"cannot combine {describe(v)} with {other}: it would be truncated",
                    span,
                    calls=self.frame.calls,
                    hint='cast the tensor first: `x |> cast("f32")`',
                )
                raise Stop
            self.check_fits(v, other, span)
            return self.constant(v, other.type.dtype, span)
        if isinstance(v, tuple):
            return self.list_constant(v, other, span)
        self.r.error(f"cannot combine {describe(v)} with a tensor", span, calls=self.frame.calls)
        raise Stop

    def list_constant(self, v: tuple, other: Tensor, span: Span) -> Tensor:
        """`x - [123.675, 116.28, 103.53]`: a (nested) list of numbers next to a tensor is a
        constant of the tensor's dtype that broadcasts as numpy does."""
        from .lazy import numpy as np

        try:
            shape = list_shape(v)
        except ValueError as exc:
            self.r.error(f"cannot combine {exc} with {other}", span, calls=self.frame.calls)
            raise Stop from None
        n = math.prod(shape)
        if n > self.limits.iterations:
            self.r.error(
                f"cannot combine a list of shape {list(shape)} with {other}: its {n:,} numbers "
                f"are more than the limit of {self.limits.iterations:,} for one list",
                span,
                calls=self.frame.calls,
                hint="a list constant is for a few values (a mean, a scale); make a big one a "
                "weight with `weight([...])`",
            )
            raise Stop
        try:
            broadcast_shapes("", other.type.shape, shape)
        except _ShapeError:
            mine, theirs = shape[::-1], other.type.shape[::-1]
            at = next(i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b and 1 not in (a, b))
            self.r.error(
                f"cannot combine a list of shape {list(shape)} with {other}: "
                f"dim {mine[at]} against {theirs[at]}",
                span,
                calls=self.frame.calls,
                hint=f"a list lines up with the tensor's last axis, as in numpy: give it "
                f"{other.type.shape[-1]} values"
                if len(shape) == 1 and other.type.rank >= 1
                else "a list lines up with the tensor's last axes, as in numpy",
            )
            raise Stop from None
        self.check_fits(v, other, span)
        values = np.asarray(v, dtype=np.float64)
        if not other.type.is_float and (
            other.type.dtype == "bool" or np.any(values != np.round(values))
        ):
            self.r.error(
                f"cannot combine a list of shape {list(shape)} with {other}: "
                f"{'its values' if other.type.dtype == 'bool' else 'it'} would be truncated",
                span,
                calls=self.frame.calls,
                hint='cast the tensor first: `x |> cast("f32")`',
            )
            raise Stop
        return self.constant(values, other.type.dtype, span)

    def check_fits(self, values: Any, other: Tensor, span: Span) -> None:
        """Numbers beside a tensor are within its dtype's range (an i32 cannot hold 2**40, an
        f16 not 1e6)."""
        top = _dtype_max(other.type.dtype)
        if top is None:
            return
        if _largest(values) > top:
            what = "a list holding" if isinstance(values, tuple) else "the number"
            self.r.error(
                f"cannot combine {what} {format_value(_largest(values))} with {other}: "
                f"{other.type.dtype} holds magnitudes up to {top}",
                span,
                calls=self.frame.calls,
            )
            raise Stop


def _weight_name(op_name: str, weight: str) -> str:
    return f"{op_name}: weight `{weight}`"


@functools.cache
def _dtype_max(dtype: str) -> int | float | None:
    """The largest magnitude a dtype holds (None for bool)."""
    from .lazy import numpy as np

    kind = numpy_dtype(dtype)
    if kind.kind == "b":
        return None
    return int(np.iinfo(kind).max) if kind.kind in "iu" else float(np.finfo(kind).max)


def _largest(value: Any) -> int | float:
    """The largest finite magnitude in a number or a nested list of numbers (a list repeated
    with `*` looked at once)."""
    todo: list[Any] = [value]
    top: int | float = 0
    seen: set[int] = set()
    while todo:
        v = todo.pop()
        if isinstance(v, tuple):
            if id(v) not in seen:
                seen.add(id(v))
                todo.extend(v)
        elif isinstance(v, (int, float)) and abs(v) != float("inf") and v == v:
            top = max(top, abs(v))
    return top
