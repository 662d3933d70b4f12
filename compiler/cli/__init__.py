"""The `netc` command: `netc MODEL.net` checks a model and prints its summary; subcommands do more.

This package only maps flags to function arguments and results to text: compiler modules are
imported inside the commands, so `netc --help` and `netc check` never load a backend.
Exit codes: 0 ok, 1 a mistake in the user's input, 2 bad usage, 3 a bug in netc.
The commands live by group: build.py (compile, summary, check, weights), execute.py (run,
verify), bench.py (bench), edit.py (fmt, lsp), tune.py (tune); common.py holds what they share.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from .. import __version__
from . import bench, build, edit, execute, train, tune
from .common import NetcGroup, human_flops

__all__ = ["cli", "main", "human_flops"]


@click.group(cls=NetcGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="netc", message="%(prog)s %(version)s")
def cli() -> None:
    """netc: a compiler for neural networks.

    `netc MODEL.net` checks the model, prints its summary and writes MODEL.onnx (the
    `compile` command: -t keras, tf or tvm for another backend, -o PATH, --no-write to only
    check). `netc run MODEL.onnx` runs it; `netc COMMAND --help` tells more.
    """


for command in (
    build.compile_cmd,
    build.summary,
    build.check,
    execute.run,
    bench.bench,
    execute.verify,
    build.weights,
    train.train,
    edit.fmt,
    edit.lsp,
    tune.tune,
):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None, *, standalone_mode: bool = True) -> Any:
    """The `netc` console script: run the command line on `argv` (default: sys.argv[1:])."""
    return cli.main(argv, prog_name="netc", standalone_mode=standalone_mode)
