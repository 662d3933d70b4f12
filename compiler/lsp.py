"""The netc language server: diagnostics, hover, inlay hints, go-to-definition and completion.

Each feature is a plain function from an `Analysis` (one document parsed and every model in it
elaborated, with the value each expression took) and a position to LSP types; `main()` starts a
pygls stdio server whose handlers are thin wrappers over them. `import netc` never imports this
module, and only `create_server` imports pygls.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from . import __version__
from . import elaborate as _elaborate
from . import syntax as ast
from .elaborate import BUILTIN_NEEDS, BUILTINS, LANGUAGE_OPS, Elaborator, Frame, Scope, Tensor
from .imports import ImportPaths, Refused
from .ir import DTYPES, Node, TensorType
from .ops import lookup
from .ops.docs import signature
from .ops.registry import describe_hint
from .parse import KEYWORDS, parse
from .source import CallSite, Diagnostic, NetcError, Reporter, Span, format_value
from .summary import Layer, Model

try:
    from lsprotocol import types as lsp
except ImportError:  # reported by main(); the rest of netc works without it
    lsp = None  # type: ignore[assignment]

log = logging.getLogger("netc.lsp")

# (normalized path, line, col, end_line, end_col): a span that compares equal across the
# different spellings of one file's path (`a/../lib.net` and `lib.net`).
SpanKey = tuple[str, int, int, int, int]
# One evaluation of an expression: its value, the block calls it was computed in (innermost
# first), and the frame of the block call (or model body) it ran in, which identifies the call.
Evaluation = tuple[Any, tuple[CallSite, ...], Frame]
SCALAR_TYPES = ("int", "float", "bool", "str", "list", "tensor")


@functools.lru_cache(maxsize=4096)
def _norm(path: str) -> str:
    """One spelling per file; `<...>` names (documents without a file) stay as they are."""
    if path.startswith("<"):
        return path
    return os.path.normpath(os.path.abspath(path))


def _key(span: Span) -> SpanKey:
    return (_norm(span.path), span.line, span.col, span.end_line, span.end_col)


def _contains(k: SpanKey, path: str, line: int, col: int) -> bool:
    return k[0] == path and (k[1], k[2]) <= (line, col) < (k[3], k[4])


def _within(inner: SpanKey, outer: SpanKey) -> bool:
    return (
        inner[0] == outer[0]
        and (outer[1], outer[2]) <= (inner[1], inner[2])
        and (inner[3], inner[4]) <= (outer[3], outer[4])
    )


def _innermost(keys: Iterator[SpanKey]) -> SpanKey | None:
    """Of nested spans, the innermost: the latest start, then the earliest end."""
    return max(keys, key=lambda k: (k[1], k[2], -k[3], -k[4]), default=None)


def uri_of(path: str) -> str:
    """The URI of a file path (`<uri>` for a document that is no file)."""
    return path[1:-1] if path.startswith("<") else Path(path).as_uri()


# --- positions: netc spans (1-based, code points) <-> LSP (0-based, client code units) ---------


def _lines(text: str) -> list[str]:
    return [line.removesuffix("\r") for line in text.split("\n")]


def _units(s: str, encoding: str) -> int:
    if s.isascii() or encoding == "utf-32":
        return len(s)
    if encoding == "utf-8":
        return len(s.encode("utf-8"))
    return len(s.encode("utf-16-le")) // 2


def _column(line: str, character: int, encoding: str) -> int:
    """The code-point index in `line` of an LSP character offset."""
    if line.isascii() or encoding == "utf-32":
        return min(character, len(line))
    units = 0
    for i, ch in enumerate(line):
        if units >= character:
            return i
        units += _units(ch, encoding)
    return len(line)


class _Text:
    """One file's lines, for converting positions in the client's encoding."""

    def __init__(self, text: str, encoding: str):
        self.lines = _lines(text)
        self.encoding = encoding

    def line(self, i: int) -> str:
        return self.lines[i] if 0 <= i < len(self.lines) else ""

    def position(self, line0: int, col0: int) -> lsp.Position:
        return lsp.Position(
            line=max(line0, 0), character=_units(self.line(line0)[:col0], self.encoding)
        )

    def range(self, span: Span, shift: Callable[[int], int | None] | None = None) -> lsp.Range:
        """The LSP range of a span; `shift` moves its lines (from an older text to this one)."""
        start, end = span.line - 1, span.end_line - 1
        if shift is not None:
            moved_start, moved_end = shift(start), shift(end)
            start = start if moved_start is None else moved_start
            end = start + span.end_line - span.line if moved_end is None else moved_end
        return lsp.Range(
            start=self.position(start, span.col - 1), end=self.position(end, span.end_col - 1)
        )

    def column(self, pos: lsp.Position) -> int:
        return _column(self.line(pos.line), pos.character, self.encoding)


class _LineMap:
    """The lines an (older) analysed text has in common with the current text, both ways, so
    that hover and hints keep working while the current text does not parse."""

    def __init__(self, old: str, new: str):
        self.same = old == new
        self._to_old: dict[int, int] = {}
        self._to_new: dict[int, int] = {}
        if not self.same:
            a, b = _lines(old), _lines(new)
            matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
            for block in matcher.get_matching_blocks():
                for k in range(block.size):
                    self._to_old[block.b + k] = block.a + k
                    self._to_new[block.a + k] = block.b + k

    def old(self, line0: int) -> int | None:
        return line0 if self.same else self._to_old.get(line0)

    def new(self, line0: int) -> int | None:
        return line0 if self.same else self._to_new.get(line0)


# --- analysis: parse, check the module, elaborate every model ---------------------------------


class _Recorder(Elaborator):
    """An elaborator that also keeps every value each expression took, by the expression's span
    (with the block calls it was computed in): the shapes hover and inlay hints show."""

    def __init__(self, reporter: Reporter, paths: ImportPaths | None = None):
        super().__init__(reporter, paths=paths)
        self.values: dict[SpanKey, list[Evaluation]] = {}

    def eval(self, e: ast.Expr, scope: Scope) -> Any:
        value = super().eval(e, scope)
        self.values.setdefault(_key(e.span), []).append((value, self.frame.calls, self.frame))
        return value


def _elaborate_with(el: Elaborator, module: ast.Module, reporter: Reporter, model: str) -> Any:
    """`elaborate.elaborate(module, reporter, model)`, run by `el` (which records values)."""
    return _elaborate.elaborate(module, reporter, model, elaborator=lambda reporter: el)


@dataclass(frozen=True)
class Compiled:
    """One model of a document, elaborated: its graph (partial when it has errors) and the
    values every expression took, by span."""

    name: str
    model: Model
    values: Mapping[SpanKey, tuple[Evaluation, ...]]
    ok: bool

    @cached_property
    def op_nodes(self) -> tuple[tuple[Node, SpanKey | None, tuple[SpanKey, ...]], ...]:
        """Every op node with its span's key and its call sites' keys (innermost first)."""
        skip = ("input", "param", "constant", "item")
        return tuple(
            (n, _key(n.span) if n.span else None, tuple(_key(c.span) for c in n.calls))
            for n in self.model.graph.nodes
            if n.op not in skip
        )

    @cached_property
    def layers(self) -> dict[str, Layer]:
        return {layer.name: layer for layer in self.model.layers}


@dataclass(frozen=True)
class Analysis:
    """A document checked for the editor: diagnostics, the models, and the module's names."""

    path: str  # normalized; `<uri>` for a document that is no file
    text: str
    module: ast.Module | None  # None when the text does not parse
    diagnostics: tuple[Diagnostic, ...]
    models: tuple[Compiled, ...] = ()
    definitions: Mapping[str, Span] = field(default_factory=dict)  # blocks and constants
    blocks: Mapping[str, ast.BlockDef] = field(default_factory=dict)
    constants: Mapping[str, Any] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)  # every file read, by path
    imports: Mapping[str, Span | None] = field(default_factory=dict)  # real path -> import site


