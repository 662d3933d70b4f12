"""The language server: each feature as a plain function of a document's analysis and a
position (diagnostics, hover, inlay hints, go-to-definition, completion), then the server
itself over stdio, driven by pygls' client."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from lsprotocol import types as T

import netc
from netc import lsp

BAD = Path(__file__).parent / "bad"

MODEL = """\
block conv_bn(x, filters: int, stride: int = 1) {
    y = x |> conv2d(filters, 3, stride=stride, padding="same", bias=false)
    return y |> batchnorm
}

model net(image: f32[N, 32, 32, 3]) -> (logits: f32[N, 10]) {
    x = image |> conv_bn(16) |> relu
    for filters in [32, 64] {
        x = x |> conv_bn(filters, stride=2)
    }
    logits = x
        |> global_avgpool
        |> dense(10)
}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def analysis_of(tmp_path: Path, text: str, name: str = "model.net") -> lsp.Analysis:
    path = write(tmp_path, name, text)
    return lsp.analyze(path.read_text(), str(path))


def at(text: str, needle: str, line_of: str | None = None, offset: int = 0) -> T.Position:
    """The position of `needle` (on the first line holding `line_of`, default `needle`)."""
    lines = text.split("\n")
    line = next(i for i, s in enumerate(lines) if (line_of or needle) in s)
    return T.Position(line=line, character=lines[line].index(needle) + offset)


def hover_text(a: lsp.Analysis, position: T.Position, **kw) -> str:
    h = lsp.hover(a, position, **kw)
    assert h is not None
    assert isinstance(h.contents, T.MarkupContent) and h.contents.kind == T.MarkupKind.Markdown
    return h.contents.value


def span_range(r: T.Range) -> tuple[int, int, int, int]:
    return (r.start.line, r.start.character, r.end.line, r.end.character)


# --- diagnostics ------------------------------------------------------------------------------


def test_a_good_model_has_no_diagnostics_and_compiles_like_the_library(tmp_path):
    a = analysis_of(tmp_path, MODEL)
    assert lsp.diagnostics(a) == {a.path: []}
    [compiled] = a.models
    model = netc.compile_text(MODEL, path=a.path)
    assert compiled.ok and compiled.model.total_params == model.total_params
    assert compiled.model.flops == model.flops


def test_an_error_has_a_zero_based_range_its_severity_and_its_hint(tmp_path):
    a = analysis_of(
        tmp_path, "model reg(x: f32[N]) -> (y: f32[N, 1]) {\n    y = x |> dense(1)\n}\n"
    )
    [d] = lsp.diagnostics(a)[a.path]
    # netc: 2:14 to 2:22 (1-based, exclusive end); LSP: line 1, characters 13 to 21
    assert span_range(d.range) == (1, 13, 1, 21)
    assert d.severity == T.DiagnosticSeverity.Error and d.source == "netc"
    assert d.message == (
        "dense needs an input of rank >= 2, got f32[N]\nhelp: add `flatten` before it"
    )


def test_an_error_inside_a_block_names_each_call_site_as_related_information(tmp_path):
    text = """\
    block head(x, classes: int) {
        return x |> conv2d(classes, 3)
    }
    model net(image: f32[N, 8]) -> (logits: f32[N, 10]) {
        logits = image |> dense(16) |> head(10)
    }
    """
    a = analysis_of(tmp_path, text)
    [d] = lsp.diagnostics(a)[a.path]
    assert span_range(d.range) == (1, 16, 1, 34)
    [call] = d.related_information
    assert call.message == "in block `head`, called here"
    assert call.location.uri == Path(a.path).as_uri()
    assert span_range(call.location.range) == (4, 35, 4, 43)


