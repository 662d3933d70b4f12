"""Source positions and diagnostics: `Span`, `Diagnostic`, `NetcError`, and their rendering.

Every error a user can cause is a `Diagnostic` with a span; the CLI and the library render them
the same way, `file:line:col: error: message`, the source line, a caret, notes and a hint.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from .limits import Limits


class Span(NamedTuple):
    """A range of source text; lines and columns count from 1, `end_col` is exclusive.
    (A named tuple: a big file makes hundreds of thousands of them.)"""

    path: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True)
class CallSite:
    """A block call that led to a node: the block's name and where it was called."""

    block: str
    span: Span


@dataclass(frozen=True)
class Diagnostic:
    """One message about the user's source; `severity` is "error" or "warning"."""

    severity: str
    message: str
    span: Span | None = None
    calls: tuple[CallSite, ...] = ()
    hint: str | None = None
    notes: tuple[str, ...] = ()

    def sort_key(self) -> tuple:
        if self.span is None:
            return ("", 0, 0, self.message)
        return (self.span.path, self.span.line, self.span.col, self.message)

    def render(self, sources: SourceMap | None = None) -> str:
        """Render like a good compiler: location, message, source line, caret, notes, help.
        Invisible characters are shown as `<U+00A0>`, tabs as spaces, and the caret counts
        columns as a terminal shows them (a wide character takes two)."""
        where = f"{self.span}: " if self.span else "netc: "
        lines = [f"{where}{self.severity}: {visible(self.message)}"]
        raw = sources.line(self.span.path, self.span.line) if (sources and self.span) else None
        if self.span and raw is not None:
            gutter = " " * len(str(self.span.line))
            end = self.span.end_col if self.span.end_line == self.span.line else len(raw) + 1
            first = min(self.span.col, len(raw) + 1) - 1
            end = max(first + 2, min(end, len(raw) + 1))
            shown, columns = display_columns(raw)
            start = columns[first]
            width = columns[end - 1] - start if end - 1 < len(columns) else 1
            lines.append(f"{self.span.line} | {shown}")
            lines.append(f"{gutter} | {' ' * start}{'^' * max(1, width)}")
        pad = " " * (len(str(self.span.line)) if self.span else 1)
        for call, times in _collapse(self.calls):
            again = f" ({times} times)" if times > 1 else ""
            lines.append(f"{pad} = note: in block `{call.block}`, called at {call.span}{again}")
        for note in self.notes:
            lines.append(f"{pad} = note: {visible(note)}")
        if self.hint:
            lines.append(f"{pad} = help: {visible(self.hint)}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        """A plain dict for `--json` output and the language server."""
        out: dict = {"severity": self.severity, "message": self.message}
        if self.span:
            s = self.span
            out.update(path=s.path, line=s.line, col=s.col, end_line=s.end_line, end_col=s.end_col)
        if self.calls:
            out["calls"] = [{"block": c.block, "at": str(c.span)} for c in self.calls]
        if self.hint:
            out["hint"] = self.hint
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def _collapse(calls: Sequence[CallSite]) -> list[tuple[CallSite, int]]:
    """Runs of the same call site (recursion) as one entry with a count."""
    out: list[tuple[CallSite, int]] = []
    for c in calls:
        if out and out[-1][0] == c:
            out[-1] = (c, out[-1][1] + 1)
        else:
            out.append((c, 1))
    return out


class SourceMap:
    """The text of every file read during one compilation, for rendering source lines."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self._lines: dict[str, list[str]] = {}  # split once: a big file may have many errors

    def add(self, path: str, text: str) -> None:
        self.texts[path] = strip_bom(text)
        self._lines.pop(path, None)

    def line(self, path: str, line: int) -> str | None:
        text = self.texts.get(path)
        if text is None:
            return None
        lines = self._lines.get(path)
        if lines is None:  # lines end at "\n" only, as the parser counts them (not at \f, \x85)
            lines = self._lines[path] = text.split("\n")
        if not 0 < line <= len(lines):
            return None
        raw = lines[line - 1]
        return raw[:-1] if raw.endswith("\r") else raw


class NetcError(Exception):
    """Raised for mistakes in the user's input; carries every diagnostic found, sorted."""

    def __init__(self, diagnostics: Iterable[Diagnostic], sources: SourceMap | None = None):
        self.diagnostics: list[Diagnostic] = sorted(diagnostics, key=Diagnostic.sort_key)
        self.sources = sources
        super().__init__(self.render())

    def render(self) -> str:
        return "\n\n".join(d.render(self.sources) for d in self.diagnostics)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


def error(
    message: str,
    span: Span | None = None,
    *,
    hint: str | None = None,
    calls: Sequence[CallSite] = (),
    notes: Sequence[str] = (),
) -> NetcError:
    """One error as an exception, for code that stops at the first problem."""
    return NetcError([Diagnostic("error", message, span, tuple(calls), hint, tuple(notes))])


@dataclass
class Reporter:
    """Collects diagnostics during a stage so that independent errors are all reported."""

    sources: SourceMap = field(default_factory=SourceMap)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def error(
        self,
        message: str,
        span: Span | None = None,
        *,
        hint: str | None = None,
        calls: Sequence[CallSite] = (),
        notes: Sequence[str] = (),
    ) -> None:
        self.diagnostics.append(
            Diagnostic("error", message, span, tuple(calls), hint, tuple(notes))
        )

    def warning(
        self,
        message: str,
        span: Span | None = None,
        *,
        hint: str | None = None,
        calls: Sequence[CallSite] = (),
    ) -> None:
        self.diagnostics.append(Diagnostic("warning", message, span, tuple(calls), hint))

    def extend(self, exc: NetcError) -> None:
        self.diagnostics.extend(exc.diagnostics)

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)

    def raise_if_errors(self) -> None:
        if self.has_errors:
            raise NetcError(self.diagnostics, self.sources)


