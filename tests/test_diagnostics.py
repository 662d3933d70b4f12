"""Diagnostics' quality: the exact rendering (source line, caret, call chain, help), sorting,
no parser jargon, no cascades after a failed statement, and no repeats from a block's many calls.
The per-mistake expectations live in the malformed-input corpus, tests/bad/*.net."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import netc
from netc import Diagnostic, NetcError

BAD = Path(__file__).parent / "bad"
CORPUS = sorted(BAD.glob("*.net"))


def failure(text: str, path: str = "model.net") -> NetcError:
    """The NetcError that compiling `text` must raise (any other exception fails the test)."""
    with pytest.raises(NetcError) as info:
        netc.compile_text(text, path=path)
    return info.value


# --- rendering ----------------------------------------------------------------------------------


def test_render_shows_the_source_line_and_a_caret_under_the_whole_span() -> None:
    e = failure("model reg(x: f32[N]) -> (y: f32[N, 1]) {\n    y = x |> dense(1)\n}\n")
    assert e.render() == (
        "model.net:2:14: error: dense needs an input of rank >= 2, got f32[N]\n"
        "2 |     y = x |> dense(1)\n"
        "  |              ^^^^^^^^\n"
        "  = help: add `flatten` before it"
    )
    assert str(e) == e.render()


def test_render_names_every_call_site_of_an_error_inside_nested_blocks() -> None:
    e = failure(
        "block head(x, classes: int) {\n"
        "    return x |> conv2d(classes, 3)\n"
        "}\n"
        "\n"
        "block tower(x, classes: int) {\n"
        "    h = x |> dense(16) |> relu\n"
        "    return h |> head(classes)\n"
        "}\n"
        "\n"
        "model net(image: f32[N, 8]) -> (logits: f32[N, 10]) {\n"
        "    logits = image |> tower(10)\n"
        "}\n"
    )
    assert e.render() == (
        "model.net:2:17: error: conv2d needs a rank-4 input [N, H, W, C], got f32[N, 16]\n"
        "2 |     return x |> conv2d(classes, 3)\n"
        "  |                 ^^^^^^^^^^^^^^^^^^\n"
        "  = note: in block `head`, called at model.net:7:17\n"
        "  = note: in block `tower`, called at model.net:11:23"
    )


def test_render_of_a_span_over_several_lines_underlines_the_rest_of_its_first_line() -> None:
    e = failure(
        "block conv_bn(x, filters: int) {\n"
        "    y = x |> conv2d(filters, 3)\n"
        "}\n"
        "\n"
        "model cnn(image: f32[N, 8, 8, 3]) -> (out: f32[N, 6, 6, 8]) {\n"
        "    out = image |> conv_bn(8)\n"
        "}\n"
    )
    assert e.errors[0].render(e.sources) == (
        "model.net:1:1: error: block `conv_bn` returns nothing\n"
        "1 | block conv_bn(x, filters: int) {\n"
        "  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        "  = help: end it with `return <value>`"
    )


def test_render_of_a_warning() -> None:
    model = netc.compile_text(
        "model mlp(image: f32[N, 784]) -> (logits: f32[N, 10]) {\n"
        "    extra = image |> dense(64)\n"
        "    logits = image |> dense(10)\n"
        "}\n",
        path="model.net",
    )
    assert [w.render(model.sources) for w in model.warnings] == [
        "model.net:2:5: warning: value `extra` is never used\n"
        "2 |     extra = image |> dense(64)\n"
        "  |     ^^^^^"
    ]


def test_render_widens_the_gutter_for_two_digit_lines() -> None:
    e = failure("\n" * 9 + "model reg(x: f32[N]) -> (y: f32[N, 1]) {\n    y = x |> dense(1)\n}\n")
    assert e.render() == (
        "model.net:11:14: error: dense needs an input of rank >= 2, got f32[N]\n"
        "11 |     y = x |> dense(1)\n"
        "   |              ^^^^^^^^\n"
        "   = help: add `flatten` before it"
    )


def test_caret_stays_under_the_span_on_a_tab_indented_line() -> None:
    e = failure("model reg(x: f32[N]) -> (y: f32[N, 1]) {\n\ty = x |> dense(1)\n}\n")
    lines = e.render().splitlines()
    assert lines[1] == "2 |     y = x |> dense(1)"
    assert lines[2] == "  |              ^^^^^^^^", "the caret must sit under `dense(1)` as shown"


def test_an_error_in_an_imported_file_shows_that_files_line(tmp_path: Path) -> None:
    (tmp_path / "layers.net").write_text("block head(x) {\n    return x |> conv2d(8, 3)\n}\n")
    main = tmp_path / "main.net"
    main.write_text(
        'import "layers.net"\n'
        "\n"
        "model net(image: f32[N, 8]) -> (out: f32[N, 8]) {\n"
        "    out = image |> head\n"
        "}\n"
    )
    with pytest.raises(NetcError) as info:
        netc.compile(str(main))
    layers = tmp_path / "layers.net"
    assert info.value.render() == (
        f"{layers}:2:17: error: conv2d needs a rank-4 input [N, H, W, C], got f32[N, 8]\n"
        "2 |     return x |> conv2d(8, 3)\n"
        "  |                 ^^^^^^^^^^^^\n"
        f"  = note: in block `head`, called at {main}:4:20"
    )


# --- several errors -----------------------------------------------------------------------------


def test_errors_are_sorted_by_position_whatever_order_they_are_found_in() -> None:
    # Found in this order: the block's error (line 13, while running line 7), line 8, then the
    # train section (line 3, elaborated after the model).
    e = failure(
        "train {\n"
        "    loss = mse\n"
        "    optimizer = adma\n"
        "}\n"
        "\n"
        "model m(x: f32[N, 8]) -> (y: f32[N, 8]) {\n"
        "    a = x |> late\n"
        "    b = x |> dens(8)\n"
        "    y = x |> dense(8)\n"
        "}\n"
        "\n"
        "block late(x) {\n"
        "    return x |> conv2d(8, 3)\n"
        "}\n"
    )
    assert [(d.span.line, d.span.col, d.message) for d in e.diagnostics] == [
        (3, 17, "unknown optimizer `adma`"),
        (8, 14, "unknown op or block `dens`"),
        (13, 17, "conv2d needs a rank-4 input [N, H, W, C], got f32[N, 8]"),
    ]
    rendered = e.render()
    assert rendered.count("error:") == 3
    assert "\n\nmodel.net:8:14: error: unknown op or block `dens`\n" in rendered


def test_errors_in_two_files_are_sorted_by_file_then_line(tmp_path: Path) -> None:
    (tmp_path / "b_layers.net").write_text("block head(x) {\n    return x |> conv2d(8, 3)\n}\n")
    main = tmp_path / "a_main.net"
    main.write_text(
        'import "b_layers.net"\n'
        "\n"
        "model net(image: f32[N, 8]) -> (out: f32[N, 8]) {\n"
        "    h = image |> head\n"
        "    out = image |> dens(8)\n"
        "}\n"
    )
    with pytest.raises(NetcError) as info:
        netc.compile(str(main))
    assert [(Path(d.span.path).name, d.span.line) for d in info.value.diagnostics] == [
        ("a_main.net", 5),
        ("b_layers.net", 2),
    ]


def test_one_bad_statement_does_not_cascade_into_the_statements_that_use_its_result() -> None:
    e = failure(
        "block twice(x) {\n"
        "    return x |> dense(128) |> dense(128)\n"
        "}\n"
        "\n"
        "model m(image: f32[N, 784]) -> (logits: f32[N, 10], aux: f32[N, 64]) {\n"
        '    h = image |> dense(128, kernel_initializer="he_normal")\n'
        "    a, b = h |> split(2)\n"
        "    for i in range(2) {\n"
        "        h = h |> dense(128) |> relu\n"
        "    }\n"
        "    c = if channels(h) == 128 { h } else { h |> relu }\n"
        "    d = (h + a)[:, 0:10]\n"
        "    e = h |> twice\n"
        "    n = rank(d) + 1\n"
        "    logits = d |> dense(n)\n"
        "    aux = concat(e, b) |> dense(64)\n"
        "}\n"
    )
    assert [(d.span.line, d.severity, d.message) for d in e.diagnostics] == [
        (6, "error", "dense has no attribute `kernel_initializer`")
    ]


def test_a_failed_const_does_not_cascade() -> None:
    e = failure(
        "model mlp(image: f32[N, 784]) -> (logits: f32[N, 10]) {\n"
        "    const WIDTH = image |> dense(64)\n"
        "    logits = image |> dense(WIDTH) |> dense(10)\n"
        "}\n"
    )
    assert [d.span.line for d in e.diagnostics] == [2]


def test_a_block_called_ten_times_with_an_error_inside_reports_it_once() -> None:
    calls = "".join(f"    y{i} = x |> bad\n" for i in range(10))
    e = failure(
        "block bad(x) {\n"
        "    return x |> conv2d(8, 3)\n"
        "}\n"
        "\n"
        "model m(x: f32[N, 16]) -> (y: f32[N, 16]) {\n"
        f"{calls}"
        "    y = x\n"
        "}\n"
    )
    assert len(e.diagnostics) == 1
    assert e.render().count("error:") == 1
    (d,) = e.diagnostics
    assert (d.span.line, d.span.col) == (2, 17)
    assert [str(c.span) for c in d.calls] == ["model.net:6:15"]  # the first call


def test_a_block_called_in_a_loop_with_an_error_inside_reports_it_once() -> None:
    e = failure(
        "block bad(x) {\n"
        "    return x |> conv2d(8, 3)\n"
        "}\n"
        "\n"
        "model m(x: f32[N, 16]) -> (y: f32[N, 16]) {\n"
        "    for i in range(10) {\n"
        "        z = x |> bad\n"
        "    }\n"
        "    y = x\n"
        "}\n"
    )
    assert len(e.diagnostics) == 1


def test_runaway_recursion_reports_one_short_error() -> None:
    e = failure(
        "block tower(x, units: int) {\n"
        "    return x |> dense(units) |> relu |> tower(units)\n"
        "}\n"
        "\n"
        "model mlp(image: f32[N, 784]) -> (logits: f32[N, 10]) {\n"
        "    logits = image |> tower(64) |> dense(10)\n"
        "}\n"
    )
    assert [(d.severity, d.message) for d in e.diagnostics] == [
        ("error", "block `tower` calls itself 64 levels deep")
    ]
    lines = e.render().splitlines()
    assert len(lines) <= 10, "64 identical `called at` notes help nobody:\n" + "\n".join(lines)
    assert "called at model.net:6:23" in e.render()  # the call that started it


# --- wording over the whole corpus -------------------------------------------------------------


def _terminal_names() -> set[str]:
    import lark

    from netc.grammar import GRAMMAR_PATH

    parser = lark.Lark(GRAMMAR_PATH.read_text(encoding="utf-8"), parser="lalr", lexer="basic")
    return {t.name for t in parser.terminals} | {"$END"}


_TOKEN_NAME = re.compile(
    r"__ANON|\$END|\b(?:" + "|".join(sorted(map(re.escape, _terminal_names() - {"$END"}))) + r")\b"
)


def _jargon(text: str) -> bool:
    """Whether `text` names a Lark token (RPAR, __ANON_0, $END) outside `quoted code`."""
    return bool(_TOKEN_NAME.search(re.sub(r"`[^`]*`", "``", text)))


def _texts(e: NetcError) -> list[str]:
    out = []
    for d in e.diagnostics:
        out += [d.message, d.hint or ""] + list(d.notes)
    return out


def _corpus_failures(monkeypatch) -> list[tuple[str, NetcError]]:
    """The NetcError of every corpus file that fails (a file of warnings only compiles); any
    other exception fails the test, naming the file."""
    monkeypatch.chdir(BAD)
    out = []
    for path in CORPUS:
        try:
            netc.compile(path.name)
        except NetcError as e:
            out.append((path.name, e))
        except Exception as e:  # noqa: BLE001 -- a crash must not drop the file from the check
            pytest.fail(f"{path.name}: netc raised {type(e).__name__}: {e}")
    return out


def test_no_parser_token_names_in_any_corpus_message(monkeypatch) -> None:
    assert len(_corpus_failures(monkeypatch)) >= 100  # every file that states an error
    bad = [
        (name, text)
        for name, e in _corpus_failures(monkeypatch)
        for text in _texts(e)
        if _jargon(text)
    ]
    assert not bad, bad


def test_corpus_messages_are_lower_case_sentences_without_a_final_period(monkeypatch) -> None:
    bad = [
        (name, d.message)
        for name, e in _corpus_failures(monkeypatch)
        for d in e.diagnostics
        if d.message[:1].isupper() or d.message.endswith(".")
    ]
    assert not bad, bad


_GOOD = """import "lib/layers.net"

