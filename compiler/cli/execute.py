"""The commands that run a model: `run` (outputs on inputs from a file) and `verify` (the backend
against the numpy reference, value by value). `bench` is in bench.py."""

from __future__ import annotations

from typing import Any

import click

from ..dims import Bound, check_bounds, graph_bounds
from .common import (
    _device_option,
    _level_option,
    _load,
    _model_options,
    _net_model_option,
    _seed_option,
    _sized,
    _start,
    _target_option,
    _threads_option,
    _weights_option,
)
from .inputs import (
    DEFAULT_SIZE,
    dims_option,
    feed_symbols,
    graph_int_high,
    onnx_bounds,
    onnx_int_high,
    random_feed,
    sizes_for,
)


@click.command(
    short_help="Run a model on inputs from a file or seeded random ones; summarize (and write) "
    "the outputs."
)
@click.argument("file", metavar="MODEL.net|ARTIFACT", type=click.Path())
@click.option(
    "-i",
    "--input",
    "inputs",
    type=click.Path(),
    metavar="FILE",
    help="Inputs: .npz with one array per input name, or .npy for a one-input model; "
    "without it, seeded random inputs (--seed, --batch, --dim).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    metavar="FILE.npz",
    help="Also write the outputs here, by name (the summary of them is printed either way).",
)
@_net_model_option
@_weights_option
@_seed_option
@_level_option("Optimization level for a .net model.")
@click.option(
    "--batch",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Batch size of random inputs (without -i).",
)
@dims_option(
    "The size of a symbolic dim of random inputs, e.g. --dim T=128 (repeatable; without it "
    f"{DEFAULT_SIZE}, and the output says so)."
)
@_device_option()
@_threads_option
@click.option("--json", "json_", is_flag=True, help="Output statistics as JSON.")
def run(
    file: str,
    inputs: str | None,
    output: str | None,
    model: str | None,
    weights: str | None,
    seed: int,
    level: int,
    batch: int,
    dims: dict[str, int] | None,
    device: str,
    threads: int | None,
    json_: bool,
) -> None:
    """Run a model (ONNX Runtime for a .net or .onnx; the artifact's own runtime for .keras,
    .savedmodel, .tvm) on inputs from a file or on seeded random ones; print a summary of the
    outputs and, with -o, write them."""
    from pathlib import Path

    import numpy as np

    from netc.runtime import load
    from netc.runtime.api import read_inputs, write_outputs

    out = _start(json_, False)
    if inputs is not None and (dims or batch != 1):
        raise click.UsageError("--batch and --dim size random inputs: leave them out with -i")
    m = _load(file, model, out) if Path(file).suffix == ".net" else None
    session = load(
        m if m is not None else file,
        device=device,
        threads=threads,
        weights=weights,
        seed=seed,
        level=level,
    )
    bounds, int_high, sources = _limits_of(m, file)
    sizes = None
    if inputs is None:
        shapes = [s.shape for s in session.inputs]
        sizes = sizes_for(shapes, dims, batch, bounds)
        feed = random_feed(session.inputs, sizes, seed, int_high)
    else:
        feed = read_inputs(inputs, session)
    check_bounds(bounds, feed_symbols(session.inputs, feed), sources)
    results = session.run(feed)
    if output:
        write_outputs(results, output)
    rows = [
        {
            "name": k,
            "dtype": str(v.dtype),
            "shape": list(v.shape),
            **(
                {"min": float(np.min(v)), "max": float(np.max(v)), "mean": float(np.mean(v))}
                if v.size and v.dtype.kind in "fiu"
                else {}
            ),
        }
        for k, v in results.items()
    ]
    if out.json:
        random = {"seed": seed, "sizes": sizes.sizes, "assumed": sizes.assumed} if sizes else {}
        out.print_json(
            {
                "ok": True,
                "device": session.device,
                "inputs": {
                    "file": inputs,
                    **random,
                    "shapes": {k: list(v.shape) for k, v in feed.items()},
                },
                "outputs": rows,
                **({"written": output} if output else {}),
            }
        )
        return
    if sizes is not None:
        shown = ", ".join(f"{k} {v.dtype}{list(v.shape)}" for k, v in feed.items())
        note = f"; {sizes.note()}" if sizes.assumed else ""
        click.echo(f"random inputs (seed {seed}): {shown}{note}")
    for r in rows:
        stats = (
            f"  min {r['min']:.6g}  max {r['max']:.6g}  mean {r['mean']:.6g}" if "min" in r else ""
        )
        click.echo(f"{r['name']}: {r['dtype']}{r['shape']}{stats}")
    if output:
        click.echo(f"wrote {output}")


