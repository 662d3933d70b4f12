"""The commands that run a model: `run` (outputs on inputs from a file) and `verify` (the backend
against the numpy reference, value by value). `bench` is in bench.py."""

from __future__ import annotations

from typing import Any

import click

from .common import (
    _device_option,
    _level_option,
    _load,
    _model_options,
    _net_model_option,
    _seed_option,
    _start,
    _target_option,
    _threads_option,
    _weights_option,
)


@click.command()
@click.argument("file", metavar="MODEL.net|MODEL.onnx", type=click.Path())
@click.option(
    "-i",
    "--input",
    "inputs",
    required=True,
    type=click.Path(),
    metavar="FILE",
    help="Inputs: .npz with one array per input name, or .npy for a one-input model.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    metavar="FILE.npz",
    help="Write the outputs here instead of printing a summary of them.",
)
@_net_model_option
@_weights_option
@_seed_option
@_level_option("Optimization level for a .net model.")
@_device_option()
@_threads_option
@click.option("--json", "json_", is_flag=True, help="Output statistics as JSON.")
def run(
    file: str,
    inputs: str,
    output: str | None,
    model: str | None,
    weights: str | None,
    seed: int,
    level: int,
    device: str,
    threads: int | None,
    json_: bool,
) -> None:
    """Run a model on inputs from a file (ONNX Runtime) and summarize or write the outputs."""
    from pathlib import Path

    import numpy as np

    from netc.runtime import load
    from netc.runtime.api import read_inputs, write_outputs

    out = _start(json_, False)
    source: Any = _load(file, model, out) if Path(file).suffix == ".net" else file
    session = load(source, device=device, threads=threads, weights=weights, seed=seed, level=level)
    results = session.run(read_inputs(inputs, session))
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
        out.print_json(
            {
                "ok": True,
                "device": session.device,
                "outputs": rows,
                **({"written": output} if output else {}),
            }
        )
        return
    for r in rows:
        stats = (
            f"  min {r['min']:.6g}  max {r['max']:.6g}  mean {r['mean']:.6g}" if "min" in r else ""
        )
        click.echo(f"{r['name']}: {r['dtype']}{r['shape']}{stats}")
    if output:
        click.echo(f"wrote {output}")


@click.command()
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
    device: str,
) -> None:
    """Check the session `netc run` deploys against the numpy reference on normal,
    all-negative, large and near-zero inputs, and every value one by one; report the first
    source line whose value differs (exit 1), or that all agree."""
    from netc.runtime.verify import verify as verify_model

    out = _start(json_, quiet)
    if weights is not None and initial:
        raise click.UsageError("--weights and --initial-weights exclude each other")
    m = _load(file, model, out)
    report = verify_model(
        m,
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
