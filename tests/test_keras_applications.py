"""Keras weights into netc by structure (netc.keras_weights, `netc weights --from-keras`).

keras.applications' ResNet50, MobileNetV2, InceptionV3, Xception and MobileNetV3Small, and
small Keras LSTM and attention models, are built with weights=None (nothing is downloaded),
seeded, with every bias and batchnorm statistic randomized so that a wrong pairing shows; their
weights go into the netc examples through the matcher, and netc's outputs (ONNX Runtime at -O2,
and the float64 reference) must agree with Keras' `model(x, training=False)` within the model
tolerance of netc.runtime.tolerance, on every edge input kind. The examples run at small image
sizes (keras.applications accept them; the .net files' sizes are replaced), and ResNet50 and
MobileNetV2 also at 224x224, batch 1, in ONNX Runtime. Then what the matcher refuses: a pairing
the structure cannot decide, a concat in another order, different settings, files it must not
read; and the failures of pairing by layer order it catches.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conformance import INPUT_KINDS, inputs_for

import netc
from netc import driver, keras_weights
from netc.cli import cli
from netc.runtime import load, reference
from netc.runtime.tolerance import assert_close, mismatch
from netc.weights import load_weights, randomized_weights

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def keras_module():
    """Keras, TensorFlow imported quietly (once)."""
    return keras_weights._keras()


def randomize(keras_model, seed: int = 0, calibration: np.ndarray | None = None) -> None:
    """Every bias and batchnorm weight drawn (Keras initializes them to 0 or 1, which would
    hide a bias or a statistic paired with the wrong layer); kernels keep Keras' seeded
    initializers. With `calibration` inputs, batchnorm's moving statistics are first those
    of the layers' real inputs on them, then shifted and scaled at random: statistics drawn
    blindly would swamp the signal in a deep network (its outputs would hardly depend on
    its early layers, whose mistakes would then go unseen)."""
    rng = np.random.default_rng(seed)
    for layer in keras_model.layers:
        if type(layer).__name__ == "LayerScale":  # 1e-6 at first: the branch would vanish
            layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape).astype(np.float32))
    for w in keras_model.weights:
        if w.name in ("gamma", "moving_variance"):
            w.assign(rng.uniform(0.5, 1.5, w.shape).astype(w.dtype))
        elif w.name in ("beta", "moving_mean", "bias"):
            w.assign(rng.normal(0.0, 0.2, w.shape).astype(w.dtype))
    if calibration is None:
        return
    norms = [layer for layer in keras_model.layers if type(layer).__name__ == "BatchNormalization"]
    momentum = [layer.momentum for layer in norms]
    for layer in norms:  # one training step with momentum 0: moving statistics = the batch's
        layer.momentum = 0.0
    keras_model(calibration, training=True)
    for layer, m in zip(norms, momentum):
        layer.momentum = m
        std = np.sqrt(layer.moving_variance.numpy())
        shift = rng.normal(0.0, 0.2, std.shape) * std
        layer.moving_mean.assign((layer.moving_mean.numpy() + shift).astype(np.float32))
        scale = rng.uniform(0.7, 1.4, std.shape)
        layer.moving_variance.assign((layer.moving_variance.numpy() * scale).astype(np.float32))


def spread_logits(keras_model, x: np.ndarray, spread: float = 4.0) -> None:
    """Scale the classifier (the last layer with weights) so that its outputs, the logits,
    have deviation `spread` on `x`: near-uniform probabilities (what deep networks with
    random weights give) would hide a wrong pairing inside the tolerance's absolute part."""
    keras = keras_module()
    head = [layer for layer in keras_model.layers if layer.weights][-1]
    features = np.asarray(keras.Model(keras_model.input, head.input)(x, training=False))
    kernel, bias = head.kernel.numpy(), head.bias.numpy()
    logits = features.reshape(-1, kernel.shape[-2]) @ kernel.reshape(-1, kernel.shape[-1]) + bias
    scale = spread / float(logits.std())
    head.kernel.assign(kernel * scale)
    head.bias.assign(bias * scale)


def keras_outputs(keras_model, feed: dict[str, np.ndarray], graph: netc.Graph) -> dict:
    """Keras' `model(x, training=False)`, by netc's output names."""
    arrays = [feed[name] for name in graph.inputs]
    out = keras_model(arrays[0] if len(arrays) == 1 else arrays, training=False)
    out = out if isinstance(out, (list, tuple)) else [out]
    return {name: np.asarray(value) for (name, _), value in zip(graph.outputs, out)}


