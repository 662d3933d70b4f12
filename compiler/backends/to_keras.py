"""The Keras backend: a checked IR graph and its weights -> a functional, trainable `keras.Model`.

One rule per IR op in `RULES`, each making Keras' own layer where one exists (Conv2D, Dense,
BatchNormalization, LSTM, MultiHeadAttention...) and a small layer of keras_layers.py where
none does. Every layer is named after the IR node it computes (`stage_1.conv_bn_2.conv2d`)
and holds that node's netc weights, so `model.get_layer(name)` and `model.summary()` read like
`netc summary`. Nodes the optimizer merged are laid out again as the layers they came from
when the source graph is given (see `Absorbed`). docs/keras.md describes the result.
TensorFlow and Keras are imported inside the functions that need them.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..ir import Graph, Node, TensorType
from ..ops import OPS, ShapeError
from ..ops.fused import activation_attrs, base_attrs
from ..source import NetcError, error
from ..train import Choice, TrainSpec
from ..weights import check_weights
from . import Rules

RULES = Rules("keras")

KERAS_DTYPES = {
    "f32": "float32",
    "f16": "float16",
    "bf16": "bfloat16",
    "f64": "float64",
    "i32": "int32",
    "i64": "int64",
    "bool": "bool",
}
NETC_DTYPES = {v: k for k, v in KERAS_DTYPES.items()}
RNN_CELLS = ("lstm_cell/", "gru_cell/")  # Keras' RNN layers keep their weights in a cell


def _modules() -> tuple[Any, Any]:
    """(keras, netc's keras_layers), imported with TensorFlow's quiet start-up."""
    from . import keras_layers, tensorflow

    tensorflow("keras")
    import keras

    return keras, keras_layers


# --- nodes the optimizer merged ----------------------------------------------------------------


@dataclass(frozen=True)
class Absorbed:
    """The source-graph nodes an optimized node took in, whose layers the Keras model keeps
    (so it lists the layers `netc summary` lists): a zero `pad` folded into a convolution or
    max pooling (`pad`, with the op's own padding before the fold in `padding`), and the
    residual `add` and the activation a fused node absorbed (`add`, `activation`: their names;
    `add_first` when the sum's first operand was the residual)."""

    pad: Node | None = None
    padding: tuple[tuple[int, int], ...] | None = None
    add: str | None = None
    add_first: bool = False
    activation: str | None = None


def _absorbed(graph: Graph, source: Graph | None, node: Node) -> Absorbed:
    """What `node` absorbed, read from the `source` graph (nothing without it)."""
    if source is None or node.name not in source.by_name:
        return Absorbed()
    own = source[node.name]
    fused = node.op in ("fused_conv", "fused_dense")
    base_op = ("dense" if node.op == "fused_dense" else node.attrs["base"]) if fused else node.op
    if own.op != base_op:
        return Absorbed()
    pad, padding = None, None
    if "padding" in own.attrs and own.inputs and own.inputs[0] in source.by_name:
        before = source[own.inputs[0]]
        merged = node.attrs.get("padding")
        if (
            before.op == "pad"
            and node.inputs[0] != before.name
            and merged is not None
            and tuple(
                (b0 + b1, a0 + a1)
                for (b0, a0), (b1, a1) in zip(
                    before.attrs["pads"][1:-1], own.attrs["padding"], strict=True
                )
            )
            == tuple(merged)
        ):
            pad, padding = before, tuple(own.attrs["padding"])
    if not fused:
        return Absorbed(pad, padding)
    residual, activation = node.attrs["residual"], node.attrs["activation"]
    add, add_first, act = None, False, None
    current = own.name
    for _ in range(4):  # the chain conv -> [batchnorm] -> [add] -> activation, at most
        taken = [
            source[r]
            for r in source.readers.get(current, ())
            if r != "<output>" and r not in graph.by_name
        ]
        if not taken:
            break
        nxt = taken[0]
        if nxt.op == "add" and residual and add is None:
            add, add_first = nxt.name, nxt.inputs[1] == current
        elif nxt.op == activation:
            act = nxt.name
            break
        current = nxt.name
    return Absorbed(pad, padding, add, add_first, act)


# --- the context -----------------------------------------------------------------------------


class KerasContext:
    """What one emission builds: each IR value's Keras tensor, the layer that computes it, and
    each netc weight's Keras variable."""

    def __init__(
        self, graph: Graph, weights: Mapping[str, np.ndarray], source: Graph | None = None
    ):
        self.keras, self.custom = _modules()
        self.layers = self.keras.layers
        self.graph = graph
        self.weights = weights
        self.source = source
        self.values: dict[str, Any] = {}  # IR value -> Keras tensor (a tuple: multi-result)
        self.layer_of: dict[str, str] = {}  # IR value -> the Keras layer computing it
        self.variables: dict[str, Any] = {}  # netc weight -> Keras variable
        self.reserved = {n.name for n in graph.nodes} | (
            {n.name for n in source.nodes} if source is not None else set()
        )
        self.names: set[str] = set()
        self.node: Node = graph.nodes[0] if graph.nodes else Node("", "")
        self.name = ""  # the name of the layer the current rule makes

    # -- names --

    def fresh(self, base: str) -> str:
        """A layer name starting with `base`, unused, and no IR node's name."""
        name, k = base, 0
        while name in self.names or name in self.reserved:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    def claim(self, name: str) -> str:
        """`name` for a layer that computes the IR value (or absorbed node) of that name."""
        assert name not in self.names, f"two Keras layers named `{name}`"
        self.names.add(name)
        return name

    # -- IR values --

    def type(self, name: str) -> TensorType:
        return self.graph[name].tensor_type

    def is_data(self, name: str) -> bool:
        """Whether `name` is a weight or a constant (its value is known at emit time)."""
        return self.graph[name].op in ("param", "constant")

    def array(self, name: str) -> np.ndarray:
        node = self.graph[name]
        if node.op == "constant":
            return np.asarray(node.attrs["value"].array)
        return np.asarray(self.weights[name])

    def tensor(self, name: str) -> Any:
        """The Keras tensor of computed IR value (or input) `name`."""
        if self.is_data(name):
            raise RULES.cannot(
                self.node, f": it reads the {self.graph[name].op} `{name}` as a tensor input"
            )
        value = self.values[name]
        assert not isinstance(value, tuple), f"`{name}` is a tuple, read it through `item`"
        return value

    def operand(self, name: str) -> tuple[Any, Any, str | None]:
        """An operand of a `netc>Binary` or `netc>Unary` layer: (its spec, the tensor to call
        the layer with or None, the weight the layer owns or None)."""
        value = self.graph[name]
        t = value.tensor_type
        if value.op == "constant":
            return (
                {"constant": self.array(name).tolist(), "dtype": KERAS_DTYPES[t.dtype]},
                None,
                None,
            )
        if value.op == "param":
            spec = {
                "weight": name.rsplit(".", 1)[-1],
                "shape": list(t.shape),
                "dtype": KERAS_DTYPES[t.dtype],
                "trainable": bool(value.attrs.get("trainable", True)),
            }
            return spec, None, name
        return "input", self.tensor(name), None

    def anchor(self) -> Any:
        """A tensor to call a layer with that computes from its own weights or constants
        alone (Keras' functional models connect every layer to the inputs)."""
        if not self.graph.inputs:
            raise RULES.cannot(self.node, ": a model without inputs")
        return self.values[self.graph.inputs[0]]

    def params(self, node: Node) -> list[str]:
        """The node's weights (its `param` inputs), in input order: Keras' order."""
        return [i for i in node.inputs if self.graph[i].op == "param"]

    def dtype(self, node: Node) -> str | None:
        """The float dtype a layer for `node` computes in: its first float input's, else its
        result's (None: Keras' default, for integer and bool ops)."""
        types = [self.graph[i].type for i in node.inputs] + [node.type]
        for t in types:
            for tt in t if isinstance(t, tuple) else (t,):
                if isinstance(tt, TensorType) and tt.is_float:
                    return KERAS_DTYPES[tt.dtype]
        return None

    def kw(self, node: Node | None = None, name: str | None = None) -> dict[str, Any]:
        """Keyword arguments every layer takes: its name and dtype."""
        node = node or self.node
        out: dict[str, Any] = {"name": name or self.name}
        dtype = self.dtype(node)
        if dtype is not None:
            out["dtype"] = dtype
        return out

    def apply(self, layer: Any, *args: Any, params: Sequence[str] = (), **kwargs: Any) -> Any:
        """Call `layer` (which builds it), then set its variables, in Keras' order, to the netc
        weights `params` and remember which variable holds which weight."""
        out = layer(*args, **kwargs)
        variables = list(layer.weights)
        assert len(variables) == len(params), (
            f"keras: layer `{layer.name}` has {len(variables)} variables, netc gives "
            f"{len(params)} weights ({', '.join(params)})"
        )
        for var, name in zip(variables, params, strict=True):
            if name in self.variables:  # one Keras variable belongs to one layer
                readers = self.graph.readers.get(name, ())
                raise RULES.cannot(
                    self.node,
                    f": its weight `{name}` is read by several layers ({', '.join(readers)}), "
                    "and a Keras variable belongs to one layer",
                )
            value = self.array(name)
            assert tuple(var.shape) == value.shape, (
                f"keras: variable {var.path} has shape {tuple(var.shape)}, {name} {value.shape}"
            )
            var.assign(value)
            self.variables[name] = var
        return out

    # -- lowering --

    def lower(self, node: Node) -> None:
        """Run `node`'s rule; record its Keras tensor(s) and the layer that computes it."""
        self.node, self.name = node, self.claim(node.name)
        result = RULES.rule(node)(self, node)
        self.values[node.name] = tuple(result) if isinstance(result, (list, tuple)) else result
        self.layer_of[node.name] = self.layer_name(result)

    def lower_as(self, node: Node, name: str) -> Any:
        """Run the rule of `node`, a source-graph node the optimizer merged away, as a layer
        named `name`; the current node stays current."""
        current = self.node, self.name
        self.node, self.name = node, self.claim(name)
        try:
            return RULES.rule(node)(self, node)
        finally:
            self.node, self.name = current

    @staticmethod
    def layer_name(tensor: Any) -> str:
        t = tensor[0] if isinstance(tensor, (list, tuple)) else tensor
        return t._keras_history.operation.name  # the Keras layer whose output it is


# --- emission --------------------------------------------------------------------------------


@dataclass
class Built:
    """A lowering's result before it becomes a model: the Keras inputs, each IR value's tensor
    and layer, each weight's variable; `failed` names the node whose rule raised and why
    (only when building with `partial=True`, for `netc verify`)."""

    inputs: list[Any]
    values: dict[str, Any]
    layer_of: dict[str, str]
    variables: dict[str, Any]
    failed: tuple[Node, str] | None = None


def build(
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    *,
    source: Graph | None = None,
    partial: bool = False,
) -> Built:
    """Lower every node of `graph` to Keras layers. With `partial`, a rule that raises anything
    but a NetcError stops the lowering there and is reported in `Built.failed`."""
    ctx = KerasContext(graph, check_weights(graph, weights), source)
    inputs = []
    for name in graph.inputs:
        t = ctx.type(name)
        x = ctx.keras.Input(
            batch_shape=tuple(d if isinstance(d, int) else None for d in t.shape),
            dtype=KERAS_DTYPES[t.dtype],
            name=ctx.claim(name),
        )
        inputs.append(x)
        ctx.values[name] = x
        ctx.layer_of[name] = name
    failed = None
    for node in graph.nodes:
        if node.op in ("input", "param", "constant"):
            continue
        if node.op == "item":
            ctx.values[node.name] = ctx.values[node.inputs[0]][node.attrs["index"]]
            ctx.layer_of[node.name] = ctx.layer_of[node.inputs[0]]
            continue
        try:
            ctx.lower(node)
        except NetcError:
            raise
        except Exception as e:
            if not partial:
                raise
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            failed = (node, f"Keras cannot build `{node.name}`: {detail}")
            break
    return Built(inputs, ctx.values, ctx.layer_of, ctx.variables, failed)


def emit(
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    *,
    train: TrainSpec | None = None,
    inference: bool = False,
    source: Graph | None = None,
) -> Any:
    """Lower `graph` with `weights` to a functional `keras.Model` (a `NetcModel`), compiled
    from `train` (loss, optimizer, metrics) unless `inference`. `source`, the graph before
    the optimizer, lets the layers of merged nodes keep their own names (see `Absorbed`)."""
    _, custom = _modules()
    built = build(graph, weights, source=source)
    outputs = []
    for out, value in graph.outputs:
        if graph[value].op in ("param", "constant"):
            raise RULES.cannot(
                graph[value], f": output `{out}` is a {graph[value].op}, not a computed value"
            )
        outputs.append(built.values[value])
    meta = {
        "inputs": [_signature(name, graph[name].tensor_type) for name in graph.inputs],
        "outputs": [_signature(o, graph[v].tensor_type) for o, v in graph.outputs],
        "weights": {name: var.path for name, var in built.variables.items()},
        "inference": bool(inference),
    }
    if train is not None and not inference:
        meta["train"] = _fit_settings(train)
    model = custom.NetcModel(
        inputs=built.inputs[0] if len(built.inputs) == 1 else built.inputs,
        outputs=outputs[0] if len(outputs) == 1 else outputs,
        name=graph.name,
        netc=meta,
    )
    if train is not None and not inference:
        compile_model(model, train)
    return model


def _signature(name: str, t: TensorType) -> dict[str, Any]:
    return {"name": name, "dtype": t.dtype, "shape": list(t.shape)}


# --- training --------------------------------------------------------------------------------

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


def _fit_settings(train: TrainSpec) -> dict[str, Any]:
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
    keras, _ = _modules()
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
    keras, _ = _modules()
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
    keras, _ = _modules()
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


# --- weights by netc name --------------------------------------------------------------------


def weights_by_name(model: Any) -> dict[str, np.ndarray]:
    """The model's weights as `{netc weight name: array}`: by the names netc recorded (a model
    netc built, also once trained or reloaded), else by layer: `<layer>.<weight>`."""
    recorded = getattr(model, "netc", {}).get("weights")
    by_path = {v.path: v for v in model.weights}
    if recorded:
        missing = [p for p in recorded.values() if p not in by_path]
        if missing:
            raise error(
                f"Keras model `{model.name}` has no variable {missing[0]}",
                hint="was it changed after netc built it?",
            )
        return {name: np.asarray(by_path[path].numpy()) for name, path in recorded.items()}
    out = {}
    for v in model.weights:
        layer, short = v.path.split("/", 1)
        for cell in RNN_CELLS:
            short = short.removeprefix(cell)
        out[f"{layer}.{short.replace('/', '_')}"] = np.asarray(v.numpy())
    return out


# --- files -----------------------------------------------------------------------------------


def save(model: Any, path: str | Path) -> None:
    """Write `model` to `path` (a `.keras` file) atomically, through netc.files: Keras saves
    to a temporary `.keras` file beside it, renamed into place; a failure leaves the old file
    and no temporary behind, and one a killed process left is removed by the next write."""
    from ..files import atomic_write

    path = Path(path)
    if path.suffix != ".keras":
        raise error(f"a Keras model file must end in .keras, got {path}")
    atomic_write(path, model.save, suffix=".keras")  # Keras checks the temporary's suffix


# --- rules: helpers --------------------------------------------------------------------------


def _op_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if k != "origin"}


def _infers(op: str, x: TensorType, attrs: Mapping[str, Any], **changes: Any) -> bool:
    """Whether netc's shape rule canonicalizes `attrs` with `changes` (Keras' string padding)
    to the attributes the node has: then Keras' own option means the same cells."""
    try:
        _, canon = OPS[op].infer([x], {**_op_attrs(attrs), **changes})
    except (ShapeError, TypeError, ValueError):
        return False
    return all(canon.get(k) == v for k, v in _op_attrs(attrs).items())


def _padding_mode(op: str, x: TensorType, attrs: Mapping[str, Any]) -> str | None:
    """ "valid" or "same" when Keras' padding of that name pads exactly the node's cells."""
    if all(p == (0, 0) for p in attrs["padding"]):
        return "valid"
    if _infers(op, x, attrs, padding="same"):
        return "same"
    return None


def _ints(values: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


# --- rules: elementwise ----------------------------------------------------------------------

ACTIVATIONS = {"sigmoid": "sigmoid", "tanh": "tanh", "silu": "silu", "softplus": "softplus"}
ACTIVATIONS["exp"] = "exponential"
UNARY = ("log", "sqrt", "abs", "neg")


def _activation_layer(
    ctx: KerasContext, op: str, attrs: Mapping[str, Any], node: Node, name: str
) -> Any:
    """A Keras layer computing activation `op` (relu, gelu, ...) with `attrs`."""
    L, kw = ctx.layers, ctx.kw(node, name)
    if op == "relu":
        return L.ReLU(**kw)
    if op == "relu6":
        return L.ReLU(max_value=6.0, **kw)
    if op == "leaky_relu":
        return L.LeakyReLU(negative_slope=attrs["alpha"], **kw)
    if op == "elu":
        return L.ELU(alpha=attrs["alpha"], **kw)
    if op == "gelu":  # Keras' gelu is exact (erf) by default; the tanh form has no name
        if attrs["approximate"]:
            return ctx.custom.Unary("gelu_tanh", **kw)
        return L.Activation("gelu", **kw)
    if op in ACTIVATIONS:
        return L.Activation(ACTIVATIONS[op], **kw)
    if op in ("hard_sigmoid", "hard_swish", "hard_silu"):  # Keras 3's own definitions
        return L.Activation("hard_silu" if op != "hard_sigmoid" else "hard_sigmoid", **kw)
    assert op in UNARY, op
    return ctx.custom.Unary(op, **kw)


ELEMENTWISE = ("relu", "relu6", "leaky_relu", "elu", "gelu", *ACTIVATIONS, *UNARY)


# each activation as a Keras activation function (name, arguments), for a weight's value
FUNCTIONS: dict[str, Any] = {
    "exp": lambda a: ("exponential", {}),
    "leaky_relu": lambda a: ("leaky_relu", {"negative_slope": a["alpha"]}),
    "elu": lambda a: ("elu", {"alpha": a["alpha"]}),
    "gelu": lambda a: ("gelu_tanh" if a["approximate"] else "gelu", {}),
    "hard_swish": lambda a: ("hard_silu", {}),
}


@RULES.on(*ELEMENTWISE)
def _elementwise(ctx: KerasContext, node: Node) -> Any:
    x = node.inputs[0]
    if ctx.is_data(x):  # a weight or constant of the model (`sigmoid(gate)`)
        spec, _, param = ctx.operand(x)
        function, args = FUNCTIONS.get(node.op, lambda a: (node.op, {}))(node.attrs)
        layer = ctx.custom.Unary(function, spec, args, **ctx.kw())
        return ctx.apply(layer, ctx.anchor(), params=[param] if param else [])
    layer = _activation_layer(ctx, node.op, node.attrs, node, ctx.name)
    return ctx.apply(layer, ctx.tensor(x))


def _register_optional(*ops: str) -> None:
    """Rules for activations that only some versions of the op table have."""
    present = [op for op in ops if op in OPS and op not in RULES]
    if present:
        RULES.on(*present)(_elementwise)


_register_optional("hard_sigmoid", "hard_swish", "hard_silu")


@RULES.on("softmax")
def _softmax(ctx: KerasContext, node: Node) -> Any:
    layer = ctx.layers.Softmax(axis=node.attrs["axis"], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("dropout")
def _dropout(ctx: KerasContext, node: Node) -> Any:
    # Keras' Dropout: the identity unless training (survivors scaled by 1 / (1 - rate))
    layer = ctx.layers.Dropout(node.attrs["rate"], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("cast")
def _cast(ctx: KerasContext, node: Node) -> Any:
    layer = ctx.custom.Cast(KERAS_DTYPES[node.attrs["dtype"]], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


MERGE = {
    "add": "Add",
    "sub": "Subtract",
    "mul": "Multiply",
    "maximum": "Maximum",
    "minimum": "Minimum",
}


@RULES.on(*MERGE, "div", "matmul", *(op for op in ("broadcast_like",) if op in OPS))
def _binary(ctx: KerasContext, node: Node) -> Any:
    a, b = node.inputs
    if (
        node.op in MERGE
        and not ctx.is_data(a)
        and not ctx.is_data(b)
        and ctx.type(a) == ctx.type(b) == node.type
    ):  # Keras' merge layers: same shapes, no broadcasting
        layer = getattr(ctx.layers, MERGE[node.op])(**ctx.kw())
        return ctx.apply(layer, [ctx.tensor(a), ctx.tensor(b)])
    operands = [ctx.operand(i) for i in (a, b)]
    inputs = [t for _, t, _ in operands if t is not None]
    params = [p for _, _, p in operands if p is not None]
    if not inputs:
        raise RULES.cannot(node, ": both operands are weights or constants")
    layer = ctx.custom.Binary(node.op, [spec for spec, _, _ in operands], **ctx.kw())
    return ctx.apply(layer, inputs[0] if len(inputs) == 1 else inputs, params=params)


# --- rules: dense, convolutions, pooling ------------------------------------------------------


@RULES.on("dense")
def _dense(ctx: KerasContext, node: Node) -> Any:
    a = node.attrs
    layer = ctx.layers.Dense(a["units"], use_bias=a["bias"], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]), params=ctx.params(node))


CONVS = {
    "conv1d": "Conv1D",
    "conv2d": "Conv2D",
    "conv3d": "Conv3D",
    "depthwise_conv1d": "DepthwiseConv1D",
    "depthwise_conv2d": "DepthwiseConv2D",
    "separable_conv1d": "SeparableConv1D",
    "separable_conv2d": "SeparableConv2D",
}
TRANSPOSED = {
    "conv1d_transpose": "Conv1DTranspose",
    "conv2d_transpose": "Conv2DTranspose",
    "conv3d_transpose": "Conv3DTranspose",
}


def _conv_layer(ctx: KerasContext, node: Node, x: TensorType) -> Any:
    a = node.attrs
    common: dict[str, Any] = dict(
        kernel_size=_ints(a["kernel"]),
        strides=_ints(a["stride"]),
        dilation_rate=_ints(a["dilation"]),
        use_bias=a["bias"],
        **ctx.kw(),
    )
    if node.op.startswith("depthwise"):
        common["depth_multiplier"] = a["depth_multiplier"]
    elif node.op.startswith("separable"):
        common.update(filters=a["filters"], depth_multiplier=a["depth_multiplier"])
    else:
        common.update(filters=a["filters"], groups=a["groups"])
    mode = _padding_mode(node.op, x, a)
    if mode is not None:
        return getattr(ctx.layers, CONVS[node.op])(padding=mode, **common)
    padded = getattr(ctx.custom, "Padded" + CONVS[node.op])
    return padded(explicit_padding=a["padding"], **common)


def _transposed_layer(ctx: KerasContext, node: Node, x: TensorType) -> Any:
    a = node.attrs
    strides = _ints(a["stride"])
    common: dict[str, Any] = dict(
        filters=a["filters"],
        kernel_size=_ints(a["kernel"]),
        strides=strides,
        dilation_rate=_ints(a["dilation"]),
        use_bias=a["bias"],
        **ctx.kw(),
    )
    # Keras' own layer when one of its (padding, output_padding) settings is the node's (and
    # not dilated: TensorFlow runs no dilated transposed convolution on the CPU)
    for mode in ("valid", "same") if all(d == 1 for d in _ints(a["dilation"])) else ():
        for extra in [None, *itertools.product(*(range(s) for s in strides))]:
            if _infers(node.op, x, a, padding=mode, output_padding=extra):
                return getattr(ctx.layers, TRANSPOSED[node.op])(
                    padding=mode, output_padding=extra, **common
                )
    # otherwise the full ("valid") output, grown by output_padding where netc reads past its
    # end, then cropped by the pairs
    crop, grow = [], []
    for (before, after), extra in zip(a["padding"], a["output_padding"], strict=True):
        crop.append((before, max(after - extra, 0)))
        grow.append(max(extra - after, 0))
    cropped = getattr(ctx.custom, "Cropped" + TRANSPOSED[node.op])
    return cropped(crop=crop, output_padding=tuple(grow), **common)


def _padded_input(ctx: KerasContext, node: Node, absorbed: Absorbed) -> tuple[Any, Node]:
    """The conv or pool's input and the node to lower: with a pad the optimizer folded in,
    that pad's own layer (named after it, made once) and the node's padding before the fold."""
    x = node.inputs[0]
    if absorbed.pad is None or absorbed.padding is None:
        return ctx.tensor(x), node
    pad = absorbed.pad
    if pad.name not in ctx.values:  # not computed for other readers, nor for another fold
        ctx.values[pad.name] = ctx.lower_as(pad.with_(inputs=(x,)), pad.name)
    return ctx.values[pad.name], node.with_(attrs={**node.attrs, "padding": absorbed.padding})


def _zero_padding(pads: Sequence[Sequence[int]]) -> Any:
    spatial = tuple(_ints(p) for p in pads[1:-1])
    return spatial[0] if len(spatial) == 1 else spatial


def _conv_node(ctx: KerasContext, node: Node, absorbed: Absorbed) -> Any:
    """The layers of a convolution (any kind) node."""
    if node.op in TRANSPOSED:
        x = ctx.type(node.inputs[0])
        layer = _transposed_layer(ctx, node, x)
        return ctx.apply(layer, ctx.tensor(node.inputs[0]), params=ctx.params(node))
    padded, node = _padded_input(ctx, node, absorbed)
    x = ctx.type(node.inputs[0])
    if absorbed.pad is not None and absorbed.padding is not None:
        x = x.with_shape(
            [
                d + b + a if isinstance(d, int) else d
                for d, (b, a) in zip(x.shape, absorbed.pad.attrs["pads"], strict=True)
            ]
        )
    layer = _conv_layer(ctx, node, x)
    return ctx.apply(layer, padded, params=ctx.params(node))


@RULES.on(*(op for op in (*CONVS, *TRANSPOSED) if op in OPS))
def _conv(ctx: KerasContext, node: Node) -> Any:
    return _conv_node(ctx, node, _absorbed(ctx.graph, ctx.source, node))


@RULES.on("fused_dense", "fused_conv")
def _fused(ctx: KerasContext, node: Node) -> Any:
    """The base op's layer (named after the node), an Add for the residual, then the
    activation's layer: named after the source nodes the optimizer fused when known
    (`Absorbed`), else `<node>.add` and `<node>.<activation>`."""
    absorbed = _absorbed(ctx.graph, ctx.source, node)
    residual, activation = node.attrs["residual"], node.attrs["activation"]
    x, rest = node.inputs[0], node.inputs[1:]
    skip = rest[0] if residual else None
    base = node.with_(
        op="dense" if node.op == "fused_dense" else node.attrs["base"],
        inputs=(x, *rest[int(residual) :]),
        attrs=base_attrs(node.attrs),
    )
    if base.op == "dense":
        y = _dense(ctx, base)
    else:
        y = _conv_node(ctx, base, absorbed)
    if skip is not None:
        name = ctx.claim(absorbed.add) if absorbed.add else ctx.fresh(f"{node.name}.add")
        pair = [ctx.tensor(skip), y] if absorbed.add_first else [y, ctx.tensor(skip)]
        y = ctx.apply(ctx.layers.Add(**ctx.kw(node, name)), pair)
    if activation != "none":
        name = (
            ctx.claim(absorbed.activation)
            if absorbed.activation
            else ctx.fresh(f"{node.name}.{activation}")
        )
        layer = _activation_layer(ctx, activation, activation_attrs(node.attrs), node, name)
        y = ctx.apply(layer, y)
    return y


POOLS = {"maxpool": "MaxPooling", "avgpool": "AveragePooling"}


@RULES.on(*POOLS)
def _pool(ctx: KerasContext, node: Node) -> Any:
    absorbed = _absorbed(ctx.graph, ctx.source, node)
    padded, node = _padded_input(ctx, node, absorbed)
    a = node.attrs
    x = ctx.type(node.inputs[0])
    if absorbed.pad is not None:
        x = x.with_shape(
            [
                d + b + e if isinstance(d, int) else d
                for d, (b, e) in zip(x.shape, absorbed.pad.attrs["pads"], strict=True)
            ]
        )
    n = len(a["size"])
    common = dict(pool_size=_ints(a["size"]), strides=_ints(a["stride"]), **ctx.kw())
    mode = _padding_mode(node.op, x, a)
    if mode is not None:
        layer = getattr(ctx.layers, f"{POOLS[node.op]}{n}D")(padding=mode, **common)
    else:  # avgpool: padded cells are not counted, as in Keras' "same"
        layer = getattr(ctx.custom, f"Padded{POOLS[node.op]}{n}D")(
            explicit_padding=a["padding"], **common
        )
    return ctx.apply(layer, padded)


@RULES.on("global_avgpool", "global_maxpool")
def _global_pool(ctx: KerasContext, node: Node) -> Any:
    n = ctx.type(node.inputs[0]).rank - 2
    kind = "Average" if node.op == "global_avgpool" else "Max"
    layer = getattr(ctx.layers, f"Global{kind}Pooling{n}D")(
        keepdims=node.attrs["keepdims"], **ctx.kw()
    )
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


# --- rules: normalization --------------------------------------------------------------------


@RULES.on("batchnorm")
def _batchnorm(ctx: KerasContext, node: Node) -> Any:
    # netc's epsilon and momentum are Keras' (momentum weighs the old moving statistic)
    a = node.attrs
    layer = ctx.layers.BatchNormalization(
        axis=a["axis"],
        epsilon=a["epsilon"],
        momentum=a["momentum"],
        center=a["center"],
        scale=a["scale"],
        **ctx.kw(),
    )
    return ctx.apply(layer, ctx.tensor(node.inputs[0]), params=ctx.params(node))


@RULES.on("layernorm")
def _layernorm(ctx: KerasContext, node: Node) -> Any:
    a = node.attrs
    layer = ctx.layers.LayerNormalization(
        axis=list(a["axis"]), epsilon=a["epsilon"], center=a["center"], scale=a["scale"], **ctx.kw()
    )
    return ctx.apply(layer, ctx.tensor(node.inputs[0]), params=ctx.params(node))


# --- rules: reductions -----------------------------------------------------------------------


@RULES.on("reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod")
def _reduce(ctx: KerasContext, node: Node) -> Any:
    a = node.attrs
    layer = ctx.custom.Reduce(node.op, list(a["axis"]), a["keepdims"], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("argmax")
def _argmax(ctx: KerasContext, node: Node) -> Any:
    layer = ctx.custom.ArgMax(node.attrs["axis"], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


# --- rules: shape ----------------------------------------------------------------------------


@RULES.on("flatten")
def _flatten(ctx: KerasContext, node: Node) -> Any:
    # channels-last element order, as netc's (Keras' data_format default)
    layer = ctx.layers.Flatten(**ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("reshape")
def _reshape(ctx: KerasContext, node: Node) -> Any:
    layer = ctx.layers.Reshape(_ints(node.attrs["shape"]), **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("transpose")
def _transpose(ctx: KerasContext, node: Node) -> Any:
    perm = _ints(node.attrs["perm"])
    if perm[0] == 0:  # Keras' Permute: the non-batch axes, counted from 1
        layer = ctx.layers.Permute(perm[1:], **ctx.kw())
    else:
        layer = ctx.custom.Transpose(list(perm), **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("concat")
def _concat(ctx: KerasContext, node: Node) -> Any:
    xs = [ctx.tensor(i) for i in node.inputs]
    axis = node.attrs["axis"]
    if len(xs) >= 2 and axis >= 1:
        return ctx.apply(ctx.layers.Concatenate(axis=axis, **ctx.kw()), xs)
    return ctx.apply(ctx.custom.Concat(axis, **ctx.kw()), xs)


@RULES.on("split")
def _split(ctx: KerasContext, node: Node) -> Any:
    a = node.attrs
    layer = ctx.custom.Split(list(a["sections"]), a["axis"], **ctx.kw())
    return tuple(ctx.apply(layer, ctx.tensor(node.inputs[0])))


@RULES.on("slice")
def _slice(ctx: KerasContext, node: Node) -> Any:
    a = node.attrs
    layer = ctx.custom.Slice(
        list(a["axes"]), list(a["starts"]), list(a["ends"]), list(a["steps"]), **ctx.kw()
    )
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("squeeze")
def _squeeze(ctx: KerasContext, node: Node) -> Any:
    layer = ctx.custom.Squeeze(list(node.attrs["axes"]), **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("expand_dims")
def _expand_dims(ctx: KerasContext, node: Node) -> Any:
    layer = ctx.custom.ExpandDims(node.attrs["axis"], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("pad")
def _pad(ctx: KerasContext, node: Node) -> Any:
    a = node.attrs
    pads = a["pads"]
    r = len(pads)
    if (
        a["mode"] == "constant"
        and a["value"] == 0
        and 3 <= r <= 5
        and pads[0] == (0, 0)
        and pads[-1] == (0, 0)
    ):
        layer = getattr(ctx.layers, f"ZeroPadding{r - 2}D")(padding=_zero_padding(pads), **ctx.kw())
    else:
        layer = ctx.custom.Pad(pads, a["mode"], a["value"], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("upsample")
def _upsample(ctx: KerasContext, node: Node) -> Any:
    a = node.attrs
    size = _ints(a["size"])
    n = len(size)
    if n == 1:
        layer = ctx.layers.UpSampling1D(size[0], **ctx.kw())
    elif n == 2:  # bilinear: TF's half-pixel resize, as netc's
        layer = ctx.layers.UpSampling2D(size, interpolation=a["method"], **ctx.kw())
    else:
        layer = ctx.layers.UpSampling3D(size, **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


@RULES.on("resize")
def _resize(ctx: KerasContext, node: Node) -> Any:
    # tf.image.resize without antialias: half-pixel centers, as netc's
    h, w = _ints(node.attrs["size"])
    layer = ctx.layers.Resizing(h, w, interpolation=node.attrs["method"], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]))


# --- rules: embeddings, recurrent, attention --------------------------------------------------


@RULES.on("embedding")
def _embedding(ctx: KerasContext, node: Node) -> Any:
    a = node.attrs
    layer = ctx.layers.Embedding(a["vocab"], a["dim"], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]), params=ctx.params(node))


@RULES.on("positional_embedding")
def _positional_embedding(ctx: KerasContext, node: Node) -> Any:
    layer = ctx.custom.PositionalEmbedding(node.attrs["max_length"], **ctx.kw())
    return ctx.apply(layer, ctx.tensor(node.inputs[0]), params=ctx.params(node))


@RULES.on("lstm", "gru")
def _recurrent(ctx: KerasContext, node: Node) -> Any:
    # Keras' gate orders (LSTM i f c o, GRU z r h) and weight layouts are netc's; go_backwards
    # returns the sequence in processing order in both
    a = node.attrs
    common = dict(
        units=a["units"],
        return_sequences=a["return_sequences"],
        return_state=a["return_state"],
        go_backwards=a["go_backwards"],
        **ctx.kw(),
    )
    if node.op == "lstm":
        layer = ctx.layers.LSTM(**common)
    else:
        layer = ctx.layers.GRU(reset_after=a["reset_after"], **common)
    y = ctx.apply(layer, ctx.tensor(node.inputs[0]), params=ctx.params(node))
    return tuple(y) if a["return_state"] else y


@RULES.on("multi_head_attention")
def _attention(ctx: KerasContext, node: Node) -> Any:
    a = node.attrs
    params = ctx.params(node)
    data = [i for i in node.inputs if i not in params]
    query = ctx.tensor(data[0])
    value = ctx.tensor(data[1]) if len(data) > 1 else query
    key = ctx.tensor(data[2]) if len(data) > 2 else None
    layer = ctx.layers.MultiHeadAttention(
        num_heads=a["heads"],
        key_dim=a["key_dim"],
        value_dim=a["value_dim"],
        output_shape=a["output_dim"],
        use_bias=a["bias"],
        **ctx.kw(),
    )
    kwargs: dict[str, Any] = {"use_causal_mask": a["causal"]}
    if key is not None:
        kwargs["key"] = key
    return ctx.apply(layer, query, value, params=params, **kwargs)
