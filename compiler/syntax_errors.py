"""Lark's parser of the grammar (`parser`), and its syntax errors in plain words: where a
file does not parse, the error is moved to the place to fix and worded for a person (parse.py
asks; recover.py finds the errors after the first)."""

from __future__ import annotations

import re
from functools import cache
from typing import Any, NamedTuple

from . import reader
from .limits import Limits
from .reader import DIRECTION_CONTROLS, KEYWORDS
from .source import NetcError, Span, char_name, error, is_invisible


@cache
def lark_parser() -> Any:
    import lark

    from netc.grammar import GRAMMAR_PATH

    return lark.Lark(
        GRAMMAR_PATH.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="basic",
        propagate_positions=True,
        maybe_placeholders=True,
        start=["start", "expr"],  # `expr`: the expressions inside an f-string
    )


# --- syntax errors in human words -------------------------------------------------------------
#
# Each syntax error is reported at the place to fix (recover.py finds the ones after the
# first: it sets the first's statement aside and parses again). Newlines carry no
# meaning in the grammar, so the parser notices an unfinished line only at the next line's
# first token; the words below move the error back to where the user left off: the dangling
# operator, the bracket never closed, the string never ended, the `if` without its `else`.


def first_error(a: NetcError | None, b: NetcError) -> NetcError:
    """The error that comes first in the file (`a` on a tie): the other may be its knock-on."""
    if a is None:
        return b
    sa, sb = a.diagnostics[0].span, b.diagnostics[0].span
    if sa is None or sb is None or (sa.line, sa.col) <= (sb.line, sb.col):
        return a
    return b


def _position(text: str, offset: int, path: str, width: int = 1) -> Span:
    """The span of `width` characters at `offset` of `text`."""
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Span(path, line, col, line, col + width)


def check_direction_controls(text: str, path: str) -> None:
    """A text-direction control anywhere, comments and strings included: it makes an editor
    show the code in another order than the compiler reads it (CVE-2021-42574)."""
    if text.isascii():
        return
    m = DIRECTION_CONTROLS.search(text)
    if m is not None:
        raise error(
            f"text-direction control {char_name(m.group())} in the source",
            _position(text, m.start(), path),
            hint="it changes the order in which the line is shown, so the code can read "
            "differently from how it compiles; delete it",
        )


_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {v: k for k, v in _OPEN.items()}


def bracket_error(text: str, path: str) -> NetcError | None:
    """An unterminated string or an unbalanced bracket, reported where it starts: the parser
    would notice either only lines later, at whatever follows."""
    stack: list[tuple[str, int, int]] = []
    line, col, i, n = 1, 1, 0, len(text)
    string: int | None = None  # the column where the string being read starts
    in_comment = False
    while i < n:
        c = text[i]
        if c == "\n":
            if string is not None:
                return error(
                    "unterminated string",
                    Span(path, line, string, line, col),
                    hint='close it with `"` on the same line',
                )
            line, col, in_comment = line + 1, 1, False
            i += 1
            continue
        if in_comment:
            pass
        elif string is not None:
            if c == "\\" and i + 1 < n and text[i + 1] != "\n":
                i, col = i + 1, col + 1  # an escaped character, `\"` included
            elif c == '"':
                string = None
        elif c == "#":
            in_comment = True
        elif c == '"':
            prefixed = i > 0 and text[i - 1] == "f" and not _name_char(text, i - 2)
            string = col - 1 if prefixed else col
        elif c in _OPEN:
            stack.append((c, line, col))
        elif c in _CLOSE:
            at = Span(path, line, col, line, col + 1)
            opener = _CLOSE[c]
            deeper = [k for k, (o, _, _) in enumerate(stack) if o == opener]
            if not stack:
                return error(f"unmatched `{c}`", at)
            if stack[-1][0] == opener:
                stack.pop()
            elif deeper and (c == "}" or stack[-1][1] != line):
                # `c` closes an outer bracket: the ones opened inside it never close (on one
                # line, `f(x[1)`, the closer is rather a typo: the last branch says so)
                o, ol, oc = stack[deeper[-1] + 1]
                return error(
                    f"`{o}` is never closed",
                    Span(path, ol, oc, ol, oc + 1),
                    hint=f"add a `{_OPEN[o]}` where it should end",
                )
            elif stack[-1][0] == "{":  # a `)` or `]` in a body with none open: a stray one
                return error(f"unmatched `{c}`", at)
            else:
                o, ol, oc = stack[-1]
                return error(
                    f"`{c}` does not match the `{o}` at line {ol}, column {oc}",
                    at,
                    hint=f"close it with `{_OPEN[o]}`",
                )
        i, col = i + 1, col + 1
    if string is not None:
        return error(
            "unterminated string",
            Span(path, line, string, line, col),
            hint='close it with `"` on the same line',
        )
    if stack:
        o, ol, oc = stack[-1]
        return error(
            f"`{o}` is never closed",
            Span(path, ol, oc, ol, oc + 1),
            hint=f"add a `{_OPEN[o]}` where it should end",
        )
    return None