_FILE_KINDS = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a pipe"),
    (stat.S_ISSOCK, "a socket"),
)


def read_source(
    path: str | Path,
    limits: Limits | None = None,
    *,
    shown: str | None = None,
    follow_symlinks: bool = True,
) -> str:
    """Read a `.net` file, turning OS errors into a diagnostic: only a regular file (never a
    device or a pipe, which could block or never end), no larger than `limits.source_bytes`,
    UTF-8. `shown` names it in messages (default: `path`)."""
    from .limits import Limits, describe_bytes

    limit = (limits or Limits()).source_bytes
    shown = str(path) if shown is None else shown
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"no such file: {shown}") from None
    except IsADirectoryError:
        raise error(f"{shown} is a directory, not a .net file") from None
    except (OSError, ValueError) as e:
        raise error(f"cannot read {shown}: {getattr(e, 'strerror', None) or e}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise error(f"{shown} is a directory, not a .net file")
        if not stat.S_ISREG(st.st_mode):
            what = next((w for test, w in _FILE_KINDS if test(st.st_mode)), "not a regular file")
            raise error(f"{shown} is {what}, not a .net file", hint="netc reads regular files")
        too_big = error(
            f"{shown} is larger than the limit of {describe_bytes(limit)} for a source file",
            hint="raise it with `--limit source-bytes=N` if the file is meant to be this large",
        )
        if st.st_size > limit:
            raise too_big
        chunks, size = [], 0
        while size <= limit:  # the file may grow while it is read: stop past the limit
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise too_big
    except OSError as e:
        raise error(f"cannot read {shown}: {e.strerror}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    try:
        return strip_bom(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise error(f"{shown} is not UTF-8 text (byte {e.start})") from None


def format_value(value: Any) -> str:
    """A compile-time value as the language writes it: `true`, `none`, `"same"`, `(1, 2)`
    (an int of more than 128 bits abbreviated, `12345678...(300 digits)`)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + "".join(_ESCAPES.get(c) or _escape(c) for c in value) + '"'
    if isinstance(value, int) and value.bit_length() > 128:  # shown, not written out
        digits = str(abs(value))
        return f"{'-' if value < 0 else ''}{digits[:8]}...({len(digits):,} digits)"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(format_value(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A "did you mean `x`?" hint for the closest candidate, or None."""
    import difflib

    names = sorted(set(candidates))
    same = [c for c in names if c.lower() == name.lower() and c != name]  # `Conv2D`, `ReLU`
    best = same or difflib.get_close_matches(name, names, n=1, cutoff=0.7)
    return f"did you mean `{best[0]}`?" if best else None


# --- characters as a user can see them ---------------------------------------------------------

BOM = "\ufeff"
# Letters that render as nothing (Hangul fillers, the braille blank): invisible whatever their
# Unicode category says.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def strip_bom(text: str) -> str:
    """`text` without a leading UTF-8 byte order mark (editors on Windows write one)."""
    return text[1:] if text.startswith(BOM) else text


def is_invisible(c: str) -> bool:
    """Whether `c` shows as nothing, or as a blank that is not a space: a no-break or
    zero-width space, a control, a format or direction mark, an unassigned code point."""
    import unicodedata

    if " " <= c <= "~":  # printable ASCII, the common case
        return False
    return c != "\t" and (unicodedata.category(c)[0] in "ZC" or c in _BLANK_LETTERS)


def char_name(c: str) -> str:
    """`U+00A0 (no-break space)`: a character by code point and name."""
    import unicodedata

    name = unicodedata.name(c, "").lower()
    return f"U+{ord(c):04X}" + (f" ({name})" if name else "")


def visible(text: str) -> str:
    """`text` with each invisible character written `<U+00A0>`."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(f"<U+{ord(c):04X}>" if is_invisible(c) else c for c in text)


def display_columns(raw: str) -> tuple[str, list[int]]:
    """A source line as shown (tabs to stops of 4, invisible characters as `<U+00A0>`), and
    the display column at which each character starts, plus one past the end."""
    import unicodedata

    shown: list[str] = []
    columns: list[int] = []
    col = 0
    for c in raw:
        columns.append(col)
        if c == "\t":
            text = " " * (4 - col % 4)
            width = len(text)
        elif is_invisible(c):
            text = f"<U+{ord(c):04X}>"
            width = len(text)
        elif c.isascii():
            text, width = c, 1
        else:
            text = c
            if unicodedata.combining(c):
                width = 0
            else:
                width = 2 if unicodedata.east_asian_width(c) in "WF" else 1
        shown.append(text)
        col += width
    columns.append(col)
    return "".join(shown), columns


def _escape(c: str) -> str:
    """A character of a string value as the language writes it in a string literal."""
    if not is_invisible(c):
        return c
    return f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"
