"""The TensorFlow backend: a checked IR graph and its weights -> a `tf.function` of raw TF ops
(no Keras), saved as a SavedModel folder or written as a frozen GraphDef.

One rule per IR op in `RULES`; each builds TF ops while the serving function is traced, inside a
name scope named after the IR value, so a TF tensor's name says which `.net` value it holds.
The IR is channels-last and so is TensorFlow: no layout work. Weights are constants of the
traced graph. Convolutions, dense layers and batchnorms are written in the forms TensorFlow's
grappler remapper fuses on CPU (Conv2D + BiasAdd + activation, MatMul + BiasAdd + activation,
FusedBatchNormV3); where a TF kernel lacks a form netc needs (explicit pads on pools, dilation
of Conv3D or transposed convolutions on CPU, unequal depthwise strides) the rule says the same
thing in ops that have it (docs/tf.md). Where TF runs one form much slower than another, the
rule takes the faster (attention's projections as MatMuls, not Einsums; under XLA, depthwise
convolutions as sums of taps): bench/tf_report.py measures them against Keras. TensorFlow is
imported through `backends.tensorflow()`.

The backend is split by concern: `tf_lower` (the tracing context `TfContext`, the one rule
table `RULES` and the helpers the rules share), `tf_rules` (elementwise, pooling,
normalization, reductions, shape), `tf_conv` (dense layers and convolutions, plain and fused),
`tf_sequence` (embeddings, recurrent layers, attention); this module is the entry point (`emit`,
the `Artifact`, saving) and re-exports what the rest of netc uses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write_dir, write_bytes_atomic
from ..ir import Dim, Graph
from ..source import error
from ..weights import check_weights
from . import tensorflow, tf_conv, tf_rules, tf_sequence  # noqa: F401 - the rules register in RULES
from .tf_lower import (  # noqa: F401 - the backend's public names, for its users
    HALF,
    RULES,
    TF_DTYPES,
    TfContext,
    scope_name,
    tf_dtype,
    tf_shape,
)
from .tf_rules import _flatten  # noqa: F401 - a rule tests put back into RULES

SIGNATURE_KEY = "serving_default"  # what TF Serving and saved_model_cli call by default
FORMAT = 1  # the layout of the netc info a SavedModel carries (`netc_info`)
MAX_CONSTANT_BYTES = 1_900_000_000  # a GraphDef is one protobuf, which stops at 2 GiB
PYTHON_KEYWORDS = frozenset(
    "False None True and as assert async await break class continue def del elif else except "
    "finally for from global if import in is lambda nonlocal not or pass raise return try "
    "while with yield".split()
)


# --- the artifact ----------------------------------------------------------------------------

IOSpec = tuple[str, str, tuple[Dim, ...]]  # (name, netc dtype, shape with symbols)


class Artifact:
    """A netc model lowered to TensorFlow: `module`, a `tf.Module` whose `serving` is the
    traced `tf.function` (inputs named and ordered as the model's, symbolic dims None, an
    output dict keyed by the model's output names) and whose `netc_info` returns netc's own
    signature as JSON (symbols included), so a loaded SavedModel checks symbols too."""

    def __init__(
        self,
        module: Any,
        name: str,
        inputs: tuple[IOSpec, ...],
        outputs: tuple[IOSpec, ...],
        xla: bool,
    ):
        self.module = module
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.xla = xla

    def __call__(self, *args: Any) -> dict[str, Any]:
        """Run the serving function on tensors in input order; the outputs by name."""
        return self.module.serving(*args)

    def concrete_function(self) -> Any:
        """The serving function's one concrete function (traced when the artifact was made)."""
        return self.module.serving.get_concrete_function()

    def __repr__(self) -> str:
        return f"<netc tf artifact `{self.name}`{' (xla)' if self.xla else ''}>"


def info(name: str, inputs: Sequence[IOSpec], outputs: Sequence[IOSpec], xla: bool) -> str:
    """The JSON a SavedModel carries about itself (its `netc_info` function returns it)."""
    from .. import __version__

    def specs(items: Sequence[IOSpec]) -> list[dict[str, Any]]:
        return [{"name": n, "dtype": d, "shape": list(s)} for n, d, s in items]

    return json.dumps(
        {
            "format": FORMAT,
            "producer": f"netc {__version__}",
            "model": name,
            "inputs": specs(inputs),
            "outputs": specs(outputs),
            "xla": xla,
        },
        sort_keys=True,
    )


def emit(graph: Graph, weights: Mapping[str, np.ndarray], *, xla: bool = False) -> Artifact:
    """Lower `graph` with `weights` to an `Artifact` whose serving function is traced now (so a
    node TF cannot express is a located error here); `xla` jit-compiles it (jit_compile)."""
    tf = tensorflow("tf")
    weights = check_weights(graph, weights)
    _check_size(graph, weights)
    inputs = tuple(_io(graph, name, name) for name in graph.inputs)
    outputs = tuple(_io(graph, out, value) for out, value in graph.outputs)
    for name in graph.inputs:
        if not name.isidentifier() or name in PYTHON_KEYWORDS:  # TF names arguments after them
            raise error(
                f"the tf backend cannot name input `{name}`: a TensorFlow signature names its "
                "inputs with Python identifiers that are not keywords",
                graph[name].span,
                hint="rename the input",
            )
    serving = _function(tf, graph, weights, xla=xla)
    module = tf.Module(name=None)
    module.serving = serving
    text = info(graph.name, inputs, outputs, xla)
    module.netc_info = tf.function(lambda: tf.constant(text), input_signature=[], autograph=False)
    serving.get_concrete_function()  # trace: RULES.cannot and shape errors surface here
    module.netc_info.get_concrete_function()
    return Artifact(module, graph.name, inputs, outputs, xla)


def _io(graph: Graph, name: str, value: str) -> IOSpec:
    t = graph[value].tensor_type
    return (name, t.dtype, tuple(t.shape))


def _check_size(graph: Graph, weights: Mapping[str, np.ndarray]) -> None:
    total = sum(np.asarray(weights[n.name]).nbytes for n in graph.params)
    total += sum(n.attrs["value"].array.nbytes for n in graph.nodes if n.op == "constant")
    if total > MAX_CONSTANT_BYTES:
        raise error(
            f"the tf backend embeds weights as constants in one GraphDef, which holds at most "
            f"2 GiB; model `{graph.name}` has {total / 2**30:.1f} GiB of weights",
            hint="use -t onnx or -t keras for a model this size",
        )


def _function(
    tf: Any,
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    *,
    xla: bool = False,
    expose: Sequence[tuple[str, int | None]] | None = None,
    names: dict[str, str] | None = None,
) -> Any:
    """The tf.function of `graph`: its outputs by name, or with `expose` the listed IR values
    (keyed `name` or `name:index`; nodes after the last one are not lowered), whose TF tensor
    names a trace records in `names`."""
    specs = [
        tf.TensorSpec(tf_shape(graph[n].tensor_type), tf_dtype(tf, graph[n]), name=n)
        for n in graph.inputs
    ]
    reserved = set(graph.inputs) | {o for o, _ in graph.outputs}

    def serving(*args: Any) -> dict[str, Any]:
        feeds = dict(zip(graph.inputs, args, strict=True))
        ctx = TfContext(tf, graph, weights, feeds, reserved, xla=xla)
        if expose is None:
            for node in graph.nodes:
                ctx.lower(node)
            return {out: tf.identity(ctx.get(value), name=out) for out, value in graph.outputs}
        wanted = {name for name, _ in expose}
        last = max((i for i, n in enumerate(graph.nodes) if n.name in wanted), default=-1)
        for node in graph.nodes[: last + 1]:
            ctx.lower(node)
        values = {value_key(k): ctx.result(k) for k in expose}
        if names is not None:
            names.update({k: v.name for k, v in values.items()})
        return values

    serving.__name__ = "serving"
    return tf.function(serving, input_signature=specs, jit_compile=xla, autograph=False)


def value_key(key: tuple[str, int | None]) -> str:
    """The output key of an exposed IR value: its name, `name:i` for result i of a tuple."""
    return key[0] if key[1] is None else f"{key[0]}:{key[1]}"


def emit_values(
    graph: Graph, weights: Mapping[str, np.ndarray], keys: Sequence[Any]
) -> tuple[Any, dict[str, str]]:
    """A plain (not jit-compiled) tf.function returning the IR values `keys` ((name, result
    index or None) pairs) by `value_key`, traced now, and the TF tensor holding each value (by
    `value_key`), for `netc verify`."""
    tf = tensorflow("tf")
    names: dict[str, str] = {}
    fn = _function(tf, graph, check_weights(graph, weights), expose=list(keys), names=names)
    fn.get_concrete_function()
    return fn, names


# --- saving ----------------------------------------------------------------------------------


def save(artifact: Artifact, path: str | Path) -> None:
    """Write `artifact` as a SavedModel folder at `path`, atomically: a temporary folder beside
    it, swapped in when complete (a failure leaves the previous folder as it was). Its
    `serving_default` signature takes and returns the model's names. The same model gives the
    same bytes in another process (TF's random fingerprint UUID is replaced by a digest of the
    content; docs/tf.md, "Determinism")."""
    tf = tensorflow("tf")
    path = Path(path)
    _check_replaceable(path)
    # the traced concrete functions, not the tf.functions: saving a tf.function traces it
    # again (its cache keys on the save context), which would store every constant twice
    serving = artifact.concrete_function()
    export = tf.Module()
    export.serving = serving
    export.netc_info = artifact.module.netc_info.get_concrete_function()

    def write(tmp: Path) -> None:
        tf.saved_model.save(export, str(tmp), signatures={SIGNATURE_KEY: serving})
        _fix_fingerprint(tmp)

    atomic_write_dir(path, write)


def _check_replaceable(path: Path) -> None:
    """Refuse to replace a folder that holds something other than a SavedModel."""
    if path.is_dir() and any(path.iterdir()) and not (path / "saved_model.pb").is_file():
        raise error(
            f"{path} is a folder that is not a SavedModel: netc does not replace it",
            hint="pick another output path with -o",
        )
    if path.exists() and not path.is_dir():
        raise error(f"{path} exists and is not a folder", hint="pick another output path with -o")


def _fix_fingerprint(folder: Path) -> None:
    """TF writes a random UUID into fingerprint.pb; make it a digest of the other files, so the
    same model gives the same folder byte for byte (TF reads the UUID only as an identifier)."""
    import hashlib

    fingerprint = folder / "fingerprint.pb"
    if not fingerprint.is_file():
        return
    from tensorflow.core.protobuf import fingerprint_pb2

    digest = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file() and p != fingerprint):
        digest.update(str(f.relative_to(folder)).encode() + b"\0" + f.read_bytes())
    proto = fingerprint_pb2.FingerprintDef()
    proto.ParseFromString(fingerprint.read_bytes())
    if "uuid" in proto.DESCRIPTOR.fields_by_name:  # TF >= 2.15 writes one
        proto.uuid = str(int.from_bytes(digest.digest()[:16], "big"))
        fingerprint.write_bytes(proto.SerializeToString(deterministic=True))


def graph_def(artifact: Artifact) -> Any:
    """The frozen GraphDef of the serving function: inputs are placeholders named after the
    model's inputs, every output an Identity named after the model's output."""
    tensorflow("tf")
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    frozen = convert_variables_to_constants_v2(artifact.concrete_function())
    return frozen.graph.as_graph_def()


def save_graphdef(artifact: Artifact, path: str | Path) -> None:
    """Write the frozen GraphDef of `artifact` to `path` (a `.pb` file), atomically."""
    write_bytes_atomic(path, graph_def(artifact).SerializeToString(deterministic=True))
