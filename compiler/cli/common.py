"""What every `netc` command shares: output settings and rendering, error reporting, the
group with its default command, and the options several commands take."""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from ..source import Diagnostic, NetcError, SourceMap

if TYPE_CHECKING:
    from rich.console import Console

    from ..limits import Limits
    from ..summary import Model

DEFAULT_COMMAND = "compile"
EMITS = ("ir",)  # what `--emit` can print instead of the summary table
_OUTPUT = f"{__name__}.output"  # key of the command's `Output` in click's shared ctx.meta
_INCLUDE = f"{__name__}.include"  # --include folders
_LIMITS = f"{__name__}.limits"  # --limit settings
_FOLD = f"{__name__}.fold"  # --depth / --full of the summary
_SOURCES = f"{__name__}.sources"  # the model's sources, for warnings that come after _load


@dataclass(frozen=True)
class Output:
    """How a command writes: JSON on stdout or human text, warnings shown or not."""

    json: bool = False
    quiet: bool = False

    def console(self, *, stderr: bool = False) -> Console:
        """A rich console: styles only on a terminal and without NO_COLOR; plain text otherwise."""
        from rich.console import Console

        plain = bool(os.environ.get("NO_COLOR"))  # rich alone would keep bold under NO_COLOR
        console = Console(
            stderr=stderr,
            highlight=False,
            markup=False,
            emoji=False,
            color_system=None if plain else "auto",
        )
        if not console.is_terminal:
            console.width = 10_000  # a pipe has no width: never wrap a table row
        return console

    def print_json(self, data: dict) -> None:
        click.echo(json.dumps(data, indent=2))

    def diagnostics(self, diagnostics: Sequence[Diagnostic], sources: SourceMap | None) -> None:
        """Render diagnostics on stderr (warnings only when not quiet), blank-line separated."""
        shown = [d for d in diagnostics if d.severity == "error" or not self.quiet]
        if shown and not self.json:
            err = self.console(stderr=True)
            for i, d in enumerate(shown):
                err.print(_styled(d, sources), soft_wrap=True)
                if i + 1 < len(shown):
                    err.print()


def _styled(d: Diagnostic, sources: SourceMap | None) -> Any:
    """A rendered diagnostic with colour: severity, message and caret line."""
    from rich.text import Text

    colour = "bold red" if d.severity == "error" else "yellow"
    lines = []
    for i, line in enumerate(d.render(sources).split("\n")):
        text = Text(line)
        head = re.match(rf"(.*?)({d.severity}): ", line) if i == 0 else None
        if head:
            text.stylize("bold", 0, head.start(2))
            text.stylize(colour, head.start(2), head.end(2))
            text.stylize("bold", head.end(2))
        elif caret := re.fullmatch(r" +\| *(\^+)", line):
            text.stylize(colour, caret.start(1))
        elif note := re.match(r" += (help|note):", line):
            text.stylize("bold cyan", note.start(1), note.end(1))
        lines.append(text)
    return Text("\n").join(lines)


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def human_flops(n: int) -> str:
    """FLOPs with an SI prefix, e.g. `4.1 GFLOPs`; below a thousand, the exact number."""
    if n < 1000:
        return f"{n} FLOPs"
    value, prefixes = n / 1000, iter("kMGTPE")
    prefix = next(prefixes)
    while round(value, 1) >= 1000 and prefix != "E":
        value, prefix = value / 1000, next(prefixes)
    return f"{value:.1f} {prefix}FLOPs"


