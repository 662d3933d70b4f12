"""Training a netc model with Keras (`netc train`, docs/training.md): `to_keras.fit` from the
train section on the data netc.runtime.train_data read and checked, on a dataset that
shuffles each epoch by (seed, epoch), the training state written every epoch to resume from,
TensorFlow's distribution strategies, and the files a run writes (the weights by netc name,
the history as JSON and as a plot).

TensorFlow is imported when training starts (netc.backends.tensorflow), never by `import netc`;
arrays are read and checked before that, so a wrong file fails in a moment.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from netc.source import NetcError, error
from netc.summary import Model
from netc.train_spec import TrainSpec

from .train_data import Data, check_data, split

STRATEGIES = ("mirrored", "multi-worker")
STATE_FORMAT = 1  # of the training state's folder: weights.safetensors, variables.npz, state.json


def _tf() -> tuple[Any, Any]:
    """(tensorflow, keras), imported quietly."""
    from netc.backends import tensorflow

    tf = tensorflow("keras")
    import keras

    return tf, keras


# --- distribution --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Strategy:
    """A tf.distribute strategy, how many replicas train in sync, and whether this process is
    the chief (the one that writes files)."""

    strategy: Any
    name: str | None
    replicas: int
    chief: bool = True


def make_strategy(name: str | None = None) -> Strategy:
    """TensorFlow's strategy called `name`: None (the default device), "mirrored" (every GPU,
    else every logical CPU device, of this machine) or "multi-worker" (the cluster in
    TF_CONFIG). Make it before anything else runs TensorFlow ops: multi-worker sets up
    TensorFlow's collective ops, which must happen at start-up."""
    tf, _ = _tf()
    if name is None:
        return Strategy(tf.distribute.get_strategy(), None, 1)
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
            d.name for d in tf.config.list_logical_devices("CPU")
        ]
        s = tf.distribute.MirroredStrategy(devices)
        return Strategy(s, name, s.num_replicas_in_sync)
    if name != "multi-worker":
        raise error(f"unknown strategy `{name}`", hint=f"strategies: {', '.join(STRATEGIES)}")
    cluster, task = _tf_config()
    s = tf.distribute.MultiWorkerMirroredStrategy()
    kind, index = task["type"], int(task.get("index", 0))
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    return Strategy(s, name, s.num_replicas_in_sync, chief)


def _tf_config() -> tuple[dict, dict]:
    """The cluster and this task from TF_CONFIG, checked."""
    example = (
        '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
        '"task": {"type": "worker", "index": 0}}'
    )
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise error(
            "--strategy multi-worker reads the cluster from TF_CONFIG, which is not set",
            hint=f"set it on every worker, e.g. TF_CONFIG='{example}'",
        )
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        jobs = cluster[task["type"]]
        assert isinstance(jobs, list) and 0 <= int(task.get("index", 0)) < len(jobs)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise error(
            "TF_CONFIG does not name this task in its cluster",
            notes=[f"TF_CONFIG={text}"],
            hint=f"e.g. TF_CONFIG='{example}'",
        ) from None
    return cluster, task


@contextlib.contextmanager
def _multi_worker_fit(model: Any, strategy: Any) -> Iterator[None]:
    """Keras 3.15's fit under MultiWorkerMirroredStrategy fails twice (keras-team/keras#20585):
    its symbolic build reduces a batch of per-replica data, and its logs reduce scalars along
    axis 0. For this fit only: the build takes the local replica's batch, and the logs are
    averaged without an axis, which is what both meant."""
    import types

    from keras.src.backend.tensorflow import trainer

    tf, _ = _tf()
    original = trainer.reduce_per_replica

    def local(value: Any) -> Any:
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def build(self: Any, iterator: Any = None, data_batch: Any = None) -> None:
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tf.nest.map_structure(local, next(it))
                break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def reduce(values: Any, strategy_: Any, reduction: Any) -> Any:
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy_):

            def mean(v: Any) -> Any:
                if isinstance(v, tf.distribute.DistributedValues):
                    return strategy_.reduce("MEAN", v, axis=None)
                return v

            return tf.nest.map_structure(mean, values)
        return original(values, strategy_, reduction)

    model._maybe_symbolic_build = types.MethodType(build, model)
    trainer.reduce_per_replica = reduce
    try:
        yield
    finally:
        trainer.reduce_per_replica = original
        del model._maybe_symbolic_build


