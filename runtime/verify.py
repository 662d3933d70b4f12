"""`netc verify`: check what a user deploys against the numpy reference, then point at the first
source line whose value diverges.

Two checks, in this order (the reference is runtime/reference.py's op meanings, in float64):

1. The deployed session. The model is compiled and loaded exactly as `netc run` does it
   (`netc.runtime.load(model, target=..., level=..., device=..., graph_optimization=...)`: the
   same passes, the same emitted artifact, the same runtime options, ONNX Runtime's optimizer
   at "all" unless another level is asked for), and its final outputs are compared with the
   reference of the source graph on four kinds of seeded inputs (INPUT_KINDS): standard normal,
   all negative, large and near zero. These are the inputs on which runtimes' fusions go wrong
   (a max over an all-negative window, a pad folded into an op's own padding).
2. Value by value. The compiled graph is emitted with every value an IR node computes added as
   an extra output (each target's `run_values`); one run on the inputs of the first kind whose
   outputs differed (normal ones when none did) gives every value. Each node, in topological
   order, is checked *on its own*: its op's numpy meaning runs on the backend's own values of
   its inputs (widened to float64), so a node fed wrong inputs but computing correctly from
   them is never blamed and the first node that fails is the cause of what follows. A
   backend that cannot load or run the model is bisected for the longest prefix of values
   that does run; the node after it is reported as the one it fails to compute.

Exposing every value keeps a runtime from fusing across IR values, so a fusion of the deployed
session can be wrong while every value agrees on its own. Then each value is computed alone,
in an artifact whose only output it is (everything before it fused as in deployment), and a
bisection finds the first value that differs there while its inputs do not: the node the
runtime's optimizer gets wrong. When the reference of the optimized graph already differs from
the reference of the source, netc's own passes changed the outputs instead.

Weights: randomized by default (`netc.weights.randomized_weights`: every bias, batchnorm
statistic and gamma drawn, so that a dropped or misplaced one shows), the seeded initial
weights with `initial=True` (what `netc run` uses without weights), or a file or dict.

Tolerances are netc.runtime.tolerance's, one table: "model" for the deployed outputs and for
values computed alone (rounding accumulates over the layers before them), "op" for a node
checked on its own inputs; the device's rows ("cuda" allows TF32). Integer and bool values
must be equal. `rtol`/`atol` override the float values.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from netc import driver
from netc.ir import Graph, Node, TensorType, concrete_shape, numpy_dtype
from netc.ops import OPS
from netc.source import CallSite, Diagnostic, NetcError, SourceMap, Span, error
from netc.summary import Model

from . import reference
from .onnx import GRAPH_OPTIMIZATION  # ONNX Runtime's optimizer levels (a light import)
from .reference import wide_attrs, widened
from .tolerance import elementwise, mismatch, scaled_atol, tolerance

OTHER_SYMBOL_SIZE = 5  # symbols other than the batch: distinct from the batch and small
MAX_INT_INPUT = 8
SOURCES = ("input", "param", "constant", "item")  # nodes that compute nothing of their own
# The input distributions of the deployed check, and how a message names them.
INPUT_KINDS = {
    "normal": "standard normal",  # N(0, 1)
    "negative": "all-negative",  # -|N(0, 1)| - 0.1
    "large": "large",  # 10 N(0, 1)
    "small": "near-zero",  # 1e-3 N(0, 1), 30% exact zeros
}


@dataclass(frozen=True)
class Check:
    """One value compared: a node's result (`result` is its index for a multi-result op)."""

    node: str
    result: int | None
    max_abs: float  # the largest |backend - reference| over the tensor
    max_rel: float  # the largest |backend - reference| / |reference| (where the reference != 0)
    ratio: float  # the largest error as a fraction of its tolerance (> 1: beyond it)