def document_path(uri: str) -> str:
    """The file path of a `file:` URI, or `<uri>` for other schemes (untitled buffers)."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return f"<{uri}>"
    path = unquote(parsed.path)
    if os.name == "nt" and re.match(r"^/[A-Za-z]:", path):
        path = path[1:]
    return _norm(path)


def analyze(text: str, path: str) -> Analysis:
    """Check a document's text as the file `path` (its imports resolve from there): the module
    on its own (all a library of blocks has), then each model in it with `model=` its name."""
    path = _norm(path)
    try:
        module = parse(text, path)
    except NetcError as e:
        return Analysis(path, text, None, tuple(e.diagnostics), sources={path: text})
    except Exception as e:  # a compiler bug must not take the editor's server down
        return Analysis(path, text, None, (_internal_error(e, path),), sources={path: text})
    sources: dict[str, str] = {path: text}
    reporter = Reporter()
    reporter.sources.add(path, text)
    # imports read where the command line's would: the document's folder and NETC_PATH
    lib = Elaborator(reporter, paths=ImportPaths.for_file(path))
    lib.loaded[os.path.realpath(path) if not path.startswith("<") else path] = None
    lib.frames.append(Frame("", ()))
    try:
        lib.load_module(module)
    except Exception as e:
        reporter.diagnostics.append(_internal_error(e, "the module"))
    finally:
        lib.frames.pop()
    diagnostics = list(reporter.diagnostics)
    sources.update({_norm(p): t for p, t in reporter.sources.texts.items()})
    models = []
    for m in (i for i in module.items if isinstance(i, ast.ModelDef)):
        compiled, found, read = _compile_model(module, path, text, m.name)
        diagnostics += found
        sources.update({_norm(p): t for p, t in read.items()})
        if compiled is not None:
            models.append(compiled)
    constants = {
        name: b.value for name, b in lib.globals.names.items() if b.value is not _elaborate.POISON
    }
    imports = {os.path.realpath(p): s for p, s in lib.loaded.items()}
    return Analysis(
        path,
        text,
        module,
        tuple(sorted(_dedupe(diagnostics), key=Diagnostic.sort_key)),
        tuple(models),
        dict(lib.definitions),
        dict(lib.blocks),
        constants,
        sources,
        imports,
    )


def _compile_model(
    module: ast.Module, path: str, text: str, name: str
) -> tuple[Compiled | None, list[Diagnostic], dict[str, str]]:
    reporter = Reporter()
    reporter.sources.add(path, text)
    rec = _Recorder(reporter, ImportPaths.for_file(path))
    try:
        result = _elaborate_with(rec, module, reporter, name)
    except NetcError as e:
        return None, list(e.diagnostics), reporter.sources.texts
    except Exception as e:
        return None, [_internal_error(e, f"model `{name}`")], reporter.sources.texts
    found = _dedupe(reporter.diagnostics)
    warnings = tuple(d for d in found if d.severity == "warning")
    model = Model(result.graph, result.train, warnings, reporter.sources, path)
    ok = not any(d.severity == "error" for d in found)
    values = {k: tuple(v) for k, v in rec.values.items()}
    return Compiled(name, model, values, ok), found, reporter.sources.texts


def _internal_error(e: Exception, what: str) -> Diagnostic:
    log.exception("netc failed on %s", what)
    return Diagnostic(
        "error",
        f"internal error in netc while checking {what}: {type(e).__name__}: {e}",
        hint="this is a bug in netc, not in your file; please report it",
    )


def _dedupe(diagnostics: Sequence[Diagnostic]) -> list[Diagnostic]:
    """One diagnostic per (severity, message, span): a block used by two models errs once."""
    seen, out = set(), []
    for d in diagnostics:
        k = (d.severity, d.message, d.span and _key(d.span))
        if k not in seen:
            seen.add(k)
            out.append(d)
    return out


# --- diagnostics ------------------------------------------------------------------------------


def diagnostics(analysis: Analysis, encoding: str = "utf-16") -> dict[str, list[lsp.Diagnostic]]:
    """Every error and warning as LSP diagnostics, by the normalized path of the file each is
    in (the document's own path is always a key, so that fixed errors get cleared). An error in
    an imported file is also shown in the document, at the call or import that leads there."""
    out: dict[str, list[lsp.Diagnostic]] = {analysis.path: []}
    for d in analysis.diagnostics:
        where = _norm(d.span.path) if d.span else analysis.path
        out.setdefault(where, []).append(_to_lsp(d, analysis, encoding))
        if where != analysis.path and d.severity == "error" and d.span is not None:
            anchor = _anchor_in_document(d, analysis)
            if anchor is not None:
                out[analysis.path].append(_mirrored(d, anchor, analysis, encoding))
    return out


def _text_of(analysis: Analysis, path: str, encoding: str) -> _Text:
    return _Text(analysis.sources.get(_norm(path), ""), encoding)


def _range(analysis: Analysis, span: Span | None, encoding: str) -> lsp.Range:
    if span is None:
        return lsp.Range(
            start=lsp.Position(line=0, character=0), end=lsp.Position(line=0, character=0)
        )
    return _text_of(analysis, span.path, encoding).range(span)


def _message(d: Diagnostic) -> str:
    lines = [d.message, *(f"note: {n}" for n in d.notes)]
    if d.hint:
        lines.append(f"help: {d.hint}")
    return "\n".join(lines)


def _call_chain(
    d: Diagnostic, analysis: Analysis, encoding: str
) -> list[lsp.DiagnosticRelatedInformation]:
    out: list[lsp.DiagnosticRelatedInformation] = []
    for call in d.calls:
        if out and out[-1].location.range == _range(analysis, call.span, encoding):
            continue  # recursion through one call site: said once
        out.append(
            lsp.DiagnosticRelatedInformation(
                location=lsp.Location(
                    uri=uri_of(_norm(call.span.path)),
                    range=_range(analysis, call.span, encoding),
                ),
                message=f"in block `{call.block}`, called here",
            )
        )
    return out


def _to_lsp(d: Diagnostic, analysis: Analysis, encoding: str) -> lsp.Diagnostic:
    warning = d.severity == "warning"
    return lsp.Diagnostic(
        range=_range(analysis, d.span, encoding),
        message=_message(d),
        severity=lsp.DiagnosticSeverity.Warning if warning else lsp.DiagnosticSeverity.Error,
        source="netc",
        related_information=_call_chain(d, analysis, encoding) or None,
        tags=[lsp.DiagnosticTag.Unnecessary] if warning and "never used" in d.message else None,
    )


def _anchor_in_document(d: Diagnostic, analysis: Analysis) -> Span | None:
    """Where the document leads to an error in another file: the innermost call in the document,
    else the import (followed through the files in between)."""
    for call in d.calls:
        if _norm(call.span.path) == analysis.path:
            return call.span
    assert d.span is not None
    real = os.path.realpath(d.span.path)
    for _ in range(len(analysis.imports) + 1):
        site = analysis.imports.get(real)
        if site is None:
            return None
        if _norm(site.path) == analysis.path:
            return site
        real = os.path.realpath(site.path)
    return None


def _mirrored(d: Diagnostic, anchor: Span, analysis: Analysis, encoding: str) -> lsp.Diagnostic:
    assert d.span is not None
    shown = os.path.relpath(_norm(d.span.path), os.path.dirname(analysis.path))
    real = lsp.DiagnosticRelatedInformation(
        location=lsp.Location(
            uri=uri_of(_norm(d.span.path)), range=_range(analysis, d.span, encoding)
        ),
        message=d.message,
    )
    return lsp.Diagnostic(
        range=_range(analysis, anchor, encoding),
        message=f"in {shown}:{d.span.line}:{d.span.col}: {_message(d)}",
        severity=lsp.DiagnosticSeverity.Error,
        source="netc",
        related_information=[real, *_call_chain(d, analysis, encoding)],
    )


# --- what the source at a position created ----------------------------------------------------


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


# --- hover ------------------------------------------------------------------------------------


def hover(
    analysis: Analysis,
    position: lsp.Position,
    *,
    text: str | None = None,
    extra: Sequence[Compiled] = (),
    encoding: str = "utf-16",
) -> lsp.Hover | None:
    """The inferred type(s), parameter count, FLOPs and weights of what the source at `position`
    created (aggregated over every call of a block), and the reference of an op, block or
    constant named there. `text` is the document's current text when `analysis` is of an older
    one; `extra` are models of other documents that import this one."""
    current = _Text(analysis.text if text is None else text, encoding)
    old = _LineMap(analysis.text, analysis.text if text is None else text).old(position.line)
    if old is None:
        return None
    line = current.line(position.line)
    col = current.column(position)
    models = [*analysis.models, *extra]
    parts: list[str] = []
    sel = _select(analysis, models, old + 1, col + 1)
    if sel is not None:
        parts.append(_describe(sel))
    word = _word_at(line, col)
    if word is not None:
        parts.append(_reference(word[0], analysis))
    parts = [p for p in parts if p]
    if not parts:
        return None
    return lsp.Hover(
        contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value="\n\n---\n\n".join(parts))
    )


def _describe(sel: _Selection) -> str:
    """A selection in Markdown: its type(s), where it ran, its ops, params, FLOPs and weights."""
    lines: list[str] = []
    shown = _distinct(sel.values)
    if [s for s, _ in shown] == [sel.title] and not sel.nodes:
        return ""  # a literal: its value is what it says
    title = f"**`{sel.title}`**" if sel.title else ""
    if len(shown) == 1:
        lines.append(f"{title} : `{shown[0][0]}`" if title else f"`{shown[0][0]}`")
    else:
        if title:
            lines.append(title)
        if shown:
            lines.append("\n".join(f"- `{s}`" + (f" ×{n}" if n > 1 else "") for s, n in shown))
    if sel.block is not None and sel.calls:
        times = f", evaluated {len(sel.values)} times" if len(sel.values) > sel.calls else ""
        lines.append(f"in {_plural(sel.calls, 'call')} of `{sel.block}`{times}")
    elif sel.loop:
        lines.append(f"{_plural(sel.loop, 'iteration')}")
    elif len(sel.values) > 1:
        lines.append(f"evaluated {len(sel.values)} times (in a loop)")
    if sel.nodes:
        lines.append(_costs(sel))
    if not lines or lines == [title]:
        return ""
    return "\n\n".join(lines)


def _costs(sel: _Selection) -> str:
    """`3 ops (conv2d, batchnorm, relu) · params … · FLOPs …`, then the weights."""
    ops: dict[str, int] = {}
    weights: dict[str, str] = {}
    flops = 0
    params = 0
    for c, n, _ in sel.nodes:
        ops[n.op] = ops.get(n.op, 0) + 1
        layer = c.layers.get(n.name)
        flops += layer.flops if layer else 0
        for i in n.inputs:
            w = c.model.graph[i]
            if w.op == "param" and f"{c.name}/{w.name}" not in weights:
                weights[f"{c.name}/{w.name}"] = f"`{w.name}` `{w.type}`"
                params += w.tensor_type.numel()
    names = ", ".join(op + (f" ×{k}" if k > 1 else "") for op, k in ops.items())
    text = (
        f"{_plural(len(sel.nodes), 'op')} ({names}) · params **{_amount(params)}**"
        f" · FLOPs **{_amount(flops)}** per sample"
    )
    if weights:
        listed = list(weights.values())
        more = f"\n- … and {len(listed) - 8} more" if len(listed) > 8 else ""
        text += "\n\nweights:\n" + "\n".join(f"- {w}" for w in listed[:8]) + more
    models = sorted({c.name for c, _, _ in sel.nodes})
    if len(models) > 1:
        text += "\n\nin models " + ", ".join(f"`{m}`" for m in models)
    return text


def _reference(word: str, analysis: Analysis) -> str:
    """What a name is: an op's signature and first doc paragraph, a block's signature, a
    constant's value, a built-in function."""
    if word in analysis.blocks:
        b = analysis.blocks[word]
        where = os.path.relpath(_norm(b.span.path), os.path.dirname(analysis.path))
        return f"```netc\n{block_signature(b)}\n```\n\ndefined at {where}:{b.span.line}"
    if word in analysis.constants:
        return f"```netc\nconst {word} = {_show(analysis.constants[word])}\n```"
    if word in LANGUAGE_OPS:
        opdef = lookup(word)
        return f"```netc\n{signature(opdef)}\n```\n\n{opdef.doc.split(chr(10) * 2)[0]}"
    if word in BUILTINS:
        needs = BUILTIN_NEEDS.get(word, "one tensor")
        return f"```netc\n{word}(...)\n```\n\nbuilt-in function; takes {needs}"
    return ""


def block_signature(b: ast.BlockDef) -> str:
    """`block conv_bn(x, filters: int, kernel: int = 3)`."""
    params = []
    for p in b.params:
        text = p.name + (f": {ast.format_type(p.type)}" if p.type else "")
        params.append(text + (f" = {ast.format_expr(p.default)}" if p.default else ""))
    return f"block {b.name}({', '.join(params)})"


# --- inlay hints ------------------------------------------------------------------------------


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
    current = _Text(current_text, encoding)
    lines = _LineMap(analysis.text, current_text)
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
    current: _Text,
    lines: _LineMap,
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


# --- go to definition -------------------------------------------------------------------------


def definition(
    analysis: Analysis, position: lsp.Position, *, text: str | None = None, encoding: str = "utf-16"
) -> lsp.Location | None:
    """Where the name at `position` is defined: a block or constant (also in imported files), a
    local value, a block parameter (also for `name=` in a call), or the file an import names."""
    if analysis.module is None:
        return None
    current_text = analysis.text if text is None else text
    current = _Text(current_text, encoding)
    lines = _LineMap(analysis.text, current_text)
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


# --- completion -------------------------------------------------------------------------------


_TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|\|>|->|==|!=|<=|>=|\d[\w.]*|\S'
)


