"""Training a Keras model netc built: `compile_model` from the train section (Keras' losses,
optimizers, schedules and metric classes), `fit` with its settings, `callbacks` (with
`model_checkpoint` writing weights by netc name), and logged values' names in netc's terms.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..source import error
from ..train_spec import Choice, TrainSpec
from .keras_lower import keras_modules

LOSSES = {
    "categorical_crossentropy": "CategoricalCrossentropy",
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "binary_crossentropy": "BinaryCrossentropy",
    "mean_squared_error": "MeanSquaredError",
    "mean_absolute_error": "MeanAbsoluteError",
    "huber": "Huber",
}
OPTIMIZERS = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
}
METRIC_CLASSES = {"auc": "AUC", "precision": "Precision", "recall": "Recall"}


SCHEDULES = {
    "cosine_decay": "CosineDecay",
    "exponential_decay": "ExponentialDecay",
    "piecewise_constant_decay": "PiecewiseConstantDecay",
}
CALLBACKS = {"early_stopping": "EarlyStopping", "reduce_lr_on_plateau": "ReduceLROnPlateau"}


def fit_settings(train: TrainSpec) -> dict[str, Any]:
    loss: Any = None
    if isinstance(train.loss, Choice):
        loss = train.loss.name
    elif train.loss is not None:
        loss = {out: choice.name for out, choice in train.loss.items()}
    out = {
        "loss": loss,
        "optimizer": train.optimizer.name,
        "epochs": train.epochs,
        "batch_size": train.batch_size,
        "validation_split": float(train.validation_split),
        "shuffle": train.shuffle,
        "seed": train.seed,
    }
    if train.class_weight is not None:
        out["class_weight"] = list(train.class_weight)
    if train.callbacks:  # JSON, so that a saved model keeps them
        out["callbacks"] = [{"name": c.name, **c.kwargs} for c in train.callbacks]
    return out


def _learning_rate(keras: Any, rate: Any) -> Any:
    """A learning rate, or Keras' schedule for a `Choice` of one."""
    if not isinstance(rate, Choice):
        return rate
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in rate.kwargs.items()}
    return getattr(keras.optimizers.schedules, SCHEDULES[rate.name])(**kwargs)


def compile_model(model: Any, train: TrainSpec) -> None:
    """`model.compile` with Keras' loss, optimizer (and learning-rate schedule) and metric
    classes and the train section's arguments. A loss for every output applies to each (with
    the metrics), as Keras does: `fit` then takes one target per output; an output without a
    loss (one `per_output` leaves out) is not trained, its target is None."""
    keras, _ = keras_modules()
    names = [o["name"] for o in getattr(model, "netc", {}).get("outputs", ())] or list(
        train.outputs
    )
    losses = (
        train.losses()
        if train.outputs
        else {o: train.loss for o in names}
        if isinstance(train.loss, Choice)
        else {}
    )

    def loss(choice: Choice) -> Any:
        return getattr(keras.losses, LOSSES[choice.name])(**choice.kwargs)

    def metrics(output: str) -> list[Any] | None:
        chosen = train.output_metrics(output) if train.outputs else train.metrics
        return [
            getattr(keras.metrics, METRIC_CLASSES[m])() if m in METRIC_CLASSES else m
            for m in chosen
        ] or None

    kwargs = dict(train.optimizer.kwargs)
    if "learning_rate" in kwargs:
        kwargs["learning_rate"] = _learning_rate(keras, kwargs["learning_rate"])
    optimizer = getattr(keras.optimizers, OPTIMIZERS[train.optimizer.name])(**kwargs)
    if not losses:
        model.compile(optimizer=optimizer)
    elif len(names) == 1:
        weight = (train.loss_weights or {}).get(names[0])
        model.compile(
            optimizer=optimizer,
            loss=loss(losses[names[0]]),
            loss_weights=weight,
            metrics=metrics(names[0]),
        )
    else:
        weights = train.loss_weights
        per_output = [metrics(o) for o in names]
        model.compile(
            optimizer=optimizer,
            loss=[loss(losses[o]) if o in losses else None for o in names],
            loss_weights=[weights.get(o, 1.0) for o in names] if weights else None,
            metrics=per_output if any(per_output) else None,
        )


def _is_dataset(x: Any) -> bool:
    return type(x).__module__.startswith("tensorflow") and hasattr(x, "element_spec")


