"""The language server: the open documents' state, thin pygls handlers over the feature modules,
and `main` (stdio, or TCP to debug).

Start-up is quick: this module imports pygls and lsprotocol only; the compiler and the feature
modules are imported by a background thread started before the first message is read (`warm`),
so that `initialize` is answered at once and the first requests find them loaded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from lsprotocol import types as lsp

from .legend import LEGEND
from .text import document_path, uri_of

if TYPE_CHECKING:
    from .analysis import Analysis, Compiled

log = logging.getLogger("netc.lsp")
R = TypeVar("R")


@dataclass
class Document:
    """An open document: its latest analysis, and the latest one whose text parsed (hover,
    hints and navigation keep working from it while the text does not parse)."""

    uri: str
    path: str
    current: Analysis
    good: Analysis


class State:
    """The server's state: each open document's analyses and what was published where."""

    def __init__(self, ls: Any):
        self.ls = ls
        self.docs: dict[str, Document] = {}
        # source document URI -> target URI -> diagnostics that document's check put there
        self.published: dict[str, dict[str, list[lsp.Diagnostic]]] = {}

    @property
    def encoding(self) -> str:
        encoding = self.ls.workspace.position_encoding or "utf-16"
        return str(getattr(encoding, "value", encoding))  # str() of the enum is its name

    def text(self, uri: str) -> str:
        return self.ls.workspace.get_text_document(uri).source

    def check(self, uri: str) -> None:
        """Analyse the document as it is now and publish its diagnostics."""
        from .analysis import analyze
        from .problems import diagnostics

        path = document_path(uri)
        analysis = analyze(self.text(uri), path)
        old = self.docs.get(uri)
        good = analysis if analysis.module is not None or old is None else old.good
        self.docs[uri] = Document(uri, path, analysis, good)
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

    def extra(self, doc: Document) -> list[Compiled]:
        """Models of other open documents that read this document's text as it is now."""
        return [
            c
            for other in self.docs.values()
            if other.uri != doc.uri and other.good.sources.get(doc.path) == doc.good.text
            for c in other.good.models
        ]

    def others(self, doc: Document) -> list[tuple[str, str]]:
        """(path, text) of the other open documents that read this one: where its blocks and
        constants may be used too."""
        return [
            (other.path, self.text(other.uri))
            for other in self.docs.values()
            if other.uri != doc.uri and doc.path in other.good.sources
        ]

    def document(self, uri: str) -> Document | None:
        if uri not in self.docs:
            try:
                self.check(uri)
            except (KeyError, OSError):  # not open and not a readable file
                return None
        return self.docs.get(uri)


_warmed = threading.Event()


def warm() -> None:
    """Import the compiler and the features and run each once on a small model (the parser's
    tables, the op library, pygls' converters for the answers), so that no request pays it."""
    try:
        from ..fmt import format_text
        from ..parse import parse_with_lark
        from . import complete, describe, outline, tokens, usages
        from .analysis import analyze
        from .problems import diagnostics

        text = "model m(x: f32[N, 4]) -> (y: f32[N, 4]) {\n    y = x |> dense(4)\n}\n"
        analysis = analyze(text, "<warm>")
        diagnostics(analysis)
        where = lsp.Position(line=1, character=14)
        answers = [
            describe.hover(analysis, where),
            complete.completion(analysis, text, where),
            complete.signature_help(analysis, text, where),
            tokens.semantic_tokens(analysis, analysis.module, text),
            usages.references(analysis, text, where),
            outline.folding_ranges(text),
        ]
        format_text(text)
        parse_with_lark(text)  # Lark's tables: the first syntax error must not wait for them
        from pygls.protocol import default_converter

        converter = default_converter()
        for a in answers:
            converter.unstructure(a)
    except Exception:  # warming is an optimization: a failure shows up in the real request
        log.exception("warming the language server failed")
    finally:
        _warmed.set()