def _name_char(text: str, i: int) -> bool:
    return i >= 0 and (text[i].isalnum() or text[i] == "_")


_TERMINAL_WORDS = {
    "NAME": "a name",
    "INT": "a number",
    "FLOAT": "a number",
    "STRING": "a string",
    "FSTRING": "a string",
    "COMPARE": "a comparison",
    "$END": "the end of the file",
}
_EXPR_START = {
    "NAME",
    "INT",
    "FLOAT",
    "STRING",
    "FSTRING",
    "LPAR",
    "LSQB",
    "MINUS",
    "TRUE",
    "FALSE",
    "NONE",
    "NOT",
    "IF",
}
# Characters that are no token, and what the user likely meant by them.
_CHARACTER_HINTS = {
    "'": "strings use double quotes",
    ";": "statements need no `;` between them: delete it",
    ".": "netc has no attributes or methods: pass the value instead, `f(x)` or `x |> f`",
    "!": "write `not` for negation (`!=` compares)",
    "&": "write `and`",
    "|": "write `or` (`|>` is the pipe)",
    "^": "write `**` for a power",
    "?": "write `if c { a } else { b }` to choose a value",
    "~": "write `not` for negation",
    "\\": "an expression may run over several lines without `\\`",
    "$": None,
    "`": None,
}
# Look-alikes that editors and word processors put in place of ASCII: the ASCII meant.
_CONFUSABLES = {
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2033": '"',
    "\uff02": '"',
    "\u2018": "'",
    "\u2019": "'",
    "\u2212": "-",
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u00d7": "*",
    "\u2217": "*",
    "\u00f7": "/",
    "\u2215": "/",
    "\u2192": "->",
    "\u2264": "<=",
    "\u2265": ">=",
    "\u2260": "!=",
    "\u2026": "...",
    "\u037e": ";",
    "\uff08": "(",
    "\uff09": ")",
    "\uff3b": "[",
    "\uff3d": "]",
    "\uff5b": "{",
    "\uff5d": "}",
    "\uff0c": ",",
    "\uff1a": ":",
    "\uff1d": "=",
    "\uff0b": "+",
}


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    term = next((t for t in lark_parser().terminals if t.name == name), None)
    if term is not None and term.pattern.type == "str":
        return f"`{term.pattern.value}`"
    return name.lower()


def expected_words(names: set[str]) -> str:
    names = {n for n in names if not n.startswith("__ANON")} or names
    names = names - {"$END"} or names  # "or the end of the file" never helps
    if len(names & _EXPR_START) >= 5:
        rest = sorted(_describe_terminal(n) for n in names - _EXPR_START)
        return "an expression" + (f" or {', '.join(rest[:3])}" if 0 < len(rest) <= 3 else "")
    words = sorted({_describe_terminal(n) for n in names})
    if len(words) > 5:
        return ", ".join(words[:5]) + ", ..."
    return " or ".join(words)


