"""From a checked model to a backend artifact: weights, the optimizer, the backend's emit.

The CLI, the runtime and the library all go through here, so `netc model.net`, `netc run`
and `netc.runtime.load("model.net")` produce the same graph for the same flags.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .ir import Graph
from .source import error
from .summary import Model
from .targets import TARGET_OPTIONS, TARGETS, Target


def target_spec(name: str) -> Target:
    """The target called `name`, or a NetcError listing the targets."""
    if name not in TARGETS:
        raise error(f"unknown target `{name}`", hint=f"targets: {', '.join(TARGETS)}")
    return TARGETS[name]


def backend(name: str) -> ModuleType:
    """The lowering module of target `name`, with its framework importable (a NetcError naming
    the extra to install when it is not)."""
    spec = target_spec(name)
    if spec.extra == "tf":
        from .backends import tensorflow

        tensorflow(name)
    if spec.extra == "tvm":
        from .backends import tvm

        tvm(name)
    return importlib.import_module(f".backends.{spec.module}", __package__)


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


def target_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The backend options of target `name` (`io_layout`, `inference`, `xla`, `tvm_target`,
    `dims`) among `options`, whose None values mean "not given"; a NetcError for an option the
    target does not take."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        assert key in TARGET_OPTIONS, f"unknown backend option {key}"
        if value is None or value is False:
            continue
        if name not in TARGET_OPTIONS[key]:
            flag = {"dims": "--dim"}.get(key, "--" + key.replace("_", "-"))
            takers = " and ".join(f"-t {t}" for t in TARGET_OPTIONS[key])
            raise error(f"{flag} applies to {takers}, not to -t {name}")
        out[key] = value
    return out


def emit(
    model: Model,
    target: str = "onnx",
    *,
    weights: Any = None,
    seed: int = 0,
    level: int = 2,
    io_layout: str | None = None,
    inference: bool = False,
    xla: bool = False,
    tvm_target: Any = None,
    dims: Mapping[str, int] | None = None,
    **passes: Any,
) -> Any:
    """The backend artifact for `model` at opt `level`: an onnx.ModelProto ("onnx"), a
    keras.Model ("keras": trainable, compiled from its train section, unless `inference`), or
    a `to_tf.Artifact` ("tf": a tf.Module with a serving function, `xla` to jit-compile it),
    or a `to_tvm.Artifact` ("tvm": a Relax module for the TVM target `tvm_target`, default the
    host CPU, with the symbolic dims in `dims` fixed; compiled when saved or loaded).
    `io_layout` ("channels-last" or "channels-first") is the ONNX model's image layout."""
    spec = target_spec(target)
    options = target_options(
        target,
        {
            "io_layout": io_layout,
            "inference": inference,
            "xla": xla,
            "tvm_target": tvm_target,
            "dims": dims or None,
        },
    )
    module = backend(target)
    keep_training = spec.trains and not options.get("inference", False)
    graph, values = optimized(
        model, model_weights(model, weights, seed), level, keep_training=keep_training, **passes
    )
    if spec.trains:
        options["train"] = model.train
        options["source"] = model.graph  # layers the optimizer merged keep their own names
    return module.emit(graph, values, **options)


def default_output(model_path: str | Path, target: str = "onnx") -> Path:
    """`model.net` -> `model.onnx` (`model.keras`, `model.savedmodel/`) next to the source."""
    return Path(model_path).with_suffix(TARGETS[target].suffix)


def write(model: Model, path: str | Path, target: str = "onnx", **options: Any) -> Path:
    """Emit and write the artifact atomically (a failure leaves the previous output as it
    was, and nothing half-written); returns the path."""
    artifact = emit(model, target, **options)
    backend(target).save(artifact, path)
    return Path(path)