@dataclass(frozen=True)
class OutputCheck:
    """One output of the deployed session on one kind of inputs, against the reference."""

    kind: str  # a key of INPUT_KINDS
    output: str
    ratio: float  # the largest error as a fraction of its tolerance (> 1: beyond it)
    max_abs: float = 0.0
    index: tuple[int, ...] | None = None  # the worst element beyond tolerance
    got: Any = None
    want: Any = None
    bad: int = 0
    size: int = 0
    failure: str | None = None  # the session did not load or run, or a wrong shape or dtype

    @property
    def ok(self) -> bool:
        return self.failure is None and self.bad == 0

    @property
    def what(self) -> str:
        """How it differs, for a note."""
        if self.failure is not None:
            return self.failure
        return (
            f"{self.bad} of {self.size} values differ; at {list(self.index or ())} the session "
            f"has {_value(self.got)}, the reference {_value(self.want)}"
        )


@dataclass(frozen=True)
class Divergence:
    """A node whose value is not the reference's: what it is, where the user wrote it, how far
    off it is, and why it is blamed (`cause`):

    - "node": computed by the backend from the backend's own inputs, it differs;
    - "fused": it agrees computed on its own, but not computed alone in the deployed form
      (the runtime's optimizer fuses it with what comes before it), while its inputs agree;
    - "passes": an output whose reference after netc's passes differs from the source's;
    - "output": an output of the deployed session differs and no single value is to blame."""

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
    cause: str = "node"
    kind: str = "normal"  # the inputs it was found on (a key of INPUT_KINDS)

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
    """What `verify` found: the deployed session's outputs per input kind (`outputs`), the
    values compared one by one, and the divergences; `first` is the one to fix first."""

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
    outputs: tuple[OutputCheck, ...] = ()  # the deployed session, per input kind and output
    graph_optimization: str = "all"  # ONNX Runtime's optimizer level of the session
    weights: str = "randomized"  # "randomized", "initial" or "given"
    seed: int = 0

    @property
    def ok(self) -> bool:
        return not self.divergences and all(o.ok for o in self.outputs)

    @property
    def first(self) -> Divergence | None:
        return self.divergences[0] if self.divergences else None

    @property
    def deployed_ok(self) -> bool:
        """Whether the deployed session's outputs agree on every kind of inputs."""
        return all(o.ok for o in self.outputs)

    @property
    def closest(self) -> Check | None:
        """The compared value nearest to its tolerance (the margin of an ok report)."""
        return max(self.checks, key=lambda c: c.ratio, default=None)

    @property
    def settings(self) -> str:
        """The compile and runtime settings checked, for messages."""
        parts = [f"-O{self.level}"]
        if self.target == "onnx":
            parts.append(f"ONNX Runtime optimizer {self.graph_optimization}")
        parts.append(
            f"{self.weights} weights" + (f" (seed {self.seed})" if self.weights != "given" else "")
        )
        sizes = ", ".join(f"{k}={v}" for k, v in self.symbols.items())
        parts += [sizes or "no symbols", self.device]
        return ", ".join(parts)

    def diagnostic(self) -> Diagnostic | None:
        """The first divergence as a located error, with call sites and fused origins."""
        d = self.first
        if d is None:
            bad = next((o for o in self.outputs if not o.ok), None)
            if bad is None:
                return None
            return Diagnostic(  # the session failed on some inputs, and no value is to blame
                "error",
                f"the deployed {self.target} session's output `{bad.output}` differs from the "
                f"reference on {INPUT_KINDS[bad.kind]} inputs ({bad.what})",
            )
        of = f"result {d.result} of " if d.result is not None else ""
        value = f"{of}IR value `{d.node}` ({d.op})"
        notes = [f"{value}, emitted as {self.target} tensor `{d.tensor}`"]
        deployed = self._deployed_note()
        if d.cause == "node":
            if d.got_shape == d.shape and d.index is not None:
                notes.append(
                    f"{d.bad} of {d.size} values differ on {INPUT_KINDS[d.kind]} inputs; at "
                    f"{list(d.index)} the {self.target} backend has {_value(d.got)}, the "
                    f"reference {_value(d.want)}"
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
            if deployed:
                notes.append(deployed)
            differs = (
                "fails to compute this value" if d.failure else "differs from the reference here"
            )
            return Diagnostic(
                "error",
                f"the {self.target} backend {differs} ({d.what})",
                d.span,
                d.calls,
                notes=tuple(notes),
            )
        if d.cause == "fused":
            runtime = self._runtime()
            notes.append(
                f"{d.bad} of {d.size} values differ on {INPUT_KINDS[d.kind]} inputs; at "
                f"{list(d.index or ())} the deployed session has {_value(d.got)}, the reference "
                f"{_value(d.want)}"
            )
            notes += [f"the optimizer fused {o} into this node" for o in d.origin]
            notes.append(
                "with every value an output it agrees with the reference; computed alone, as "
                f"deployed, it differs while its inputs agree: {runtime} changes it when it "
                "fuses it with the ops before it"
            )
            if deployed:
                notes.append(deployed)
            hint = (
                "`--ort-opt disable` checks the session without ONNX Runtime's optimizer"
                if self.target == "onnx" and self.graph_optimization != "disable"
                else None
            )
            return Diagnostic(
                "error",
                f"the deployed {self.target} session differs from the reference here ({d.what})",
                d.span,
                d.calls,
                hint=hint,
                notes=tuple(notes),
            )
        if d.cause == "passes":
            notes = [value]
            if deployed:
                notes.append(deployed)
            return Diagnostic(
                "error",
                f"netc's -O{self.level} passes change this output ({d.what})",
                d.span,
                d.calls,
                hint="`netc MODEL.net --verify-passes` names the pass",
                notes=tuple(notes),
            )
        notes.append(
            "every value agrees with the reference computed one by one and computed alone: "
            "the difference comes from how the session runs the whole model"
        )
        return Diagnostic(
            "error",
            f"the deployed {self.target} session's output differs from the reference ({d.what})",
            d.span,
            d.calls,
            notes=tuple(notes),
        )

    def _runtime(self) -> str:
        if self.target == "onnx":
            return f"ONNX Runtime's optimizer (level {self.graph_optimization})"
        return f"the {self.target} runtime"

    def _deployed_note(self) -> str | None:
        bad = [o for o in self.outputs if not o.ok]
        if not bad:
            return None
        kinds = list(dict.fromkeys(INPUT_KINDS[o.kind] for o in bad))
        outputs = list(dict.fromkeys(f"`{o.output}`" for o in bad))
        return (
            f"the deployed session ({self.settings}) gives wrong outputs "
            f"{_words(outputs)} on {_words(kinds)} inputs"
        )

    def render(self) -> str:
        """The user-facing text: the located error, or that everything agrees."""
        diagnostic = self.diagnostic()
        if diagnostic is not None:
            return diagnostic.render(self.sources)
        margin = ""
        c = self.closest
        if c is not None:
            of = f"result {c.result} of " if c.result is not None else ""
            share = "<1%" if c.ratio < 0.01 else f"{c.ratio:.0%}"
            margin = f"; closest: {of}`{c.node}` at {share} of its tolerance"
        kinds = list(dict.fromkeys(INPUT_KINDS[o.kind] for o in self.outputs))
        return (
            f"{self.path}: the {self.target} backend agrees with the reference: all "
            f"{self.compared} values of `{self.model}` one by one, and the deployed session's "
            f"outputs on {_words(kinds) or 'no'} inputs, are within tolerance "
            f"({self.settings}{margin})"
        )

    def to_json(self) -> dict:
        """Plain data for `--json`."""
        out: dict = {
            "ok": self.ok,
            "model": self.model,
            "target": self.target,
            "level": self.level,
            "graph_optimization": self.graph_optimization if self.target == "onnx" else None,
            "weights": self.weights,
            "seed": self.seed,
            "device": self.device,
            "symbols": dict(self.symbols),
            "compared": self.compared,
            "outputs": [
                {
                    "kind": o.kind,
                    "output": o.output,
                    "ok": o.ok,
                    "max_abs": _finite(o.max_abs),
                    "ratio": _finite(o.ratio),
                    "bad": o.bad,
                    "failure": o.failure,
                }
                for o in self.outputs
            ],
        }
        diagnostic = self.diagnostic()
        if diagnostic is not None:
            out["error"] = diagnostic.to_json()
        d = self.first
        if diagnostic is not None and d is not None:
            out["first"] = {
                **diagnostic.to_json(),
                "node": d.node,
                "op": d.op,
                "result": d.result,
                "cause": d.cause,
                "kind": d.kind,
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
    initial: bool = False,
    seed: int = 0,
    batch: int = 2,
    symbols: Mapping[str, int] | None = None,
    device: str = "auto",
    graph_optimization: str = "all",
    kinds: tuple[str, ...] = tuple(INPUT_KINDS),
    rtol: float | None = None,
    atol: float | None = None,
) -> Report:
    """Check `model` as `netc run` deploys it on `target` at opt `level` (ONNX Runtime's
    optimizer at `graph_optimization`) on inputs of `kinds` (INPUT_KINDS), then value by value
    (see the module doc). `weights`: a file or dict; None: randomized from `seed`, or the
    seeded initial weights with `initial`."""
    from netc.weights import randomized_weights

    from .api import load

    spec = driver.target_spec(target)
    if graph_optimization not in GRAPH_OPTIMIZATION:
        raise error(
            f"unknown ONNX Runtime optimization level `{graph_optimization}`",
            hint=f"use {', '.join(GRAPH_OPTIMIZATION)}",
        )
    if target != "onnx" and graph_optimization != "all":
        raise error(f"the optimization level is ONNX Runtime's, not {target}'s")
    driver.backend(target)  # its framework is installed, or a NetcError naming the extra
    if weights is not None and initial:
        raise error("give either weights or the initial weights, not both")
    unknown = [k for k in kinds if k not in INPUT_KINDS]
    if unknown or not kinds:
        raise error(
            f"unknown input kind `{unknown[0]}`" if unknown else "no input kinds to check",
            hint=f"use {', '.join(INPUT_KINDS)}",
        )
    if weights is None and not initial:
        values: Mapping[str, np.ndarray] = randomized_weights(model.graph, seed)
    else:
        values = driver.model_weights(model, weights, seed)
    how = "given" if weights is not None else "initial" if initial else "randomized"
    graph, compiled = driver.optimized(model, values, level, keep_training=spec.trains)
    sizes = symbol_sizes(graph, batch, symbols)
    feeds = {kind: random_inputs(graph, sizes, seed, kind) for kind in kinds}

    # 1. the deployed session (as `netc run` makes it) and its outputs on every kind of inputs
    artifact = driver.emit(model, target, weights=dict(values), level=level)
    outputs: list[OutputCheck] = []
    ran_on = device
    try:
        session = load(
            artifact, target=target, device=device, graph_optimization=graph_optimization
        )
    except NetcError as e:  # a lowering the runtime refuses, or the device or options
        refused: NetcError | None = e
        outputs.append(OutputCheck(kinds[0], "*", np.inf, failure=e.diagnostics[0].message))
    else:
        refused = None
        ran_on = str(getattr(session, "device", device))
        for kind, feed in feeds.items():
            want = reference.run(model.graph, feed, values, wide=True)
            try:
                got = session.run(feed)
            except NetcError as e:
                outputs.append(OutputCheck(kind, "*", np.inf, failure=e.diagnostics[0].message))
                continue
            outputs += [
                _output_check(kind, name, got.get(name), w, ran_on, rtol, atol)
                for name, w in want.items()
            ]

    # 2. value by value, on the inputs the deployed session got wrong first
    failed = next((o for o in outputs if not o.ok), None)
    kind = failed.kind if failed is not None else kinds[0]
    inputs = feeds[kind]
    backend = run_values(target, graph, compiled, inputs, ran_on, graph_optimization)
    if refused is not None and backend.failure is None:
        raise refused  # not a value the backend fails to compute: the device or an option
    divergences, checks, compared = _compare(graph, compiled, inputs, backend, sizes, rtol, atol)
    divergences = [replace(d, kind=kind) for d in divergences]
    if failed is not None and failed.failure is None and not divergences:
        found = _explain(
            model,
            graph,
            compiled,
            values,
            inputs,
            failed,
            target,
            backend.device,
            graph_optimization,
            sizes,
            rtol,
            atol,
        )
        divergences = [replace(found, kind=kind)]
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
        outputs=tuple(outputs),
        graph_optimization=graph_optimization,
        weights=how,
        seed=seed,
    )


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