@dataclass
class _Call:
    """An open `(` of a call before the cursor: the callee, and what the call has so far."""

    callee: str | None
    piped: bool
    args: int = 0  # commas at this level: the index of the argument being written
    keywords: set[str] = field(default_factory=set)


def _offset(text: str, line0: int, col0: int) -> int:
    lines = text.split("\n")
    return sum(len(s) + 1 for s in lines[:line0]) + col0


def _scan(text: str) -> tuple[list[_Call | None], list[str], bool]:
    """The open brackets at the end of `text` (a `_Call` per `(`, None for `[` and `{`), its
    last tokens, and whether it ends inside a string or comment."""
    stack: list[_Call | None] = []
    tokens: list[str] = []
    inside = False
    for m in _TOKEN.finditer(text):
        tok = m.group()
        inside = tok[0] == "#" or (tok[0] == '"' and (len(tok) == 1 or not tok.endswith('"')))
        inside = inside and m.end() == len(text)
        if tok in ("(", "[", "{"):
            callee = tokens[-1] if tok == "(" and tokens and _is_name(tokens[-1]) else None
            before = tokens[-2] if len(tokens) >= 2 else ""
            if before in ("block", "model"):  # a definition's parameters, not a call
                callee = None
            piped = before == "|>"
            stack.append(_Call(callee, piped) if tok == "(" else None)
        elif tok in (")", "]", "}"):
            if stack:
                stack.pop()
        elif tok == "," and stack and stack[-1] is not None:
            stack[-1].args += 1
        elif tok == "=" and stack and stack[-1] is not None and tokens and _is_name(tokens[-1]):
            stack[-1].keywords.add(tokens[-1])
        if tok[0] not in "#":
            tokens.append(tok)
    return stack, tokens, inside


