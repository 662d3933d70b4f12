"""Source text -> syntax tree, fast: a hand-written lexer and parser of `grammar/netc.lark`.

`parse.py` tries this first and falls back to Lark, which stays the grammar's authority: the
reader builds exactly the tree (spans included) that Lark and parse.py's builder build, and at
the first thing it does not expect it gives up (`Unreadable`) so that Lark parses the text again
and words the syntax error. It raises a diagnostic of its own only for the limits on nesting and
expression length. Chains (`a |> f |> g`, `a + b + c`, `- - x`, `a ** b ** c`, `else if`) are
read in loops, so no source is too long for Python's stack; brackets are what nests.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .limits import Limits
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
    Stmt,
    TrainDef,
    TupleExpr,
    TypeExpr,
    UnaryOp,
)


class Unreadable(Exception):
    """The reader met something it does not expect: Lark reads the text instead."""


KEYWORDS = (
    "import",
    "const",
    "block",
    "model",
    "train",
    "return",
    "for",
    "in",
    "if",
    "else",
    "and",
    "or",
    "not",
    "true",
    "false",
    "none",
)
_KEYWORD_SET = frozenset(KEYWORDS)

# Lark's basic lexer tries terminals by priority (FSTRING 4, FLOAT 3, INT 2), then by length:
# the same order here, so that the same text gives the same tokens.
_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\f\r\n]+)
    |(?P<comment>\#[^\n]*)
    |(?P<FSTRING>f"(?:[^"\\\n]|\\.)*")
    |(?P<FLOAT>[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)
    |(?P<INT>[0-9]+)
    |(?P<STRING>"(?:[^"\\\n]|\\.)*")
    |(?P<NAME>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<COMPARE>==|!=|<=|>=|<|>)
    |(?P<op>\|>|->|\*\*|//|\.\.\.|[()\[\]{},:=+\-*/%@])
    """,
    re.VERBOSE,
)
# Text-direction controls (U+202A-202E, U+2066-2069): Lark's path refuses them wherever they are.
DIRECTION_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
_OPENERS = frozenset("([{")
_CLOSERS = frozenset(")]}")

# a token: (kind, text, line, column); kind is the text itself for keywords and punctuation
Token = tuple[str, str, int, int]
Pos = tuple[int, int]  # (line, column), as Lark counts them


def tokenize(text: str, path: str, limits: Limits, line: int = 1, col: int = 1) -> list[Token]:
    """The tokens of `text` (which starts at `line`, `col`), without spaces and comments."""
    out: list[Token] = []
    append = out.append
    match = _TOKEN.match
    pos, end = 0, len(text)
    line_start = -(col - 1)  # the offset where the current line starts
    depth, deepest = 0, limits.nesting
    while pos < end:
        m = match(text, pos)
        if m is None:
            raise Unreadable
        kind = m.lastgroup
        value = m.group()
        if kind == "ws":
            newlines = value.count("\n")
            if newlines:
                line += newlines
                line_start = pos + value.rindex("\n") + 1
        elif kind == "op":
            if value in _OPENERS:
                depth += 1
                if depth > deepest:
                    column = pos - line_start + 1
                    raise error(
                        f"brackets nest deeper than the limit of {deepest} levels",
                        Span(path, line, column, line, column + 1),
                        hint="split the expression with names for its parts, or raise the "
                        "limit with `--limit nesting=N`",
                    )
            elif value in _CLOSERS:
                depth -= 1
            append((value, value, line, pos - line_start + 1))
        elif kind == "NAME":
            append((value if value in _KEYWORD_SET else "NAME", value, line, pos - line_start + 1))
        elif kind != "comment":
            assert kind is not None
            append((kind, value, line, pos - line_start + 1))
        pos = m.end()
    return out


_MUL_OPS = {"*": "*", "/": "/", "//": "//", "%": "%", "@": "@"}