def random_inputs(
    graph: Graph, sizes: Mapping[str, int], seed: int = 0, kind: str = "normal"
) -> dict[str, np.ndarray]:
    """Seeded inputs in the model's dtypes. Floats are of `kind` (INPUT_KINDS): standard
    normal; all negative (-|x| - 0.1); large (10 x); near zero (1e-3 x, 30% exact zeros).
    Integer inputs lie below the smallest embedding vocabulary (or 8), bools are random; both
    are the same for every kind."""
    assert kind in INPUT_KINDS, kind
    rng = np.random.default_rng(seed)
    vocab = min((n.attrs["vocab"] for n in graph.nodes if n.op == "embedding"), default=None)
    out: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        t = graph[name].tensor_type
        shape = concrete_shape(t, sizes)
        dtype = numpy_dtype(t.dtype)
        if t.is_float:
            x = rng.standard_normal(shape)
            if kind == "negative":
                x = -np.abs(x) - 0.1
            elif kind == "large":
                x = x * 10.0
            elif kind == "small":
                x = np.where(rng.random(shape) < 0.3, 0.0, x * 1e-3)
            out[name] = x.astype(dtype)
        elif t.dtype == "bool":
            out[name] = rng.random(shape) < 0.5
        else:
            out[name] = rng.integers(0, vocab or MAX_INT_INPUT, shape).astype(dtype)
    return out