class NetcGroup(click.Group):
    """A group with a default command, mapping user errors to exit 1 and netc's bugs to exit 3."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # `netc model.net -q` means `netc compile model.net -q`; `netc chek` stays a usage error.
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help", "--version"):
            if args[0].startswith("-") or _looks_like_path(args[0]):
                args = [DEFAULT_COMMAND, *args]
            elif os.path.exists(args[0] + ".net"):  # `netc cifar_resnet`: the suffix left off
                raise click.UsageError(
                    f"no command `{args[0]}`; for the model {args[0]}.net, write "
                    f"`netc {args[0]}.net`",
                    ctx,
                )
        return super().parse_args(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands with their whole first sentence (click cuts them at the width)."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[OPTIONS] MODEL.net")
        formatter.write_usage(ctx.command_path, "COMMAND [ARGS]...", prefix="   or: ")

    def invoke(self, ctx: click.Context) -> Any:
        import warnings

        with warnings.catch_warnings():
            warnings.showwarning = _netc_warnings(ctx, warnings.showwarning)
            return self._invoke(ctx)

    def _invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NetcError as e:
            _report(e, ctx.meta.get(_OUTPUT) or Output())
            ctx.exit(1)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:  # `netc ... | head` stopped reading: not a bug, nothing to say
            _silence_stdout()
            ctx.exit(1)
        except Exception as e:  # a bug in netc: say so, without a traceback unless asked
            if os.environ.get("NETC_DEBUG") == "1":
                click.echo(traceback.format_exc(), err=True, nl=False)
            click.echo(f"netc: internal compiler error: {type(e).__name__}: {e}", err=True)
            click.echo(
                "this is a bug in netc, not in your model; please report it with the file", err=True
            )
            ctx.exit(3)


def _netc_warnings(ctx: click.Context, show: Callable) -> Callable:
    """`warnings.showwarning` that prints netc's own warnings (weights with NaN, say) as
    netc warnings, like the compiler's (and not at all under -q); others as Python does."""

    def showwarning(message: Any, category: type, *args: Any, **kwargs: Any) -> None:
        from ..weights import WeightWarning

        if issubclass(category, WeightWarning):
            out = ctx.meta.get(_OUTPUT) or Output()
            found = getattr(message, "diagnostics", ()) or (Diagnostic("warning", str(message)),)
            out.diagnostics(found, ctx.meta.get(_SOURCES))
        else:
            show(message, category, *args, **kwargs)

    return showwarning


def _looks_like_path(arg: str) -> bool:
    return "." in arg or "/" in arg or os.sep in arg or os.path.exists(arg)


def _silence_stdout() -> None:
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _report(e: NetcError, out: Output) -> None:
    """A failed compilation: every diagnostic, then `N errors` (or JSON on stdout)."""
    if out.json:
        out.print_json({"ok": False, "diagnostics": [d.to_json() for d in e.diagnostics]})
        return
    out.diagnostics(e.diagnostics, e.sources)
    warnings = 0 if out.quiet else sum(d.severity == "warning" for d in e.diagnostics)
    line = _count(len(e.errors), "error") + (f", {_count(warnings, 'warning')}" if warnings else "")
    err = out.console(stderr=True)
    err.print()
    err.print(line, style="bold red")


def _start(json_: bool, quiet: bool) -> Output:
    """The command's output settings, shared with the group so that it reports errors alike."""
    out = Output(json=json_, quiet=quiet)
    click.get_current_context().meta[_OUTPUT] = out
    return out


def _load(file: str, model: str | None, out: Output) -> Model:
    """Compile FILE (choosing `model`) with the command's --include and --limit, then print
    its warnings."""
    from pathlib import Path

    from .. import compile as compile_model

    meta = click.get_current_context().meta
    _source_only(file)
    m = compile_model(  # a Path: never mistaken for source text
        Path(file), model=model, include=meta.get(_INCLUDE, ()), limits=_limits()
    )
    out.diagnostics(m.warnings, m.sources)
    meta[_SOURCES] = m.sources
    return m


# What a file that is not a .net source holds, by suffix (netc's artifacts and their kin)
NOT_SOURCES = {
    ".onnx": "an ONNX model",
    ".ort": "an ONNX Runtime model",
    ".keras": "a Keras model",
    ".savedmodel": "a TensorFlow SavedModel",
    ".tvm": "a TVM library",
    ".pb": "a TensorFlow GraphDef",
    ".h5": "a Keras HDF5 file",
    ".npz": "numpy arrays",
    ".npy": "a numpy array",
    ".safetensors": "weights",
}