const WIDTH = 16

block residual(x, filters: int, stride: int = 1) {
    y = x |> conv2d(filters, 3, stride=stride, padding="same") |> relu
    skip = if stride == 1 and channels(x) == filters { x }
           else { x |> conv2d(filters, 1, stride=stride) }
    return relu(y + skip)
}

model net(image: f32[N, 16, 16, 3], extra: f32[N, 4]) -> (logits: f32[N, 10]) {
    x = image |> conv_bn(WIDTH) |> maxpool(2)
    for filters, stride in [(16, 1), (32, 2)] {
        x = x |> residual(filters, stride=stride)
    }
    h = concat(x |> global_avgpool, extra)
    logits = h[:, 0:36] |> dense(10, name="head")
}

train {
    loss = cross_entropy(from_logits=true)
    optimizer = adam(1e-3)
    metrics = [accuracy]
    epochs = 2
}
"""


# What is true of each prefix and each one-token deletion of _GOOD: the few that are whole
# programs compile; every other one fails, each of its errors in plain words and located where
# a reader would look. For a cut program that is the line where the text stops, or the bracket
# the cut leaves open; for a deletion, its own line, the line of one of the next two tokens
# (what the parser was reading), or a line that uses a name the deleted token's line declares
# (its type changed). A bracket error points at a bracket, of the kind it names, that is
# unbalanced in the text. An error inside an imported block counts at the line that called it.

_OPEN = {"(": ")", "[": "]", "{": "}"}


def _unbalanced(text: str) -> set[tuple[int, int]]:
    """(line, col) of every bracket of `text` that is never closed, closes nothing, or closes
    a bracket of another kind; strings and comments skipped."""
    stack: list[tuple[str, int, int]] = []
    bad = set()
    for n, line in enumerate(text.split("\n"), start=1):
        code = re.sub(r'"(?:[^"\\\n]|\\.)*"?|#.*', lambda m: " " * len(m[0]), line)
        for col, c in enumerate(code, start=1):
            if c in _OPEN:
                stack.append((c, n, col))
            elif c in _OPEN.values():
                if stack and _OPEN[stack[-1][0]] == c:
                    stack.pop()
                else:
                    bad.add((n, col))
                    if stack:
                        bad.add(stack[-1][1:])
    return bad | {(n, col) for _, n, col in stack}


def _strip_comments(text: str) -> str:
    """`text` with comments blanked (same length)."""
    return re.sub(r"#.*", lambda m: " " * len(m[0]), text)


def _declared(line: str) -> set[str]:
    """The names a line of _GOOD declares: assignment targets and a signature's parameters."""
    names = set(re.findall(r"(\w+)\s*:\s*(?:f32|int|str|float)\b", line))
    m = re.match(r"\s*(\w+(?:\s*,\s*\w+)*)\s*=[^=]", line)
    return names | (set(re.findall(r"\w+", m[1])) if m else set())


