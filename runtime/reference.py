"""The numpy interpreter of the IR: the semantic oracle every backend is compared against.

It runs each node with its op's `evaluate`, so constant folding and the reference cannot
disagree. bf16 is computed in float32.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from netc.ir import Graph, Node, concrete_shape, numpy_dtype
from netc.ops import OPS

from .api import check_feed, graph_signature


def check_inputs(graph: Graph, inputs: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Validate names, dtypes and shapes against the graph's signature (the runtime's one
    check); returns the symbol bindings (e.g. {"N": 3}). Raises NetcError listing every
    problem."""
    symbols: dict[str, int] = {}
    check_feed(graph.name, graph_signature(graph)[0], inputs, symbols)
    return symbols


def run(
    graph: Graph,
    inputs: Mapping[str, np.ndarray],
    weights: Mapping[str, np.ndarray],
    *,
    wide: bool = False,
) -> dict[str, np.ndarray]:
    """Evaluate the graph on numpy inputs; returns the named outputs. `wide` computes every
    float value in float64 and rounds the outputs to their dtypes once, at the end: the answer
    a backend's float32 (or float16) result is judged against, free of the reference's own
    rounding."""
    symbols = check_inputs(graph, inputs)
    keep = widened if wide else np.asarray
    env: dict[str, object] = {}
    for n in graph.nodes:
        if n.op == "input":
            env[n.name] = keep(inputs[n.name])
        elif n.op == "param":
            env[n.name] = keep(weights[n.name])
        elif n.op == "constant":
            env[n.name] = keep(n.attrs["value"].array)
        elif n.op == "item":
            env[n.name] = env[n.inputs[0]][n.attrs["index"]]  # type: ignore[index]
        else:
            with np.errstate(over="ignore"):  # exp(100) is inf in float32, as in every backend
                value = OPS[n.op].evaluate(
                    [env[i] for i in n.inputs], wide_attrs(n) if wide else n.attrs
                )
            env[n.name] = value
            _check_result(n, value, symbols)
    return {
        o: np.asarray(env[v]).astype(numpy_dtype(graph[v].tensor_type.dtype), copy=False)
        for o, v in graph.outputs
    }


def widened(a: Any) -> np.ndarray:
    """An array with floats in float64 (other dtypes as they are)."""
    a = np.asarray(a)
    return a.astype(np.float64) if a.dtype.kind == "f" else a


def wide_attrs(node: Node) -> Mapping[str, Any]:
    """`node`'s attributes for a float64 evaluation: a cast to a float computes in float64."""
    if node.op == "cast" and node.attrs["dtype"] in ("f32", "f16", "bf16"):
        return {**node.attrs, "dtype": "f64"}
    return node.attrs


def _check_result(node, value, symbols) -> None:
    """The evaluated value must have the inferred shape: a compiler bug otherwise."""
    types = node.type if isinstance(node.type, tuple) else (node.type,)
    values = value if isinstance(node.type, tuple) else (value,)
    for t, v in zip(types, values):
        want = concrete_shape(t, symbols)
        got = tuple(np.shape(v))
        assert got == want or any(isinstance(d, str) and "*" in d for d in t.shape), (
            f"reference: `{node.name}` ({node.op}) computed shape {got}, its type says {t}"
        )
