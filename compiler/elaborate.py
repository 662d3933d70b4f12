"""Syntax tree -> IR: scopes, imports, blocks, loops, conditionals and compile-time values.

Elaboration runs the model's body once, at compile time: compile-time values are computed,
block calls are inlined under a naming scope, and every op becomes an IR node whose type is
inferred on the spot (so `channels(x)` works and shape errors point at the line). Errors are
collected; a statement that fails binds `POISON`, which later statements pass on silently, so
independent errors are all reported in one run.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import syntax as ast
from .ir import DTYPES, FLOAT_DTYPES, Const, Graph, Node, TensorType, numpy_dtype
from .ops import ALIASES, OPS, ShapeError, convert_attr, lookup
from .ops.registry import (
    LAYER_ACTIVATIONS,
    Init,
    broadcast_shapes,
    describe_hint,
)
from .ops.registry import (
    ShapeError as _ShapeError,
)
from .parse import parse
from .source import CallSite, NetcError, Reporter, Span, did_you_mean, format_value, read_source
from .train import TrainSpec, elaborate_train
from .weights import (
    INITIALIZER_ARGS,
    USER_INITIALIZERS,
    Initializer,
    canonical_initializer,
    check_initializer,
    make_initializer,
)

MAX_CALL_DEPTH = 64
MAX_LOOP_ITERATIONS = 100_000


@dataclass(frozen=True)
class Tensor:
    """A tensor value during elaboration: the IR node that computes it and its type."""

    name: str
    type: TensorType

    def __str__(self) -> str:
        return f"a tensor {self.type}"


class _Poison:
    """The value of anything whose computation already reported an error."""

    def __repr__(self) -> str:
        return "POISON"


POISON = _Poison()


class _Stop(Exception):
    """Abandon the current statement; its error (if any) has been reported."""


@dataclass
class Binding:
    value: Any
    span: Span | None
    kind: str  # "var", "param", "const", "loop", "input"
    used: bool = False


@dataclass
class Scope:
    """Names visible in a block or model body; the parent is the module's global scope."""

    names: dict[str, Binding] = field(default_factory=dict)
    parent: Scope | None = None

    def lookup(self, name: str) -> Binding | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None

    def visible(self) -> set[str]:
        out: set[str] = set()
        scope: Scope | None = self
        while scope is not None:
            out |= scope.names.keys()
            scope = scope.parent
        return out


@dataclass
class Frame:
    """One active block call (or the model body): naming prefix, counters, call chain."""

    prefix: str
    calls: tuple[CallSite, ...]
    counters: dict[str, int] = field(default_factory=dict)
    assigned: dict[str, Span] = field(default_factory=dict)  # every name the body assigns


def _assigned_names(stmts: Sequence[ast.Stmt], out: dict[str, Span]) -> dict[str, Span]:
    """Names a body assigns anywhere (in loops and branches too), with their first span."""
    for s in stmts:
        if isinstance(s, ast.Assign):
            for name, span in zip(s.targets, s.target_spans or (s.span,) * len(s.targets)):
                out.setdefault(name, span)
        elif isinstance(s, ast.ConstDef):
            out.setdefault(s.name, s.span)
        elif isinstance(s, ast.For):
            _assigned_names(s.body, out)
        elif isinstance(s, ast.If):
            _assigned_names(s.then, out)
            _assigned_names(s.else_, out)
    return out


@dataclass
class Elaboration:
    """What elaborating one model produced."""

    graph: Graph
    train: TrainSpec | None
    diagnostics: list


# --- compile-time built-in functions ----------------------------------------------------------


def _shape_of(x: Any) -> tuple:
    return tuple(x.type.shape)


def _range(*args: int) -> tuple:
    if not 1 <= len(args) <= 3 or not all(
        _kind(a) == "number" and isinstance(a, int) for a in args
    ):
        raise TypeError
    r = range(*args)
    if len(r) > MAX_LOOP_ITERATIONS:
        raise OverflowError(
            f"range of {len(r)} items is more than the limit of {MAX_LOOP_ITERATIONS}"
        )
    return tuple(r)


def _to_str(value: Any) -> str:
    """`str(v)`: a string as it is, anything else as the language writes it (`3`, `true`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float, tuple, Initializer)) or value is None:
        return format_value(value) if not isinstance(value, Initializer) else str(value)
    raise TypeError


def _no_call(*args: Any) -> Any:
    raise AssertionError("a special form is elaborated by its own method")


# The initializers a file can call, with Keras' arguments: `random_normal(stddev=0.02)`.
INITIALIZER_BUILTINS = tuple(
    n for n in INITIALIZER_ARGS if n not in ("lstm_bias", "uniform", "normal")
)

BUILTINS: dict[str, Callable[..., Any]] = {
    "range": _range,
    "len": lambda s: len(s),
    "min": lambda *a: min(a[0]) if len(a) == 1 else min(a),
    "max": lambda *a: max(a[0]) if len(a) == 1 else max(a),
    "abs": abs,
    "int": int,
    "float": float,
    "sum": lambda s: sum(s),
    "zip": lambda *s: tuple(zip(*s)),
    "enumerate": lambda s: tuple(enumerate(s)),
    "reversed": lambda s: tuple(reversed(s)),
    "sqrt": math.sqrt,
    "channels": lambda x: x.type.shape[-1],
    "shape": _shape_of,
    "rank": lambda x: x.type.rank,
    "dtype": lambda x: x.type.dtype,
    "str": _to_str,
    "weight": _no_call,  # Elaborator.call_weight
    **{
        name: (lambda *a, _name=name, **k: make_initializer(_name, *a, **k))
        for name in INITIALIZER_BUILTINS
    },
}
TENSOR_BUILTINS = ("channels", "shape", "rank", "dtype")
# The ops a .net file may call: the optimizer's fused ops are internal.
LANGUAGE_OPS = frozenset(name for name, d in OPS.items() if d.category != "fused") | frozenset(
    ALIASES
)
BUILTIN_NEEDS = {  # what each builtin takes, for its error message
    "range": "one to three ints",
    "len": "a list",
    "min": "numbers or one list of numbers",
    "max": "numbers or one list of numbers",
    "abs": "a number",
    "int": "a number",
    "float": "a number",
    "sum": "a list of numbers",
    "zip": "lists",
    "enumerate": "a list",
    "reversed": "a list",
    "sqrt": "a non-negative number",
    "str": "a compile-time value",
    "weight": "a shape (a list of ints), then `init`, `dtype`, `trainable` by name",
    **{name: "Keras' arguments for this initializer" for name in INITIALIZER_BUILTINS},
}

_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_TENSOR_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "@": "matmul"}
SCALAR_TYPES = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
    "list": (tuple,),
    "tuple": (tuple,),
    "any": (object,),
}


def describe(value: Any) -> str:
    """A value in the user's words, for messages."""
    if isinstance(value, Tensor):
        return str(value)
    if isinstance(value, bool):
        return f"the bool {'true' if value else 'false'}"
    if value is None:
        return "none"
    if isinstance(value, (int, float)):
        return f"the {type(value).__name__} {value}"
    if isinstance(value, str):
        return f'the string "{value}"'
    if isinstance(value, tuple):
        return f"a list of {len(value)}"
    if isinstance(value, Initializer):
        return f"the initializer {value}"
    return type(value).__name__


# --- the elaborator ---------------------------------------------------------------------------


