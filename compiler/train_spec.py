"""What a `train { ... }` section may say: each setting, and Keras' losses, optimizers,
learning-rate schedules, metrics and callbacks with the kind and range of each argument; and
`TrainSpec`, the checked section that the Keras backend compiles and fits (docs/training.md).
netc.train checks a section against these tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

# --- what a setting's argument may be ---------------------------------------------------------


@dataclass(frozen=True)
class Arg:
    """The kind of value a keyword argument takes: "number", "int", "bool", "str", "rate" (a
    number or a learning-rate schedule), "ints" or "numbers" (lists), "monitor" (a name of the
    training logs) or "mode"; bounds for numbers; whether `none` is allowed; whether it must be
    given (the required arguments of a schedule, in order, may be given by position)."""

    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    none: bool = False
    required: bool = False

    def describe(self) -> str:
        """What the argument must be, in words: "a number > 0", "an int >= 1", "a bool"."""
        base = {
            "number": "a number",
            "int": "an int",
            "bool": "a bool",
            "str": "a string",
            "rate": "a number",
            "ints": "a list of ints",
            "numbers": "a list of numbers",
            "monitor": "the name of a logged value",
            "mode": '"auto", "min" or "max"',
        }[self.kind]
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            base += f" in {left}{_num(self.low)}, {_num(self.high)}{right}"
        elif self.low is not None:
            base += f" {'>' if self.low_open else '>='} {_num(self.low)}"
        if self.kind == "rate":
            base += " or a learning-rate schedule"
        if self.none:
            base += " or `none`"
        return base


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


POSITIVE = Arg("number", low=0, low_open=True)
NON_NEGATIVE = Arg("number", low=0)
FRACTION = Arg("number", low=0, high=1)  # [0, 1]
BETA = Arg("number", low=0, high=1, high_open=True)  # [0, 1)
BOOL = Arg("bool")
COUNT = Arg("int", low=0)
MONITOR = Arg("monitor")
MODE = Arg("mode")

LOSSES: dict[str, dict[str, Arg]] = {
    # name: the keyword arguments it accepts (Keras' names)
    "categorical_crossentropy": {"from_logits": BOOL, "label_smoothing": FRACTION},
    "sparse_categorical_crossentropy": {"from_logits": BOOL},
    "binary_crossentropy": {"from_logits": BOOL, "label_smoothing": FRACTION},
    "mean_squared_error": {},
    "mean_absolute_error": {},
    "huber": {"delta": POSITIVE},
}
LOSS_ALIASES = {
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "cross_entropy": "categorical_crossentropy",
    "sparse_cross_entropy": "sparse_categorical_crossentropy",
}
CLASSIFICATION = (
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "binary_crossentropy",
)

# every optimizer takes Keras' base arguments: the rate, weight decay and one kind of clipping
_BASE = {
    "learning_rate": Arg("rate", low=0, low_open=True),
    "weight_decay": Arg("number", low=0, none=True),
    "clipnorm": POSITIVE,
    "clipvalue": POSITIVE,
    "global_clipnorm": POSITIVE,
}
_ADAM = {"beta_1": BETA, "beta_2": BETA, "epsilon": POSITIVE, "amsgrad": BOOL}
OPTIMIZERS: dict[str, dict[str, Arg]] = {
    "sgd": {**_BASE, "momentum": FRACTION, "nesterov": BOOL},
    "adam": {**_BASE, **_ADAM},
    "adamw": {**_BASE, **_ADAM},
    "rmsprop": {**_BASE, "rho": BETA, "momentum": FRACTION, "epsilon": POSITIVE, "centered": BOOL},
    "adagrad": {**_BASE, "initial_accumulator_value": NON_NEGATIVE, "epsilon": POSITIVE},
}
CLIPPING = ("clipnorm", "clipvalue", "global_clipnorm")

SCHEDULES: dict[str, dict[str, Arg]] = {
    # Keras' keras.optimizers.schedules, by step (one step: one batch)
    "cosine_decay": {
        "initial_learning_rate": Arg("number", low=0, low_open=True, required=True),
        "decay_steps": Arg("int", low=1, required=True),
        "alpha": FRACTION,
        "warmup_target": Arg("number", low=0, low_open=True, none=True),
        "warmup_steps": COUNT,
    },
    "exponential_decay": {
        "initial_learning_rate": Arg("number", low=0, low_open=True, required=True),
        "decay_steps": Arg("int", low=1, required=True),
        "decay_rate": Arg("number", low=0, low_open=True, required=True),
        "staircase": BOOL,
    },
    "piecewise_constant_decay": {
        "boundaries": Arg("ints", low=1, required=True),
        "values": Arg("numbers", low=0, low_open=True, required=True),
    },
}

METRICS = (
    # Keras' names; a log is named as the metric is written (`mae` logs `mae`, `val_mae`)
    "accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "binary_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "mean_squared_error",
    "mean_absolute_error",
    "mse",
    "mae",
    "auc",
    "precision",
    "recall",
)
# the metrics that read a class index as the target (what a sparse loss's targets are)
SPARSE_METRICS = ("accuracy", "sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy")

CALLBACKS: dict[str, dict[str, Arg]] = {
    "early_stopping": {
        "monitor": MONITOR,
        "min_delta": NON_NEGATIVE,
        "patience": COUNT,
        "mode": MODE,
        "baseline": Arg("number", none=True),
        "restore_best_weights": BOOL,
        "start_from_epoch": COUNT,
    },
    "reduce_lr_on_plateau": {
        "monitor": MONITOR,
        "factor": Arg("number", low=0, high=1, low_open=True, high_open=True),
        "patience": COUNT,
        "mode": MODE,
        "min_delta": NON_NEGATIVE,
        "cooldown": COUNT,
        "min_lr": NON_NEGATIVE,
    },
    # the best weights so far by netc name (.safetensors or .npz), written when `monitor`
    # improves (every epoch without save_best_only)
    "model_checkpoint": {
        "path": Arg("str", none=True),
        "monitor": MONITOR,
        "mode": MODE,
        "save_best_only": BOOL,
    },
}
WEIGHT_SUFFIXES = (".safetensors", ".npz")

SETTINGS: dict[str, str] = {
    # name: what it holds (docs/training.md has the table)
    "loss": "a loss, a list of one per output, or per_output(NAME=loss, ...)",
    "loss_weights": "a list of numbers, one per output, or per_output(NAME=number, ...)",
    "optimizer": "an optimizer",
    "metrics": "a list of metrics for every output, or per_output(NAME=[...], ...)",
    "epochs": "an int >= 1",
    "batch_size": "an int >= 1",
    "validation_split": "a number in [0, 1)",
    "shuffle": "a bool",
    "seed": "an int",
    "class_weight": "a list of numbers >= 0, one per class",
    "callbacks": "a list of callbacks",
}
PER_OUTPUT = "per_output"  # per_output(logits=..., box=...): a value for each named output


# --- the checked section ------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """A named loss, optimizer, schedule or callback with its keyword arguments (an optimizer's
    `learning_rate` may be a Choice: its schedule)."""

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainSpec:
    """A checked train section. `loss` is one loss for every output, or a loss by output name
    (outputs not named are not trained); `metrics` the same for metrics; `loss_weights` by
    output name. `outputs` are the model's output names in order."""

    loss: Choice | Mapping[str, Choice] | None = None
    optimizer: Choice = Choice("adam")
    metrics: tuple[str, ...] | Mapping[str, tuple[str, ...]] = ()
    epochs: int = 1
    batch_size: int = 32
    validation_split: float = 0.0
    shuffle: bool = True
    seed: int = 0
    loss_weights: Mapping[str, float] | None = None
    class_weight: tuple[float, ...] | None = None
    callbacks: tuple[Choice, ...] = ()
    outputs: tuple[str, ...] = ()

    def losses(self) -> dict[str, Choice]:
        """The loss of each trained output, by output name, in the model's output order."""
        if self.loss is None:
            return {}
        if isinstance(self.loss, Choice):
            return {o: self.loss for o in self.outputs}
        return {o: self.loss[o] for o in self.outputs if o in self.loss}

    def output_metrics(self, output: str) -> tuple[str, ...]:
        """The metrics computed on `output`."""
        if isinstance(self.metrics, tuple):
            return self.metrics if output in self.losses() else ()
        return tuple(self.metrics.get(output, ()))

    def log_names(self, names: Sequence[str] | None = None) -> tuple[str, ...]:
        """The names of the values training logs each epoch (without the `val_` copies), as
        Keras names them with `names` for the outputs (default: netc's): `loss`, then with one
        output its metrics, with several `<output>_loss` (when two or more are trained) and
        `<output>_<metric>`."""
        names = list(self.outputs if names is None else names)
        out = ["loss"]
        trained = self.losses()
        single = len(self.outputs) == 1
        if len(trained) > 1:
            out += [f"{n}_loss" for o, n in zip(self.outputs, names) if o in trained]
        for o, n in zip(self.outputs, names):
            out += [m if single else f"{n}_{m}" for m in self.output_metrics(o)]
        return tuple(out)

    @property
    def learning_rate(self) -> float | Choice | None:
        """The optimizer's learning rate (a number or a schedule), None for Keras' default."""
        return self.optimizer.kwargs.get("learning_rate")

    def with_overrides(
        self,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        learning_rate: float | None = None,
        seed: int | None = None,
    ) -> TrainSpec:
        """This spec with the command line's values (None: keep the section's). A learning
        rate replaces a schedule's initial rate; a piecewise schedule has none (ValueError)."""
        spec = self
        if epochs is not None:
            spec = replace(spec, epochs=epochs)
        if batch_size is not None:
            spec = replace(spec, batch_size=batch_size)
        if seed is not None:
            spec = replace(spec, seed=seed)
        if learning_rate is not None:
            rate: float | Choice = float(learning_rate)
            current = self.learning_rate
            if isinstance(current, Choice):
                if "initial_learning_rate" not in current.kwargs:
                    raise ValueError(
                        f"the learning rate is a `{current.name}` schedule, which has no "
                        "initial rate to replace"
                    )
                rate = Choice(current.name, {**current.kwargs, "initial_learning_rate": rate})
            kwargs = {**self.optimizer.kwargs, "learning_rate": rate}
            spec = replace(spec, optimizer=Choice(self.optimizer.name, kwargs))
        return spec
