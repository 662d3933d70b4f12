"""The commands that read a model and write what it becomes: `compile` (the default: check,
summarize, write the artifact), `summary`, `check` and `weights`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .common import (
    DEFAULT_COMMAND,
    Output,
    _count,
    _emit_option,
    _fold_options,
    _load,
    _model_options,
    _pass_options,
    _print_stats,
    _seed_option,
    _show,
    _sized,
    _start,
    _target_options,
)
from .inputs import dims_option

if TYPE_CHECKING:
    from ..summary import Model


# What `--emit` takes in the default command: the IR printed, (-t tf) the frozen GraphDef
# written instead of the SavedModel, or (-t tvm) the Relax module printed as TVMScript.
COMPILE_EMITS = ("ir", "graphdef", "relax")


# The default command: check, print the summary, write the artifact (model.onnx).
@click.command(DEFAULT_COMMAND)
@_model_options
@click.option(
    "--emit",
    type=click.Choice(COMPILE_EMITS),
    help="ir: print the IR graph instead of the summary; graphdef (-t tf): write the frozen "
    "GraphDef MODEL.pb instead of the SavedModel folder; relax (-t tvm): print the Relax module "
    "as TVMScript instead of the summary.",
)
@_target_options
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    metavar="PATH",
    help="Where to write the model (default: MODEL.onnx next to the source).",
)
@click.option("--no-write", is_flag=True, help="Check and summarize only; write nothing.")
@_fold_options
def compile_cmd(
    file: str,
    model: str | None,
    json_: bool,
    quiet: bool,
    emit: str | None,
    target: str,
    level: int | None,
    weights: str | None,
    seed: int,
    io_layout: str | None,
    inference: bool,
    xla: bool,
    tvm_target: str | None,
    dims: dict[str, int] | None,
    verify_passes: bool,
    print_after: Sequence[str],
    stats: bool,
    ort_optimize: str | None,
    ort_contrib: bool,
    quantize: str | None,
    calib: str | None,
    calib_method: str | None,
    min_top1_agreement: float | None,
    warn_accuracy: bool,
    output: str | None,
    no_write: bool,
) -> None:
    """Check a model, print its summary and write it for the target (the default command).

    `netc MODEL.net` is short for `netc compile MODEL.net`; it writes MODEL.onnx
    (MODEL.keras with -t keras, the SavedModel folder MODEL.savedmodel with -t tf, the frozen
    GraphDef MODEL.pb with -t tf --emit graphdef).
    """
    from .. import driver
    from ..source import error

    out = _start(json_, quiet)
    m = _load(file, model, out)
    options = dict(
        io_layout=io_layout, inference=inference, xla=xla, tvm_target=tvm_target, dims=dims
    )
    driver.target_options(target, options)  # a flag the target does not take: before any work
    for flag, given in (("--ort-optimize", ort_optimize), ("--ort-contrib", ort_contrib)):
        if given and target != "onnx":
            raise error(f"{flag} applies to -t onnx, not to -t {target}")
    from ..quantize import options as quantize_options

    quantization = quantize_options(
        target, quantize, calib, calib_method, min_top1_agreement, warn_accuracy
    )
    report = None
    if emit == "graphdef":
        _check_graphdef(target, xla)
    if emit == "relax":
        _print_relax(m, target, weights, seed, options, level, out)
        return
    keep_training = driver.TARGETS[target].trains and not inference
    pass_stats: dict | None = {} if stats else None
    if emit == "ir":
        values = driver.model_weights(m, weights, seed)
        graph, _ = driver.optimized(
            m,
            values,
            keep_training=keep_training,
            **_pass_options(level or 0, verify_passes, print_after, pass_stats),
        )
        _show_ir(graph, m, out)
        _print_stats(pass_stats or {}, out)
        if verify_passes:
            _say_verified(level or 0, keep_training, out)
        return
    _check_output(output, target, emit)
    path = None
    if no_write and weights is not None and not (print_after or stats or verify_passes):
        driver.model_weights(m, weights, seed)  # checked by name and shape, written nowhere
    if no_write and (print_after or stats or verify_passes):  # run the passes, write nothing
        driver.optimized(
            m,
            driver.model_weights(m, weights, seed),
            keep_training=keep_training,
            **_pass_options(2 if level is None else level, verify_passes, print_after, pass_stats),
        )
    elif not no_write and emit == "graphdef":
        path = Path(output or Path(file).with_suffix(".pb"))
        artifact = driver.emit(
            m,
            target,
            weights=weights,
            seed=seed,
            **_pass_options(2 if level is None else level, verify_passes, print_after, pass_stats),
        )
        driver.backend(target).save_graphdef(artifact, path)
    elif not no_write and target == "onnx":  # the ONNX model as it is deployed (onnx_deploy)
        from ..backends import onnx_deploy

        path = Path(output or driver.default_output(file, target))
        artifact = driver.emit(
            m,
            target,
            weights=weights,
            seed=seed,
            io_layout=io_layout,  # the target's only option (checked above)
            **_pass_options(2 if level is None else level, verify_passes, print_after, pass_stats),
        )
        if ort_contrib:
            from ..backends.onnx_contrib import use_contrib_ops

            artifact = use_contrib_ops(artifact, m.graph)
        report = onnx_deploy.save(
            artifact, path, ort_optimize=ort_optimize, graph=m.graph, quantize=quantization
        )
    elif not no_write:
        path = driver.write(
            m,
            output or driver.default_output(file, target),
            target,
            weights=weights,
            seed=seed,
            **options,
            **_pass_options(2 if level is None else level, verify_passes, print_after, pass_stats),
        )
    extra: dict[str, Any] = {"output": str(path)} if path else {}
    if report is not None:
        extra["quantization"] = report.to_json()
    if no_write and weights is not None:
        extra["weights"] = weights
    if verify_passes:
        extra["verified_passes"] = list(_verified(2 if level is None else level, keep_training))
    _show(m, out, None, extra=extra or None)
    _print_stats(pass_stats or {}, out)
    if verify_passes:
        _say_verified(2 if level is None else level, keep_training, out)
    if no_write and weights is not None and not out.json:
        click.echo(f"weights {weights} fit the model: {_count(len(m.weights), 'weight')}")
    if path and not out.json:
        click.echo(f"wrote {path}")
        for line in report.lines() if report else ():
            click.echo(line, err=line.startswith("warning:"))


def _verified(level: int, keep_training: bool) -> tuple[str, ...]:
    """The names of the passes --verify-passes checked at opt `level`."""
    from ..passes import pipeline

    return tuple(p.__name__ for p in pipeline(level, keep_training=keep_training))


def _say_verified(level: int, keep_training: bool, out: Output) -> None:
    """--verify-passes found nothing: say so (on stderr), or that -O0 has no pass to check."""
    if out.json:
        return
    names = _verified(level, keep_training)
    if not names:
        click.echo(f"--verify-passes: -O{level} runs no passes, so none was checked", err=True)
        return
    click.echo(
        f"--verify-passes: all {len(names)} passes of -O{level} verified: the IR is well formed "
        "after each, and each keeps every output on random inputs",
        err=True,
    )


# Suffixes of files netc (or another tool) writes: what -o must not be given for another target
OUTPUT_SUFFIXES = {
    ".onnx": ("onnx", "-t onnx"),
    ".ort": ("onnx", "-t onnx"),
    ".keras": ("keras", "-t keras"),
    ".h5": (None, "netc writes Keras models as .keras: -t keras -o MODEL.keras"),
    ".hdf5": (None, "netc writes Keras models as .keras: -t keras -o MODEL.keras"),
    ".savedmodel": ("tf", "-t tf"),
    ".pb": ("tf", "-t tf --emit graphdef"),
    ".tvm": ("tvm", "-t tvm"),
    ".tflite": (None, "netc writes no TFLite model; -t tf writes a SavedModel to convert"),
    ".pt": (None, "netc writes no PyTorch model"),
    ".pth": (None, "netc writes no PyTorch model"),
    ".npz": (None, "`netc weights MODEL.net -o FILE.npz` writes the weights"),
    ".safetensors": (None, "`netc weights MODEL.net -o FILE.safetensors` writes the weights"),
    ".net": (None, "-o names the compiled model, not a source"),
}


def _check_output(output: str | None, target: str, emit: str | None) -> None:
    """-o with the suffix of another format (`-o out.h5` for ONNX) is bad usage: netc would
    write the target's format under a misleading name."""
    if output is None:
        return
    suffix = Path(output).suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        return  # a name of the user's own: the target's format, as asked
    written_by, how = OUTPUT_SUFFIXES[suffix]
    graphdef = suffix == ".pb"
    if written_by == target and graphdef == (emit == "graphdef"):
        return
    wrote = driver_suffix(target, emit)
    raise click.BadParameter(
        f"{output}: -t {target} writes {wrote}, not {suffix}; "
        + (f"for {suffix}, use {how}" if written_by else how),
        param_hint="-o",
    )