def _failure_in_plain_words(text: str) -> NetcError:
    """The NetcError that compiling `text` as sweep.net raises; fails on any other outcome."""
    try:
        netc.compile_text(text, path="sweep.net")
    except NetcError as e:
        jargon = [t for t in _texts(e) if _jargon(t)]
        assert not jargon, (jargon, text)
        assert e.errors, text
        return e
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"{type(e).__name__}: {e} for the source:\n{text}")
    pytest.fail(f"this source compiled, but it is not a whole program:\n{text}")


def _where(d: Diagnostic) -> list[tuple[int, int]]:
    """The (line, col) in sweep.net of a diagnostic: its own, or its block's call sites."""
    spans = [d.span] + [c.span for c in d.calls]
    return [(s.line, s.col) for s in spans if s is not None and s.path == "sweep.net"]


def _bracket_error_is_right(d: Diagnostic, text: str) -> bool:
    """A bracket error sits on a bracket, of the kind it names first, that is unbalanced."""
    assert d.span is not None
    bracket = re.match(r"(?:unmatched )?`(.)`", d.message)
    line = text.split("\n")[d.span.line - 1]
    return (
        bracket is not None
        and line[d.span.col - 1 : d.span.col] == bracket[1]
        and (d.span.line, d.span.col) in _unbalanced(text)
    )


