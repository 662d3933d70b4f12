"""Helpers for the pass tests (fixtures in conftest.py wrap them): random weights that make
folding visible, and inputs turned into weights or constants."""

from __future__ import annotations

import numpy as np

from netc.ir import Const, Graph, Node, numpy_dtype
from netc.weights import initial_weights


def random_weights(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """Keras' initial weights, with every zero- or one-initialized weight (biases, batchnorm's
    gamma, beta and statistics) randomized so that folding them is visible: variances and
    gammas in [0.5, 2), the others normal with deviation 0.3. Kernels keep Keras' scale, so
    deep examples stay numerically tame."""
    rng = np.random.default_rng(seed)
    inits = {n.name: n.attrs["init"] for n in graph.params}
    out = {}
    for name, value in initial_weights(graph, seed).items():
        if name.endswith(("moving_variance", "gamma")):
            value = rng.uniform(0.5, 2.0, value.shape).astype(value.dtype)
        elif inits[name] in ("zeros", "ones"):
            value = rng.normal(0.0, 0.3, value.shape).astype(value.dtype)
        out[name] = value
    return out


def freeze_inputs(
    graph: Graph, weights: dict[str, np.ndarray], *, as_weights=(), as_constants=(), seed: int = 1
) -> tuple[Graph, dict[str, np.ndarray]]:
    """Turn the named graph inputs into `param` nodes (with random weights) or `constant`
    nodes (with random values, or the values a mapping gives): the language has no tensor
    literals."""
    rng = np.random.default_rng(seed)
    nodes, weights = [], dict(weights)
    for n in graph.nodes:
        if n.name in as_weights or n.name in as_constants:
            t = n.tensor_type
            dtype = numpy_dtype(t.dtype)
            value = (
                rng.normal(0.0, 1.0, t.shape) if t.is_float else rng.integers(-3, 4, t.shape)
            ).astype(dtype)
            if isinstance(as_constants, dict) and n.name in as_constants:
                value = np.asarray(as_constants[n.name], dtype).reshape(t.shape)
            if n.name in as_weights:
                weights[n.name] = value
                n = Node(n.name, "param", (), {"init": "zeros", "trainable": True}, t, n.span)
            else:
                n = Node(n.name, "constant", (), {"value": Const(value)}, t, n.span)
        nodes.append(n)
    inputs = tuple(i for i in graph.inputs if i not in as_weights and i not in as_constants)
    return Graph(graph.name, tuple(nodes), inputs, graph.outputs), weights
