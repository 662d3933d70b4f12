"""The parser: syntax tree shape, spans, syntax errors in words, and print/parse round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netc import syntax as ast
from netc.parse import parse
from netc.source import NetcError
from netc.syntax import format_expr, format_module

EXAMPLES = sorted(Path(__file__).parent.parent.joinpath("examples").glob("*.net"))


def first_error(text: str) -> str:
    with pytest.raises(NetcError) as info:
        parse(text, "t.net")
    d = info.value.diagnostics[0]
    return f"{d.span.line}:{d.span.col}: {d.message}" + (f" | {d.hint}" if d.hint else "")


def test_pipe_becomes_a_call_with_the_piped_value_first():
    m = parse("const a = x |> conv2d(64, 3, stride=2) |> relu", "t.net")
    e = m.items[0].value
    assert isinstance(e, ast.Call) and e.func == "relu" and e.piped
    inner = e.args[0]
    assert inner.func == "conv2d" and inner.args[0] == ast.Name(None, "x")
    assert inner.kwargs == (("stride", ast.Literal(None, 2)),)


def test_pipe_span_covers_the_callee_not_the_piped_value():
    m = parse("const a = x |> dense(10)", "t.net")
    s = m.items[0].value.span
    assert (s.line, s.col, s.end_col) == (1, 16, 25)


def test_operator_precedence_matches_python():
    m = parse("const a = 1 + 2 * 3 ** 2 - -4", "t.net")
    assert format_expr(m.items[0].value) == "1 + 2 * 3 ** 2 - -4"
    tree = m.items[0].value
    assert tree.op == "-" and tree.left.op == "+" and tree.left.right.op == "*"


def test_pipe_binds_looser_than_arithmetic():
    e = parse("const a = x + y |> relu", "t.net").items[0].value
    assert e.func == "relu" and e.args[0].op == "+"


def test_if_expression_and_else_if_statement():
    m = parse(
        "block b(x, s: int) { if s == 1 { y = x } else if s == 2 { y = x } "
        "else { y = x } return if s > 1 { y } else { x } }",
        "t.net",
    )
    body = m.items[0].body
    assert isinstance(body[0], ast.If) and isinstance(body[0].else_[0], ast.If)
    assert isinstance(body[1].values[0], ast.IfExpr)


def test_indexing_with_slices_and_ellipsis():
    e = parse("const a = x[:, 1:3, ::2, ..., -1]", "t.net").items[0].value
    assert isinstance(e, ast.Index) and len(e.subscripts) == 5
    assert isinstance(e.subscripts[3], ast.EllipsisExpr)
    assert format_expr(e) == "x[:, 1:3, ::2, ..., -1]"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("model m( { }", "1:8: `(` is never closed | add a `)` where it should end"),
        (
            "const a = (1, 2]",
            "1:16: `]` does not match the `(` at line 1, column 11 | close it with `)`",
        ),
        ("const a = 1 }", "1:13: unmatched `}`"),
        ("const a = 'x'", "1:11: unexpected character `'` | strings use double quotes"),
        (
            "const if = 3",
            "1:7: unexpected keyword `if`; expected a name | `if` is a keyword; "
            "choose another name",
        ),
        (
            "const x = a = 3",
            "1:13: unexpected `=` after an expression | compare with `==`; "
            "assignments stand on their own",
        ),
        ("const a = 1 +", "1:14: unexpected end of file; expected an expression"),
        ("const a = f(k=1, 2)", "1:18: a positional argument cannot follow a keyword argument"),
        ("block b(x) { y = if x { 1 } }", "1:29: unexpected `}`; expected `else`"),
    ],
)
def test_syntax_errors_are_in_words(text, expected):
    assert first_error(text) == expected


def test_lark_names_never_reach_the_user():
    for text in [
        "model",
        "model m(x) -> (",
        "block b(x) { return }",
        "const a = [1, 2,, 3]",
        "train { loss }",
        "model m(x: f32[N]) -> (y: f32[N]) { y = x |> }",
    ]:
        with pytest.raises(NetcError) as info:
            parse(text, "t.net")
        msg = info.value.render()
        for token in ("RPAR", "LPAR", "__ANON", "$END", "LBRACE", "RBRACE", "NAME", "Token("):
            assert token not in msg, (text, msg)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_round_trip_through_the_printer(path):
    m = parse(path.read_text(), str(path))
    assert parse(format_module(m), str(path)) == m


# --- property: printing then parsing any expression gives the same tree ----------------------

_names = st.sampled_from(["x", "y", "filters", "N", "conv_1"])
_leaf = st.one_of(
    _names.map(lambda n: ast.Name(None, n)),
    st.integers(0, 10**6).map(lambda v: ast.Literal(None, v)),
    st.floats(0, 1e6, allow_nan=False).map(lambda v: ast.Literal(None, v)),
    st.sampled_from([True, False, None]).map(lambda v: ast.Literal(None, v)),
    st.text('abc xyz"\\', max_size=5).map(lambda v: ast.Literal(None, v)),
)


def _extend(children):
    ops = st.sampled_from(["+", "-", "*", "/", "//", "%", "@", "**", "==", "<", "and", "or"])
    return st.one_of(
        st.tuples(ops, children, children).map(lambda t: ast.BinOp(None, *t)),
        st.tuples(st.sampled_from(["-", "not"]), children).map(lambda t: ast.UnaryOp(None, *t)),
        st.lists(children, max_size=3).map(lambda v: ast.ListExpr(None, tuple(v))),
        st.lists(children, max_size=3).map(lambda v: ast.TupleExpr(None, tuple(v))),
        st.tuples(
            _names,
            st.lists(children, max_size=2),
            st.lists(st.tuples(_names, children), max_size=2, unique_by=lambda kv: kv[0]),
        ).map(lambda t: ast.Call(None, t[0], tuple(t[1]), tuple(t[2]))),
        st.tuples(children, _names, st.lists(children, max_size=2)).map(
            lambda t: ast.Call(None, t[1], (t[0], *t[2]), (), True)
        ),
        st.tuples(children, children, children).map(lambda t: ast.IfExpr(None, *t)),
        st.tuples(children, st.lists(children, min_size=1, max_size=2)).map(
            lambda t: ast.Index(None, t[0], tuple(t[1]))
        ),
    )


_exprs = st.recursive(_leaf, _extend, max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(_exprs)
def test_printed_expressions_parse_back_to_the_same_tree(e):
    text = f"const a = {format_expr(e)}"
    back = parse(text, "t.net").items[0].value
    assert back == e, text