def _unexpected_character(e: Any, text: str, path: str) -> NetcError:
    """A character that starts no token: named by code point when it cannot be seen."""
    pos = e.pos_in_stream or 0
    ch = text[pos] if pos < len(text) else "?"
    span = _position(text, pos, path)
    if ch == '"':  # STRING did not match: no closing quote on this line
        return error("unterminated string", span, hint='close it with `"` on the same line')
    if ch.isascii() and ch.isprintable():
        return error(f"unexpected character `{ch}`", span, hint=_CHARACTER_HINTS.get(ch))
    meant = _CONFUSABLES.get(ch)
    if is_invisible(ch):
        what, looks = char_name(ch), "a space" if ch.isspace() else "nothing"
    else:  # `“` (U+201C, left double quotation mark)
        what, looks = f"`{ch}` ({char_name(ch).replace(' (', ', ', 1).rstrip(')')})", None
    if meant is not None:
        hint = f"{char_name(ch)} looks like `{meant}` but is not; write `{meant}`"
        if meant == "'":
            hint += ', or rather `"`: strings use double quotes'
    elif looks == "a space":
        hint = f"{char_name(ch)} looks like a space but is not; write a space"
    elif looks == "nothing":
        hint = f"{char_name(ch)} cannot be seen; delete it"
    elif ch.isalpha() or ch.isdigit():
        hint = "names are made of ASCII letters, digits and `_`"
    else:
        hint = None
    return error(f"unexpected character {what}", span, hint=hint)


def syntax_error(e: Any, text: str, path: str, start: str = "start") -> NetcError:
    import lark

    if isinstance(e, lark.exceptions.UnexpectedCharacters):
        return _unexpected_character(e, text, path)
    eof = isinstance(e, lark.exceptions.UnexpectedEOF) or e.token.type == "$END"
    context = _Context(text, path, start, e, None if eof else e.token)
    expected = set(e.expected)
    if eof:
        last = context.tokens[-1] if context.tokens else None
        if expected == {"ELSE"} and last is not None:
            return context.if_without_else(len(context.tokens) - 1)
        line, col = (last.end_line, last.end_column) if last is not None else (1, 1)
        return error(
            f"unexpected end of file; expected {expected_words(expected)}",
            Span(path, line, col, line, col + 1),
        )
    tok = e.token
    negative = re.match(r"-[ \t]*\d+", text[tok.start_pos :]) if tok.type == "MINUS" else None
    if negative is not None and expected == {"INT", "NAME", "RSQB"}:  # `f32[N, -784]`
        return error(
            f"a dim must be >= 1, got -{negative.group()[1:].strip()}",
            Span(path, tok.line, tok.column, tok.line, tok.column + len(negative.group())),
        )
    found = context.misplaced(tok, expected) if start == "start" else None
    if found is not None:
        return found
    shown = str(tok)
    what = f"keyword `{shown}`" if shown in KEYWORDS else f"`{shown}`"
    span = Span(
        path,
        tok.line,
        tok.column,
        tok.end_line or tok.line,
        tok.end_column or tok.column + len(shown),
    )
    written = text.split("\n")[tok.line - 1] if tok.line else ""
    prev = context.tokens[-1] if context.tokens else None
    hint = _hint(tok, prev, expected, written)
    if "IN" in expected and "EQUAL" in expected:  # the names before `=` and `for`'s share a rule
        expected -= {"IN"} if context.before_targets(len(context.tokens)) != "FOR" else {"EQUAL"}
    described = {_describe_terminal(n) for n in expected}
    if shown in _ARITHMETIC and "`|>`" in described and "`+`" not in described:
        # a stage is a call, never an operand: the parser's list of what may follow one
        # (`)`, `,`, `block`, ...) would only puzzle
        return error(f"unexpected {what} after a `|>` stage", span, hint=hint)
    if "`+`" in described:
        return error(f"unexpected {what} after an expression", span, hint=hint)
    return error(f"unexpected {what}; expected {expected_words(expected)}", span, hint=hint)


