"""Op conformance of the Keras backend: every case of conformance.py lowered to a Keras model
(randomized weights), run as `model(x, training=False)` at batch 1 and 3 on every input kind
(normal, all negative, large, small with zeros), and compared with the float64 reference within
netc.runtime.tolerance's op tolerance. The cases that use netc's own layers (and a few of Keras'
stateful ones) also go through `.keras` and `keras.models.load_model`, which must rebuild a
model that gives the same outputs; together they cover every custom layer class.
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from conformance import CASES, INPUT_KINDS, build, compare, inputs_for

import netc.runtime
from netc.backends import keras_layers, to_keras  # imports TensorFlow and Keras, quietly
from netc.ops import OPS
from netc.runtime import keras as keras_runtime
from netc.runtime import reference

keras = keras_layers.keras  # imported by netc after TensorFlow's quiet start-up

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not keras_runtime.gpu_available(), reason="no GPU for TensorFlow"),
    ),
]

# Cases saved to .keras and loaded back: together they use every layer of keras_layers.py
# (checked below), plus Keras' recurrent, attention and normalization layers.
ROUND_TRIP = (
    "log-rank2",  # Unary
    "gelu-tanh",  # Unary (gelu_tanh)
    "div-broadcast",  # Binary, two inputs
    "add-scalar",  # Binary with a constant
    "sub-per_channel_lists",  # Binary with constants on both sides of a chain
    "mul-layer_scale_weight",  # Binary owning a weight
    "broadcast_like-class_token",  # Binary (broadcast_like) owning a weight
    "sigmoid-of_weight",  # Unary of a weight
    "matmul-broadcast",  # Binary (matmul)
    "conv2d-explicit_pads",  # PaddedConv2D
    "conv1d-explicit_pads",  # PaddedConv1D
    "conv3d-explicit_pads",  # PaddedConv3D
    "depthwise_conv1d-explicit_pads",  # PaddedDepthwiseConv1D
    "depthwise_conv2d-explicit_pads",  # PaddedDepthwiseConv2D
    "separable_conv1d-explicit_pads",  # PaddedSeparableConv1D
    "separable_conv2d-explicit_pads",  # PaddedSeparableConv2D
    "maxpool-explicit_pads",  # PaddedMaxPooling2D
    "maxpool-rank1_explicit",  # PaddedMaxPooling1D
    "maxpool-rank3_explicit",  # PaddedMaxPooling3D
    "avgpool-explicit_pads",  # PaddedAveragePooling2D
    "avgpool-rank1_explicit",  # PaddedAveragePooling1D
    "avgpool-rank3_explicit",  # PaddedAveragePooling3D
    "conv1d_transpose-explicit_pads",  # CroppedConv1DTranspose
    "conv2d_transpose-explicit_pads",  # CroppedConv2DTranspose
    "conv2d_transpose-dilation",  # CroppedConv2DTranspose, dilated
    "conv3d_transpose-explicit_pads",  # CroppedConv3DTranspose
    "reduce_sum-axis1",  # Reduce
    "argmax-axis1",  # ArgMax
    "cast-to_i32",  # Cast
    "transpose-batch_axis",  # Transpose
    "split-sizes_axis1",  # Split
    "slice-negative",  # Slice
    "squeeze-axis1",  # Squeeze
    "expand_dims-axis1",  # ExpandDims
    "concat-axis0",  # Concat
    "pad-edge",  # Pad
    "pad-reflect",  # Pad
    "positional_embedding-symbolic",  # PositionalEmbedding
    "lstm-state",
    "gru-reset_before",
    "multi_head_attention-causal",
    "batchnorm-after_conv",
    "layernorm-two_axes",
)

IDS = [f"{c[0]}-{c[1]}" for c in CASES]
BY_ID = dict(zip(IDS, CASES, strict=True))


def lower(case_id: str):
    """The case's graph, weights and Keras model."""
    op, _, inputs, body = BY_ID[case_id]
    graph, weights = build(op, inputs, body)
    return graph, weights, to_keras.emit(graph, weights)


lowered_once = cache(lower)  # the round-trip cases, which the coverage test reads again


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case_id", IDS)
def test_op_matches_the_reference(case_id: str, device: str, tmp_path):
    graph, weights, model = (lowered_once if case_id in ROUND_TRIP else lower)(case_id)
    session = netc.runtime.load(model, device=device)
    assert session.device == device
    sessions = {"built": session}
    if case_id in ROUND_TRIP:
        path = tmp_path / "m.keras"
        to_keras.save(model, path)
        loaded = keras.models.load_model(path)
        assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
        sessions["loaded"] = netc.runtime.load(loaded, device=device)
    for batch in (1, 3):
        for kind in INPUT_KINDS:
            feed = inputs_for(graph, batch, kind)
            want = reference.run(graph, feed, weights, wide=True)
            for how, s in sessions.items():
                try:
                    compare(s.run(feed), want, device)
                except AssertionError as e:
                    raise AssertionError(
                        f"{how} model, {kind} inputs, batch {batch}: {e}"
                    ) from None


def test_round_trip_cases_cover_every_custom_layer():
    used: set[type] = set()
    for case_id in ROUND_TRIP:
        _, _, model = lowered_once(case_id)
        used |= {type(model)} | {type(layer) for layer in model.layers}
    assert sorted(c.__name__ for c in set(keras_layers.CUSTOM_LAYERS) - used) == []


def test_every_op_has_a_keras_rule():
    assert to_keras.RULES.missing(OPS) == []


def test_loaded_outputs_are_bit_identical():
    # the same layers and weights compute the same floats after a reload: nothing is lost
    graph, weights, model = lowered_once("conv2d-explicit_pads")
    feed = inputs_for(graph, 3)
    x = feed[graph.inputs[0]]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.keras"
        to_keras.save(model, path)
        loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(
        np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False))
    )
