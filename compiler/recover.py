"""Several syntax errors in one file: after the first, the statement it is in is set aside
(blanked out, so that every position stays where it was) and the file is read again, up to
`MAX_SYNTAX_ERRORS` errors.

The grammar gives newlines no meaning (an expression goes on across lines), so where a broken
statement ends is a guess, made from the layout as `netc fmt` writes it: the statement runs
until a line starting at its own column or to the left of it begins the next statement, or
closes the body around it. An error found only inside or before the part set aside is not
reported (it would be a knock-on of the guess), and reading stops there.
"""

from __future__ import annotations

from collections.abc import Callable

from .reader import _KEYWORD_SET, _TOKEN
from .source import Diagnostic, NetcError

MAX_SYNTAX_ERRORS = 10
# past this size a file gets its first syntax error only: each further one reads it again
# (Lark reads 32 KiB in about 0.2 s here; the examples are 1-8 KiB)
MAX_RECOVERY_BYTES = 32 << 10

_TOP_LEVEL = frozenset(("import", "const", "block", "model", "train"))
_STATEMENT = frozenset(("return", "for", "if", "const"))

# (kind, line, column, offset of the token's end); kind as the reader's tokens, "?" for a
# character no token starts with (an unterminated string's quote, a stray symbol)
_Tok = tuple[str, int, int, int]


def _tokens(text: str) -> list[_Tok]:
    """The reader's tokens, but never refusing: what matches no token is one `?` character."""
    out: list[_Tok] = []
    pos, line, line_start = 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            kind, end = "?", pos + 1
        else:
            kind, end = m.lastgroup or "?", m.end()
            if kind == "NAME" and m.group() in _KEYWORD_SET:
                kind = m.group()
            elif kind == "op":
                kind = m.group()
        if kind == "ws":
            newlines = text.count("\n", pos, end)
            if newlines:
                line += newlines
                line_start = text.rindex("\n", pos, end) + 1
        elif kind != "comment":
            out.append((kind, line, pos - line_start + 1, end))
        pos = end
    return out


def _starts_statement(toks: list[_Tok], k: int) -> bool:
    kind = toks[k][0]
    if kind in _STATEMENT or kind in _TOP_LEVEL:
        return True
    return kind == "NAME" and k + 1 < len(toks) and toks[k + 1][0] in ("=", ",")


def _offset(text: str, line: int, col: int) -> int:
    start = 0
    for _ in range(line - 1):
        start = text.index("\n", start) + 1
    return start + col - 1


def _region(text: str, line: int, col: int) -> tuple[int, int] | None:
    """The offsets [start, end) of the statement (or top-level item) holding the error at
    (`line`, `col`), as the layout shows it; None where there is no such statement."""
    toks = _tokens(text)
    first_on_line = [k == 0 or toks[k - 1][1] != toks[k][1] for k in range(len(toks))]
    at = (line, col)
    # the statement: the last line-starting statement token at or before the error
    s = None
    for k, (_, tl, tc, _) in enumerate(toks):
        if (tl, tc) > at:
            break
        if first_on_line[k] and _starts_statement(toks, k):
            s = k
    if s is None:
        return None
    column, top = toks[s][2], toks[s][0] in _TOP_LEVEL and toks[s][2] == 1
    braces = 0  # opened in the statement and not closed yet
    for k in range(s, len(toks)):
        kind, tl, tc, _ = toks[k]
        if k > s and first_on_line[k] and (tl, tc) > at:
            if top:
                if tc == 1 and kind in _TOP_LEVEL:
                    end = k
                    break
            elif kind == "}" and (tc == column or (tc < column and braces > 0)):
                # the statement's own body closing (its `{` may be what is missing)
                if k + 1 < len(toks) and toks[k + 1][0] == "else":
                    braces = max(braces - 1, 0)  # `} else {`: the statement goes on
                    continue
                end = k + 1
                break
            elif kind == "}" and tc < column:
                end = k  # the end of the body around the statement
                break
            elif _starts_statement(toks, k) and (tc < column or (tc == column and braces == 0)):
                end = k
                break
        if kind == "{":
            braces += 1
        elif kind == "}":
            braces = max(braces - 1, 0)
    else:
        end = len(toks)
    start = _offset(text, toks[s][1], toks[s][2])
    stop = toks[end - 1][3] if end > s else start
    return start, stop


def _blank(text: str, start: int, stop: int) -> str:
    """`text` with [start, stop) turned into spaces, its newlines kept."""
    part = "".join(c if c == "\n" else " " for c in text[start:stop])
    return text[:start] + part + text[stop:]


def more_syntax_errors(
    first: NetcError, text: str, parse_one: Callable[[str], object]
) -> NetcError:
    """`first` (a file's first syntax error) with the syntax errors after it; `parse_one`
    parses a text, raising NetcError at its first syntax error."""
    if len(text) > MAX_RECOVERY_BYTES or len(first.diagnostics) != 1:
        return first
    found: list[Diagnostic] = list(first.diagnostics)
    current = text
    while len(found) < MAX_SYNTAX_ERRORS:
        span = found[-1].span
        if span is None:
            break
        region = _region(current, span.line, span.col)
        if region is None:
            break
        current = _blank(current, *region)
        try:
            parse_one(current)
        except NetcError as e:
            d = e.diagnostics[0]
            where = d.span
            if len(e.diagnostics) != 1 or where is None:
                break
            if _offset(current, where.line, where.col) < region[1]:
                break  # inside or before what was set aside: the guess's knock-on
            found.append(d)
            continue
        break
    if len(found) == 1:
        return first
    return NetcError(found, first.sources)