def test_an_error_in_an_imported_file_is_published_for_that_file_and_at_the_call(tmp_path):
    write(tmp_path, "lib/layers.net", "block bad(x) {\n    return x |> conv2d(8, 3)\n}\n")
    text = (
        'import "lib/layers.net"\nmodel m(x: f32[N, 4]) -> (y: f32[N, 4]) {\n    y = x |> bad\n}\n'
    )
    a = analysis_of(tmp_path, text)
    found = lsp.diagnostics(a)
    lib = str(tmp_path / "lib" / "layers.net")
    [there] = found[lib]
    assert span_range(there.range) == (1, 16, 1, 28)
    assert there.message.startswith("conv2d needs a rank-4 input")
    [here] = found[a.path]
    assert span_range(here.range) == (2, 13, 2, 16)  # the call of `bad`
    assert here.message.startswith("in lib/layers.net:2:17: conv2d needs a rank-4 input")
    assert here.related_information[0].location.uri == Path(lib).as_uri()


def test_a_syntax_error_in_an_imported_file_is_shown_at_the_import(tmp_path):
    write(tmp_path, "layers.net", "block b(x) {\n    return x |> \n}\n")
    a = analysis_of(tmp_path, 'import "layers.net"\n')
    found = lsp.diagnostics(a)
    [here] = found[a.path]
    assert span_range(here.range) == (0, 0, 0, 19)
    assert here.message.startswith("in layers.net:")
    assert len(found[str(tmp_path / "layers.net")]) == 1


def test_every_model_of_a_file_is_checked_and_a_shared_error_is_reported_once(tmp_path):
    text = """\
    block head(x) {
        return x |> conv2d(8, 3)
    }
    model a(x: f32[N, 4]) -> (y: f32[N, 4]) {
        y = x |> head
    }
    model b(x: f32[N, 4]) -> (y: f32[N, 4]) {
        y = x |> head |> nope
    }
    """
    a = analysis_of(tmp_path, text)
    messages = [d.message.split("\n")[0] for d in lsp.diagnostics(a)[a.path]]
    assert messages == [  # the block's error once, though both models call it
        "conv2d needs a rank-4 input [N, H, W, C], got f32[N, 4]",
        "unknown op or block `nope`",
    ]
    assert [c.name for c in a.models] == ["a", "b"]
    text = text.replace("conv2d(8, 3)", "dense(4)")
    a = analysis_of(tmp_path, text)
    [d] = lsp.diagnostics(a)[a.path]
    assert d.message.startswith("unknown op or block `nope`")
    assert [c.ok for c in a.models] == [True, False]


def test_a_library_of_blocks_is_checked_without_a_model(tmp_path):
    good = "const WIDTH = 8\nblock head(x, units: int = WIDTH) {\n    return x |> dense(units)\n}\n"
    a = analysis_of(tmp_path, good, "layers.net")
    assert lsp.diagnostics(a) == {a.path: []}
    assert a.models == () and a.constants == {"WIDTH": 8}
    bad = good + "block head(x) {\n    return x\n}\nblock tail(x, n: integer) {\n    return x\n}\n"
    a = analysis_of(tmp_path, bad, "layers.net")
    messages = [d.message.split("\n")[0] for d in lsp.diagnostics(a)[a.path]]
    assert messages == ["`head` is defined twice", "unknown parameter type `integer`"]


def test_a_syntax_error_is_a_diagnostic(tmp_path):
    a = analysis_of(tmp_path, "model m(x: f32[N, 4]) -> (y: f32[N, 4]) {\n    y = x |>\n}\n")
    [d] = lsp.diagnostics(a)[a.path]
    assert a.module is None and d.message == "expected an op or block after `|>`"
    assert span_range(d.range) == (1, 10, 1, 12)  # the dangling `|>`, where the user left off


def test_several_syntax_errors_are_each_a_diagnostic(tmp_path):
    # as the user types: an unclosed call, a stray bracket and a dangling operator at once
    text = (
        "model m(x: f32[N, 4]) -> (y: tensor) {\n"
        "    a = x |> dense(4 |> relu\n"
        "    b = a |> dense(3))\n"
        "    y = b +\n"
        "}\n"
    )
    a = analysis_of(tmp_path, text)
    found = [(d.message, span_range(d.range)) for d in lsp.diagnostics(a)[a.path]]
    assert a.module is None and found == [
        ("expected `)` or `,` after `relu`", (1, 24, 1, 28)),
        ("unmatched `)`", (2, 21, 2, 22)),
        ("expected an expression after `+`", (3, 10, 3, 11)),
    ]


