"""Text -> syntax tree. The only module that knows Lark; its errors become plain words here.

The hand-written reader (`reader.py`) reads a well-formed file, fast and without recursion on
chains; where it gives up, Lark reads the text again: Lark's grammar is the authority, and its
view of a syntax error is what the user is told.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from . import reader
from .limits import Limits
from .reader import KEYWORDS, fstring_parts, split_args, unquote
from .source import NetcError, Span, error
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

__all__ = ["KEYWORDS", "parse", "parse_with_lark"]


@cache
def _parser() -> Any:
    import lark

    from netc.grammar import GRAMMAR_PATH

    return lark.Lark(
        GRAMMAR_PATH.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="basic",
        propagate_positions=True,
        maybe_placeholders=True,
        start=["start", "expr"],  # `expr`: the expressions inside an f-string
    )


def parse(text: str, path: str = "<input>", limits: Limits | None = None) -> Module:
    """Parse one file's text; a syntax error raises NetcError with a located message, and so
    does a file past the limits on nesting and expression length (`limits`)."""
    try:
        return reader.read(text, path, limits)
    except reader.Unreadable:
        pass
    return parse_with_lark(text, path)


def parse_with_lark(text: str, path: str = "<input>") -> Module:
    """Parse with Lark alone (the reader's authority; tests compare the two)."""
    import lark

    _check_brackets(text, path)
    try:
        tree = _parser().parse(text, start="start")
    except lark.exceptions.UnexpectedInput as e:
        raise _syntax_error(e, text, path) from None
    try:
        return Module(path, tuple(_Builder(path).transform(tree)))
    except lark.exceptions.VisitError as e:
        raise e.orig_exc from None


# --- syntax errors in human words -------------------------------------------------------------

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {v: k for k, v in _OPEN.items()}


def _check_brackets(text: str, path: str) -> None:
    """Unbalanced brackets, reported at the bracket (clearer than the parser's view)."""
    stack: list[tuple[str, int, int]] = []
    line, col, i = 1, 1, 0
    in_str = in_comment = False
    while i < len(text):
        c = text[i]
        if c == "\n":
            line, col, in_comment, in_str = line + 1, 1, False, False
            i += 1
            continue
        if in_comment:
            pass
        elif in_str:
            if c == "\\":
                i, col = i + 1, col + 1
            elif c == '"':
                in_str = False
        elif c == "#":
            in_comment = True
        elif c == '"':
            in_str = True
        elif c in _OPEN:
            stack.append((c, line, col))
        elif c in _CLOSE:
            # nothing open, or a `)`/`]` in a body where no `(`/`[` is open: a stray closer
            stray = (
                bool(stack)
                and stack[-1][0] == "{"
                and c != "}"
                and all(o != _CLOSE[c] for o, _, _ in stack)
            )
            if not stack or stray:
                raise error(f"unmatched `{c}`", Span(path, line, col, line, col + 1))
            o, ol, oc = stack.pop()
            if _OPEN[o] != c:
                raise error(
                    f"`{c}` does not match the `{o}` at line {ol}, column {oc}",
                    Span(path, line, col, line, col + 1),
                    hint=f"close it with `{_OPEN[o]}`",
                )
        i, col = i + 1, col + 1
    if stack:
        o, ol, oc = stack[-1]
        raise error(
            f"`{o}` is never closed",
            Span(path, ol, oc, ol, oc + 1),
            hint=f"add a `{_OPEN[o]}` where it should end",
        )


_TERMINAL_WORDS = {
    "NAME": "a name",
    "INT": "a number",
    "FLOAT": "a number",
    "STRING": "a string",
    "FSTRING": "a string",
    "COMPARE": "a comparison",
    "$END": "the end of the file",
}
_EXPR_START = {
    "NAME",
    "INT",
    "FLOAT",
    "STRING",
    "FSTRING",
    "LPAR",
    "LSQB",
    "MINUS",
    "TRUE",
    "FALSE",
    "NONE",
    "NOT",
    "IF",
}


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    term = next((t for t in _parser().terminals if t.name == name), None)
    if term is not None and term.pattern.type == "str":
        return f"`{term.pattern.value}`"
    return name.lower()


def _expected(names: set[str]) -> str:
    names = {n for n in names if not n.startswith("__ANON")} or names
    names = names - {"$END"} or names  # "or the end of the file" never helps
    if len(names & _EXPR_START) >= 5:
        rest = sorted(_describe_terminal(n) for n in names - _EXPR_START)
        return "an expression" + (f" or {', '.join(rest[:3])}" if 0 < len(rest) <= 3 else "")
    words = sorted({_describe_terminal(n) for n in names})
    if len(words) > 5:
        return ", ".join(words[:5]) + ", ..."
    return " or ".join(words)


def _syntax_error(e: Any, text: str, path: str) -> Exception:
    import lark

    line, col = getattr(e, "line", 1) or 1, getattr(e, "column", 1) or 1
    if isinstance(e, lark.exceptions.UnexpectedCharacters):
        pos = e.pos_in_stream or 0
        ch = text[pos] if pos < len(text) else "?"
        if ch == '"':  # STRING did not match: no closing quote on this line
            return error(
                "unterminated string",
                Span(path, line, col, line, col + 1),
                hint='close it with `"` on the same line',
            )
        hint = "strings use double quotes" if ch == "'" else None
        return error(
            f"unexpected character `{ch}`", Span(path, line, col, line, col + 1), hint=hint
        )
    if isinstance(e, lark.exceptions.UnexpectedEOF) or (
        isinstance(e, lark.exceptions.UnexpectedToken) and e.token.type == "$END"
    ):
        lines = text.splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1
        return error(
            f"unexpected end of file; expected {_expected(set(e.expected))}",
            Span(path, line, col, line, col + 1),
        )
    tok = e.token
    shown = str(tok)
    what = f"keyword `{shown}`" if shown in KEYWORDS else f"`{shown}`"
    span = Span(
        path,
        tok.line,
        tok.column,
        tok.end_line or tok.line,
        tok.end_column or tok.column + len(shown),
    )
    hint = None
    if tok.type == "EQUAL" and "EQUAL" not in e.expected:
        hint = "compare with `==`; assignments stand on their own"
    elif shown in KEYWORDS and "NAME" in e.expected:
        hint = f"`{shown}` is a keyword; choose another name"
    before = text.splitlines()[tok.line - 1][: tok.column - 1] if tok.line else ""
    if shown in ("+", "-", "*", "/", "//", "%", "@", "**") and "|>" in before:
        hint = f"`|>` binds loosest: write `(x |> f(...)) {shown} y` to use a chain's result"
    if "`+`" in {_describe_terminal(n) for n in e.expected}:
        return error(f"unexpected {what} after an expression", span, hint=hint)
    return error(f"unexpected {what}; expected {_expected(set(e.expected))}", span, hint=hint)


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
            return (int(c[0]), self._tok(c[0]))

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
            return Literal(self._tok(c[0]), int(c[0]))

        def float_(self, c):
            return Literal(self._tok(c[0]), float(c[0]))

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
        tree = _parser().parse(padded, start="expr")
    except lark.exceptions.UnexpectedInput as e:
        if isinstance(e, lark.exceptions.UnexpectedEOF) or (
            isinstance(e, lark.exceptions.UnexpectedToken) and e.token.type == "$END"
        ):  # the text ran out at the closing brace
            end = col + len(source)
            raise error(
                f"unexpected `}}` in an f-string; expected {_expected(set(e.expected))}",
                Span(path, line, end, line, end + 1),
            ) from None
        exc = _syntax_error(e, padded, path)
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
