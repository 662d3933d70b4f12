"""Every example, emitted to ONNX at the deployment default (-O2), runs in ONNX Runtime at
batch 1 and 3 and matches the numpy reference of the unoptimized graph.

Whole models accumulate rounding over tens of layers, so the tolerance is looser than the
per-op conformance suite's (docs/onnx.md, "Tolerances"): rtol 1e-3, atol 1e-4 for float32.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

import netc
from netc import driver
from netc.ir import numpy_dtype
from netc.runtime import load
from netc.runtime.reference import run as reference_run
from netc.weights import initial_weights

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.net"))
SYMBOLS = {"T": 9}  # time steps for sequence models; N is the batch


@cache
def compiled(path: Path):
    m = netc.compile(path)
    return m, initial_weights(m.graph, seed=0), load(driver.emit(m, level=2))


def feeds(graph, batch: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(batch)
    out = {}
    for name in graph.inputs:
        t = graph[name].tensor_type
        shape = [batch if d == "N" else SYMBOLS.get(d, d) for d in t.shape]
        if t.is_float:
            out[name] = rng.standard_normal(shape).astype(numpy_dtype(t.dtype))
        else:  # token ids: below the smallest vocabulary in the examples
            out[name] = rng.integers(0, 1000, shape).astype(numpy_dtype(t.dtype))
    return out


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_matches_the_reference_in_onnx_runtime(path, batch):
    model, weights, session = compiled(path)
    inputs = feeds(model.graph, batch)
    want = reference_run(model.graph, inputs, weights)
    got = session.run(inputs)
    assert set(got) == set(want)
    for name in want:
        assert got[name].shape == want[name].shape
        np.testing.assert_allclose(got[name], want[name], rtol=1e-3, atol=1e-4, err_msg=name)