def test_an_unused_value_is_a_warning_tagged_unnecessary(tmp_path):
    text = "model m(x: f32[N, 4]) -> (y: f32[N, 4]) {\n    z = x |> relu\n    y = x\n}\n"
    a = analysis_of(tmp_path, text)
    [d] = lsp.diagnostics(a)[a.path]
    assert d.severity == T.DiagnosticSeverity.Warning
    assert d.message == "value `z` is never used" and d.tags == [T.DiagnosticTag.Unnecessary]


def test_the_malformed_corpus_gives_the_compilers_diagnostics():
    """Every file of tests/bad: the server reports what `netc.compile` reports, never crashes
    (less the two the editor has no use for: a library has no model, a file several)."""
    for path in sorted(BAD.glob("*.net")):
        text = path.read_text()
        try:
            reported = list(netc.compile_text(text, path=str(path)).warnings)
        except netc.NetcError as e:
            reported = e.diagnostics
        expected = {
            (d.severity, d.message, d.span)
            for d in reported
            if not re.search(r"defines (no model|\d+ models)", d.message)
        }
        got = {(d.severity, d.message, d.span) for d in lsp.analyze(text, str(path)).diagnostics}
        assert got == expected, path.name


def test_positions_count_utf16_code_units(tmp_path):
    text = 'const T = ["\U0001f600\u00e9", 1 + "a"]\n'
    a = analysis_of(tmp_path, text, "lib.net")
    [d16] = lsp.diagnostics(a, "utf-16")[a.path]
    [d8] = lsp.diagnostics(a, "utf-8")[a.path]
    [d32] = lsp.diagnostics(a, "utf-32")[a.path]
    # `1 + "a"` starts at code point 17; the emoji is 2 UTF-16 units and 4 UTF-8 bytes, é 1 and 2
    assert (d32.range.start.character, d16.range.start.character) == (17, 18)
    assert d8.range.start.character == 21


# --- hover ------------------------------------------------------------------------------------


def test_hover_on_an_op_shows_its_type_params_flops_weights_and_reference(tmp_path):
    a = analysis_of(tmp_path, MODEL)
    text = hover_text(a, at(MODEL, "dense"))
    dense = netc.compile_text(MODEL, path=a.path).layers[-1]
    assert "**`dense(10)`** : `f32[N, 10]`" in text
    assert f"params **{dense.params}**" in text and f"FLOPs **{dense.flops:,}**" in text
    assert "- `dense.kernel` `f32[64, 10]`\n- `dense.bias` `f32[10]`" in text
    assert "```netc\ndense(x, units, bias=true)\n```" in text
    assert "Fully connected layer over the last axis" in text


def test_hover_in_a_block_aggregates_over_every_call(tmp_path):
    a = analysis_of(tmp_path, MODEL)
    model = netc.compile_text(MODEL, path=a.path)
    convs = [layer for layer in model.layers if layer.op == "conv2d"]
    text = hover_text(a, at(MODEL, "conv2d"))
    assert "- `f32[N, 32, 32, 16]`\n- `f32[N, 16, 16, 32]`\n- `f32[N, 8, 8, 64]`" in text
    assert "in 3 calls of `conv_bn`" in text
    assert f"3 ops (conv2d ×3) · params **{sum(c.params for c in convs):,} (" in text
    # the block's header: everything its calls made
    text = hover_text(a, at(MODEL, "block"))
    assert "**`block conv_bn`**" in text and "in 3 calls of `conv_bn`" in text
    assert "6 ops (conv2d ×3, batchnorm ×3)" in text


