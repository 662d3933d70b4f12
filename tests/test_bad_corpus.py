"""The malformed-input corpus: every `tests/bad/*.net` is one realistic mistake, and its header
states the exact diagnostics netc must give for it.

Header lines (comments at the top of the file, before the first line of code):

    # expect: 7:17: error: unknown op or block `conv2`        (in this file)
    # expect: lib/layers.net:3:17: error: ...                  (in another file)
    # expect: error: no_model.net defines no model             (no location)
    # expect-help: did you mean `conv2d`?                      (the `= help:` line)
    # expect-note: in block `stage`, called at f.net:16:31     (each `= note:` line, in order)
    # expect-note: ...                                         (any further notes)

The diagnostics must be exactly these, in this order (sorted, as netc reports them); a help or
note not stated must not be there. A file whose expectations are all warnings must compile.
Files under `tests/bad/lib/` are helpers that corpus files import.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

import netc
from netc import Diagnostic, NetcError
from netc.cli import cli

BAD = Path(__file__).parent / "bad"
FILES = sorted(BAD.glob("*.net"))

_EXPECT = re.compile(
    r"^(?:(?:(?P<path>[\w./-]+\.net):)?(?P<line>\d+):(?P<col>\d+): )?"
    r"(?P<severity>error|warning): (?P<message>.+)$"
)


@dataclass
class Expected:
    """One diagnostic as a corpus file states it."""

    path: str | None
    line: int | None
    col: int | None
    severity: str
    message: str
    help: str | None = None
    notes: tuple[str, ...] = ()

    def show(self) -> str:
        where = f"{self.path}:{self.line}:{self.col}: " if self.line is not None else ""
        out = [f"# expect: {where}{self.severity}: {self.message}"]
        out += [f"# expect-note: {n}" for n in self.notes]
        if self.help is not None:
            out.append(f"# expect-help: {self.help}")
        return "\n".join(out)


def read_expectations(path: Path) -> list[Expected]:
    """The `# expect...` lines of a corpus file's leading comment block."""
    out: list[Expected] = []
    content = path.read_text(encoding="utf-8").removeprefix("\ufeff")  # a BOM is allowed
    for raw in content.splitlines():
        if not raw.startswith("#"):
            break
        text = raw[1:].strip()
        key, _, value = text.partition(": ")
        if key == "expect":
            m = _EXPECT.match(value)
            assert m, f"{path.name}: malformed expectation: {raw}"
            line = int(m["line"]) if m["line"] else None
            out.append(
                Expected(
                    m["path"] or (path.name if line else None),
                    line,
                    int(m["col"]) if m["col"] else None,
                    m["severity"],
                    m["message"],
                )
            )
        elif key in ("expect-help", "expect-note"):
            assert out, f"{path.name}: `{key}` before any `expect`: {raw}"
            if key == "expect-help":
                assert out[-1].help is None, f"{path.name}: two helps for one diagnostic"
                out[-1].help = value
            else:
                out[-1].notes += (value,)
        else:
            assert not key.startswith("expect"), f"{path.name}: unknown header line: {raw}"
    return out


def as_expected(d: Diagnostic) -> Expected:
    """A diagnostic in the corpus' terms: its notes are the call chain, then its other notes."""
    notes = tuple(f"in block `{c.block}`, called at {c.span}" for c in d.calls) + tuple(d.notes)
    span = d.span
    return Expected(
        span.path if span else None,
        span.line if span else None,
        span.col if span else None,
        d.severity,
        d.message,
        d.hint,
        notes,
    )


def matches(want: Expected, got: Expected) -> bool:
    if (want.path, want.line, want.col, want.severity, want.message, want.help) != (
        got.path,
        got.line,
        got.col,
        got.severity,
        got.message,
        got.help,
    ):
        return False
    if want.notes and want.notes[-1] == "...":
        prefix = want.notes[:-1]
        return got.notes[: len(prefix)] == prefix and len(got.notes) > len(prefix)
    return want.notes == got.notes


def compile_corpus_file(path: Path) -> tuple[list[Diagnostic], bool]:
    """(diagnostics, whether compilation failed); any exception but NetcError fails the test."""
    try:
        model = netc.compile(path.name)
    except NetcError as e:
        return list(e.diagnostics), True
    except Exception as e:  # noqa: BLE001 -- a crash on bad input is the bug this test finds
        pytest.fail(
            f"{path.name}: netc raised {type(e).__name__} instead of a NetcError:\n"
            + "".join(traceback.format_exception(e))
        )
    return list(model.warnings), False


def test_corpus_is_big_enough() -> None:
    assert len(FILES) >= 45
    for path in FILES:
        assert read_expectations(path), f"{path.name} states no `# expect:` line"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_corpus_file_gives_exactly_its_expected_diagnostics(path: Path, monkeypatch) -> None:
    expected = read_expectations(path)
    monkeypatch.chdir(BAD)  # diagnostics then name files as the headers do
    diagnostics, failed = compile_corpus_file(path)
    wants_error = any(e.severity == "error" for e in expected)
    got = [as_expected(d) for d in diagnostics]
    shown = "\n".join(g.show() for g in got) or "(nothing)"
    if wants_error and not failed:
        pytest.fail(f"{path.name} compiled, but it should fail; netc said:\n{shown}")
    if failed and not wants_error:
        pytest.fail(f"{path.name} should compile with warnings only; netc said:\n{shown}")
    ok = len(expected) == len(got) and all(
        matches(w, g) for w, g in zip(expected, got, strict=True)
    )
    assert ok, (
        f"{path.name}: the diagnostics differ.\n--- expected:\n"
        + "\n".join(e.show() for e in expected)
        + f"\n--- netc said:\n{shown}"
    )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_corpus_file_through_the_cli(path: Path, monkeypatch) -> None:
    """`netc check FILE`: exit code 1 for errors (0 for warnings only), the diagnostics printed,
    and never a Python traceback."""
    expected = read_expectations(path)
    monkeypatch.chdir(BAD)
    result = CliRunner().invoke(cli, ["check", path.name], prog_name="netc")
    output = result.output + (getattr(result, "stderr", "") if _has_stderr(result) else "")
    assert "Traceback" not in output, output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        pytest.fail(
            f"`netc check {path.name}` raised {type(result.exception).__name__}:\n"
            + "".join(traceback.format_exception(result.exception))
        )
    wants_error = any(e.severity == "error" for e in expected)
    assert result.exit_code == (1 if wants_error else 0), output
    first = expected[0]
    where = f"{first.path}:{first.line}:{first.col}: " if first.line is not None else ""
    assert f"{where}{first.severity}: {first.message}" in output, output


def _has_stderr(result) -> bool:
    try:
        return bool(result.stderr) and result.stderr not in result.output
    except ValueError:  # click < 8.2 without a separate stderr
        return False