def compile_at(stem: str, size: int | None = None, full: int | None = None) -> netc.Model:
    """An example, its image size `full` x `full` replaced by `size` x `size`."""
    text = (EXAMPLES / f"{stem}.net").read_text()
    if size is not None and size != full:
        old = f"{full}, {full}, 3]"
        assert old in text, f"{stem}.net no longer takes {full}x{full} images"
        text = text.replace(old, f"{size}, {size}, 3]")
    return netc.compile_text(text, path=f"examples/{stem}.net")


# stem: (keras.applications constructor, the example's image size, the size tested here)
APPLICATIONS = {
    "resnet50": ("ResNet50", 224, 32),
    "mobilenet_v2": ("MobileNetV2", 224, 32),
    "inception_v3": ("InceptionV3", 299, 75),  # its smallest size
    "xception": ("Xception", 299, 71),  # its smallest size
    "mobilenet_v3_small": ("MobileNetV3Small", 224, 224),
    "convnext_tiny": ("ConvNeXtTiny", 224, 32),
}
# The models that take [0, 255] images and normalize them themselves.
RAW_IMAGES = ("mobilenet_v3_small", "convnext_tiny")


@cache
def application(stem: str, size: int | None = None):
    """(the Keras model, seeded and randomized; the netc example at the same size)."""
    keras = keras_module()
    constructor, full, small = APPLICATIONS[stem]
    size = size or small
    keras.utils.set_random_seed(7)
    keras_model = getattr(keras.applications, constructor)(
        weights=None, input_shape=(size, size, 3)
    )
    model = compile_at(stem, size, full)
    # batchnorm statistics from 8 images, 2 at full size (a 7x7 map still gives 98 samples)
    calibration = image_inputs(stem, model.graph, 2 if size >= 224 else 8, "normal")["image"]
    randomize(keras_model, seed=len(stem), calibration=calibration)
    spread_logits(keras_model, calibration)
    return keras_model, model


def image_inputs(stem: str, graph: netc.Graph, batch: int, kind: str) -> dict[str, np.ndarray]:
    """conformance's inputs of `kind`, moved to [0, 255] for the models that normalize images
    themselves."""
    feed = inputs_for(graph, batch, kind, seed=len(kind) + batch)
    if stem in RAW_IMAGES:
        feed = {k: (v * 40.0 + 127.5).astype(np.float32) for k, v in feed.items()}
    return feed


@cache
def imported(stem: str, size: int | None = None):
    """(Keras model, netc model, the weights the matcher took, an ONNX Runtime session)."""
    keras_model, model = application(stem, size)
    weights = keras_weights.from_keras(model, keras_model, check=False)
    return keras_model, model, weights, load(driver.emit(model, weights=weights))


@pytest.mark.parametrize("stem", APPLICATIONS)
def test_every_netc_weight_comes_from_its_keras_layer(stem):
    keras_model, model = application(stem)
    pairs = keras_weights.match(model, keras_model)
    _, _, weights, _ = imported(stem)
    assert sorted(weights) == sorted(n.name for n in model.graph.params)
    assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})
    assert len(pairs) == sum(bool(layer.weights) for layer in leaf_layers(keras_model))
    graph = model.graph
    for netc_layer, keras_layer in pairs:
        params = [i for i in graph[netc_layer].inputs if graph[i].op == "param"]
        theirs = [w.numpy() for w in _keras_layer(keras_model, keras_layer).weights]
        assert len(params) == len(theirs), netc_layer
        for name in params:  # each netc weight is one of its partner's, value for value
            assert sum(np.array_equal(weights[name], w) for w in theirs) == 1, name


def leaf_layers(keras_model) -> list:
    """The layers of a Keras model, those of nested models (ConvNeXt's stem) included."""
    keras = keras_module()
    layers = keras_model._flatten_layers(include_self=False)
    return [layer for layer in layers if not isinstance(layer, keras.Model)]


def _keras_layer(keras_model, name: str):
    return next(layer for layer in leaf_layers(keras_model) if layer.name == name)


# The float64 reference on every input kind, but for Xception and ConvNeXt on one (numpy's
# matmul of a 4-D array, in their separable convolutions and dense layers over feature maps,
# takes seconds a run).
REFERENCE_KINDS = {"xception": ("normal",), "convnext_tiny": ("normal",)}


