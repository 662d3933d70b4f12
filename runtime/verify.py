"""`netc verify`: run a backend with every IR value exposed, check each value against the numpy
reference, and report the first source line whose value diverges.

How a value is checked (the reference is runtime/reference.py's op meanings):

1. The model is compiled as for deployment (weights, the passes of opt `level`), and emitted
   with every value an IR node computes added as an extra output of the artifact. ONNX keeps
   values inside conv stacks channels-first; they are read back channels-last through the
   layout the emitter recorded for each (`to_onnx.emit_with_values`).
2. One run of the backend on seeded random inputs gives every value. The symbol of an input's
   first axis (usually `N`) is `batch`, other symbols come from `symbols` or are 5; float
   inputs are standard normal, integer inputs lie below the smallest embedding vocabulary
   (or 8), bools are random.
3. Each node, in topological order, is checked *on its own*: its op's numpy meaning runs on
   the backend's own values of the node's inputs (float tensors widened to float64), and the
   backend's value of the node must match that within tolerance. A node fed wrong inputs but
   computing correctly from them is therefore never blamed, rounding does not pile up over a
   deep network, and the first node that fails is the cause of everything after it.
4. A backend that cannot load or run the model (a lowering that breaks shapes) is bisected:
   the longest prefix of values that does run is compared, and the node after it, if its
   inputs agree, is reported as the one the backend fails to compute.

Exposing every value keeps ONNX Runtime from fusing across IR values (its fusions inside
one IR node, e.g. a fused conv's epilogue, stay), so the graph checked is the deployed one
less those fusions.

Tolerances per result dtype, elementwise on |backend - reference|:
f32 and f64 `atol * max(1, max|ref|) + rtol * |ref|` with rtol 1e-4, atol 1e-5 (atol scales
with the tensor's largest finite magnitude, so a sum over thousands of terms is judged by its
size); f16 the same with rtol 1e-2, atol 1e-3; integer and bool values must be equal. NaNs
match NaNs and infinities match equal infinities. `rtol`/`atol` override the float values.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netc import driver
from netc.ir import Graph, Node, TensorType, concrete_shape, numpy_dtype
from netc.ops import OPS
from netc.source import CallSite, Diagnostic, NetcError, SourceMap, Span
from netc.summary import Model

from .reference import wide_attrs, widened

TOLERANCE = {"f32": (1e-4, 1e-5), "f64": (1e-4, 1e-5), "f16": (1e-2, 1e-3), "bf16": (1e-2, 1e-3)}
OTHER_SYMBOL_SIZE = 5  # symbols other than the batch: distinct from the batch and small
MAX_INT_INPUT = 8
SOURCES = ("input", "param", "constant", "item")  # nodes that compute nothing of their own


@dataclass(frozen=True)
class Check:
    """One value compared: a node's result (`result` is its index for a multi-result op)."""

    node: str
    result: int | None
    max_abs: float  # the largest |backend - reference| over the tensor
    max_rel: float  # the largest |backend - reference| / |reference| (where the reference != 0)
    ratio: float  # the largest error as a fraction of its tolerance (> 1: beyond it)


@dataclass(frozen=True)
class Divergence:
    """A node whose value, computed by the backend from the backend's own inputs, is not the
    reference's: what it is, where the user wrote it, and how far off it is."""

    node: str  # the IR value
    op: str
    result: int | None  # which result of a multi-result op (lstm's states, split)
    span: Span | None
    calls: tuple[CallSite, ...]  # the block calls that led here, innermost first
    origin: tuple[str, ...]  # spans of what the optimizer fused into this node
    tensor: str  # the backend's name for the value (an ONNX tensor)
    dtype: str
    shape: tuple[int, ...]  # the reference's shape
    got_shape: tuple[int, ...]
    got_dtype: str  # the numpy dtype the backend returned
    size: int
    # for values of the right shape and dtype: the largest error among the elements beyond
    # tolerance, where it is, the two values there, and how many elements are beyond it
    max_abs: float = float("nan")
    max_rel: float = float("nan")
    index: tuple[int, ...] | None = None
    got: Any = None
    want: Any = None
    bad: int = 0
    rtol: float | None = None  # None: an exact comparison
    atol: float | None = None  # the scaled atol applied
    failure: str | None = None  # the backend could not compute the value at all: its error

    @property
    def what(self) -> str:
        """How it differs, as the clause in parentheses of the error message."""
        if self.failure is not None:
            return self.failure
        if self.got_shape != self.shape:
            return f"shape {list(self.got_shape)} where the reference has {list(self.shape)}"
        if self.got_dtype != str(numpy_dtype(self.dtype)):
            return f"dtype {self.got_dtype} where the reference has {self.dtype}"
        where = f" at {list(self.index)}" if self.index is not None else ""
        if self.rtol is None:
            return (
                f"max abs error {_num(self.max_abs)}{where}, exact match required for {self.dtype}"
            )
        return (
            f"max abs error {_num(self.max_abs)}{where}, tolerance "
            f"{_num(self.atol or 0)} + {_num(self.rtol)} * |ref|"
        )


