"""The language server end to end: `netc lsp --stdio` in its own process, driven over stdio by
pytest-lsp's client as an editor would: every feature on real files, then every prefix of every
example typed in (character by character for two of them), checking that the server never
crashes, never puts a diagnostic outside the document, and how long it takes (reported, not
asserted: the machine's load is not the server's)."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.net"))
TYPED = ("mnist_mlp.net", "lstm_forecaster.net")  # typed in character by character
SERVER = [sys.executable, "-m", "netc", "lsp", "--stdio"]

pytestmark = pytest.mark.asyncio(loop_scope="module")
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def report_the_timings(request):
    """Not a check: the numbers of this run, on the terminal once the module's tests ran."""
    yield
    if TIMINGS:
        shown = ", ".join(
            f"{k} {v * 1000:.0f} ms" if isinstance(v, float) else f"{k} {v}"
            for k, v in TIMINGS.items()
        )
        with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
            print(f"\nnetc lsp timings: {shown}")


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), scope="module")
async def client(lsp_client: LanguageClient):
    params = T.InitializeParams(capabilities=client_capabilities("visual-studio-code"))
    start = time.perf_counter()
    result = await lsp_client.initialize_session(params)
    TIMINGS["initialize"] = time.perf_counter() - start
    lsp_client.server_capabilities = result.capabilities  # type: ignore[attr-defined]
    lsp_client.initialized_at = time.perf_counter()  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


LIB = """\
const WIDTH = 16

# a dense layer and its activation
block dense_act(x, units: int, act: str = "relu") {
    y = x |> dense(units)
    return if act == "relu" { y |> relu } else { y |> tanh }
}
"""

MODEL = """\
import "lib.net"

block head(x, classes: int) {
    return x |> dense_act(WIDTH) |> dense(classes)
}

model classifier(image: f32[N, 28, 28]) -> (logits: f32[N, 10]) {
    h = image |> flatten |> dense_act(WIDTH, act="tanh")
    logits = h |> head(10)
}

train {
    loss = sparse_categorical_crossentropy(from_logits=true)
    optimizer = adam(1e-3)
    epochs = 3
}
"""


