"""Checking passes as they run (`optimize(..., verify=True)`): IR invariants, weights that fit
the params, and the same outputs before and after each pass on seeded random inputs; plus
what `stats` records per pass.

Numbers are compared through the numpy reference runtime (netc.runtime.reference, imported
only here and only when checking: the oracle lives in the runtime), with every float tensor
computed in float64, so the comparison sees the pass's own error, not float32 rounding:

- symbols are bound to small sizes (`N` = 2, any other = 3); float inputs are standard
  normal, integer inputs lie in [0, 8) (below the smallest embedding vocabulary), bools
  are random;
- outputs agree when |after - before| <= atol + rtol * |before| elementwise, NaNs matching,
  with (rtol, atol) per output dtype in TOLERANCE: f32 (1e-4, 1e-5); f16 and bf16, whose
  folded weights are stored in 16 bits, (1e-2, 1e-3); f64 (1e-9, 1e-12); integer and bool
  outputs exactly;
- passes must not write into the weights they were given: the arrays they see are
  read-only views.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..ir import Const, Graph, IRError, TensorType, concrete_shape, numpy_dtype, verify
from .rewrite import ORIGIN, Weights

TOLERANCE = {"f32": (1e-4, 1e-5), "f16": (1e-2, 1e-3), "bf16": (1e-2, 1e-3), "f64": (1e-9, 1e-12)}
SYMBOL_SIZES = {"N": 2}
OTHER_SYMBOL_SIZE = 3
MAX_INT_INPUT = 8

Pass = Callable[[Graph, Weights], tuple[Graph, Weights]]


class PassError(IRError):
    """A pass broke the IR or changed what the model computes: a compiler bug."""


@dataclass
class PassStats:
    """What one pass did (summed over its runs): nodes removed, added and changed (same name,
    new node), how many became constants (`folded`) and how many absorbed others (`fused`)."""

    runs: int = 0
    changed_graph: int = 0
    removed: int = 0
    added: int = 0
    changed: int = 0
    folded: int = 0
    fused: int = 0
    seconds: float = 0.0


def record(
    stats: dict[str, PassStats], name: str, before: Graph, after: Graph, seconds: float
) -> None:
    """Add what `name` did from `before` to `after` to `stats[name]`."""
    s = stats.setdefault(name, PassStats())
    s.runs += 1
    s.seconds += seconds
    if after is before:
        return
    s.changed_graph += 1
    old, new = before.by_name, after.by_name
    s.removed += len(old.keys() - new.keys())
    s.added += len(new.keys() - old.keys())
    for name_, node in new.items():
        was = old.get(name_)
        if was is None or was is node:
            continue
        if was != node:
            s.changed += 1
        if node.op == "constant" and was.op != "constant":
            s.folded += 1
        if len(node.attrs.get(ORIGIN, ())) > len(was.attrs.get(ORIGIN, ())):
            s.fused += 1


class Checker:
    """Runs the reference on one set of random inputs and compares each pass's outputs."""

    def __init__(self, graph: Graph, weights: Weights, seed: int = 0):
        self.signature = _signature(graph)
        self.inputs = random_inputs(graph, seed)
        self.outputs = self.run(graph, weights)

    def run(self, graph: Graph, weights: Weights) -> dict[str, np.ndarray]:
        from ..runtime import reference  # the oracle; only checking needs it

        g, w = as_float64(graph, weights)
        with np.errstate(all="ignore"):
            return reference.run(g, self.inputs, w)

    def check(
        self,
        name: str,
        before: Graph,
        after: Graph,
        weights: Weights,
        *,
        weights_changed: bool = True,
    ) -> None:
        """Raise PassError if pass `name`, which made `after` (and `weights`) from `before`,
        broke an invariant or changed an output."""
        try:
            verify(after, after=name)
        except IRError as e:
            raise PassError(str(e)) from None
        if _signature(after) != self.signature:
            raise PassError(
                f"pass `{name}` changed the model's inputs or outputs: "
                f"{self.signature} became {_signature(after)}"
            )
        _check_weights(name, after, weights)
        if after is before and not weights_changed:
            return
        outputs = self.run(after, weights)
        for out, value in after.outputs:
            _compare(name, out, self.outputs[out], outputs[out], after[value].tensor_type.dtype)
        self.outputs = outputs


def timed(pass_: Pass, graph: Graph, weights: Weights) -> tuple[Graph, Weights, float]:
    start = time.perf_counter()
    g, w = pass_(graph, weights)
    return g, w, time.perf_counter() - start


def read_only(weights: Weights) -> dict[str, np.ndarray]:
    """Read-only views of the weights: a pass that writes into one fails loudly."""
    out = {}
    for k, v in weights.items():
        view = np.asarray(v).view()
        view.setflags(write=False)
        out[k] = view
    return out