def _limits_of(m: Any, file: str) -> tuple[list[Bound], int | None, Any]:
    """What `run` checks and sizes inputs by: the bounds on symbolic dims, the smallest
    embedding's vocabulary and the sources, from the .net's graph or the .onnx model."""
    from pathlib import Path

    if m is not None:
        return graph_bounds(m.graph), graph_int_high(m.graph), m.sources
    if Path(file).suffix == ".onnx":
        import onnx

        try:  # the session has loaded it: no second check (a saved optimized graph has
            # ONNX Runtime's own ops, which onnx.checker does not know)
            proto = onnx.load(file, load_external_data=False)
        except Exception:
            return [], None, None
        return onnx_bounds(proto), onnx_int_high(proto), None
    return [], None, None


@click.command(
    short_help="Check what `netc run` deploys against the numpy reference, value by value."
)
@_model_options
@_target_option("The backend checked against the reference.")
@_level_option("Optimization level of the graph that is checked.")
@click.option(
    "--weights",
    type=click.Path(),
    metavar="FILE",
    help="Weights by name (.npz or .safetensors); default: randomized, every bias and "
    "batchnorm statistic drawn, so that a dropped one shows.",
)
@click.option(
    "--initial-weights",
    "initial",
    is_flag=True,
    help="Check with the seeded initial weights (what `netc run` uses without --weights).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the weights (randomized or initial) and of the inputs.",
)
@click.option(
    "--batch",
    type=click.IntRange(1),
    default=2,
    show_default=True,
    help="Batch size of the inputs checked.",
)
@click.option(
    "--ort-opt",
    "ort_opt",
    type=click.Choice(["disable", "basic", "extended", "all"]),
    default="all",
    show_default=True,
    help="-t onnx: ONNX Runtime's graph optimizer level of the checked session (`netc run` "
    "uses all).",
)
@dims_option(
    "The size of a symbolic dim of the inputs checked, e.g. --dim T=128 (repeatable; "
    "default 5 for each but the batch; the report names every size)."
)
@_device_option()
def verify(
    file: str,
    model: str | None,
    json_: bool,
    quiet: bool,
    target: str,
    level: int,
    weights: str | None,
    initial: bool,
    seed: int,
    batch: int,
    ort_opt: str,
    dims: dict[str, int] | None,
    device: str,
) -> None:
    """Check the session `netc run` deploys against the numpy reference on normal,
    all-negative, large and near-zero inputs, and every value one by one; report the first
    source line whose value differs (exit 1), or that all agree."""
    from netc.runtime.verify import verify as verify_model

    out = _start(json_, quiet)
    if weights is not None and initial:
        raise click.UsageError("--weights and --initial-weights exclude each other")
    m = _sized(_load(file, model, out), dims)  # an unknown --dim symbol: a usage error
    report = verify_model(
        m,
        symbols=dims,
        target=target,
        level=level,
        weights=weights,
        initial=initial,
        seed=seed,
        batch=batch,
        device=device,
        graph_optimization=ort_opt,
    )
    if out.json:
        out.print_json({"ok": report.ok, **report.to_json()})
    elif report.ok:
        click.echo(report.render())
    else:
        diagnostic = report.diagnostic()
        if diagnostic is not None:
            out.diagnostics([diagnostic], m.sources)
        else:
            click.echo(report.render(), err=True)
    if not report.ok:
        click.get_current_context().exit(1)