# Words of Python (and C) that netc has not, and what to write instead.
_FOREIGN_WORDS = {
    "def": "a reusable piece of network is a `block`: `block name(x, units: int) { ... }`",
    "class": "a network is a `model`, a reusable piece of one a `block`",
    "from": 'write `import "FILE.net"`: it brings in every block and constant of the file',
    "elif": "write `else if`",
    "while": "netc loops over compile-time lists: `for i in range(n) { ... }`",
    "lambda": "netc has no functions as values: define a `block`",
    "pass": "an empty body is just `{ }`",
    "print": "`netc summary FILE` shows every layer's shape",
}
_TOP_LEVEL = frozenset({"import", "model", "block", "train"})
_ARITHMETIC = ("+", "-", "*", "/", "//", "%", "@", "**")


def _hint(tok: Any, prev: Any, expected: set[str], line: str) -> str | None:
    """What the user likely meant, where the parser stopped at `tok` after `prev`."""
    shown = str(tok)
    after = line[tok.end_column - 1 :] if tok.end_column else ""
    before = line[: tok.column - 1]
    if shown == "//" and after[:1] == " " and after[1:2].isalpha():
        return "a comment starts with `#`"
    if shown in _ARITHMETIC and after.startswith("=") and prev is not None and prev.type == "NAME":
        return f"netc has no `{shown}=`: write `{prev} = {prev} {shown} ...`"
    if shown in _ARITHMETIC and "|>" in before and "`|>`" in map(_describe_terminal, expected):
        return f"`|>` binds loosest: write `(x |> f(...)) {shown} y` to use a chain's result"
    if tok.type == "EQUAL" and "EQUAL" not in expected:
        return "compare with `==`; assignments stand on their own"
    if shown in _TOP_LEVEL and "RBRACE" in expected:
        return f"`{shown}` stands at the top level of a file, outside models and blocks"
    if shown in _FOREIGN_WORDS:
        return _FOREIGN_WORDS[shown]
    after_expression = {"`+`", "`|>`"} & set(map(_describe_terminal, expected))
    if shown == "(" and str(prev) == ")" and after_expression:  # Keras' `Dense(10)(x)`
        return "a call's result cannot be called: pipe the value in, `x |> f(...)`"
    if shown in KEYWORDS and "NAME" in expected:
        return f"`{shown}` is a keyword; choose another name"
    if tok.type == "IF" and "IF" not in expected:
        return "a value chosen by a condition is written `if c { a } else { b }`"
    if tok.type == "FOR" and "RSQB" in expected:
        return "netc has no list comprehensions: build the list in a `for` loop, or write it out"
    if tok.type == "COLON" and "LBRACE" in expected:
        return "a body is written in braces, `{ ... }`, not after `:`"
    if tok.type == "COLON" and expected == {"EQUAL"}:
        return "a setting is written `name = value`"
    if tok.type == "COLON" and "EQUAL" in expected:
        return "a value's type is not written: netc infers it (write `name = value`)"
    if prev is not None and str(prev) == "import" and tok.type != "STRING":
        return 'write the path in double quotes: `import "layers.net"`'
    if prev is not None and str(prev) == "->" and tok.type != "LPAR":
        return "the outputs are in parentheses: `-> (y: f32[N, 10])`"
    if tok.type == "LPAR" and "LSQB" in expected and prev is not None and prev.type == "NAME":
        return f"a tensor type's dims are in brackets: `{prev}[N, ...]`"
    if tok.type == "LSQB" and expected == {"NAME"} and prev is not None and str(prev) == ":":
        return "a tensor type starts with its dtype: `f32[N, ...]`"
    return None


_PIPE = "__ANON_1"  # `|>`, as Lark names the anonymous terminal
_PIPE_TEXT = "|>"
_ENDS = frozenset({"RBRACE", "$END"})  # accepted where a statement or an item may end


# What may continue an expression: not what a line that stops short of `)` or `{` lacks.
_CONTINUATIONS = frozenset(
    {"PLUS", "MINUS", "STAR", "SLASH", "PERCENT", "AT", "COMPARE", "OR", "AND", "LSQB", "LPAR"}
    | {"__ANON_1", "__ANON_2", "__ANON_3"}  # `|>`, `//`, `**`
)