def _is_name(tok: str) -> bool:
    return (tok[0].isalpha() or tok[0] == "_") and tok not in KEYWORDS


def _call_context(text: str, offset: int) -> _Call | None:
    stack, _, _ = _scan(text[:offset])
    return stack[-1] if stack else None


def completion(
    analysis: Analysis | None, text: str, position: lsp.Position, encoding: str = "utf-16"
) -> lsp.CompletionList:
    """Names that fit at `position`: after `|>` ops and blocks; in an op or block call its
    attribute or parameter names first (`stride=`); else ops, blocks, constants, local values,
    built-in functions and keywords; after `:` the types."""
    current = _Text(text, encoding)
    col = current.column(position)
    line = current.line(position.line)
    word = _word_at(line, col)
    start = word[1] if word is not None and word[1] < col else col
    before = text[: _offset(text, position.line, start)]
    stack, tokens, inside = _scan(before)
    items: list[lsp.CompletionItem] = []
    if inside:
        return lsp.CompletionList(is_incomplete=False, items=[])
    last = tokens[-1] if tokens else ""
    blocks = analysis.blocks if analysis is not None else {}
    if last == ":":
        items += [
            _item(t, lsp.CompletionItemKind.TypeParameter, "type") for t in (*DTYPES, *SCALAR_TYPES)
        ]
        return lsp.CompletionList(is_incomplete=False, items=items)
    call = stack[-1] if stack else None
    if call is not None and last in ("(", ","):
        items += _argument_items(call, blocks)
    if last == "|>":
        items += _callable_items(blocks)
        return lsp.CompletionList(is_incomplete=False, items=items)
    items += _callable_items(blocks)
    if analysis is not None:
        for name, value in analysis.constants.items():
            items.append(
                _item(name, lsp.CompletionItemKind.Constant, f"const {name} = {_show(value, True)}")
            )
        if analysis.module is not None:
            owner = _owner_of(analysis.module, _nearest_old_line(analysis, text, position.line))
            for name in _local_names(owner):
                items.append(_item(name, lsp.CompletionItemKind.Variable, "local value"))
    for name in BUILTINS:
        if name not in LANGUAGE_OPS:
            items.append(
                _item(
                    name,
                    lsp.CompletionItemKind.Function,
                    f"built-in: takes {BUILTIN_NEEDS.get(name, 'one tensor')}",
                )
            )
    items += [_item(k, lsp.CompletionItemKind.Keyword, "keyword") for k in KEYWORDS]
    unique: dict[str, lsp.CompletionItem] = {}
    for item in items:  # an argument named like an op, a constant named like a local: once
        unique.setdefault(item.label, item)
    return lsp.CompletionList(is_incomplete=False, items=list(unique.values()))


