"""Inlay hints: the type of the value of each assignment and `return`, at the end of its line
(and of each line of a statement written over several lines).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lsprotocol import types as lsp

from .. import syntax as ast
from ..elaborate import Tensor
from .analysis import Analysis, Compiled, Evaluation
from .select import _distinct, _values_at, _walk
from .text import LineMap, SpanKey, Text, _key, _lines, _within


def inlay_hints(
    analysis: Analysis,
    *,
    text: str | None = None,
    within: lsp.Range | None = None,
    extra: Sequence[Compiled] = (),
    encoding: str = "utf-16",
) -> list[lsp.InlayHint]:
    """At the end of each assignment (and `return`) in a model or block, the type of its value
    (`: f32[N, 56, 56, 64]`; every type it took in a loop or over the block's calls); in a
    statement written over several lines, also the type of the value each line ends with."""
    if analysis.module is None:
        return []
    current_text = analysis.text if text is None else text
    current = Text(current_text, encoding)
    lines = LineMap(analysis.text, current_text)
    models = [*analysis.models, *extra]
    by_end: dict[int, list[SpanKey]] = {}  # expression spans in this file, by their last line
    for c in models:
        for k in c.values:
            if k[0] == analysis.path:
                by_end.setdefault(k[3], []).append(k)
    old_lines = _lines(analysis.text)
    hints: list[lsp.InlayHint] = []
    for s, owner in _walk(analysis.module.items):
        if owner is None or not isinstance(s, (ast.Assign, ast.Return)):
            continue
        value = s.value if isinstance(s, ast.Assign) else s.values[0]
        if isinstance(s, ast.Assign) or len(s.values) == 1:
            spot = (s.span.end_line - 1, s.span.end_col - 1)
            hints += _hint(current, lines, within, spot, _values_at(models, _key(value.span)))
        stmt = _key(s.span)
        for line in range(s.span.line, s.span.end_line):  # lines before the last
            end = _code_end(old_lines[line - 1] if line <= len(old_lines) else "")
            ends = [k for k in by_end.get(line, ()) if k[4] - 1 == end and _within(k, stmt)]
            outer = _outermost(ends)
            if outer is not None:
                found = [v for v in _values_at(models, outer) if _is_tensorish(v[0])]
                hints += _hint(current, lines, within, (line - 1, end), found)
    return hints


def _outermost(keys: Sequence[SpanKey]) -> SpanKey | None:
    return min(keys, key=lambda k: (k[1], k[2]), default=None)


def _hint(
    current: Text,
    lines: LineMap,
    within: lsp.Range | None,
    spot: tuple[int, int],
    values: Sequence[Evaluation],
) -> list[lsp.InlayHint]:
    """The hint for `values` at (line, col) of the analysed text, if that line is still there."""
    line = lines.new(spot[0])
    if line is None or not values:
        return []
    if within is not None and not within.start.line <= line <= within.end.line:
        return []
    label, tooltip = _hint_label(values)
    position = current.position(line, spot[1])
    return [
        lsp.InlayHint(position=position, label=label, kind=lsp.InlayHintKind.Type, tooltip=tooltip)
    ]


def _code_end(line: str) -> int:
    """The code-point column where the code on a line ends (before a comment and blanks)."""
    in_str = False
    for i, ch in enumerate(line):
        if ch == '"':
            in_str = not in_str
        elif ch == "#" and not in_str:
            line = line[:i]
            break
    return len(line.rstrip())


def _is_tensorish(v: Any) -> bool:
    return isinstance(v, Tensor) or (
        isinstance(v, tuple) and bool(v) and all(isinstance(x, Tensor) for x in v)
    )


def _hint_label(values: Sequence[Evaluation]) -> tuple[str, str | None]:
    """`: T`, `: T1 | T2`, or `: T1 | … | Tn (k types)`; the tooltip lists every type."""
    shown = _distinct(values, short=True)
    names = [s for s, _ in shown]
    if len(names) == 1:
        label = names[0]
    elif len(names) == 2:
        label = " | ".join(names)
    else:
        label = f"{names[0]} | … | {names[-1]} ({len(names)} types)"
    tooltip = None
    if len(values) > 1:
        tooltip = "\n".join(f"{s}" + (f"  ×{n}" if n > 1 else "") for s, n in shown)
    return f": {label}", tooltip