def _is_bracket_error(d: Diagnostic) -> bool:
    return bool(re.fullmatch(r"`.` is never closed|unmatched `.`|`.` does not match .*", d.message))


def _compiles(text: str) -> bool:
    try:
        netc.compile_text(text, path="sweep.net")
    except NetcError:
        return False
    return True


def test_the_sweep_program_compiles(monkeypatch) -> None:
    monkeypatch.chdir(BAD)
    netc.compile_text(_GOOD, path="sweep.net")


def test_the_bracket_checker_here_finds_what_is_unbalanced() -> None:
    assert _unbalanced("f(x[1)]\n{ ( }") == {(1, 2), (1, 4), (1, 6), (2, 1), (2, 3), (2, 5)}
    assert _unbalanced('a = f("(", [1, 2]) # (') == set()


_MODEL_END = _GOOD.index("\n\ntrain {")  # the model's closing brace ends here


def test_every_prefix_of_a_program_fails_where_the_text_stops(monkeypatch) -> None:
    monkeypatch.chdir(BAD)  # for the import of lib/layers.net
    whole = []
    for end in range(len(_GOOD)):
        text = _GOOD[:end]
        if text.rstrip() in (_GOOD[:_MODEL_END], _GOOD.rstrip()):  # the model is complete
            assert _compiles(text), text
            whole.append(end)
            continue
        e = _failure_in_plain_words(text)
        last = len(text.rstrip().split("\n"))  # the line where the text stops
        if [(d.span, d.message) for d in e.diagnostics] == [(None, "sweep.net defines no model")]:
            assert not re.search(r"\bmodel\b", text), text  # the one error about the whole file
            continue
        for d in e.errors:
            assert d.span is not None and d.span.path == "sweep.net", (d.message, text)
            if _is_bracket_error(d):
                assert _bracket_error_is_right(d, text), (d.span, d.message, text)
            else:
                assert d.span.line == last, (d.span, d.message, text)
    assert len(whole) == 4 and len(_GOOD) - len(whole) == 754


