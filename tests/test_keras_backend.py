"""The Keras backend as users meet it: every example as a trainable model and as a prediction
model against the float64 reference, layer names and parameter counts equal to `netc summary`,
weights by netc name, `.keras` files that load back (and keep training), the train section's
compile, training on a real dataset, the semantics pinned where Keras' layers differ from netc's,
the runtime session, `netc run`/`netc verify -t keras`, atomic writes and missing TensorFlow.

Values are compared in full with the float64 reference (netc.runtime.tolerance, model scope)
with randomized weights (netc.weights.randomized_weights) on conformance.py's edge input kinds.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conformance import INPUT_KINDS, inputs_for

import netc
import netc.runtime
from netc import driver
from netc.backends import keras_layers, to_keras  # imports TensorFlow and Keras, quietly
from netc.cli import cli
from netc.runtime import keras as keras_runtime
from netc.runtime import reference
from netc.runtime.tolerance import assert_close
from netc.weights import load_weights, randomized_weights, save_weights

keras = keras_layers.keras  # imported by netc after TensorFlow's quiet start-up

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.net"))
STEMS = [p.stem for p in EXAMPLES]

# Small examples run every input kind at batch 1 and 3 on the reference; medium ones one kind
# at batch 3 and another at batch 1. The rest (299 x 299 images, a video clip: the float64
# reference takes 10-40 s a sample) run one kind at batch 3 whose first sample is checked
# against the reference and every sample against Keras' own batch-1 result.
LIGHT = ("mnist_mlp", "lenet", "lstm_forecaster", "speech_classifier", "transformer_classifier")
MEDIUM = {
    "mobilenet_v2": (("normal", 3), ("negative", 1)),
    "mobilenet_v3_small": (("small", 3), ("large", 1)),
    "resnet18": (("large", 3), ("small", 1)),
    "unet": (("small", 3), ("normal", 1)),
}


def plan(stem: str) -> list[tuple[str, int]]:
    """The (input kind, batch) runs of an example; batch 0: the large examples' check."""
    if stem in LIGHT:
        return [(kind, batch) for kind in INPUT_KINDS for batch in (1, 3)]
    if stem in MEDIUM:
        return list(MEDIUM[stem])
    return [(INPUT_KINDS[STEMS.index(stem) % len(INPUT_KINDS)], 0)]


DIGITS = """\
model digits(image: f32[N, 8, 8, 1]) -> (logits: f32[N, 10]) {
    x = image |> conv2d(8, 3, padding="same") |> batchnorm |> relu |> maxpool(2)
    logits = x |> flatten |> dropout(0.2) |> dense(10)
}

train {
    loss = sparse_categorical_crossentropy(from_logits=true)
    optimizer = adam(learning_rate=0.01)
    metrics = [accuracy]
    epochs = 2
    batch_size = 64
    seed = 3
}
"""


@cache
def example(stem: str) -> tuple[netc.Model, dict[str, np.ndarray]]:
    model = netc.compile(EXAMPLES[STEMS.index(stem)])
    return model, randomized_weights(model.graph, seed=3)


@cache
def keras_model(stem: str, inference: bool = False):
    """A small example as `netc MODEL.net -t keras [--inference]` builds it (default -O2)."""
    model, weights = example(stem)
    return driver.emit(model, "keras", weights=weights, inference=inference)


@cache
def digits_data() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32)[..., None], d.target.astype(np.int32)