def test_hover_on_an_assignment_shows_the_whole_statement(tmp_path):
    a = analysis_of(tmp_path, MODEL)
    text = hover_text(a, at(MODEL, "x =", "x = image"))
    assert text.startswith("**`x`** : `f32[N, 32, 32, 16]`")
    assert "3 ops (conv2d, batchnorm, relu)" in text
    text = hover_text(a, at(MODEL, "x = x"))
    assert "evaluated 2 times (in a loop)" in text
    assert "- `f32[N, 16, 16, 32]`\n- `f32[N, 8, 8, 64]`" in text


def test_hover_on_the_model_header_gives_the_totals(tmp_path):
    a = analysis_of(tmp_path, MODEL)
    model = netc.compile_text(MODEL, path=a.path)
    text = hover_text(a, at(MODEL, "model"))
    assert text.startswith("**`model net`**")
    assert f"params **{model.total_params:,} (" in text
    assert f"FLOPs **{model.flops:,}" in text


def test_hover_on_a_compile_time_value_and_a_constant(tmp_path):
    text = "const WIDTH = 8\n" + MODEL.replace("[32, 64]", "[32, WIDTH * 8]")
    a = analysis_of(tmp_path, text)
    assert hover_text(a, at(text, "filters", "filters, stride=2")).startswith(
        "**`filters`**\n\n- `32`\n- `64`"
    )
    assert "```netc\nconst WIDTH = 8\n```" in hover_text(a, at(text, "WIDTH", "for"))


def test_hover_keeps_working_from_the_last_good_analysis_while_the_text_does_not_parse(
    tmp_path,
):
    good = analysis_of(tmp_path, MODEL)
    broken = "# two new lines\n\n" + MODEL.replace("dense(10)", "dense(10 +")
    assert lsp.analyze(broken, good.path).module is None
    text = hover_text(good, at(broken, "conv_bn", "relu"), text=broken)
    assert text.startswith("**`conv_bn(16)`** : `f32[N, 32, 32, 16]`")
    assert lsp.hover(good, at(broken, "dense"), text=broken) is None  # the line that changed


def test_hover_in_a_library_uses_the_models_of_the_documents_that_import_it(tmp_path):
    lib_text = "block head(x, units: int) {\n    return x |> dense(units)\n}\n"
    write(tmp_path, "layers.net", lib_text)
    text = (
        'import "layers.net"\nmodel m(x: f32[N, 4]) -> (y: f32[N, 3]) {\n    y = x |> head(3)\n}\n'
    )
    model = analysis_of(tmp_path, text)
    lib = lsp.analyze(lib_text, str(tmp_path / "layers.net"))
    assert lsp.hover(lib, at(lib_text, "dense")).contents.value.startswith("```netc\ndense(")
    hovered = hover_text(lib, at(lib_text, "dense"), extra=model.models)
    assert hovered.startswith("**`dense(units)`** : `f32[N, 3]`\n\nin 1 call of `head`")
    [hint] = lsp.inlay_hints(lib, extra=model.models)
    assert hint.label == ": f32[N, 3]"


# --- inlay hints ------------------------------------------------------------------------------


def test_inlay_hints_give_the_type_at_the_end_of_each_assignment(tmp_path):
    a = analysis_of(tmp_path, MODEL)
    hints = {(h.position.line, h.position.character): h.label for h in lsp.inlay_hints(a)}
    lines = MODEL.split("\n")
    assert hints[(6, len(lines[6]))] == ": f32[N, 32, 32, 16]"  # x = image |> ...
    assert hints[(8, len(lines[8]))] == ": f32[N, 16, 16, 32] | f32[N, 8, 8, 64]"  # the loop
    assert hints[(1, len(lines[1]))] == (
        ": f32[N, 32, 32, 16] | … | f32[N, 8, 8, 64] (3 types)"  # a block's three calls
    )
    # a statement over several lines: each line's value
    assert hints[(10, len(lines[10]))] == ": f32[N, 8, 8, 64]"
    assert hints[(11, len(lines[11]))] == ": f32[N, 64]"
    assert hints[(12, len(lines[12]))] == ": f32[N, 10]"
    inside = T.Range(start=T.Position(line=10, character=0), end=T.Position(line=11, character=0))
    assert len(lsp.inlay_hints(a, within=inside)) == 2