class _Reader:
    """One pass over the tokens of a file; each `expr`-like method returns the node and its
    container's start and end: where the text it was read from begins and ends, which for a
    parenthesized expression includes the parentheses (Lark's rule for parent spans)."""

    def __init__(self, tokens: list[Token], path: str, limits: Limits):
        self.n = len(tokens)
        self.toks = tokens + [("$END", "", 0, 0)] * 2  # so that peeking needs no bounds check
        self.i = 0
        self.path = path
        self.limits = limits

    # -- tokens --

    def peek(self) -> str:
        return self.toks[self.i][0]

    def peek2(self) -> str:
        return self.toks[self.i + 1][0]

    def take(self, kind: str) -> Token:
        tok = self.toks[self.i]
        if tok[0] != kind:
            raise Unreadable
        self.i += 1
        return tok

    def span(self, start: Pos, end: Pos) -> Span:
        return Span(self.path, start[0], start[1], end[0], end[1])

    def tok_span(self, tok: Token) -> Span:
        return Span(self.path, tok[2], tok[3], tok[2], tok[3] + len(tok[1]))

    @staticmethod
    def start(tok: Token) -> Pos:
        return (tok[2], tok[3])

    @staticmethod
    def end(tok: Token) -> Pos:
        return (tok[2], tok[3] + len(tok[1]))

    # -- items --

    def module(self) -> tuple[Stmt, ...]:
        items: list[Stmt] = []
        while self.i < self.n:
            kind = self.peek()
            if kind == "import":
                tok = self.take("import")
                s = self.take("STRING")
                items.append(Import(self.span(self.start(tok), self.end(s)), unquote(s[1])))
            elif kind == "const":
                items.append(self.const_def())
            elif kind == "block":
                items.append(self.block_def())
            elif kind == "model":
                items.append(self.model_def())
            elif kind == "train":
                items.append(self.train_def())
            else:
                raise Unreadable
        return tuple(items)

    def const_def(self) -> ConstDef:
        tok = self.take("const")
        name = self.take("NAME")
        self.take("=")
        value, _, end = self.statement_expr()
        return ConstDef(self.span(self.start(tok), end), name[1], value)

    def block_def(self) -> BlockDef:
        tok = self.take("block")
        name = self.take("NAME")
        self.take("(")
        params: list[ParamDecl] = []
        while self.peek() != ")":
            params.append(self.param())
            if self.peek() != ")":
                self.take(",")
        self.take(")")
        body, end = self.body()
        return BlockDef(self.span(self.start(tok), end), name[1], tuple(params), body)

    def param(self) -> ParamDecl:
        name = self.take("NAME")
        type_, default, end = None, None, self.end(name)
        if self.peek() == ":":
            self.i += 1
            type_, end = self.type_expr()
        if self.peek() == "=":
            self.i += 1
            default, _, end = self.expr()
        return ParamDecl(self.span(self.start(name), end), name[1], type_, default)

    def decls(self) -> tuple[ParamDecl, ...]:
        out = []
        while True:
            name = self.take("NAME")
            self.take(":")
            type_, end = self.type_expr()
            out.append(ParamDecl(self.span(self.start(name), end), name[1], type_, None))
            if self.peek() != ",":
                return tuple(out)
            self.i += 1
            if self.peek() == ")":
                return tuple(out)

    def type_expr(self) -> tuple[TypeExpr, Pos]:
        name = self.take("NAME")
        end = self.end(name)
        dims: list[tuple[int | str, Span]] = []
        if self.peek() == "[":
            self.i += 1
            while self.peek() != "]":
                kind = self.peek()
                if kind not in ("INT", "NAME"):
                    raise Unreadable
                tok = self.take(kind)
                dims.append((self.number(tok) if kind == "INT" else tok[1], self.tok_span(tok)))
                if self.peek() != "]":
                    self.take(",")
            end = self.end(self.take("]"))
        return TypeExpr(
            self.span(self.start(name), end),
            name[1],
            tuple(d for d, _ in dims) if dims else None,
            tuple(s for _, s in dims),
        ), end

    def model_def(self) -> ModelDef:
        tok = self.take("model")
        name = self.take("NAME")
        self.take("(")
        inputs = self.decls() if self.peek() != ")" else ()
        self.take(")")
        self.take("->")
        self.take("(")
        outputs = self.decls()
        self.take(")")
        body, end = self.body()
        return ModelDef(self.span(self.start(tok), end), name[1], inputs, outputs, body)

    def train_def(self) -> TrainDef:
        tok = self.take("train")
        self.take("{")
        entries, spans = [], []
        while self.peek() == "NAME":
            name = self.take("NAME")
            self.take("=")
            value, _, _ = self.statement_expr()
            entries.append((name[1], value))
            spans.append(self.tok_span(name))
        end = self.end(self.take("}"))
        return TrainDef(self.span(self.start(tok), end), tuple(entries), tuple(spans))

    # -- statements --

    def body(self) -> tuple[tuple[Stmt, ...], Pos]:
        self.take("{")
        stmts: list[Stmt] = []
        while True:
            kind = self.peek()
            if kind == "}":
                return tuple(stmts), self.end(self.take("}"))
            stmts.append(self.stmt(kind))

    def stmt(self, kind: str) -> Stmt:
        if kind == "NAME":
            names = [self.take("NAME")]
            while self.peek() == ",":
                self.i += 1
                names.append(self.take("NAME"))
            self.take("=")
            value, _, end = self.statement_expr()
            return Assign(
                self.span(self.start(names[0]), end),
                tuple(t[1] for t in names),
                value,
                tuple(self.tok_span(t) for t in names),
            )
        if kind == "return":
            tok = self.take("return")
            values = []
            while True:
                value, _, end = self.statement_expr()
                values.append(value)
                if self.peek() != ",":
                    break
                self.i += 1
            return Return(self.span(self.start(tok), end), tuple(values))
        if kind == "for":
            tok = self.take("for")
            targets = [self.take("NAME")[1]]
            while self.peek() == ",":
                self.i += 1
                targets.append(self.take("NAME")[1])
            self.take("in")
            iterable, _, _ = self.statement_expr()
            body, end = self.body()
            return For(self.span(self.start(tok), end), tuple(targets), iterable, body)
        if kind == "if":
            return self.if_stmt()
        if kind == "const":
            return self.const_def()
        raise Unreadable

    def if_stmt(self) -> If:
        # `if a {} else if b {} else {}`: read the chain in a loop, build it inside out
        arms: list[tuple[Token, Expr, tuple[Stmt, ...]]] = []
        last: tuple[Stmt, ...] = ()
        while True:
            tok = self.take("if")
            cond, _, _ = self.statement_expr()
            then, end = self.body()
            arms.append((tok, cond, then))
            if self.peek() != "else":
                break
            self.i += 1
            if self.peek() != "if":
                last, end = self.body()
                break
        node: If | None = None
        for tok, cond, then in reversed(arms):
            else_ = last if node is None else (node,)
            node = If(self.span(self.start(tok), end), cond, then, else_)
        assert node is not None
        return node

    # -- expressions --

    def statement_expr(self) -> tuple[Expr, Pos, Pos]:
        """An expression that a statement holds, within the limit on its length."""
        first = self.i
        out = self.expr()
        if self.i - first > self.limits.expression:
            raise error(
                f"this expression is {self.i - first:,} tokens long, more than the limit of "
                f"{self.limits.expression:,}",
                self.tok_span(self.toks[first]),
                hint="split it into statements, or raise the limit with `--limit expression=N`",
            )
        return out

    def expr(self) -> tuple[Expr, Pos, Pos]:
        if self.peek() == "if":
            return self.if_expr()
        return self.pipe()

    def if_expr(self) -> tuple[Expr, Pos, Pos]:
        arms: list[tuple[Token, Expr, Expr]] = []
        while True:
            tok = self.take("if")
            cond, _, _ = self.expr()
            self.take("{")
            then, _, _ = self.expr()
            self.take("}")
            self.take("else")
            arms.append((tok, cond, then))
            if self.peek() != "if":
                break
        self.take("{")
        node, _, _ = self.expr()
        end = self.end(self.take("}"))
        for tok, cond, then in reversed(arms):
            node = IfExpr(self.span(self.start(tok), end), cond, then, node)
        return node, self.start(arms[0][0]), end

    def pipe(self) -> tuple[Expr, Pos, Pos]:
        left, start, end = self.or_expr()
        while self.peek() == "|>":
            self.i += 1
            name = self.take("NAME")
            if self.peek() == "(":
                self.i += 1
                args, kwargs, names = self.args()
                close = self.take(")")
                end = self.end(close)
                span = self.span(self.start(name), end)
                left = Call(span, name[1], (left, *args), kwargs, True, names)
            else:
                end = self.end(name)
                left = Call(self.tok_span(name), name[1], (left,), (), True)
        return left, start, end

    def or_expr(self) -> tuple[Expr, Pos, Pos]:
        left, start, end = self.and_expr()
        while self.peek() == "or":
            self.i += 1
            right, _, end = self.and_expr()
            left = BinOp(self.span(start, end), "or", left, right)
        return left, start, end

    def and_expr(self) -> tuple[Expr, Pos, Pos]:
        left, start, end = self.not_expr()
        while self.peek() == "and":
            self.i += 1
            right, _, end = self.not_expr()
            left = BinOp(self.span(start, end), "and", left, right)
        return left, start, end

    def not_expr(self) -> tuple[Expr, Pos, Pos]:
        nots: list[Token] = []
        while self.peek() == "not":
            nots.append(self.take("not"))
        node, start, end = self.compare()
        for tok in reversed(nots):
            start = self.start(tok)
            node = UnaryOp(self.span(start, end), "not", node)
        return node, start, end

    def compare(self) -> tuple[Expr, Pos, Pos]:
        left, start, end = self.arith()
        if self.peek() == "COMPARE":
            op = self.take("COMPARE")[1]
            right, _, end = self.arith()
            left = BinOp(self.span(start, end), op, left, right)
        return left, start, end

    def arith(self) -> tuple[Expr, Pos, Pos]:
        left, start, end = self.term()
        while True:
            kind = self.peek()
            if kind != "+" and kind != "-":
                return left, start, end
            self.i += 1
            right, _, end = self.term()
            left = BinOp(self.span(start, end), kind, left, right)

    def term(self) -> tuple[Expr, Pos, Pos]:
        left, start, end = self.unary()
        while True:
            op = _MUL_OPS.get(self.peek())
            if op is None:
                return left, start, end
            self.i += 1
            right, _, end = self.unary()
            left = BinOp(self.span(start, end), op, left, right)

    def unary(self) -> tuple[Expr, Pos, Pos]:
        """`- - x ** -y ** z`: the minus signs and powers of one operand, read in a loop and
        built from the right (`**` binds tighter than a minus before it)."""
        items: list[tuple[list[Token], Expr, Pos, Pos]] = []
        while True:
            minuses = []
            while self.peek() == "-":
                minuses.append(self.take("-"))
            node, start, end = self.postfix()
            items.append((minuses, node, start, end))
            if self.peek() != "**":
                break
            self.i += 1
        acc: tuple[Expr, Pos, Pos] | None = None
        for minuses, node, start, end in reversed(items):
            if acc is not None:
                end = acc[2]
                node = BinOp(self.span(start, end), "**", node, acc[0])
            for tok in reversed(minuses):
                start = self.start(tok)
                node = UnaryOp(self.span(start, end), "-", node)
            acc = (node, start, end)
        assert acc is not None
        return acc

    def postfix(self) -> tuple[Expr, Pos, Pos]:
        if self.peek() == "NAME" and self.peek2() == "(":
            name = self.take("NAME")
            self.i += 1
            args, kwargs, names = self.args()
            end = self.end(self.take(")"))
            start = self.start(name)
            node: Expr = Call(self.span(start, end), name[1], args, kwargs, False, names)
        else:
            node, start, end = self.atom()
        while self.peek() == "[":
            self.i += 1
            subs = [self.subscript()]
            while self.peek() == ",":
                self.i += 1
                if self.peek() == "]":
                    break
                subs.append(self.subscript())
            end = self.end(self.take("]"))
            node = Index(self.span(start, end), node, tuple(subs))
        return node, start, end

    def subscript(self) -> Expr:
        kind = self.peek()
        if kind == "...":
            return EllipsisExpr(self.tok_span(self.take("...")))
        lower: Expr | None = None
        if kind != ":":
            lower, start, end = self.expr()
            if self.peek() != ":":
                return lower
        colon = self.take(":")
        if lower is None:
            start = self.start(colon)
        end = self.end(colon)
        upper = step = None
        if self.peek() not in (",", "]", ":"):
            upper, _, end = self.expr()
        if self.peek() == ":":
            end = self.end(self.take(":"))
            if self.peek() not in (",", "]"):
                step, _, end = self.expr()
        return Slice(self.span(start, end), lower, upper, step)

    def args(self) -> tuple[tuple[Expr, ...], tuple[tuple[str, Expr], ...], tuple[Span, ...]]:
        """The arguments of a call up to its `)`; a positional argument after a keyword one is
        an error that Lark's path words."""
        args: list[Expr] = []
        kwargs: list[tuple[str, Expr]] = []
        names: list[Span] = []
        while self.peek() != ")":
            if self.peek() == "NAME" and self.peek2() == "=":
                name = self.take("NAME")
                self.i += 1
                value, _, _ = self.expr()
                kwargs.append((name[1], value))
                names.append(self.tok_span(name))
            else:
                if kwargs:
                    raise Unreadable
                args.append(self.expr()[0])
            if self.peek() != ")":
                self.take(",")
                if self.peek() == ",":
                    raise Unreadable
        return tuple(args), tuple(kwargs), tuple(names)

    def atom(self) -> tuple[Expr, Pos, Pos]:
        tok = self.toks[self.i]
        kind = tok[0]
        self.i += 1
        start, end = self.start(tok), self.end(tok)
        if kind == "NAME":
            return Name(self.tok_span(tok), tok[1]), start, end
        if kind == "INT":
            return Literal(self.tok_span(tok), self.number(tok)), start, end
        if kind == "FLOAT":
            return Literal(self.tok_span(tok), self.number(tok)), start, end
        if kind == "STRING":
            return Literal(self.tok_span(tok), unquote(tok[1])), start, end
        if kind == "FSTRING":
            try:
                parts = fstring_parts(tok[1], tok[2], tok[3], self.path, self.embedded)
            except NetcError:  # Lark's path words it, after any syntax error before it
                raise Unreadable from None
            return FString(self.tok_span(tok), parts), start, end
        if kind == "true" or kind == "false" or kind == "none":
            value = {"true": True, "false": False, "none": None}[kind]
            return Literal(self.tok_span(tok), value), start, end
        if kind == "(":
            if self.peek() == ")":
                end = self.end(self.take(")"))
                return TupleExpr(self.span(start, end), ()), start, end
            first, _, _ = self.expr()
            if self.peek() == ")":  # parentheses: the expression, in a wider container
                return first, start, self.end(self.take(")"))
            items = [first]
            while self.peek() == ",":
                self.i += 1
                if self.peek() == ")":
                    break
                items.append(self.expr()[0])
            end = self.end(self.take(")"))
            return TupleExpr(self.span(start, end), tuple(items)), start, end
        if kind == "[":
            items = []
            while self.peek() != "]":
                items.append(self.expr()[0])
                if self.peek() != "]":
                    self.take(",")
                    if self.peek() == ",":
                        raise Unreadable
            end = self.end(self.take("]"))
            return ListExpr(self.span(start, end), tuple(items)), start, end
        raise Unreadable

    @staticmethod
    def number(tok: Token) -> Any:
        """An INT or FLOAT token's value; Lark's path words one out of range."""
        value = number_value(tok[1])
        if isinstance(value, str):
            raise Unreadable
        return value

    def embedded(self, source: str, line: int, col: int) -> Expr:
        """An f-string's `{...}` expression, read where it stands in the file."""
        return read_expr(source, self.path, line, col, self.limits)


