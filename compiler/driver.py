"""From a checked model to a backend artifact: weights, the optimizer, the backend's emit.

The CLI, the runtime and the library all go through here, so `netc model.net`, `netc run`
and `netc.runtime.load("model.net")` produce the same graph for the same flags.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .ir import Graph
from .source import error
from .summary import Model

TARGETS = {"onnx": ".onnx"}  # target -> the artifact's file extension


def model_weights(model: Model, weights: Any = None, seed: int = 0) -> dict[str, np.ndarray]:
    """The model's weights: a file (.npz, .safetensors), a dict by name, or seeded initial
    values (Keras' initializers) when `weights` is None; checked against the model by name."""
    from .weights import check_weights, initial_weights, load_weights

    if weights is None:
        return initial_weights(model.graph, seed)
    source = str(weights) if isinstance(weights, (str, Path)) else "the weights"
    if isinstance(weights, (str, Path)):
        weights = load_weights(weights)
    return check_weights(model.graph, weights, source)


def optimized(
    model: Model,
    weights: Mapping[str, np.ndarray],
    level: int = 2,
    *,
    keep_training: bool = False,
    verify: bool = False,
    print_after: Iterable[str] = (),
    stats: dict | None = None,
    on_print: Callable[[str, str], None] | None = None,
) -> tuple[Graph, Mapping[str, np.ndarray]]:
    """The graph and weights after the passes of opt `level` (0: unchanged)."""
    if level == 0 and not print_after:
        return model.graph, weights
    from .passes import PassError, optimize

    try:
        return optimize(
            model.graph,
            weights,
            level,
            keep_training=keep_training,
            verify=verify,
            print_after=print_after,
            stats=stats,
            on_print=on_print,
        )
    except ValueError as e:  # an unknown pass name in print_after: the user's flag
        raise error(str(e)) from None
    except PassError:
        raise  # a compiler bug, named by pass: not the user's mistake


def emit(
    model: Model,
    target: str = "onnx",
    *,
    weights: Any = None,
    seed: int = 0,
    level: int = 2,
    io_layout: str = "channels-last",
    **passes: Any,
) -> Any:
    """The backend artifact (an onnx.ModelProto for "onnx") for `model` at opt `level`."""
    if target not in TARGETS:
        raise error(f"unknown target `{target}`", hint=f"targets: {', '.join(TARGETS)}")
    graph, values = optimized(model, model_weights(model, weights, seed), level, **passes)
    from .backends import to_onnx

    return to_onnx.emit(graph, values, io_layout=io_layout)


def default_output(model_path: str | Path, target: str = "onnx") -> Path:
    """`model.net` -> `model.onnx` next to the source."""
    return Path(model_path).with_suffix(TARGETS[target])


def write(model: Model, path: str | Path, target: str = "onnx", **options: Any) -> Path:
    """Emit and write the artifact atomically (a failure leaves no file); returns the path."""
    from .backends import to_onnx

    artifact = emit(model, target, **options)
    to_onnx.save(artifact, path)
    return Path(path)
