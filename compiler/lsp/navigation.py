"""Navigation: go to definition, find references, rename, the outline (document symbols) and
folding ranges.
"""

from __future__ import annotations

import re

from lsprotocol import types as lsp

from .. import syntax as ast
from ..imports import ImportPaths, Refused
from ..source import Span
from .analysis import Analysis
from .complete import _call_context, _offset
from .problems import _range
from .select import _owner_of, _walk, _word_at
from .text import LineMap, Text, _contains, _key, _lines, _norm, uri_of


def definition(
    analysis: Analysis, position: lsp.Position, *, text: str | None = None, encoding: str = "utf-16"
) -> lsp.Location | None:
    """Where the name at `position` is defined: a block or constant (also in imported files), a
    local value, a block parameter (also for `name=` in a call), or the file an import names."""
    if analysis.module is None:
        return None
    current_text = analysis.text if text is None else text
    current = Text(current_text, encoding)
    lines = LineMap(analysis.text, current_text)
    old = lines.old(position.line)
    if old is None:
        return None
    line_text = current.line(position.line)
    col = current.column(position)
    line, col1 = old + 1, col + 1

    def here(span: Span, name: str | None = None) -> lsp.Location:
        path = _norm(span.path)
        if name is not None:
            span = _name_span(analysis, span, name)
        if path == analysis.path:
            return lsp.Location(uri=uri_of(path), range=current.range(span, lines.new))
        return lsp.Location(uri=uri_of(path), range=_range(analysis, span, encoding))

    for item in analysis.module.items:
        if isinstance(item, ast.Import) and _contains(_key(item.span), analysis.path, line, col1):
            try:  # only where an import may read: never a path outside the folders
                target = _norm(
                    ImportPaths.for_file(analysis.path).resolve(item.path, analysis.path).shown
                )
            except Refused:
                return None
            zero = lsp.Position(line=0, character=0)
            return lsp.Location(uri=uri_of(target), range=lsp.Range(start=zero, end=zero))
    word = _word_at(line_text, col)
    if word is None:
        return None
    name = word[0]
    rest = line_text[word[2] :].lstrip()
    if rest.startswith("=") and not rest.startswith("=="):  # `stride=` in a block call
        call = _call_context(current_text, _offset(current_text, position.line, word[1]))
        if call is not None and call.callee is not None and call.callee in analysis.blocks:
            for p in analysis.blocks[call.callee].params:
                if p.name == name:
                    return here(p.span, name)
    owner = _owner_of(analysis.module, line)
    if owner is not None:
        found = _local_binding(owner, name, line, col1)
        if found is not None:
            return here(found, name)
    if name in analysis.definitions:
        return here(analysis.definitions[name], name)
    return None


def _local_binding(
    owner: ast.BlockDef | ast.ModelDef, name: str, line: int, col: int
) -> Span | None:
    """The binding of `name` in a block or model that a use at (line, col) reads: the last one
    whose statement ends before it (the binding itself when on it; the first for an early use)."""
    found: list[tuple[Span, tuple[int, int]]] = []  # (where the name is bound, where that ends)

    def end(span: Span) -> tuple[int, int]:
        return (span.end_line, span.end_col)

    decls = owner.params if isinstance(owner, ast.BlockDef) else owner.inputs
    found += [(p.span, end(p.span)) for p in decls if p.name == name]
    for s, _ in _walk(owner.body, owner):
        if isinstance(s, ast.Assign):
            spans = s.target_spans or (s.span,) * len(s.targets)
            found += [(sp, end(s.span)) for t, sp in zip(s.targets, spans) if t == name]
        elif isinstance(s, ast.ConstDef) and s.name == name:
            found.append((s.span, end(s.span)))
        elif isinstance(s, ast.For) and name in s.targets:
            found.append((s.span, end(s.iterable.span)))
    if not found and isinstance(owner, ast.ModelDef):
        found += [(p.span, end(p.span)) for p in owner.outputs if p.name == name]
    if not found:
        return None
    for span, _ in found:  # on the name where it is bound: that binding
        if span.line == line and span.col <= col < span.col + len(name):
            return span
    before = [(span, e) for span, e in found if e <= (line, col)]
    return max(before, key=lambda b: b[1])[0] if before else found[0][0]


def _name_span(analysis: Analysis, span: Span, name: str) -> Span:
    """The span of `name` itself in the construct at `span` (`block NAME(`, `const NAME =`)."""
    text = _lines(analysis.sources.get(_norm(span.path), ""))
    if 0 < span.line <= len(text):
        m = re.compile(rf"\b{re.escape(name)}\b").search(text[span.line - 1], span.col - 1)
        if m is not None:
            return Span(span.path, span.line, m.start() + 1, span.line, m.end() + 1)
    return span