def run_model(model, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return netc.runtime.load(model, device="cpu").run(feed)


def summary_rows(stem: str) -> dict[str, int]:
    """`netc summary --json`'s layers (inputs first, as its table shows them) and params."""
    out = CliRunner().invoke(cli, ["summary", str(EXAMPLES[STEMS.index(stem)]), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    rows = {i["name"]: 0 for i in data["inputs"]}
    rows.update({layer["name"]: layer["params"] for layer in data["layers"]})
    return rows


# --- every example -----------------------------------------------------------------------------


@pytest.mark.parametrize("stem", STEMS)
def test_example_on_keras_lists_netc_summarys_layers_and_matches_the_reference(stem):
    """The example as `netc MODEL.net -t keras` builds it (trainable, default -O2): the layers
    and parameter counts of `netc summary`; it and the `--inference` model (the -O2 graph)
    agree with the float64 reference on the example's runs (see `plan`)."""
    model, weights = example(stem)
    trainable = driver.emit(model, "keras", weights=weights)
    assert {x.name: x.count_params() for x in trainable.layers} == summary_rows(stem)
    assert trainable.count_params() == model.total_params
    assert sum(int(np.prod(v.shape)) for v in trainable.trainable_weights) == (
        model.trainable_params
    )
    predicting = driver.emit(model, "keras", weights=weights, inference=True)
    models = {"trainable": trainable, "--inference": predicting}
    for kind, batch in plan(stem):
        feed = inputs_for(model.graph, batch or 3, kind)
        first = {k: v[:1] for k, v in feed.items()}
        want = reference.run(model.graph, first if batch == 0 else feed, weights, wide=True)
        for how, k in models.items():
            got = run_model(k, feed)
            assert set(got) == set(want)
            for name, value in want.items():
                what = f"{name} ({how}, {kind} inputs, batch {batch or 3})"
                if batch == 0:  # sample 0 against the reference, each against Keras at batch 1
                    assert_close(got[name][:1], value, scope="model", err_msg=what)
                    for i in range(3):
                        alone = run_model(k, {n: v[i : i + 1] for n, v in feed.items()})[name]
                        assert_close(got[name][i : i + 1], alone, scope="model", err_msg=what)
                else:
                    assert_close(got[name], value, scope="model", err_msg=what)


def test_inference_models_fold_batchnorm_and_drop_dropout():
    trainable = {type(layer).__name__ for layer in keras_model("speech_classifier").layers}
    predicting = {type(layer).__name__ for layer in keras_model("speech_classifier", True).layers}
    assert "BatchNormalization" in trainable and "BatchNormalization" not in predicting
    assert "Dropout" in {type(x).__name__ for x in keras_model("transformer_classifier").layers}
    assert "Dropout" not in {
        type(x).__name__ for x in keras_model("transformer_classifier", True).layers
    }
    assert keras_model("lenet").compiled  # from its train section
    assert not keras_model("lenet", True).compiled  # prediction only


# --- layers, names and parameter counts --------------------------------------------------------


def test_printed_summary_shows_netc_names_and_counts(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich cuts the table at the console's width
    lines: list[str] = []
    keras_model("lenet").summary(line_length=150, print_fn=lambda line, **_: lines.append(line))
    rows = [r.split("│") for r in "\n".join(lines).splitlines() if r.startswith("│ ")]
    printed = {cells[1].split(" (")[0].strip(): int(cells[3].replace(",", "")) for cells in rows}
    assert printed == summary_rows("lenet")
    text = "\n".join(lines)
    assert "Total params: 61,706" in text and "Trainable params: 61,706" in text


def test_fused_and_folded_nodes_keep_their_layers():
    # at -O2 lenet's relus are fused into its convs and dense layers, and a zero pad before a
    # conv is folded into its padding (resnet50's stem): the Keras model keeps each layer
    model = netc.compile(EXAMPLES[STEMS.index("lenet")])
    graph, _ = driver.optimized(model, driver.model_weights(model), 2, keep_training=True)
    assert {"fused_conv", "fused_dense"} <= {n.op for n in graph}
    k = keras_model("lenet")
    assert type(k.get_layer("conv_pool_0.conv2d")).__name__ == "Conv2D"
    assert k.get_layer("conv_pool_0.conv2d").get_config()["activation"] == "linear"
    assert type(k.get_layer("conv_pool_0.relu")).__name__ == "ReLU"
    src = """
    model stem(x: f32[N, 12, 12, 3]) -> (y: tensor) {
        y = x |> pad(((0, 0), (3, 3), (3, 3), (0, 0))) |> conv2d(4, 7, stride=2) |> relu
    }
    """
    padded = netc.compile(src)
    graph, _ = driver.optimized(padded, driver.model_weights(padded), 2, keep_training=True)
    assert "pad" not in {n.op for n in graph}
    k = driver.emit(padded, "keras")
    assert [(x.name, type(x).__name__) for x in k.layers] == [
        ("x", "InputLayer"),
        ("pad", "ZeroPadding2D"),
        ("conv2d", "Conv2D"),
        ("relu", "ReLU"),
    ]
    assert k.get_layer("conv2d").padding == "valid"
    # a -1 pad folded into a max pooling of relus: its own layer keeps its value
    src = """
    model pool(x: f32[N, 6, 6, 2]) -> (a: tensor, b: tensor, c: tensor) {
        a = x
        b = x |> relu |> pad(((0, 0), (1, 1), (1, 1), (0, 0)), value=-1.0) |> maxpool(3, 2)
        c = b
    }
    """
    pooled = netc.compile(src)
    graph, _ = driver.optimized(pooled, {}, 2, keep_training=True)
    assert "pad" not in {n.op for n in graph}
    k = driver.emit(pooled, "keras")
    assert [(x.name, type(x).__name__) for x in k.layers] == [
        ("x", "InputLayer"),
        ("relu", "ReLU"),
        ("pad", "Pad"),
        ("maxpool", "MaxPooling2D"),
    ]
    assert k.get_layer("pad").value == -1.0
    for kind in INPUT_KINDS:
        feed = inputs_for(pooled.graph, 3, kind)
        want = reference.run(pooled.graph, feed, {}, wide=True)
        got = run_model(k, feed)
        for name in ("a", "b", "c"):  # an input and one value twice as outputs
            assert_close(got[name], want[name], err_msg=f"{name}, {kind} inputs")


def test_get_layer_by_netc_name_holds_that_layers_weights():
    k = keras_model("speech_classifier")
    _, weights = example("speech_classifier")
    conv, bn = "conv_block_1.conv1d", "conv_block_1.batchnorm"
    np.testing.assert_array_equal(k.get_layer(conv).kernel.numpy(), weights[f"{conv}.kernel"])
    layer = k.get_layer(bn)
    for short in ("gamma", "beta", "moving_mean", "moving_variance"):
        np.testing.assert_array_equal(getattr(layer, short).numpy(), weights[f"{bn}.{short}"])
    gru = k.get_layer("gru")
    np.testing.assert_array_equal(
        gru.cell.recurrent_kernel.numpy(), weights["gru.recurrent_kernel"]
    )


def test_weights_by_name_read_back_every_netc_weight():
    for stem in ("transformer_classifier", "lstm_forecaster", "speech_classifier"):
        _, weights = example(stem)
        got = to_keras.weights_by_name(keras_model(stem))
        assert set(got) == set(weights), stem
        for name, value in weights.items():
            np.testing.assert_array_equal(got[name], value, err_msg=name)


# --- files -------------------------------------------------------------------------------------


def test_the_keras_file_loads_back_with_keras_and_gives_the_same_outputs(tmp_path):
    k = keras_model("transformer_classifier")
    path = tmp_path / "t.keras"
    to_keras.save(k, path)
    loaded = keras.models.load_model(path)
    assert [x.name for x in loaded.layers] == [x.name for x in k.layers]
    assert type(loaded.optimizer).__name__ == "Adam"
    assert loaded.netc == k.netc  # signature, weight names and fit settings survive
    model, _ = example("transformer_classifier")
    feed = inputs_for(model.graph, 3)
    a, b = run_model(loaded, feed), run_model(k, feed)
    np.testing.assert_array_equal(a["logits"], b["logits"])


def test_same_source_and_seed_give_the_same_weights(tmp_path):
    model = netc.compile(DIGITS)
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        to_keras.save(driver.emit(model, "keras", seed=seed), tmp_path / f"{name}.keras")
    a, b, c = (
        to_keras.weights_by_name(keras.models.load_model(tmp_path / f"{n}.keras")) for n in "abc"
    )
    assert a.keys() == b.keys() == c.keys()
    assert all(np.array_equal(a[n], b[n]) for n in a)
    assert not all(np.array_equal(a[n], c[n]) for n in a)


def test_save_is_atomic(tmp_path, monkeypatch):
    k = driver.emit(netc.compile(DIGITS), "keras")
    path = tmp_path / "m.keras"
    to_keras.save(k, path)
    before = path.read_bytes()
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())

    def broken(self, filepath, *args, **kwargs):
        Path(filepath).write_bytes(b"half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(type(k), "save", broken)
    with pytest.raises(OSError, match="disk full"):
        to_keras.save(k, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_a_keras_file_must_end_in_keras(tmp_path):
    with pytest.raises(netc.NetcError, match=r"must end in \.keras"):
        to_keras.save(keras_model("mnist_mlp"), tmp_path / "m.h5")


def test_corrupt_and_foreign_files_are_netc_errors(tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(netc.NetcError, match="is not a valid Keras model"):
        netc.runtime.load(bad)
    import zipfile

    foreign = tmp_path / "foreign.keras"
    with zipfile.ZipFile(foreign, "w") as z:
        z.writestr("config.json", '{"class_name": "NoSuchLayer", "config": {}}')
    with pytest.raises(netc.NetcError, match="is not a valid Keras model"):
        netc.runtime.load(foreign)
    with pytest.raises(netc.NetcError, match="no such model file"):
        netc.runtime.load(tmp_path / "missing.keras")


# --- training ----------------------------------------------------------------------------------


def test_train_section_compiles_keras_loss_optimizer_and_metrics():
    k = keras_model("transformer_classifier")
    assert type(k.loss).__name__ == "SparseCategoricalCrossentropy"
    assert k.loss.get_config()["from_logits"] is True
    assert type(k.optimizer).__name__ == "Adam"
    assert np.isclose(float(k.optimizer.learning_rate), 1e-4)
    assert k.netc["train"] == {
        "loss": "sparse_categorical_crossentropy",
        "optimizer": "adam",
        "epochs": 3,
        "batch_size": 32,
        "validation_split": 0.0,
        "shuffle": True,
        "seed": 0,
    }


def test_fit_lowers_the_loss_on_digits_and_the_loaded_file_fits_too(tmp_path):
    x, y = digits_data()
    k = driver.emit(netc.compile(DIGITS), "keras")
    start, _ = k.evaluate(x, y, verbose=0)
    history = to_keras.fit(k, x, y, verbose=0)  # the train section's 2 epochs, batch 64
    assert len(history.history["loss"]) == 2
    trained, accuracy = k.evaluate(x, y, verbose=0)
    assert trained < 0.7 * start and accuracy > 0.6, (start, trained, accuracy)
    path = tmp_path / "digits.keras"
    to_keras.save(k, path)
    loaded = keras.models.load_model(path)
    assert np.isclose(loaded.evaluate(x, y, verbose=0)[0], trained)
    to_keras.fit(loaded, x, y, verbose=0, epochs=2)
    assert loaded.evaluate(x, y, verbose=0)[0] < trained


def test_a_netc_model_trains_like_the_hand_written_keras_model():
    # conv, batchnorm (batch statistics and moving updates in training), relu, pool, dense:
    # one epoch of the same steps gives the same weights as Keras' own layers
    src = DIGITS.replace(" |> dropout(0.2)", "")
    x, y = digits_data()
    x, y = x[:256], y[:256]
    k = driver.emit(netc.compile(src), "keras", seed=7)
    initial = k.get_weights()
    L = keras.layers
    image = keras.Input((8, 8, 1))
    h = L.Conv2D(8, 3, padding="same")(image)
    h = L.MaxPooling2D(2)(L.ReLU()(L.BatchNormalization()(h)))
    hand = keras.Model(image, L.Dense(10)(L.Flatten()(h)))
    hand.set_weights(k.get_weights())
    hand.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    for m in (k, hand):
        m.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0)
    for a, b, c in zip(k.get_weights(), hand.get_weights(), initial, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        assert not np.array_equal(a, c)  # every weight and statistic moved


def test_dropout_and_batchnorm_act_in_training_only():
    k = driver.emit(netc.compile(DIGITS), "keras")
    x, _ = digits_data()
    x = x[:32]
    inference = np.asarray(k(x, training=False))
    np.testing.assert_array_equal(inference, np.asarray(k(x, training=False)))
    assert not np.allclose(np.asarray(k(x, training=True)), inference)
    dropout = keras.Model(k.inputs, k.get_layer("dropout").output)
    kept = np.asarray(dropout(x, training=True)) != 0
    assert 0.6 < kept[np.asarray(dropout(x, training=False)) != 0].mean() < 0.95


def test_batchnorm_momentum_and_epsilon_are_netcs():
    src = """
    model m(x: f32[N, 4]) -> (y: tensor) {
        y = x |> batchnorm(epsilon=1e-5, momentum=0.9)
    }
    """
    k = driver.emit(netc.compile(src), "keras")
    bn = k.get_layer("batchnorm")
    assert (bn.epsilon, bn.momentum) == (1e-5, 0.9)
    x = np.random.default_rng(0).normal(2.0, 3.0, (64, 4)).astype(np.float32)
    old = bn.moving_mean.numpy().copy()
    k(x, training=True)  # a training step updates the moving statistics with Keras' momentum
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.9 * old + 0.1 * x.mean(0), rtol=1e-5)


def test_several_outputs_share_the_one_loss():
    src = """
    model two(x: f32[N, 6]) -> (a: tensor, b: tensor) {
        h = x |> dense(8) |> relu
        a = h |> dense(3)
        b = h |> dense(2)
    }

    train {
        loss = mse
        optimizer = sgd(learning_rate=0.1)
        metrics = [mean_absolute_error]
    }
    """
    k = driver.emit(netc.compile(src), "keras")
    assert [type(loss).__name__ for loss in k.loss] == ["MeanSquaredError"] * 2
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    targets = [rng.normal(size=(64, 3)), rng.normal(size=(64, 2))]
    history = k.fit(x, targets, epochs=3, verbose=0)
    assert {"dense_1_loss", "dense_2_loss"} <= set(history.history)
    assert history.history["loss"][-1] < history.history["loss"][0]


def language_example(name: str) -> str:
    """The full example of docs/language.md that defines model `name`."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "language.md").read_text()
    blocks = re.findall(r"^```net\n(.*?)^```$", text, re.M | re.S)
    return next(b for b in blocks if f"model {name}(" in b)


def test_block_weights_train_in_keras_and_frozen_ones_stay(tmp_path):
    # docs/language.md's vit_stem: a class token through broadcast_like, learned positions,
    # a LayerScale gamma and a gate read by sigmoid are weights of the netc layer reading them
    src = language_example("vit_stem").replace(
        'init="zeros", name="class_token"', 'init="zeros", name="class_token", trainable=false'
    )
    model = netc.compile(src)
    weights = randomized_weights(model.graph)
    k = driver.emit(model, "keras", weights=weights)
    rows = {i: 0 for i in model.graph.inputs} | {x.name: x.params for x in model.layers}
    assert {x.name: x.count_params() for x in k.layers} == rows
    assert type(k.get_layer("sigmoid")).__name__ == "Unary"  # owns `gate`
    feed = inputs_for(model.graph, 3, "large")
    want = reference.run(model.graph, feed, weights, wide=True)["y"]
    assert_close(run_model(k, feed)["y"], want, scope="model")
    path = tmp_path / "vit.keras"
    to_keras.save(k, path)
    loaded = keras.models.load_model(path)
    assert_close(run_model(loaded, feed)["y"], want, scope="model")
    loaded.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    loaded.fit(feed["image"], np.zeros((3, 17, 32), np.float32), epochs=2, verbose=0)
    trained = to_keras.weights_by_name(loaded)
    assert set(trained) == set(weights)
    np.testing.assert_array_equal(trained["tokens_0.class_token"], weights["tokens_0.class_token"])
    for name in ("gate", "scale.gamma", "tokens_0.positions", "conv2d.kernel"):
        assert not np.allclose(trained[name], weights[name]), name


def test_a_weight_read_by_two_layers_is_a_located_error():
    src = """model m(x: f32[N, 4]) -> (a: tensor, b: tensor) {
    g = weight([4])
    a = x * g
    b = x + g
}
"""
    model = netc.compile(src)
    with pytest.raises(netc.NetcError) as info:
        driver.emit(model, "keras")
    d = info.value.diagnostics[0]
    assert d.message == (
        "the keras backend cannot lower `add`: its weight `g` is read by several layers "
        "(mul, add), and a Keras variable belongs to one layer"
    )
    assert (d.span.line, d.span.col) == (4, 9)


# --- semantics Keras' layers would get wrong ----------------------------------------------------


def layer_types(src: str) -> dict[str, str]:
    graph = netc.compile(src).graph
    k = to_keras.emit(graph, randomized_weights(graph))
    return {layer.name: type(layer).__name__ for layer in k.layers}


def test_keras_same_only_where_it_pads_netcs_cells():
    types = layer_types(
        """
        model m(x: f32[N, 8, 8, 3]) -> (a: tensor, b: tensor, c: tensor, d: tensor) {
            a = x |> conv2d(4, 3, stride=2, padding="same", name="same")
            b = x |> conv2d(4, 3, padding=((1, 1), (1, 1)), name="same_pairs")
            c = x |> conv2d(4, 3, stride=2, padding=((1, 1), (1, 1)), name="other_pairs")
            d = x |> avgpool(3, stride=2, padding=((0, 1), (1, 1)), name="pool")
        }
        """
    )
    assert types["same"] == types["same_pairs"] == "Conv2D"
    assert types["other_pairs"] == "PaddedConv2D"  # TF's "same" would pad (0, 1) here
    assert types["pool"] == "PaddedAveragePooling2D"


def test_recurrent_attention_and_activation_settings_reach_keras():
    src = """
    model m(x: f32[N, 5, 6]) -> (a: tensor, b: tensor, c: tensor, d: tensor, e: tensor) {
        a = x |> gru(4, reset_after=false, go_backwards=true, return_sequences=true)
        b = x |> lstm(3, go_backwards=true)
        c = x |> multi_head_attention(heads=2, key_dim=3, causal=true)
        d = x |> gelu(approximate=true)
        e = x |> gelu
    }
    """
    graph = netc.compile(src).graph
    k = to_keras.emit(graph, randomized_weights(graph))
    gru = k.get_layer("gru").get_config()
    assert (gru["reset_after"], gru["go_backwards"], gru["return_sequences"]) == (False, True, True)
    assert k.get_layer("lstm").get_config()["go_backwards"] is True
    assert type(k.get_layer("gelu")).__name__ == "Unary"  # Keras' "gelu" string is exact
    assert k.get_layer("gelu").function == "gelu_tanh"
    assert k.get_layer("gelu_1").get_config()["activation"] == "gelu"
    feed = inputs_for(graph, 3, "large")
    want = reference.run(graph, feed, randomized_weights(graph), wide=True)
    got = run_model(k, feed)
    for name in want:
        assert_close(got[name], want[name], err_msg=name)


# --- the runtime -------------------------------------------------------------------------------


def test_load_a_net_file_for_keras(tmp_path):
    path = tmp_path / "digits.net"
    path.write_text(DIGITS)
    session = netc.runtime.load(path, target="keras")
    assert type(session).__name__ == "KerasSession" and session.device == "cpu"
    graph = netc.compile(path).graph
    weights = driver.model_weights(netc.compile(path))
    assert [(s.name, s.dtype, s.shape) for s in session.inputs] == [
        ("image", "f32", ("N", 8, 8, 1))
    ]
    for kind in INPUT_KINDS:
        feed = inputs_for(graph, 3, kind)
        want = reference.run(graph, feed, weights, wide=True)["logits"]
        assert_close(session.run(feed)["logits"], want, scope="model", err_msg=kind)


def test_session_checks_names_dtypes_and_symbols(tmp_path):
    src = """
    model m(x: f32[N, T, 4], z: f32[N, T, 4]) -> (y: tensor) {
        y = x + z
    }
    """
    path = tmp_path / "m.keras"
    to_keras.save(driver.emit(netc.compile(src), "keras"), path)
    session = netc.runtime.load(path)
    assert [s.shape for s in session.inputs] == [("N", "T", 4), ("N", "T", 4)]
    ok = np.ones((2, 3, 4), np.float32)
    np.testing.assert_array_equal(session.run({"x": ok, "z": ok})["y"], 2 * ok)
    with pytest.raises(netc.NetcError) as info:
        session.run({"x": ok, "z": np.ones((2, 5, 4), np.float32)})
    assert "axis 1 is 5, but T = 3 from another input" in str(info.value.diagnostics[0].notes)
    with pytest.raises(netc.NetcError):
        session.run({"x": ok.astype(np.float64), "z": ok})


def test_a_keras_model_netc_did_not_build_runs_by_its_own_names():
    L = keras.layers
    image = keras.Input((4, 3), name="image")
    steps = keras.Input((4,), name="steps", dtype="int32")
    h = L.Dense(5, name="hidden")(image)
    out = L.Add(name="total")([h, L.Embedding(10, 5, name="embed")(steps)])
    model = keras.Model([image, steps], [out, L.Flatten(name="flat")(h)])
    session = netc.runtime.load(model)
    assert [(s.name, s.dtype, s.shape) for s in session.inputs] == [
        ("image", "f32", (None, 4, 3)),
        ("steps", "i32", (None, 4)),
    ]
    assert [(s.name, s.shape) for s in session.outputs] == [
        ("total", (None, 4, 5)),
        ("flat", (None, 20)),
    ]
    feed = {
        "image": np.ones((2, 4, 3), np.float32),
        "steps": np.arange(8, dtype=np.int32).reshape(2, 4),
    }
    got = session.run(feed)
    want = model([feed["image"], feed["steps"]], training=False)
    for (name, value), expected in zip(got.items(), want, strict=True):
        np.testing.assert_array_equal(value, expected.numpy(), err_msg=name)


@pytest.mark.skipif(keras_runtime.gpu_available(), reason="a GPU is present: cuda would work")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(netc.NetcError, match="device cuda: TensorFlow sees no GPU here"):
        netc.runtime.load(keras_model("mnist_mlp"), device="cuda")


def test_netc_run_a_keras_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("digits.net").write_text(DIGITS)
    graph = netc.compile(Path("digits.net")).graph
    weights = randomized_weights(graph, seed=2)
    save_weights(weights, "w.npz")
    runner = CliRunner()
    made = runner.invoke(cli, ["digits.net", "-t", "keras", "--weights", "w.npz", "-q"])
    assert made.exit_code == 0, made.output
    assert "wrote digits.keras" in made.output
    for kind in INPUT_KINDS:
        feed = inputs_for(graph, 3, kind)
        np.savez("x.npz", **feed)
        ran = runner.invoke(cli, ["run", "digits.keras", "-i", "x.npz", "-o", "y.npz"])
        assert ran.exit_code == 0, ran.output
        want = reference.run(graph, feed, weights, wide=True)["logits"]
        with np.load("y.npz") as y:
            assert_close(y["logits"], want, scope="model", err_msg=kind)


def test_netc_verify_keras_passes_and_points_at_a_broken_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("m.net").write_text(
        "model m(x: f32[N, 6]) -> (y: tensor) {\n"
        "    h = x |> dense(8) |> relu\n"
        "    y = h |> dense(4) |> softmax\n"
        "}\n"
    )
    for path in ("m.net", str(EXAMPLES[STEMS.index("lenet")])):
        ok = CliRunner().invoke(cli, ["verify", path, "-t", "keras"])
        assert ok.exit_code == 0, ok.output
        assert "the keras backend agrees with the reference" in ok.stdout

    def sigmoid(ctx, node):  # a broken lowering: softmax computed as a sigmoid
        return ctx.apply(ctx.layers.Activation("sigmoid", **ctx.kw()), ctx.tensor(node.inputs[0]))

    monkeypatch.setitem(to_keras.RULES.table, "softmax", sigmoid)
    bad = CliRunner().invoke(cli, ["verify", "m.net", "-t", "keras"])
    assert bad.exit_code == 1
    assert bad.stderr.startswith("m.net:3:26: error: the keras backend differs from the reference")
    assert "Traceback" not in bad.output


# --- weights trained in Keras, deployed elsewhere ----------------------------------------------


@cache
def trained_digits() -> tuple[Path, object, dict[str, np.ndarray]]:
    """digits.net (in a temporary folder), its Keras model trained one epoch, and the trained
    weights by netc name."""
    import tempfile

    path = Path(tempfile.mkdtemp()) / "digits.net"
    path.write_text(DIGITS)
    k = driver.emit(netc.compile(path), "keras")
    x, y = digits_data()
    to_keras.fit(k, x, y, epochs=1, verbose=0)
    return path, k, to_keras.weights_by_name(k)


@pytest.mark.parametrize("target", ["onnx", "tf"])
@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_weights_trained_in_keras_deploy_by_netc_name(tmp_path, suffix, target):
    path, k, trained = trained_digits()
    model = netc.compile(path)
    initial = driver.model_weights(model)
    assert set(trained) == set(initial)
    assert not np.allclose(trained["dense.kernel"], initial["dense.kernel"])
    file = tmp_path / f"trained{suffix}"
    save_weights(trained, file)
    for name, value in load_weights(file).items():
        np.testing.assert_array_equal(value, trained[name])
    deployed = netc.runtime.load(path, target=target, weights=file)
    keras_session = netc.runtime.load(k)
    for kind in INPUT_KINDS:
        feed = {"image": inputs_for(model.graph, 3, kind)["image"]}
        assert_close(
            deployed.run(feed)["logits"],
            keras_session.run(feed)["logits"],
            scope="model",
            err_msg=kind,
        )


# --- without TensorFlow ------------------------------------------------------------------------


def test_missing_tensorflow_is_one_error_naming_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "digits.net"
    path.write_text(DIGITS)
    saved = tmp_path / "mlp.keras"
    to_keras.save(keras_model("mnist_mlp"), saved)
    real_import = builtins.__import__

    def no_tensorflow(name, *args, **kwargs):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("No module named 'tensorflow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "tensorflow")
    monkeypatch.setattr(builtins, "__import__", no_tensorflow)
    out = CliRunner().invoke(cli, [str(path), "-t", "keras", "-q"])
    assert out.exit_code == 1
    assert "error: the keras target needs TensorFlow, which is not installed" in out.stderr
    assert "pip install 'netc[tf]'" in out.stderr
    assert "Traceback" not in out.output
    assert not (tmp_path / "digits.keras").exists()
    for load in (lambda: netc.runtime.load(saved), lambda: netc.runtime.load(path, target="keras")):
        with pytest.raises(netc.NetcError) as info:
            load()
        assert "needs TensorFlow" in info.value.diagnostics[0].message
