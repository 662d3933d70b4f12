"""Diagnostics for the editor: netc's errors and warnings as LSP diagnostics, by file (an error in
an imported file also at the call or import that leads there), and the quick fixes they carry.
"""

from __future__ import annotations

import os
import re

from lsprotocol import types as lsp

from ..source import Diagnostic, Span
from .analysis import Analysis
from .text import Text, _norm, uri_of


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


def _text_of(analysis: Analysis, path: str, encoding: str) -> Text:
    return Text(analysis.sources.get(_norm(path), ""), encoding)


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


# --- quick fixes --------------------------------------------------------------------------------

_DID_YOU_MEAN = re.compile(r"did you mean `([^`]+)`\?")
_ADD_BEFORE = re.compile(r"add `([A-Za-z_][A-Za-z0-9_]*)` before it")
_UNUSED = re.compile(r"^value `([A-Za-z][A-Za-z0-9_]*)` is never used$")
_QUOTED = re.compile(r"`([^`]+)`")


def fixes(d: Diagnostic, text: str) -> list[tuple[str, Span, str]]:
    """The edits a diagnostic's hint makes certain, as (title, span, new text): a did-you-mean
    replaces the misspelled name, "add `flatten` before it" pipes it in, an unused value gets
    `_` in front of its name (which says it is unused on purpose)."""
    if d.span is None or d.span.line != d.span.end_line:
        return []
    lines = text.split("\n")
    if d.span.line > len(lines):
        return []
    line = lines[d.span.line - 1].removesuffix("\r")
    start, end = d.span.col - 1, d.span.end_col - 1
    written = line[start:end]
    out: list[tuple[str, Span, str]] = []
    hint = d.hint or ""
    if m := _DID_YOU_MEAN.search(hint):
        better = m.group(1)
        for wrong in _QUOTED.findall(d.message):
            where = re.search(rf"(?<![\w]){re.escape(wrong)}(?![\w])", written)
            if where is not None and wrong != better:
                span = Span(
                    d.span.path,
                    d.span.line,
                    start + where.start() + 1,
                    d.span.line,
                    start + where.end() + 1,
                )
                if better.startswith("|> ") and wrong.isidentifier():
                    break  # a parser hint about a missing pipe: not a name to replace
                out.append((f"change `{wrong}` to `{better}`", span, better))
                break
        if not out and better.startswith("|> "):
            name = better[3:]
            if written == name:
                out.append((f"write `{better}`", d.span, better))
    if m := _ADD_BEFORE.search(hint):
        if line[:start].rstrip().endswith("|>"):
            op = m.group(1)
            span = Span(d.span.path, d.span.line, d.span.col, d.span.line, d.span.col)
            out.append((f"add `{op}` before it", span, f"{op} |> "))
    if d.severity == "warning" and (m := _UNUSED.match(d.message)):
        name = m.group(1)
        where = re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", written)
        if where is not None:
            col = start + where.start() + 1
            span = Span(d.span.path, d.span.line, col, d.span.line, col + len(name))
            out.append((f"rename to `_{name}` (unused on purpose)", span, f"_{name}"))
    return out


def code_actions(
    analysis: Analysis, within: lsp.Range, encoding: str = "utf-16"
) -> list[lsp.CodeAction]:
    """The quick fixes of the diagnostics of the document that touch `within`."""
    current = Text(analysis.text, encoding)
    actions: list[lsp.CodeAction] = []
    for d in analysis.diagnostics:
        if d.span is None or _norm(d.span.path) != analysis.path:
            continue
        r = current.range(d.span)
        if (r.end.line, r.end.character) < (within.start.line, within.start.character) or (
            r.start.line,
            r.start.character,
        ) > (within.end.line, within.end.character):
            continue
        shown = _to_lsp(d, analysis, encoding)
        for title, span, new in fixes(d, analysis.text):
            edit = lsp.TextEdit(range=current.range(span), new_text=new)
            actions.append(
                lsp.CodeAction(
                    title=title,
                    kind=lsp.CodeActionKind.QuickFix,
                    diagnostics=[shown],
                    is_preferred=True,
                    edit=lsp.WorkspaceEdit(changes={uri_of(analysis.path): [edit]}),
                )
            )
    return actions
