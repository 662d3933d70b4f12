"""`netc bench`: compile a model for every installed target (and the GPU when there is one),
check each one's outputs against the float64 reference, then time them side by side.

The measuring lives in `netc.runtime.bench` (`plan`, `compare`); this module maps flags to it
and renders its results as tables, or JSON.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from .common import (
    Output,
    _device_option,
    _include_option,
    _limit_option,
    _load,
    _net_model_option,
    _parse_dims,
    _seed_option,
    _start,
    _threads_option,
)

if TYPE_CHECKING:
    from ..runtime.bench import Result

# netc.runtime.bench.BENCH_TARGETS' keys, written out so that `netc --help` imports nothing
KINDS = ("onnx", "keras", "tf", "tf-xla", "tvm")


def _parse_batches(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    """--batch 1,8,32 as (1, 8, 32): positive sizes, each once, in the order given."""
    sizes: list[int] = []
    for part in value.split(","):
        text = part.strip()
        if not text.isdigit() or int(text) < 1:
            raise click.BadParameter(
                f"{value!r}: write batch sizes >= 1 separated by commas, e.g. 1,8,32", ctx, param
            )
        if int(text) not in sizes:
            sizes.append(int(text))
    return tuple(sizes)


@click.command()
@click.argument("file", metavar="MODEL.net|ARTIFACT", type=click.Path())
@_net_model_option
@click.option(
    "-t",
    "--target",
    "kinds",
    type=click.Choice(KINDS),
    multiple=True,
    help="A target to time (repeatable; default every installed one): keras is -t keras "
    "--inference, tf-xla is -t tf --xla.",
)
@click.option(
    "-O",
    "levels",
    type=click.IntRange(0, 2),
    multiple=True,
    metavar="LEVEL",
    help="Opt level of the graph each target is compiled from (repeatable; default -O2).",
)
@click.option(
    "--batch",
    "batches",
    default="1,8,32",
    show_default=True,
    callback=_parse_batches,
    metavar="N[,N...]",
    help="Batch sizes: latency and throughput at each.",
)
@click.option(
    "--dim",
    "dims",
    multiple=True,
    metavar="SYMBOL=SIZE",
    callback=_parse_dims,
    help="The size of a symbolic dim of the inputs other than the batch, e.g. --dim T=128 "
    "(repeatable; default 16); tvm compiles its library for it.",
)
@click.option(
    "--repeat",
    type=click.IntRange(1),
    default=30,
    show_default=True,
    help="Rounds per batch size at most (every target in turn each round: untimed calls for "
    "0.05 s, then 3 timed ones; one timed call a round for an artifact alone).",
)
@click.option("--warmup", type=click.IntRange(0), default=3, show_default=True)
@click.option(
    "--budget",
    type=click.FloatRange(0),
    default=20.0,
    show_default=True,
    metavar="SECONDS",
    help="Stop a batch size's rounds after this long (at least 5 rounds).",
)
@click.option(
    "--ort-opt",
    "ort_opt",
    type=click.Choice(["disable", "basic", "extended", "all"]),
    default=None,
    help="-t onnx: ONNX Runtime's own graph optimizer (default: as `netc run` sets it).",
)
@click.option(
    "--weights",
    type=click.Path(),
    metavar="FILE",
    help="Weights by name (.npz or .safetensors); default randomized (every bias and "
    "batchnorm statistic drawn, as netc verify checks).",
)
@_seed_option
@_device_option()
@_threads_option
@click.option("--json", "json_", is_flag=True, help="Results as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No warnings, no progress bar.")
@_include_option
@_limit_option
def bench(
    file: str,
    model: str | None,
    kinds: Sequence[str],
    levels: Sequence[int],
    batches: tuple[int, ...],
    dims: dict[str, int] | None,
    repeat: int,
    warmup: int,
    budget: float,
    ort_opt: str | None,
    weights: str | None,
    seed: int,
    device: str,
    threads: int | None,
    json_: bool,
    quiet: bool,
) -> None:
    """Compile a model for every installed target (onnx, keras --inference, tf, tf --xla,
    tvm; on the CPU, and the GPU when present), check that each agrees with the numpy
    reference, then time them interleaved: compile time, first call, steady-state latency
    (median, p10, p90), throughput at each batch size, memory, and each one's time against the
    fastest. An artifact (.onnx, .keras, .savedmodel, .tvm) is timed alone, unchecked."""
    from pathlib import Path

    from netc.runtime import bench as measure

    out = _start(json_, quiet)
    is_net = Path(file).suffix == ".net"
    if not is_net and (kinds or levels or weights):
        raise click.UsageError("-t, -O and --weights apply to a .net model, not to an artifact")
    skipped: list[str] = []
    with _Progress(out) as progress:
        if is_net:
            m = _load(file, model, out)
            contenders, skipped = measure.plan(kinds or KINDS, device, levels or (2,))
            if not json_:
                for line in skipped:
                    progress.note(line)
                skipped = []  # compare's own lines are shown at the end
            total = measure.steps(len(contenders), len(batches), repeat)
            progress.start(total)
            results = measure.compare(
                m,
                contenders,
                batches,
                weights=weights,
                seed=seed,
                dims=dims,
                warmup=warmup,
                repeat=repeat,
                budget_s=budget,
                threads=threads,
                ort_opt=ort_opt,
                progress=progress.advance,
                skipped=skipped,
            )
            name = m.graph.name
        else:
            progress.start(measure.steps(1, len(batches), repeat))
            results = measure.time_artifact(
                file,
                batches,
                device=device,
                threads=threads,
                ort_opt=ort_opt,
                dims=dims,
                seed=seed,
                warmup=warmup,
                repeat=repeat,
                budget_s=budget,
                progress=progress.advance,
            )
            name = Path(file).name
    if not results:
        raise click.ClickException("no target to time: " + "; ".join(skipped or ["none asked"]))
    data = report(name, results, batches, dims, checked=is_net, skipped=skipped)
    if out.json:
        out.print_json(data)
        return
    for line in skipped:
        click.echo(line, err=True)
    _tables(data, out)


def report(
    name: str,
    results: Sequence[Result],
    batches: Sequence[int],
    dims: dict[str, int] | None,
    *,
    checked: bool,
    skipped: Sequence[str],
) -> dict[str, Any]:
    """The JSON of a benchmark: the machine, then per target its compile time, memory and,
    per batch size, latencies (ms), throughput (samples/s) and time over the fastest's."""
    import platform

    fastest = {b: min(r.timings[b].median for r in results) for b in batches}
    targets = []
    for r in results:
        c = r.contender
        rows = []
        for b in batches:
            t = r.timings[b]
            rows.append(
                {
                    "batch": b,
                    "first_ms": r.first_s[b] * 1e3,
                    "median_ms": t.median * 1e3,
                    "p10_ms": t.percentile(10) * 1e3,
                    "p90_ms": t.percentile(90) * 1e3,
                    "min_ms": t.min * 1e3,
                    "max_ms": t.max * 1e3,
                    "runs": len(t.times),
                    "throughput": b / t.median,
                    "vs_fastest": t.median / fastest[b],
                    **({"max_error": r.errors[b]} if b in r.errors else {}),
                }
            )
        targets.append(
            {
                "name": c.name,
                "target": c.target,
                "options": c.options,
                "device": c.device,
                "level": c.level,
                "compile_s": r.compile_s,
                "cached": r.cached,
                "tuned": r.tuned,
                "memory_mib": r.memory_mib,
                "batches": rows,
            }
        )
    return {
        "ok": True,
        "model": name,
        "checked": checked,
        "batches": list(batches),
        "dims": dict(dims or {}),
        "machine": {
            "cpu": _cpu(),
            "cores": os.cpu_count(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "python": platform.python_version(),
        },
        "skipped": list(skipped),
        "targets": targets,
    }


def _cpu() -> str:
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _tables(data: dict[str, Any], out: Output) -> None:
    """Two rich tables: latency and throughput per batch size, then each target's compile
    time, memory and agreement with the reference."""
    from rich.table import Table

    console = out.console()
    dims = ", ".join(f"{k}={v}" for k, v in data["dims"].items())
    title = f"{data['model']}: ms per batch" + (f" ({dims})" if dims else "")
    table = Table(title=title)
    heads = ("batch", "target", "device", "median", "p10", "p90", "first call")
    for head in (*heads, "samples/s", "× fastest"):
        table.add_column(head, justify="left" if head in ("target", "device") else "right")
    for i, b in enumerate(data["batches"]):
        if i:
            table.add_section()
        for t in data["targets"]:
            row = next(r for r in t["batches"] if r["batch"] == b)
            table.add_row(
                str(b),
                t["name"],
                t["device"],
                f"{row['median_ms']:.3f}",
                f"{row['p10_ms']:.3f}",
                f"{row['p90_ms']:.3f}",
                f"{row['first_ms']:.1f}",
                f"{row['throughput']:,.0f}",
                f"{row['vs_fastest']:.2f}x",
                style="bold" if row["vs_fastest"] == 1.0 and len(data["targets"]) > 1 else None,
            )
    console.print(table)
    compiled = Table(title="compiling, memory and agreement")
    for head in ("target", "device", "compile s", "memory MiB", "max error"):
        compiled.add_column(head, justify="left" if head in ("target", "device") else "right")
    for t in data["targets"]:
        errors = [r["max_error"] for r in t["batches"] if "max_error" in r]
        compiled.add_row(
            t["name"],
            t["device"],
            f"{t['compile_s']:.2f}" + (" (cached)" if t["cached"] else ""),
            "" if t["memory_mib"] is None else f"{t['memory_mib']:,.0f}",
            f"{max(errors):.2f} of tolerance" if errors else "unchecked",
        )
    console.print(compiled)
    load = data["machine"]["load_average"]
    note = f"{data['machine']['cpu']}, {data['machine']['cores']} cores"
    if load:
        note += f", load average {load[0]:.1f}"
    click.echo(note + ("" if data["checked"] else "; an artifact alone: not checked"))


class _Progress:
    """A rich progress bar on stderr while `netc bench` compiles and times (none under -q,
    --json's quiet or off a terminal); `note` prints a line above it."""

    def __init__(self, out: Output):
        self.out = out
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> _Progress:
        console = self.out.console(stderr=True)
        if not self.out.quiet and console.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self.bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()

    def note(self, line: str) -> None:
        if self.bar is not None:
            self.bar.console.print(line)
        elif not self.out.json:
            click.echo(line, err=True)

    def start(self, total: int) -> None:
        if self.bar is not None:
            self.task = self.bar.add_task("starting", total=total)

    def advance(self, what: str, steps: int) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, description=what, advance=steps)
