"""`netc fmt`: the one canonical layout of a `.net` file, comments kept.

The formatter rewrites whitespace only, so the tokens, and with them the syntax tree and the
compiled model, never change. It keeps the line breaks a statement was written with (as gofmt
does) and decides everything else: one statement per line, bodies indented four spaces per
brace, continuation lines four more than the line that opened their bracket, spaces around
operators (none around `=` of a keyword argument, none after a unary minus, none inside a
slice), `} else {` on one line, at most one blank line in a row and one between top-level
blocks, models and the train section, trailing comments two spaces after the code (aligned
with their neighbours'), and a line over 100 characters broken before each of its `|>`.
Formatting twice gives what formatting once gave. The syntax tree (`parse`) says where
statements start and end; the tokens say the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from . import syntax as ast
from .parse import KEYWORDS, parse
from .source import strip_bom

WIDTH = 100  # the house line length; a longer line is broken at its pipes
INDENT = "    "

# The language's tokens, as its lexer reads them (reader.py), with comments kept.
_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\f\r\n]+)
    |(?P<comment>\#[^\n]*)
    |(?P<string>f?"(?:[^"\\\n]|\\.)*")
    |(?P<number>[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?|[0-9]+(?:[eE][-+]?[0-9]+)?)
    |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op>\|>|->|\*\*|//|\.\.\.|==|!=|<=|>=|[<>()\[\]{},:=+\-*/%@])
    |(?P<other>.)
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset(KEYWORDS)
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(_OPENERS.values())
_BINARY = frozenset(
    ["|>", "->", "**", "//", "==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "%", "@", "="]
)
# after these a `-` is a sign, not a subtraction
_BEFORE_UNARY = _BINARY | {",", ":", "(", "[", "{"} | {"return", "in", "if", "else"}
_BEFORE_UNARY |= {"and", "or", "not"}
_COMPOUND_HEADS = frozenset({"block", "model", "for", "train", "if"})


@dataclass
class _Tok:
    kind: str  # name, keyword, number, string, comment, op
    text: str
    line: int
    col: int  # 1-based, as the parser's spans
    # set by _classify:
    stmt_brace: bool = False  # a `{`/`}` of a body (block, model, for, if, train)
    starts: bool = False  # starts a statement (or a train setting)
    ends: bool = False  # ends a simple statement
    top: str | None = None  # for a statement start at the top level: its keyword or "stmt"
    call_paren: bool = False  # a `(` of a call (its `=` are keyword arguments)
    index_bracket: bool = False  # a `[` of an index or a slice
    break_before: bool = False  # a `|>` that starts a line (a long line broken there)

    @property
    def end(self) -> tuple[int, int]:
        return (self.line, self.col + len(self.text))


def _lex(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    line, line_start = 1, 0
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "other"
        value = m.group()
        if kind == "ws":
            newlines = value.count("\n")
            if newlines:
                line += newlines
                line_start = m.start() + value.rindex("\n") + 1
            continue
        if kind == "name" and value in _KEYWORDS:
            kind = "keyword"
        toks.append(_Tok(kind, value.rstrip() if kind == "comment" else value, line, 0))
        toks[-1].col = m.start() - line_start + 1
    return toks


def _statements(items: Sequence[ast.Stmt]) -> Iterator[tuple[ast.Stmt, bool]]:
    """Every statement, with whether it is a top-level item."""

    def walk(stmts: Sequence[ast.Stmt], top: bool) -> Iterator[tuple[ast.Stmt, bool]]:
        for s in stmts:
            yield s, top
            if isinstance(s, (ast.BlockDef, ast.ModelDef, ast.For)):
                yield from walk(s.body, False)
            elif isinstance(s, ast.If):
                yield from walk((*s.then, *s.else_), False)

    yield from walk(items, True)


def _classify(toks: list[_Tok], module: ast.Module) -> None:
    """Mark statement starts and ends, body braces, call parens and index brackets."""
    starts: dict[tuple[int, int], str | None] = {}
    ends: set[tuple[int, int]] = set()
    for s, top in _statements(module.items):
        kind = type(s).__name__
        starts[(s.span.line, s.span.col)] = kind if top else None
        if isinstance(s, ast.TrainDef):
            for span in s.entry_spans:
                starts.setdefault((span.line, span.col), None)
                ends.add((span.end_line, span.end_col))
        elif not isinstance(s, (ast.BlockDef, ast.ModelDef, ast.For, ast.If)):
            ends.add((s.span.end_line, s.span.end_col))
    code = [t for t in toks if t.kind != "comment"]
    stack: list[_Tok] = []
    pending: list[int] = []  # depths at which the next `{` opens a body
    closed_body = False  # the token before was a body's `}`
    for i, t in enumerate(code):
        prev = code[i - 1] if i else None
        where = (t.line, t.col)
        if where in starts:
            t.starts = True
            t.top = starts[where]
            if t.text in _COMPOUND_HEADS:
                pending.append(len(stack))
        elif t.text == "if" and prev is not None and prev.text == "else" and prev.stmt_brace:
            pending.append(len(stack))  # `} else if c {` of a statement
        if t.end in ends:
            t.ends = True
        if t.text == "else" and closed_body:
            t.stmt_brace = True  # an `else` of a statement (not of an if-expression)
            pending.append(len(stack))
        closed_body = False
        if t.text in _OPENERS:
            if t.text == "{" and pending and pending[-1] == len(stack):
                pending.pop()
                t.stmt_brace = True
            elif t.text == "(" and prev is not None:
                t.call_paren = (prev.kind == "name" and not _is_definition_name(code, i - 1)) or (
                    prev.text in (")", "]")
                )
            elif t.text == "[" and prev is not None:
                t.index_bracket = prev.kind in ("name", "string") or prev.text in (")", "]")
            stack.append(t)
        elif t.text in _CLOSERS and stack:
            opener = stack.pop()
            t.stmt_brace = opener.stmt_brace
            closed_body = opener.stmt_brace
        if t.text == "else" and t.stmt_brace and i + 1 < len(code) and code[i + 1].text == "if":
            pending.pop()  # the `if` after it will push its own


def _is_definition_name(code: list[_Tok], i: int) -> bool:
    return i > 0 and code[i - 1].text in ("block", "model")


@dataclass
class _Line:
    indent: int
    parts: list[str] = field(default_factory=list)
    comment: str | None = None
    blank_before: bool = False
    level_comment: bool = False  # a comment line between statements
    comment_only: bool = False
    top: str | None = None  # the top-level statement this line starts, by kind

    def code(self) -> str:
        return "".join(self.parts)


def _space(p: _Tok, t: _Tok, unary: bool, kwarg: bool, in_slice: bool) -> bool:
    """Whether a space separates `p` and `t` on one line."""
    if t.text in (",", ")", "]") or p.text in ("(", "["):
        return False
    if p.text == ",":
        return True
    if p.text == "-" and unary:
        return False
    if kwarg and "=" in (p.text, t.text):
        return False
    after_value = p.text in (")", "]") or (p.kind == "name")
    if t.text == "(":
        return not after_value
    if t.text == "[":
        return not (after_value or p.kind == "string")
    if t.text == ":":
        return False
    if p.text == ":":
        return not in_slice
    return True


def _layout(toks: list[_Tok]) -> list[_Line]:
    lines: list[_Line] = []
    depth = 0  # open bodies
    # open brackets of the current statement: (token, indent of the line that opened it)
    stack: list[tuple[_Tok, int]] = []
    at_level = True  # between statements (a comment there is indented as a statement)
    prev: _Tok | None = None  # the previous code token
    prev_any: _Tok | None = None  # the previous token, comments included
    last_was_unary = False

    def new_line(indent: int, t: _Tok) -> _Line:
        line = _Line(indent)
        if prev_any is not None and t.line > prev_any.line + 1 and lines:
            line.blank_before = True
        lines.append(line)
        return line

    def continuation_indent() -> int:
        if not stack:
            return (depth + 1) * 4
        opener, opened_at = stack[-1]
        base = opened_at + 4
        if prev is not None and prev is not opener and prev.text != "," and not prev.starts:
            if prev.text != "{" or not prev.stmt_brace:
                return base + 4 if _continues(prev) else base
        return base

    for t in toks:
        if t.kind == "comment":
            if prev_any is not None and prev_any.line == t.line and lines:
                line = lines[-1]
                line.comment = t.text if line.comment is None else f"{line.comment}  {t.text}"
            else:
                indent = depth * 4 if at_level else continuation_indent()
                line = new_line(indent, t)
                line.parts, line.level_comment, line.comment_only = [t.text], at_level, True
                line.comment = None
            prev_any = t
            continue
        unary = t.text == "-" and (prev is None or prev.text in _BEFORE_UNARY)
        closing_body = t.text == "}" and t.stmt_brace
        if closing_body:
            depth -= 1
        need_break = (
            prev is None
            or t.starts
            or closing_body
            or (prev.text == "{" and prev.stmt_brace)
            or (prev.text == "}" and prev.stmt_brace and t.text != "else")
            or t.break_before
        )
        joined = (t.text == "{" and t.stmt_brace) or (t.text == "else" and t.stmt_brace)
        if not need_break and not joined and prev is not None and t.line > prev.line:
            need_break = True  # the writer's line break, kept
        if need_break:
            if t.starts or closing_body or prev is None:
                stack.clear()
                line = new_line(depth * 4, t)
            elif t.text in _CLOSERS and stack:
                line = new_line(stack[-1][1], t)
            else:
                line = new_line(continuation_indent(), t)
            if closing_body or (prev is not None and prev.text == "{" and prev.stmt_brace):
                line.blank_before = False
            line.top = t.top
            line.parts.append(t.text)
        else:
            line = lines[-1]
            in_slice = bool(stack) and stack[-1][0].index_bracket
            kwarg = bool(stack) and stack[-1][0].call_paren
            if prev is not None and _space(prev, t, last_was_unary, kwarg, in_slice):
                line.parts.append(" ")
            line.parts.append(t.text)
        if t.text in _OPENERS and not t.stmt_brace:
            stack.append((t, line.indent))
        elif t.text in _CLOSERS and not t.stmt_brace and stack:
            stack.pop()
        if t.text == "{" and t.stmt_brace:
            depth += 1
            stack.clear()
        if t.starts:
            at_level = False
        if t.ends or t.stmt_brace:
            at_level = True
        last_was_unary = unary
        prev = prev_any = t
    return lines


def _continues(prev: _Tok) -> bool:
    """Whether a line after `prev` (inside a bracket) continues the item `prev` is part of."""
    return prev.text not in _OPENERS


def _render(lines: list[_Line]) -> str:
    out: list[str] = []
    previous_top: str | None = None
    compound = ("BlockDef", "ModelDef", "TrainDef")
    for i, line in enumerate(lines):
        if line.top is not None:
            if previous_top is not None and (line.top in compound or previous_top in compound):
                # a blank line before the item and the comments right above it
                j = len(out)
                k = i - 1
                while k >= 0 and lines[k].level_comment and not lines[k].blank_before:
                    j -= 1
                    k -= 1
                spaced = k >= 0 and lines[k].level_comment  # its comments have a blank above
                if not spaced and j > 0 and out[j - 1] != "":
                    out.insert(j, "")
            previous_top = line.top
        if line.blank_before and out and out[-1] != "":
            out.append("")
        out.append(" " * line.indent + line.code())
    # trailing comments: two spaces after the code, aligned over a run of consecutive lines
    texts = [" " * line.indent + line.code() for line in lines]
    columns = _comment_columns(lines, texts)
    result: list[str] = []
    index = 0
    for text in out:
        if text == "" or index >= len(lines) or texts[index] != text:
            result.append(text)
            continue
        comment = lines[index].comment
        if comment is not None:
            text = text + " " * max(2, columns[index] - len(text)) + comment
        result.append(text)
        index += 1
    while result and result[0] == "":
        result.pop(0)
    return "\n".join(result) + "\n" if result else ""


def _comment_columns(lines: list[_Line], texts: list[str]) -> list[int]:
    """The column of each line's trailing comment: two past the longest code of its run (lines
    in a row, without blank or comment-only lines between), unless that passes the width."""
    columns = [0] * len(lines)
    run: list[int] = []

    def close() -> None:
        with_comment = [i for i in run if lines[i].comment is not None]
        if with_comment:
            column = max(len(texts[i]) for i in with_comment) + 2
            for i in with_comment:
                fits = column + len(lines[i].comment or "") <= WIDTH
                columns[i] = column if fits else len(texts[i]) + 2
        run.clear()

    for i, line in enumerate(lines):
        if line.blank_before or line.level_comment or (line.parts and line.parts[0] == "}"):
            close()
        if line.level_comment:
            continue
        run.append(i)
        if line.code().endswith("{"):
            close()
    close()
    return columns


def _break_long_lines(toks: list[_Tok], lines: list[_Line]) -> bool:
    """Mark the `|>` of each line longer than the width that are outside its brackets (and not
    first on it): the next layout starts a line at each. Whether any was marked."""
    owner = _token_lines(toks, lines)
    firsts: set[int] = set()
    depth_at: dict[int, int] = {}
    depth = 0
    changed = False
    for t in toks:
        if t.kind == "comment":
            continue
        line = owner[id(t)]
        if id(line) not in depth_at:
            depth_at[id(line)] = depth
            firsts.add(id(t))
        long = len(" " * line.indent + line.code()) > WIDTH
        if long and t.text == "|>" and depth == depth_at[id(line)] and id(t) not in firsts:
            t.break_before = changed = True
        if t.text in _OPENERS:
            depth += 1
        elif t.text in _CLOSERS:
            depth -= 1
    return changed


def _token_lines(toks: list[_Tok], lines: list[_Line]) -> dict[int, _Line]:
    """Which output line each code token is on (the layout appends them in order)."""
    owner: dict[int, _Line] = {}
    code_lines = iter(line for line in lines if not line.comment_only)
    current: _Line | None = None
    remaining = 0
    for t in toks:
        if t.kind == "comment":
            continue
        while not remaining:
            current = next(code_lines)
            remaining = sum(1 for p in current.parts if p != " ")
        assert current is not None
        owner[id(t)] = current
        remaining -= 1
    return owner


def format_text(text: str, path: str = "<input>") -> str:
    """`text` in the canonical layout; a syntax error raises NetcError (nothing is formatted)."""
    text = strip_bom(text)
    module = parse(text, path)
    toks = _lex(text)
    _classify(toks, module)
    lines = _layout(toks)
    if _break_long_lines(toks, lines):
        lines = _layout(toks)
    return _render(lines)
