"""Op conformance of the ONNX backend: every case of conformance.py compiled, emitted, run in
ONNX Runtime with its optimizer off and at every level (a runtime's own fusions can be wrong),
at batch 1 and 3, on every input kind (normal, all negative, large, small with zeros), and
compared with the reference within netc.runtime.tolerance's op tolerance. Every model passes
onnx.checker's full check first.
"""

from __future__ import annotations

import onnx
import pytest
from conformance import CASES, INPUT_KINDS, build, compare, inputs_for

import netc.runtime
from netc.backends import to_onnx
from netc.ops import OPS
from netc.runtime import onnx as onnx_runtime
from netc.runtime import reference

LEVELS = ("disable", "basic", "extended", "all")  # ONNX Runtime's graph optimization levels

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(
            not onnx_runtime.cuda_available(), reason="no CUDA GPU for ONNX Runtime"
        ),
    ),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    ("op", "name", "inputs", "body"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_op_matches_the_reference(op: str, name: str, inputs: str, body: str, device: str):
    graph, weights = build(op, inputs, body)
    model = to_onnx.emit(graph, weights)
    onnx.checker.check_model(model, full_check=True)
    sessions = {
        level: netc.runtime.load(model, device=device, graph_optimization=level) for level in LEVELS
    }
    for batch in (1, 3):
        for kind in INPUT_KINDS:
            feed = inputs_for(graph, batch, kind)
            want = reference.run(graph, feed, weights, wide=True)
            for level, session in sessions.items():
                assert session.device == device
                try:
                    compare(session.run(feed), want, device)
                except AssertionError as e:
                    raise AssertionError(
                        f"{kind} inputs, batch {batch}, level {level}: {e}"
                    ) from None


def test_every_op_has_a_conformance_case():
    covered = {op for op, *_ in CASES}
    assert sorted(set(OPS) - covered) == []
