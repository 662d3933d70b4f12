"""The numpy interpreter of the IR: the semantic oracle every backend is compared against.

It runs each node with its op's `evaluate`, so constant folding and the reference cannot
disagree. bf16 is computed in float32.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from netc.ir import Graph, concrete_shape, numpy_dtype
from netc.ops import OPS
from netc.source import error


def check_inputs(graph: Graph, inputs: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Validate names, dtypes and shapes against the graph's signature; returns the symbol
    bindings (e.g. {"N": 3}). Raises NetcError with every problem listed."""
    problems, symbols = [], {}
    for name in graph.inputs:
        t = graph[name].tensor_type
        if name not in inputs:
            problems.append(f"missing input `{name}` {t}")
            continue
        a = np.asarray(inputs[name])
        if a.dtype != numpy_dtype(t.dtype):
            problems.append(f"input `{name}` has dtype {a.dtype}, the model needs {t}")
        if a.ndim != t.rank:
            problems.append(f"input `{name}` has shape {list(a.shape)}, the model needs {t}")
            continue
        for axis, (d, n) in enumerate(zip(t.shape, a.shape)):
            if isinstance(d, int):
                if d != n:
                    problems.append(
                        f"input `{name}` has shape {list(a.shape)}, the model needs "
                        f"{t} (axis {axis} must be {d})"
                    )
            elif "*" not in d:
                if symbols.setdefault(d, n) != n:
                    problems.append(
                        f"input `{name}` axis {axis} is {n}, but {d} = "
                        f"{symbols[d]} from another input"
                    )
    for name in inputs:
        if name not in graph.inputs:
            problems.append(f"unexpected input `{name}`; the model takes {', '.join(graph.inputs)}")
    if problems:
        raise error(f"the inputs do not fit model `{graph.name}`", notes=problems)
    return symbols


def run(
    graph: Graph, inputs: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Evaluate the graph on numpy inputs; returns the named outputs."""
    symbols = check_inputs(graph, inputs)
    env: dict[str, object] = {}
    for n in graph.nodes:
        if n.op == "input":
            env[n.name] = np.asarray(inputs[n.name])
        elif n.op == "param":
            env[n.name] = np.asarray(weights[n.name])
        elif n.op == "constant":
            env[n.name] = n.attrs["value"].array
        elif n.op == "item":
            env[n.name] = env[n.inputs[0]][n.attrs["index"]]  # type: ignore[index]
        else:
            value = OPS[n.op].evaluate([env[i] for i in n.inputs], n.attrs)
            env[n.name] = value
            _check_result(n, value, symbols)
    return {o: np.asarray(env[v]) for o, v in graph.outputs}


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