def fit(model: Any, x: Any, y: Any = None, **overrides: Any) -> Any:
    """`model.fit(x, y)` with the train section's epochs, batch_size, validation_split,
    shuffle, class_weight and callbacks (each overridable; `callbacks` adds to the section's),
    after seeding Keras' random state with its seed. A tf.data dataset `x` comes batched and
    shuffled: batch_size, validation_split and shuffle are then not passed. `best_path` is
    where a `model_checkpoint` callback without a `path` writes; `section_callbacks` are the
    section's callbacks when the caller made them (`callbacks`), to read their state."""
    keras, _ = keras_modules()
    settings = dict(getattr(model, "netc", {}).get("train") or {})
    seed = overrides.pop("seed", settings.get("seed", 0))
    keras.utils.set_random_seed(seed)
    keys = (
        ("epochs",) if _is_dataset(x) else ("epochs", "batch_size", "validation_split", "shuffle")
    )
    options: dict[str, Any] = {k: settings[k] for k in keys if k in settings}
    if _is_dataset(x):
        options["shuffle"] = False  # Keras' default (True) would only warn that it cannot
    if "class_weight" in settings:
        options["class_weight"] = dict(enumerate(settings["class_weight"]))
    made = overrides.pop("section_callbacks", None)  # made already by `callbacks`
    best_path = overrides.pop("best_path", None)
    if made is None:
        made = callbacks(model, settings.get("callbacks", ()), best_path)
    options["callbacks"] = [*made, *overrides.pop("callbacks", ())]
    options.update(overrides)
    return model.fit(x, y, **options)


def callbacks(model: Any, specs: Sequence[Mapping[str, Any]], best_path: Any = None) -> list[Any]:
    """Keras callbacks for the train section's `callbacks` (as `model.netc` records them):
    EarlyStopping, ReduceLROnPlateau, and for `model_checkpoint` one that writes the weights by
    netc name (to its `path`, else `best_path`) when the monitored value improves. Monitors
    name logged values with netc's output names."""
    keras, _ = keras_modules()
    out = []
    for spec in specs:
        kwargs = {k: v for k, v in spec.items() if k != "name"}
        kwargs["monitor"] = keras_log_name(model, kwargs.get("monitor", "val_loss"))
        if kwargs.get("mode", "auto") == "auto":  # Keras cannot tell for `<output>_accuracy`
            kwargs["mode"] = monitor_mode(kwargs["monitor"])
        if spec["name"] in CALLBACKS:
            out.append(getattr(keras.callbacks, CALLBACKS[spec["name"]])(**kwargs))
            continue
        assert spec["name"] == "model_checkpoint", spec
        path = kwargs.pop("path", None) or best_path
        if path is None:
            raise error(
                "callback `model_checkpoint` has no `path`",
                hint='give it one: model_checkpoint(path="best.safetensors")',
            )
        out.append(_best_weights(keras)(path, **kwargs))
    return out


def monitor_mode(monitor: str) -> str:
    """Whether a logged value improves by growing ("max": accuracies, AUC, precision, recall)
    or by shrinking ("min": losses and errors), as Keras decides for plain metric names."""
    up = ("acc", "auc", "precision", "recall")
    return "max" if any(word in monitor for word in up) else "min"


@functools.cache
def _best_weights(keras: Any) -> Any:
    """The class of `model_checkpoint`'s callback (made once Keras is imported)."""

    class BestWeights(keras.callbacks.Callback):
        """Write the weights by netc name to `path` (atomically) at the end of an epoch when
        `monitor` improved on its best (or every epoch without `save_best_only`), as Keras'
        ModelCheckpoint decides it."""

        def __init__(
            self,
            path: Any,
            monitor: str = "val_loss",
            mode: str = "auto",
            save_best_only: bool = True,
        ):
            super().__init__()
            self.path, self.monitor, self.save_best_only = Path(path), monitor, save_best_only
            self.mode = monitor_mode(monitor) if mode == "auto" else mode
            self.best = float("inf") if mode == "min" else float("-inf")
            self.best_epoch: int | None = None

        def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
            logged = (logs or {}).get(self.monitor)
            value = float("nan") if logged is None else float(logged)  # nan: never better
            improved = value < self.best if self.mode == "min" else value > self.best
            if improved:
                self.best, self.best_epoch = value, epoch
            if improved or not self.save_best_only:
                from ..weights import save_weights
                from .to_keras import weights_by_name

                save_weights(weights_by_name(self.model), self.path)

    return BestWeights


def _output_pairs(model: Any) -> list[tuple[str, str]]:
    """(netc output name, Keras output name) of a model with several outputs, longest first."""
    meta = getattr(model, "netc", {}).get("outputs") or []
    if len(meta) < 2:
        return []  # one output: Keras names its logs without a prefix
    pairs = list(zip((o["name"] for o in meta), model.output_names))
    return sorted(pairs, key=lambda p: -len(p[0]))


def _renamed(name: str, pairs: Sequence[tuple[str, str]]) -> str:
    prefix = "val_" if name.startswith("val_") else ""
    rest = name[len(prefix) :]
    for old, new in pairs:
        if rest.startswith(old + "_"):
            return prefix + new + rest[len(old) :]
    return name


def keras_log_name(model: Any, name: str) -> str:
    """A logged value named with netc's output names (`val_box_loss`) as Keras names it
    (after the output's layer: `val_dense_2_loss`)."""
    return _renamed(name, _output_pairs(model))


def netc_log_names(model: Any, logs: Mapping[str, Any]) -> dict[str, Any]:
    """Keras' logs (or history) with netc's output names in the keys."""
    pairs = sorted(((k, n) for n, k in _output_pairs(model)), key=lambda p: -len(p[0]))
    return {_renamed(k, pairs): v for k, v in logs.items()}
