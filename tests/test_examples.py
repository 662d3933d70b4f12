"""The example networks: each compiles cleanly, has its published parameter count and its
declared output types, and the small ones run through the numpy reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import netc
from netc.runtime import reference
from netc.weights import initial_weights

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
NON_TRAINABLE = {"resnet50": 53_120, "mobilenet_v2": 34_112, "resnet18": 9_600}


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


# (example, input shape without the batch axis, output shape without it); the LSTM's T is
# symbolic, so two sequence lengths are run.
SMALL = [
    ("mnist_mlp", (28, 28), (10,)),
    ("lenet", (28, 28, 1), (10,)),
    ("lstm_forecaster", (5, 8), (1,)),
    ("lstm_forecaster", (11, 8), (1,)),
]


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize(
    "stem, in_shape, out_shape", SMALL, ids=[f"{s}-{i[0]}" for s, i, _ in SMALL]
)
def test_small_example_runs_on_the_reference(stem, in_shape, out_shape, batch):
    model = compile_example(stem)
    (name,) = model.graph.inputs
    (output,) = [o for o, _ in model.graph.outputs]
    x = np.random.default_rng(0).uniform(0, 1, (batch, *in_shape)).astype(np.float32)
    out = reference.run(model.graph, {name: x}, initial_weights(model.graph))
    assert out[output].shape == (batch, *out_shape)
    assert out[output].dtype == np.float32
    assert np.isfinite(out[output]).all()


def test_mnist_mlp_samples_are_independent_of_the_batch():
    model = compile_example("mnist_mlp")
    weights = initial_weights(model.graph)
    x = np.random.default_rng(1).uniform(0, 1, (3, 28, 28)).astype(np.float32)
    batched = reference.run(model.graph, {"image": x}, weights)["logits"]
    single = reference.run(model.graph, {"image": x[1:2]}, weights)["logits"]
    np.testing.assert_allclose(batched[1:2], single, rtol=1e-5, atol=1e-6)