class Elaborator:
    def __init__(self, reporter: Reporter):
        self.r = reporter
        self.blocks: dict[str, ast.BlockDef] = {}
        self.globals = Scope()
        self.nodes: list[Node] = []
        self.node_names: set[str] = set()
        self.frames: list[Frame] = []
        self.loaded: dict[str, Span | None] = {}  # resolved path -> import site
        self.definitions: dict[str, Span] = {}  # global name -> where defined
        # After a failed import, unknown names may be defined there: reporting them would only
        # repeat the import's error.
        self.import_failed = False
        self.assign_target: tuple[ast.Expr, str] | None = None  # (value, the name it gets)

    # -- modules and imports --

    def load_module(self, module: ast.Module, importing: tuple[str, ...] = ()) -> None:
        """Bring a module's imports, constants and blocks into the global scope."""
        base = Path(module.path).parent
        for item in module.items:
            if isinstance(item, ast.Import):
                self._import(base / item.path, item, importing + (module.path,))
            elif isinstance(item, ast.BlockDef):
                if self._define(item.name, item.span, "block"):
                    self.blocks[item.name] = item
                    self._check_block_params(item)
            elif isinstance(item, ast.ConstDef):
                self._global_const(item)

    def _import(self, path: Path, item: ast.Import, importing: tuple[str, ...]) -> None:
        key = str(path.resolve()) if path.exists() else str(path)
        if str(path) in importing or key in {str(Path(p).resolve()) for p in importing}:
            chain = " -> ".join([*importing, str(path)])
            self.r.error(f"import cycle: {chain}", item.span)
            return
        if key in self.loaded:
            return
        self.loaded[key] = item.span
        if not path.exists():
            self.r.error(
                f'cannot import "{item.path}": no such file {path}',
                item.span,
                hint="import paths are relative to the importing file",
            )
            self.import_failed = True
            return
        if path.is_dir():
            self.r.error(
                f'cannot import "{item.path}": it is a directory, not a .net file', item.span
            )
            self.import_failed = True
            return
        try:
            text = read_source(path)
        except NetcError as e:  # unreadable: said at the import
            self.r.error(f'cannot import "{item.path}": {e.diagnostics[0].message}', item.span)
            self.import_failed = True
            return
        self.r.sources.add(str(path), text)
        try:
            module = parse(text, str(path))
        except NetcError as e:
            self.r.extend(e)
            self.import_failed = True
            return
        self.load_module(module, importing)

    def _define(self, name: str, span: Span, what: str) -> bool:
        if name in self.definitions:
            self.r.error(
                f"`{name}` is defined twice",
                span,
                notes=(f"first defined at {self.definitions[name]}",),
            )
            return False
        if name in LANGUAGE_OPS or name in BUILTINS:
            kind = "op" if name in LANGUAGE_OPS else "function"
            self.r.error(
                f"{what} `{name}` has the name of the built-in {kind} `{name}`",
                span,
                hint="choose another name",
            )
            return False
        self.definitions[name] = span
        return True

    def _global_const(self, item: ast.ConstDef | ast.Stmt) -> None:
        assert isinstance(item, ast.ConstDef)
        try:
            value = self.eval(item.value, self.globals)
        except _Stop:
            value = POISON
        if isinstance(value, Tensor):
            self.r.error(
                f"const `{item.name}` must be a compile-time value, not a tensor", item.value.span
            )
            value = POISON
        if self._define(item.name, item.span, "const"):
            self.globals.names[item.name] = Binding(value, item.span, "const", used=True)

    def _check_block_params(self, block: ast.BlockDef) -> None:
        seen: set[str] = set()
        has_default = False
        for p in block.params:
            if p.name in seen:
                self.r.error(f"block `{block.name}` has two parameters named `{p.name}`", p.span)
            seen.add(p.name)
            if (
                p.type is not None
                and p.type.name not in SCALAR_TYPES
                and p.type.name != "tensor"
                and p.type.name not in DTYPES
            ):
                self.r.error(
                    f"unknown parameter type `{p.type.name}`",
                    p.type.span,
                    hint=did_you_mean(p.type.name, [*SCALAR_TYPES, "tensor", *DTYPES])
                    or "use int, float, bool, str, list, tensor or a tensor type",
                )
            if p.default is not None:
                has_default = True
            elif has_default:
                self.r.error(
                    f"parameter `{p.name}` without a default follows one with a default", p.span
                )

    # -- naming and nodes --

    @property
    def frame(self) -> Frame:
        return self.frames[-1]

    def _unique(self, base: str, explicit: bool = False, span: Span | None = None) -> str:
        """A node name under the current prefix: `dense`, `dense_1`, ... (Keras' scheme)."""
        prefix = self.frame.prefix
        if explicit:
            name = prefix + base
            if name in self.node_names:
                self.r.error(f'the name "{base}" is already used by another layer', span)
                raise _Stop
            self.node_names.add(name)
            return name
        while True:
            k = self.frame.counters.get(base, 0)
            self.frame.counters[base] = k + 1
            name = prefix + (base if k == 0 else f"{base}_{k}")
            if name not in self.node_names:
                self.node_names.add(name)
                return name

    def add_node(self, node: Node) -> None:
        self.nodes.append(node)

    def constant(self, value: Any, dtype: str, span: Span) -> Tensor:
        """A constant node (a scalar, or an array from nested lists) in the dtype of the tensor
        it meets."""
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
        try:
            out_type, attrs = opdef.infer(in_types, attrs)
            specs = opdef.param_specs(in_types, attrs)
        except ShapeError as e:
            self.r.error(e.message, span, hint=e.hint, calls=self.frame.calls)
            raise _Stop from None
        # layer attributes live on the weights (initializers) or after the node (activation)
        activation = attrs.get("activation")
        attrs = {k: v for k, v in attrs.items() if k not in opdef.layer_attrs}
        for pname, spec in specs.items():
            why = check_initializer(spec.init, spec.shape)
            if why is not None:
                self.r.error(f"{op_name}: weight `{pname}`: {why}", span, calls=self.frame.calls)
                raise _Stop
        name = self._unique(layer_name or op_name, explicit=layer_name is not None, span=span)
        calls = self.frame.calls
        param_names = []
        for pname, spec in specs.items():
            dtype = spec.dtype or (in_types[0].dtype if in_types[0].is_float else "f32")
            wname = f"{name}.{pname}"
            self.node_names.add(wname)
            self.add_node(
                Node(
                    wname,
                    "param",
                    (),
                    {"init": spec.init, "trainable": spec.trainable},
                    TensorType(dtype, spec.shape),
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
            raise _Stop from None
        name = f"{x.name}.{op_name}"
        if name in self.node_names:
            self.r.error(
                f'the name "{name}" of the activation is already used by another layer',
                span,
                calls=self.frame.calls,
            )
            raise _Stop
        self.node_names.add(name)
        assert isinstance(out_type, TensorType)
        self.add_node(Node(name, op_name, (x.name,), attrs, out_type, span, self.frame.calls))
        return Tensor(name, out_type)

    # -- statements --

    def exec_body(self, stmts: Sequence[ast.Stmt], scope: Scope, where: str = "block") -> Any:
        """Run statements; returns the value of a `return`, or None. `where` is "block", "model"
        or "nested" (the body of an `if` or `for`, where `return` is not allowed)."""
        for i, stmt in enumerate(stmts):
            if isinstance(stmt, ast.Return) and where != "block":
                if where == "model":
                    self.r.error(
                        "a model does not `return`: assign each output by name",
                        stmt.span,
                        hint="write `output_name = value`",
                    )
                else:
                    self.r.error(
                        "`return` must be the last statement of a block, not inside `if` or `for`",
                        stmt.span,
                        hint="assign a value in each branch and return it after",
                    )
                continue
            if isinstance(stmt, ast.Return):
                if i != len(stmts) - 1:
                    self.r.error(
                        "`return` must be the last statement of a block", stmts[i + 1].span
                    )
                try:
                    values = tuple(self.eval(v, scope) for v in stmt.values)
                except _Stop:
                    return POISON
                return values[0] if len(values) == 1 else values
            try:
                self.exec_stmt(stmt, scope)
            except _Stop:
                names = (
                    stmt.targets
                    if isinstance(stmt, ast.Assign)
                    else ((stmt.name,) if isinstance(stmt, ast.ConstDef) else ())
                )
                for name in names:  # later readers stay silent; a constant keeps its value
                    old = scope.names.get(name)
                    if old is None or old.kind != "const":
                        scope.names[name] = Binding(POISON, stmt.span, "var", used=True)
        return None

    def exec_stmt(self, stmt: ast.Stmt, scope: Scope) -> None:
        if isinstance(stmt, ast.Assign):
            if len(stmt.targets) == 1:  # `gamma = weight(...)` names the weight `gamma`
                self.assign_target = (stmt.value, stmt.targets[0])
            try:
                value = self.eval(stmt.value, scope)
            finally:
                self.assign_target = None
            spans = stmt.target_spans or (stmt.span,) * len(stmt.targets)
            self.assign(scope, stmt.targets, spans, value, stmt.value.span, "var")
        elif isinstance(stmt, ast.ConstDef):
            value = self.eval(stmt.value, scope)
            if isinstance(value, Tensor):
                self.r.error(
                    f"const `{stmt.name}` must be a compile-time value, not a tensor",
                    stmt.value.span,
                )
                raise _Stop
            self.bind(scope, stmt.name, value, stmt.span, "const")
        elif isinstance(stmt, ast.For):
            iterable = self.eval(stmt.iterable, scope)
            if iterable is POISON:
                raise _Stop
            if not isinstance(iterable, tuple):
                self.r.error(
                    f"`for` needs a compile-time list, got {describe(iterable)}",
                    stmt.iterable.span,
                    hint="loop over a list or `range(n)`",
                )
                raise _Stop
            if len(iterable) > MAX_LOOP_ITERATIONS:
                self.r.error(
                    f"`for` over {len(iterable)} items is more than the limit of "
                    f"{MAX_LOOP_ITERATIONS}",
                    stmt.iterable.span,
                )
                raise _Stop
            target_spans = (stmt.span,) * len(stmt.targets)
            for item in iterable:
                self.assign(scope, stmt.targets, target_spans, item, stmt.iterable.span, "loop")
                self.exec_body(stmt.body, scope, "nested")
        elif isinstance(stmt, ast.If):
            cond = self.eval(stmt.cond, scope)
            branch = stmt.then if self.truth(cond, stmt.cond.span) else stmt.else_
            self.exec_body(branch, scope, "nested")
        elif isinstance(stmt, ast.Return):  # handled by exec_body
            raise AssertionError("return outside exec_body")
        else:
            self.r.error("this statement is not allowed here", stmt.span)

    def truth(self, cond: Any, span: Span) -> bool:
        if cond is POISON:
            raise _Stop
        if isinstance(cond, Tensor):
            self.r.error(
                "a condition must be a compile-time value, not a tensor",
                span,
                hint="`if` chooses between graphs at compile time; use `maximum`/`minimum`"
                " or arithmetic for data-dependent choices",
            )
            raise _Stop
        if not isinstance(cond, bool):
            self.r.error(f"a condition must be a bool, got {describe(cond)}", span)
            raise _Stop
        return cond

    def assign(
        self,
        scope: Scope,
        targets: Sequence[str],
        spans: Sequence[Span],
        value: Any,
        value_span: Span,
        kind: str,
    ) -> None:
        if len(targets) == 1:
            self.bind(scope, targets[0], value, spans[0], kind)
            return
        if value is POISON:
            for t, s in zip(targets, spans):
                self.bind(scope, t, POISON, s, kind, quiet=True)
            return
        if not isinstance(value, tuple):
            self.r.error(f"cannot unpack {describe(value)} into {len(targets)} names", value_span)
            raise _Stop
        if len(value) != len(targets):
            self.r.error(f"cannot unpack {len(value)} values into {len(targets)} names", value_span)
            raise _Stop
        for t, s, v in zip(targets, spans, value):
            self.bind(scope, t, v, s, kind)

    def bind(
        self, scope: Scope, name: str, value: Any, span: Span | None, kind: str, quiet: bool = False
    ) -> None:
        old = scope.names.get(name)
        if old is not None and old.kind == "const":
            self.r.error(
                f"`{name}` is a constant and cannot be reassigned",
                span,
                notes=(f"defined at {old.span}",) if old.span else (),
            )
            raise _Stop
        if old is None and not quiet:
            what = (
                "the built-in op"
                if name in LANGUAGE_OPS
                else "the block"
                if name in self.blocks
                else "the built-in function"
                if name in BUILTINS
                else "the constant"
                if self.globals.lookup(name)
                else None
            )
            if what and kind != "loop":
                self.r.warning(f"`{name}` shadows {what} `{name}`", span, calls=self.frame.calls)
        if (
            old is not None
            and not old.used
            and old.kind == "var"
            and isinstance(old.value, Tensor)
            and not quiet
            and kind == "var"
        ):
            self.r.warning(
                f"the value of `{name}` assigned here is never used",
                old.span,
                calls=self.frame.calls,
            )
        scope.names[name] = Binding(value, span, kind, used=kind == "loop" and old is not None)

    def warn_unused(self, scope: Scope, keep: Sequence[str] = ()) -> None:
        for name, b in scope.names.items():
            if b.used or name in keep or name.startswith("_") or b.value is POISON:
                continue
            if b.kind in ("var", "param", "input") and (
                isinstance(b.value, Tensor) or b.kind == "var"
            ):
                what = {"param": "parameter", "input": "input"}.get(b.kind, "value")
                self.r.warning(f"{what} `{name}` is never used", b.span, calls=self.frame.calls)

    # -- expressions --

    def eval(self, e: ast.Expr, scope: Scope) -> Any:
        method = getattr(self, "eval_" + type(e).__name__)
        return method(e, scope)

    def eval_Literal(self, e: ast.Literal, scope: Scope) -> Any:
        return e.value

    def eval_Name(self, e: ast.Name, scope: Scope) -> Any:
        b = scope.lookup(e.id)
        if b is not None:
            b.used = True
            if b.value is POISON:
                raise _Stop
            return b.value
        if e.id in LANGUAGE_OPS or e.id in self.blocks:
            kind = "an op" if e.id in LANGUAGE_OPS else "a block"
            self.r.error(
                f"`{e.id}` is {kind}, not a value",
                e.span,
                hint=f"call it: `x |> {e.id}` or `{e.id}(x)`",
                calls=self.frame.calls,
            )
        else:
            if e.id in self.frame.assigned:
                self.r.error(
                    f"`{e.id}` is used before it is assigned",
                    e.span,
                    calls=self.frame.calls,
                    notes=(f"assigned at {self.frame.assigned[e.id]}",),
                )
                raise _Stop
            if self.import_failed:
                raise _Stop
            self.r.error(
                f"unknown name `{e.id}`",
                e.span,
                calls=self.frame.calls,
                hint=did_you_mean(e.id, scope.visible()),
            )
        raise _Stop

    def eval_FString(self, e: ast.FString, scope: Scope) -> str:
        """`f"conv{i}_block{j}"`: each value as `str(v)` writes it, in the text."""
        out = []
        for part in e.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = self.eval(part, scope)
            if isinstance(value, Tensor):
                self.r.error(
                    f"an f-string takes compile-time values, not {value}",
                    part.span,
                    calls=self.frame.calls,
                    hint="to put a tensor's size in a string, use `channels(x)` or `shape(x)`",
                )
                raise _Stop
            out.append(_to_str(value))
        return "".join(out)

    def eval_TupleExpr(self, e: ast.TupleExpr, scope: Scope) -> Any:
        return tuple(self.eval(i, scope) for i in e.items)

    eval_ListExpr = eval_TupleExpr

    def eval_IfExpr(self, e: ast.IfExpr, scope: Scope) -> Any:
        cond = self.eval(e.cond, scope)
        return self.eval(e.then if self.truth(cond, e.cond.span) else e.else_, scope)

    def eval_UnaryOp(self, e: ast.UnaryOp, scope: Scope) -> Any:
        v = self.eval(e.operand, scope)
        if e.op == "not":
            return not self.truth(v, e.operand.span)
        if isinstance(v, Tensor):
            return self.apply_op("neg", [v], {}, e.span)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return -v
        self.r.error(f"cannot negate {describe(v)}", e.span, calls=self.frame.calls)
        raise _Stop

    def eval_BinOp(self, e: ast.BinOp, scope: Scope) -> Any:
        if e.op in ("and", "or"):
            left = self.truth(self.eval(e.left, scope), e.left.span)
            if (e.op == "and") != left:
                return left
            return self.truth(self.eval(e.right, scope), e.right.span)
        a, b = self.eval(e.left, scope), self.eval(e.right, scope)
        if isinstance(a, Tensor) or isinstance(b, Tensor):
            if e.op not in _TENSOR_OPS:
                self.r.error(
                    f"`{e.op}` works on compile-time values only, not tensors",
                    e.span,
                    calls=self.frame.calls,
                )
                raise _Stop
            return self.apply_op(
                _TENSOR_OPS[e.op],
                [self.as_tensor(a, b, e.left.span), self.as_tensor(b, a, e.right.span)],
                {},
                e.span,
            )
        if e.op == "@":
            self.r.error("`@` multiplies tensors, not compile-time values", e.span)
            raise _Stop
        try:
            if e.op == "**" and isinstance(b, (int, float)) and abs(b) > 64 and a not in (0, 1, -1):
                self.r.error(
                    f"`**`: {a} ** {b} is too large for a compile-time value",
                    e.span,
                    calls=self.frame.calls,
                )
                raise _Stop
            return _compile_time_op(e.op, a, b)
        except ZeroDivisionError:
            self.r.error("division by zero", e.span, calls=self.frame.calls)
        except (TypeError, ValueError, OverflowError):
            self.r.error(
                f"cannot apply `{e.op}` to {describe(a)} and {describe(b)}",
                e.span,
                calls=self.frame.calls,
            )
        raise _Stop

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
                raise _Stop
            return self.constant(v, other.type.dtype, span)
        if isinstance(v, tuple):
            return self.list_constant(v, other, span)
        self.r.error(f"cannot combine {describe(v)} with a tensor", span, calls=self.frame.calls)
        raise _Stop

    def list_constant(self, v: tuple, other: Tensor, span: Span) -> Tensor:
        """`x - [123.675, 116.28, 103.53]`: a (nested) list of numbers next to a tensor is a
        constant of the tensor's dtype that broadcasts as numpy does."""
        try:
            shape = _list_shape(v)
        except ValueError as exc:
            self.r.error(f"cannot combine {exc} with {other}", span, calls=self.frame.calls)
            raise _Stop from None
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
            raise _Stop
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
            raise _Stop from None
        return self.constant(values, other.type.dtype, span)

    def eval_Index(self, e: ast.Index, scope: Scope) -> Any:
        value = self.eval(e.value, scope)
        subs = [
            s if isinstance(s, (ast.Slice, ast.EllipsisExpr)) else self.eval(s, scope)
            for s in e.subscripts
        ]
        if isinstance(value, Tensor):
            return self.index_tensor(value, e, subs, scope)
        if isinstance(value, tuple) and len(subs) == 1:
            s = subs[0]
            if isinstance(s, ast.Slice):
                bounds = [self.eval(x, scope) if x else None for x in (s.start, s.stop, s.step)]
                return value[slice(*bounds)]
            if isinstance(s, int) and not isinstance(s, bool):
                if -len(value) <= s < len(value):
                    return value[s]
                self.r.error(
                    f"index {s} is out of range for a list of {len(value)}",
                    e.span,
                    calls=self.frame.calls,
                )
                raise _Stop
        self.r.error(
            f"cannot index {describe(value)} with these subscripts", e.span, calls=self.frame.calls
        )
        raise _Stop

    def index_tensor(self, x: Tensor, e: ast.Index, subs: list, scope: Scope) -> Any:
        """`x[:, 1:3, 0]` -> slice (+ squeeze for integer subscripts)."""
        n_ellipsis = sum(isinstance(s, ast.EllipsisExpr) for s in subs)
        if n_ellipsis > 1:
            self.r.error("at most one `...` in a subscript", e.span)
            raise _Stop
        explicit = len(subs) - n_ellipsis
        if explicit > x.type.rank:
            self.r.error(
                f"too many subscripts ({explicit}) for {x}", e.span, calls=self.frame.calls
            )
            raise _Stop
        expanded: list = []
        for s in subs:
            if isinstance(s, ast.EllipsisExpr):
                expanded += [None] * (x.type.rank - explicit)
            else:
                expanded.append(s)
        expanded += [None] * (x.type.rank - len(expanded))
        axes, starts, ends, steps, squeeze = [], [], [], [], []
        for axis, s in enumerate(expanded):
            if s is None:
                continue
            if isinstance(s, ast.Slice):
                start, stop, step = (
                    self.eval(v, scope) if v else None for v in (s.start, s.stop, s.step)
                )
                for v, vs in ((start, s.start), (stop, s.stop), (step, s.step)):
                    if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
                        self.r.error(
                            f"a slice bound must be a compile-time int, got {describe(v)}",
                            vs.span if vs else e.span,
                            calls=self.frame.calls,
                        )
                        raise _Stop
                if (start, stop, step) in ((None, None, None), (0, None, None), (0, None, 1)):
                    continue
                axes.append(axis)
                starts.append(start if start is not None else (0 if (step or 1) > 0 else -1))
                ends.append(stop)
                steps.append(step if step is not None else 1)
            elif isinstance(s, int) and not isinstance(s, bool):
                axes.append(axis)
                starts.append(s)
                ends.append(s + 1 if s != -1 else None)
                steps.append(1)
                squeeze.append(axis)
            else:
                self.r.error(
                    f"a tensor subscript must be a compile-time int or slice, got {describe(s)}",
                    e.span,
                    calls=self.frame.calls,
                )
                raise _Stop
        out = x
        if axes:
            out = self.apply_op(
                "slice",
                [x],
                {
                    "axes": tuple(axes),
                    "starts": tuple(starts),
                    "ends": tuple(ends),
                    "steps": tuple(steps),
                },
                e.span,
            )
        if squeeze:
            out = self.apply_op("squeeze", [out], {"axes": tuple(squeeze)}, e.span)
        return out

    def eval_Slice(self, e: ast.Slice, scope: Scope) -> Any:
        self.r.error("a slice is only allowed inside `[...]`", e.span)
        raise _Stop

    eval_EllipsisExpr = eval_Slice

    def eval_Call(self, e: ast.Call, scope: Scope) -> Any:
        if e.func in self.blocks:
            return self.call_block(e, scope)
        if e.func in BUILTINS and e.func in LANGUAGE_OPS:  # abs, sqrt: by their arguments
            evaluated = self._eval_args(e, scope)
            if any(isinstance(a, Tensor) for a in evaluated[0]):
                return self.call_op(e, scope, evaluated)
            return self.call_builtin(e, scope, evaluated[0])
        if e.func in LANGUAGE_OPS:
            return self.call_op(e, scope)
        if e.func == "weight":
            return self.call_weight(e, scope)
        if e.func in INITIALIZER_BUILTINS:
            return self.call_initializer(e, scope)
        if e.func in BUILTINS:
            return self.call_builtin(e, scope)
        b = scope.lookup(e.func)
        if b is not None:
            self.r.error(
                f"`{e.func}` is {describe(b.value)}, not something to call",
                e.span,
                calls=self.frame.calls,
            )
        elif self.import_failed:
            raise _Stop
        else:
            what = "op or block" if e.piped else "op, block or function"
            self.r.error(
                f"unknown {what} `{e.func}`",
                e.span,
                calls=self.frame.calls,
                hint=did_you_mean(e.func, [*LANGUAGE_OPS, *self.blocks, *BUILTINS]),
            )
        raise _Stop

    def call_builtin(self, e: ast.Call, scope: Scope, args: list | None = None) -> Any:
        if args is None:
            args = [self.eval(a, scope) for a in e.args]
        if e.kwargs:
            self.r.error(f"`{e.func}` takes no keyword arguments", e.kwargs[0][1].span)
            raise _Stop
        if e.func in TENSOR_BUILTINS:
            if len(args) != 1 or not isinstance(args[0], Tensor):
                self.r.error(f"`{e.func}` takes one tensor", e.span, calls=self.frame.calls)
                raise _Stop
        elif any(isinstance(a, Tensor) for a in args):
            self.r.error(
                f"`{e.func}` works on compile-time values, not tensors",
                e.span,
                calls=self.frame.calls,
            )
            raise _Stop
        try:
            if any(isinstance(a, str) for a in args) and e.func not in ("len", "str"):
                raise TypeError  # Python's int("3") or min("ab") are mistakes here
            return BUILTINS[e.func](*args)
        except OverflowError as exc:
            self.r.error(
                f"`{e.func}`: {exc}" if str(exc) else f"`{e.func}`: the result is too large",
                e.span,
                calls=self.frame.calls,
            )
        except (TypeError, ValueError):
            got = ", ".join(describe(a) for a in args) or "nothing"
            self.r.error(
                f"`{e.func}` needs {BUILTIN_NEEDS[e.func]}, got {got}",
                e.span,
                calls=self.frame.calls,
            )
        raise _Stop

    def call_initializer(self, e: ast.Call, scope: Scope) -> Initializer:
        """`random_normal(stddev=0.02)`: an initializer, with Keras' arguments."""
        args = [self.eval(a, scope) for a in e.args]
        kwargs: dict[str, Any] = {}
        for k, v in e.kwargs:
            if k in kwargs:
                self.r.error(f"argument `{k}` is given twice", self._keyword_span(e, k))
                raise _Stop
            kwargs[k] = self.eval(v, scope)
        if any(isinstance(a, Tensor) for a in [*args, *kwargs.values()]):
            self.r.error(
                f"`{e.func}` works on compile-time values, not tensors",
                e.span,
                calls=self.frame.calls,
            )
            raise _Stop
        try:
            return make_initializer(e.func, *args, **kwargs)
        except ValueError as exc:
            # point at the argument the message names: its keyword, or its value
            span = e.span
            names = [k for k, _ in INITIALIZER_ARGS[e.func]]
            for i, arg in enumerate(e.args[: len(names)]):
                if f"`{names[i]}`" in str(exc):
                    span = arg.span
            for k in kwargs:
                if f"no argument `{k}`" in str(exc) or f"`{k}` is given twice" in str(exc):
                    span = self._keyword_span(e, k)
                elif f"`{k}`" in str(exc):
                    span = self._kwarg_span(e, k)
            self.r.error(str(exc), span, calls=self.frame.calls)
            raise _Stop from None

    def call_weight(self, e: ast.Call, scope: Scope) -> Tensor:
        """`weight(shape, init=..., dtype="f32", trainable=true)`: a weight of the block (or
        model) itself, a `param` node named after the value it is assigned to."""
        target = (
            self.assign_target[1] if self.assign_target and self.assign_target[0] is e else None
        )
        args, kwargs, layer_name = self._eval_args(e, scope)
        params = ("shape", "init", "dtype", "trainable")
        if len(args) > 2:
            self.r.error(
                f"weight takes at most 2 arguments by position (shape, init), got {len(args)}",
                e.args[2].span,
                calls=self.frame.calls,
                hint="give `dtype` and `trainable` by name",
            )
            raise _Stop
        given = dict(zip(params, args))
        spans = {p: a.span for p, a in zip(params, e.args)}
        for k, v in kwargs.items():
            if k not in params:
                self.r.error(
                    f"weight has no argument `{k}`",
                    self._keyword_span(e, k),
                    calls=self.frame.calls,
                    hint=_keras_name_hint(k, params)
                    or did_you_mean(k, params)
                    or "weight(shape, init, dtype, trainable)",
                )
                raise _Stop
            if k in given:
                self.r.error(
                    f"weight: `{k}` is given twice (by position and by name)",
                    self._keyword_span(e, k),
                    calls=self.frame.calls,
                )
                raise _Stop
            given[k] = v
            spans[k] = self._kwarg_span(e, k)
        if "shape" not in given:
            self.r.error(
                "weight needs a shape, e.g. `weight([64])`", e.span, calls=self.frame.calls
            )
            raise _Stop
        shape = given["shape"]
        if isinstance(shape, int) and not isinstance(shape, bool):
            shape = (shape,)
        if not isinstance(shape, tuple) or any(
            isinstance(d, bool) or not isinstance(d, (int, str)) for d in shape
        ):
            self.r.error(
                f"weight: the shape must be a list of ints, got {describe(shape)}",
                spans["shape"],
                calls=self.frame.calls,
            )
            raise _Stop
        for d in shape:
            if isinstance(d, str):
                self.r.error(
                    f'weight: the shape must be known sizes, got the symbolic dim "{d}"',
                    spans["shape"],
                    calls=self.frame.calls,
                    hint="a weight is the same for every batch: give it size 1 there and "
                    "let broadcasting (or `concat` after a `+`) do the rest",
                )
                raise _Stop
            if d < 1:
                self.r.error(
                    f"weight: every dim must be >= 1, got {format_value(shape)}",
                    spans["shape"],
                    calls=self.frame.calls,
                )
                raise _Stop
        init_value = given.get("init", "glorot_uniform")  # Keras' add_weight default
        try:
            init = str(canonical_initializer(init_value))
        except ValueError as exc:
            if isinstance(init_value, (str, Initializer)):
                unknown = str(exc) == f'unknown initializer "{init_value}"'
                self.r.error(
                    f"weight: `init`: {exc}",
                    spans["init"],
                    calls=self.frame.calls,
                    hint=did_you_mean(str(init_value), USER_INITIALIZERS) if unknown else None,
                )
            else:
                self.r.error(
                    f"weight: `init` must be an initializer, got {describe(init_value)}",
                    spans["init"],
                    calls=self.frame.calls,
                )
            raise _Stop from None
        dtype = given.get("dtype", "f32")
        if dtype not in FLOAT_DTYPES:
            self.r.error(
                f"weight: `dtype` must be a float dtype "
                f"({', '.join(map(format_value, FLOAT_DTYPES))}), got {describe(dtype)}",
                spans["dtype"],
                calls=self.frame.calls,
            )
            raise _Stop
        trainable = given.get("trainable", True)
        if not isinstance(trainable, bool):
            self.r.error(
                f"weight: `trainable` must be a bool, got {describe(trainable)}",
                spans["trainable"],
                calls=self.frame.calls,
            )
            raise _Stop
        why = check_initializer(init, shape)
        if why is not None:
            self.r.error(f"weight: {why}", e.span, calls=self.frame.calls)
            raise _Stop
        explicit = layer_name is not None
        name = self._unique(layer_name or target or "weight", explicit=explicit, span=e.span)
        t = TensorType(dtype, shape)
        self.add_node(
            Node(
                name,
                "param",
                (),
                {"init": init, "trainable": trainable},
                t,
                e.span,
                self.frame.calls,
            )
        )
        return Tensor(name, t)

    def _eval_args(self, e: ast.Call, scope: Scope) -> tuple[list, dict[str, Any], str | None]:
        args = [self.eval(a, scope) for a in e.args]
        kwargs: dict[str, Any] = {}
        for (k, v), kspan in zip(e.kwargs, e.kwarg_spans or [None] * len(e.kwargs)):
            if k in kwargs:
                self.r.error(
                    f"argument `{k}` is given twice", kspan or v.span, calls=self.frame.calls
                )
                raise _Stop
            kwargs[k] = self.eval(v, scope)
        name = kwargs.pop("name", None)
        if name is not None and (
            not isinstance(name, str) or not name.replace("_", "a").isalnum() or not name.isascii()
        ):
            self.r.error(
                f"`name` must be a string of letters, digits and `_`, got {describe(name)}",
                dict(e.kwargs)["name"].span,
                calls=self.frame.calls,
            )
            raise _Stop
        return args, kwargs, name

    def _kwarg_span(self, e: ast.Call, key: str) -> Span:
        """Where keyword `key` is written: its value's span."""
        return next((v.span for k, v in e.kwargs if k == key), e.span)

    def _keyword_span(self, e: ast.Call, key: str) -> Span:
        """Where keyword `key` is written: the name itself (for unknown or repeated keywords)."""
        spans = dict(zip((k for k, _ in e.kwargs), e.kwarg_spans))
        return spans.get(key, self._kwarg_span(e, key))

    def call_op(self, e: ast.Call, scope: Scope, evaluated: tuple | None = None) -> Any:
        opdef = lookup(e.func)
        args, kwargs, layer_name = evaluated or self._eval_args(e, scope)
        n_in = len(opdef.inputs)
        if opdef.variadic:  # the leading tensors are the inputs; the variadic part may be empty
            if len(args) == 1 and isinstance(args[0], tuple) and n_in == 1:
                args = list(args[0])
            n_tensor = next((i for i, a in enumerate(args) if not isinstance(a, Tensor)), len(args))
            tensor_args, attr_args = args[:n_tensor], args[n_tensor:]
            need = max(n_in - 1, 1)
            if n_tensor < need:
                self.r.error(
                    f"{e.func} needs at least {need} tensor input{'s' if need > 1 else ''}",
                    e.span,
                    calls=self.frame.calls,
                )
                raise _Stop
        else:
            tensor_args, attr_args = args[:n_in], args[n_in:]
            if len(tensor_args) < n_in:
                missing = opdef.inputs[len(tensor_args)]
                self.r.error(
                    f"{e.func} needs {n_in} tensor input{'s' if n_in > 1 else ''}, got "
                    f"{len(tensor_args)}",
                    e.span,
                    calls=self.frame.calls,
                    hint=f"pass `{missing}`"
                    if n_in > 1
                    else f"pipe a tensor into it: `x |> {e.func}`",
                )
                raise _Stop
        if opdef.name in CONSTANT_OPERANDS and len(tensor_args) == 2:
            # `maximum(x, 0.0)`, `minimum(x, [1, 2, 3])`: a number or list beside one tensor
            tensors = [a for a in tensor_args if isinstance(a, Tensor)]
            if len(tensors) == 1:
                tensor_args = [
                    self.as_tensor(a, tensors[0], e.args[i].span) if _is_constant(a) else a
                    for i, a in enumerate(tensor_args)
                ]
        for i, t in enumerate(tensor_args):
            if not isinstance(t, Tensor):
                label = opdef.inputs[min(i, n_in - 1)]
                self.r.error(
                    f"{e.func}: input `{label}` must be a tensor, got {describe(t)}",
                    e.args[i].span if i < len(e.args) else e.span,
                    calls=self.frame.calls,
                )
                raise _Stop
        positional = opdef.positional_attrs  # layer attributes go by name only
        if len(attr_args) > len(positional):
            self.r.error(
                f"{e.func} takes at most {len(positional)} attribute"
                f"{'s' if len(positional) != 1 else ''} after its input"
                f"{'s' if n_in > 1 else ''}, got {len(attr_args)}",
                e.args[n_in + len(positional)].span
                if len(e.args) > n_in + len(positional)
                else e.span,
                calls=self.frame.calls,
                hint=f"give {', '.join(f'`{a}`' for a in opdef.layer_attrs)} by name"
                if opdef.layer_attrs
                else None,
            )
            raise _Stop
        attrs: dict[str, Any] = {}
        arg_spans: dict[str, Span] = {}
        first_attr_arg = len(tensor_args)
        for i, (spec, value) in enumerate(zip(positional, attr_args)):
            attrs[spec.name] = value
            arg_spans[spec.name] = e.args[first_attr_arg + i].span
        for k, v in kwargs.items():
            if k not in opdef.attr_names:
                self.r.error(
                    f"{e.func} has no attribute `{k}`",
                    self._keyword_span(e, k),
                    calls=self.frame.calls,
                    hint=_keras_name_hint(k, opdef.attr_names)
                    or did_you_mean(k, opdef.attr_names)
                    or _attr_list(opdef),
                )
                raise _Stop
            if k in attrs:
                self.r.error(
                    f"{e.func}: `{k}` is given twice (by position and by name)",
                    self._keyword_span(e, k),
                    calls=self.frame.calls,
                )
                raise _Stop
            attrs[k] = v
            arg_spans[k] = self._kwarg_span(e, k)
        final: dict[str, Any] = {}
        for spec in opdef.attrs:
            if spec.name not in attrs:
                if spec.required:
                    self.r.error(
                        f"{e.func} needs `{spec.name}` ({describe_hint(spec.hint)})",
                        e.span,
                        calls=self.frame.calls,
                        hint=_attr_list(opdef),
                    )
                    raise _Stop
                final[spec.name] = spec.default
                continue
            value = attrs[spec.name]
            if isinstance(value, Tensor):
                self.r.error(
                    f"{e.func}: `{spec.name}` must be a compile-time "
                    f"{describe_hint(spec.hint, 1)}, not a tensor",
                    arg_spans[spec.name],
                    calls=self.frame.calls,
                )
                raise _Stop
            try:
                final[spec.name] = convert_attr(value, spec.hint)
            except ValueError as exc:
                message, hint = self._attr_error(e.func, spec, value, exc)
                self.r.error(message, arg_spans[spec.name], calls=self.frame.calls, hint=hint)
                raise _Stop from None
        return self.apply_op(opdef.name, tensor_args, final, e.span, layer_name)

    def _attr_error(
        self, func: str, spec: Any, value: Any, exc: ValueError
    ) -> tuple[str, str | None]:
        """The message and hint for an attribute value its type refuses."""
        if spec.hint is Init and isinstance(value, (str, Initializer)):
            unknown = isinstance(value, str) and str(exc) == f'unknown initializer "{value}"'
            hint = did_you_mean(str(value), USER_INITIALIZERS) if unknown else None
            return f"{func}: `{spec.name}`: {exc}", hint
        message = f"{func}: `{spec.name}` must be {describe_hint(spec.hint)}, got {describe(value)}"
        if spec.name == "activation" and isinstance(value, str):
            listed = ", ".join(f'"{a}"' for a in LAYER_ACTIVATIONS)
            return message, did_you_mean(value, LAYER_ACTIVATIONS) or f"use one of {listed}"
        return message, None

    def call_block(self, e: ast.Call, scope: Scope) -> Any:
        block = self.blocks[e.func]
        args, kwargs, layer_name = self._eval_args(e, scope)
        if len(self.frames) > MAX_CALL_DEPTH:
            self.r.error(
                f"block `{block.name}` calls itself {MAX_CALL_DEPTH} levels deep",
                e.span,
                calls=self.frame.calls,
                hint="block recursion must end through an `if` on a compile-time value",
            )
            raise _Stop
        params = block.params
        if len(args) > len(params):
            self.r.error(
                f"block `{block.name}` takes {len(params)} argument"
                f"{'s' if len(params) != 1 else ''}, got {len(args)}",
                e.args[len(params)].span,
                calls=self.frame.calls,
            )
            raise _Stop
        local = Scope(parent=self.globals)
        given: dict[str, tuple[Any, Span]] = {}
        for p, v, a in zip(params, args, e.args):
            given[p.name] = (v, a.span)
        names = [p.name for p in params]
        for k, v in kwargs.items():
            if k not in names:
                self.r.error(
                    f"block `{block.name}` has no parameter `{k}`",
                    self._keyword_span(e, k),
                    calls=self.frame.calls,
                    hint=did_you_mean(k, names),
                )
                raise _Stop
            if k in given:
                self.r.error(
                    f"block `{block.name}`: `{k}` is given twice",
                    self._keyword_span(e, k),
                    calls=self.frame.calls,
                )
                raise _Stop
            given[k] = (v, self._kwarg_span(e, k))
        symbols: dict[str, Any] = {}
        for p in params:
            if p.name in given:
                value, span = given[p.name]
            elif p.default is not None:
                value, span = self.eval(p.default, local), p.default.span
            else:
                self.r.error(
                    f"block `{block.name}` needs `{p.name}`", e.span, calls=self.frame.calls
                )
                raise _Stop
            self.check_param(block, p, value, span, symbols)
            local.names[p.name] = Binding(value, p.span, "param")
        if layer_name is None:  # explicit names do not use up a number, as for ops
            number = self.frame.counters.get("block:" + block.name, 0)
            self.frame.counters["block:" + block.name] = number + 1
        segment = layer_name if layer_name is not None else f"{block.name}_{number}"
        prefix = self.frame.prefix + segment + "."
        if layer_name is not None and any(n.startswith(prefix) for n in self.node_names):
            self.r.error(
                f'the name "{layer_name}" is already used by another block call',
                e.span,
                calls=self.frame.calls,
            )
            raise _Stop
        self.frames.append(
            Frame(
                prefix,
                (CallSite(block.name, e.span), *self.frame.calls),
                assigned=_assigned_names(block.body, {}),
            )
        )
        try:
            result = self.exec_body(block.body, local)
            if result is not POISON:
                self.warn_unused(local)
        finally:
            self.frames.pop()
        if result is None:
            self.r.error(
                f"block `{block.name}` returns nothing",
                block.span,
                hint="end it with `return <value>`",
            )
            raise _Stop
        if result is POISON:
            raise _Stop
        return result

    def check_param(
        self, block: ast.BlockDef, p: ast.ParamDecl, value: Any, span: Span, symbols: dict[str, Any]
    ) -> None:
        """An argument against its parameter's declared type (tensor types bind symbols)."""
        if value is POISON:
            raise _Stop
        t = p.type
        where = f"block `{block.name}`: `{p.name}`"
        if t is None and p.default is not None:  # `k = 3`: compile-time, typed by its use
            if isinstance(value, Tensor):
                self.r.error(
                    f"{where} must be a compile-time value, not a tensor",
                    span,
                    calls=self.frame.calls,
                )
                raise _Stop
            return
        if _is_tensor_param(t):
            if not isinstance(value, Tensor):
                self.r.error(
                    f"{where} must be a tensor, got {describe(value)}",
                    span,
                    calls=self.frame.calls,
                    hint="give compile-time parameters a type, e.g. `units: int`"
                    if t is None and p is not block.params[0]
                    else None,
                )
                raise _Stop
            if t is not None and t.dims is not None:
                self.check_tensor_type(value.type, t, symbols, f"{where} must be", span)
            elif t is not None and t.name != "tensor" and value.type.dtype != t.name:
                self.r.error(
                    f"{where} must be a {t.name} tensor, got {value}", span, calls=self.frame.calls
                )
                raise _Stop
            return
        if t is None or t.name not in SCALAR_TYPES:  # reported where the block is defined
            raise _Stop
        ok = SCALAR_TYPES[t.name]
        if (
            isinstance(value, Tensor)
            or not isinstance(value, ok)
            or (t.name in ("int", "float") and isinstance(value, bool))
        ):
            self.r.error(
                f"{where} must be {'a' if t.name != 'int' else 'an'} {t.name}, got "
                f"{describe(value)}",
                span,
                calls=self.frame.calls,
            )
            raise _Stop

    def check_tensor_type(
        self, actual: TensorType, want: ast.TypeExpr, symbols: dict[str, Any], what: str, span: Span
    ) -> None:
        dims = self.type_dims(want)
        ok = actual.dtype == want.name and len(dims) == actual.rank
        if ok:
            for d, a in zip(dims, actual.shape):
                if isinstance(d, int):
                    ok = ok and d == a
                elif d in symbols:
                    ok = ok and symbols[d] == a
                else:
                    symbols[d] = a
        if not ok:
            shown = f"{want.name}[{', '.join(str(d) for d in dims)}]"
            self.r.error(f"{what} {shown}, got {actual}", span, calls=self.frame.calls)
            raise _Stop

    def type_dims(self, t: ast.TypeExpr) -> tuple:
        """Dims of a tensor type; a name bound to an int constant is that int."""
        out = []
        for d, span in zip(t.dims or (), t.dim_spans):
            if isinstance(d, str):
                b = self.globals.lookup(d)
                if b is not None and isinstance(b.value, int) and not isinstance(b.value, bool):
                    b.used = True
                    d = b.value
            elif d < 1:
                self.r.error(f"a dim must be >= 1, got {d}", span)
            out.append(d)
        return tuple(out)

    # -- the model --

    def model(self, m: ast.ModelDef) -> Graph:
        self.frames.append(Frame("", (), assigned=_assigned_names(m.body, {})))
        scope = Scope(parent=self.globals)
        inputs = []
        for decl in m.inputs:
            t = self.decl_type(decl)
            if decl.name in scope.names:
                self.r.error(f"input `{decl.name}` is declared twice", decl.span)
                continue
            self.node_names.add(decl.name)
            self.add_node(Node(decl.name, "input", (), {}, t, decl.span))
            inputs.append(decl.name)
            scope.names[decl.name] = Binding(
                Tensor(decl.name, t) if t else POISON, decl.span, "input"
            )
        out_names = [o.name for o in m.outputs]
        for o in m.outputs:
            if out_names.count(o.name) > 1:
                self.r.error(f"output `{o.name}` is declared twice", o.span)
        self.exec_body(m.body, scope, "model")
        outputs = []
        # An output's symbolic dims name the model's symbols: `f32[N, 10]` must be `N` itself.
        symbols: dict[str, Any] = {
            d: d for o in m.outputs if o.type for d in (o.type.dims or ()) if isinstance(d, str)
        }
        for o in m.outputs:
            b = scope.names.get(o.name)
            if b is None:
                self.r.error(
                    f"output `{o.name}` is never assigned",
                    o.span,
                    hint=f"assign it in the model's body: `{o.name} = ...`",
                )
                continue
            b.used = True
            if b.value is POISON:
                continue
            if not isinstance(b.value, Tensor):
                self.r.error(f"output `{o.name}` must be a tensor, got {describe(b.value)}", b.span)
                continue
            want = o.type
            if want is not None and want.name in DTYPES:
                try:
                    self.check_tensor_type(
                        b.value.type,
                        want,
                        symbols,
                        f"output `{o.name}` is declared",
                        b.span or o.span,
                    )
                except _Stop:
                    continue
            outputs.append((o.name, b.value.name))
        if self.r.has_errors:  # a failed statement reads nothing: its names look unused
            self.frames.pop()
            return Graph(m.name, tuple(self.nodes), tuple(inputs), tuple(outputs))
        for name in inputs:
            b = scope.names[name]
            if not b.used:
                self.r.warning(f"input `{name}` is never used", b.span)
                b.used = True
        self.warn_unused(scope, keep=out_names)
        self.frames.pop()
        return Graph(m.name, tuple(self.nodes), tuple(inputs), tuple(outputs))

    def decl_type(self, decl: ast.ParamDecl) -> TensorType | None:
        t = decl.type
        assert t is not None
        if t.name not in DTYPES:
            self.r.error(
                f"unknown dtype `{t.name}`",
                t.span,
                hint=did_you_mean(t.name, DTYPES) or f"use one of {', '.join(DTYPES)}",
            )
            return None
        if t.dims is None:
            self.r.error(f"`{decl.name}` needs a shape, e.g. `{t.name}[N, 10]`", t.span)
            return None
        return TensorType(t.name, self.type_dims(t))


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "str"
    return "list" if isinstance(v, tuple) else "other"


def _compile_time_op(op: str, a: Any, b: Any) -> Any:
    """`a op b` on compile-time values; a TypeError for the combinations the language lacks
    (Python's `"64" * 2` or `True + 1` are mistakes here, not strings or ints)."""
    kinds = (_kind(a), _kind(b))
    if op in ("==", "!="):
        pass
    elif kinds == ("number", "number"):
        pass
    elif op in ("<", "<=", ">", ">=") and kinds == ("str", "str"):
        pass
    elif op == "+" and kinds in (("list", "list"), ("str", "str")):
        pass
    elif op == "*" and kinds == ("list", "number") and isinstance(b, int):
        if b * len(a) > MAX_LOOP_ITERATIONS:
            raise OverflowError
    else:
        raise TypeError
    return _ARITH[op](a, b)


# ops whose tensor inputs may be written as numbers or lists beside one tensor
CONSTANT_OPERANDS = ("add", "sub", "mul", "div", "maximum", "minimum")


def _is_constant(v: Any) -> bool:
    """A number or a list: what `as_tensor` turns into a constant next to a tensor."""
    return isinstance(v, tuple) or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _list_shape(v: Any) -> tuple[int, ...]:
    """The shape of a rectangular nested list of numbers; ValueError describes what it is not."""
    if not isinstance(v, tuple):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"a list holding {describe(v)}")
        return ()
    if not v:
        raise ValueError("an empty list")
    shapes = [_list_shape(item) for item in v]
    if any(s != shapes[0] for s in shapes):
        kinds = ", ".join(str(list(s)) for s in dict.fromkeys(shapes))
        raise ValueError(f"a ragged list (items of shapes {kinds})")
    return (len(v), *shapes[0])


def _is_tensor_param(t: ast.TypeExpr | None) -> bool:
    """Untyped, `tensor`, a dtype (`f32`) or a tensor type (`f32[N, C]`); `bool` alone is the
    compile-time bool, `bool[N]` a tensor."""
    if t is None or t.name == "tensor" or t.dims is not None:
        return True
    return t.name in DTYPES and t.name not in SCALAR_TYPES


def _attr_list(opdef: Any) -> str:
    parts = [
        a.name if a.required else f"{a.name}={format_value(a.default)}"
        for a in opdef.positional_attrs
    ]
    return f"{opdef.name}({', '.join(parts)})"


# Keras' argument names for what netc calls otherwise (its `*_initializer`s are `*_init`)
KERAS_ATTR_NAMES = {
    "use_bias": "bias",
    "kernel_size": "kernel",
    "strides": "stride",
    "dilation_rate": "dilation",
    "pool_size": "size",
    "num_heads": "heads",
    "initializer": "init",  # add_weight's
}


def _keras_name_hint(name: str, attr_names: Sequence[str]) -> str | None:
    """ "did you mean `kernel_init`?" for Keras' `kernel_initializer` (and its other names)."""
    ours = KERAS_ATTR_NAMES.get(name)
    if ours is None and name.endswith("_initializer"):
        ours = name.removesuffix("initializer") + "init"
    if ours in attr_names:
        return f"did you mean `{ours}`?"
    return None


def elaborate(
    module: ast.Module,
    reporter: Reporter,
    model: str | None = None,
    elaborator: Callable[[Reporter], Elaborator] = Elaborator,
) -> Elaboration:
    """Elaborate the model named `model` (or the file's only model) into an IR graph.
    `elaborator` makes the Elaborator (the language server passes one that records values)."""
    el = elaborator(reporter)
    el.loaded[str(Path(module.path).resolve())] = None
    el.frames.append(Frame("", ()))
    el.load_module(module)
    el.frames.pop()
    models = [i for i in module.items if isinstance(i, ast.ModelDef)]
    trains = [i for i in module.items if isinstance(i, ast.TrainDef)]
    for extra in trains[1:]:
        reporter.error("a file may have only one `train` section", extra.span)
    for m in models:
        if m.name in el.definitions:
            reporter.error(f"model `{m.name}` has the name of a block or constant", m.span)
    if model is None and len(models) > 1:
        reporter.error(
            f"{module.path} defines {len(models)} models "
            f"({', '.join(m.name for m in models)}); choose one",
            models[1].span,
            hint="pass `--model NAME` (or `model=` in the API)",
        )
        reporter.raise_if_errors()
    chosen = [m for m in models if model is None or m.name == model]
    if not chosen:
        if model is None:
            reporter.error(
                f"{module.path} defines no model",
                None,
                hint="add `model name(input: f32[N, ...]) -> (output: ...) { ... }`",
            )
        else:
            reporter.error(
                f"{module.path} has no model `{model}`",
                None,
                hint=did_you_mean(model, [m.name for m in models]),
            )
        reporter.raise_if_errors()
    graph = el.model(chosen[0])
    train = elaborate_train(trains[0], el.globals, reporter, graph) if trains else None
    return Elaboration(graph, train, reporter.diagnostics)
