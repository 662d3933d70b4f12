"""`netc verify`'s inputs: a size for every symbol, and seeded inputs of each kind (standard
normal, all negative, large, near zero), the ones runtimes' fusions go wrong on."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from netc.ir import Graph, concrete_shape, numpy_dtype

OTHER_SYMBOL_SIZE = 5  # symbols other than the batch: distinct from the batch and small


MAX_INT_INPUT = 8


# The input distributions of the deployed check, and how a message names them.
INPUT_KINDS = {
    "normal": "standard normal",  # N(0, 1)
    "negative": "all-negative",  # -|N(0, 1)| - 0.1
    "large": "large",  # 10 N(0, 1)
    "small": "near-zero",  # 1e-3 N(0, 1), 30% exact zeros
}


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