def driver_suffix(target: str, emit: str | None) -> str:
    """What the default command writes for `target`, as a suffix."""
    from ..targets import TARGETS

    return ".pb" if emit == "graphdef" else TARGETS[target].suffix


def _print_relax(
    m: Model,
    target: str,
    weights: str | None,
    seed: int,
    options: dict,
    level: int | None,
    out: Output,
) -> None:
    """`--emit relax`: the Relax module -t tvm builds (at -O2 unless asked), as TVMScript."""
    from .. import driver
    from ..source import error

    if target != "tvm":
        raise error(f"--emit relax applies to -t tvm, not to -t {target}")
    artifact = driver.emit(
        m, target, weights=weights, seed=seed, level=2 if level is None else level, **options
    )
    if out.json:
        out.print_json({"ok": True, **m.to_json(), "relax": artifact.script()})
    else:
        click.echo(artifact.script())


def _check_graphdef(target: str, xla: bool) -> None:
    """`--emit graphdef` is the TF backend's frozen graph: -t tf, and no --xla (a GraphDef holds
    no jit_compile; the program that loads it decides)."""
    from ..source import error

    if target != "tf":
        raise error(f"--emit graphdef applies to -t tf, not to -t {target}")
    if xla:
        raise error(
            "--xla does not apply to --emit graphdef: a GraphDef holds the plain graph",
            hint="jit-compile it where it is loaded, or drop --emit graphdef for a SavedModel "
            "with --xla",
        )