def _nearest_old_line(analysis: Analysis, text: str, line0: int) -> int:
    """The 1-based line of the analysed text nearest above `line0` of the current text."""
    lines = _LineMap(analysis.text, text)
    for i in range(line0, -1, -1):
        old = lines.old(i)
        if old is not None:
            return old + 1
    return 1


def _item(
    label: str, kind: lsp.CompletionItemKind, detail: str, doc: str | None = None, **kw: Any
) -> lsp.CompletionItem:
    return lsp.CompletionItem(
        label=label,
        kind=kind,
        detail=detail,
        documentation=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=doc) if doc else None,
        **kw,
    )


def _callable_items(blocks: Mapping[str, ast.BlockDef]) -> list[lsp.CompletionItem]:
    items = [
        _item(
            name,
            lsp.CompletionItemKind.Function,
            signature(lookup(name)),
            lookup(name).doc.split("\n\n")[0],
        )
        for name in sorted(LANGUAGE_OPS)
    ]
    items += [
        _item(name, lsp.CompletionItemKind.Class, block_signature(b)) for name, b in blocks.items()
    ]
    return items


def _argument_items(call: _Call, blocks: Mapping[str, ast.BlockDef]) -> list[lsp.CompletionItem]:
    """The attributes of an op call (or parameters of a block call) not yet given."""
    names: list[tuple[str, str]] = []
    if call.callee in LANGUAGE_OPS:
        opdef = lookup(call.callee)
        given = call.args + (1 if call.piped else 0) - len(opdef.inputs)
        for i, a in enumerate(opdef.positional_attrs):
            if (given > i and not opdef.variadic) or a.name in call.keywords:
                continue
            default = "" if a.required else f" = {format_value(a.default)}"
            names.append((a.name, f"{describe_hint(a.hint)}{default}"))
        names.append(("name", "the layer's name (a string)"))
        for a in opdef.attrs:  # layer attributes (initializers, activation): by name only
            if a.name in opdef.layer_attrs and a.name not in call.keywords:
                names.append((a.name, f"{describe_hint(a.hint)} = {format_value(a.default)}"))
    elif call.callee is not None and call.callee in blocks:
        params = blocks[call.callee].params
        given = call.args + (1 if call.piped else 0)
        for i, p in enumerate(params):
            if i >= given and p.name not in call.keywords:
                names.append((p.name, ast.format_type(p.type) if p.type else "tensor"))
        names.append(("name", "the block call's name (a string)"))
    return [
        _item(n, lsp.CompletionItemKind.Property, detail, insert_text=f"{n}=", sort_text=f"0{i:03}")
        for i, (n, detail) in enumerate(names)
    ]