def test_inlay_hints_follow_lines_moved_by_an_edit_that_does_not_parse(tmp_path):
    good = analysis_of(tmp_path, MODEL)
    broken = "# new\n" + MODEL.replace("|> global_avgpool", "|> global_avgpool(")
    lines = {h.position.line: h.label for h in lsp.inlay_hints(good, text=broken)}
    assert lines[7] == ": f32[N, 32, 32, 16]"  # moved down one line
    assert 12 not in lines  # the line being edited


# --- go to definition -------------------------------------------------------------------------


def test_definition_of_a_block_a_constant_and_a_file_across_an_import(tmp_path):
    write(
        tmp_path,
        "lib/layers.net",
        "const UNITS = 4\n\nblock head(x) {\n    return x |> dense(UNITS)\n}\n",
    )
    text = (
        'import "lib/layers.net"\n'
        "model m(x: f32[N, 4]) -> (y: f32[N, UNITS]) {\n    y = x |> head\n}\n"
    )
    a = analysis_of(tmp_path, text)
    lib = (tmp_path / "lib" / "layers.net").as_uri()
    loc = lsp.definition(a, at(text, "head"))
    assert loc.uri == lib and span_range(loc.range) == (2, 6, 2, 10)
    loc = lsp.definition(a, at(text, "UNITS"))
    assert loc.uri == lib and span_range(loc.range) == (0, 6, 0, 11)
    loc = lsp.definition(a, at(text, "lib/"))
    assert loc.uri == lib and span_range(loc.range) == (0, 0, 0, 0)


def test_definition_of_a_local_value_a_parameter_and_a_keyword_argument(tmp_path):
    a = analysis_of(tmp_path, MODEL)
    loc = lsp.definition(a, at(MODEL, "= x", "logits = x", offset=2))
    assert loc is not None and loc.range.start.line == 8  # the loop's `x = x |> ...`
    loc = lsp.definition(a, at(MODEL, "filters,", "conv2d"))
    assert span_range(loc.range) == (0, 17, 0, 24)  # the block's parameter `filters`
    loc = lsp.definition(a, at(MODEL, "stride=2"))
    assert span_range(loc.range) == (0, 31, 0, 37)  # `stride=` names conv_bn's parameter
    loc = lsp.definition(a, at(MODEL, "image |>"))
    assert span_range(loc.range) == (5, 10, 5, 15)  # the model's input


# --- completion -------------------------------------------------------------------------------


def labels(result: T.CompletionList) -> list[str]:
    return [i.label for i in result.items]


def test_completion_inside_an_op_call_offers_its_attributes_first(tmp_path):
    a = analysis_of(tmp_path, MODEL)
    text = MODEL.replace("|> dense(10)", "|> conv2d(64, 3, str")
    result = lsp.completion(a, text, at(text, "str", "conv2d(64, 3, str", offset=3))
    assert labels(result)[:6] == ["stride", "padding", "dilation", "groups", "bias", "name"]
    stride = result.items[0]
    assert stride.insert_text == "stride=" and stride.detail == "an int or a list of ints = 1"
    assert "dense" in labels(result) and "conv_bn" in labels(result)  # an expression fits too


def test_completion_in_a_block_call_offers_the_parameters_not_yet_given(tmp_path):
    a = analysis_of(tmp_path, MODEL)
    text = MODEL.replace("|> dense(10)", "|> conv_bn(8, )")
    result = lsp.completion(a, text, at(text, "conv_bn(8, ", offset=11))
    assert labels(result)[:2] == ["stride", "name"]


def test_completion_after_a_pipe_offers_ops_and_blocks(tmp_path):
    a = analysis_of(tmp_path, MODEL)
    text = MODEL.replace("|> dense(10)", "|> de")
    result = lsp.completion(a, text, at(text, "de", "|> de", offset=2))
    assert "dense" in labels(result) and "conv_bn" in labels(result)
    assert "for" not in labels(result) and "range" not in labels(result)
    dense = next(i for i in result.items if i.label == "dense")
    assert dense.detail == "dense(x, units, bias=true)"