@pytest.mark.parametrize("kind", INPUT_KINDS)
@pytest.mark.parametrize("stem", APPLICATIONS)
def test_keras_application_agrees_with_keras_in_onnx_runtime_and_the_reference(stem, kind):
    keras_model, model, weights, session = imported(stem)
    feed = image_inputs(stem, model.graph, 3, kind)
    want = keras_outputs(keras_model, feed, model.graph)
    got = session.run(feed)
    for name, value in want.items():
        assert_close(got[name], value, scope="model", err_msg=f"ONNX Runtime, {name}")
    if kind in REFERENCE_KINDS.get(stem, INPUT_KINDS):
        wide = reference.run(model.graph, feed, weights, wide=True)
        for name, value in want.items():
            assert_close(wide[name], value, scope="model", err_msg=f"reference, {name}")


@pytest.mark.parametrize("stem", APPLICATIONS)
def test_a_wrong_pairing_would_show_in_the_outputs(stem):
    """Swapping the kernels of the first two layers with kernels of one shape (what pairing
    by order does where branches or blocks look alike) moves the outputs far beyond the
    tolerance: the comparisons above can fail."""
    _, model, weights, session = imported(stem)
    feed = image_inputs(stem, model.graph, 3, "normal")
    by_shape: dict[tuple, list[str]] = {}
    for n in model.graph.params:
        if n.name.endswith("kernel"):
            by_shape.setdefault(weights[n.name].shape, []).append(n.name)
    a, b = next(names[:2] for names in by_shape.values() if len(names) > 1)
    swapped = load(driver.emit(model, weights={**weights, a: weights[b], b: weights[a]}))
    right, wrong = session.run(feed), swapped.run(feed)
    assert all(mismatch(wrong[k], right[k], scope="model") for k in right), (a, b)


@pytest.mark.parametrize("stem", ["resnet50", "mobilenet_v2"])
def test_the_224_examples_as_written_agree_with_keras_in_onnx_runtime(stem):
    keras_model, model, _, session = imported(stem, 224)
    assert model.total_params == keras_model.count_params()
    for kind in ("normal", "large"):
        feed = image_inputs(stem, model.graph, 1, kind)
        got = session.run(feed)
        for name, value in keras_outputs(keras_model, feed, model.graph).items():
            assert_close(got[name], value, scope="model", err_msg=f"{stem} at 224, {kind}")


def test_weights_of_a_224_keras_model_go_into_a_smaller_netc_model():
    """Convolutions do not depend on the image size: ImageNet-sized weights serve a netc
    model of other inputs; the settings are compared where sizes do not matter, and the
    outputs are not compared (with the outputs check on, it says so by returning None)."""
    keras_model, _, _, _ = imported("resnet50", 224)
    _, small = application("resnet50")
    weights = keras_weights.from_keras(small, keras_model)
    assert keras_weights.compare_outputs(small, keras_model, weights) is None
    head = keras_model.get_layer("predictions")
    np.testing.assert_array_equal(weights["dense.kernel"], head.kernel.numpy())


@pytest.mark.parametrize("stem", APPLICATIONS)
def test_examples_have_keras_parameter_counts(stem):
    constructor, full, _ = APPLICATIONS[stem]
    keras_model, model = application(stem)
    at_full = netc.compile(EXAMPLES / f"{stem}.net")
    # the parameter count does not depend on the image size, for the example or for Keras
    assert at_full.total_params == model.total_params == keras_model.count_params()


# --- an LSTM and an attention model -----------------------------------------------------------


@cache
def lstm_forecaster():
    """examples/lstm_forecaster.net and the same stack in Keras (variable length T)."""
    keras = keras_module()
    layers = keras.layers
    keras.utils.set_random_seed(3)
    x = keras.Input((None, 8))
    h = layers.LSTM(64, return_sequences=True, name="encoder")(x)
    h = layers.LSTM(32, name="summary")(h)
    keras_model = keras.Model(x, layers.Dense(1, name="head")(h), name="forecaster")
    randomize(keras_model, seed=3)
    return keras_model, netc.compile(EXAMPLES / "lstm_forecaster.net")


ATTENTION = """
# A post-norm encoder block over token embeddings, attending to itself with a causal mask,
# then to a second sequence (cross attention), as attention_tagger() builds it in Keras.
model tagger(tokens: i32[N, 12], memory: f32[N, 6, 10])
        -> (tags: f32[N, 12, 5], pooled: f32[N, 3]) {
    x = tokens |> embedding(50, 16)
    x = layernorm(x + multi_head_attention(x, heads=2, key_dim=8, causal=true), epsilon=1e-6)
    x = layernorm(x + multi_head_attention(x, memory, heads=4, key_dim=4, value_dim=6))
    fed = x |> dense(32) |> gelu |> dense(16)
    x = layernorm(x + fed, epsilon=1e-6)
    tags = x |> dense(5) |> softmax
    pooled = x |> reduce_mean(axis=1) |> dense(3)
}
"""