def read(text: str, path: str, limits: Limits | None = None) -> Module:
    """The syntax tree of one file; `Unreadable` where Lark must word a syntax error, a
    NetcError for a file past the limits on nesting or expression length."""
    limits = limits or Limits()
    text = strip_bom(text)
    if not text.isascii() and DIRECTION_CONTROLS.search(text):
        raise Unreadable
    reader = _Reader(tokenize(text, path, limits), path, limits)
    return Module(path, reader.module())


def read_expr(source: str, path: str, line: int, col: int, limits: Limits | None = None) -> Expr:
    """One expression written at (`line`, `col`) of a file (an f-string's `{...}`)."""
    limits = limits or Limits()
    reader = _Reader(tokenize(source, path, limits, line, col), path, limits)
    node, _, _ = reader.expr()
    if reader.i != reader.n:
        raise Unreadable
    return node


# --- what both readers share ------------------------------------------------------------------


MAX_LITERAL_BITS = 1024  # an int literal past this is a runaway, as a compile-time int is


def number_value(text: str) -> int | float | str:
    """The value of a number literal, or why it has none: an int of more than
    MAX_LITERAL_BITS bits (or more digits than Python converts), a float past the largest."""
    if text.isdigit():  # an INT token is ASCII digits only
        digits = len(text.lstrip("0"))
        if digits > 400 or (value := int(text)).bit_length() > MAX_LITERAL_BITS:
            return (
                f"the number {text[:12]}... has {digits:,} digits, more than an int holds "
                f"({MAX_LITERAL_BITS:,} bits)"
            )
        return value
    out = float(text)
    if out == float("inf"):
        return f"the number {text} is too large for a float (at most about 1.8e308)"
    return out


