"""What the source at a position created: the innermost expression, op or block call there (else
the statement on that line), with every value it took and every node it made, over every model
and every call of its block; and how values are shown.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import elaborate as _elaborate
from .. import syntax as ast
from ..elaborate import Tensor
from ..ir import Node, TensorType
from ..source import CallSite, format_value
from .analysis import Analysis, Compiled, Evaluation
from .text import SpanKey, _contains, _innermost, _key, _lines, _within


@dataclass
class _Selection:
    """The nodes and values that one piece of source created, over every model and call."""

    title: str
    values: list[Evaluation] = field(default_factory=list)
    nodes: list[tuple[Compiled, Node, tuple[CallSite, ...]]] = field(default_factory=list)
    loop: int | None = None  # for a `for` header: how many iterations
    block: str | None = None  # the block the source is in
    calls: int = 0  # how many calls of that block ran it


def _word_at(line: str, col: int) -> tuple[str, int, int] | None:
    """The identifier at (or just before) code-point column `col` (0-based)."""
    start = col
    while start > 0 and (line[start - 1].isalnum() or line[start - 1] == "_"):
        start -= 1
    end = col
    while end < len(line) and (line[end].isalnum() or line[end] == "_"):
        end += 1
    if start == end or line[start].isdigit():
        return None
    return line[start:end], start, end


def _walk(
    stmts: Sequence[Any], owner: ast.BlockDef | ast.ModelDef | None = None
) -> Iterator[tuple[Any, ast.BlockDef | ast.ModelDef | None]]:
    """Every item and statement with the block or model it is in."""
    for s in stmts:
        yield s, owner
        if isinstance(s, (ast.BlockDef, ast.ModelDef)):
            yield from _walk(s.body, s)
        elif isinstance(s, ast.For):
            yield from _walk(s.body, owner)
        elif isinstance(s, ast.If):
            yield from _walk((*s.then, *s.else_), owner)


_COMPOUND = (ast.For, ast.If, ast.BlockDef, ast.ModelDef, ast.TrainDef)


def _statement_at(module: ast.Module, line: int, col: int) -> Any:
    """The innermost statement at a position, else on its line; a compound statement (a loop,
    a block) only on its first line."""

    stmts = [s for s, _ in _walk(module.items)]
    for hit in (
        lambda s: (s.span.line, s.span.col) <= (line, col) < (s.span.end_line, s.span.end_col),
        lambda s: s.span.line <= line <= s.span.end_line,
    ):
        found = [s for s in stmts if hit(s)]
        if found:
            s = max(found, key=lambda s: (s.span.line, s.span.col, -s.span.end_line))
            if not isinstance(s, _COMPOUND) or s.span.line == line:
                return s
    return None


def _owner_of(module: ast.Module, line: int) -> ast.BlockDef | ast.ModelDef | None:
    for item in module.items:
        if isinstance(item, (ast.BlockDef, ast.ModelDef)):
            if item.span.line <= line <= item.span.end_line:
                return item
    return None


def _nodes_at(models: Sequence[Compiled], anchor: SpanKey) -> list:
    """The op nodes written at `anchor`, or made by the block call written there, each with the
    call chain of the one evaluation of `anchor` that made it."""
    out = []
    for c in models:
        for n, k, calls in c.op_nodes:
            if k == anchor:
                out.append((c, n, n.calls))
            elif anchor in calls:
                out.append((c, n, n.calls[calls.index(anchor) + 1 :]))
    return out


def _nodes_in(models: Sequence[Compiled], region: SpanKey) -> list:
    """The op nodes that source inside `region` made (directly or by a block call in it)."""
    out = []
    for c in models:
        for n, k, calls in c.op_nodes:
            inside = [j for j, ck in enumerate(calls) if _within(ck, region)]
            if inside:
                out.append((c, n, n.calls[max(inside) + 1 :]))
            elif k is not None and _within(k, region):
                out.append((c, n, n.calls))
    return out


def _values_at(models: Sequence[Compiled], k: SpanKey) -> list[Evaluation]:
    return [v for c in models for v in c.values.get(k, ())]


def _select(
    analysis: Analysis, models: Sequence[Compiled], line: int, col: int
) -> _Selection | None:
    """What the source at 1-based (line, col) created: the innermost expression, op or block
    call there, else the statement on that line."""
    path = analysis.path
    candidates: set[SpanKey] = set()
    for c in models:
        candidates.update(k for k in c.values if _contains(k, path, line, col))
        for _, k, calls in c.op_nodes:
            if k is not None and _contains(k, path, line, col):
                candidates.add(k)
            candidates.update(ck for ck in calls if _contains(ck, path, line, col))
    anchor = _innermost(iter(candidates))
    owner = _owner_of(analysis.module, line) if analysis.module else None
    block = owner.name if isinstance(owner, ast.BlockDef) else None
    if anchor is not None:
        values, nodes = _values_at(models, anchor), _nodes_at(models, anchor)
        title = _snippet(analysis, anchor)
        return _Selection(title, values, nodes, block=block, calls=_calls(values, nodes))
    if analysis.module is None:
        return None
    s = _statement_at(analysis.module, line, col)
    if s is None:
        return None
    region = _key(s.span)
    sel = _Selection("", nodes=_nodes_in(models, region), block=block)
    if isinstance(s, ast.Assign):
        sel.title = ", ".join(s.targets)
        sel.values = _values_at(models, _key(s.value.span))
    elif isinstance(s, ast.Return):
        sel.title = "return"
        if len(s.values) == 1:
            sel.values = _values_at(models, _key(s.values[0].span))
    elif isinstance(s, ast.ConstDef):
        sel.title = f"const {s.name}"
        sel.values = _values_at(models, _key(s.value.span))
    elif isinstance(s, ast.For):
        sel.title = f"for {', '.join(s.targets)}"
        lists = _values_at(models, _key(s.iterable.span))
        sel.loop = sum(len(v) for v, _, _ in lists if isinstance(v, tuple)) or None
    elif isinstance(s, ast.If):
        sel.title = "if"
    elif isinstance(s, ast.BlockDef):
        sel.title = f"block {s.name}"
        sites = {_key(c.span): 0 for _, n, _ in sel.nodes for c in n.calls if c.block == s.name}
        sel.values = [v for k in sites for v in _values_at(models, k)]
        sel.calls = len(sel.values)  # each evaluation of a call site is one call
        return sel
    elif isinstance(s, ast.ModelDef):
        sel.title = f"model {s.name}"
    else:
        return None
    sel.calls = _calls(sel.values, sel.nodes)
    return sel


def _calls(values: Sequence[Evaluation], nodes: Sequence[tuple]) -> int:
    """How many block calls (frames) the evaluations ran in; by call chain without them."""
    if values:
        return len({id(frame) for _, _, frame in values})
    return len({chain for _, _, chain in nodes})


def _snippet(analysis: Analysis, k: SpanKey, limit: int = 48) -> str:
    """The source text of a span, on one line and cut to `limit` characters."""
    lines = _lines(analysis.sources.get(k[0], ""))[k[1] - 1 : k[3]]
    if not lines:
        return ""
    if len(lines) == 1:
        text = lines[0][k[2] - 1 : k[4] - 1]
    else:
        text = " ".join(
            [lines[0][k[2] - 1 :], *(s.strip() for s in lines[1:-1]), lines[-1][: k[4] - 1].strip()]
        )
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- showing values ---------------------------------------------------------------------------


def _show(value: Any, short: bool = False) -> str:
    """A value as the language writes it: a tensor by its type, compile-time values literally
    (lists and tuples, one kind of value, as lists)."""
    if isinstance(value, Tensor):
        return str(value.type)
    if isinstance(value, TensorType):
        return str(value)
    if isinstance(value, tuple):
        limit = 3 if short else 8
        if len(value) > limit:
            kind = "tensors" if all(isinstance(v, Tensor) for v in value) else "values"
            return f"[{len(value)} {kind}]"
        return "[" + ", ".join(_show(v, short) for v in value) + "]"  # the language's list
    if isinstance(value, float):
        return repr(value)
    try:
        return format_value(value)
    except Exception:  # something no literal spells; the elaborator's words
        return _elaborate.describe(value)


def _distinct(values: Sequence[Evaluation], short: bool = False) -> list[tuple[str, int]]:
    """The distinct shown values in first-seen order, with how often each occurred."""
    counts: dict[str, int] = {}
    for v, _, _ in values:
        s = _show(v, short)
        counts[s] = counts.get(s, 0) + 1
    return list(counts.items())


def _amount(n: int) -> str:
    """`11,699,112 (11.7 M)`; below ten thousand, the number alone."""
    if n >= 10_000:
        for size, prefix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k")):
            if n >= size:
                return f"{n:,} ({n / size:.1f} {prefix})"
    return f"{n:,}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
