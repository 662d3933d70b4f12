"""Names in a text, with what each occurrence is: what references, rename and semantic tokens
read. Found by the formatter's lexer (strings and comments skipped, the expressions inside an
f-string's braces read), so that they work on any text, parsed or not.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .. import syntax as ast
from ..fmt import _lex

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Occurrence:
    """One name in a text. `role`: "use"; "kwarg" (`name=` in a call of `callee`); "param"
    (a parameter, input or output declared in a block's or model's header); "definition" (the
    name after `block`, `model` or `const`); "setting" (a train setting's name)."""

    name: str
    line: int  # 1-based
    col: int  # 1-based, code points
    role: str = "use"
    callee: str | None = None

    @property
    def end(self) -> int:
        return self.col + len(self.name)


def occurrences(text: str) -> Iterator[Occurrence]:
    """Every name of `text` outside strings and comments (and inside f-string braces)."""
    toks = [t for t in _lex(text) if t.kind != "comment"]
    stack: list[tuple[str, str | None]] = []  # open brackets: (kind, callee or block name)
    train_depth: int | None = None
    for i, t in enumerate(toks):
        prev = toks[i - 1] if i else None
        before = toks[i - 2] if i > 1 else None
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if t.kind == "string" and t.text.startswith("f"):
            yield from _fstring_names(t.text, t.line, t.col)
            continue
        if t.text == "train" and t.kind == "keyword":
            train_depth = len(stack)
        if t.text in ("(", "[", "{"):
            kind, callee = "other", None
            if t.text == "(" and prev is not None and prev.kind == "name":
                definition = before is not None and before.text in ("block", "model")
                kind, callee = ("header", prev.text) if definition else ("call", prev.text)
            elif t.text == "(" and prev is not None and prev.text == "->":
                kind = "header"
            stack.append((kind, callee))
            continue
        if t.text in (")", "]", "}"):
            if stack:
                stack.pop()
            if train_depth is not None and len(stack) <= train_depth:
                train_depth = None if t.text == "}" else train_depth
            continue
        if t.kind != "name":
            continue
        assigns = nxt is not None and nxt.text == "="
        top = stack[-1] if stack else ("other", None)
        if prev is not None and prev.text in ("block", "model", "const"):
            yield Occurrence(t.text, t.line, t.col, "definition")
        elif top[0] == "call" and assigns:
            yield Occurrence(t.text, t.line, t.col, "kwarg", top[1])
        elif top[0] == "header" and (prev is not None and prev.text in ("(", ",")):
            yield Occurrence(t.text, t.line, t.col, "param", top[1])
        elif train_depth is not None and len(stack) == train_depth + 1 and assigns:
            yield Occurrence(t.text, t.line, t.col, "setting")
        else:
            yield Occurrence(t.text, t.line, t.col)


def _fstring_names(token: str, line: int, col: int) -> Iterator[Occurrence]:
    """The names in the `{...}` of an f-string token at (line, col)."""
    i = 2  # past `f"`
    while i < len(token) - 1:
        if token.startswith("{{", i) or token.startswith("}}", i):
            i += 2
            continue
        if token[i] == "{":
            end = token.find("}", i)
            end = len(token) - 1 if end < 0 else end
            for m in _NAME.finditer(token, i + 1, end):
                if m.group() not in ("true", "false", "none", "and", "or", "not", "if", "else"):
                    yield Occurrence(m.group(), line, col + m.start())
            i = end + 1
            continue
        i += 1


def binds(owner: ast.BlockDef | ast.ModelDef, name: str) -> bool:
    """Whether a block or model binds `name` itself (a parameter, input, output or local)."""
    from .select import _walk

    decls = owner.params if isinstance(owner, ast.BlockDef) else (*owner.inputs, *owner.outputs)
    if any(p.name == name for p in decls):
        return True
    for s, _ in _walk(owner.body, owner):
        if isinstance(s, (ast.Assign, ast.For)) and name in s.targets:
            return True
        if isinstance(s, ast.ConstDef) and s.name == name:
            return True
    return False