# --- the training state, saved every epoch --------------------------------------------------------


@dataclass
class State:
    """What `--resume` continues from: the epochs done, the history so far, the weights by netc
    name, the optimizer's and random generators' variables (in order), the section callbacks'
    counters, and an early stopping's best weights."""

    epoch: int
    history: dict[str, list[float]]
    weights: dict[str, np.ndarray]
    optimizer: list[np.ndarray]
    seeds: list[np.ndarray]
    callbacks: list[dict[str, Any]]
    best_weights: dict[int, list[np.ndarray]] = field(default_factory=dict)


CALLBACK_STATE = ("wait", "best", "best_epoch", "cooldown_counter", "stopped_epoch")


def _seed_variables(model: Any) -> list[Any]:
    """The state variables of the model's random generators (dropout's), in a stable order."""
    return [v for v in model.variables if v.name == "seed_generator_state"]


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return float(value)


def write_state(path: Path, model: Any, state: State) -> None:
    """The training state to folder `path`, atomically (the previous state stays whole until
    the new one is complete)."""
    from netc.files import atomic_write_dir
    from netc.weights import save_weights

    def write(tmp: Path) -> None:
        save_weights(state.weights, tmp / "weights.safetensors")
        arrays = {f"optimizer_{i}": v for i, v in enumerate(state.optimizer)}
        arrays.update({f"seed_{i}": v for i, v in enumerate(state.seeds)})
        for k, ws in state.best_weights.items():
            arrays.update({f"best_{k}_{i}": w for i, w in enumerate(ws)})
        with open(tmp / "variables.npz", "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
        meta = {
            "format": STATE_FORMAT,
            "model": model.name,
            "epoch": state.epoch,
            "history": state.history,
            "callbacks": state.callbacks,
            "optimizer": len(state.optimizer),
            "seeds": len(state.seeds),
            "best_weights": {str(k): len(v) for k, v in state.best_weights.items()},
        }
        (tmp / "state.json").write_text(json.dumps(meta, indent=1) + "\n")

    atomic_write_dir(path, write)


def read_state(path: Path, model: Model) -> State:
    """The training state in folder `path`, checked against `model`."""
    from netc.weights import check_weights, load_weights

    meta_path = path / "state.json"
    if not meta_path.is_file():
        raise error(
            f"no training state in {path} to resume from",
            hint="train without --resume first: it saves the state there after every epoch",
        )
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != STATE_FORMAT:
            raise ValueError(f"format {meta.get('format')}, netc reads {STATE_FORMAT}")
        with np.load(path / "variables.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        weights = load_weights(path / "weights.safetensors")
        optimizer = [arrays[f"optimizer_{i}"] for i in range(meta["optimizer"])]
        seeds = [arrays[f"seed_{i}"] for i in range(meta["seeds"])]
        best = {
            int(k): [arrays[f"best_{k}_{i}"] for i in range(n)]
            for k, n in meta.get("best_weights", {}).items()
        }
    except NetcError:
        raise
    except Exception as e:  # a folder someone changed, or a half-copied one
        raise error(f"cannot read the training state in {path}: {e}") from None
    if meta["model"] != model.graph.name:
        raise error(
            f"{path} holds the training state of model `{meta['model']}`, not of "
            f"`{model.graph.name}`"
        )
    weights = check_weights(model.graph, weights, str(path))
    return State(
        int(meta["epoch"]),
        {k: list(v) for k, v in meta["history"].items()},
        weights,
        optimizer,
        seeds,
        list(meta["callbacks"]),
        best,
    )


def _restore(model: Any, state: State, path: Path) -> None:
    """Put the optimizer's and random generators' variables of `state` into `model`."""
    model.optimizer.build(model.trainable_variables)
    variables = list(model.optimizer.variables)
    seeds = _seed_variables(model)
    shapes = [tuple(v.shape) for v in variables], [a.shape for a in state.optimizer]
    if (
        len(variables) != len(state.optimizer)
        or shapes[0] != shapes[1]
        or len(seeds) != len(state.seeds)
    ):
        raise error(
            f"the training state in {path} was saved with another optimizer or model "
            f"({len(state.optimizer)} optimizer variables, this one has {len(variables)})",
            hint="train without --resume to start again",
        )
    for v, a in zip(variables, state.optimizer, strict=True):
        v.assign(a)
    for v, a in zip(seeds, state.seeds, strict=True):
        v.assign(a)


def _state_callback(keras: Any) -> Any:
    """The callback that keeps the history with netc's names, reports each epoch, and writes
    the training state at the end of every epoch."""

    class TrainingState(keras.callbacks.Callback):
        def __init__(
            self,
            path: Path | None,
            history: dict[str, list[float]],
            section: Sequence[Any],
            restore: State | None,
            on_epoch: Callable[[int, dict[str, float]], None] | None,
        ):
            super().__init__()
            self.path, self.history, self.section = path, history, list(section)
            self.restore, self.on_epoch = restore, on_epoch
            self.epochs_done = restore.epoch if restore else 0

        def on_train_begin(self, logs: Any = None) -> None:
            # after the section's callbacks reset themselves: put back their counters
            if self.restore is None:
                return
            for cb, saved in zip(self.section, self.restore.callbacks, strict=False):
                for attr, value in saved.items():
                    setattr(cb, attr, value)
            for index, ws in self.restore.best_weights.items():
                self.section[index].best_weights = ws

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            from netc.backends.to_keras import netc_log_names, weights_by_name

            named = {k: float(v) for k, v in netc_log_names(self.model, logs or {}).items()}
            for k, v in named.items():
                self.history.setdefault(k, []).append(v)
            self.epochs_done = epoch + 1
            if self.path is not None:
                best = {
                    i: cb.best_weights
                    for i, cb in enumerate(self.section)
                    if getattr(cb, "best_weights", None) is not None
                }
                state = State(
                    epoch + 1,
                    self.history,
                    weights_by_name(self.model),
                    [np.asarray(v.numpy()) for v in self.model.optimizer.variables],
                    [np.asarray(v.numpy()) for v in _seed_variables(self.model)],
                    [
                        {k: _plain(getattr(cb, k)) for k in CALLBACK_STATE if hasattr(cb, k)}
                        for cb in self.section
                    ],
                    best,
                )
                write_state(self.path, self.model, state)
            if self.on_epoch is not None:
                self.on_epoch(epoch, named)

    return TrainingState


# --- training ------------------------------------------------------------------------------------


@dataclass
class Result:
    """A finished run: the trained Keras model, its weights by netc name, the history (netc's
    names, the resumed epochs included), the epochs done in all, whether a callback stopped it
    early, the spec it ran with, and the strategy."""

    keras_model: Any
    weights: dict[str, np.ndarray]
    history: dict[str, list[float]]
    initial_epoch: int
    epochs: int
    stopped_early: bool
    spec: TrainSpec
    strategy: Strategy
    classes: tuple[str, ...] | None = None


def _dataset(
    tf: Any,
    arrays: Sequence[Any],
    n: int,
    batch: int,
    *,
    shuffle: bool,
    seed: int,
    first: int,
    last: int,
) -> Any:
    """Batches of `arrays` (an (x, y) structure) for epochs first..last-1, each epoch in the
    order of a permutation drawn from (seed, epoch) alone: a resumed run sees the batches the
    uninterrupted one would. Keras' own shuffling repeats one order every epoch once its seed
    is set."""
    data = tf.data.Dataset.from_tensors(arrays).repeat()  # the arrays once, not per element

    def epoch_order(epoch: Any) -> Any:
        order = tf.range(n, dtype=tf.int64)
        if shuffle:
            key = tf.stack([tf.constant(seed, tf.int64), epoch])
            order = tf.argsort(tf.random.stateless_uniform([n], seed=key), stable=True)
        return tf.data.Dataset.from_tensor_slices(tf.cast(order, tf.int64)).batch(batch)

    batches = tf.data.Dataset.range(first, last).flat_map(epoch_order)
    gather = lambda i, d: tf.nest.map_structure(lambda a: tf.gather(a, i), d)  # noqa: E731
    ds = tf.data.Dataset.zip((batches, data)).map(gather)
    options = tf.data.Options()
    # every worker of a multi-worker run reads the same batches and keeps its share of each
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def _structure(model: Model, spec: TrainSpec, arrays: Mapping[str, np.ndarray]) -> tuple:
    """(x, y) as the Keras model takes them: inputs in order, one target per output (a zero per
    sample for an output that is not trained: Keras ignores it); single ones unwrapped."""
    g = model.graph
    n = len(next(iter(arrays.values())))
    x = [arrays[name] for name in g.inputs]
    y = [arrays.get(out, np.zeros(n, np.float32)) for out, _ in g.outputs]
    return (x[0] if len(x) == 1 else tuple(x)), (y[0] if len(y) == 1 else tuple(y))


@contextlib.contextmanager
def _deterministic(tf: Any) -> Iterator[None]:
    """TensorFlow's op determinism on, for this run only (it is process-wide)."""
    from tensorflow.python.framework import config

    before = config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if not before:
            config.disable_op_determinism()


def train(
    model: Model,
    data: Data,
    val: Data | None = None,
    *,
    spec: TrainSpec | None = None,
    weights: Any = None,
    strategy: Strategy | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    best_path: str | Path | None = None,
    verbose: int = 1,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> Result:
    """Train `model` (a compiled netc model with a train section) on `data`, validating on
    `val` or the section's validation_split, with `spec` (default: the section) from `weights`
    (a file or dict; default: seeded initial weights), writing the training state to the
    folder `checkpoint` after every epoch (`resume`: continue from it). Deterministic on the
    CPU: the same data, spec and seed give the same weights. `best_path` is where a
    `model_checkpoint` without a path writes; `on_epoch(epoch, logs)` sees each epoch's logs.
    KeyboardInterrupt passes through; the last state written stays."""
    from netc import driver
    from netc.backends import to_keras

    spec = spec or model.train
    if spec is None:
        raise error(
            f"model `{model.graph.name}` has no train section",
            hint="add `train { loss = ... }` to the file (docs/training.md)",
        )
    arrays = check_data(data, model, spec)
    if val is not None:
        val_arrays: dict[str, np.ndarray] | None = check_data(val, model, spec)
    elif spec.validation_split > 0:
        arrays, val_arrays = split(arrays, spec.validation_split)
    else:
        val_arrays = None
    if val_arrays is None:
        needy = [
            c for c in spec.callbacks if c.kwargs.get("monitor", "val_loss").startswith("val_")
        ]
        if needy:
            c = needy[0]
            raise error(
                f"callback `{c.name}` monitors `{c.kwargs.get('monitor', 'val_loss')}`, but "
                "there is no validation data",
                hint="give --val FILE or a validation_split in the train section",
            )
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    state = None
    if resume:
        if checkpoint is None:
            raise error("--resume needs the folder of the training state (--checkpoint DIR)")
        state = read_state(checkpoint, model)
    tf, keras = _tf()
    strategy = strategy or make_strategy(None)
    n = len(next(iter(arrays.values())))
    with contextlib.ExitStack() as stack, _deterministic(tf), warnings.catch_warnings():
        # an output that `per_output` leaves out has no gradient by design
        warnings.filterwarnings("ignore", "Gradients do not exist for variables")
        keras.utils.set_random_seed(spec.seed)  # the dropout generators' seeds too
        with strategy.strategy.scope():
            keras_model = driver.emit(
                replace(model, train=spec),
                "keras",
                weights=state.weights if state else weights,
                seed=spec.seed,
            )
            if state is not None:
                _restore(keras_model, state, checkpoint)  # type: ignore[arg-type]
            section = to_keras.callbacks(
                keras_model, keras_model.netc["train"].get("callbacks", ()), best_path
            )
        scratch = None if strategy.chief else stack.enter_context(tempfile.TemporaryDirectory())
        for cb in section:
            if scratch is not None and type(cb).__name__ == "BestWeights":
                cb.path = Path(scratch) / cb.path.name  # the chief writes the best weights
        history = dict(state.history) if state else {}
        first = state.epoch if state else 0
        keeper = _state_callback(keras)(
            checkpoint if strategy.chief else None, history, section, state, on_epoch
        )
        train_ds = _dataset(
            tf,
            _structure(model, spec, arrays),
            n,
            spec.batch_size,
            shuffle=spec.shuffle,
            seed=spec.seed,
            first=first,
            last=max(first, spec.epochs),
        )
        val_ds = None
        if val_arrays is not None:
            val_ds = tf.data.Dataset.from_tensor_slices(_structure(model, spec, val_arrays))
            val_ds = val_ds.batch(spec.batch_size)
        fitting = (
            _multi_worker_fit(keras_model, strategy.strategy)
            if strategy.name == "multi-worker"
            else contextlib.nullcontext()
        )
        with fitting:
            if first < spec.epochs:
                to_keras.fit(
                    keras_model,
                    train_ds,
                    epochs=spec.epochs,
                    initial_epoch=first,
                    steps_per_epoch=-(-n // spec.batch_size),
                    validation_data=val_ds,
                    verbose=verbose,
                    section_callbacks=section,
                    callbacks=[keeper],
                    seed=spec.seed,
                )
    return Result(
        keras_model,
        to_keras.weights_by_name(keras_model),
        history,
        first,
        keeper.epochs_done,
        keeper.epochs_done < spec.epochs,
        spec,
        strategy,
        data.classes,
    )


# --- what a run writes ---------------------------------------------------------------------------


def write_history(result: Result, path: str | Path) -> None:
    """The history as JSON (atomically): the model, the epochs, and each logged value per
    epoch with netc's names (`loss`, `accuracy`, `val_loss`, `box_loss`...)."""
    from netc.files import write_bytes_atomic

    data = {
        "model": result.keras_model.name,
        "epochs": result.epochs,
        "initial_epoch": result.initial_epoch,
        "stopped_early": result.stopped_early,
        "seed": result.spec.seed,
        "batch_size": result.spec.batch_size,
        "replicas": result.strategy.replicas,
        "history": result.history,
    }
    if result.classes is not None:
        data["classes"] = list(result.classes)
    write_bytes_atomic(path, (json.dumps(data, indent=1) + "\n").encode())


def plot_history(history: Mapping[str, Sequence[float]], path: str | Path, title: str) -> None:
    """A PNG of each logged value per epoch (the training and validation curves together),
    written atomically; needs matplotlib (in netc's `tf` extra)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from netc.files import atomic_write

    names = [k for k in history if not k.startswith("val_")]
    fig, axes = plt.subplots(len(names), 1, figsize=(6, 2.6 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        epochs = range(1, len(history[name]) + 1)
        ax.plot(epochs, history[name], marker="o", label="training")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], marker="o", label="validation")
        ax.set_ylabel(name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
        ax.grid(alpha=0.3)
        ax.legend()
    axes[-1, 0].set_xlabel("epoch")
    fig.suptitle(title)
    fig.tight_layout()

    def write(tmp: Path) -> None:
        fig.savefig(tmp, format="png", dpi=80, metadata={"Software": None})

    try:
        atomic_write(path, write)
    finally:
        plt.close(fig)
