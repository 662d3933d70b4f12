"""Run Keras models: a `.keras` file netc wrote (or any Keras model) behind netc's interface,
and every IR value of a graph as Keras computes it (`run_values`, for `netc verify -t keras`).

TensorFlow and Keras are imported when a session is made (`netc.backends.tensorflow`), with
netc's custom layers registered, so `keras.models.load_model` can rebuild the file.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from netc.ir import Graph
from netc.source import NetcError, error

from .api import Signature
from .feed import FeedCheck


def _modules() -> tuple[Any, Any]:
    """(tensorflow, keras), with netc's Keras layers registered."""
    from netc.backends import keras_layers, tensorflow  # noqa: F401  (registers the layers)

    tf = tensorflow("keras")
    import keras

    return tf, keras


def gpu_available() -> bool:
    """Whether TensorFlow sees a GPU here."""
    tf, _ = _modules()
    return bool(tf.config.list_physical_devices("GPU"))


def read_model(path: str | Path) -> Any:
    """The Keras model in `path`, or a NetcError saying why the file is not one."""
    _, keras = _modules()
    p = Path(path)
    if not p.is_file():
        raise error(f"no such model file: {p}" if not p.exists() else f"{p} is not a file")
    try:
        with warnings.catch_warnings():
            # a file saved before training holds an optimizer without its slots yet: Keras
            # warns that it skips loading them, which is what should happen
            warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
            return keras.models.load_model(p)
    except Exception as e:  # a zip that is not Keras', a config naming unknown layers, OSError...
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise error(f"{p} is not a valid Keras model: {detail}") from None


def _device(device: str) -> str:
    """The TensorFlow device a session runs on: "cuda" needs a GPU, "auto" takes one if any."""
    if device == "cuda" and not gpu_available():
        raise error(
            "device cuda: TensorFlow sees no GPU here",
            hint='use device "cpu" (or "auto")',
        )
    return "cuda" if device in ("auto", "cuda") and gpu_available() else "cpu"


def _tf_device(device: str) -> str:
    return "/GPU:0" if device == "cuda" else "/CPU:0"


def _dims(shape: Any) -> tuple[Any, ...]:
    return tuple(None if d is None else int(d) for d in shape)


def signatures(model: Any) -> tuple[tuple[Signature, ...], tuple[Signature, ...]]:
    """(inputs, outputs) of a Keras model: netc's names, dtypes and symbolic shapes when netc
    built it, else Keras' own (input layer names, output layer names, None for unknown)."""
    meta = getattr(model, "netc", None) or {}
    if "inputs" in meta and "outputs" in meta:

        def sig(entry: Mapping[str, Any]) -> Signature:
            return Signature(entry["name"], entry["dtype"], tuple(entry["shape"]))

        return tuple(sig(e) for e in meta["inputs"]), tuple(sig(e) for e in meta["outputs"])
    from netc.backends.to_keras import NETC_DTYPES

    def dtype(t: Any) -> str:
        name = str(getattr(t, "dtype", "float32"))
        return NETC_DTYPES.get(name, name)

    inputs = tuple(Signature(t.name.split(":")[0], dtype(t), _dims(t.shape)) for t in model.inputs)
    outputs = tuple(
        Signature(name, dtype(t), _dims(t.shape))
        for name, t in zip(model.output_names, model.outputs, strict=True)
    )
    return inputs, outputs


class KerasSession:
    """A Keras model behind netc's interface (named numpy arrays in and out), run as
    `model(x, training=False)`."""

    def __init__(self, source: Any, *, name: str = "model", device: str = "auto"):
        _modules()
        self.model = read_model(source) if isinstance(source, (str, Path)) else source
        self.device = _device(device)
        self.name = name
        self.inputs, self.outputs = signatures(self.model)
        self._check = FeedCheck(self.name, self.inputs)

    def run(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run on named numpy inputs (checked first); returns the named outputs."""
        tf, _ = _modules()
        feed = self._check(inputs)
        args = [feed[s.name] for s in self.inputs]
        try:
            with tf.device(_tf_device(self.device)):
                results = self.model(args[0] if len(args) == 1 else args, training=False)
        except NetcError:
            raise
        except Exception as e:  # a run-time failure inside TensorFlow (e.g. a bad index)
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise error(f"Keras failed to run model `{self.name}`: {detail}") from None
        if not isinstance(results, (list, tuple)):
            results = [results]
        return {s.name: _numpy(r) for s, r in zip(self.outputs, results, strict=True)}


def _numpy(tensor: Any) -> np.ndarray:
    a = tensor.numpy() if hasattr(tensor, "numpy") else np.asarray(tensor)
    return a.astype(np.float32) if a.dtype.name == "bfloat16" else a  # bf16 is read as f32


def run_values(
    graph: Graph, weights: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray], device: str
) -> Any:
    """Every computed IR value of `graph` as Keras computes it (for `netc verify -t keras`):
    one model whose outputs are all of them, run once with training=False. A rule that Keras
    cannot build, or a model that fails to run, is bisected to the first value it cannot give."""
    from netc.backends import to_keras

    from .verify import SOURCES, Backend

    tf, keras = _modules()
    ran_on = _device(device)
    built = to_keras.build(graph, weights, partial=True)
    keys: list[tuple[str, int | None]] = []
    tensors: dict[tuple[str, int | None], str] = {}
    outs: list[Any] = []
    for node in graph.nodes:
        if node.op in SOURCES or node.name not in built.values:
            continue
        value = built.values[node.name]
        layer = built.layer_of[node.name]
        if isinstance(value, tuple):
            for i, v in enumerate(value):
                keys.append((node.name, i))
                outs.append(v)
                tensors[(node.name, i)] = f"{layer}[{i}]"
        else:
            keys.append((node.name, None))
            outs.append(value)
            tensors[(node.name, None)] = layer
    failed_at, failure = None, None
    if built.failed is not None:
        node, failure = built.failed
        failed_at = (node.name, 0 if isinstance(node.type, tuple) else None)
    feed = [np.asarray(inputs[name]) for name in graph.inputs]

    def run(count: int) -> dict[tuple[str, int | None], np.ndarray]:
        if count == 0:
            return {}
        model = keras.Model(built.inputs, outs[:count])
        with tf.device(_tf_device(ran_on)):
            results = model(feed, training=False)
        if not isinstance(results, (list, tuple)):
            results = [results]
        return {k: _numpy(r) for k, r in zip(keys[:count], results, strict=True)}

    try:
        return Backend(run(len(keys)), tensors, ran_on, failed_at, failure)
    except Exception as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    ok, bad = 0, len(keys)  # the first `ok` values compute; the first `bad` do not
    values: dict[tuple[str, int | None], np.ndarray] = {}
    while bad - ok > 1:
        mid = (ok + bad) // 2
        try:
            values = run(mid)
            ok = mid
        except Exception as e:
            bad, message = mid, str(e).strip().splitlines()[0] if str(e).strip() else "error"
    return Backend(values, tensors, ran_on, keys[ok], f"Keras failed to run: {message}")
