"""The example networks: each compiles cleanly, has its published parameter count and its
declared output types; the three smallest compute what their Keras layers compute (numpy
written here, against the reference), and every example keeps its values through the
optimizer (-O1, -O2 on the reference against the float64 reference of the graph as written).
Weights are randomized and inputs are conformance.py's edge kinds."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
from conformance import INPUT_KINDS, inputs_for

import netc
from netc import driver
from netc.runtime import reference
from netc.runtime.tolerance import assert_close
from netc.weights import randomized_weights

EXAMPLES_DIR = Path(__file__).parent.parent / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.net"))


def compile_example(stem: str) -> netc.Model:
    return netc.compile(EXAMPLES_DIR / f"{stem}.net")


def test_the_examples_folder_is_not_empty():
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_compiles_without_errors_or_warnings(path):
    model = netc.compile(path)
    assert model.warnings == (), "\n".join(str(w) for w in model.warnings)
    assert model.total_params > 0 and model.flops > 0


# Exact parameter counts, batchnorm moving statistics included (as Keras counts them).
PARAMS = {
    # keras.applications.ResNet50(weights=None) at 224x224x3, 1000 classes.
    "resnet50": 25_636_712,
    # keras.applications.MobileNetV2(alpha=1.0, weights=None) at 224x224x3, 1000 classes.
    "mobilenet_v2": 3_538_984,
    # keras.applications.InceptionV3 / Xception (299x299x3) and MobileNetV3Small (224x224x3),
    # weights=None, 1000 classes.
    "inception_v3": 23_851_784,
    "xception": 22_910_480,
    "mobilenet_v3_small": 2_554_968,
    # keras.applications.ConvNeXtTiny(weights=None) at 224x224x3, 1000 classes.
    "convnext_tiny": 28_589_128,
    # The Keras MNIST MLP example (Dense 512, Dropout, Dense 512, Dropout, Dense 10).
    "mnist_mlp": 669_706,
    # The rest are sums of Keras' per-layer formulas for the same layer stacks.
    # LeNet-5: 156 + 2,416 + 48,120 + 10,164 + 850.
    "lenet": 61_706,
    # torchvision's resnet18 (11,689,512, moving statistics not counted) + 2 x 4,800 of them.
    "resnet18": 11_699_112,
    # LSTM: 4u(F + u + 1) per layer: 4*64*73 + 4*32*97, then dense 32 + 1.
    "lstm_forecaster": 31_137,
    # GRU(reset_after): 3u(F + u) + 6u; conv1d without bias; batchnorm 4 per channel.
    "speech_classifier": 133_644,
    # Embeddings 20000*128 + 128*128; per block: attention 66,048, two layernorms 512,
    # feed-forward 66,048 + 65,664; dense 128*2 + 2.
    "transformer_classifier": 2_973_186,
    "video_classifier": 1_191_685,
    "unet": 1_941_105,
}


@pytest.mark.parametrize("stem, params", PARAMS.items(), ids=list(PARAMS))
def test_example_has_its_exact_parameter_count(stem, params):
    assert compile_example(stem).total_params == params


# Moving statistics are the only non-trainable weights.
NON_TRAINABLE = {
    "resnet50": 53_120,
    "mobilenet_v2": 34_112,
    "resnet18": 9_600,
    "inception_v3": 34_432,
    "xception": 54_528,
    "mobilenet_v3_small": 12_112,
}


@pytest.mark.parametrize("stem, frozen", NON_TRAINABLE.items(), ids=list(NON_TRAINABLE))
def test_batchnorm_statistics_are_the_non_trainable_weights(stem, frozen):
    model = compile_example(stem)
    assert model.total_params - model.trainable_params == frozen


OUTPUTS = {
    "mnist_mlp": {"logits": "f32[N, 10]"},
    "lenet": {"logits": "f32[N, 10]"},
    "resnet18": {"logits": "f32[N, 1000]"},
    "resnet50": {"probs": "f32[N, 1000]"},
    "mobilenet_v2": {"probs": "f32[N, 1000]"},
    "mobilenet_v3_small": {"probs": "f32[N, 1000]"},
    "convnext_tiny": {"probs": "f32[N, 1000]"},
    "inception_v3": {"probs": "f32[N, 1000]"},
    "xception": {"probs": "f32[N, 1000]"},
    "transformer_classifier": {"logits": "f32[N, 2]"},
    "lstm_forecaster": {"forecast": "f32[N, 1]"},
    "speech_classifier": {"logits": "f32[N, 12]"},
    "video_classifier": {"logits": "f32[N, 101]"},
    "unet": {"mask": "f32[N, 128, 128, 1]"},
}


@pytest.mark.parametrize("stem, outputs", OUTPUTS.items(), ids=list(OUTPUTS))
def test_example_output_types(stem, outputs):
    g = compile_example(stem).graph
    assert {name: str(g[value].type) for name, value in g.outputs} == outputs


def test_every_example_has_its_outputs_listed_here():
    assert sorted(p.stem for p in EXAMPLES) == sorted(OUTPUTS)


def test_mnist_mlp_train_section():
    train = compile_example("mnist_mlp").train
    assert train is not None
    assert (train.loss.name, dict(train.loss.kwargs)) == (
        "sparse_categorical_crossentropy",
        {"from_logits": True},
    )
    assert (train.optimizer.name, dict(train.optimizer.kwargs)) == ("adam", {"learning_rate": 1e-3})
    assert (train.metrics, train.epochs, train.batch_size) == (("accuracy",), 5, 128)


# --- values ------------------------------------------------------------------------------------
#
# Independent numpy forward passes of the three smallest examples, written from Keras' layer
# definitions (not from netc's ops), against the reference; then every example through the
# optimizer, against the float64 reference of the unoptimized graph. Weights are randomized
# (no zero bias), inputs are the edge kinds of conformance.py.


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _dense(x: np.ndarray, w: dict[str, np.ndarray], name: str) -> np.ndarray:
    return x @ w[f"{name}.kernel"] + w[f"{name}.bias"]


def _mnist_mlp(x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    h = x.reshape(len(x), -1)
    for layer in ("hidden_0.dense", "hidden_1.dense"):
        h = np.maximum(_dense(h, w, layer), 0.0)  # dropout: the identity at inference
    return _dense(h, w, "dense")


def _conv_relu_avgpool(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, pad: int):
    """Keras Conv2D (stride 1, channels-last) + ReLU + AveragePooling2D(2)."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    k = kernel.shape[0]
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))  # [N,H,W,C,k,k]
    y = np.maximum(np.einsum("nhwcij,ijco->nhwo", windows, kernel) + bias, 0.0)
    n, h, wd, c = y.shape
    return y[:, : h // 2 * 2, : wd // 2 * 2].reshape(n, h // 2, 2, wd // 2, 2, c).mean((2, 4))


def _lenet(x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    for i, pad in ((0, 2), (1, 0)):
        layer = f"conv_pool_{i}.conv2d"
        x = _conv_relu_avgpool(x, w[f"{layer}.kernel"], w[f"{layer}.bias"], pad)
    h = x.reshape(len(x), -1)  # channels-last order, as Keras' Flatten
    for layer in ("dense", "dense_1"):
        h = np.maximum(_dense(h, w, layer), 0.0)
    return _dense(h, w, "dense_2")


def _lstm(x: np.ndarray, w: dict[str, np.ndarray], name: str, sequences: bool) -> np.ndarray:
    """Keras LSTM: gates i, f, c, o in the kernel's columns; tanh and sigmoid."""
    kernel, recurrent, bias = (w[f"{name}.{k}"] for k in ("kernel", "recurrent_kernel", "bias"))
    units = recurrent.shape[0]
    h = c = np.zeros((len(x), units))
    out = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, f, g, o = (z[:, j * units : (j + 1) * units] for j in range(4))
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.stack(out, axis=1) if sequences else h


def _lstm_forecaster(x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    h = _lstm(_lstm(x, w, "lstm", sequences=True), w, "lstm_1", sequences=False)
    return _dense(h, w, "dense")


FORWARD = {"mnist_mlp": _mnist_mlp, "lenet": _lenet, "lstm_forecaster": _lstm_forecaster}


@pytest.mark.parametrize("kind", INPUT_KINDS)
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("stem", FORWARD)
def test_small_example_computes_its_keras_layers_on_the_reference(stem, batch, kind):
    model = compile_example(stem)
    weights = randomized_weights(model.graph, seed=batch)
    (name,) = model.graph.inputs
    ((output, _),) = model.graph.outputs
    for steps in (5, 11) if stem == "lstm_forecaster" else (None,):
        feed = inputs_for(model.graph, batch, kind, seed=batch)
        if steps is not None:  # T is symbolic: two sequence lengths
            feed = {name: np.resize(feed[name], (batch, steps, 8))}
        want = FORWARD[stem](feed[name].astype(np.float64), weights).astype(np.float32)
        got = reference.run(model.graph, feed, weights)[output]
        assert_close(got, want, scope="model", err_msg=f"{stem} on {kind} inputs, T={steps}")


def test_the_forward_passes_here_see_every_weight():
    """The numpy forward passes above read each weight of their example (a check that they
    are not simplified versions of the networks)."""
    for stem, forward in FORWARD.items():
        graph = compile_example(stem).graph
        weights = randomized_weights(graph)
        x = inputs_for(graph, 2)[graph.inputs[0]].astype(np.float64)
        base = forward(x, weights)
        for name, value in weights.items():
            changed = forward(x, {**weights, name: value * 1.5})
            assert not np.allclose(changed, base), f"{stem}: the forward pass ignores {name}"


# Examples small enough to run every input kind at batch 1 and 3 on the reference; the others
# run batch 1 (their images are 224 x 224 or larger, or a video clip), the slowest on one edge
# kind each to keep CI within its budget (xception's float64 reference alone takes ~10 s): the
# all-negative inputs unless listed here.
LIGHT = ("mnist_mlp", "lenet", "lstm_forecaster", "speech_classifier", "transformer_classifier")
HEAVY_KINDS = {
    "mobilenet_v2": INPUT_KINDS,
    "mobilenet_v3_small": INPUT_KINDS,
    "resnet18": INPUT_KINDS,
    "unet": INPUT_KINDS,
    "video_classifier": ("large",),
    "inception_v3": ("small",),
    "xception": ("normal",),
}
RUNS = [(s, b, k) for s in LIGHT for b in (1, 3) for k in INPUT_KINDS]
RUNS += [
    (p.stem, 1, k)
    for p in EXAMPLES
    if p.stem not in LIGHT
    for k in HEAVY_KINDS.get(p.stem, ("negative",))
]


@cache
def _unoptimized(stem: str) -> tuple[netc.Model, dict[str, np.ndarray]]:
    model = compile_example(stem)
    return model, randomized_weights(model.graph, seed=3)


@pytest.mark.parametrize("stem, batch, kind", RUNS, ids=[f"{s}-{b}-{k}" for s, b, k in RUNS])
def test_the_optimizer_keeps_every_examples_values(stem, batch, kind):
    """-O2 (batchnorm folded into convs, fusions, constants folded) run on the reference in
    float32, against the float64 reference of the graph as written; -O1 too for the light
    examples."""
    model, weights = _unoptimized(stem)
    feed = inputs_for(model.graph, batch, kind)
    want = reference.run(model.graph, feed, weights, wide=True)
    for level in (1, 2) if stem in LIGHT else (2,):
        graph, folded = driver.optimized(model, weights, level)
        before, after = (sum(n.op == "batchnorm" for n in g) for g in (model.graph, graph))
        if level == 2 and before:  # batchnorms after convs fold into them
            assert after < before, "no batchnorm folded: the randomized statistics go untested"
        got = reference.run(graph, feed, folded)
        for name, value in want.items():
            assert_close(got[name], value, scope="model", err_msg=f"{name} at -O{level}")


def test_samples_are_independent_of_the_batch():
    model = compile_example("mnist_mlp")
    weights = randomized_weights(model.graph)
    for kind in INPUT_KINDS:
        x = inputs_for(model.graph, 3, kind)
        batched = reference.run(model.graph, x, weights)["logits"]
        single = reference.run(model.graph, {"image": x["image"][1:2]}, weights)["logits"]
        assert_close(batched[1:2], single, scope="model", err_msg=kind)