def unquote(tok: Any) -> str:
    """A string literal's value (its escapes as Python's)."""
    s = str(tok)[1:-1]
    return s.encode("latin-1", "backslashreplace").decode("unicode_escape") if "\\" in s else s


def split_args(
    items: tuple,
) -> tuple[tuple[Expr, ...], tuple[tuple[str, Expr], ...], tuple[Span, ...]]:
    """Positional arguments, keyword arguments and the keywords' spans of one call."""
    seen_keyword = False
    for a in items:
        if isinstance(a, tuple):
            seen_keyword = True
        elif seen_keyword:
            raise error("a positional argument cannot follow a keyword argument", a.span)
    args = tuple(a for a in items if not isinstance(a, tuple))
    kwargs = tuple((k, v) for k, v, _ in (a for a in items if isinstance(a, tuple)))
    names = tuple(span for _, _, span in (a for a in items if isinstance(a, tuple)))
    return args, kwargs, names


def fstring_parts(
    token: str, line: int, column: int, path: str, read_embedded: Callable[[str, int, int], Expr]
) -> tuple[str | Expr, ...]:
    """The literal text and the `{expr}` parts of an f-string token at (`line`, `column`); each
    expression is read by `read_embedded(source, line, col)` where it stands, so its spans (and
    its syntax errors) point into the line."""
    raw = token[2:-1]  # without f" and "
    col0 = column + 2  # the column of raw[0]
    parts: list[str | Expr] = []
    text, i = "", 0

    def at(j: int, width: int = 1) -> Span:
        return Span(path, line, col0 + j, line, col0 + j + width)

    while i < len(raw):
        c = raw[i]
        if c == "\\":
            text, i = text + raw[i : i + 2], i + 2
        elif raw.startswith("{{", i) or raw.startswith("}}", i):
            text, i = text + c, i + 2
        elif c == "}":
            raise error(
                "a single `}` in an f-string", at(i), hint="write `}}` for a brace in the text"
            )
        elif c == "{":
            depth, j = 1, i + 1
            while j < len(raw) and depth:
                depth += {"{": 1, "}": -1}.get(raw[j], 0)
                if raw[j] == "\\":
                    raise error("an f-string's `{...}` cannot hold a backslash", at(j))
                j += 1
            if depth:
                raise error(
                    "`{` in an f-string is never closed",
                    at(i),
                    hint="close it with `}`, or write `{{` for a brace in the text",
                )
            source = raw[i + 1 : j - 1]
            if not source.strip():
                raise error("empty `{}` in an f-string", at(i, j - i), hint="put a value in it")
            if text:
                parts.append(unquote(f'"{text}"'))
                text = ""
            parts.append(read_embedded(source, line, col0 + i + 1))
            i = j
        else:
            text, i = text + c, i + 1
    if text or not parts:
        parts.append(unquote(f'"{text}"'))
    return tuple(parts)