@dataclass(frozen=True)
class Report:
    """What `verify` found: `first` is the first diverging node (None when all agree)."""

    model: str
    path: str
    target: str
    level: int
    device: str
    symbols: Mapping[str, int]
    compared: int  # values compared (results of op nodes)
    divergences: tuple[Divergence, ...]  # every node that diverges on its own, in order
    checks: tuple[Check, ...] = ()
    sources: SourceMap = field(default_factory=SourceMap, repr=False)

    @property
    def ok(self) -> bool:
        return not self.divergences

    @property
    def first(self) -> Divergence | None:
        return self.divergences[0] if self.divergences else None

    @property
    def closest(self) -> Check | None:
        """The compared value nearest to its tolerance (the margin of an ok report)."""
        return max(self.checks, key=lambda c: c.ratio, default=None)

    def diagnostic(self) -> Diagnostic | None:
        """The first divergence as a located error, with call sites and fused origins."""
        d = self.first
        if d is None:
            return None
        of = f"result {d.result} of " if d.result is not None else ""
        notes = [f"{of}IR value `{d.node}` ({d.op}), emitted as {self.target} tensor `{d.tensor}`"]
        if d.got_shape == d.shape and d.index is not None:
            notes.append(
                f"{d.bad} of {d.size} values differ; at {list(d.index)} the {self.target} "
                f"backend has {_value(d.got)}, the reference {_value(d.want)}"
            )
        notes += [f"the optimizer fused {o} into this node" for o in d.origin]
        notes.append(
            "its inputs agree with the reference: the "
            + ("failure" if d.failure else "difference")
            + " starts here"
        )
        later = self.divergences[1:]
        if later:
            at = ", ".join(str(x.span) if x.span else f"`{x.node}`" for x in later[:3])
            more = f" and {len(later) - 3} more" if len(later) > 3 else ""
            notes.append(f"{len(later)} later nodes also differ on their own: {at}{more}")
        differs = "fails to compute this value" if d.failure else "differs from the reference here"
        return Diagnostic(
            "error",
            f"the {self.target} backend {differs} ({d.what})",
            d.span,
            d.calls,
            notes=tuple(notes),
        )

    def render(self) -> str:
        """The user-facing text: the located error, or that every value agrees."""
        diagnostic = self.diagnostic()
        if diagnostic is not None:
            return diagnostic.render(self.sources)
        sizes = ", ".join(f"{k}={v}" for k, v in self.symbols.items())
        margin = ""
        c = self.closest
        if c is not None:
            of = f"result {c.result} of " if c.result is not None else ""
            share = "<1%" if c.ratio < 0.01 else f"{c.ratio:.0%}"
            margin = f"; closest: {of}`{c.node}` at {share} of its tolerance"
        return (
            f"{self.path}: the {self.target} backend agrees with the reference: all "
            f"{self.compared} values of `{self.model}` are within tolerance "
            f"(-O{self.level}, {sizes or 'no symbols'}, {self.device}{margin})"
        )

    def to_json(self) -> dict:
        """Plain data for `--json`."""
        out: dict = {
            "ok": self.ok,
            "model": self.model,
            "target": self.target,
            "level": self.level,
            "device": self.device,
            "symbols": dict(self.symbols),
            "compared": self.compared,
        }
        diagnostic = self.diagnostic()
        if diagnostic is not None:
            d = self.first
            assert d is not None
            out["first"] = {
                **diagnostic.to_json(),
                "node": d.node,
                "op": d.op,
                "result": d.result,
                "origin": list(d.origin),
                "max_abs": _finite(d.max_abs),
                "max_rel": _finite(d.max_rel),
                "index": None if d.index is None else list(d.index),
                "bad": d.bad,
                "size": d.size,
            }
            out["diverging"] = [x.node for x in self.divergences]
        return out