async def open_doc(client: LanguageClient, path: Path, text: str, version: int = 1) -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        T.DidOpenTextDocumentParams(
            text_document=T.TextDocumentItem(
                uri=uri, language_id="netc", version=version, text=text
            )
        )
    )
    await client.wait_for_notification(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return uri


def at(text: str, needle: str, offset: int = 0, nth: int = 0) -> T.Position:
    index = -1
    for _ in range(nth + 1):
        index = text.index(needle, index + 1)
    index += offset
    line = text.count("\n", 0, index)
    return T.Position(line=line, character=index - (text.rfind("\n", 0, index) + 1))


def doc(uri: str) -> T.TextDocumentIdentifier:
    return T.TextDocumentIdentifier(uri=uri)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    (folder / "lib.net").write_text(LIB)
    (folder / "model.net").write_text(MODEL)
    return folder


async def test_the_first_request_is_answered_soon_after_initialize(client, project):
    """Measured and reported: how long the first hover takes after `initialize` (the compiler
    is warmed in the background while the client starts)."""
    uri = await open_doc(client, project / "model.net", MODEL)
    hovered = await client.text_document_hover_async(
        T.HoverParams(text_document=doc(uri), position=at(MODEL, "dense(classes)"))
    )
    TIMINGS["first hover after initialize"] = time.perf_counter() - client.initialized_at
    assert hovered is not None and "`f32[N, 10]`" in hovered.contents.value


async def test_the_server_announces_every_feature(client):
    caps = client.server_capabilities
    assert caps.hover_provider and caps.definition_provider and caps.references_provider
    assert caps.rename_provider.prepare_provider
    assert caps.document_symbol_provider and caps.folding_range_provider
    assert caps.document_formatting_provider and caps.inlay_hint_provider
    assert list(caps.code_action_provider.code_action_kinds) == [T.CodeActionKind.QuickFix]
    assert list(caps.signature_help_provider.trigger_characters) == ["(", ","]
    assert set(caps.completion_provider.trigger_characters) >= {">", "("}
    legend = caps.semantic_tokens_provider.legend
    assert {"function", "class", "parameter", "property"} <= set(legend.token_types)


async def test_hover_on_an_op_a_block_call_and_a_train_setting(client, project):
    uri = (project / "model.net").as_uri()
    op = await client.text_document_hover_async(
        T.HoverParams(text_document=doc(uri), position=at(MODEL, "flatten"))
    )
    assert "**`flatten`** : `f32[N, 784]`" in op.contents.value
    assert "```netc\nflatten(x)\n```" in op.contents.value
    call = await client.text_document_hover_async(
        T.HoverParams(text_document=doc(uri), position=at(MODEL, "dense_act(WIDTH, act"))
    )
    assert call.contents.value.startswith('**`dense_act(WIDTH, act="tanh")`** : `f32[N, 16]`')
    assert "params **12,560 (12.6 k)**" in call.contents.value
    setting = await client.text_document_hover_async(
        T.HoverParams(text_document=doc(uri), position=at(MODEL, "epochs"))
    )
    assert "**epochs**: how many passes over the training data" in setting.contents.value
    optimizer = await client.text_document_hover_async(
        T.HoverParams(text_document=doc(uri), position=at(MODEL, "adam"))
    )
    assert optimizer.contents.value.startswith("```netc\nadam(learning_rate, weight_decay,")


async def test_completion_signature_help_definition_references_and_rename(client, project):
    uri = (project / "model.net").as_uri()
    piped = await client.text_document_completion_async(
        T.CompletionParams(text_document=doc(uri), position=at(MODEL, "head(10)"))
    )
    labels = [i.label for i in piped.items]
    assert {"conv2d", "dense", "head", "dense_act"} <= set(labels) and "for" not in labels
    sig = await client.text_document_signature_help_async(
        T.SignatureHelpParams(text_document=doc(uri), position=at(MODEL, '"tanh")', 6))
    )
    [info] = sig.signatures
    assert info.label == 'dense_act(x, units: int, act: str = "relu", name="...")'
    assert sig.active_parameter == 2  # the piped value is x, WIDTH units, then act=
    found = await client.text_document_definition_async(
        T.DefinitionParams(text_document=doc(uri), position=at(MODEL, "dense_act"))
    )
    assert found.uri == (project / "lib.net").as_uri() and found.range.start.line == 3
    refs = await client.text_document_references_async(
        T.ReferenceParams(
            text_document=doc(uri),
            position=at(MODEL, "WIDTH"),
            context=T.ReferenceContext(include_declaration=True),
        )
    )
    places = sorted((r.uri.rsplit("/", 1)[1], r.range.start.line) for r in refs)
    assert places == [("lib.net", 0), ("model.net", 3), ("model.net", 7)]
    edit = await client.text_document_rename_async(
        T.RenameParams(text_document=doc(uri), position=at(MODEL, "h |>"), new_name="hidden")
    )
    [(changed, edits)] = edit.changes.items()
    assert changed == uri and [e.range.start.line for e in edits] == [7, 8]


async def test_symbols_tokens_folding_quick_fixes_and_formatting(client, project):
    uri = (project / "model.net").as_uri()
    symbols = await client.text_document_document_symbol_async(
        T.DocumentSymbolParams(text_document=doc(uri))
    )
    assert [(s.name, s.kind) for s in symbols] == [
        ("lib.net", T.SymbolKind.File),
        ("head", T.SymbolKind.Function),
        ("classifier", T.SymbolKind.Class),
        ("train", T.SymbolKind.Module),
    ]
    assert [c.name for c in symbols[2].children] == ["image", "logits", "h"]
    tokens = await client.text_document_semantic_tokens_full_async(
        T.SemanticTokensParams(text_document=doc(uri))
    )
    legend = client.server_capabilities.semantic_tokens_provider.legend.token_types
    kinds = decode(tokens.data, legend, MODEL)
    assert kinds["dense_act"] == "class" and kinds["flatten"] == "function"
    assert kinds["epochs"] == "property" and kinds["WIDTH"] == "variable"
    assert kinds["classes"] == "parameter" and kinds["classifier"] == "class"
    folds = await client.text_document_folding_range_async(
        T.FoldingRangeParams(text_document=doc(uri))
    )
    assert {(f.start_line, f.end_line) for f in folds} >= {(2, 3), (6, 8), (11, 14)}
    typo = MODEL.replace("|> flatten", "|> flaten")
    client.text_document_did_change(
        T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[T.TextDocumentContentChangeWholeDocument(text=typo)],
        )
    )
    await client.wait_for_notification(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    [problem] = client.diagnostics[uri]
    assert problem.message.startswith("unknown op or block `flaten`")
    actions = await client.text_document_code_action_async(
        T.CodeActionParams(
            text_document=doc(uri),
            range=problem.range,
            context=T.CodeActionContext(diagnostics=[problem]),
        )
    )
    [fix] = actions
    assert fix.title == "change `flaten` to `flatten`" and fix.kind == T.CodeActionKind.QuickFix
    [edit] = fix.edit.changes[uri]
    assert edit.new_text == "flatten" and edit.range.start == at(typo, "flaten")
    messy = MODEL.replace("h = image |> flatten", "h=image|>flatten")
    client.text_document_did_change(
        T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=uri, version=3),
            content_changes=[T.TextDocumentContentChangeWholeDocument(text=messy)],
        )
    )
    await client.wait_for_notification(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    [whole] = await client.text_document_formatting_async(
        T.DocumentFormattingParams(
            text_document=doc(uri), options=T.FormattingOptions(tab_size=4, insert_spaces=True)
        )
    )
    assert whole.new_text == MODEL


def decode(data: list[int], legend: list[str], text: str) -> dict[str, str]:
    """The token type of each name (the last occurrence wins) from LSP's relative integers."""
    lines = text.split("\n")
    out, line, start = {}, 0, 0
    for i in range(0, len(data), 5):
        delta_line, delta_start, length, kind, _ = data[i : i + 5]
        line += delta_line
        start = start + delta_start if delta_line == 0 else delta_start
        out[lines[line][start : start + length]] = legend[kind]
    return out


def prefixes(text: str, by_character: bool) -> list[str]:
    """Every prefix: at each character, or at the end of each line."""
    if by_character:
        return [text[:i] for i in range(len(text) + 1)]
    ends = [i for i, ch in enumerate(text) if ch == "\n"]
    return [text[: i + 1] for i in ends] + [text]


async def test_typing_every_example_never_crashes_the_server_nor_misplaces_a_diagnostic(
    client, tmp_path
):
    """Every prefix of every example, as a user typing it in (two of them a character at a time):
    each change is answered by diagnostics that lie inside the document and are never netc's
    internal errors, and the server still answers hover afterwards."""
    latencies: list[float] = []
    steps = 0
    for path in EXAMPLES:
        uri = (tmp_path / path.name).as_uri()
        client.text_document_did_open(
            T.DidOpenTextDocumentParams(
                text_document=T.TextDocumentItem(uri=uri, language_id="netc", version=0, text="")
            )
        )
        await client.wait_for_notification(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        for version, text in enumerate(prefixes(path.read_text(), path.name in TYPED), start=1):
            start = time.perf_counter()
            client.text_document_did_change(
                T.DidChangeTextDocumentParams(
                    text_document=T.VersionedTextDocumentIdentifier(uri=uri, version=version),
                    content_changes=[T.TextDocumentContentChangeWholeDocument(text=text)],
                )
            )
            await client.wait_for_notification(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
            latencies.append(time.perf_counter() - start)
            steps += 1
            lines = text.split("\n")
            for d in client.diagnostics.get(uri, []):
                where = f"{path.name} at {len(text)} characters: {d.message}"
                assert "internal error" not in d.message, where
                for p in (d.range.start, d.range.end):
                    assert 0 <= p.line < len(lines), where
                    assert 0 <= p.character <= len(lines[p.line].encode("utf-16-le")) // 2, where
        hovered = await client.text_document_hover_async(
            T.HoverParams(text_document=doc(uri), position=T.Position(line=0, character=0))
        )
        assert hovered is None or hovered.contents.value
        client.text_document_did_close(T.DidCloseTextDocumentParams(text_document=doc(uri)))
        await client.wait_for_notification(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert steps > 2000
    TIMINGS["typing steps"] = steps
    TIMINGS["change to diagnostics, median"] = statistics.median(latencies)
    TIMINGS["change to diagnostics, worst"] = max(latencies)
