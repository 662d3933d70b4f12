"""The hand-written reader builds exactly the tree Lark builds (spans included) for every file
Lark accepts, and gives up on every file Lark refuses, so that Lark words the error."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netc import NetcError, reader
from netc.parse import parse, parse_with_lark

ROOT = Path(__file__).resolve().parent.parent


def flat(x: Any) -> Any:
    """A syntax tree as nested tuples, spans included (the dataclasses compare without them)."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return (type(x).__name__,) + tuple(
            (f.name, flat(getattr(x, f.name))) for f in dataclasses.fields(x)
        )
    if isinstance(x, tuple):
        return tuple(flat(i) for i in x)
    return x


def both(text: str) -> tuple[Any, Any]:
    """(Lark's tree or "error", the reader's tree or "error")."""
    try:
        lark_tree = flat(parse_with_lark(text, "t.net"))
    except NetcError:
        lark_tree = "error"
    try:
        ours = flat(reader.read(text, "t.net"))
    except reader.Unreadable:
        ours = "error"
    return lark_tree, ours


def sources() -> list[tuple[str, str]]:
    """Every .net text in the repository: examples, the bad corpus, the docs' code blocks."""
    out = [
        (str(p.relative_to(ROOT)), p.read_text(encoding="utf-8", errors="replace"))
        for p in sorted([*ROOT.glob("examples/*.net"), *ROOT.glob("tests/bad/**/*.net")])
    ]
    for doc in sorted([*ROOT.glob("docs/*.md"), ROOT / "README.md"]):
        blocks = re.findall(r"```(?:net|text)\n(.*?)```", doc.read_text(), re.S)
        out += [(f"{doc.name}#{i}", b) for i, b in enumerate(blocks)]
    return out


SOURCES = sources()


@pytest.mark.parametrize("name, text", SOURCES, ids=[n for n, _ in SOURCES])
def test_the_reader_and_lark_agree_on_every_source_in_the_repository(name: str, text: str):
    lark_tree, ours = both(text)
    assert ours == lark_tree


def test_the_repository_has_sources_of_both_kinds():
    kinds = [both(t)[0] == "error" for _, t in SOURCES]
    assert kinds.count(False) > 100 and kinds.count(True) > 20


EDITS = [
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "=",
    "+",
    "-",
    "*",
    "**",
    "/",
    "//",
    "%",
    "@",
    "|>",
    "->",
    "==",
    "<",
    "if",
    "else",
    "not",
    "and",
    "or",
    "x",
    "1",
    "2.5",
    '"s"',
    'f"a{x}b"',
    "...",
    "return",
    "for",
    "in",
    "const",
    "true",
    "none",
    "\n",
    ".",
    "1e3",
    ".5",
    "f",
    '"',
    "#",
]
CORPUS = [t for _, t in SOURCES if both(t)[0] != "error"]


@st.composite
def mutated(draw: Any) -> str:
    """A window of a real source with a few tokens inserted or characters deleted."""
    lines = draw(st.sampled_from(CORPUS)).split("\n")
    start = draw(st.integers(0, len(lines) - 1))
    text = "\n".join(lines[start : start + draw(st.integers(1, 10))])
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:at] + draw(st.sampled_from(EDITS)) + text[at:]
        else:
            text = text[:at] + text[at + draw(st.integers(1, 4)) :]
    if draw(st.booleans()):  # as an expression in a model, where most of the grammar is
        text = "model m(x: f32[N, 3]) -> (y: f32[N, 3]) {\n    y = " + text[:80] + "\n}\n"
    return text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_the_reader_and_lark_agree_on_mutated_sources(text: str):
    lark_tree, ours = both(text)
    assert ours == lark_tree


def test_a_syntax_error_is_worded_by_lark():
    text = "model m(x: f32[N, 3]) -> (y: f32[N, 3]) {\n    y = x |> relu(x, +)\n}\n"
    with pytest.raises(NetcError) as ours:
        parse(text, "t.net")
    with pytest.raises(NetcError) as lark_only:
        parse_with_lark(text, "t.net")
    assert ours.value.render() == lark_only.value.render()
    assert ours.value.diagnostics[0].message == "unexpected `+`; expected an expression or `)`"


def test_a_parenthesized_operand_widens_its_parents_span_as_lark_does():
    (model,) = parse("model m(x: f32[N]) -> (y: f32[N]) {\n y = (x) + ((x))\n}\n", "t.net").items
    value = model.body[0].value
    assert (value.span.col, value.span.end_col) == (6, 17)  # from `(` to the last `)`
    assert (value.left.span.col, value.right.span.col) == (7, 14)  # the names themselves