def _deletions() -> list[re.Match[str]]:
    return list(re.finditer(r"\w+|\|>|->|==|\S", _GOOD))


# The deletions that leave a program, as (line, deleted token, the line as it becomes).
WHOLE_AFTER_DELETION = {
    (9, "relu", "    return (y + skip)"),
    (13, "2", "    x = image |> conv_bn(WIDTH) |> maxpool()"),
    (17, "extra", "    h = concat(x |> global_avgpool, )"),
    (18, "0", '    logits = h[:, :36] |> dense(10, name="head")'),
    (18, "36", '    logits = h[:, 0:] |> dense(10, name="head")'),
    (23, "-", "    optimizer = adam(1e3)"),
    (24, "accuracy", "    metrics = []"),
}


def test_every_program_with_one_token_deleted_fails_at_a_line_it_affects(monkeypatch) -> None:
    monkeypatch.chdir(BAD)
    lines = _GOOD.split("\n")
    whole = set()
    for m in _deletions():
        text = _GOOD[: m.start()] + _GOOD[m.end() :]
        at = _GOOD.count("\n", 0, m.start()) + 1
        if _compiles(text):
            whole.add((at, m[0], text.split("\n")[at - 1]))
            continue
        e = _failure_in_plain_words(text)
        # the parser fails at one of the next two tokens (statements need no separator, so
        # `y = f(x) relu` + newline + `skip = ...` fails at `skip`)
        after = [t.start() for t in re.finditer(r"\w+|\S", _strip_comments(text[m.start() :]))]
        next_lines = {text.count("\n", 0, m.start() + a) + 1 for a in after[:2]}
        users = {
            n
            for n, line in enumerate(lines, start=1)
            if any(re.search(rf"\b{name}\b", line) for name in _declared(lines[at - 1]))
        }
        plausible = {at} | next_lines | users
        for d in e.errors:
            where = _where(d)
            assert where, (str(d), text)
            if _is_bracket_error(d):
                assert _bracket_error_is_right(d, text), (str(d), m[0], at)
            else:
                assert any(line in plausible for line, _ in where), (str(d), m[0], at)
    assert whole == WHOLE_AFTER_DELETION
    assert len(_deletions()) - len(whole) == 223  # adam(-3) among them: a rate must be > 0