@cache
def attention_tagger():
    keras = keras_module()
    layers = keras.layers
    keras.utils.set_random_seed(5)
    tokens = keras.Input((12,), dtype="int32")
    memory = keras.Input((6, 10))
    x = layers.Embedding(50, 16, name="tokens")(tokens)
    a = layers.MultiHeadAttention(2, 8, name="self_attention")(x, x, use_causal_mask=True)
    x = layers.LayerNormalization(epsilon=1e-6)(layers.Add()([x, a]))
    a = layers.MultiHeadAttention(4, 4, value_dim=6, name="cross_attention")(x, memory)
    x = layers.LayerNormalization()(x + a)
    fed = layers.Dense(16)(layers.Dense(32, activation="gelu")(x))
    x = layers.LayerNormalization(epsilon=1e-6)(layers.Add()([x, fed]))
    tags = layers.Dense(5, activation="softmax")(x)
    pooled = layers.Dense(3)(layers.GlobalAveragePooling1D()(x))
    keras_model = keras.Model([tokens, memory], [tags, pooled], name="tagger")
    randomize(keras_model, seed=5)
    return keras_model, netc.compile_text(ATTENTION, path="tagger.net")


SEQUENCE_MODELS = {"lstm_forecaster": lstm_forecaster, "attention_tagger": attention_tagger}


@pytest.mark.parametrize("kind", INPUT_KINDS)
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_keras_lstm_and_attention_models_agree_with_netc(name, batch, kind):
    keras_model, model = SEQUENCE_MODELS[name]()
    weights = keras_weights.from_keras(model, keras_model)  # also runs both once (check)
    feed = inputs_for(model.graph, batch, kind, seed=batch)
    want = keras_outputs(keras_model, feed, model.graph)
    got = load(driver.emit(model, weights=weights)).run(feed)
    wide = reference.run(model.graph, feed, weights, wide=True)
    for output, value in want.items():
        assert_close(got[output], value, scope="model", err_msg=f"ONNX Runtime, {output}")
        assert_close(wide[output], value, scope="model", err_msg=f"reference, {output}")


def test_attention_pairs_each_call_with_its_own_keras_layer():
    keras_model, model = attention_tagger()
    pairs = dict(keras_weights.match(model, keras_model))
    # the causal self-attention and the cross attention have weights of different shapes;
    # their Keras partners are the first and second MultiHeadAttention
    assert pairs["multi_head_attention"] == "self_attention"
    assert pairs["multi_head_attention_1"] == "cross_attention"
    assert pairs["embedding"] == "tokens"


ZOO = """
# Every Keras layer with weights that a netc op takes, in one model of four inputs.
model zoo(img: f32[N, 8, 8, 3], vol: f32[N, 4, 6, 6, 2], seq: f32[N, T, 5], ids: i32[N, 7])
        -> (a: f32[N, 3], v: f32[N, 8, 12, 12, 2], s: f32[N, 4], h: f32[N, 4], c: f32[N, 4],
            e: f32[N, 7, 6]) {
    a = img
        |> conv2d(4, 3, stride=2, padding="same")
        |> depthwise_conv2d(3, depth_multiplier=2, padding="same")
        |> separable_conv2d(6, 3, depth_multiplier=2)
        |> conv2d_transpose(5, 3, stride=2, padding="same")
        |> batchnorm(center=false)
        |> layernorm(axis=(1, 2, 3))
        |> flatten |> dense(3)
    v = vol |> conv3d(3, 2, padding="same") |> conv3d_transpose(2, 2, stride=2)
    s, h, c = seq
        |> conv1d(6, 3, padding=((2, 0),))                  # Keras' padding="causal"
        |> depthwise_conv1d(3, padding="same")
        |> separable_conv1d(4, 3, padding="same")
        |> gru(5, return_sequences=true, reset_after=false)
        |> gru(5, return_sequences=true)
        |> lstm(4, return_state=true, go_backwards=true)
    e = ids |> embedding(20, 6) |> multi_head_attention(heads=2, key_dim=3, bias=false)
}
"""