def test_completion_elsewhere_offers_names_keywords_and_builtins(tmp_path):
    a = analysis_of(tmp_path, "const WIDTH = 8\n" + MODEL)
    text = a.text.replace("    for filters", "    \n    for filters")
    result = lsp.completion(a, text, T.Position(line=8, character=4))  # the new blank line
    names = labels(result)
    assert {"WIDTH", "image", "x", "for", "range", "channels", "conv2d", "conv_bn"} <= set(names)
    assert lsp.completion(a, text, T.Position(line=0, character=15)).items  # not in a comment
    commented = "# conv" + text
    assert lsp.completion(a, commented, T.Position(line=0, character=6)).items == []


def test_document_paths_of_uris():
    assert lsp.document_path("file:///tmp/a%20b/m.net") == "/tmp/a b/m.net"
    assert lsp.document_path("untitled:Untitled-1") == "<untitled:Untitled-1>"
    assert lsp.uri_of("<untitled:Untitled-1>") == "untitled:Untitled-1"


class FakeClient:
    """What `_Server` needs of pygls: the open documents, the encoding, publishing."""

    def __init__(self, encoding: str = "utf-16"):
        self.texts: dict[str, str] = {}
        self.published: list[T.PublishDiagnosticsParams] = []
        self.workspace = self
        self.position_encoding = T.PositionEncodingKind(encoding)
        self.client_capabilities = T.ClientCapabilities(
            workspace=T.WorkspaceClientCapabilities(
                inlay_hint=T.InlayHintWorkspaceClientCapabilities(refresh_support=True)
            )
        )
        self.refreshed = 0

    def get_text_document(self, uri: str):
        return type("Doc", (), {"source": self.texts[uri]})

    def text_document_publish_diagnostics(self, params: T.PublishDiagnosticsParams) -> None:
        self.published.append(params)

    def workspace_inlay_hint_refresh(self, params: None) -> None:
        self.refreshed += 1


def test_the_server_state_publishes_per_file_and_clears_what_is_fixed(tmp_path):
    client = FakeClient("utf-8")
    state = lsp.State(client)
    assert state.encoding == "utf-8"
    lib = write(tmp_path, "layers.net", "block bad(x) {\n    return x |> conv2d(8, 3)\n}\n")
    model = tmp_path / "model.net"
    text = 'import "layers.net"\nmodel m(x: f32[N, 4]) -> (y: f32[N, 4]) {\n    y = x |> bad\n}\n'
    client.texts[model.as_uri()] = text
    state.check(model.as_uri())
    got = {p.uri: len(p.diagnostics) for p in client.published}
    assert got == {model.as_uri(): 1, lib.as_uri(): 1}
    # the library opened too: its own check finds nothing, the model's error stays there
    client.texts[lib.as_uri()] = lib.read_text()
    client.published.clear()
    state.check(lib.as_uri())
    assert [(p.uri, len(p.diagnostics)) for p in client.published] == [(lib.as_uri(), 1)]
    # the model fixed: both files are cleared
    client.texts[model.as_uri()] = text.replace("|> bad", "|> relu")
    client.published.clear()
    state.check(model.as_uri())
    got = {p.uri: len(p.diagnostics) for p in client.published}
    assert got == {model.as_uri(): 0, lib.as_uri(): 0}


def test_saving_a_library_rechecks_the_documents_that_import_it(tmp_path):
    client = FakeClient()
    state = lsp.State(client)
    lib = write(tmp_path, "layers.net", "block head(x) {\n    return x |> dense(4)\n}\n")
    model = tmp_path / "model.net"
    text = 'import "layers.net"\nmodel m(x: f32[N, 4]) -> (y: f32[N, 4]) {\n    y = x |> head\n}\n'
    client.texts[model.as_uri()] = text
    client.texts[lib.as_uri()] = lib.read_text()
    state.check(model.as_uri())
    state.check(lib.as_uri())
    assert [len(p.diagnostics) for p in client.published] == [0, 0]
    lib.write_text(lib.read_text().replace("dense(4)", "dense(3)"))  # saved in the editor
    client.texts[lib.as_uri()] = lib.read_text()
    state.check(lib.as_uri())
    state.check_dependents(lib.as_uri())
    [error] = [d for p in client.published if p.uri == model.as_uri() for d in p.diagnostics]
    assert error.message == "output `y` is declared f32[N, 4], got f32[N, 3]"
    assert client.refreshed == 1