def create_server() -> Any:
    """A pygls LanguageServer with netc's features registered (not started)."""
    from pygls.lsp.server import LanguageServer

    from .. import __version__

    ls = LanguageServer("netc", __version__)
    state = State(ls)
    ls.netc_state = state  # type: ignore[attr-defined]  # for tests

    def with_doc(uri: str, answer: Callable[[Document, str], R], default: R) -> R:
        doc = state.document(uri)
        if doc is None:
            return default
        return answer(doc, state.text(doc.uri))

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
        from .describe import hover

        return with_doc(
            params.text_document.uri,
            lambda doc, text: hover(
                doc.good,
                params.position,
                text=text,
                extra=state.extra(doc),
                encoding=state.encoding,
            ),
            None,
        )

    @ls.feature(lsp.TEXT_DOCUMENT_INLAY_HINT, lsp.InlayHintOptions(resolve_provider=False))
    def on_inlay_hint(params: lsp.InlayHintParams) -> list[lsp.InlayHint]:
        from .inlay import inlay_hints

        return with_doc(
            params.text_document.uri,
            lambda doc, text: inlay_hints(
                doc.good,
                text=text,
                within=params.range,
                extra=state.extra(doc),
                encoding=state.encoding,
            ),
            [],
        )

    @ls.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def on_definition(params: lsp.DefinitionParams) -> lsp.Location | None:
        from .navigation import definition

        return with_doc(
            params.text_document.uri,
            lambda doc, text: definition(
                doc.good, params.position, text=text, encoding=state.encoding
            ),
            None,
        )

    @ls.feature(lsp.TEXT_DOCUMENT_REFERENCES)
    def on_references(params: lsp.ReferenceParams) -> list[lsp.Location]:
        from .usages import references

        return with_doc(
            params.text_document.uri,
            lambda doc, text: references(
                doc.good,
                text,
                params.position,
                include_declaration=params.context.include_declaration,
                others=state.others(doc),
                encoding=state.encoding,
            ),
            [],
        )

    @ls.feature(lsp.TEXT_DOCUMENT_PREPARE_RENAME)
    def on_prepare_rename(params: lsp.PrepareRenameParams) -> lsp.Range | None:
        from .usages import prepare_rename

        return with_doc(
            params.text_document.uri,
            lambda doc, text: prepare_rename(doc.good, text, params.position, state.encoding),
            None,
        )

    @ls.feature(lsp.TEXT_DOCUMENT_RENAME)
    def on_rename(params: lsp.RenameParams) -> lsp.WorkspaceEdit | None:
        from pygls.exceptions import JsonRpcInvalidParams

        from .usages import RenameError, rename

        try:
            return with_doc(
                params.text_document.uri,
                lambda doc, text: rename(
                    doc.good,
                    text,
                    params.position,
                    params.new_name,
                    others=state.others(doc),
                    encoding=state.encoding,
                ),
                None,
            )
        except RenameError as e:
            raise JsonRpcInvalidParams(str(e)) from None

    @ls.feature(
        lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[">", "(", ",", "="])
    )
    def on_completion(params: lsp.CompletionParams) -> lsp.CompletionList:
        from .complete import completion

        doc = state.document(params.text_document.uri)
        text = state.text(params.text_document.uri)
        return completion(doc.good if doc else None, text, params.position, state.encoding)

    @ls.feature(
        lsp.TEXT_DOCUMENT_SIGNATURE_HELP,
        lsp.SignatureHelpOptions(trigger_characters=["(", ","], retrigger_characters=["="]),
    )
    def on_signature_help(params: lsp.SignatureHelpParams) -> lsp.SignatureHelp | None:
        from .complete import signature_help

        doc = state.document(params.text_document.uri)
        text = state.text(params.text_document.uri)
        return signature_help(doc.good if doc else None, text, params.position, state.encoding)

    @ls.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def on_symbols(params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
        from .outline import document_symbols

        def answer(doc: Document, text: str) -> list[lsp.DocumentSymbol]:
            if doc.good.module is None:
                return []
            return document_symbols(doc.good.module, doc.good.text, text, state.encoding)

        return with_doc(params.text_document.uri, answer, [])

    @ls.feature(lsp.TEXT_DOCUMENT_FOLDING_RANGE)
    def on_folding(params: lsp.FoldingRangeParams) -> list[lsp.FoldingRange]:
        from .outline import folding_ranges

        return folding_ranges(state.text(params.text_document.uri))

    @ls.feature(lsp.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL, LEGEND)
    def on_tokens(params: lsp.SemanticTokensParams) -> lsp.SemanticTokens:
        from .tokens import semantic_tokens

        def answer(doc: Document, text: str) -> lsp.SemanticTokens:
            module = doc.current.module if doc.current.text == text else None
            if module is None and doc.good.text == text:
                module = doc.good.module
            return semantic_tokens(doc.good, module, text, state.encoding)

        return with_doc(params.text_document.uri, answer, lsp.SemanticTokens(data=[]))

    @ls.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION,
        lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]),
    )
    def on_code_action(params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        from .problems import code_actions

        def answer(doc: Document, text: str) -> list[lsp.CodeAction]:
            if doc.current.text != text:
                return []
            return code_actions(doc.current, params.range, state.encoding)

        return with_doc(params.text_document.uri, answer, [])

    @ls.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    def on_formatting(params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit] | None:
        from ..fmt import format_text
        from ..source import NetcError

        text = state.text(params.text_document.uri)
        try:
            formatted = format_text(text, document_path(params.text_document.uri))
        except NetcError:
            return None  # the diagnostics already say why it does not parse
        if formatted == text:
            return []
        lines = text.split("\n")
        end = lsp.Position(line=len(lines), character=0)
        whole = lsp.Range(start=lsp.Position(line=0, character=0), end=end)
        return [lsp.TextEdit(range=whole, new_text=formatted)]

    return ls


def main(tcp: int | None = None, host: str = "127.0.0.1", log_level: str = "warning") -> None:
    """Run the language server on stdin/stdout (`netc lsp`), or on a TCP port."""
    import sys

    logging.basicConfig(level=getattr(logging, log_level.upper()), stream=sys.stderr)
    threading.Thread(target=warm, name="netc-warm", daemon=True).start()
    ls = create_server()
    if tcp is not None:
        sys.stderr.write(f"netc lsp: listening on {host}:{tcp}\n")
        ls.start_tcp(host, tcp)
    else:
        ls.start_io()


if __name__ == "__main__":
    main()