@cache
def zoo():
    keras = keras_module()
    layers = keras.layers
    keras.utils.set_random_seed(11)
    img, vol = keras.Input((8, 8, 3)), keras.Input((4, 6, 6, 2))
    seq, ids = keras.Input((None, 5)), keras.Input((7,), dtype="int32")
    a = layers.Conv2D(4, 3, strides=2, padding="same")(img)
    a = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(a)
    a = layers.SeparableConv2D(6, 3, depth_multiplier=2)(a)
    a = layers.Conv2DTranspose(5, 3, strides=2, padding="same")(a)
    a = layers.BatchNormalization(center=False)(a)
    a = layers.LayerNormalization(axis=[1, 2, 3])(a)
    a = layers.Dense(3)(layers.Flatten()(a))
    v = layers.Conv3D(3, 2, padding="same")(vol)
    v = layers.Conv3DTranspose(2, 2, strides=2)(v)
    s = layers.Conv1D(6, 3, padding="causal")(seq)
    s = layers.DepthwiseConv1D(3, padding="same")(s)
    s = layers.SeparableConv1D(4, 3, padding="same")(s)
    s = layers.GRU(5, return_sequences=True, reset_after=False)(s)
    s = layers.GRU(5, return_sequences=True)(s)
    s, h, c = layers.LSTM(4, return_state=True, go_backwards=True)(s)
    e = layers.Embedding(20, 6)(ids)
    e = layers.MultiHeadAttention(2, 3, use_bias=False)(e, e, e)
    keras_model = keras.Model([img, vol, seq, ids], [a, v, s, h, c, e], name="zoo")
    randomize(keras_model, seed=11)
    return keras_model, netc.compile_text(ZOO, path="zoo.net")


@pytest.mark.parametrize("kind", INPUT_KINDS)
@pytest.mark.parametrize("batch", [1, 3])
def test_every_keras_layer_with_weights_netc_takes_agrees_with_netc(batch, kind):
    keras_model, model = zoo()
    assert model.total_params == keras_model.count_params()
    weights = keras_weights.from_keras(model, keras_model, check=batch == 1)
    feed = inputs_for(model.graph, batch, kind, seed=batch)
    want = keras_outputs(keras_model, feed, model.graph)
    got = load(driver.emit(model, weights=weights)).run(feed)
    wide = reference.run(model.graph, feed, weights, wide=True)
    for output, value in want.items():
        assert_close(got[output], value, scope="model", err_msg=f"ONNX Runtime, {output}")
        assert_close(wide[output], value, scope="model", err_msg=f"reference, {output}")


# --- the command line ------------------------------------------------------------------------


def run_cli(*args: str):
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_cli_takes_a_keras_file_and_writes_the_paired_weights(tmp_path):
    keras_model, model = lstm_forecaster()
    keras_model.save(tmp_path / "forecaster.keras")
    out = tmp_path / "w.safetensors"
    code, text = run_cli(
        "weights", str(EXAMPLES / "lstm_forecaster.net"), "--from-keras",
        str(tmp_path / "forecaster.keras"), "-o", str(out), "--json",
    )  # fmt: skip
    assert code == 0, text
    report = json.loads(text)
    assert report["keras_model"] == "forecaster" and report["weights"] == 8
    assert report["pairs"] == [["lstm", "encoder"], ["lstm_1", "summary"], ["dense", "head"]]
    assert report["largest_difference"] < 1e-5
    written = load_weights(out)
    want = keras_weights.from_keras(model, keras_model, check=False)
    assert sorted(written) == sorted(want)
    for name, value in want.items():
        np.testing.assert_array_equal(written[name], value)


def test_cli_takes_weights_h5_with_its_architecture(tmp_path):
    keras_model, model = lstm_forecaster()
    keras_model.save_weights(tmp_path / "f.weights.h5")
    (tmp_path / "f.json").write_text(keras_model.to_json())
    out = tmp_path / "w.npz"
    net = str(EXAMPLES / "lstm_forecaster.net")
    code, text = run_cli(
        "weights", net, "--from-keras", str(tmp_path / "f.weights.h5"),
        "--keras-architecture", str(tmp_path / "f.json"), "-o", str(out),
    )  # fmt: skip
    assert code == 0, text
    assert text.startswith(f"wrote {out}: 8 weights, 31,137 params from Keras model `forecaster`")
    written = load_weights(out)
    for w in keras_model.layers[-1].weights:
        np.testing.assert_array_equal(written[f"dense.{w.name}"], w.numpy())
    # without its architecture: Keras addresses a .weights.h5's layers by class and position,
    # so it would load into netc's own Keras model of the .net, right or wrong
    code, text = run_cli("weights", net, "--from-keras", str(tmp_path / "f.weights.h5"),
                         "-o", str(out))  # fmt: skip
    assert code == 1
    assert "f.weights.h5 holds weights only: which layer feeds which is not in it" in text
    assert "help: pass the Keras model they were saved from: --keras-architecture" in text