def verify(
    model: Model,
    *,
    target: str = "onnx",
    level: int = 2,
    weights: Any = None,
    seed: int = 0,
    batch: int = 2,
    symbols: Mapping[str, int] | None = None,
    device: str = "cpu",
    rtol: float | None = None,
    atol: float | None = None,
) -> Report:
    """Run `model` on `target` at opt `level` with every value exposed and check each node
    against the reference (see the module doc); the report names the first that diverges."""
    spec = driver.target_spec(target)
    driver.backend(target)  # its framework is installed, or a NetcError naming the extra
    values = driver.model_weights(model, weights, seed)
    graph, values = driver.optimized(model, values, level, keep_training=spec.trains)
    sizes = symbol_sizes(graph, batch, symbols)
    inputs = random_inputs(graph, sizes, seed)
    backend = run_values(target, graph, values, inputs, device)
    return _compare(model, graph, values, inputs, backend, sizes, level, rtol, atol, target)


# --- inputs ----------------------------------------------------------------------------------


def symbol_sizes(
    graph: Graph, batch: int = 2, symbols: Mapping[str, int] | None = None
) -> dict[str, int]:
    """A size for every symbol of the inputs: the first axis's is `batch`, the rest 5,
    both overridden by `symbols`."""
    out: dict[str, int] = {}
    for name in graph.inputs:
        for axis, d in enumerate(graph[name].tensor_type.shape):
            if isinstance(d, str) and "*" not in d:
                out.setdefault(d, batch if axis == 0 else OTHER_SYMBOL_SIZE)
    out.update(symbols or {})
    return out


def random_inputs(graph: Graph, sizes: Mapping[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs in the model's dtypes (see the module doc)."""
    rng = np.random.default_rng(seed)
    vocab = min((n.attrs["vocab"] for n in graph.nodes if n.op == "embedding"), default=None)
    out: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        t = graph[name].tensor_type
        shape = concrete_shape(t, sizes)
        dtype = numpy_dtype(t.dtype)
        if t.is_float:
            out[name] = rng.standard_normal(shape).astype(dtype)
        elif t.dtype == "bool":
            out[name] = rng.random(shape) < 0.5
        else:
            out[name] = rng.integers(0, vocab or MAX_INT_INPUT, shape).astype(dtype)
    return out


# --- the backend -----------------------------------------------------------------------------

Key = tuple[str, int | None]  # (IR value, result index of a multi-result op)


@dataclass(frozen=True)
class Backend:
    """What one backend run gave: each exposed value (channels-last), the backend's name for
    it, the device; and when the backend failed, the first value it could not compute (the
    values before it come from the longest prefix that ran) and its error."""

    values: dict[Key, np.ndarray]
    tensors: dict[Key, str]
    device: str
    failed_at: Key | None = None
    failure: str | None = None


def run_values(
    target: str,
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray],
    device: str,
) -> Backend:
    """Every computed IR value as `target` gives it: ONNX Runtime here; the other targets'
    runtime modules (netc.runtime.keras, netc.runtime.tf) each have a `run_values(graph,
    weights, inputs, device) -> Backend` of their own."""
    if target == "onnx":
        return _run_onnx(graph, weights, inputs, device)
    module = importlib.import_module(f".{target}", __package__)
    return module.run_values(graph, weights, inputs, device)


def _run_onnx(
    graph: Graph, weights: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray], device: str
) -> Backend:
    """Every computed IR value as ONNX Runtime gives it. When the model does not load or run
    (a broken lowering), bisect for the longest prefix of values that does."""
    from netc.backends import to_onnx

    model, emitted = to_onnx.emit_with_values(graph, weights)
    exposed: dict[Key, to_onnx.Value] = {}
    for node in graph.nodes:
        if node.op in SOURCES:
            continue
        value = emitted[node.name]
        if isinstance(value, tuple):
            exposed.update({(node.name, i): v for i, v in enumerate(value)})
        else:
            exposed[(node.name, None)] = value
    keys = list(exposed)  # in topological order
    tensors = {k: v.name for k, v in exposed.items()}
    if not keys:  # nothing computed: the outputs are inputs or weights
        return Backend({}, tensors, device)

    def run(prefix: list[Key]) -> tuple[dict[Key, np.ndarray], str]:
        wanted = [exposed[k].name for k in prefix]
        results, ran_on = _run_session(_exposing(model, wanted, graph, exposed), inputs, device)
        out = {}
        for k in prefix:
            a, cf = results[exposed[k].name], exposed[k].cf
            out[k] = a.transpose(to_onnx.to_cl(a.ndim)) if cf and a.ndim >= 3 else a
        return out, ran_on

    try:
        values, ran_on = run(keys)
        return Backend(values, tensors, ran_on)
    except NetcError as e:
        failure = e.diagnostics[0].message
    ok, bad = 0, len(keys)  # the first `ok` values compute; the first `bad` do not
    values, ran_on = {}, device
    while bad - ok > 1:
        mid = (ok + bad) // 2
        try:
            values, ran_on = run(keys[:mid])
            ok = mid
        except NetcError as e:
            bad, failure = mid, e.diagnostics[0].message
    return Backend(values, tensors, ran_on, keys[ok], failure)