def _output_check(
    kind: str,
    name: str,
    got: Any,
    want: np.ndarray,
    device: str,
    rtol: float | None,
    atol: float | None,
) -> OutputCheck:
    """One deployed output against the reference, with the "model" tolerance."""
    if got is None:
        return OutputCheck(kind, name, np.inf, failure=f"the session has no output `{name}`")
    g = np.asarray(got)
    if g.shape != want.shape:
        return OutputCheck(
            kind, name, np.inf, failure=f"shape {list(g.shape)}, want {list(want.shape)}"
        )
    if g.dtype != want.dtype:
        return OutputCheck(kind, name, np.inf, failure=f"dtype {g.dtype}, want {want.dtype}")
    ratio = _ratio(g, want, "model", device, rtol, atol)
    found = mismatch(g, want, scope="model", device=device, rtol=rtol, atol=atol)
    if found is None:
        return OutputCheck(kind, name, ratio, size=int(want.size))
    return OutputCheck(
        kind,
        name,
        ratio,
        max_abs=found.max_abs,
        index=found.index,
        got=found.got,
        want=found.want,
        bad=found.bad,
        size=found.size,
    )


def _ratio(
    got: np.ndarray,
    want: np.ndarray,
    scope: str,
    device: str,
    rtol: float | None,
    atol: float | None,
) -> float:
    """The largest error as a fraction of its tolerance (inf for an exact mismatch)."""
    if want.size == 0:
        return 0.0
    if want.dtype.kind != "f":
        return float(np.inf if (got != want).any() else 0.0)
    r, a = _bounds(want.dtype.name, scope, device, rtol, atol)
    err, bound, _ = elementwise(got, want, r, a)
    with np.errstate(all="ignore"):
        return float(np.max(np.where(err == 0, 0.0, err / bound)))