def test_a_keras_file_netc_wrote_loads_by_the_names_it_records(tmp_path):
    model = netc.compile(EXAMPLES / "lenet.net")
    weights = randomized_weights(model.graph, 4)
    driver.write(model, tmp_path / "lenet.keras", "keras", weights=weights, level=0)
    got = keras_weights.from_keras(model, tmp_path / "lenet.keras")
    assert sorted(got) == sorted(weights)
    for name, value in weights.items():
        np.testing.assert_array_equal(got[name], value)


# --- what the matcher refuses -----------------------------------------------------------------


def refusal(model: netc.Model, keras_model, **options) -> str:
    with pytest.raises(netc.NetcError) as e:
        keras_weights.from_keras(model, keras_model, **options)
    return str(e.value)


def two_branches(keras, inside: bool = False):
    """x -> Dense(4) -> relu and x -> Dense(4) -> tanh, added: the two Dense layers have the
    same kind, weight shapes and links. The activations are Activation layers, or with
    `inside` the Dense layers' own."""
    layers = keras.layers
    keras.utils.set_random_seed(1)
    x = keras.Input((6,))
    if inside:
        a = layers.Dense(4, activation="relu", name="a")(x)
        b = layers.Dense(4, activation="tanh", name="b")(x)
    else:
        a = layers.Activation("relu")(layers.Dense(4, name="a")(x))
        b = layers.Activation("tanh")(layers.Dense(4, name="b")(x))
    keras_model = keras.Model(x, layers.Add()([a, b]))
    randomize(keras_model)
    return keras_model


TWO_BRANCHES = """
model m(x: f32[N, 6]) -> (y: f32[N, 4]) {
    p = x |> dense(4, name="p") |> relu
    q = x |> dense(4, name="q") |> tanh
    y = p + q
}
"""


def test_an_ambiguous_pairing_is_refused_naming_both_sides(compile_net):
    keras = keras_module()
    model = compile_net(TWO_BRANCHES)
    text = refusal(model, two_branches(keras))
    assert "model.net:3:14: error: cannot tell which Keras layer pairs with netc's `p`" in text
    assert 'p = x |> dense(4, name="p") |> relu' in text
    assert "netc's `q` and it have the same kind, weight shapes and connections" in text
    assert "so do Keras' `a`, `b`" in text
    assert "--pair NETC=KERAS" in text


def test_a_pin_settles_an_ambiguity_and_a_wrong_pin_is_caught(compile_net):
    keras = keras_module()
    keras_model = two_branches(keras)
    model = compile_net(TWO_BRANCHES)
    weights = keras_weights.from_keras(model, keras_model, pairs={"p": "a"})
    np.testing.assert_array_equal(weights["q.kernel"], keras_model.get_layer("b").kernel.numpy())
    # the wrong pin: the weights fit, only running both models shows it
    text = refusal(model, keras_model, pairs={"p": "b"})
    assert "model.net:5:9: error: netc's `add` (line 5) computes other values than Keras' " in text
    assert "its inputs agree with Keras': netc's `p` with `b`, netc's `q` with `a`" in text
    # pins name layers with weights on both sides, of one kind and shape
    text = refusal(model, keras_model, pairs={"p": "nothing"})
    assert "no Keras layer with weights is called `nothing` (in the pairs given)" in text
    # with the activations inside Keras' Dense layers, the settings show it before any run
    text = refusal(model, two_branches(keras, inside=True), pairs={"p": "b"}, check=False)
    assert "netc layer `p` is paired with Keras layer `b` (Dense), but they compute" in text
    assert "Keras applies the activation 'tanh' inside the layer; netc's layer is followed " in (
        text
    )


def test_a_concat_in_another_order_is_refused_naming_both_sides(compile_net):
    keras = keras_module()
    layers = keras.layers
    x = keras.Input((8, 8, 3))
    a = layers.Conv2D(4, 1, name="b1")(x)
    b = layers.Conv2D(4, 3, padding="same", name="b3")(layers.Conv2D(4, 1, name="b3_1x1")(x))
    keras_model = keras.Model(x, layers.Concatenate(name="mixed")([a, b]))
    model = compile_net("""
        model m(x: f32[N, 8, 8, 3]) -> (y: f32[N, 8, 8, 8]) {
            a = x |> conv2d(4, 1)
            b = x |> conv2d(4, 1) |> conv2d(4, 3, padding="same")
            y = concat(b, a)
        }
    """)
    text = refusal(model, keras_model)
    assert "model.net:5:9: error: netc's `concat` (concat on axis 3, line 5) has no " in text
    assert "y = concat(b, a)" in text
    assert "in its place is Keras' `mixed` (Concatenate on axis 3), which reads `b1`, `b3`" in text