def _source_only(file: str) -> None:
    """A command that reads a .net source, given an artifact: say so rather than fail to read
    the artifact as text."""
    from pathlib import Path

    from ..source import error

    what = NOT_SOURCES.get(Path(file).suffix.lower())
    if what is None:
        return
    command = click.get_current_context().info_name
    runs = what.startswith(("an ONNX", "a Keras model", "a TensorFlow SavedModel", "a TVM"))
    raise error(
        f"{file} is {what}, not a .net source",
        hint=f"`netc run {file}` runs it; `netc {command}` reads the .net it was compiled from"
        if runs
        else f"`netc {command}` reads a .net source",
    )


def _limits() -> Limits:
    """The limits with the command's `--limit NAME=VALUE` settings."""
    from ..limits import Limits

    settings = click.get_current_context().meta.get(_LIMITS, ())
    try:
        return Limits().with_settings(settings)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--limit") from None


def _keep(key: str) -> Callable:
    """A click callback that keeps an option's value in ctx.meta (the commands of other
    modules need not take it as an argument)."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value:
            ctx.meta[key] = value

    return callback


_include_option = click.option(
    "--include",
    "-I",
    multiple=True,
    type=click.Path(file_okay=False),
    metavar="DIR",
    expose_value=False,
    callback=_keep(_INCLUDE),
    help="A folder imports may read besides the model's own, searched after it "
    "(repeatable; NETC_PATH adds more).",
)
_limit_option = click.option(
    "--limit",
    multiple=True,
    metavar="NAME=VALUE",
    expose_value=False,
    callback=_keep(_LIMITS),
    help="Raise or lower a limit on what a source may ask for (repeatable): source-bytes, "
    "nesting, expression, depth, iterations, calls, nodes, elements, params, weight-bytes "
    "(docs/language.md).",
)


def _level_option(help: str, default: int | None = 2) -> Callable:
    """-O LEVEL: the optimizer's level (0 none, 1 cleanup and folding, 2 everything)."""
    return click.option(
        "-O",
        "level",
        type=click.IntRange(0, 2),
        default=default,
        show_default=default is not None,
        metavar="LEVEL",
        help=help,
    )


def _device_option(
    choices: Sequence[str] = ("auto", "cpu", "cuda"), default: str = "auto"
) -> Callable:
    return click.option(
        "--device",
        type=click.Choice(list(choices)),
        default=default,
        show_default=True,
        help="auto: CUDA when a GPU is present, else the CPU.",
    )


_weights_option = click.option(
    "--weights",
    type=click.Path(),
    metavar="FILE",
    help="Weights by name (.npz or .safetensors); default: seeded Keras initializers.",
)
_seed_option = click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the initial weights (and of random inputs).",
)
_threads_option = click.option(
    "--threads",
    type=click.IntRange(1),
    default=None,
    help="ONNX Runtime's intra-op threads, or TVM's pool (default: the physical cores).",
)
_net_model_option = click.option(
    "--model", "model", metavar="NAME", help="The model, when a .net defines several."
)


def _model_options(f: Callable) -> Callable:
    """MODEL.net, --model, --json and -q: what every command that reads a model takes."""
    for decorate in reversed(
        (
            click.argument("file", metavar="MODEL.net", type=click.Path()),
            click.option(
                "--model",
                "model",
                metavar="NAME",
                help="The model to use when the file defines several.",
            ),
            click.option(
                "--json",
                "json_",
                is_flag=True,
                help="Machine-readable JSON on stdout, and nothing else there.",
            ),
            click.option("-q", "--quiet", is_flag=True, help="Do not print warnings."),
            _include_option,
            _limit_option,
        )
    ):
        f = decorate(f)
    return f


