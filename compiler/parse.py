"""Text -> syntax tree. With syntax_errors.py (Lark's parser, and its errors in plain words),
the only module that knows Lark.

The hand-written reader (`reader.py`) reads a well-formed file, fast and without recursion on
chains; where it gives up, Lark reads the text again: Lark's grammar is the authority, and its
view of a syntax error is what the user is told.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from . import reader
from .limits import Limits
from .reader import (
    KEYWORDS,
    fstring_parts,
    number_value,
    split_args,
    unquote,
)
from .source import NetcError, Span, error, strip_bom
from .syntax import (
    Assign,
    BinOp,
    BlockDef,
    Call,
    ConstDef,
    EllipsisExpr,
    Expr,
    For,
    FString,
    If,
    IfExpr,
    Import,
    Index,
    ListExpr,
    Literal,
    ModelDef,
    Module,
    Name,
    ParamDecl,
    Return,
    Slice,
    TrainDef,
    TupleExpr,
    TypeExpr,
    UnaryOp,
)
from .syntax_errors import (
    bracket_error,
    check_direction_controls,
    expected_words,
    first_error,
    lark_parser,
    syntax_error,
)

__all__ = ["KEYWORDS", "parse", "parse_with_lark"]


def parse(text: str, path: str = "<input>", limits: Limits | None = None) -> Module:
    """Parse one file's text; a syntax error raises NetcError with a located message, and so
    does a file past the limits on nesting and expression length (`limits`)."""
    try:
        return reader.read(text, path, limits)
    except reader.Unreadable:
        pass
    try:
        return parse_with_lark(text, path)
    except NetcError as e:
        from .recover import more_syntax_errors

        def again(t: str) -> Module:
            return _parse_one(t, path, limits)

        raise more_syntax_errors(e, strip_bom(text), again) from None


def _parse_one(text: str, path: str, limits: Limits | None) -> Module:
    """`parse` without looking past the first syntax error (or a limit reached)."""
    try:
        return reader.read(text, path, limits)
    except reader.Unreadable:
        return parse_with_lark(text, path)


def parse_with_lark(text: str, path: str = "<input>") -> Module:
    """Parse with Lark alone (the reader's authority; tests compare the two)."""
    import lark

    text = strip_bom(text)
    check_direction_controls(text, path)
    brackets = bracket_error(text, path)
    try:
        tree = lark_parser().parse(text, start="start")
    except lark.exceptions.UnexpectedInput as e:
        raise first_error(brackets, syntax_error(e, text, path)) from None
    if brackets is not None:  # the grammar itself balances brackets: never reached
        raise brackets
    try:
        return Module(path, tuple(_Builder(path).transform(tree)))
    except lark.exceptions.VisitError as e:
        raise e.orig_exc from None


# --- tree builder: one line per rule ----------------------------------------------------------


def _lark_transformer() -> type:
    import lark

    class Builder(lark.visitors.Transformer_NonRecursive):  # no recursion on long chains
        def __init__(self, path: str):
            super().__init__()
            self.path = path

        def __default__(self, data, children, meta):
            raise AssertionError(f"parse: no builder for grammar rule `{data}`")

        def _span(self, meta: Any) -> Span:
            if getattr(meta, "empty", True):
                return Span(self.path, 1, 1, 1, 1)
            return Span(self.path, meta.line, meta.column, meta.end_line, meta.end_column)

        def _tok(self, tok: Any) -> Span:
            return Span(self.path, tok.line, tok.column, tok.end_line, tok.end_column)

        def _number(self, tok: Any) -> Any:
            value = number_value(str(tok))
            if isinstance(value, str):
                raise error(value, self._tok(tok))
            return value

        # items
        def start(self, c):
            return c

        @lark.v_args(meta=True)
        def import_(self, m, c):
            return Import(self._span(m), unquote(c[0]))

        @lark.v_args(meta=True)
        def const_def(self, m, c):
            return ConstDef(self._span(m), str(c[0]), c[1])

        @lark.v_args(meta=True)
        def block_def(self, m, c):
            return BlockDef(self._span(m), str(c[0]), c[1] or (), c[2])

        def params(self, c):
            return tuple(c)

        @lark.v_args(meta=True)
        def param(self, m, c):
            return ParamDecl(self._span(m), str(c[0]), c[1], c[2])

        @lark.v_args(meta=True)
        def model_def(self, m, c):
            return ModelDef(self._span(m), str(c[0]), c[1] or (), c[2], c[3])

        def decls(self, c):
            return tuple(c)

        @lark.v_args(meta=True)
        def decl(self, m, c):
            return ParamDecl(self._span(m), str(c[0]), c[1], None)

        @lark.v_args(meta=True)
        def type_expr(self, m, c):
            dims = None if c[1] is None else tuple(d for d, _ in c[1])
            return TypeExpr(self._span(m), str(c[0]), dims, tuple(s for _, s in c[1] or ()))

        def dims(self, c):
            return tuple(c)

        def dim_int(self, c):
            return (self._number(c[0]), self._tok(c[0]))

        def dim_name(self, c):
            return (str(c[0]), self._tok(c[0]))

        @lark.v_args(meta=True)
        def train_def(self, m, c):
            return TrainDef(self._span(m), tuple(e[:2] for e in c), tuple(e[2] for e in c))

        def train_entry(self, c):
            return (str(c[0]), c[1], self._tok(c[0]))

        # statements
        def body(self, c):
            return tuple(c)

        @lark.v_args(meta=True)
        def assign(self, m, c):
            return Assign(self._span(m), c[0][0], c[1], c[0][1])

        def targets(self, c):
            return (tuple(str(t) for t in c), tuple(self._tok(t) for t in c))

        @lark.v_args(meta=True)
        def return_(self, m, c):
            return Return(self._span(m), tuple(c))

        @lark.v_args(meta=True)
        def for_(self, m, c):
            return For(self._span(m), c[0][0], c[1], c[2])

        @lark.v_args(meta=True)
        def if_stmt(self, m, c):
            else_ = c[2] if c[2] is None or isinstance(c[2], tuple) else (c[2],)
            return If(self._span(m), c[0], c[1], else_ or ())

        # expressions
        @lark.v_args(meta=True)
        def if_expr(self, m, c):
            return IfExpr(self._span(m), c[0], c[1], c[2])

        @lark.v_args(meta=True)
        def pipe_call(self, m, c):
            args, kwargs, names = split_args(c[2] or ())
            span = Span(self.path, c[1].line, c[1].column, m.end_line, m.end_column)
            return Call(span, str(c[1]), (c[0], *args), kwargs, True, names)

        def pipe_name(self, c):
            return Call(self._tok(c[1]), str(c[1]), (c[0],), (), True)

        @lark.v_args(meta=True)
        def call(self, m, c):
            args, kwargs, names = split_args(c[1] or ())
            return Call(self._span(m), str(c[0]), args, kwargs, False, names)

        def args(self, c):
            return tuple(c)

        def kwarg(self, c):
            return (str(c[0]), c[1], self._tok(c[0]))

        @lark.v_args(meta=True)
        def index(self, m, c):
            return Index(self._span(m), c[0], c[1])

        def subscripts(self, c):
            return tuple(c)

        @lark.v_args(meta=True)
        def slice(self, m, c):
            return Slice(self._span(m), c[0], c[1], c[2])

        @lark.v_args(meta=True)
        def ellipsis(self, m, c):
            return EllipsisExpr(self._span(m))

        def _bin(self, m, c, op):
            return BinOp(self._span(m), op, c[0], c[-1])

        @lark.v_args(meta=True)
        def add(self, m, c):
            return self._bin(m, c, "+")

        @lark.v_args(meta=True)
        def sub(self, m, c):
            return self._bin(m, c, "-")

        @lark.v_args(meta=True)
        def mul(self, m, c):
            return self._bin(m, c, "*")

        @lark.v_args(meta=True)
        def div(self, m, c):
            return self._bin(m, c, "/")

        @lark.v_args(meta=True)
        def floordiv(self, m, c):
            return self._bin(m, c, "//")

        @lark.v_args(meta=True)
        def mod(self, m, c):
            return self._bin(m, c, "%")

        @lark.v_args(meta=True)
        def matmul(self, m, c):
            return self._bin(m, c, "@")

        @lark.v_args(meta=True)
        def pow(self, m, c):
            return self._bin(m, c, "**")

        @lark.v_args(meta=True)
        def or_(self, m, c):
            return self._bin(m, c, "or")

        @lark.v_args(meta=True)
        def and_(self, m, c):
            return self._bin(m, c, "and")

        @lark.v_args(meta=True)
        def compare(self, m, c):
            return BinOp(self._span(m), str(c[1]), c[0], c[2])

        @lark.v_args(meta=True)
        def neg(self, m, c):
            return UnaryOp(self._span(m), "-", c[0])

        @lark.v_args(meta=True)
        def not_(self, m, c):
            return UnaryOp(self._span(m), "not", c[0])

        def name(self, c):
            return Name(self._tok(c[0]), str(c[0]))

        def int_(self, c):
            return Literal(self._tok(c[0]), self._number(c[0]))

        def float_(self, c):
            return Literal(self._tok(c[0]), self._number(c[0]))

        def string(self, c):
            return Literal(self._tok(c[0]), unquote(c[0]))

        def fstring(self, c):
            return FString(
                self._tok(c[0]),
                fstring_parts(
                    str(c[0]),
                    c[0].line,
                    c[0].column,
                    self.path,
                    lambda src, line, col: _parse_embedded(src, self.path, line, col),
                ),
            )

        @lark.v_args(meta=True)
        def true(self, m, c):
            return Literal(self._span(m), True)

        @lark.v_args(meta=True)
        def false(self, m, c):
            return Literal(self._span(m), False)

        @lark.v_args(meta=True)
        def none(self, m, c):
            return Literal(self._span(m), None)

        @lark.v_args(meta=True)
        def tuple_(self, m, c):
            return TupleExpr(self._span(m), tuple(x for x in c if x is not None))

        @lark.v_args(meta=True)
        def list_(self, m, c):
            return ListExpr(self._span(m), tuple(x for x in c if x is not None))

    return Builder


def _Builder(path: str) -> Any:  # noqa: N802
    return _builder_class()(path)


@cache
def _builder_class() -> type:
    return _lark_transformer()


def _parse_embedded(source: str, path: str, line: int, col: int) -> Expr:
    """An expression written at (line, col) of a file, parsed with its real positions."""
    import lark

    padded = "\n" * (line - 1) + " " * (col - 1) + source
    try:
        tree = lark_parser().parse(padded, start="expr")
    except lark.exceptions.UnexpectedInput as e:
        if isinstance(e, lark.exceptions.UnexpectedEOF) or (
            isinstance(e, lark.exceptions.UnexpectedToken) and e.token.type == "$END"
        ):  # the text ran out at the closing brace
            end = col + len(source)
            raise error(
                f"unexpected `}}` in an f-string; expected {expected_words(set(e.expected))}",
                Span(path, line, end, line, end + 1),
            ) from None
        exc = syntax_error(e, padded, path, start="expr")
        assert isinstance(exc, NetcError)
        d = exc.diagnostics[0]
        if d.message.endswith("; expected "):  # only the end could come: one expression ends
            what = d.message.removeprefix("unexpected ").removesuffix("; expected ")
            raise error(
                f"unexpected {what} after the expression in an f-string's `{{...}}`",
                d.span,
                hint="a `{...}` holds one expression",
            ) from None
        raise exc from None
    try:
        expr = _Builder(path).transform(tree)
    except lark.exceptions.VisitError as e:
        raise e.orig_exc from None
    assert isinstance(expr, Expr)
    return expr