def test_different_settings_are_refused_naming_both_sides(compile_net):
    keras = keras_module()
    layers = keras.layers
    x = keras.Input((8, 8, 3))
    y = layers.ZeroPadding2D(1)(x)
    y = layers.Conv2D(4, 3, strides=2, use_bias=False, name="conv")(y)
    y = layers.BatchNormalization(epsilon=1.001e-5, name="bn")(y)
    keras_model = keras.Model(x, layers.Dense(2, activation="softmax", name="head")(y))
    text = refusal(keras_model=keras_model, model=compile_net("""
        model m(x: f32[N, 8, 8, 3]) -> (y: f32[N, 4, 4, 2]) {
            y = x |> conv2d(4, 3, stride=2, padding="same", bias=false) |> batchnorm |> dense(2)
        }
    """))  # fmt: skip
    assert "netc layer `conv2d` is paired with Keras layer `conv` (Conv2D), but they" in text
    assert (
        "padding (before, after) per axis, pads before it included: netc has [(0, 1), (0, 1)], "
        "Keras has [(1, 1), (1, 1)]"
    ) in text
    assert "epsilon: netc has 0.001, Keras has 1.001e-05" in text
    assert (
        "Keras applies the activation 'softmax' inside the layer; netc's layer is followed by "
        "no activation"
    ) in text
    text = refusal(keras_model=keras_model, model=compile_net("""
        model m(x: f32[N, 8, 8, 3]) -> (y: f32[N, 4, 4, 2]) {
            y = x |> pad(((0, 0), (1, 1), (1, 1), (0, 0))) |> conv2d(4, 3, stride=2)
                  |> batchnorm(epsilon=1.001e-5) |> dense(2) |> softmax
        }
    """))  # fmt: skip
    assert "netc's `conv2d` (conv2d with bias [4], kernel [3, 3, 3, 4], line 3) has no" in text
    assert "help: Keras' `conv` has no bias: write `conv2d(..., bias=false)`" in text


def test_keras_layers_netc_cannot_hold_are_refused(compile_net):
    keras = keras_module()
    layers = keras.layers
    model = compile_net("model m(x: f32[N, 4]) -> (y: f32[N, 4]) { y = x |> dense(4) |> dense(4) }")
    x = keras.Input((4,))
    shared = layers.Dense(4, name="shared")
    text = refusal(model, keras.Model(x, shared(shared(x))))
    assert "Keras layer `shared` is called more than once (shared weights)" in text
    x = keras.Input((4,))
    text = refusal(model, keras.Model(x, layers.PReLU(name="prelu")(layers.Dense(4)(x))))
    assert "netc has no op that takes the weights of Keras layer `prelu` (PReLU)" in text

    ids = keras.Input((6,), dtype="int32")
    masked = keras.Model(
        ids, layers.LSTM(4, name="lstm")(layers.Embedding(10, 4, mask_zero=True)(ids))
    )
    text = refusal(compile_net("""
        model m(ids: i32[N, 6]) -> (y: f32[N, 4]) { y = ids |> embedding(10, 4) |> lstm(4) }
    """), masked)  # fmt: skip
    assert "Keras layer `lstm` (LSTM) is called with `mask`, which netc's `lstm` does not" in text
    assert "help: netc has no masks: build the Keras model without mask_zero=True" in text

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__(name="sub")
            self.d = layers.Dense(4)

        def call(self, x):
            return self.d(x)

    assert "the Keras model `sub` (Subclassed) is subclassed" in refusal(model, Subclassed())


def test_a_lambda_layer_is_never_unpickled(tmp_path, compile_net):
    keras = keras_module()
    x = keras.Input((4,))
    y = keras.layers.Lambda(lambda t: t * 2.0)(keras.layers.Dense(4)(x))
    keras.Model(x, y).save(tmp_path / "lambda.keras")
    model = compile_net("model m(x: f32[N, 4]) -> (y: f32[N, 4]) { y = (x |> dense(4)) * 2 }")
    text = refusal(model, tmp_path / "lambda.keras")
    assert "lambda.keras holds a Lambda layer: its code is pickled Python, which netc never" in text