def _run_session(
    model: Any, inputs: Mapping[str, np.ndarray], device: str
) -> tuple[dict[str, np.ndarray], str]:
    """All outputs of `model` in ONNX Runtime, and the device it ran on; failures are
    NetcErrors (verify expects some while it bisects), and ONNX Runtime logs nothing."""
    from .onnx import OnnxSession

    session = OnnxSession(model, name=model.graph.name, device=device)
    return session.run(inputs), session.device


def _exposing(model: Any, tensors: list[str], graph: Graph, exposed: Mapping) -> Any:
    """A copy of `model` whose outputs are `tensors` (their value_info moves there), with only
    the nodes that compute them."""
    import onnx
    from onnx import helper

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    g = copy.graph
    inputs = {i.name for i in g.input}
    infos = {vi.name: vi for vi in g.value_info} | {o.name: o for o in g.output}
    types = {v.name: _result_type(graph, key) for key, v in exposed.items()}
    outputs = []
    for name in dict.fromkeys(tensors):
        if name in inputs:
            continue
        if name in infos:
            vi = onnx.ValueInfoProto()
            vi.CopyFrom(infos[name])
        else:  # declared by its element type alone: ONNX Runtime infers the shape
            dtype = helper.np_dtype_to_tensor_dtype(numpy_dtype(types[name].dtype))
            vi = helper.make_tensor_value_info(name, dtype, None)
        outputs.append(vi)
    needed = {vi.name for vi in outputs}
    nodes = []
    for n in reversed(g.node):  # the nodes the outputs need, found backwards
        if needed.intersection(n.output):
            nodes.append(n)
            needed.update(n.input)
    declared = {vi.name for vi in outputs}
    value_info = [vi for vi in g.value_info if vi.name not in declared]
    initializers = [i for i in g.initializer if i.name in needed]
    del g.node[:], g.output[:], g.value_info[:], g.initializer[:]
    g.node.extend(reversed(nodes))
    g.output.extend(outputs)
    g.value_info.extend(value_info)
    g.initializer.extend(initializers)
    return copy


# --- the comparison --------------------------------------------------------------------------


def _result_type(graph: Graph, key: Key) -> TensorType:
    t = graph[key[0]].type
    if key[1] is None:
        assert isinstance(t, TensorType)
        return t
    assert isinstance(t, tuple)
    return t[key[1]]


def _types(node: Node) -> tuple[TensorType, ...]:
    return node.type if isinstance(node.type, tuple) else (node.tensor_type,)


def _compare(
    model: Model,
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray],
    backend: Backend,
    sizes: Mapping[str, int],
    level: int,
    rtol: float | None,
    atol: float | None,
    target: str,
) -> Report:
    # the backend's value of everything a node may read: its inputs, the weights, constants
    env: dict[str, Any] = {}
    divergences: list[Divergence] = []
    checks: list[Check] = []
    compared = 0
    for node in graph.nodes:
        if node.op == "input":
            env[node.name] = inputs[node.name]
            continue
        if node.op == "param":
            env[node.name] = np.asarray(weights[node.name])
            continue
        if node.op == "constant":
            env[node.name] = node.attrs["value"].array
            continue
        if node.op == "item":
            env[node.name] = env[node.inputs[0]][node.attrs["index"]]
            continue
        multi = isinstance(node.type, tuple)
        keys: list[Key] = [(node.name, i if multi else None) for i in range(len(_types(node)))]
        if any(k not in backend.values for k in keys):  # the backend failed here
            if not divergences:
                divergences.append(_failed(node, keys[0], graph, sizes, backend))
            break
        got = [backend.values[k] for k in keys]
        env[node.name] = tuple(got) if multi else got[0]
        try:
            with np.errstate(all="ignore"):
                want = OPS[node.op].evaluate(
                    [widened(env[i]) for i in node.inputs], wide_attrs(node)
                )
        except Exception:  # fed values that an earlier divergence broke: the rest is unknown
            if divergences:
                break
            raise
        wants = list(want) if multi else [want]
        for key, g, w in zip(keys, got, wants, strict=True):
            compared += 1
            t = _result_type(graph, key)
            found, check = _check(
                node, key, t, np.asarray(g), np.asarray(w), backend.tensors[key], rtol, atol
            )
            if check is not None:
                checks.append(check)
            if found is not None:
                divergences.append(found)
                break  # one per node: the first result that differs
        if divergences and divergences[-1].got_shape != divergences[-1].shape:
            break  # later nodes would read a value of the wrong shape: nothing more is known
    return Report(
        model=graph.name,
        path=model.path,
        target=target,
        level=level,
        device=backend.device,
        symbols=dict(sizes),
        compared=compared,
        divergences=tuple(divergences),
        checks=tuple(checks),
        sources=model.sources,
    )


