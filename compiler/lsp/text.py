"""Positions: netc spans (1-based, code points) and LSP positions (0-based, in the client's code
units), file paths and URIs, and the map between the lines of an older text and the current one.

Everything here is pure and light: no compiler module is imported, so the server can answer
before the compiler is loaded.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from lsprotocol import types as lsp

from ..source import Span

# (normalized path, line, col, end_line, end_col): a span that compares equal across the
# different spellings of one file's path (`a/../lib.net` and `lib.net`).
SpanKey = tuple[str, int, int, int, int]


@functools.lru_cache(maxsize=4096)
def _norm(path: str) -> str:
    """One spelling per file; `<...>` names (documents without a file) stay as they are."""
    if path.startswith("<"):
        return path
    return os.path.normpath(os.path.abspath(path))


def _key(span: Span) -> SpanKey:
    return (_norm(span.path), span.line, span.col, span.end_line, span.end_col)


def _contains(k: SpanKey, path: str, line: int, col: int) -> bool:
    return k[0] == path and (k[1], k[2]) <= (line, col) < (k[3], k[4])


def _within(inner: SpanKey, outer: SpanKey) -> bool:
    return (
        inner[0] == outer[0]
        and (outer[1], outer[2]) <= (inner[1], inner[2])
        and (inner[3], inner[4]) <= (outer[3], outer[4])
    )


def _innermost(keys: Iterator[SpanKey]) -> SpanKey | None:
    """Of nested spans, the innermost: the latest start, then the earliest end."""
    return max(keys, key=lambda k: (k[1], k[2], -k[3], -k[4]), default=None)


def uri_of(path: str) -> str:
    """The URI of a file path (`<uri>` for a document that is no file)."""
    return path[1:-1] if path.startswith("<") else Path(path).as_uri()


def document_path(uri: str) -> str:
    """The file path of a `file:` URI, or `<uri>` for other schemes (untitled buffers)."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return f"<{uri}>"
    path = unquote(parsed.path)
    if os.name == "nt" and re.match(r"^/[A-Za-z]:", path):
        path = path[1:]
    return _norm(path)


# --- positions: netc spans (1-based, code points) <-> LSP (0-based, client code units) ---------


def _lines(text: str) -> list[str]:
    return [line.removesuffix("\r") for line in text.split("\n")]


def _units(s: str, encoding: str) -> int:
    if s.isascii() or encoding == "utf-32":
        return len(s)
    if encoding == "utf-8":
        return len(s.encode("utf-8"))
    return len(s.encode("utf-16-le")) // 2


def _column(line: str, character: int, encoding: str) -> int:
    """The code-point index in `line` of an LSP character offset."""
    if line.isascii() or encoding == "utf-32":
        return min(character, len(line))
    units = 0
    for i, ch in enumerate(line):
        if units >= character:
            return i
        units += _units(ch, encoding)
    return len(line)


class Text:
    """One file's lines, for converting positions in the client's encoding."""

    def __init__(self, text: str, encoding: str):
        self.lines = _lines(text)
        self.encoding = encoding

    def line(self, i: int) -> str:
        return self.lines[i] if 0 <= i < len(self.lines) else ""

    def position(self, line0: int, col0: int) -> lsp.Position:
        return lsp.Position(
            line=max(line0, 0), character=_units(self.line(line0)[:col0], self.encoding)
        )

    def range(self, span: Span, shift: Callable[[int], int | None] | None = None) -> lsp.Range:
        """The LSP range of a span; `shift` moves its lines (from an older text to this one)."""
        start, end = span.line - 1, span.end_line - 1
        if shift is not None:
            moved_start, moved_end = shift(start), shift(end)
            start = start if moved_start is None else moved_start
            end = start + span.end_line - span.line if moved_end is None else moved_end
        return lsp.Range(
            start=self.position(start, span.col - 1), end=self.position(end, span.end_col - 1)
        )

    def column(self, pos: lsp.Position) -> int:
        return _column(self.line(pos.line), pos.character, self.encoding)


class LineMap:
    """The lines an (older) analysed text has in common with the current text, both ways, so
    that hover and hints keep working while the current text does not parse."""

    def __init__(self, old: str, new: str):
        self.same = old == new
        self._to_old: dict[int, int] = {}
        self._to_new: dict[int, int] = {}
        if not self.same:
            a, b = _lines(old), _lines(new)
            matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
            for block in matcher.get_matching_blocks():
                for k in range(block.size):
                    self._to_old[block.b + k] = block.a + k
                    self._to_new[block.a + k] = block.b + k

    def old(self, line0: int) -> int | None:
        return line0 if self.same else self._to_old.get(line0)

    def new(self, line0: int) -> int | None:
        return line0 if self.same else self._to_new.get(line0)