def _show_ir(graph: Any, m: Model, out: Output) -> None:
    from ..ir import print_graph

    if out.json:
        out.print_json({"ok": True, **m.to_json(), "ir": print_graph(graph)})
    else:
        click.echo(print_graph(graph))


@click.command()
@_model_options
@_emit_option
@_fold_options
@dims_option(
    "The size of a symbolic dim for the FLOPs, e.g. --dim T=128 (repeatable); the batch "
    "counts as 1 (FLOPs per sample), a dim not given as 1 too, and the summary says so."
)
def summary(
    file: str,
    model: str | None,
    json_: bool,
    quiet: bool,
    emit: str | None,
    dims: dict[str, int] | None,
) -> None:
    """Print a model's layers, shapes, params and FLOPs."""
    out = _start(json_, quiet)
    _show(_sized(_load(file, model, out), dims), out, emit)


@click.command()
@_model_options
@_emit_option
def check(file: str, model: str | None, json_: bool, quiet: bool, emit: str | None) -> None:
    """Check a model; print one line if it is ok."""
    out = _start(json_, quiet)
    m = _load(file, model, out)
    if out.json or emit:
        _show(m, out, emit)
    else:
        click.echo(
            f"ok: model `{m.graph.name}`: {_count(m.layer_count, 'layer')}, "
            f"{_count(m.total_params, 'param')}"
        )


@click.command(short_help="Write a model's weights by name: the initial ones or a Keras model's.")
@_model_options
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(),
    metavar="FILE",
    help="Where to write: .npz or .safetensors.",
)
@_seed_option
@click.option(
    "--from-keras",
    "from_keras",
    type=click.Path(),
    metavar="FILE",
    help="Take the weights from a Keras model (.keras, or .weights.h5 with "
    "--keras-architecture), pairing its layers with the model's by structure.",
)
@click.option(
    "--keras-architecture",
    "architecture",
    type=click.Path(),
    metavar="FILE",
    help="The Keras model a .weights.h5 belongs to: a .keras file or model.to_json()'s JSON.",
)
@click.option(
    "--pair",
    "pins",
    multiple=True,
    metavar="NETC=KERAS",
    help="Pair a netc layer with a Keras layer by name, where the structure cannot tell "
    "(repeatable).",
)
@click.option(
    "--no-check",
    is_flag=True,
    help="With --from-keras: skip running both models on a random input to compare outputs.",
)
def weights(
    file: str,
    model: str | None,
    json_: bool,
    quiet: bool,
    output: str,
    seed: int,
    from_keras: str | None,
    architecture: str | None,
    pins: Sequence[str],
    no_check: bool,
) -> None:
    """Write a model's weights by name: the initial ones (Keras' initializers, seeded), or
    a Keras model's, paired layer by layer (docs/keras-weights.md)."""
    from ..weights import initial_weights, save_weights

    out = _start(json_, quiet)
    if from_keras is None and (architecture or pins or no_check):
        raise click.UsageError("--keras-architecture, --pair and --no-check go with --from-keras")
    pairs = dict(_pin(p) for p in pins)
    m = _load(file, model, out)
    extra: dict[str, Any] = {}
    if from_keras is None:
        values = initial_weights(m.graph, seed)
    else:
        from ..keras_weights import compare_outputs, from_keras_model, load_keras

        keras_model = load_keras(from_keras, architecture)
        values, paired = from_keras_model(m, keras_model, pairs)
        extra = {"keras_model": keras_model.name, "pairs": [list(p) for p in paired]}
        if not no_check:
            extra["largest_difference"] = compare_outputs(
                m, keras_model, values, pairs=pairs, seed=seed
            )
    save_weights(values, output)
    if out.json:
        out.print_json(
            {
                "ok": True,
                "written": output,
                "weights": len(values),
                "params": m.total_params,
                **extra,
            }
        )
        return
    source = ""
    if extra:
        checked = ""
        if "largest_difference" in extra:
            largest = extra["largest_difference"]
            checked = (
                "; outputs not compared: the models take inputs of different shapes"
                if largest is None
                else f"; outputs agree, largest difference {largest:.1e}"
            )
        source = (
            f" from Keras model `{extra['keras_model']}` "
            f"({_count(len(extra['pairs']), 'layer')} paired by structure{checked})"
        )
    click.echo(
        f"wrote {output}: {_count(len(values), 'weight')}, {_count(m.total_params, 'param')}"
        f"{source}"
    )


def _pin(text: str) -> tuple[str, str]:
    netc_name, sep, keras_name = text.partition("=")
    if not sep or not netc_name or not keras_name:
        raise click.BadParameter(f"{text!r} is not NETC=KERAS", param_hint="--pair")
    return netc_name.strip(), keras_name.strip()
