"""The Keras backend: a checked IR graph and its weights -> a functional, trainable `keras.Model`.

One rule per IR op in `RULES`, each making Keras' own layer where one exists (Conv2D, Dense,
BatchNormalization, LSTM, MultiHeadAttention...) and a small layer of keras_layers.py where
none does. Every layer is named after the IR node it computes (`stage_1.conv_bn_2.conv2d`)
and holds that node's netc weights, so `model.get_layer(name)` and `model.summary()` read like
`netc summary`. Nodes the optimizer merged are laid out again as the layers they came from
when the source graph is given (see `keras_conv.Absorbed`). docs/keras.md describes the result.
TensorFlow and Keras are imported inside the functions that need them.

The backend is split by concern: `keras_lower` (the lowering context `KerasContext` and the
one rule table `RULES`), `keras_rules` (elementwise, normalization, reductions, shape,
sequences and attention), `keras_conv` (dense layers, convolutions and pooling, with the nodes
the optimizer merged into them), `keras_fit` (compiling and training a model from its train
section); this module is the entry point (`build`, `emit`, `save`, weights by netc name) and
re-exports what the rest of netc uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..ir import Graph, Node, TensorType
from ..source import NetcError, error
from ..train_spec import TrainSpec
from ..weights import check_weights
from . import keras_conv, keras_rules  # noqa: F401 - the rules register in RULES
from .keras_conv import Absorbed  # noqa: F401 - the backend's public names, for its users
from .keras_fit import (  # noqa: F401
    CALLBACKS,
    LOSSES,
    METRIC_CLASSES,
    OPTIMIZERS,
    SCHEDULES,
    callbacks,
    compile_model,
    fit,
    fit_settings,
    keras_log_name,
    monitor_mode,
    netc_log_names,
)
from .keras_lower import KERAS_DTYPES, NETC_DTYPES, RULES, KerasContext, keras_modules  # noqa: F401

RNN_CELLS = ("lstm_cell/", "gru_cell/")  # Keras' RNN layers keep their weights in a cell


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
    _, custom = keras_modules()
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
        meta["train"] = fit_settings(train)
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
