"""Run TensorFlow artifacts: a SavedModel folder netc wrote (or the in-memory `to_tf.Artifact`)
behind netc's interface, and every IR value of a graph as TensorFlow computes it
(`run_values`, for `netc verify -t tf`).

TensorFlow is imported when a session is made (`netc.backends.tensorflow`). A SavedModel carries
netc's own signature (its `netc_info` function), so symbolic dims are checked by name, as for
every other backend; a SavedModel without it is not netc's and is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from netc.ir import Graph
from netc.source import NetcError, error

from .api import Signature
from .feed import FeedCheck


def _tf() -> Any:
    from netc.backends import tensorflow

    return tensorflow("tf")


def gpu_available() -> bool:
    """Whether TensorFlow sees a GPU here."""
    return bool(_tf().config.list_physical_devices("GPU"))


def _device(device: str) -> str:
    """The device a session runs on: "cuda" needs a GPU TensorFlow sees, "auto" takes one."""
    if device == "cuda" and not gpu_available():
        raise error("device cuda: TensorFlow sees no GPU here", hint='use device "cpu" (or "auto")')
    return "cuda" if device in ("auto", "cuda") and gpu_available() else "cpu"


def _tf_device(device: str) -> str:
    return "/GPU:0" if device == "cuda" else "/CPU:0"


_TF_NOISE = ("Graph execution error", "Detected at node", "File ", "[[", "{{")


def _detail(e: BaseException) -> str:
    """The line of an exception's message that says what went wrong: TF's run-time errors
    wrap the op's own message in the Python stack of its trace and the failing node's name."""
    text = str(getattr(e, "message", None) or e)
    lines = [s.strip() for s in text.splitlines() if s.strip()]
    said = [s for s in lines if not s.startswith(_TF_NOISE)]
    if said and lines[0].startswith("Graph execution error"):
        return said[-1]  # the op's own message comes after the trace's stack
    return (said or lines or [type(e).__name__])[0]


def read_savedmodel(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """(the loaded SavedModel, its netc info), or a NetcError saying why `path` is not a
    SavedModel netc wrote."""
    tf = _tf()
    p = Path(path)
    if not p.exists():
        raise error(f"no such SavedModel: {p}")
    if not (p / "saved_model.pb").is_file():
        raise error(f"{p} is not a SavedModel (it has no saved_model.pb)")
    try:
        loaded = tf.saved_model.load(str(p))
    except Exception as e:  # a truncated protobuf, a missing variables folder, an unknown op...
        raise error(f"{p} is not a valid SavedModel: {_detail(e)}") from None
    if not hasattr(loaded, "netc_info") or not hasattr(loaded, "serving"):
        raise error(
            f"{p} is a SavedModel, but not one netc wrote (it has no netc signature)",
            hint="netc runs the SavedModels that `netc MODEL.net -t tf` writes; serve others "
            "with TensorFlow itself",
        )
    try:
        info = json.loads(loaded.netc_info().numpy().decode())
    except Exception as e:
        raise error(f"{p} has an unreadable netc signature: {_detail(e)}") from None
    return loaded, info


def _signature(items: Sequence[Mapping[str, Any]]) -> tuple[Signature, ...]:
    return tuple(Signature(s["name"], s["dtype"], tuple(s["shape"])) for s in items)


class TfSession:
    """A netc TensorFlow artifact (a SavedModel folder or a `to_tf.Artifact`) behind netc's
    interface: named numpy arrays in, named numpy arrays out. bf16 values cross the boundary
    as float32 arrays (numpy has no bfloat16), as for every netc backend."""

    def __init__(self, source: Any, *, name: str = "model", device: str = "auto"):
        tf = _tf()
        self.device = _device(device)
        if isinstance(source, (str, Path)):
            self._module, info = read_savedmodel(source)
            self.inputs = _signature(info["inputs"])
            self.outputs = _signature(info["outputs"])
            self.name = info.get("model") or name
            self.xla = bool(info.get("xla"))
        else:
            self._module = source.module
            self.inputs = tuple(Signature(n, d, tuple(s)) for n, d, s in source.inputs)
            self.outputs = tuple(Signature(n, d, tuple(s)) for n, d, s in source.outputs)
            self.name = source.name or name
            self.xla = source.xla
        self._check = FeedCheck(self.name, self.inputs)
        self._tf = tf

    def run(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run on named numpy inputs (checked first); returns the named outputs."""
        tf = self._tf
        feed = self._check(inputs)
        try:
            with tf.device(_tf_device(self.device)):
                args = [_tensor(tf, feed[s.name], s.dtype) for s in self.inputs]
                results = self._module.serving(*args)
                return {s.name: _array(results[s.name]) for s in self.outputs}
        except NetcError:
            raise
        except Exception as e:  # a run-time failure inside TensorFlow (an id out of range...)
            raise error(f"TensorFlow failed to run model `{self.name}`: {_detail(e)}") from None


def _tensor(tf: Any, a: np.ndarray, dtype: str) -> Any:
    if dtype == "bf16":  # numpy has no bfloat16: float32 in, rounded to bfloat16 here
        return tf.cast(tf.constant(a, tf.float32), tf.bfloat16)
    return tf.constant(a)


def _array(t: Any) -> np.ndarray:
    if t.dtype.name == "bfloat16":
        return t.numpy().astype(np.float32)
    return t.numpy()


# --- netc verify -----------------------------------------------------------------------------


def run_values(
    graph: Graph, weights: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray], device: str
) -> Any:
    """Every computed IR value as TensorFlow gives it (a plain tf.function returning them all,
    one run). When that fails (a broken lowering), bisect for the longest prefix of values
    that does run; the value after it is the one TensorFlow fails to compute."""
    from netc.backends import to_tf

    from .verify import SOURCES, Backend

    tf = _tf()
    ran_on = _device(device)
    keys: list[tuple[str, int | None]] = []
    for node in graph.nodes:
        if node.op in SOURCES:
            continue
        if isinstance(node.type, tuple):
            keys.extend((node.name, i) for i in range(len(node.type)))
        else:
            keys.append((node.name, None))
    tensors = {k: to_tf.value_key(k) for k in keys}
    if not keys:
        return Backend({}, tensors, ran_on)

    def run(prefix: list[tuple[str, int | None]]) -> dict[tuple[str, int | None], np.ndarray]:
        try:
            fn, names = to_tf.emit_values(graph, weights, prefix)
            for k in prefix:  # the TF tensor: the value's name scope and its op
                tensors[k] = names.get(to_tf.value_key(k), tensors[k])
            with tf.device(_tf_device(ran_on)):
                args = [_tensor(tf, inputs[n], graph[n].tensor_type.dtype) for n in graph.inputs]
                out = fn(*args)
                return {k: _array(out[to_tf.value_key(k)]) for k in prefix}
        except NetcError:
            raise
        except Exception as e:
            raise _Failed(_detail(e)) from None

    try:
        return Backend(run(keys), tensors, ran_on)
    except _Failed as e:
        failure = e.detail
    ok, bad = 0, len(keys)  # the first `ok` values compute; the first `bad` do not
    values: dict[tuple[str, int | None], np.ndarray] = {}
    while bad - ok > 1:
        mid = (ok + bad) // 2
        try:
            values = run(keys[:mid])
            ok = mid
        except _Failed as e:
            bad, failure = mid, e.detail
    return Backend(values, tensors, ran_on, keys[ok], failure)


class _Failed(Exception):
    """TensorFlow could not trace or run a prefix of the values (`detail` says why)."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail
