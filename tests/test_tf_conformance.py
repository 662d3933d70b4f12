"""Op conformance of the TF backend: every case of conformance.py (and TF_CASES, this
backend's own) lowered to a traced tf.function (randomized weights), run through netc's TF
session both as traced (TensorFlow's graph optimizer, grappler, on) and jit-compiled (XLA: a
different compiler, which `--xla` users get), at batch 1 and 3 on every input kind (normal, all
negative, large, small with zeros), and compared with the float64 reference within
netc.runtime.tolerance's op tolerance. A handful of representative cases also go through a
SavedModel folder and back.
"""

from __future__ import annotations

import numpy as np
import pytest
from conformance import CASES, IMG, INPUT_KINDS, build, compare, inputs_for

import netc.runtime
from netc.backends import to_tf
from netc.ops import OPS
from netc.runtime import reference
from netc.runtime import tf as tf_runtime
from netc.weights import randomized_weights

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not tf_runtime.gpu_available(), reason="no GPU for TensorFlow"),
    ),
]
MODES = ("graph", "xla")  # the traced function as it is, and jit-compiled

# Cases of this backend's own, beside every case of conformance.py: where TF lacks a kernel
# the rule works around (float16 3-D pools on CPU, groups in Conv3D, a grouped Conv2D that
# grappler must not fuse with its bias), groups that are a depthwise convolution, and the
# forms chosen for speed: depthwise convolutions as sums of taps under XLA (unequal strides,
# symbolic sizes, float16), max pooling's explicit pads, attention's merged projections with
# the query's scale in its kernel (float16, a key and value of other sizes).
TF_CASES = [
    (
        "conv2d",
        "groups_per_channel",
        IMG,
        'y = x |> conv2d(6, 3, stride=2, padding="same", groups=3)',
    ),
    (
        "conv1d",
        "groups_per_channel",
        "x: f32[N, 9, 4]",
        "y = x |> conv1d(8, 3, stride=2, groups=4)",
    ),
    ("conv3d", "groups", "x: f32[N, 4, 5, 4, 4]", "y = x |> conv3d(6, 2, groups=2)"),
    ("fused_conv", "groups_relu", "x: f32[N, 6, 5, 4]", "y = x |> conv2d(6, 3, groups=2) |> relu"),
    ("fused_conv", "groups_per_channel_relu6", IMG, "y = x |> conv2d(3, 3, groups=3) |> relu6"),
    ("maxpool", "f16_rank3", "x: f16[N, 5, 6, 4, 2]", 'y = x |> maxpool(2, padding="same")'),
    (
        "avgpool",
        "f16_rank3_explicit",
        "x: f16[N, 5, 6, 4, 2]",
        "y = x |> avgpool(2, padding=((1, 0), (0, 1), (1, 1)))",
    ),
]
TF_CASES += [
    (
        "depthwise_conv2d",
        "unequal_strides_multiplier",
        "x: f32[N, 9, 8, 3]",
        'y = x |> depthwise_conv2d((3, 2), stride=(2, 3), depth_multiplier=2, padding="same")',
    ),
    (
        "depthwise_conv2d",
        "symbolic_spatial_dilated",
        "x: f32[N, H, W, 3]",
        'y = x |> depthwise_conv2d(3, dilation=2, depth_multiplier=2, padding="same")',
    ),
    (
        "fused_conv",
        "depthwise_f16_relu6",
        "x: f16[N, 7, 6, 3]",
        'y = x |> depthwise_conv2d(3, stride=2, padding="same") |> relu6',
    ),
    (
        "maxpool",
        "f16_explicit",
        "x: f16[N, 7, 6, 3]",
        "y = x |> maxpool(3, stride=2, padding=((1, 1), (2, 1)))",
    ),
    (
        "multi_head_attention",
        "f16",
        "x: f16[N, 5, 6]",
        "y = x |> multi_head_attention(heads=2, key_dim=3)",
    ),
    (
        "multi_head_attention",
        "cross_value_dim",
        "x: f32[N, 3, 6], z: f32[N, T, 4]",
        "y = multi_head_attention(x, z, heads=2, key_dim=3, value_dim=5, bias=false)",
    ),
]
ALL_CASES = CASES + TF_CASES
IDS = [f"{c[0]}-{c[1]}" for c in ALL_CASES]
BY_ID = dict(zip(IDS, ALL_CASES, strict=True))

# Cases saved as a SavedModel and loaded back: several outputs, symbolic dims, integer and
# float16 values, a recurrent scan, attention with a run-time mask, a fused conv.
ROUND_TRIP = (
    "lstm-symbolic_steps_state",
    "conv2d-symbolic_spatial",
    "embedding-i64_rank3",
    "cast-to_f16",
    "multi_head_attention-causal_symbolic",
    "fused_conv-residual_relu",
    "split-after_conv",
)


def _check(graph, weights, sessions, device: str) -> None:
    for batch in (1, 3):
        for kind in INPUT_KINDS:
            feed = inputs_for(graph, batch, kind)
            want = reference.run(graph, feed, weights, wide=True)
            for mode, session in sessions.items():
                try:
                    compare(session.run(feed), want, device)
                except AssertionError as e:
                    raise AssertionError(f"{kind} inputs, batch {batch}, {mode}: {e}") from None


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("op", "name", "inputs", "body"), ALL_CASES, ids=IDS)
def test_op_matches_the_reference(op: str, name: str, inputs: str, body: str, device: str):
    graph, weights = build(op, inputs, body)
    sessions = {
        mode: netc.runtime.load(to_tf.emit(graph, weights, xla=mode == "xla"), device=device)
        for mode in MODES
    }
    for mode, session in sessions.items():
        assert (session.device, session.xla) == (device, mode == "xla")
    _check(graph, weights, sessions, device)


@pytest.mark.parametrize("case", ROUND_TRIP)
def test_a_saved_model_computes_what_the_artifact_did(case: str, tmp_path):
    op, _, inputs, body = BY_ID[case]
    graph, weights = build(op, inputs, body)
    sessions = {}
    for mode in MODES:
        path = tmp_path / f"{mode}.savedmodel"
        to_tf.save(to_tf.emit(graph, weights, xla=mode == "xla"), path)
        sessions[mode] = netc.runtime.load(path)
        assert sessions[mode].xla == (mode == "xla")
        # netc's own signature comes back, symbols included
        assert sessions[mode].inputs == netc.runtime.api.graph_signature(graph)[0]
        assert sessions[mode].outputs == netc.runtime.api.graph_signature(graph)[1]
    _check(graph, weights, sessions, "cpu")


def test_the_round_trip_cases_exist():
    assert set(ROUND_TRIP) <= set(BY_ID)


def test_every_op_has_a_rule():
    assert to_tf.RULES.missing(OPS) == []


def test_every_op_has_a_conformance_case():
    assert sorted(set(OPS) - {op for op, *_ in CASES}) == []


def test_bf16_values_run_in_bfloat16():
    """numpy has no bfloat16: a bf16 input takes float32 arrays, rounded to bfloat16 inside, and
    a bf16 output comes back as float32 holding bfloat16 values; in between TensorFlow computes
    in bfloat16. The reference computes bf16 in float32 (the tolerance table has no bf16 row), so
    this comparison allows bfloat16's rounding: 8 significant bits, a relative step of 2**-8 per
    op, over the six ops on the way to `y`."""
    graph = netc.compile(
        "model m(x: bf16[N, 6, 5, 3]) -> (y: tensor, z: tensor) {\n"
        '  h = x |> conv2d(4, 3, padding="same") |> relu |> layernorm\n'
        "  y = h |> global_avgpool |> dense(3) |> softmax\n"
        '  z = h |> cast("f32")\n'
        "}\n"
    ).graph
    weights = randomized_weights(graph)
    session = netc.runtime.load(to_tf.emit(graph, weights))
    for batch in (1, 3):
        for kind in INPUT_KINDS:
            feed = inputs_for(graph, batch, kind)
            got = session.run(feed)
            assert {k: v.dtype for k, v in got.items()} == {"y": np.float32, "z": np.float32}
            for v in got.values():  # bfloat16 values, in float32 arrays
                assert np.array_equal(v, v.astype("bfloat16").astype(np.float32))
            rounded = {"x": feed["x"].astype("bfloat16").astype(np.float32)}
            want = reference.run(graph, rounded, weights, wide=True)
            for k, w in want.items():
                np.testing.assert_allclose(
                    got[k], w, rtol=2**-5, atol=2**-5 * np.abs(w).max(), err_msg=f"{k}, {kind}"
                )
