"""Weights for whole-model tests: netc.weights.randomized_weights, with the LSTM bias drawn too.

randomized_weights draws only the zero- and one-initialized weights; the LSTM bias is
initialized by "lstm_bias" (zeros, ones for the forget gate), so its input, cell and output
gates would stay zero and a lowering that dropped them would pass.
"""

from __future__ import annotations

import numpy as np

from netc.ir import Graph
from netc.weights import randomized_weights


def drawn_weights(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """randomized_weights(graph, seed) with every "lstm_bias" weight drawn as well: normal,
    deviation 0.3, around Keras' initial value (so the forget gate stays mostly open)."""
    weights = randomized_weights(graph, seed)
    rng = np.random.default_rng([seed, 1])
    for n in graph.params:
        if n.attrs["init"] == "lstm_bias":
            w = weights[n.name]
            weights[n.name] = (w + rng.normal(0.0, 0.3, w.shape)).astype(w.dtype)
    return weights
