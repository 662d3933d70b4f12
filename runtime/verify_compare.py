"""`netc verify`'s comparisons: the deployed outputs against the reference, each node on its
own against its op's numpy meaning, and the search for a fusion that goes wrong only when
values are computed alone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from netc.ir import Graph, Node, TensorType, concrete_shape, numpy_dtype
from netc.ops import OPS
from netc.source import NetcError
from netc.summary import Model

from . import reference
from .reference import wide_attrs, widened
from .tolerance import elementwise, mismatch, scaled_atol, tolerance
from .verify_report import Check, Divergence, OutputCheck
from .verify_values import Backend, Key, result_type


def output_check(
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


def _types(node: Node) -> tuple[TensorType, ...]:
    return node.type if isinstance(node.type, tuple) else (node.tensor_type,)


def compare(
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
            t = result_type(graph, key)
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
    t = result_type(graph, key)
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


def explain(
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
