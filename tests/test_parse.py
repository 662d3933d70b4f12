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


def test_an_f_string_holds_text_and_expressions_at_their_places():
    e = parse('const a = f"conv{stage + 1}_b{{{i}}}\\"x"', "t.net").items[0].value
    assert isinstance(e, ast.FString)
    text1, stage, text2, i, text3 = e.parts
    assert (text1, text2, text3) == ("conv", "_b{", '}"x')
    assert stage == ast.BinOp(None, "+", ast.Name(None, "stage"), ast.Literal(None, 1))
    assert (stage.span.line, stage.span.col, stage.span.end_col) == (1, 18, 27)
    assert (i.span.line, i.span.col) == (1, 33)
    assert format_expr(e) == 'f"conv{stage + 1}_b{{{i}}}\\"x"'
    assert parse('const a = f""', "t.net").items[0].value.parts == ("",)
    assert parse('const a = f"{x}"', "t.net").items[0].value.parts == (ast.Name(None, "x"),)
    nested = parse('const a = f"{if c { 1 } else { 2 }}"', "t.net").items[0].value
    assert isinstance(nested.parts[0], ast.IfExpr)
    assert parse("const f = 1\nconst a = f", "t.net").items[1].value == ast.Name(None, "f")


def test_an_f_string_on_a_later_line_points_into_that_line():
    e = parse('\n\nmodel m(x: f32[N]) -> (y: f32[N]) {\n  y = x |> relu(name=f"r{k}")\n}', "t.net")
    call = e.items[0].body[0].value
    k = dict(call.kwargs)["name"].parts[1]
    assert (k.span.line, k.span.col) == (4, 26)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('const a = f"{x +}"', "1:17: unexpected `}` in an f-string; expected an expression"),
        (
            'const a = f"{x y}"',
            "1:16: unexpected `y` after the expression in an f-string's `{...}` | a `{...}` "
            "holds one expression",
        ),
        (
            'const a = f"a}b"',
            "1:14: a single `}` in an f-string | write `}}` for a brace in the text",
        ),
        (
            'const a = f"{x"',
            "1:13: `{` in an f-string is never closed | close it with `}`, or write `{{` for a "
            "brace in the text",
        ),
        ('const a = f"{ }"', "1:13: empty `{}` in an f-string | put a value in it"),
        ('const a = f"{x\\n}"', "1:15: an f-string's `{...}` cannot hold a backslash"),
        ('const a = f"{(}"', "1:15: unexpected `}` in an f-string; expected an expression or `)`"),
        (
            'const a = f"{x = 1}"',
            "1:16: unexpected `=` after an expression | compare with `==`; "
            "assignments stand on their own",
        ),
    ],
)
def test_f_string_mistakes_are_located_in_the_line(text, expected):
    assert first_error(text) == expected


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
        (
            "block b(x) { y = if x { 1 } }",
            "1:18: an `if` used as a value needs an `else` | add `else { ... }` with the "
            "value otherwise",
        ),
        ("block b(x) { y = if x { 1 } { 2 } }", "1:29: unexpected `{`; expected `else`"),
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


def _fstring(items: list) -> ast.FString:
    """Parts as the parser gives them: adjacent texts merged, no empty text but in `f""`."""
    parts: list = []
    for item in items:
        if isinstance(item, str) and parts and isinstance(parts[-1], str):
            parts[-1] += item
        elif item != "":
            parts.append(item)
    return ast.FString(None, tuple(parts) or ("",))


_fstrings = st.lists(
    st.one_of(st.text('ab{}"\\_ ', max_size=3), _names.map(lambda n: ast.Name(None, n))),
    max_size=4,
).map(_fstring)
_exprs = st.recursive(st.one_of(_leaf, _fstrings), _extend, max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(_exprs)
def test_printed_expressions_parse_back_to_the_same_tree(e):
    text = f"const a = {format_expr(e)}"
    back = parse(text, "t.net").items[0].value
    assert back == e, text