def _fold(option: str) -> Callable:
    """The callback of --depth or --full; --full wins whatever the order."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value and ctx.meta.get(_FOLD) != "full":
            ctx.meta[_FOLD] = "full" if option == "full" else value

    return callback


def _fold_options(f: Callable) -> Callable:
    """--depth and --full: how much of a big model the summary shows."""
    for decorate in reversed(
        (
            click.option(
                "--depth",
                type=click.IntRange(1),
                metavar="N",
                expose_value=False,
                callback=_fold("depth"),
                help="Show the layers of block calls up to N deep, each deeper call as one "
                "row (default: as deep as fits a screen).",
            ),
            click.option(
                "--full",
                is_flag=True,
                expose_value=False,
                callback=_fold("full"),
                help="Show every layer (over --depth).",
            ),
        )
    ):
        f = decorate(f)
    return f


_emit_option = click.option(
    "--emit", type=click.Choice(EMITS), help="Print this instead of the summary (ir: the IR graph)."
)


def _show(m: Model, out: Output, emit: str | None, extra: dict | None = None) -> None:
    """The summary table, or what `--emit` asked for, or the JSON of either."""
    from ..ir import print_graph

    if out.json:
        data = {"ok": True, **m.to_json(), **(extra or {})}
        if emit == "ir":
            data["ir"] = print_graph(m.graph)
        out.print_json(data)
    elif emit == "ir":
        click.echo(print_graph(m.graph))
    else:
        styled = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        click.echo(_summary(m, styled), color=styled)


def _summary(m: Model, styled: bool = False) -> str:
    """Keras' `model.summary()`: a row per layer (inputs first), block calls folded as the
    command's --depth / --full say (by default as deep as fits a screen), then the totals.
    Plain text (bold labels when `styled`): a summary must never take longer to print than
    the model took to compile."""
    from ..summary import SCREEN_ROWS, Row

    def bold(text: str) -> str:
        return click.style(text, bold=True) if styled else text

    g = m.graph
    fold = click.get_current_context().meta.get(_FOLD)
    depth = None if fold == "full" else fold if isinstance(fold, int) else m.summary_depth()
    rows = list(m.rows(depth))
    cells = []
    for i in g.inputs:
        span = g[i].span
        cells.append((i, "input", str(g[i].type), "0", str(span.line) if span else ""))
    hidden = 0
    if fold is None and len(rows) > SCREEN_ROWS:  # even folded it does not fit: head and tail
        hidden = len(rows) - SCREEN_ROWS
        half = SCREEN_ROWS // 2
        rows = rows[:half] + [Row("...", "", "", 0, None, 0)] + rows[-half:]
    for row in rows:
        if row.layers == 0:  # the head-and-tail gap
            cells.append((f"... {hidden:,} more rows", "", "", "", ""))
            continue
        cells.append(
            (
                row.name,
                f"{row.op}: {_count(row.layers, 'layer')}" if row.block else row.op,
                _type_str(row.type),
                f"{row.params:,}",
                "" if row.line is None else str(row.line),
            )
        )
    lines = [bold("Model: ") + f'"{g.name}" ({m.path})']
    lines += _table(("Layer", "Op", "Output shape", "Param #", "Line"), cells, bold)
    if depth is not None or hidden:
        folded = f"block calls {depth} deep shown as one row each" if depth else ""
        left_out = f"{hidden:,} rows left out" if hidden else ""
        lines.append(
            f"{_count(len(m.layers), 'layer')}: "
            + "; ".join(p for p in (folded, left_out) if p)
            + " (--depth N or --full shows more)"
        )
    lines += [
        bold("Total params: ") + f"{m.total_params:,}",
        bold("Trainable params: ") + f"{m.trainable_params:,}",
        bold("Non-trainable params: ") + f"{m.total_params - m.trainable_params:,}",
        bold("FLOPs per sample: ") + f"{human_flops(m.flops)} ({m.flops:,}){_at_dims(m)}",
    ]
    return "\n".join(lines)


def _at_dims(m: Model) -> str:
    """What the FLOPs assumed of symbolic dims other than the batch: ` at T=100`, and
    `; T=1 assumed (--dim T=SIZE sets it)` for those not given."""
    given = {k: v for k, v in m.dims.items() if k not in m.batch_symbols}
    at = " at " + ", ".join(f"{k}={v}" for k, v in given.items()) if given else ""
    assumed = m.assumed_dims
    if not assumed:
        return at
    said = ", ".join(f"{k}=1" for k in assumed)
    flags = " ".join(f"--dim {k}=SIZE" for k in assumed)
    if click.get_current_context().info_name != "summary":  # the default command's --dim is tvm's
        flags = f"`netc summary {flags}`"
    return f"{at}; {said} assumed ({flags} sets {'it' if len(assumed) == 1 else 'them'})"


def _sized(m: Model, dims: dict[str, int] | None) -> Model:
    """The model with its FLOPs counted at --dim's sizes (a usage error for an unknown one)."""
    try:
        return m.with_dims(dims)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--dim") from None