def _bounds(
    dtype: str, scope: str, device: str, rtol: float | None, atol: float | None
) -> tuple[float, float]:
    r, a = tolerance(dtype, scope, device)
    return (r if rtol is None else rtol), (a if atol is None else atol)


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
    graph_optimization: str = "all",
) -> Backend:
    """Every computed IR value as `target` gives it: ONNX Runtime here (its optimizer at
    `graph_optimization`); the other targets' runtime modules (netc.runtime.keras,
    netc.runtime.tf) each have a `run_values(graph, weights, inputs, device) -> Backend`."""
    if target == "onnx":
        return _run_onnx(graph, weights, inputs, device, graph_optimization)
    module = importlib.import_module(f".{target}", __package__)
    return module.run_values(graph, weights, inputs, device)


def _run_onnx(
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray],
    device: str,
    graph_optimization: str = "all",
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
        results, ran_on = _run_session(
            _exposing(model, wanted, graph, exposed), inputs, device, graph_optimization
        )
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
    model: Any, inputs: Mapping[str, np.ndarray], device: str, graph_optimization: str = "all"
) -> tuple[dict[str, np.ndarray], str]:
    """All outputs of `model` in ONNX Runtime, and the device it ran on; failures are
    NetcErrors (verify expects some while it bisects), and ONNX Runtime logs nothing."""
    from .onnx import OnnxSession

    session = OnnxSession(
        model, name=model.graph.name, device=device, graph_optimization=graph_optimization
    )
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
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray],
    backend: Backend,
    sizes: Mapping[str, int],
    rtol: float | None,
    atol: float | None,
) -> tuple[list[Divergence], list[Check], int]:
    """Each node against its op's meaning on the backend's own inputs: (the nodes that
    diverge, the error summary of each value, how many values were compared)."""
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
                node,
                key,
                t,
                np.asarray(g),
                np.asarray(w),
                backend.tensors[key],
                backend.device,
                "op",
                rtol,
                atol,
            )
            if check is not None:
                checks.append(check)
            if found is not None:
                divergences.append(found)
                break  # one per node: the first result that differs
        if divergences and divergences[-1].got_shape != divergences[-1].shape:
            break  # later nodes would read a value of the wrong shape: nothing more is known
    return divergences, checks, compared


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
    device: str,
    scope: str,
    rtol: float | None,
    atol: float | None,
    cause: str = "node",
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
            cause=cause,
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
    if t.is_float:
        r, a = _bounds(t.dtype, scope, device, rtol, atol)
        err, bound, bad = elementwise(got, want, r, a)
        a = scaled_atol(want, a)
        with np.errstate(all="ignore"):
            ratio = float(np.max(np.where(err == 0, 0.0, err / bound)))
    else:
        bad = got != want
        err = np.abs(got.astype(np.float64) - want.astype(np.float64))
        ratio = float(np.inf if bad.any() else 0.0)
    w = np.abs(want.astype(np.float64))
    with np.errstate(all="ignore"):
        rel = np.where(w != 0, err / w, np.where(err > 0, np.inf, 0.0))
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


