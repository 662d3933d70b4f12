"""The analysis of one document: parsed, its module checked on its own (what a library of
blocks has), and each model in it elaborated with every value each expression took, by span.

Every feature of the server reads an `Analysis`; nothing here knows the protocol.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .. import elaborate as _elaborate
from .. import syntax as ast
from ..elaborate import Elaborator, Frame, Scope
from ..imports import ImportPaths
from ..ir import Node
from ..parse import parse
from ..source import CallSite, Diagnostic, NetcError, Reporter, Span
from ..summary import Layer, Model
from .text import SpanKey, _key, _norm

log = logging.getLogger("netc.lsp")

# One evaluation of an expression: its value, the block calls it was computed in (innermost
# first), and the frame of the block call (or model body) it ran in, which identifies the call.
Evaluation = tuple[Any, tuple[CallSite, ...], Frame]


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