def _table(
    headers: Sequence[str], cells: Sequence[tuple[str, ...]], bold: Callable[[str], str]
) -> list[str]:
    """A table drawn as rich draws its default one (heavy head, light body), in plain text."""
    right = {"Param #", "Line"}
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str], bar: str, style: Callable[[str], str] = str) -> str:
        padded = [
            v.rjust(w) if h in right else v.ljust(w) for v, w, h in zip(values, widths, headers)
        ]
        return bar + bar.join(f" {style(p)} " for p in padded) + bar

    rule = ["━" * (w + 2) for w in widths]
    out = ["┏" + "┳".join(rule) + "┓", line(headers, "┃", bold), "┡" + "╇".join(rule) + "┩"]
    out += [line(r, "│") for r in cells]
    out.append("└" + "┴".join("─" * (w + 2) for w in widths) + "┘")
    return out


def _type_str(t: object) -> str:
    return "(" + ", ".join(map(str, t)) + ")" if isinstance(t, tuple) else str(t)


def _target_option(help: str) -> Callable:
    """-t TARGET: the backend (the names in netc.targets, without importing any backend)."""
    from ..targets import TARGETS

    return click.option(
        "-t",
        "--target",
        type=click.Choice(list(TARGETS)),
        default="onnx",
        show_default=True,
        help=help,
    )