# --- explaining a deployed session that differs while every value agrees ----------------------


def _explain(
    model: Model,
    graph: Graph,
    compiled: Mapping[str, np.ndarray],
    values: Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray],
    failed: OutputCheck,
    target: str,
    device: str,
    graph_optimization: str,
    sizes: Mapping[str, int],
    rtol: float | None,
    atol: float | None,
) -> Divergence:
    """Why the deployed output `failed.output` differs when every value agrees on its own:
    netc's passes changed it, or a value computed alone (fused as deployed) differs while its
    inputs do not (found by bisection), or, failing both, the output itself."""
    out = dict(graph.outputs)[failed.output]
    source = reference.run(model.graph, inputs, values, wide=True)[failed.output]
    after = reference.run(graph, inputs, compiled, wide=True)[failed.output]
    found, _ = _check(
        graph[out],
        (out, None),
        graph[out].tensor_type,
        after,
        source,
        out,
        device,
        "model",
        rtol,
        atol,
        cause="passes",
    )
    if found is not None:
        return found
    alone = _Alone(model, graph, compiled, inputs, target, device, graph_optimization, rtol, atol)
    return alone.first(out) or _output_divergence(graph, out, failed, sizes)


class _Alone:
    """Each IR value computed alone: the compiled graph cut after it (it is the only output),
    emitted, loaded and run as the deployed session is, against the reference's value."""

    def __init__(
        self,
        model: Model,
        graph: Graph,
        weights: Mapping[str, np.ndarray],
        inputs: Mapping[str, np.ndarray],
        target: str,
        device: str,
        graph_optimization: str,
        rtol: float | None,
        atol: float | None,
    ):
        self.model, self.graph, self.weights, self.inputs = model, graph, weights, inputs
        self.target, self.device, self.level = target, device, graph_optimization
        self.rtol, self.atol = rtol, atol
        values = [n.name for n in graph.nodes if _computed(n)]
        every = graph.with_nodes(graph.nodes, [(v, v) for v in values])
        self.want = reference.run(every, inputs, weights, wide=True)
        self.found: dict[str, Divergence | None] = {}

    def differs(self, name: str) -> Divergence | None:
        """The divergence of value `name` computed alone, or None when it agrees."""
        if name not in self.found:
            self.found[name] = self._run(name)
        return self.found[name]

    def _run(self, name: str) -> Divergence | None:
        from netc.passes import eliminate_dead_nodes

        from .api import load

        graph, weights = eliminate_dead_nodes(
            self.graph.with_nodes(self.graph.nodes, [(name, name)]), dict(self.weights)
        )
        node = self.graph[name]
        owner = self.graph[node.inputs[0]] if node.op == "item" else node
        result = node.attrs["index"] if node.op == "item" else None
        try:
            session = load(
                replace(self.model, graph=graph),
                target=self.target,
                weights=dict(weights),
                level=0,
                device=self.device,
                graph_optimization=self.level,
            )
            got = session.run({s.name: self.inputs[s.name] for s in session.inputs})[name]
        except NetcError:
            return None  # nothing to learn from a cut the backend cannot run
        found, _ = _check(
            owner,
            (owner.name, result),
            node.tensor_type,
            np.asarray(got),
            self.want[name],
            name,
            self.device,
            "model",
            self.rtol,
            self.atol,
            cause="fused",
        )
        return found

    def first(self, output: str) -> Divergence | None:
        """The first value before `output` (in topological order) that differs alone while
        the values it reads agree alone; None when `output` itself agrees alone."""
        before = _ancestors(self.graph, output)
        order = [n.name for n in self.graph.nodes if n.name in before and _computed(n)]
        hi = len(order) - 1
        if hi < 0 or self.differs(order[hi]) is None:
            return None
        while True:
            lo = -1  # bisect for a value that differs after one that agrees
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if self.differs(order[mid]) is not None:
                    hi = mid
                else:
                    lo = mid
            # the values it reads directly must agree too, or the search goes on before them
            reads = [i for i in _reads(self.graph, order[hi]) if i in order]
            wrong = [order.index(i) for i in reads if self.differs(i) is not None]
            if not wrong:
                return self.differs(order[hi])
            hi = min(wrong)


