"""Helpers for the pass tests (fixtures in conftest.py wrap them): inputs turned into weights
or constants. Weights that make folding visible are netc.weights.randomized_weights."""

from __future__ import annotations

import numpy as np

from netc.ir import Const, Graph, Node, numpy_dtype


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
