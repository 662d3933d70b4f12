"""The editor commands: `netc fmt` (the canonical layout, in place, checked or as a diff) and
`netc lsp` (the language server, over stdio or TCP)."""

from __future__ import annotations

import difflib
import sys

import click

from .common import _limit_option, _limits, _start


@click.command("fmt")
@click.argument("files", nargs=-1, required=True, metavar="FILE.net... | -")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a file is not formatted.")
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff; write nothing.")
@_limit_option
def fmt(files: tuple[str, ...], check: bool, show_diff: bool) -> None:
    """Format .net files in place in netc's one layout (comments kept; `-`: stdin to stdout).

    Only whitespace changes, so the compiled model never does. A file with a syntax error is
    reported and left as it is (exit 1)."""
    from pathlib import Path

    from ..files import write_bytes_atomic
    from ..fmt import format_text
    from ..source import NetcError, read_source

    out = _start(False, False)
    changed, failed = [], False
    for file in files:
        stdin = file == "-"
        try:
            text = sys.stdin.read() if stdin else read_source(file, _limits())
            formatted = format_text(text, "<stdin>" if stdin else file)
        except NetcError as e:
            out.diagnostics(e.diagnostics, e.sources)
            failed = True
            continue
        if stdin and not (check or show_diff):
            click.echo(formatted, nl=False)
            continue
        if formatted == text:
            continue
        changed.append(file)
        if show_diff:
            name = "<stdin>" if stdin else file
            click.echo(
                "".join(
                    difflib.unified_diff(
                        text.splitlines(keepends=True),
                        formatted.splitlines(keepends=True),
                        f"{name} (original)",
                        f"{name} (formatted)",
                    )
                ),
                nl=False,
            )
        elif check:
            click.echo(f"would reformat {file}", err=True)
        else:
            write_bytes_atomic(Path(file), formatted.encode("utf-8"))
            click.echo(f"reformatted {file}", err=True)
    if failed or (changed and (check or show_diff)):
        raise SystemExit(1)


@click.command("lsp")
@click.option("--stdio", is_flag=True, help="Talk over stdin/stdout (the default).")
@click.option(
    "--tcp", type=click.IntRange(1, 65535), metavar="PORT", help="Listen on 127.0.0.1:PORT."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="The address --tcp binds.")
@click.option(
    "--log-level",
    type=click.Choice(["error", "warning", "info", "debug"]),
    default="warning",
    show_default=True,
    help="What the server logs on stderr.",
)
def lsp(stdio: bool, tcp: int | None, host: str, log_level: str) -> None:
    """Run the language server (for editors; needs `pip install 'netc[lsp]'`).

    Editors start it over stdio (`netc lsp --stdio`, as VS Code's client does); `--tcp PORT`
    serves one editor at a time on a port, to debug the server in a terminal."""
    import importlib.util

    if stdio and tcp is not None:
        raise click.UsageError("--stdio and --tcp exclude each other")
    if importlib.util.find_spec("pygls") is None or importlib.util.find_spec("lsprotocol") is None:
        click.echo("netc lsp needs pygls: pip install 'netc[lsp]'", err=True)
        raise SystemExit(1)
    from ..lsp.server import main as serve

    serve(tcp=tcp, host=host, log_level=log_level)