def _local_names(owner: ast.BlockDef | ast.ModelDef | None) -> list[str]:
    if owner is None:
        return []
    decls = owner.params if isinstance(owner, ast.BlockDef) else owner.inputs
    names = [p.name for p in decls]
    for s, _ in _walk(owner.body, owner):
        if isinstance(s, (ast.Assign, ast.For)):
            names += s.targets
        elif isinstance(s, ast.ConstDef):
            names.append(s.name)
    return list(dict.fromkeys(names))


# --- the server -------------------------------------------------------------------------------


@dataclass
class _Document:
    uri: str
    path: str
    current: Analysis
    good: Analysis  # the latest analysis whose text parsed: hover works through syntax errors


class _Server:
    """The server's state: each open document's analyses and what was published where."""

    def __init__(self, ls: Any):
        self.ls = ls
        self.docs: dict[str, _Document] = {}
        # source document URI -> target URI -> diagnostics that document's check put there
        self.published: dict[str, dict[str, list[lsp.Diagnostic]]] = {}

    @property
    def encoding(self) -> str:
        encoding = self.ls.workspace.position_encoding or "utf-16"
        return str(getattr(encoding, "value", encoding))  # str() of the enum is its name

    def text(self, uri: str) -> str:
        return self.ls.workspace.get_text_document(uri).source

    def check(self, uri: str) -> None:
        path = document_path(uri)
        analysis = analyze(self.text(uri), path)
        old = self.docs.get(uri)
        good = analysis if analysis.module is not None or old is None else old.good
        self.docs[uri] = _Document(uri, path, analysis, good)
        by_uri: dict[str, list[lsp.Diagnostic]] = {}
        for p, found in diagnostics(analysis, self.encoding).items():
            by_uri.setdefault(self.uri_for(p), []).extend(found)
        self.publish(uri, by_uri)

    def check_dependents(self, uri: str) -> None:
        """Re-check the open documents that read the file just saved (their types may have
        changed: ask the client to fetch inlay hints again, where it can)."""
        path = document_path(uri)
        dependents = [d for d in self.docs.values() if d.uri != uri and path in d.current.sources]
        for other in dependents:
            self.check(other.uri)
        workspace = getattr(self.ls.client_capabilities, "workspace", None)
        hints = getattr(workspace, "inlay_hint", None)
        if dependents and getattr(hints, "refresh_support", False):
            self.ls.workspace_inlay_hint_refresh(None)

    def close(self, uri: str) -> None:
        self.docs.pop(uri, None)
        self.publish(uri, {})

    def uri_for(self, path: str) -> str:
        for d in self.docs.values():
            if d.path == path:
                return d.uri
        return uri_of(path)

    def publish(self, source: str, by_uri: dict[str, list[lsp.Diagnostic]]) -> None:
        """Publish, for every URI this document's check touches now or touched before, the
        diagnostics all open documents' checks put there."""
        before = self.published.get(source, {})
        self.published[source] = by_uri
        for target in {*before, *by_uri}:
            merged: list[lsp.Diagnostic] = []
            for found in self.published.values():
                for d in found.get(target, ()):
                    if all(
                        (d.range, d.message, d.severity) != (m.range, m.message, m.severity)
                        for m in merged
                    ):
                        merged.append(d)
            self.ls.text_document_publish_diagnostics(
                lsp.PublishDiagnosticsParams(uri=target, diagnostics=merged)
            )
        for uri in [u for u, found in self.published.items() if not found]:
            del self.published[uri]

    def extra(self, doc: _Document) -> list[Compiled]:
        """Models of other open documents that read this document's text as it is now."""
        return [
            c
            for other in self.docs.values()
            if other.uri != doc.uri and other.good.sources.get(doc.path) == doc.good.text
            for c in other.good.models
        ]

    def document(self, uri: str) -> _Document | None:
        if uri not in self.docs:
            try:
                self.check(uri)
            except (KeyError, OSError):  # not open and not a readable file
                return None
        return self.docs.get(uri)


