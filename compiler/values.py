"""Compile-time values during elaboration: tensors, scopes and frames, the built-in functions,
and arithmetic on numbers, strings and lists, each bounded so no source can make it huge."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import syntax as ast
from .ir import TensorType
from .ops import ALIASES, OPS
from .source import CallSite, Span, format_value
from .weights import INITIALIZER_ARGS, Initializer, make_initializer


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


class Stop(Exception):
    """Abandon the current statement; its error (if any) has been reported."""


class Abort(Exception):
    """Abandon the whole model: a limit on its total size was passed (and reported)."""


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
    dims: frozenset[str] = frozenset()  # the named dims of its parameters' or inputs' types


def dim_names(decls: Sequence[ast.ParamDecl]) -> frozenset[str]:
    """The names among the dims of these declarations' tensor types (`N`, `C`)."""
    return frozenset(
        d for p in decls if p.type is not None for d in p.type.dims or () if isinstance(d, str)
    )


def assigned_names(stmts: Sequence[ast.Stmt], out: dict[str, Span]) -> dict[str, Span]:
    """Names a body assigns anywhere (in loops and branches too), with their first span."""
    todo = [iter(stmts)]
    while todo:  # a stack, not recursion: `else if` chains can be long
        s = next(todo[-1], None)
        if s is None:
            todo.pop()
        elif isinstance(s, ast.Assign):
            for name, span in zip(s.targets, s.target_spans or (s.span,) * len(s.targets)):
                out.setdefault(name, span)
        elif isinstance(s, ast.ConstDef):
            out.setdefault(s.name, s.span)
        elif isinstance(s, ast.For):
            todo.append(iter(s.body))
        elif isinstance(s, ast.If):
            todo.append(iter(s.else_))
            todo.append(iter(s.then))
    return out


# --- compile-time built-in functions ----------------------------------------------------------


def _shape_of(x: Any) -> tuple:
    return tuple(x.type.shape)


def _range(*args: int) -> tuple:
    """`range(...)` (its length is checked against the limit before it is called)."""
    if not 1 <= len(args) <= 3 or not all(kind(a) == "number" and isinstance(a, int) for a in args):
        raise TypeError
    return tuple(range(*args))


MAX_STR_ITEMS = 100_000  # `str` of a list with more numbers in it is a runaway, not a name


def to_str(value: Any) -> str:
    """`str(v)`: a string as it is, anything else as the language writes it (`3`, `true`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, tuple) and leaves(value, MAX_STR_ITEMS) > MAX_STR_ITEMS:
        raise OverflowError(f"a list of more than {MAX_STR_ITEMS:,} values is too long to write")
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
    "str": to_str,
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
TENSOR_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "@": "matmul"}
SCALAR_TYPES = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
    "list": (tuple,),
    "tuple": (tuple,),
    "any": (object,),
}
MAX_INT_BITS = 1024  # a compile-time int past this is a runaway computation, not a size


def describe(value: Any) -> str:
    """A value in the user's words, for messages."""
    if isinstance(value, Tensor):
        return str(value)
    if isinstance(value, bool):
        return f"the bool {'true' if value else 'false'}"
    if value is None:
        return "none"
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an int of {len(str(abs(value)))} digits"
    if isinstance(value, (int, float)):
        return f"the {type(value).__name__} {value}"
    if isinstance(value, str):
        shown = format_value(value if len(value) <= 60 else value[:57] + "...")
        return f"the string {shown}"
    if isinstance(value, tuple):
        return f"a list of {len(value)}"
    if isinstance(value, Initializer):
        return f"the initializer {value}"
    return type(value).__name__


def kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "str"
    return "list" if isinstance(v, tuple) else "other"


def compile_time_op(op: str, a: Any, b: Any, max_items: int) -> Any:
    """`a op b` on compile-time values; a TypeError for the combinations the language lacks
    (Python's `"64" * 2` or `True + 1` are mistakes here, not strings or ints), an
    OverflowError for a list or string longer than `max_items` or a runaway int."""
    kinds = (kind(a), kind(b))
    if op in ("==", "!="):
        pass
    elif kinds == ("number", "number"):
        pass
    elif op in ("<", "<=", ">", ">=") and kinds == ("str", "str"):
        pass
    elif op == "+" and kinds in (("list", "list"), ("str", "str")):
        if len(a) + len(b) > max_items:
            raise TooLong(kinds[0], len(a) + len(b), max_items)
    elif op == "*" and kinds == ("list", "number") and isinstance(b, int):
        if b * len(a) > max_items:
            raise TooLong("list", b * len(a), max_items)
    else:
        raise TypeError
    out = _ARITH[op](a, b)
    if isinstance(out, complex):  # (-8) ** 0.5
        raise ValueError
    if isinstance(out, int) and out.bit_length() > MAX_INT_BITS:
        raise OverflowError
    return out


class TooLong(OverflowError):
    """A list or string made by `+` or `*` past the limit on items (`--limit iterations`)."""

    def __init__(self, what: str, items: int, limit: int):
        unit = "items" if what == "list" else "characters"
        size = f"{items:,}" if items < 10**15 else f"about 10^{len(str(items)) - 1}"
        super().__init__(f"the {what} would have {size} {unit}, more than the limit of {limit:,}")


# ops whose tensor inputs may be written as numbers or lists beside one tensor
CONSTANT_OPERANDS = ("add", "sub", "mul", "div", "maximum", "minimum")


def is_constant(v: Any) -> bool:
    """A number or a list: what `as_tensor` turns into a constant next to a tensor."""
    return isinstance(v, tuple) or (isinstance(v, (int, float)) and not isinstance(v, bool))


def leaves(v: Any, cap: int) -> int:
    """How many values a nested list holds, counted up to just past `cap` (lists made with
    `[L] * n` share their items: counting must not walk them n times)."""
    count, todo = 0, [v]
    sizes: dict[int, int] = {}
    while todo and count <= cap:
        item = todo.pop()
        if not isinstance(item, tuple):
            count += 1
        elif id(item) in sizes:
            count += sizes[id(item)]
        else:
            sizes[id(item)] = inner = leaves_of_children(item, cap - count, sizes)
            count += inner
    return count


def leaves_of_children(v: tuple, cap: int, sizes: dict[int, int]) -> int:
    total = 0
    for item in v:
        if total > cap:
            break
        if not isinstance(item, tuple):
            total += 1
        elif id(item) in sizes:
            total += sizes[id(item)]
        else:
            sizes[id(item)] = inner = leaves_of_children(item, cap - total, sizes)
            total += inner
    return total


def list_shape(v: Any, _seen: dict[int, tuple[int, ...]] | None = None) -> tuple[int, ...]:
    """The shape of a rectangular nested list of numbers; ValueError describes what it is not.
    (A list repeated with `*` is looked at once.)"""
    if not isinstance(v, tuple):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"a list holding {describe(v)}")
        return ()
    seen = {} if _seen is None else _seen
    if id(v) in seen:
        return seen[id(v)]
    if not v:
        raise ValueError("an empty list")
    shapes = [list_shape(item, seen) for item in v]
    if any(s != shapes[0] for s in shapes):
        kinds = ", ".join(str(list(s)) for s in dict.fromkeys(shapes))
        raise ValueError(f"a ragged list (items of shapes {kinds})")
    seen[id(v)] = shape = (len(v), *shapes[0])
    return shape