def _computed(node: Node) -> bool:
    """Whether `node` is a value something computes: an op's single result or an item."""
    return node.op not in ("input", "param", "constant") and isinstance(node.type, TensorType)


def _reads(graph: Graph, name: str) -> list[str]:
    """The values `name` reads; through a multi-result op for its `item`s."""
    out = []
    for i in graph[name].inputs:
        out += list(graph[i].inputs) if isinstance(graph[i].type, tuple) else [i]
    return out


def _ancestors(graph: Graph, name: str) -> set[str]:
    seen: set[str] = set()
    stack = [name]
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(graph[n].inputs)
    return seen


def _output_divergence(
    graph: Graph, value: str, failed: OutputCheck, sizes: Mapping[str, int]
) -> Divergence:
    """The deployed output itself, when no single value is to blame."""
    node = graph[value]
    t = node.tensor_type
    shape = concrete_shape(t, sizes)
    return Divergence(
        node=node.name,
        op=node.op,
        result=None,
        span=node.span,
        calls=node.calls,
        origin=tuple(node.attrs.get("origin", ())),
        tensor=failed.output,
        dtype=t.dtype,
        shape=shape,
        got_shape=shape,
        got_dtype=str(numpy_dtype(t.dtype)),
        size=failed.size,
        max_abs=failed.max_abs,
        index=failed.index,
        got=failed.got,
        want=failed.want,
        bad=failed.bad,
        failure=failed.what,
        cause="output",
    )


def _words(items: list[str]) -> str:
    """a, b and c."""
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


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