# --- the server -------------------------------------------------------------------------------


def test_importing_netc_imports_neither_the_server_nor_pygls():
    code = (
        "import sys, netc, netc.cli\n"
        "assert 'netc.lsp' not in sys.modules and 'lsprotocol' not in sys.modules\n"
        "import netc.lsp\n"
        "assert 'pygls' not in sys.modules\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_the_server_publishes_diagnostics_and_answers_hover_over_stdio(tmp_path):
    from pygls.lsp.client import BaseLanguageClient

    path = write(
        tmp_path, "bad.net", "model m(x: f32[N]) -> (y: f32[N, 1]) {\n    y = x |> dense(1)\n}\n"
    )
    uri = path.as_uri()

    async def session() -> tuple[T.PublishDiagnosticsParams, T.Hover | None, list]:
        client = BaseLanguageClient("netc-test", "0")
        published: asyncio.Queue[T.PublishDiagnosticsParams] = asyncio.Queue()

        @client.feature(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: T.PublishDiagnosticsParams) -> None:
            published.put_nowait(params)

        await client.start_io(sys.executable, "-c", "from netc.lsp import main; main()")
        try:
            capabilities = T.ClientCapabilities(
                general=T.GeneralClientCapabilities(position_encodings=["utf-8", "utf-16"])
            )
            init = await client.initialize_async(
                T.InitializeParams(capabilities=capabilities, root_uri=tmp_path.as_uri())
            )
            assert init.capabilities.position_encoding == "utf-8"
            client.initialized(T.InitializedParams())
            client.text_document_did_open(
                T.DidOpenTextDocumentParams(
                    text_document=T.TextDocumentItem(
                        uri=uri, language_id="netc", version=1, text=path.read_text()
                    )
                )
            )
            first = await asyncio.wait_for(published.get(), timeout=20)
            # fix it in the editor (unsaved): the error goes away
            client.text_document_did_change(
                T.DidChangeTextDocumentParams(
                    text_document=T.VersionedTextDocumentIdentifier(uri=uri, version=2),
                    content_changes=[
                        T.TextDocumentContentChangeWholeDocument(
                            text=path.read_text().replace("x |>", "x |> reshape((1,)) |>")
                        )
                    ],
                )
            )
            second = await asyncio.wait_for(published.get(), timeout=20)
            assert not second.diagnostics
            doc = T.TextDocumentIdentifier(uri=uri)
            hovered = await client.text_document_hover_async(
                T.HoverParams(text_document=doc, position=T.Position(line=1, character=30))
            )
            hints = await client.text_document_inlay_hint_async(
                T.InlayHintParams(
                    text_document=doc,
                    range=T.Range(
                        start=T.Position(line=0, character=0), end=T.Position(line=3, character=0)
                    ),
                )
            )
        finally:  # also after a failure, so that the server exits and the test cannot hang
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.shutdown_async(None), timeout=10)
            client.exit(None)
            await asyncio.wait_for(client.stop(), timeout=10)
        return first, hovered, hints

    first, hovered, hints = asyncio.run(session())
    assert first.uri == uri
    [d] = first.diagnostics
    assert d.message.startswith("dense needs an input of rank >= 2, got f32[N]")
    assert (d.range.start.line, d.range.start.character) == (1, 13)
    assert hovered is not None and "**`dense(1)`** : `f32[N, 1]`" in hovered.contents.value
    assert [h.label for h in hints] == [": f32[N, 1]"]