def _failed(
    node: Node, key: Key, graph: Graph, sizes: Mapping[str, int], backend: Backend
) -> Divergence:
    """The divergence of a node the backend could not compute at all."""
    t = _result_type(graph, key)
    return Divergence(
        node=node.name,
        op=node.op,
        result=key[1],
        span=node.span,
        calls=node.calls,
        origin=tuple(node.attrs.get("origin", ())),
        tensor=backend.tensors[key],
        dtype=t.dtype,
        shape=concrete_shape(t, sizes),
        got_shape=(),
        got_dtype="",
        size=t.numel(sizes),
        failure=backend.failure or "it failed",
    )


def _check(
    node: Node,
    key: Key,
    t: TensorType,
    got: np.ndarray,
    want: np.ndarray,
    tensor: str,
    rtol: float | None,
    atol: float | None,
) -> tuple[Divergence | None, Check | None]:
    """(the divergence, or None; the error summary, or None when shapes differ)."""

    def diverged(**how: Any) -> Divergence:
        return Divergence(
            node=node.name,
            op=node.op,
            result=key[1],
            span=node.span,
            calls=node.calls,
            origin=tuple(node.attrs.get("origin", ())),
            tensor=tensor,
            dtype=t.dtype,
            shape=tuple(want.shape),
            got_shape=tuple(got.shape),
            got_dtype=str(got.dtype),
            size=int(want.size),
            **how,
        )

    if got.shape != want.shape:
        return diverged(), None
    if got.dtype != numpy_dtype(t.dtype):
        return diverged(), None
    if got.size == 0:
        return None, Check(node.name, key[1], 0.0, 0.0, 0.0)
    r: float | None = None
    a: float | None = None
    if t.dtype in TOLERANCE:
        r = TOLERANCE[t.dtype][0] if rtol is None else rtol
        a = TOLERANCE[t.dtype][1] if atol is None else atol
        g, w = got.astype(np.float64), want.astype(np.float64)
        finite = np.abs(w[np.isfinite(w)])
        a *= max(1.0, float(finite.max()) if finite.size else 1.0)
        with np.errstate(all="ignore"):
            diff = np.abs(g - w)
            tol = a + r * np.abs(w)
            same = (g == w) | (np.isnan(g) & np.isnan(w))
            bad = ~same & ~(diff <= tol)
            err = np.where(same, 0.0, np.where(np.isnan(diff), np.inf, diff))
            rel = np.where(w != 0, err / np.abs(w), np.where(err > 0, np.inf, 0.0))
            ratio = float(np.max(np.where(err == 0, 0.0, err / tol)))
    else:
        bad = got != want
        err = np.abs(got.astype(np.float64) - want.astype(np.float64))
        rel = np.where(
            want != 0, err / np.abs(want.astype(np.float64)), np.where(err > 0, np.inf, 0.0)
        )
        ratio = float(np.inf if bad.any() else 0.0)
    check = Check(node.name, key[1], float(err.max()), float(rel.max()), ratio)
    if not bad.any():
        return None, check
    worst = np.where(bad, err, -1.0)
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(worst)), worst.shape))
    return (
        diverged(
            max_abs=float(err[index]),
            max_rel=float(np.max(np.where(bad, rel, 0.0))),
            index=index,
            got=got[index].item(),
            want=want[index].item(),
            bad=int(bad.sum()),
            rtol=r,
            atol=a,
        ),
        check,
    )


def _num(x: float) -> str:
    """1e-05, 3.1e-02: one significant decimal, none when it is zero."""
    if not np.isfinite(x):
        return str(x)
    return f"{x:.1e}".replace(".0e", "e")


def _finite(x: float) -> float | None:
    """JSON has no inf or nan: those become null."""
    return x if np.isfinite(x) else None


def _value(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)
