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
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write_dir, write_bytes_atomic
from ..ir import Dim, Graph, Node, TensorType
from ..source import error
from ..weights import check_weights
from . import Rules, tensorflow

RULES = Rules("tf")
SIGNATURE_KEY = "serving_default"  # what TF Serving and saved_model_cli call by default
FORMAT = 1  # the layout of the netc info a SavedModel carries (`netc_info`)
MAX_CONSTANT_BYTES = 1_900_000_000  # a GraphDef is one protobuf, which stops at 2 GiB
PYTHON_KEYWORDS = frozenset(
    "False None True and as assert async await break class continue def del elif else except "
    "finally for from global if import in is lambda nonlocal not or pass raise return try "
    "while with yield".split()
)
TF_DTYPES = {
    "f32": "float32",
    "f16": "float16",
    "bf16": "bfloat16",
    "f64": "float64",
    "i32": "int32",
    "i64": "int64",
    "bool": "bool",
}
HALF = ("f16", "bf16")


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
        tf.TensorSpec(_tf_shape(graph[n].tensor_type), _tf_dtype(tf, graph[n]), name=n)
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


# --- the context -----------------------------------------------------------------------------


def _tf_dtype(tf: Any, node_or_dtype: Node | str) -> Any:
    dtype = node_or_dtype if isinstance(node_or_dtype, str) else node_or_dtype.tensor_type.dtype
    return tf.as_dtype(TF_DTYPES[dtype])


def _tf_shape(t: TensorType) -> list[int | None]:
    return [d if isinstance(d, int) else None for d in t.shape]


_SCOPE_CHARS = re.compile(r"[^A-Za-z0-9_.\-]")


def scope_name(name: str, reserved: set[str]) -> str:
    """A TF name scope for IR value `name`: TF's characters only, and never an input's or an
    output's name, which name the signature's placeholders and Identity ops."""
    scope = _SCOPE_CHARS.sub("_", name)
    if not scope[:1].isalnum():
        scope = "v" + scope
    return f"{scope}_value" if scope in reserved else scope


class TfContext:
    """What one trace builds: each IR value's TF tensor (a tuple for a multi-result op), and
    the weight constants made so far. `xla`: the function is jit-compiled, so rules pick the
    forms XLA compiles well (and avoid those it cannot compile)."""

    def __init__(
        self,
        tf: Any,
        graph: Graph,
        weights: Mapping[str, np.ndarray],
        feeds: Mapping[str, Any],
        reserved: set[str],
        *,
        xla: bool = False,
    ):
        self.tf = tf
        self.xla = xla
        self.graph = graph
        self.weights = weights
        self.values: dict[str, Any] = dict(feeds)
        self.consts: dict[tuple[str, str], Any] = {}
        self.reserved = reserved

    def type(self, name: str) -> TensorType:
        return self.graph[name].tensor_type

    def dtype(self, dtype: str) -> Any:
        return self.tf.as_dtype(TF_DTYPES[dtype])

    def is_data(self, name: str) -> bool:
        return self.graph[name].op in ("param", "constant")

    def array(self, name: str) -> np.ndarray:
        node = self.graph[name]
        if node.op == "constant":
            return node.attrs["value"].array
        return np.asarray(self.weights[name])

    def const(self, name: str, array: np.ndarray | None = None, form: str = "") -> Any:
        """Weight or constant `name` as a TF constant in its IR dtype, in the `form` the rule
        made of it (`array`); each form is made once per trace."""
        key = (name, form)
        if key not in self.consts:
            value = self.array(name) if array is None else np.asarray(array)
            self.consts[key] = self.tf.constant(value, dtype=self.dtype(self.type(name).dtype))
        return self.consts[key]

    def constant(self, array: Any, dtype: str) -> Any:
        """A helper constant (a scale, a mask) in netc dtype `dtype`."""
        return self.tf.constant(np.asarray(array), dtype=self.dtype(dtype))

    def get(self, name: str) -> Any:
        """IR value `name` as a tensor (weights and constants as TF constants)."""
        if self.is_data(name):
            return self.const(name)
        value = self.values[name]
        assert not isinstance(value, tuple), f"`{name}` is a tuple, read it through `item`"
        return value

    def result(self, key: tuple[str, int | None]) -> Any:
        """Result `key[1]` of IR value `key[0]` (the value itself when None)."""
        value = self.values[key[0]]
        return value if key[1] is None else value[key[1]]

    def dim(self, x: Any, t: TensorType, axis: int) -> Any:
        """Axis `axis` of `x` (of IR type `t`): an int when known, else a scalar tensor."""
        d = t.shape[axis]
        return d if isinstance(d, int) else self.tf.shape(x)[axis]

    def lower(self, node: Node) -> None:
        """Run `node`'s rule inside a name scope named after it; record its result(s)."""
        if node.op in ("input", "param", "constant"):
            return
        if node.op == "item":
            self.values[node.name] = self.values[node.inputs[0]][node.attrs["index"]]
            return
        rule = RULES.rule(node)
        with self.tf.name_scope(scope_name(node.name, self.reserved)):
            try:
                result = rule(self, node)
            except (TypeError, ValueError) as e:  # TF's shape and dtype checks while tracing
                raise RULES.cannot(node, f": TensorFlow refuses it: {_first_line(e)}") from None
        results = result if isinstance(node.type, tuple) else (result,)
        types = node.type if isinstance(node.type, tuple) else (node.tensor_type,)
        assert isinstance(results, tuple) and len(results) == len(types), node.name
        for value, t in zip(results, types, strict=True):
            if value.dtype != self.dtype(t.dtype) or not value.shape.is_compatible_with(
                _tf_shape(t)
            ):
                raise RULES.cannot(
                    node,
                    f": its rule made a {value.dtype.name} tensor of shape {value.shape}, netc's "
                    f"type is {t} (a bug in the tf backend)",
                )
        self.values[node.name] = result


# --- helpers ---------------------------------------------------------------------------------


def _first_line(e: BaseException) -> str:
    lines = [s.strip() for s in str(e).splitlines() if s.strip()]
    return lines[0] if lines else type(e).__name__