def _signature(graph: Graph) -> tuple[Any, ...]:
    return (
        tuple((i, graph[i].type) for i in graph.inputs),
        tuple((o, graph[v].type) for o, v in graph.outputs),
    )


def _check_weights(name: str, graph: Graph, weights: Weights) -> None:
    problems = []
    params = {n.name: n.tensor_type for n in graph.params}
    for p, t in params.items():
        if p not in weights:
            problems.append(f"param `{p}` has no weight")
            continue
        w = np.asarray(weights[p])
        if w.shape != tuple(t.shape) or w.dtype != numpy_dtype(t.dtype):
            problems.append(f"weight `{p}` is {w.dtype}{list(w.shape)}, its param says {t}")
    problems += [f"weight `{k}` has no param" for k in weights if k not in params]
    if problems:
        raise PassError(
            f"pass `{name}` left weights that do not fit the graph: " + "; ".join(problems)
        )


def _compare(name: str, output: str, before: np.ndarray, after: np.ndarray, dtype: str) -> None:
    if before.shape != after.shape:
        raise PassError(
            f"pass `{name}` changed output `{output}`'s shape from "
            f"{list(before.shape)} to {list(after.shape)}"
        )
    if dtype not in TOLERANCE:
        if not np.array_equal(before, after):
            bad = np.argwhere(before != after)[0]
            raise PassError(
                f"pass `{name}` changed output `{output}` at index {tuple(bad)}: "
                f"{before[tuple(bad)]} became {after[tuple(bad)]}"
            )
        return
    rtol, atol = TOLERANCE[dtype]
    close = np.isclose(after, before, rtol=rtol, atol=atol, equal_nan=True)
    if not close.all():
        bad = tuple(int(i) for i in np.argwhere(~close)[0])
        diff = np.abs(after.astype(np.float64) - before)
        raise PassError(
            f"pass `{name}` changed output `{output}` beyond the {dtype} tolerance (rtol "
            f"{rtol:g}, atol {atol:g}): {int((~close).sum())} of {close.size} values differ, "
            f"first at index {bad}: {before[bad]!r} became {after[bad]!r}; max abs "
            f"difference {np.nanmax(diff):.3g}"
        )


def symbol_sizes(graph: Graph) -> dict[str, int]:
    """Small sizes for the graph's symbolic input dims: N = 2, any other symbol = 3."""
    out: dict[str, int] = {}
    for i in graph.inputs:
        for d in graph[i].tensor_type.shape:
            if isinstance(d, str) and "*" not in d:
                out.setdefault(d, SYMBOL_SIZES.get(d, OTHER_SYMBOL_SIZE))
    return out


def random_inputs(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded random values for every graph input (floats in float64; see the module doc)."""
    rng = np.random.default_rng(seed)
    sizes = symbol_sizes(graph)
    vocab = min(
        (n.attrs["vocab"] for n in graph.nodes if n.op == "embedding"), default=MAX_INT_INPUT
    )
    out: dict[str, np.ndarray] = {}
    for i in graph.inputs:
        t = graph[i].tensor_type
        shape = concrete_shape(t, sizes)
        if t.is_float:
            out[i] = rng.standard_normal(shape)
        elif t.dtype == "bool":
            out[i] = rng.random(shape) < 0.5
        else:
            out[i] = rng.integers(0, min(vocab, MAX_INT_INPUT), shape).astype(numpy_dtype(t.dtype))
    return out


def as_float64(graph: Graph, weights: Weights) -> tuple[Graph, dict[str, np.ndarray]]:
    """The same graph computing every float tensor in float64 (checking only)."""

    def wide(t: Any) -> Any:
        if isinstance(t, tuple):
            return tuple(wide(x) for x in t)
        if isinstance(t, TensorType) and t.is_float:
            return t.with_dtype("f64")
        return t

    nodes = []
    for n in graph.nodes:
        attrs: Mapping[str, Any] = n.attrs
        if n.op == "constant" and n.attrs["value"].array.dtype.kind == "f":
            attrs = {**attrs, "value": Const(n.attrs["value"].array.astype(np.float64))}
        elif n.op == "cast" and n.attrs["dtype"] in ("f32", "f16", "bf16"):
            attrs = {**attrs, "dtype": "f64"}
        nodes.append(replace(n, type=wide(n.type), attrs=attrs))
    w = {
        k: (np.asarray(v, np.float64) if np.asarray(v).dtype.kind == "f" else np.asarray(v))
        for k, v in weights.items()
    }
    return replace(graph, nodes=tuple(nodes)), w
