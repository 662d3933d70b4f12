"""`netc train`: train a model with Keras from its train section, on data from files, and write
the trained weights by netc name (with the history, its plot, and the training state to resume
from). The work is netc.runtime.train's; TensorFlow is imported only once the data is read."""

from __future__ import annotations

import json
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..source import NetcError, error
from .common import _count, _load, _model_options, _start, _weights_option

WEIGHT_SUFFIXES = (".safetensors", ".npz")


def _with_suffix(path: Path, suffix: str) -> Path:
    """`w.safetensors` -> `w<suffix>` beside it."""
    return path.with_name(path.stem + suffix)


def _check_path(path: Path, suffixes: Sequence[str], flag: str) -> None:
    """An output path the run can write: a known suffix, in a folder that exists (checked
    before training, not after it)."""
    if path.suffix not in suffixes:
        raise error(f"{flag} {path}: the file must end in {' or '.join(suffixes)}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise error(f"{flag} {path}: there is no folder {parent}")


@click.command()
@_model_options
@click.option(
    "--data",
    "data",
    multiple=True,
    required=True,
    metavar="FILE",
    help="Training data: an .npz with one array per input and per trained output, named as "
    "them; two .npy (input, target); NAME=FILE.npy for each array (repeat --data); or a "
    "folder of images with a subfolder per class.",
)
@click.option(
    "--val",
    "val",
    multiple=True,
    metavar="FILE",
    help="Validation data, as --data (default: the train section's validation_split).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    metavar="FILE",
    help="The trained weights by netc name, .safetensors or .npz (default: MODEL.safetensors "
    "next to the source).",
)
@click.option("--epochs", type=click.IntRange(1), help="Instead of the section's epochs.")
@click.option("--batch-size", type=click.IntRange(1), help="Instead of the section's batch_size.")
@click.option(
    "--lr",
    "learning_rate",
    type=click.FloatRange(0, min_open=True),
    help="The learning rate (a schedule's initial rate) instead of the section's.",
)
@click.option(
    "--seed", type=int, help="Instead of the section's seed (initial weights, order, dropout)."
)
@_weights_option
@click.option(
    "--history",
    "history_path",
    type=click.Path(),
    metavar="FILE.json",
    help="Where to write the history (default: OUTPUT's name + .history.json).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(),
    metavar="FILE.png",
    help="Where to plot loss and metrics per epoch (default: OUTPUT's name + .history.png).",
)
@click.option("--no-plot", is_flag=True, help="Do not plot the history.")
@click.option(
    "--keras",
    "keras_path",
    type=click.Path(),
    metavar="FILE.keras",
    help="Also write the trained Keras model.",
)
@click.option(
    "--checkpoint",
    type=click.Path(),
    metavar="DIR",
    help="The folder of the training state, written after every epoch (default: OUTPUT's "
    "name + .ckpt).",
)
@click.option("--resume", is_flag=True, help="Continue from the training state in --checkpoint.")
@click.option(
    "--strategy",
    type=click.Choice(["mirrored", "multi-worker"]),
    help="tf.distribute: mirrored (this machine's devices) or multi-worker (TF_CONFIG).",
)
def train(
    file: str,
    model: str | None,
    json_: bool,
    quiet: bool,
    data: Sequence[str],
    val: Sequence[str],
    output: str | None,
    epochs: int | None,
    batch_size: int | None,
    learning_rate: float | None,
    seed: int | None,
    weights: str | None,
    history_path: str | None,
    plot_path: str | None,
    no_plot: bool,
    keras_path: str | None,
    checkpoint: str | None,
    resume: bool,
    strategy: str | None,
) -> None:
    """Train a model with Keras from its train section and write the weights by netc name.

    Keras' progress bar shows each epoch (-q: nothing; --json: a JSON line per epoch). At the
    end: the weights (-o), the history as JSON and as a plot, and with --keras the Keras model;
    the training state is saved after every epoch, for --resume. Ctrl-C stops and keeps it.
    """
    out = _start(json_, quiet)
    if resume and weights:
        raise click.UsageError("--resume continues from the training state; drop --weights")
    if no_plot and plot_path:
        raise click.UsageError("--plot and --no-plot exclude each other")
    try:
        _train(
            file, model, out, data, val, output, epochs, batch_size, learning_rate, seed,
            weights, history_path, plot_path, no_plot, keras_path, checkpoint, resume, strategy,
        )  # fmt: skip
    except NetcError as e:
        if not json_:
            raise
        # one line, like the epochs before it: the output stays JSON lines
        click.echo(json.dumps({"ok": False, "diagnostics": [d.to_json() for d in e.diagnostics]}))
        raise click.exceptions.Exit(1) from None


def _train(
    file: str,
    model_name: str | None,
    out: Any,
    data: Sequence[str],
    val: Sequence[str],
    output: str | None,
    epochs: int | None,
    batch_size: int | None,
    learning_rate: float | None,
    seed: int | None,
    weights: str | None,
    history_path: str | None,
    plot_path: str | None,
    no_plot: bool,
    keras_path: str | None,
    checkpoint: str | None,
    resume: bool,
    strategy_name: str | None,
) -> None:
    m = _load(file, model_name, out)
    if m.train is None:
        raise error(
            f"{file} has no train section",
            hint="add `train { loss = ... }` to it (docs/training.md)",
        )
    try:
        spec = m.train.with_overrides(
            epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed
        )
    except ValueError as e:
        raise error(f"--lr: {e}", hint="edit the schedule's values in the train section") from None
    weights_out = Path(output) if output else Path(file).with_suffix(".safetensors")
    history_out = Path(history_path) if history_path else _with_suffix(weights_out, ".history.json")
    plot_out = None if no_plot else Path(plot_path or _with_suffix(weights_out, ".history.png"))
    state_dir = Path(checkpoint) if checkpoint else _with_suffix(weights_out, ".ckpt")
    _check_path(weights_out, WEIGHT_SUFFIXES, "-o")
    _check_path(history_out, (".json",), "--history")
    if plot_out is not None:
        _check_path(plot_out, (".png",), "--plot")
    if keras_path:
        _check_path(Path(keras_path), (".keras",), "--keras")
    if plot_out is not None and not _has_matplotlib():
        if not out.quiet and not out.json:
            click.echo(
                "netc: warning: no plot: matplotlib is not installed (pip install 'netc[tf]')",
                err=True,
            )
        plot_out = None

    from netc.runtime import train as training
    from netc.runtime.train_data import check_data, is_image_folder, read_data

    # arrays first (no TensorFlow yet: a wrong file fails at once), then the strategy (before
    # any TensorFlow op: multi-worker sets up collective ops), then image folders (TF reads them)
    train_data = None if is_image_folder(data) else read_data(data, m, spec)
    val_data = None if not val or is_image_folder(val) else read_data(val, m, spec)
    for d in (train_data, val_data):
        if d is not None:
            check_data(d, m, spec)
    strategy = training.make_strategy(strategy_name)
    train_data = train_data or read_data(data, m, spec)
    if val and val_data is None:
        val_data = read_data(val, m, spec)

    def report(epoch: int, logs: dict[str, float]) -> None:
        if out.json and strategy.chief:
            line = {"epoch": epoch + 1, "epochs": spec.epochs, **logs}
            click.echo(json.dumps(line), nl=True)

    verbose = 0 if out.quiet or out.json or not strategy.chief else 1
    try:
        result = training.train(
            m,
            train_data,
            val_data,
            spec=spec,
            weights=weights,
            strategy=strategy,
            checkpoint=state_dir,
            resume=resume,
            best_path=_with_suffix(weights_out, ".best" + weights_out.suffix),
            verbose=verbose,
            on_epoch=report,
        )
    except KeyboardInterrupt:
        _interrupted(state_dir, out)
        raise click.exceptions.Exit(128 + signal.SIGINT) from None
    if not strategy.chief:  # the chief writes; the other workers' weights are the same
        return
    from ..backends import to_keras
    from ..weights import save_weights

    save_weights(result.weights, weights_out)
    training.write_history(result, history_out)
    written = [weights_out, history_out]
    if plot_out is not None:
        training.plot_history(result.history, plot_out, f"{m.graph.name}: training history")
        written.append(plot_out)
    if keras_path:
        to_keras.save(result.keras_model, keras_path)
        written.append(Path(keras_path))
    last = {k: v[-1] for k, v in result.history.items() if v}
    if out.json:
        summary = {
            "ok": True,
            "model": m.graph.name,
            "weights": str(weights_out),
            "history": str(history_out),
            "plot": str(plot_out) if plot_out else None,
            "keras": keras_path,
            "checkpoint": str(state_dir),
            "epochs": result.epochs,
            "initial_epoch": result.initial_epoch,
            "stopped_early": result.stopped_early,
            "replicas": result.strategy.replicas,
            "final": last,
        }
        if result.classes is not None:
            summary["classes"] = list(result.classes)
        click.echo(json.dumps(summary))
        return
    if out.quiet:
        return
    done = f"trained {_count(result.epochs, 'epoch')}"
    if result.initial_epoch:
        done += f" (resumed after {result.initial_epoch})"
    if result.stopped_early:
        done += f", stopped early (of {spec.epochs})"
    if result.strategy.replicas > 1:
        done += f" on {result.strategy.replicas} replicas"
    if last:
        done += ": " + ", ".join(f"{k} {v:.4g}" for k, v in last.items())
    click.echo(done)
    click.echo(f"wrote {', '.join(str(p) for p in written)}")


def _has_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def _interrupted(state_dir: Path, out: Any) -> None:
    """Ctrl-C: say which epoch the kept training state holds and how to go on."""
    saved = None
    try:
        saved = json.loads((state_dir / "state.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        pass
    if out.json:
        click.echo(json.dumps({"ok": False, "interrupted": True, "state_epoch": saved}))
        return
    if saved is None:
        click.echo("\nnetc: interrupted before the first epoch ended; no training state", err=True)
    else:
        click.echo(
            f"\nnetc: interrupted; the training state in {state_dir} holds epoch {saved}: "
            "continue with --resume",
            err=True,
        )