# --- what pairing by order gets wrong ---------------------------------------------------------


def order_paired(model: netc.Model, keras_model) -> dict[str, np.ndarray]:
    """What reviewers' scripts did: per kind of layer, netc's layers in graph order zipped
    with Keras' layers of that kind in `model.layers` order (the pairing `from_keras`
    replaces); a ValueError where two weights' shapes differ."""
    netc_layers: dict[str, list[netc.Node]] = {}
    for node in model.graph.nodes:
        if any(model.graph[i].op == "param" for i in node.inputs):
            netc_layers.setdefault(node.op, []).append(node)
    out = {}
    for op, nodes in netc_layers.items():
        kind = [k for k, v in keras_weights.KERAS_OPS.items() if v == op]
        layers = [layer for layer in keras_model.layers if type(layer).__name__ in kind]
        assert len(layers) == len(nodes), op
        for node, layer in zip(nodes, layers):
            params = [model.graph[i] for i in node.inputs if model.graph[i].op == "param"]
            for param, w in zip(params, layer.weights):
                if tuple(param.tensor_type.shape) != tuple(w.shape):
                    shape = tuple(param.tensor_type.shape)
                    raise ValueError(f"{param.name} {shape} vs {w.path} {tuple(w.shape)}")
                out[param.name] = np.asarray(w.numpy())
    return out


INCEPTION_MODULE = """
# An Inception module whose branches hold weights of one shape, written pool branch first and
# concatenated in Keras' order.
block conv_bn(x) {
    return x |> conv2d(4, 3, padding="same", bias=false) |> batchnorm(scale=false) |> relu
}

model module(x: f32[N, 9, 9, 4]) -> (probs: f32[N, 3]) {
    pool = x |> avgpool(3, stride=1, padding="same") |> conv_bn
    b3dbl = x |> conv_bn |> conv_bn |> conv_bn
    b3 = x |> conv_bn |> conv_bn
    b1 = x |> conv_bn
    probs = concat(b1, b3, b3dbl, pool) |> global_avgpool |> dense(3) |> softmax
}
"""


def inception_module(keras):
    layers = keras.layers

    def conv_bn(x):
        x = layers.Conv2D(4, 3, padding="same", use_bias=False)(x)
        return layers.Activation("relu")(layers.BatchNormalization(scale=False)(x))

    keras.utils.set_random_seed(2)
    x = keras.Input((9, 9, 4))
    b1 = conv_bn(x)
    b3 = conv_bn(conv_bn(x))
    b3dbl = conv_bn(conv_bn(conv_bn(x)))
    pool = conv_bn(layers.AveragePooling2D(3, strides=1, padding="same")(x))
    y = layers.GlobalAveragePooling2D()(layers.Concatenate()([b1, b3, b3dbl, pool]))
    keras_model = keras.Model(x, layers.Dense(3, activation="softmax")(y))
    randomize(keras_model, seed=2)
    return keras_model


def test_order_pairing_fits_every_shape_of_an_inception_module_and_is_wrong(compile_net):
    """Equal-shape weights on parallel branches: pairing by order succeeds on every shape and
    computes something else (InceptionV3's 0.89 log-prob error); the matcher pairs by the
    concat order and agrees with Keras."""
    keras = keras_module()
    keras_model = inception_module(keras)
    model = compile_net(INCEPTION_MODULE)
    feed = inputs_for(model.graph, 3)
    want = keras_outputs(keras_model, feed, model.graph)["probs"]
    by_order = reference.run(model.graph, feed, order_paired(model, keras_model))["probs"]
    assert mismatch(by_order, want, scope="model") is not None
    by_structure = reference.run(model.graph, feed, keras_weights.from_keras(model, keras_model))
    assert_close(by_structure["probs"], want, scope="model")


def test_order_pairing_fails_on_resnet50_where_the_matcher_does_not():
    """Keras creates a ResNet block's projection shortcut before its main path, netc's
    example after it: by order, the shapes do not even fit."""
    keras_model, model = application("resnet50")
    with pytest.raises(ValueError, match=r"stage_1\.bottleneck_0\.conv_bn_2.* vs conv3_block1_0"):
        order_paired(model, keras_model)
    pairs = dict(keras_weights.match(model, keras_model))
    assert pairs["stage_0.bottleneck_0.conv_bn_0.conv2d"] == "conv2_block1_1_conv"
    assert pairs["stage_0.bottleneck_0.conv_bn_3.conv2d"] == "conv2_block1_0_conv"