def _parse_dims(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> dict[str, int] | None:
    """--dim N=8 ... as {"N": 8}; None when not given."""
    dims: dict[str, int] = {}
    for text in values:
        name, eq, size = text.partition("=")
        if not eq or not name.strip().isidentifier() or not size.strip().isdigit():
            raise click.BadParameter(f"{text!r}: write SYMBOL=SIZE, e.g. N=8", ctx, param)
        dims[name.strip()] = int(size)
    return dims or None


def _target_options(f: Callable) -> Callable:
    """What the default command and `run` take to build an artifact."""
    for decorate in reversed(
        (
            _target_option(
                "The backend to compile for (keras and tf need netc[tf], tvm netc[tvm])."
            ),
            _level_option(
                "Optimization: -O0 none, -O1 cleanup and folding, -O2 everything "
                "(the default when writing a model; `--emit ir` alone shows -O0).",
                default=None,
            ),
            _weights_option,
            _seed_option,
            click.option(
                "--io-layout",
                type=click.Choice(["channels-last", "channels-first"]),
                default=None,
                help="-t onnx: layout of the model's image inputs and outputs "
                "(default channels-last).",
            ),
            click.option(
                "--inference",
                is_flag=True,
                help="-t keras: a prediction-only model from the -O2 graph (batchnorm "
                "folded, fusions); the default keeps the model trainable.",
            ),
            click.option(
                "--xla", is_flag=True, help="-t tf: compile the serving function with XLA."
            ),
            click.option(
                "--tvm-target",
                metavar="TARGET",
                default=None,
                help='-t tvm: the TVM target, a kind ("llvm", "cuda") or a JSON object '
                '(\'{"kind": "llvm", "mcpu": "skylake-avx512"}\'); default this machine\'s CPU.',
            ),
            click.option(
                "--dim",
                "dims",
                multiple=True,
                metavar="SYMBOL=SIZE",
                callback=_parse_dims,
                help="-t tvm: compile with a symbolic dim fixed, e.g. --dim N=8 (repeatable); "
                "the library then runs at that size only.",
            ),
            click.option(
                "--verify-passes",
                is_flag=True,
                help="Check the IR after every pass and run the graph before and after "
                "it on random inputs; name the first pass that changes an output.",
            ),
            click.option(
                "--print-after",
                "print_after",
                multiple=True,
                metavar="PASS",
                callback=_check_passes,
                help="Print the IR after this pass (repeatable; `all` for every pass).",
            ),
            click.option("--stats", is_flag=True, help="Print what each pass did."),
            click.option(
                "--ort-optimize",
                type=click.Choice(["basic", "extended", "all"]),
                default=None,
                help="-t onnx: write ONNX Runtime's graph as optimized at this level, so a "
                "deployed session skips the optimizer at load (`all` ties the file to this CPU "
                "kind and ONNX Runtime version).",
            ),
            click.option(
                "--ort-contrib",
                is_flag=True,
                help="-t onnx: emit ONNX Runtime's com.microsoft contrib ops where they beat "
                "its own optimizer (self-attention as one Attention node); the model then "
                "needs ONNX Runtime.",
            ),
            click.option(
                "--quantize",
                type=click.Choice(["int8"]),
                default=None,
                help="-t onnx: write the int8 model (static QDQ for a model with convolutions, "
                "calibrated on --calib; dynamic otherwise), refused past --min-top1-agreement "
                "(docs/quantization.md).",
            ),
            click.option(
                "--calib",
                type=click.Path(),
                metavar="DATA.npz",
                default=None,
                help="--quantize: sample inputs (one array per input, samples along axis 0); "
                "the last 20 % are held out to measure the accuracy cost.",
            ),
            click.option(
                "--calib-method",
                type=click.Choice(["percentile", "entropy", "minmax"]),
                default=None,
                help="--quantize: how activation ranges are calibrated (default percentile).",
            ),
            click.option(
                "--min-top1-agreement",
                type=click.FloatRange(0, 100),
                metavar="PERCENT",
                default=None,
                help="--quantize: refuse the int8 model when fewer than PERCENT % of the samples "
                "keep the float model's top-1 result (default 99).",
            ),
            click.option(
                "--warn-accuracy",
                is_flag=True,
                help="--quantize: write the int8 model below --min-top1-agreement, with a warning.",
            ),
        )
    ):
        f = decorate(f)
    return f


def _check_passes(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> Sequence[str]:
    """--print-after names passes (or `all`): an unknown one is bad usage, with the nearest."""
    from ..passes import PASSES
    from ..source import did_you_mean

    for name in values:
        if name != "all" and name not in PASSES:
            near = did_you_mean(name, [*PASSES, "all"])
            raise click.BadParameter(
                f"unknown pass `{name}`; " + (near or f"the passes are {', '.join(PASSES)}"),
                ctx,
                param,
            )
    return values


def _pass_options(
    level: int, verify_passes: bool, print_after: Sequence[str], stats: dict | None
) -> dict[str, Any]:
    return {
        "level": level,
        "verify": verify_passes,
        "print_after": tuple(print_after),
        "stats": stats,
        "on_print": lambda name, text: click.echo(f"// after {name}\n{text}", err=True),
    }


def _print_stats(stats: dict, out: Output) -> None:
    if out.json or not stats:
        return
    from rich.table import Table

    table = Table(title="what each pass did")
    for column in ("pass", "removed", "added", "changed", "folded", "fused", "ms"):
        table.add_column(column, justify="left" if column == "pass" else "right")
    for name, st in stats.items():
        table.add_row(
            name,
            *(str(v) for v in (st.removed, st.added, st.changed, st.folded, st.fused)),
            f"{st.seconds * 1e3:.1f}",
        )
    out.console(stderr=True).print(table)