def _in_float32(ctx: TfContext, x: Any, dtype: str, compute: Callable[[Any], Any]) -> Any:
    """`compute(x)` in float32 for an f16/bf16 `x` (cast back after), as netc's reference
    does for normalizations and accumulating reductions; as it is for other dtypes."""
    if dtype not in HALF:
        return compute(x)
    tf = ctx.tf
    return tf.cast(compute(tf.cast(x, tf.float32)), x.dtype)


def _same_pads(
    spatial: Sequence[Dim], window: Sequence[int], stride: Sequence[int]
) -> tuple[tuple[int, int], ...] | None:
    """TF's "SAME" pads for these sizes (None when a symbolic size with stride > 1 hides them)."""
    out = []
    for d, k, s in zip(spatial, window, stride, strict=True):
        if isinstance(d, int):
            total = max((-(-d // s) - 1) * s + k - d, 0)
        elif s == 1:
            total = k - 1
        else:
            return None
        out.append((total // 2, total - total // 2))
    return tuple(out)


def _named_padding(
    spatial: Sequence[Dim],
    window: Sequence[int],
    stride: Sequence[int],
    pads: Sequence[tuple[int, int]],
) -> str | None:
    """TF's padding name, "VALID" or "SAME", when it means exactly `pads`; else None."""
    pairs = tuple((int(b), int(a)) for b, a in pads)
    if all(p == (0, 0) for p in pairs):
        return "VALID"
    if _same_pads(spatial, window, stride) == pairs:
        return "SAME"
    return None


def _shape(tf: Any, dims: Sequence[Any]) -> Any:
    """A shape for tf.reshape: the list itself when every dim is an int, else a stacked
    tensor (a symbolic dim read with tf.shape at run time; -1 stays the one unknown)."""
    if all(isinstance(d, int) for d in dims):
        return list(dims)
    return tf.stack([tf.cast(d, tf.int32) if not isinstance(d, int) else d for d in dims])


def _pad_spatial(ctx: TfContext, x: Any, pads: Sequence[tuple[int, int]], value: float) -> Any:
    """`x` [N, *spatial, C] padded by `pads` on the spatial axes with `value`."""
    if all(tuple(p) == (0, 0) for p in pads):
        return x
    tf = ctx.tf
    paddings = [[0, 0], *[list(p) for p in pads], [0, 0]]
    return tf.pad(x, paddings, constant_values=tf.constant(value, x.dtype))


def _dilated(k: Sequence[int], d: Sequence[int]) -> tuple[int, ...]:
    return tuple((ki - 1) * di + 1 for ki, di in zip(k, d, strict=True))


def _dilate_kernel(kernel: np.ndarray, dilation: Sequence[int]) -> np.ndarray:
    """A kernel [*k, ...] with dilation - 1 zeros between its taps on each spatial axis: the
    same convolution at dilation 1 (for TF kernels that take no dilation on CPU)."""
    n = len(dilation)
    if all(d == 1 for d in dilation):
        return kernel
    shape = (*_dilated(kernel.shape[:n], dilation), *kernel.shape[n:])
    out = np.zeros(shape, kernel.dtype)
    out[tuple(slice(None, None, d) for d in dilation)] = kernel
    return out


# An epilogue runs after a dense or convolution's BiasAdd, on the result as the TF op made it
# (2-D for dense, with a unit height for 1-D convolutions): `like` brings a tensor of the
# node's output shape into that form (for a residual).
Epilogue = Callable[[Any, Callable[[Any], Any]], Any]


def _no_epilogue(y: Any, like: Callable[[Any], Any]) -> Any:
    return y


# --- rules: elementwise ----------------------------------------------------------------------


def _elu(tf: Any, x: Any, a: Mapping[str, Any]) -> Any:
    if a["alpha"] == 1.0:
        return tf.nn.elu(x)  # the form the remapper fuses
    return tf.where(x > 0, x, tf.cast(a["alpha"], x.dtype) * tf.nn.elu(x))


def _hard_sigmoid(tf: Any, x: Any) -> Any:
    return tf.nn.relu6(x + tf.constant(3, x.dtype)) / tf.constant(6, x.dtype)  # Keras 3's


# elementwise activations as (tf, x, attrs) -> y, shared with the fused ops' epilogues
ACTIVATIONS: dict[str, Callable[[Any, Any, Mapping[str, Any]], Any]] = {
    "relu": lambda tf, x, a: tf.nn.relu(x),
    "relu6": lambda tf, x, a: tf.nn.relu6(x),
    "sigmoid": lambda tf, x, a: tf.math.sigmoid(x),
    "tanh": lambda tf, x, a: tf.math.tanh(x),
    "silu": lambda tf, x, a: x * tf.math.sigmoid(x),
    "softplus": lambda tf, x, a: tf.math.softplus(x),
    "exp": lambda tf, x, a: tf.math.exp(x),
    "log": lambda tf, x, a: tf.math.log(x),
    "sqrt": lambda tf, x, a: tf.math.sqrt(x),
    "abs": lambda tf, x, a: tf.math.abs(x),
    "neg": lambda tf, x, a: tf.math.negative(x),
    "leaky_relu": lambda tf, x, a: tf.nn.leaky_relu(x, alpha=a["alpha"]),
    "elu": _elu,
    "gelu": lambda tf, x, a: tf.nn.gelu(x, approximate=a["approximate"]),
    "hard_sigmoid": lambda tf, x, a: _hard_sigmoid(tf, x),
    "hard_swish": lambda tf, x, a: x * _hard_sigmoid(tf, x),
}


@RULES.on(*ACTIVATIONS)
def _activation(ctx: TfContext, node: Node) -> Any:
    return ACTIVATIONS[node.op](ctx.tf, ctx.get(node.inputs[0]), node.attrs)


@RULES.on("softmax")
def _softmax(ctx: TfContext, node: Node) -> Any:
    return ctx.tf.nn.softmax(ctx.get(node.inputs[0]), axis=node.attrs["axis"])


@RULES.on("dropout")
def _dropout(ctx: TfContext, node: Node) -> Any:
    return ctx.tf.identity(ctx.get(node.inputs[0]))  # the identity at inference


@RULES.on("cast")
def _cast(ctx: TfContext, node: Node) -> Any:
    return ctx.tf.cast(ctx.get(node.inputs[0]), ctx.dtype(node.attrs["dtype"]))


BINARY = {
    "add": "add",
    "sub": "subtract",
    "mul": "multiply",
    "div": "divide",
    "maximum": "maximum",
    "minimum": "minimum",
}


@RULES.on(*BINARY)
def _binary(ctx: TfContext, node: Node) -> Any:
    a, b = (ctx.get(i) for i in node.inputs)
    return getattr(ctx.tf.math, BINARY[node.op])(a, b)


@RULES.on("matmul")
def _matmul(ctx: TfContext, node: Node) -> Any:
    a, b = (ctx.get(i) for i in node.inputs)
    return ctx.tf.linalg.matmul(a, b)  # batch axes broadcast (BatchMatMulV2)


# --- rules: dense ----------------------------------------------------------------------------


def _dense_core(
    ctx: TfContext, node: Node, x_name: str, weights: Sequence[str], epilogue: Epilogue
) -> Any:
    """MatMul + BiasAdd (+ the epilogue) on a 2-D view of x: the form grappler fuses."""
    tf = ctx.tf
    x, t = ctx.get(x_name), ctx.type(x_name)
    kernel = ctx.const(weights[0])
    units = node.tensor_type.shape[-1]
    if t.rank == 2:
        y = tf.linalg.matmul(x, kernel)
        if node.attrs["bias"]:
            y = tf.nn.bias_add(y, ctx.const(weights[1]))
        return epilogue(y, lambda v: v)
    lead = t.shape[:-1]
    static = all(isinstance(d, int) for d in lead[1:])
    out_shape = (
        [-1, *lead[1:], units]
        if static
        else tf.concat([tf.shape(x)[:-1], tf.constant([units], tf.int32)], 0)
    )
    y = tf.linalg.matmul(tf.reshape(x, [-1, t.shape[-1]]), kernel)
    if node.attrs["bias"]:
        y = tf.nn.bias_add(y, ctx.const(weights[1]))
    y = epilogue(y, lambda v: tf.reshape(v, [-1, units]))
    return tf.reshape(y, out_shape)


@RULES.on("dense")
def _dense(ctx: TfContext, node: Node) -> Any:
    return _dense_core(ctx, node, node.inputs[0], node.inputs[1:], _no_epilogue)


# --- rules: convolutions ---------------------------------------------------------------------


def _spatial_type(t: TensorType, n: int) -> tuple[TensorType, int]:
    """A 1-D convolution runs as a 2-D one over a unit height: the type it sees, and its n."""
    if n == 1:
        return t.with_shape((t.shape[0], 1, *t.shape[1:])), 2
    return t, n


def _conv_core(
    ctx: TfContext,
    node: Node,
    base: str,
    attrs: Mapping[str, Any],
    weights: Sequence[str],
    epilogue: Epilogue,
) -> Any:
    """Any convolution of ops/conv.py (`weights`: its kernel(s), then its bias): the TF op,
    BiasAdd, the epilogue, on the TF op's own rank (a 1-D one as 2-D with a unit height,
    squeezed after)."""
    tf = ctx.tf
    x_name, kernel_name = node.inputs[0], weights[0]
    x, t = ctx.get(x_name), ctx.type(x_name)
    n = t.rank - 2
    kernel = ctx.array(kernel_name)
    stride, pads = tuple(attrs["stride"]), tuple(tuple(p) for p in attrs["padding"])
    dilation = tuple(attrs["dilation"])
    one_d = n == 1
    if one_d:  # [N, W, C] -> [N, 1, W, C]; kernels gain a unit height
        x = tf.expand_dims(x, 1)
        kernel = kernel[None]
        # the unit axis takes W's stride and dilation, which change nothing there (one cell,
        # a kernel of height 1) and keep them equal, as TF's depthwise kernel wants
        stride, dilation, pads = (stride[0], *stride), (dilation[0], *dilation), ((0, 0), *pads)
    work, n = _spatial_type(t, n)
    if base.startswith("depthwise"):
        y = _depthwise(ctx, x, work, kernel, kernel_name, stride, pads, dilation)
    elif base.startswith("separable"):  # depthwise (no bias), then a 1x1 Conv2D
        y = _depthwise(ctx, x, work, kernel, kernel_name, stride, pads, dilation)
        pointwise = ctx.array(weights[1])
        pointwise = pointwise.reshape(1, 1, *pointwise.shape[-2:])
        y = tf.nn.conv2d(y, ctx.const(weights[1], pointwise, "2d"), 1, "VALID")
    elif base.endswith("transpose"):
        y = _conv_transpose(ctx, node, x, work, kernel, kernel_name, stride, pads, dilation, attrs)
    elif n == 2 and attrs["groups"] > 1 and kernel.shape[-2] == 1:
        # one group per input channel (ConvNeXt's, Keras' depthwise as a grouped Conv2D): a
        # depthwise convolution, output channel c * M + j from group c's filter j
        c, f = attrs["groups"], kernel.shape[-1]
        y = _depthwise(
            ctx,
            x,
            work,
            kernel.reshape(*kernel.shape[:n], c, f // c),
            kernel_name,
            stride,
            pads,
            dilation,
        )
    else:
        y = _convolution(ctx, x, work, kernel, kernel_name, stride, pads, dilation, attrs["groups"])
    if attrs["bias"] and base in ("conv1d", "conv2d") and attrs["groups"] > 1:
        # grappler fuses Conv2D + BiasAdd into a kernel that refuses groups (not + AddV2)
        y = tf.math.add(y, ctx.const(weights[-1]))
    elif attrs["bias"]:
        y = tf.nn.bias_add(y, ctx.const(weights[-1]))
    if one_d:
        y = epilogue(y, lambda v: tf.expand_dims(v, 1))
        return tf.squeeze(y, [1])
    return epilogue(y, lambda v: v)


def _convolution(
    ctx: TfContext,
    x: Any,
    t: TensorType,
    kernel: np.ndarray,
    name: str,
    stride: tuple[int, ...],
    pads: tuple[tuple[int, int], ...],
    dilation: tuple[int, ...],
    groups: int,
) -> Any:
    tf = ctx.tf
    n = t.rank - 2
    window = _dilated(kernel.shape[:n], dilation)
    padding: Any = _named_padding(t.shape[1:-1], window, stride, pads)
    if padding is None and n == 2:
        padding = [[0, 0], *[list(p) for p in pads], [0, 0]]  # Conv2D's EXPLICIT padding
    elif padding is None:
        x, padding = _pad_spatial(ctx, x, pads, 0.0), "VALID"
    k = ctx.const(name, kernel, f"{n}d")
    if n == 2:  # Conv2D takes groups (a kernel of C / groups input channels) and dilation
        return tf.nn.conv2d(x, k, stride, padding, dilations=list(dilation))

    def conv3d(inp: Any, kern: Any) -> Any:
        if max(dilation) == 1:
            return tf.nn.conv3d(inp, kern, [1, *stride, 1], padding)
        # Conv3D takes no dilation on CPU: space_to_batch (stride is 1 then), as tf.nn does
        return tf.nn.with_space_to_batch(
            inp,
            list(dilation),
            padding,
            lambda i, _, pad: tf.nn.conv3d(i, kern, [1, 1, 1, 1, 1], pad),
            filter_shape=list(kernel.shape[:3]),
        )

    if groups == 1:
        return conv3d(x, k)
    # Conv3D has no groups on CPU: one convolution per group
    parts = tf.split(x, groups, axis=-1)
    kernels = tf.split(k, groups, axis=-1)
    return tf.concat([conv3d(p, kk) for p, kk in zip(parts, kernels, strict=True)], axis=-1)


def _depthwise(
    ctx: TfContext,
    x: Any,
    t: TensorType,
    kernel: np.ndarray,
    name: str,
    stride: tuple[int, ...],
    pads: tuple[tuple[int, int], ...],
    dilation: tuple[int, ...],
) -> Any:
    tf = ctx.tf
    if ctx.xla:
        return _depthwise_taps(ctx, x, t, kernel, name, stride, pads, dilation)
    window = _dilated(kernel.shape[:2], dilation)
    padding: Any = _named_padding(t.shape[1:-1], window, stride, pads)
    if stride[0] != stride[1]:
        # TF's depthwise kernel on CPU needs equal strides (and a grouped Conv2D is fused with
        # its BiasAdd into a kernel without groups): stride 1 on netc's pads, then every
        # stride-th cell, which is the strided result (dilation is 1 with a stride)
        y = tf.nn.depthwise_conv2d(
            x, ctx.const(name, kernel, "2d"), [1, 1, 1, 1], [[0, 0], *map(list, pads), [0, 0]]
        )
        return y[:, :: stride[0], :: stride[1]]
    if padding is None and max(dilation) > 1:  # dilation runs by space_to_batch: named pads
        x, padding = _pad_spatial(ctx, x, pads, 0.0), "VALID"
    elif padding is None:
        padding = [[0, 0], *[list(p) for p in pads], [0, 0]]
    return tf.nn.depthwise_conv2d(
        x, ctx.const(name, kernel, "2d"), [1, *stride, 1], padding, dilations=list(dilation)
    )


def _depthwise_taps(
    ctx: TfContext,
    x: Any,
    t: TensorType,
    kernel: np.ndarray,
    name: str,
    stride: tuple[int, ...],
    pads: tuple[tuple[int, int], ...],
    dilation: tuple[int, ...],
) -> Any:
    """The depthwise convolution for XLA: a sum over the kernel's taps of the (strided,
    dilated) shifted input times that tap's per-channel weights. XLA compiles a depthwise
    convolution op into a generic loop 10-40x slower on CPU than TF's kernel; it fuses these
    slices, products and sums (and the bias and activation after them) into one pass. Half
    dtypes accumulate in float32, as TF's kernel does."""
    tf = ctx.tf
    kh, kw, channels, multiplier = kernel.shape
    flat = kernel.reshape(kh, kw, channels * multiplier)  # output channel c * M + m
    taps = ctx.const(name, flat, "taps")
    sizes = []  # the output's spatial sizes: ints, or tensors for symbolic dims
    for axis, (k, s, d, (before, after)) in enumerate(
        zip((kh, kw), stride, dilation, pads, strict=True), start=1
    ):
        size = ctx.dim(x, t, axis)
        sizes.append((size + before + after - (k - 1) * d - 1) // s + 1)
    compute = tf.float32 if t.dtype in HALF else x.dtype
    x = _pad_spatial(ctx, x, pads, 0.0)
    if multiplier > 1:
        x = tf.repeat(x, multiplier, axis=3)  # input channel c feeds outputs c * M .. + M - 1
    x = tf.cast(x, compute)
    taps = tf.cast(taps, compute)
    y = None
    for i in range(kh):
        for j in range(kw):
            r, c = i * dilation[0], j * dilation[1]
            rows = slice(r, r + (sizes[0] - 1) * stride[0] + 1, stride[0])
            cols = slice(c, c + (sizes[1] - 1) * stride[1] + 1, stride[1])
            term = x[:, rows, cols, :] * taps[i, j]
            y = term if y is None else y + term
    return tf.cast(y, ctx.dtype(t.dtype))


def _conv_transpose(
    ctx: TfContext,
    node: Node,
    x: Any,
    t: TensorType,
    kernel: np.ndarray,
    name: str,
    stride: tuple[int, ...],
    pads: tuple[tuple[int, int], ...],
    dilation: tuple[int, ...],
    attrs: Mapping[str, Any],
) -> Any:
    """The transposed convolution as TF's (Conv2DBackpropInput, Conv3DBackpropInputV2) with
    VALID padding, which writes the full scatter output plus, when the output reaches past it,
    zeros; netc's window is then sliced out of that (see ops/conv.py)."""
    tf = ctx.tf
    n = t.rank - 2
    extra = tuple(attrs["output_padding"])
    if len(extra) < n:  # a 1-D op running as 2-D
        extra = (0, *extra)
    kernel = _dilate_kernel(kernel, dilation)  # CPU kernels take no dilation (stride is 1 then)
    window = kernel.shape[:n]
    sizes = [ctx.dim(x, t, 1 + i) for i in range(n)]
    full = [(s - 1) * st + k for s, st, k in zip(sizes, stride, window, strict=True)]
    # past the full output only zeros (plus the bias): at most stride - 1 cells, which the
    # VALID gradient still writes
    reach = [f + max(e - p[1], 0) for f, e, p in zip(full, extra, pads, strict=True)]
    out = [f - p[0] - p[1] + e for f, p, e in zip(full, pads, extra, strict=True)]
    filters = kernel.shape[-2]
    batch = tf.shape(x)[0]
    shape = tf.stack([batch, *reach, filters])
    k = ctx.const(name, kernel, "dilated" if max(dilation) > 1 else "")
    if n == 2:
        y = tf.nn.conv2d_transpose(x, k, shape, list(stride), "VALID")
    else:
        y = tf.nn.conv3d_transpose(x, k, shape, [1, *stride, 1], "VALID")
    crop = any(p[0] for p in pads) or any(
        not (isinstance(o, int) and isinstance(r, int) and o == r)
        for o, r in zip(out, reach, strict=True)
    )
    if crop:
        index = (slice(None),) + tuple(
            slice(p[0], p[0] + o) for p, o in zip(pads, out, strict=True)
        )
        y = y[index]
    static = [o if isinstance(o, int) else None for o in out]
    y.set_shape([None, *static, filters])  # the slice's sizes, known when netc's are
    return y


@RULES.on(
    "conv1d",
    "conv2d",
    "conv3d",
    "depthwise_conv1d",
    "depthwise_conv2d",
    "separable_conv1d",
    "separable_conv2d",
    "conv1d_transpose",
    "conv2d_transpose",
    "conv3d_transpose",
)
def _conv(ctx: TfContext, node: Node) -> Any:
    return _conv_core(ctx, node, node.op, node.attrs, node.inputs[1:], _no_epilogue)


@RULES.on("fused_dense", "fused_conv")
def _fused(ctx: TfContext, node: Node) -> Any:
    """The base op, BiasAdd, then Add for the residual and the activation on the TF op's own
    result: Conv2D/MatMul + BiasAdd (+ Add) + Relu/Relu6/Elu/LeakyRelu, which grappler fuses."""
    from ..ops.fused import base_attrs, epilogue

    residual, activation, act_attrs = epilogue(node.attrs)
    skip = node.inputs[1] if residual else None
    tf = ctx.tf

    def finish(y: Any, like: Callable[[Any], Any]) -> Any:
        if skip is not None:
            y = tf.math.add(y, like(ctx.get(skip)))
        if activation != "none":
            y = ACTIVATIONS[activation](tf, y, act_attrs)
        return y

    attrs = base_attrs(node.attrs)
    if node.op == "fused_dense":
        return _dense_core(ctx, node, node.inputs[0], node.inputs[1 + residual :], finish)
    return _conv_core(ctx, node, node.attrs["base"], attrs, node.inputs[1 + residual :], finish)


# --- rules: pooling --------------------------------------------------------------------------


def _pool_padding(ctx: TfContext, node: Node, x: Any, fill: float) -> tuple[Any, Any]:
    """The input and TF's padding for a pool: SAME or VALID when they are netc's pads; else
    MaxPool's EXPLICIT pads (padded cells never win, as netc's -inf), or the pads made with
    `fill` and VALID (AvgPool takes no explicit pads, nor any pool under XLA)."""
    t = ctx.type(node.inputs[0])
    a = node.attrs
    named = _named_padding(t.shape[1:-1], a["size"], a["stride"], a["padding"])
    if named is not None:
        return x, named
    if node.op == "maxpool" and t.rank == 4 and not ctx.xla:  # no pad op: one pass less
        return x, [[0, 0], *[list(p) for p in a["padding"]], [0, 0]]
    return _pad_spatial(ctx, x, a["padding"], fill), "VALID"


def _pool_dtype(ctx: TfContext, node: Node, x: Any, pool: Callable[[Any], Any]) -> Any:
    """`pool(x)`, in float32 for an f16 volume: TF has no float16 MaxPool3D or AvgPool3D
    kernel on CPU (the max of f16 values is one of them, so nothing changes for maxpool)."""
    t = ctx.type(node.inputs[0])
    if t.rank == 5 and t.dtype == "f16":
        return _in_float32(ctx, x, t.dtype, pool)
    return pool(x)


@RULES.on("maxpool")
def _maxpool(ctx: TfContext, node: Node) -> Any:
    a = node.attrs

    def pool(x: Any) -> Any:
        padded, padding = _pool_padding(ctx, node, x, -np.inf)
        return ctx.tf.nn.max_pool(padded, list(a["size"]), list(a["stride"]), padding)

    return _pool_dtype(ctx, node, ctx.get(node.inputs[0]), pool)


@RULES.on("avgpool")
def _avgpool(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    a = node.attrs

    def pool(x: Any) -> Any:
        padded, padding = _pool_padding(ctx, node, x, 0.0)
        y = tf.nn.avg_pool(padded, list(a["size"]), list(a["stride"]), padding)
        if padded is x:
            return y  # TF's SAME averages over the real cells only, as netc does
        # explicit pads: each window's mean of x and zeros, over the share of real cells in it
        ones = _pad_spatial(ctx, tf.ones_like(x[:1, ..., :1]), a["padding"], 0.0)
        return y / tf.nn.avg_pool(ones, list(a["size"]), list(a["stride"]), "VALID")

    return _pool_dtype(ctx, node, ctx.get(node.inputs[0]), pool)


@RULES.on("global_avgpool", "global_maxpool")
def _global_pool(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    t = ctx.type(node.inputs[0])
    axes = list(range(1, t.rank - 1))
    keep = node.attrs["keepdims"]
    x = ctx.get(node.inputs[0])
    if node.op == "global_maxpool":
        return tf.math.reduce_max(x, axis=axes, keepdims=keep)
    return _in_float32(ctx, x, t.dtype, lambda v: tf.math.reduce_mean(v, axis=axes, keepdims=keep))


# --- rules: normalization --------------------------------------------------------------------


def _broadcast_shape(rank: int, axes: Sequence[int], sizes: Sequence[int]) -> list[int]:
    shape = [1] * rank
    for a, s in zip(axes, sizes, strict=True):
        shape[a] = s
    return shape


@RULES.on("batchnorm")
def _batchnorm(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    a = node.attrs
    t = ctx.type(node.inputs[0])
    weights = [ctx.array(w).astype(np.float64) for w in node.inputs[1:]]
    gamma = weights.pop(0) if a["scale"] else None
    beta = weights.pop(0) if a["center"] else None
    mean, var = weights
    ones = np.ones_like(mean)
    x = ctx.get(node.inputs[0])
    # FusedBatchNormV3 for an NHWC image (epsilon within cuDNN's floor, so a GPU runs it too)
    if t.rank == 4 and a["axis"] == 3 and a["epsilon"] >= 1.001e-5 and t.dtype != "f64":
        f32 = [
            tf.constant(v.astype(np.float32))
            for v in (
                ones if gamma is None else gamma,
                ones * 0 if beta is None else beta,
                mean,
                var,
            )
        ]
        return tf.raw_ops.FusedBatchNormV3(
            x=x,
            scale=f32[0],
            offset=f32[1],
            mean=f32[2],
            variance=f32[3],
            epsilon=a["epsilon"],
            is_training=False,
            data_format="NHWC",
        )[0]
    # elsewhere netc's formula, (x - mean) * gamma / sqrt(var + eps) + beta, along the axis
    inv = (ones if gamma is None else gamma) / np.sqrt(var + a["epsilon"])
    shape = _broadcast_shape(t.rank, [a["axis"]], [mean.size])
    compute = "f32" if t.dtype in HALF else t.dtype

    def normalize(v: Any) -> Any:
        y = (v - ctx.constant(mean.reshape(shape), compute)) * ctx.constant(
            inv.reshape(shape), compute
        )
        return y if beta is None else y + ctx.constant(beta.reshape(shape), compute)

    return _in_float32(ctx, x, t.dtype, normalize)


@RULES.on("layernorm")
def _layernorm(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    a = node.attrs
    t = ctx.type(node.inputs[0])
    axes = list(a["axis"])
    weights = list(node.inputs[1:])
    gamma = weights.pop(0) if a["scale"] else None
    beta = weights.pop(0) if a["center"] else None
    shape = _broadcast_shape(t.rank, axes, [t.shape[i] for i in axes])  # type: ignore[misc]
    compute = "f32" if t.dtype in HALF else t.dtype

    def normalize(v: Any) -> Any:
        mean = tf.math.reduce_mean(v, axis=axes, keepdims=True)
        centered = v - mean
        var = tf.math.reduce_mean(tf.math.square(centered), axis=axes, keepdims=True)
        y = centered * tf.math.rsqrt(var + tf.constant(a["epsilon"], v.dtype))
        if gamma is not None:
            y = y * ctx.constant(ctx.array(gamma).reshape(shape), compute)
        if beta is not None:
            y = y + ctx.constant(ctx.array(beta).reshape(shape), compute)
        return y

    return _in_float32(ctx, ctx.get(node.inputs[0]), t.dtype, normalize)


# --- rules: reductions -----------------------------------------------------------------------

REDUCE = {
    "reduce_sum": "reduce_sum",
    "reduce_mean": "reduce_mean",
    "reduce_max": "reduce_max",
    "reduce_min": "reduce_min",
    "reduce_prod": "reduce_prod",
}


@RULES.on(*REDUCE)
def _reduce(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    t = ctx.type(node.inputs[0])
    axes, keep = list(node.attrs["axis"]), node.attrs["keepdims"]
    x = ctx.get(node.inputs[0])
    if not axes:
        return tf.identity(x)  # no axis: nothing reduced (TF's axis=None would reduce all)
    if t.dtype == "bool":  # max/min of bools: any/all (TF has no bool Max kernel)
        fn = tf.math.reduce_any if node.op == "reduce_max" else tf.math.reduce_all
        return fn(x, axis=axes, keepdims=keep)
    fn = getattr(tf.math, REDUCE[node.op])
    if node.op in ("reduce_max", "reduce_min"):
        return fn(x, axis=axes, keepdims=keep)
    return _in_float32(ctx, x, t.dtype, lambda v: fn(v, axis=axes, keepdims=keep))


@RULES.on("argmax")
def _argmax(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    return tf.math.argmax(ctx.get(node.inputs[0]), axis=node.attrs["axis"], output_type=tf.int64)


# --- rules: shape ----------------------------------------------------------------------------


@RULES.on("flatten")
def _flatten(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    x, t = ctx.get(node.inputs[0]), ctx.type(node.inputs[0])
    rest = t.shape[1:]
    if all(isinstance(d, int) for d in rest):
        return tf.reshape(x, [-1, math.prod(rest)])  # type: ignore[arg-type]
    return tf.reshape(x, tf.stack([tf.shape(x)[0], -1]))  # row-major: channels-last order


@RULES.on("reshape")
def _reshape(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    x = ctx.get(node.inputs[0])
    shape = list(node.attrs["shape"])
    if -1 not in shape:
        return tf.reshape(x, [-1, *shape])
    return tf.reshape(x, tf.stack([tf.shape(x)[0], *shape]))


@RULES.on("transpose")
def _transpose(ctx: TfContext, node: Node) -> Any:
    return ctx.tf.transpose(ctx.get(node.inputs[0]), list(node.attrs["perm"]))


@RULES.on("concat")
def _concat(ctx: TfContext, node: Node) -> Any:
    return ctx.tf.concat([ctx.get(i) for i in node.inputs], axis=node.attrs["axis"])


@RULES.on("split")
def _split(ctx: TfContext, node: Node) -> tuple[Any, ...]:
    parts = ctx.tf.split(
        ctx.get(node.inputs[0]), list(node.attrs["sections"]), axis=node.attrs["axis"]
    )
    return tuple(parts)


@RULES.on("slice")
def _slice(ctx: TfContext, node: Node) -> Any:
    x, t = ctx.get(node.inputs[0]), ctx.type(node.inputs[0])
    a = node.attrs
    index: list[slice] = [slice(None)] * t.rank
    for axis, start, end, step in zip(a["axes"], a["starts"], a["ends"], a["steps"], strict=True):
        index[axis] = slice(start, end, step)  # StridedSlice: Python's clamping and negatives
    return x[tuple(index)]


@RULES.on("squeeze")
def _squeeze(ctx: TfContext, node: Node) -> Any:
    return ctx.tf.squeeze(ctx.get(node.inputs[0]), list(node.attrs["axes"]))


@RULES.on("expand_dims")
def _expand_dims(ctx: TfContext, node: Node) -> Any:
    return ctx.tf.expand_dims(ctx.get(node.inputs[0]), node.attrs["axis"])


@RULES.on("broadcast_like")
def _broadcast_like(ctx: TfContext, node: Node) -> Any:
    # both ways, as numpy: to the shape x and like broadcast to (like's values are not read)
    tf = ctx.tf
    x, like = (ctx.get(i) for i in node.inputs)
    return tf.broadcast_to(x, tf.broadcast_dynamic_shape(tf.shape(x), tf.shape(like)))


@RULES.on("pad")
def _pad(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    x, t = ctx.get(node.inputs[0]), ctx.type(node.inputs[0])
    a = node.attrs
    pads = [list(p) for p in a["pads"]]
    if a["mode"] == "constant":
        value = np.asarray(a["value"]).astype(TF_DTYPES[t.dtype].replace("bfloat16", "float32"))
        return tf.pad(x, pads, constant_values=tf.constant(value, x.dtype))
    if a["mode"] == "reflect":
        return tf.pad(x, pads, mode="REFLECT")
    # "edge" repeats the border cell (TF's SYMMETRIC mirrors it): a gather of clamped indices
    for axis, (before, after) in enumerate(a["pads"]):
        if before or after:
            size = t.shape[axis]
            assert isinstance(size, int), "the shape rule refuses padding a symbolic dim"
            index = np.clip(np.arange(-before, size + after), 0, size - 1)
            x = tf.gather(x, tf.constant(index, tf.int32), axis=axis)
    return x


def _resize_images(ctx: TfContext, x: Any, dtype: str, size: Any, method: str) -> Any:
    """tf.image.resize's half-pixel kernels, without antialiasing (ops/shape.py `resize`)."""
    tf = ctx.tf
    if method == "nearest":
        return tf.raw_ops.ResizeNearestNeighbor(
            images=x, size=size, align_corners=False, half_pixel_centers=True
        )
    y = tf.raw_ops.ResizeBilinear(images=x, size=size, align_corners=False, half_pixel_centers=True)
    return y if dtype == "f32" else tf.cast(y, x.dtype)  # TF's bilinear returns float32


@RULES.on("upsample")
def _upsample(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    x, t = ctx.get(node.inputs[0]), ctx.type(node.inputs[0])
    sizes = node.attrs["size"]
    if node.attrs["method"] == "bilinear":
        hw = [ctx.dim(x, t, 1) * sizes[0], ctx.dim(x, t, 2) * sizes[1]]
        size = hw if all(isinstance(d, int) for d in hw) else tf.stack(hw)
        return _resize_images(ctx, x, t.dtype, size, "bilinear")
    for axis, s in enumerate(sizes, start=1):
        if s > 1:
            x = tf.repeat(x, s, axis=axis)  # nearest: each cell `s` times
    return x


@RULES.on("resize")
def _resize(ctx: TfContext, node: Node) -> Any:
    t = ctx.type(node.inputs[0])
    x = ctx.get(node.inputs[0])
    return _resize_images(ctx, x, t.dtype, list(node.attrs["size"]), node.attrs["method"])


# --- rules: embeddings, recurrent, attention --------------------------------------------------


@RULES.on("embedding")
def _embedding(ctx: TfContext, node: Node) -> Any:
    return ctx.tf.gather(ctx.const(node.inputs[1]), ctx.get(node.inputs[0]), axis=0)


@RULES.on("positional_embedding")
def _positional_embedding(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    x, t = ctx.get(node.inputs[0]), ctx.type(node.inputs[0])
    table = ctx.const(node.inputs[1])
    steps = ctx.dim(x, t, 1)
    # tf.slice fails on a sequence longer than the table (a Python slice would clamp)
    rows = tf.slice(table, tf.stack([0, 0]), tf.stack([steps, t.shape[2]]))
    return x + rows


def _time_major(ctx: TfContext, x: Any, backwards: bool) -> Any:
    tf = ctx.tf
    xs = tf.transpose(x, [1, 0, 2])  # [T, N, F]
    return tf.reverse(xs, [0]) if backwards else xs


def _input_projection(ctx: TfContext, xs: Any, kernel: Any, bias: Any) -> Any:
    """x_t @ kernel + bias for every step at once: one MatMul, [T, N, F] -> [T, N, G]."""
    tf = ctx.tf
    shape = tf.shape(xs)
    flat = tf.linalg.matmul(tf.reshape(xs, [-1, xs.shape[-1]]), kernel)
    if bias is not None:
        flat = tf.nn.bias_add(flat, bias)
    return tf.reshape(flat, tf.stack([shape[0], shape[1], kernel.shape[-1]]))


@RULES.on("lstm")
def _lstm(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    a, u = node.attrs, node.attrs["units"]
    x = ctx.get(node.inputs[0])
    kernel, recurrent, bias = (ctx.const(w) for w in node.inputs[1:])
    xw = _input_projection(ctx, _time_major(ctx, x, a["go_backwards"]), kernel, bias)
    zeros = tf.zeros(tf.stack([tf.shape(x)[0], u]), x.dtype)

    def step(state: tuple[Any, Any], z_x: Any) -> tuple[Any, Any]:
        h, c = state
        z = z_x + tf.linalg.matmul(h, recurrent)
        i, f, g, o = tf.split(z, 4, axis=1)  # Keras' gate order: i f c o
        c = tf.math.sigmoid(f) * c + tf.math.sigmoid(i) * tf.math.tanh(g)
        return tf.math.sigmoid(o) * tf.math.tanh(c), c

    hs, cs = tf.scan(step, xw, initializer=(zeros, zeros))
    return _sequence_results(ctx, a, hs, (hs[-1], cs[-1]))


@RULES.on("gru")
def _gru(ctx: TfContext, node: Node) -> Any:
    tf = ctx.tf
    a, u = node.attrs, node.attrs["units"]
    x = ctx.get(node.inputs[0])
    bias = ctx.array(node.inputs[3])
    kernel, recurrent = ctx.const(node.inputs[1]), ctx.const(node.inputs[2])
    reset_after = a["reset_after"]
    b_in = ctx.const(node.inputs[3], bias[0] if reset_after else bias, "input")
    b_rec = ctx.const(node.inputs[3], bias[1], "recurrent") if reset_after else None
    xw = _input_projection(ctx, _time_major(ctx, x, a["go_backwards"]), kernel, b_in)
    if not reset_after:  # the candidate's recurrent part waits for r
        r_gates = ctx.const(node.inputs[2], ctx.array(node.inputs[2])[:, : 2 * u], "gates")
        r_candidate = ctx.const(node.inputs[2], ctx.array(node.inputs[2])[:, 2 * u :], "cand")
    zeros = tf.zeros(tf.stack([tf.shape(x)[0], u]), x.dtype)

    def step(h: Any, x_t: Any) -> Any:
        x_z, x_r, x_h = tf.split(x_t, 3, axis=1)  # gates z r h
        if reset_after:
            inner = tf.nn.bias_add(tf.linalg.matmul(h, recurrent), b_rec)
            h_z, h_r, h_h = tf.split(inner, 3, axis=1)
            r = tf.math.sigmoid(x_r + h_r)
            candidate = tf.math.tanh(x_h + r * h_h)
        else:
            h_z, h_r = tf.split(tf.linalg.matmul(h, r_gates), 2, axis=1)
            r = tf.math.sigmoid(x_r + h_r)
            candidate = tf.math.tanh(x_h + tf.linalg.matmul(r * h, r_candidate))
        z = tf.math.sigmoid(x_z + h_z)
        return z * h + (1 - z) * candidate

    hs = tf.scan(step, xw, initializer=zeros)
    return _sequence_results(ctx, a, hs, (hs[-1],))


def _sequence_results(
    ctx: TfContext, attrs: Mapping[str, Any], hs: Any, states: tuple[Any, ...]
) -> Any:
    """Keras' results: every step's h (batch-major, in processing order) or the last, then
    the states with `return_state`."""
    y = ctx.tf.transpose(hs, [1, 0, 2]) if attrs["return_sequences"] else states[0]
    if not attrs["return_state"]:
        return y
    return (y, *states)


@RULES.on("multi_head_attention")
def _attention(ctx: TfContext, node: Node) -> Any:
    """Keras' attention as 2-D MatMuls and batched matmuls instead of Keras' einsums (TF's
    Einsum kernel transposes its operands on every call; a MatMul + BiasAdd is one fused op):
    the projections of one input share one MatMul (self-attention: q, k and v at once), the
    query's scale is folded into its kernel and bias, heads move to the batch axes with one
    transpose, and the output projection is a MatMul over (head, value) pairs."""
    tf = ctx.tf
    a = node.attrs
    n_weights = 8 if a["bias"] else 4
    data, ws = node.inputs[:-n_weights], list(node.inputs[-n_weights:])
    names = {"query": data[0]}
    names["value"] = data[1] if len(data) > 1 else names["query"]
    names["key"] = data[2] if len(data) > 2 else names["value"]
    kernels = dict(zip(("query", "key", "value", "output"), ws[0::2] if a["bias"] else ws))
    biases = dict(zip(("query", "key", "value", "output"), ws[1::2])) if a["bias"] else {}
    heads = a["heads"]
    scale = 1 / math.sqrt(a["key_dim"])  # Keras scales the query, here its kernel and bias

    def weight(role: str, of: Mapping[str, str]) -> np.ndarray:
        w = ctx.array(of[role]).astype(np.float64)
        return w * scale if role == "query" else w

    projected: dict[str, Any] = {}
    for name in dict.fromkeys(names.values()):  # each input once, in order
        roles = [r for r in ("query", "key", "value") if names[r] == name]
        x, t = ctx.get(name), ctx.type(name)
        features = ctx.array(kernels[roles[0]]).shape[0]  # the input's (known) feature size
        kernel = np.concatenate([weight(r, kernels).reshape(features, -1) for r in roles], 1)
        y = tf.linalg.matmul(
            tf.reshape(x, [-1, features]), ctx.const(kernels[roles[0]], kernel, "+".join(roles))
        )
        if biases:
            bias = np.concatenate([weight(r, biases).reshape(-1) for r in roles])
            y = tf.nn.bias_add(y, ctx.const(biases[roles[0]], bias, "+".join(roles)))
        # heads to the batch axes: q and v as [N, heads, T, size], k as [N, heads, size, S]
        # (a batched matmul with k transposed in memory runs faster than with adj_y)
        sizes = [ctx.array(kernels[r]).shape[-1] for r in roles]
        steps = ctx.dim(x, t, 1)
        if len(set(sizes)) == 1:
            y = tf.reshape(y, _shape(tf, [-1, steps, len(roles), heads, sizes[0]]))
            if roles != ["key"]:  # one transpose for all: [roles, N, heads, T, size]
                moved = tf.transpose(y, [2, 0, 3, 1, 4])
                for r, part in zip(roles, tf.split(moved, len(roles)), strict=True):
                    if r != "key":  # a view: a split on axis 0 copies nothing
                        projected[r] = tf.squeeze(part, [0])
            if "key" in roles:
                projected["key"] = tf.transpose(y[:, :, roles.index("key")], [0, 2, 3, 1])
        else:  # key and value of other sizes: one transpose each
            parts = tf.split(y, [heads * size for size in sizes], axis=1)
            for r, part, size in zip(roles, parts, sizes, strict=True):
                perm = [0, 2, 3, 1] if r == "key" else [0, 2, 1, 3]
                shape = _shape(tf, [-1, steps, heads, size])
                projected[r] = tf.transpose(tf.reshape(part, shape), perm)
    q, k, v = projected["query"], projected["key"], projected["value"]
    scores = tf.linalg.matmul(q, k)  # [N, heads, T, S]
    if a["causal"]:  # query i sees keys j <= i
        steps = tf.shape(scores)
        mask = tf.range(steps[-2])[:, None] >= tf.range(steps[-1])[None, :]
        scores = tf.where(mask, scores, tf.constant(-np.inf, scores.dtype))
    probs = tf.nn.softmax(scores, axis=-1)
    context = tf.transpose(tf.linalg.matmul(probs, v), [0, 2, 1, 3])  # [N, T, heads, V]
    wo = ctx.array(kernels["output"])  # [heads, V, O]
    t = ctx.type(names["query"])
    y = tf.linalg.matmul(
        tf.reshape(context, [-1, wo.shape[0] * wo.shape[1]]),
        ctx.const(kernels["output"], wo.reshape(-1, wo.shape[2]), "2d"),
    )
    if biases:
        y = tf.nn.bias_add(y, ctx.const(biases["output"]))
    steps = ctx.dim(ctx.get(names["query"]), t, 1)
    return tf.reshape(y, _shape(tf, [-1, steps, wo.shape[2]]))