class _Token(NamedTuple):
    """A token as the rules below see it: Lark's terminal name, the text, where it lies."""

    type: str
    value: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return self.value


@cache
def _terminal_names() -> dict[str, str]:
    """Lark's name of each keyword and symbol terminal, by its text."""
    return {t.pattern.value: t.name for t in lark_parser().terminals if t.pattern.type == "str"}


class _Context:
    """The tokens before a syntax error and the parser's states among them, for the rules that
    move the error to its cause (on the error path only; the parser runs again only when a
    rule asks about a state before the one it stopped in)."""

    def __init__(self, text: str, path: str, start: str, error: Any, tok: Any):
        self.text, self.path, self.start = text, path, start
        self.at_error = getattr(error, "interactive_parser", None) if tok is not None else None
        prefix = text if tok is None else text[: tok.start_pos]
        names = _terminal_names()
        self.tokens: list[_Token] = []
        try:  # the reader's lexer: the same tokens as Lark's, faster
            for kind, value, line, col in reader.tokenize(prefix, path, Limits(nesting=10**9)):
                kind = names.get(kind, kind)
                self.tokens.append(_Token(kind, value, line, col, line, col + len(value)))
        except (reader.Unreadable, NetcError):  # an f-string's expression the lexer refuses
            self.tokens = []

    def accepts(self, *indices: int) -> dict[int, set[str]]:
        """What the parser accepts before token k, for each k of `indices` (k = the number of
        tokens: before the token it stopped at), from at most one more pass of the parser."""
        import lark

        t = len(self.tokens)
        out: dict[int, set[str]] = {}
        if t in indices and self.at_error is not None:
            out[t] = set(self.at_error.accepts())
        where: dict[tuple[int, int], int] = {}
        for k in indices:
            if k not in out and k < t:
                where[(self.tokens[k].line, self.tokens[k].column)] = k
        if not where:
            return out
        parser = lark_parser().parse_interactive(self.text, start=self.start)
        try:
            for tok in parser.iter_parse():
                at = where.pop((tok.line, tok.column), None)
                if at is not None:
                    out[at] = set(parser.accepts())
                    if not where:
                        break
        except lark.exceptions.LarkError:
            pass
        return out

    def before_targets(self, k: int) -> str | None:
        """The type of the token before the run of `NAME, NAME` that ends before token k."""
        j = k - 1
        while j >= 0 and self.tokens[j].type in ("NAME", "COMMA"):
            j -= 1
        return self.tokens[j].type if j >= 0 else None

    def misplaced(self, tok: Any, expected: set[str]) -> NetcError | None:
        """The error at its cause, where the token the parser stopped at is not it."""
        t = len(self.tokens)
        if t == 0:
            return None
        prev = self.tokens[-1]
        if expected == {"ELSE"}:  # (a `{` there is a branch that lacks only its `else`)
            return self.if_without_else(t - 1) if tok.type != "LBRACE" else None
        if tok.type == "EQUAL" and str(prev) in KEYWORDS and "NAME" in expected:
            return error(  # `for = 3`
                f"keyword `{prev}` cannot name a value",
                self.span(prev),
                hint=f"`{prev}` is a keyword; choose another name",
            )
        # the run of `NAME, NAME` before `tok`, which the parser took for a statement's start
        s = t
        while s > 0 and self.tokens[s - 1].type == "NAME":
            s -= 1
            if s > 1 and self.tokens[s - 1].type == "COMMA" and self.tokens[s - 2].type == "NAME":
                s -= 1
                continue
            break
        if s == t - 1 and str(prev) in _FOREIGN_WORDS and tok.line == prev.line:
            return error(  # `elif c {`, `while c {`: read as the start of an assignment
                f"netc has no `{prev}`", self.span(prev), hint=_FOREIGN_WORDS[str(prev)]
            )
        word = self.tokens[s - 1] if s == t - 1 and s > 0 else None
        if word is not None and word.type == "NAME" and str(word) in _FOREIGN_WORDS:
            if word.line == tok.line:  # `lambda t: ...`: the word, then a name
                return error(
                    f"netc has no `{word}`", self.span(word), hint=_FOREIGN_WORDS[str(word)]
                )
        names = [k for k in range(s, t) if self.tokens[k].type == "NAME"][:2]
        names = [k for k in names if k > 0 and self.could_be_stray(k, tok)]
        # the first token of `tok`'s line, if it starts a statement: `tok` itself, or the
        # targets before the `=` at `tok` (`a = x +` then `y = a`)
        f = t
        while f > 0 and self.tokens[f - 1].line == tok.line:
            f -= 1
        starts = f > 0 and (f == t or (tok.type == "EQUAL" and s == f))
        wanted = [*names, *([f] if starts else [])]
        accepts = self.accepts(*wanted) if wanted else {}
        if tok.type != "EQUAL":
            for k in names:
                found = self.stray_name(k, tok, accepts.get(k, set()))
                if found is not None:
                    return found
        if starts and accepts.get(f) and not accepts[f] & _ENDS:
            return self.unfinished(f - 1, accepts[f])
        return None

    def could_be_stray(self, s: int, tok: Any) -> bool:
        """Whether `stray_name` could say something of the name at s (without the parser)."""
        name = self.tokens[s]
        alone = s + 1 == len(self.tokens)
        mid_line = self.tokens[s - 1].end_line == name.line
        return mid_line or tok.line != name.line or (alone and tok.type == "LPAR")

    def stray_name(self, s: int, tok: Any, accepts: set[str]) -> NetcError | None:
        """`relu` in `x |> dense(4) relu`: a name after a finished expression, which the
        parser read as the start of a statement that then goes wrong at `tok`."""
        if not accepts & _ENDS or not accepts & {"PLUS", _PIPE}:
            return None  # what comes before it is no finished expression
        name = self.tokens[s]
        alone = s + 1 == len(self.tokens)
        mid_line = self.tokens[s - 1].end_line == name.line
        if not mid_line and tok.line == name.line:
            if alone and tok.type == "LPAR":
                return error(
                    "a call cannot stand on its own as a statement",
                    self.span(name),
                    hint=_FOREIGN_WORDS.get(str(name))
                    or f"assign its value to a name: `y = {name}(...)`",
                )
            return None
        pipe = alone and (tok.type == "LPAR" or tok.line > name.line)
        hint = f"did you mean `|> {name}`?" if pipe else None
        if str(self.tokens[s - 1]) == "//" and self.tokens[s - 1].line == name.line:
            hint = "a comment starts with `#`"
        return error(f"unexpected `{name}` after an expression", self.span(name), hint=hint)

    def unfinished(self, k: int, accepts: set[str]) -> NetcError:
        """The line ending with token k stops before its construct is complete."""
        last = self.tokens[k]
        if accepts == {"ELSE"}:
            return self.if_without_else(k)
        if str(last) == "|>":
            return error("expected an op or block after `|>`", self.span(last))
        return error(
            f"expected {expected_words(accepts - _CONTINUATIONS or accepts)} after `{last}`",
            self.span(last),
        )

    def if_without_else(self, k: int) -> NetcError:
        """`if c { a }` as a value, ending at token k (its `}`)."""
        depth, j = 0, k
        while j >= 0:  # back over the braces of its branch, to its `if`
            depth += {"}": 1, ")": 1, "]": 1, "{": -1, "(": -1, "[": -1}.get(str(self.tokens[j]), 0)
            if depth == 0 and self.tokens[j].type == "IF":
                break
            j -= 1
        at = self.tokens[j] if j >= 0 else self.tokens[k]
        return error(
            "an `if` used as a value needs an `else`",
            self.span(at),
            hint="add `else { ... }` with the value otherwise",
        )

    def span(self, tok: Any) -> Span:
        return Span(self.path, tok.line, tok.column, tok.end_line, tok.end_column)