def create_server() -> Any:
    """A pygls LanguageServer with netc's features registered (not started)."""
    from pygls.lsp.server import LanguageServer

    ls = LanguageServer("netc", __version__)
    state = _Server(ls)

    @ls.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: lsp.DidOpenTextDocumentParams) -> None:
        state.check(params.text_document.uri)

    @ls.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: lsp.DidChangeTextDocumentParams) -> None:
        state.check(params.text_document.uri)

    @ls.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(params: lsp.DidSaveTextDocumentParams) -> None:
        state.check(params.text_document.uri)
        state.check_dependents(params.text_document.uri)

    @ls.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: lsp.DidCloseTextDocumentParams) -> None:
        state.close(params.text_document.uri)

    @ls.feature(lsp.TEXT_DOCUMENT_HOVER)
    def on_hover(params: lsp.HoverParams) -> lsp.Hover | None:
        doc = state.document(params.text_document.uri)
        if doc is None:
            return None
        text = state.text(doc.uri)
        extra = state.extra(doc)
        return hover(doc.good, params.position, text=text, extra=extra, encoding=state.encoding)

    @ls.feature(lsp.TEXT_DOCUMENT_INLAY_HINT, lsp.InlayHintOptions(resolve_provider=False))
    def on_inlay_hint(params: lsp.InlayHintParams) -> list[lsp.InlayHint]:
        doc = state.document(params.text_document.uri)
        if doc is None:
            return []
        text = state.text(doc.uri)
        return inlay_hints(
            doc.good,
            text=text,
            within=params.range,
            extra=state.extra(doc),
            encoding=state.encoding,
        )

    @ls.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def on_definition(params: lsp.DefinitionParams) -> lsp.Location | None:
        doc = state.document(params.text_document.uri)
        if doc is None:
            return None
        text = state.text(doc.uri)
        return definition(doc.good, params.position, text=text, encoding=state.encoding)

    @ls.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[">", "("]))
    def on_completion(params: lsp.CompletionParams) -> lsp.CompletionList:
        doc = state.document(params.text_document.uri)
        text = state.text(params.text_document.uri)
        return completion(doc.good if doc else None, text, params.position, state.encoding)

    return ls


def main() -> None:
    """Run the language server on stdin/stdout (`netc lsp`)."""
    import importlib.util
    import sys

    if lsp is None or importlib.util.find_spec("pygls") is None:
        sys.stderr.write("netc lsp needs pygls: pip install 'netc[lsp]'\n")
        raise SystemExit(1)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    create_server().start_io()


if __name__ == "__main__":  # `python -m netc.lsp`, the same as `netc lsp`
    main()
