"""The syntax tree: plain frozen dataclasses with spans, and a printer back to source text.

`parse.py` builds it; `elaborate.py` reads it. `format_module` prints a canonical form that
parses back to an equal tree (comments are not part of the tree).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .source import Span, format_value


@dataclass(frozen=True)
class Expr:
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True)
class Name(Expr):
    id: str


@dataclass(frozen=True)
class Literal(Expr):
    value: Any  # int, float, str, bool or None


@dataclass(frozen=True)
class FString(Expr):
    """`f"conv{i}_block{j}"`: literal text and the expressions put in, in order."""

    parts: tuple[str | Expr, ...]


@dataclass(frozen=True)
class TupleExpr(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class ListExpr(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class BinOp(Expr):
    op: str  # + - * / // % @ ** == != < <= > >= and or
    left: Expr
    right: Expr


@dataclass(frozen=True)
class UnaryOp(Expr):
    op: str  # - not
    operand: Expr


@dataclass(frozen=True)
class Call(Expr):
    """`f(a, k=v)`, or `a |> f(k=v)` with `piped` set: the piped value is `args[0]`.
    The span covers the callee and its arguments, not the piped value."""

    func: str
    args: tuple[Expr, ...]
    kwargs: tuple[tuple[str, Expr], ...]
    piped: bool = False
    kwarg_spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)  # the names


@dataclass(frozen=True)
class Slice(Expr):
    start: Expr | None
    stop: Expr | None
    step: Expr | None


@dataclass(frozen=True)
class EllipsisExpr(Expr):
    pass


@dataclass(frozen=True)
class Index(Expr):
    value: Expr
    subscripts: tuple[Expr, ...]  # Expr, Slice or EllipsisExpr


@dataclass(frozen=True)
class IfExpr(Expr):
    cond: Expr
    then: Expr
    else_: Expr


@dataclass(frozen=True)
class TypeExpr:
    """`int`, `tensor`, or `f32[N, 3]` (dims: int or symbol/constant name)."""

    span: Span = field(compare=False, repr=False)
    name: str = ""
    dims: tuple[int | str, ...] | None = None
    dim_spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Stmt:
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True)
class Assign(Stmt):
    targets: tuple[str, ...]
    value: Expr
    target_spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Return(Stmt):
    values: tuple[Expr, ...]


@dataclass(frozen=True)
class For(Stmt):
    targets: tuple[str, ...]
    iterable: Expr
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class If(Stmt):
    cond: Expr
    then: tuple[Stmt, ...]
    else_: tuple[Stmt, ...]


@dataclass(frozen=True)
class ConstDef(Stmt):
    name: str
    value: Expr


@dataclass(frozen=True)
class ParamDecl:
    span: Span = field(compare=False, repr=False)
    name: str = ""
    type: TypeExpr | None = None
    default: Expr | None = None


@dataclass(frozen=True)
class Import(Stmt):
    path: str


@dataclass(frozen=True)
class BlockDef(Stmt):
    name: str
    params: tuple[ParamDecl, ...]
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class ModelDef(Stmt):
    name: str
    inputs: tuple[ParamDecl, ...]
    outputs: tuple[ParamDecl, ...]
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class TrainDef(Stmt):
    entries: tuple[tuple[str, Expr], ...]
    entry_spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Module:
    path: str
    items: tuple[Stmt, ...]


# --- printer -----------------------------------------------------------------------------------

_PREC = {
    "or": 1,
    "and": 2,
    "==": 4,
    "!=": 4,
    "<": 4,
    "<=": 4,
    ">": 4,
    ">=": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "//": 6,
    "%": 6,
    "@": 6,
    "**": 8,
}


def format_expr(e: Expr, prec: float = 0) -> str:
    """Source text for an expression, parenthesized only where precedence needs it."""
    if isinstance(e, Name):
        return e.id
    if isinstance(e, Literal):
        return format_value(e.value)
    if isinstance(e, FString):
        inner = "".join(
            "{" + format_expr(p) + "}" if isinstance(p, Expr) else _fstring_text(p) for p in e.parts
        )
        return f'f"{inner}"'
    if isinstance(e, TupleExpr):
        inner = ", ".join(format_expr(i) for i in e.items)
        return f"({inner},)" if len(e.items) == 1 else f"({inner})"
    if isinstance(e, ListExpr):
        return "[" + ", ".join(format_expr(i) for i in e.items) + "]"
    if isinstance(e, BinOp):
        p = _PREC[e.op]
        if e.op == "**":  # right-associative, binds tighter than unary minus on its left
            text = f"{format_expr(e.left, 9)} ** {format_expr(e.right, 7)}"
        elif p == 4:  # comparisons do not chain
            text = f"{format_expr(e.left, p + 1)} {e.op} {format_expr(e.right, p + 1)}"
        else:
            text = f"{format_expr(e.left, p)} {e.op} {format_expr(e.right, p + 1)}"
        return f"({text})" if p < prec else text
    if isinstance(e, UnaryOp):
        if e.op == "not":
            text, p = f"not {format_expr(e.operand, 3)}", 3
        else:
            text, p = f"-{format_expr(e.operand, 7)}", 7
        return f"({text})" if p < prec else text
    if isinstance(e, Call):
        args = list(e.args[1:] if e.piped else e.args)
        parts = [format_expr(a) for a in args] + [f"{k}={format_expr(v)}" for k, v in e.kwargs]
        call = f"{e.func}({', '.join(parts)})" if parts or not e.piped else e.func
        if e.piped:
            text = f"{format_expr(e.args[0], 0.5)} |> {call}"
            return f"({text})" if prec > 0.5 else text
        return call
    if isinstance(e, Index):
        return f"{format_expr(e.value, 10)}[{', '.join(format_expr(s) for s in e.subscripts)}]"
    if isinstance(e, Slice):
        text = (
            (format_expr(e.start) if e.start else "")
            + ":"
            + (format_expr(e.stop) if e.stop else "")
        )
        return text + (":" + format_expr(e.step) if e.step else "")
    if isinstance(e, EllipsisExpr):
        return "..."
    if isinstance(e, IfExpr):
        text = (
            f"if {format_expr(e.cond)} {{ {format_expr(e.then)} }} "
            f"else {{ {format_expr(e.else_)} }}"
        )
        return f"({text})" if prec > 0 else text
    raise AssertionError(f"format_expr: unknown node {type(e).__name__}")


def _fstring_text(text: str) -> str:
    """Literal text of an f-string as written there: `"` and `\\` escaped, braces doubled."""
    return format_value(text)[1:-1].replace("{", "{{").replace("}", "}}")


def format_type(t: TypeExpr) -> str:
    if t.dims is None:
        return t.name
    return f"{t.name}[{', '.join(str(d) for d in t.dims)}]"


def _format_decl(p: ParamDecl) -> str:
    text = p.name + (f": {format_type(p.type)}" if p.type else "")
    return text + (f" = {format_expr(p.default)}" if p.default else "")


def _format_body(stmts: tuple[Stmt, ...], indent: str) -> list[str]:
    out: list[str] = []
    for s in stmts:
        out.extend(indent + line for line in _format_stmt(s, indent))
    return out


def _format_stmt(s: Stmt, indent: str = "    ") -> list[str]:
    if isinstance(s, Assign):
        return [f"{', '.join(s.targets)} = {format_expr(s.value)}"]
    if isinstance(s, Return):
        return ["return " + ", ".join(format_expr(v) for v in s.values)]
    if isinstance(s, ConstDef):
        return [f"const {s.name} = {format_expr(s.value)}"]
    if isinstance(s, Import):
        return [f'import "{s.path}"']
    if isinstance(s, For):
        head = f"for {', '.join(s.targets)} in {format_expr(s.iterable)} {{"
        return [head, *_format_body(s.body, "    "), "}"]
    if isinstance(s, If):
        lines = [f"if {format_expr(s.cond)} {{", *_format_body(s.then, "    "), "}"]
        if s.else_:
            lines[-1] = "} else {"
            lines += [*_format_body(s.else_, "    "), "}"]
        return lines
    if isinstance(s, BlockDef):
        head = f"block {s.name}({', '.join(_format_decl(p) for p in s.params)}) {{"
        return [head, *_format_body(s.body, "    "), "}"]
    if isinstance(s, ModelDef):
        ins = ", ".join(_format_decl(p) for p in s.inputs)
        outs = ", ".join(_format_decl(p) for p in s.outputs)
        return [f"model {s.name}({ins}) -> ({outs}) {{", *_format_body(s.body, "    "), "}"]
    if isinstance(s, TrainDef):
        return ["train {", *(f"    {k} = {format_expr(v)}" for k, v in s.entries), "}"]
    raise AssertionError(f"format_stmt: unknown node {type(s).__name__}")


def format_module(m: Module) -> str:
    """Canonical source text for a module (comments are not kept)."""
    return "\n\n".join("\n".join(_format_stmt(i)) for i in m.items) + "\n"
