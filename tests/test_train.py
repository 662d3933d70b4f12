"""`netc train` and netc.runtime.train: the data checked against the model's signature (one
error listing every problem), training from the train section (callbacks, class weights,
schedules, per-output losses, the command line's overrides), what a run writes (weights by
netc name, history JSON, plot, .keras), determinism, resuming to the same weights as an
uninterrupted run, Ctrl-C, and trained weights deployed to ONNX, TensorFlow, Keras and TVM
--inference with the trained Keras model's outputs. Distribution: test_train_distributed.py.

Models are tiny and data is scikit-learn's digits (8x8 images, shipped with it), so each run
takes a second or two once TensorFlow is loaded.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conformance import INPUT_KINDS, inputs_for

import netc
import netc.runtime
from netc.backends import keras_layers, tensorflow, to_keras
from netc.cli import cli
from netc.runtime import train as training
from netc.runtime import train_data
from netc.runtime.tolerance import assert_close
from netc.weights import initial_weights, load_weights

keras = keras_layers.keras
tf = tensorflow()

DIGITS = """\
model digits(image: f32[N, 8, 8, 1]) -> (logits: f32[N, 10]) {
    x = image |> conv2d(8, 3, padding="same") |> batchnorm |> relu |> maxpool(2)
    logits = x |> flatten |> dropout(0.2) |> dense(10)
}

train {
    loss = sparse_categorical_crossentropy(from_logits=true)
    optimizer = adam(learning_rate=cosine_decay(0.01, 100))
    metrics = [accuracy]
    epochs = 3
    batch_size = 32
    validation_split = 0.2
    seed = 3
    callbacks = [early_stopping(patience=3, restore_best_weights=true),
                 model_checkpoint(monitor="val_accuracy")]
}
"""
MLP = """\
model mlp(x: f32[N, 64]) -> (logits: f32[N, 10]) {
    logits = x |> dense(16) |> relu |> dense(10)
}

train {
    loss = sparse_categorical_crossentropy(from_logits=true)
    optimizer = sgd(learning_rate=0.05)
    metrics = [accuracy]
    epochs = 2
    batch_size = 20
    seed = 5
}
"""


@cache
def digits(n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images[:n] / 16.0).astype(np.float32)[..., None], d.target[:n].astype(np.int64)


def write(tmp_path: Path, text: str, name: str = "model.net") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def digits_npz(tmp_path: Path, name: str = "train.npz", n: int = 400) -> Path:
    x, y = digits(n)
    np.savez(tmp_path / name, image=x, logits=y)
    return tmp_path / name


def flat_npz(tmp_path: Path, name: str = "flat.npz", n: int = 200) -> Path:
    x, y = digits(n)
    np.savez(tmp_path / name, x=x.reshape(n, 64), logits=y)
    return tmp_path / name


COUNTER = itertools.count()


def run_cli(*args: str):
    out = CliRunner().invoke(cli, list(args))
    assert out.exit_code == 0, out.output
    return out


def problems(data: dict, source: str = MLP) -> list[str]:
    """The notes of the one error checking `data` against a model gives."""
    model = netc.compile(source)
    with pytest.raises(netc.NetcError) as info:
        train_data.check_data(train_data.Data(data, "data.npz"), model, model.train)
    (d,) = info.value.diagnostics
    return [d.message, *d.notes]


# --- data in --------------------------------------------------------------------------------------


def test_data_that_does_not_fit_is_one_error_listing_every_problem():
    x, y = digits(10)
    assert problems({"x": x.reshape(10, 64)[:, :60], "logits": y.astype(np.float32), "z": y}) == [
        "data.npz does not fit model `mlp` (3 problems)",
        "input `x` has shape [10, 60], the model needs f32[N, 64] (axis 1 must be 64)",
        "target `logits` has dtype float32, the model needs class indices (ints)",
        "unexpected array `z`; the model takes x and trains logits",
    ]
    assert problems({"logits": y}) == [
        "data.npz does not fit model `mlp` (1 problem)",
        "missing input `x`: f32[N, 64]",
    ]
    assert problems({"x": x.reshape(10, 64)})[1:] == [
        "missing target `logits` (sparse_categorical_crossentropy): class indices, ints of "
        "shape [N]"
    ]
    bad = x.reshape(10, 64).copy()
    bad[3, 5] = np.nan
    labels = y.copy()
    labels[7] = 12
    assert problems({"x": bad, "logits": labels})[1:] == [
        "input `x` holds 1 NaN or infinite value",
        "target `logits` holds class 12 (sample 7); output `logits` scores 10 classes",
    ]
    assert problems({"x": x.reshape(10, 64), "logits": y[:9]})[1:] == [
        "the arrays hold different numbers of samples: x 10, logits 9"
    ]
    assert problems({"x": x.reshape(10, 64).astype(str), "logits": y})[1:] == [
        "input `x` has dtype <U32, the model needs numbers (f32)"
    ]


def test_targets_fit_their_loss_and_symbols_agree():
    seq = """
    model s(x: f32[N, T, 3]) -> (y: f32[N, T, 2], p: f32[N, 4]) {
        h = x |> dense(2)
        y = h
        p = x |> global_avgpool |> dense(4)
    }
    train { loss = per_output(y=mse, p=categorical_crossentropy) }
    """
    rng = np.random.default_rng(0)
    got = problems(
        {
            "x": rng.normal(size=(5, 7, 3)),
            "y": rng.normal(size=(5, 6, 2)),
            "p": rng.normal(size=(5, 3)),
        },
        seq,
    )
    assert got[1:] == [
        "target `y` axis 1 is 6, but T = 7 in `x`",
        "target `p` has shape [5, 3], the model needs f32[N, 4] (axis 1 must be 4)",
    ]
    model = netc.compile(seq)
    ok = {
        "x": rng.normal(size=(5, 7, 3)),  # float64: cast to the model's f32
        "y": rng.normal(size=(5, 7, 2)),
        "p": np.eye(4)[[0, 1, 2, 3, 0]].astype(np.int8),
    }
    arrays = train_data.check_data(train_data.Data(ok, "ok"), model, model.train)
    assert {k: v.dtype.name for k, v in arrays.items()} == {
        "x": "float32",
        "y": "float32",
        "p": "float32",
    }
    np.testing.assert_array_equal(arrays["x"], ok["x"].astype(np.float32))


def test_npy_pairs_and_named_npy_files_read_as_an_npz(tmp_path):
    x, y = digits(20)
    np.save(tmp_path / "x.npy", x.reshape(20, 64))
    np.save(tmp_path / "y.npy", y)
    model = netc.compile(MLP)
    pair = train_data.read_data([tmp_path / "x.npy", tmp_path / "y.npy"], model, model.train)
    named = train_data.read_data(
        [f"x={tmp_path / 'x.npy'}", f"logits={tmp_path / 'y.npy'}"], model, model.train
    )
    for data in (pair, named):
        assert sorted(data.arrays) == ["logits", "x"]
        np.testing.assert_array_equal(data.arrays["logits"], y)
    two = netc.compile(
        "model t(a: f32[N, 2], b: f32[N, 2]) -> (y: f32[N, 2]) { y = a + b }\ntrain { loss = mse }"
    )
    with pytest.raises(netc.NetcError) as info:
        train_data.read_data([tmp_path / "x.npy", tmp_path / "y.npy"], two, two.train)
    assert info.value.diagnostics[0].message == (
        "two .npy files are the input and the target of a model with one input and one "
        "trained output; model `t` takes 2 (a, b) and trains 1 (y)"
    )
    with pytest.raises(netc.NetcError, match="no such data file: .*missing.npz"):
        train_data.read_data([tmp_path / "missing.npz"], model, model.train)
    (tmp_path / "pickled.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(netc.NetcError, match="cannot read .*pickled.npy"):
        train_data.read_data([f"x={tmp_path / 'pickled.npy'}"], model, model.train)


def test_validation_split_takes_the_last_samples_as_keras_does():
    from keras.src.trainers.data_adapters.array_slicing import train_validation_split

    x, y = digits(23)
    ours = train_data.split({"image": x, "logits": y}, 0.3)
    (kx, ky), (vx, vy) = train_validation_split((x, y), validation_split=0.3)
    np.testing.assert_array_equal(ours[0]["image"], kx)
    np.testing.assert_array_equal(ours[1]["logits"], vy)
    with pytest.raises(netc.NetcError, match="validation_split 0.5 of 1 sample leaves no"):
        train_data.split({"image": x[:1]}, 0.5)


def test_an_image_folder_trains_an_image_model(tmp_path):
    x, y = digits(60)
    for i, (image, label) in enumerate(zip(x, y % 2)):
        folder = tmp_path / "images" / ("even", "odd")[label]
        folder.mkdir(parents=True, exist_ok=True)
        png = tf.io.encode_png(tf.constant((image * 255).astype(np.uint8)))
        (folder / f"{i}.png").write_bytes(png.numpy())
    source = write(
        tmp_path,
        DIGITS.replace("10)", "2)")  # dense(2) -> f32[N, 2]: even or odd
        .replace("10]", "2]")
        .replace("image |>", "(image / 255.0) |>"),
    )
    model = netc.compile(source)
    data = train_data.read_data([tmp_path / "images"], model, model.train)
    assert data.classes == ("even", "odd")
    pixels = (x[0] * 255).astype(np.uint8)  # what the PNG holds, read back as 0-255 floats
    np.testing.assert_array_equal(data.arrays["image"][0], pixels.astype(np.float32))
    assert data.arrays["logits"].tolist() == sorted((y % 2).tolist())  # read folder by folder
    out = run_cli(
        "train", str(source), "--data", str(tmp_path / "images"), "--epochs", "1", "--json"
    )
    summary = json.loads(out.stdout.splitlines()[-1])
    assert summary["classes"] == ["even", "odd"] and summary["epochs"] == 1
    ten = netc.compile(DIGITS)
    with pytest.raises(netc.NetcError, match="has 2 class folders .even, odd., output `logits`"):
        train_data.read_data([tmp_path / "images"], ten, ten.train)


# --- one run of the digits model, and what it wrote -----------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`netc train` of DIGITS for 3 epochs, with --keras; the folder and the CLI's output."""
    d = tmp_path_factory.mktemp("digits")
    source = write(d, DIGITS, "digits.net")
    out = run_cli(
        "train", str(source), "--data", str(digits_npz(d)), "-o", str(d / "w.safetensors"),
        "--keras", str(d / "w.keras"), "--json",
    )  # fmt: skip
    return d, out


def test_training_writes_weights_history_plot_and_the_keras_model(trained):
    d, out = trained
    model = netc.compile(d / "digits.net")
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    epochs, summary = lines[:-1], lines[-1]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    logged = model.train.log_names()
    assert set(epochs[0]) == {"epoch", "epochs", *logged, *(f"val_{k}" for k in logged)}
    assert summary["ok"] and summary["epochs"] == 3 and summary["replicas"] == 1
    weights = load_weights(d / "w.safetensors")
    assert set(weights) == set(model.weights)
    history = json.loads((d / "w.history.json").read_text())
    assert history["history"] == {
        k: [e[k] for e in epochs] for k in epochs[0] if k not in ("epoch", "epochs")
    }
    assert history["history"]["loss"][-1] < history["history"]["loss"][0]
    import matplotlib.image

    png = matplotlib.image.imread(d / "w.history.png")
    panels = 2  # loss and accuracy, each with its validation curve; 80 dpi, 2.6 in a panel
    assert png.shape[:2] == (round(2.6 * panels * 80), 6 * 80)
    assert (png[..., :3] < 0.5).mean() > 0.01  # curves and labels drawn, not a blank page
    loaded = keras.models.load_model(d / "w.keras")
    for name, value in to_keras.weights_by_name(loaded).items():
        np.testing.assert_array_equal(value, weights[name])
    best = load_weights(d / "w.best.safetensors")  # model_checkpoint without a path
    assert set(best) == set(weights)
    state = json.loads((d / "w.ckpt" / "state.json").read_text())
    assert state["epoch"] == 3 and state["history"] == history["history"]


def test_trained_weights_deploy_to_every_backend_with_the_keras_models_outputs(trained, tmp_path):
    # `netc MODEL.net --weights w.safetensors -t onnx|tf|tvm` and `-t keras --inference`, run
    # by netc's runtime, against the trained Keras model (model(x, training=False))
    d, _ = trained
    trained_model = keras.models.load_model(d / "w.keras")
    graph = netc.compile(d / "digits.net").graph
    artifacts = {
        "onnx": ("digits.onnx", []),
        "tf": ("digits.savedmodel", []),
        "keras": ("digits.keras", ["--inference"]),
        "tvm": ("digits.tvm", []),
    }
    for target, (name, extra) in artifacts.items():
        run_cli(
            str(d / "digits.net"), "--weights", str(d / "w.safetensors"), "-t", target,
            "-o", str(tmp_path / name), "-q", *extra,
        )  # fmt: skip
        session = netc.runtime.load(tmp_path / name, device="cpu")
        for kind in INPUT_KINDS:
            for batch in (1, 3):
                feed = inputs_for(graph, batch, kind)
                want = np.asarray(trained_model(feed["image"], training=False))
                assert_close(
                    session.run(feed)["logits"],
                    want,
                    scope="model",
                    err_msg=f"{target} {kind} batch {batch}",
                )


def test_the_same_data_spec_and_seed_give_the_same_weights(trained, tmp_path):
    d, _ = trained
    again = tmp_path / "again.safetensors"
    quiet = run_cli(
        "train", str(d / "digits.net"), "--data", str(d / "train.npz"), "-o", str(again), "-q"
    )  # fmt: skip
    assert quiet.output == ""  # -q: no progress bar, no summary
    assert again.read_bytes() == (d / "w.safetensors").read_bytes()
    other = tmp_path / "other.safetensors"
    run_cli(
        "train", str(d / "digits.net"), "--data", str(d / "train.npz"), "-o", str(other), "-q",
        "--seed", "4",
    )  # fmt: skip
    assert other.read_bytes() != again.read_bytes()


def test_a_resumed_run_ends_with_the_uninterrupted_runs_weights(trained, tmp_path):
    d, _ = trained
    model = netc.compile(d / "digits.net")
    data = train_data.read_data([d / "train.npz"], model, model.train)
    options = dict(checkpoint=tmp_path / "ckpt", best_path=tmp_path / "best.npz", verbose=0)

    def stop_after_two(epoch, logs):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        training.train(model, data, on_epoch=stop_after_two, **options)
    assert json.loads((tmp_path / "ckpt" / "state.json").read_text())["epoch"] == 2
    resumed = training.train(model, data, resume=True, **options)
    assert (resumed.initial_epoch, resumed.epochs) == (2, 3)
    straight = load_weights(d / "w.safetensors")
    for name, value in resumed.weights.items():
        np.testing.assert_array_equal(value, straight[name], err_msg=name)
    history = json.loads((d / "w.history.json").read_text())["history"]
    assert resumed.history == history
    done = training.train(model, data, resume=True, **options)
    assert (done.initial_epoch, done.epochs) == (3, 3)  # nothing left: the state's weights
    for name, value in done.weights.items():
        np.testing.assert_array_equal(value, straight[name])


def test_ctrl_c_stops_cleanly_and_keeps_the_last_training_state(trained, tmp_path):
    d, _ = trained
    state = tmp_path / "w.ckpt" / "state.json"
    command = [
        sys.executable, "-m", "netc", "train", str(d / "digits.net"), "--data",
        str(d / "train.npz"), "-o", str(tmp_path / "w.safetensors"), "--epochs", "100000", "-q",
    ]  # fmt: skip
    # a child of a shell may inherit an ignored SIGINT: give it Python's KeyboardInterrupt back
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        import time

        deadline = time.monotonic() + 120
        while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        # a Ctrl-C can be lost (once in a full run a training of 200 epochs, 10 s, went on to
        # its end and exited 0): a user presses it again, and so does this test, at most twice
        # more, on a training too long to end by itself meanwhile
        for _ in range(3):
            proc.send_signal(signal.SIGINT)
            try:
                _, err = proc.communicate(timeout=20)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    saved = json.loads(state.read_text())["epoch"]
    assert 1 <= saved < 100000
    assert err.strip() == (
        f"netc: interrupted; the training state in {tmp_path / 'w.ckpt'} holds epoch {saved}: "
        "continue with --resume"
    )
    assert "Traceback" not in err
    assert not (tmp_path / "w.safetensors").exists()  # no final weights from a stopped run
    model = netc.compile(d / "digits.net")
    state_weights = training.read_state(tmp_path / "w.ckpt", model).weights
    assert set(state_weights) == set(model.weights)


# --- the train section at work --------------------------------------------------------------------


def fit(tmp_path, source: str, **options):
    """netc.runtime.train on the flat digits for `source`; the Result."""
    model = netc.compile(write(tmp_path, source, f"m{next(COUNTER)}.net"))
    data = train_data.read_data([flat_npz(tmp_path)], model, model.train)
    return training.train(model, data, verbose=0, **options)


def test_the_command_line_overrides_the_section(tmp_path):
    source = write(tmp_path, MLP)
    out = run_cli(
        "train", str(source), "--data", str(flat_npz(tmp_path)), "--epochs", "3",
        "--batch-size", "7", "--lr", "0.2", "--seed", "9", "--keras", str(tmp_path / "m.keras"),
        "--json", "--no-plot",
    )  # fmt: skip
    assert len(out.stdout.splitlines()) == 4  # 3 epochs and the summary
    k = keras.models.load_model(tmp_path / "m.keras")
    assert np.isclose(float(k.optimizer.learning_rate), 0.2)
    assert (k.netc["train"]["epochs"], k.netc["train"]["batch_size"]) == (3, 7)
    assert k.netc["train"]["seed"] == 9
    assert int(k.optimizer.iterations) == 3 * 29  # ceil(200 / 7) steps an epoch
    assert not (tmp_path / "model.history.png").exists()
    assert (tmp_path / "model.safetensors").exists()  # -o's default: beside the source


def test_early_stopping_stops_and_restores_the_best_weights(tmp_path):
    source = MLP.replace("epochs = 2", "epochs = 6").replace(
        "seed = 5",
        'seed = 5\n    callbacks = [early_stopping(monitor="loss", min_delta=100, patience=1)]',
    )
    result = fit(tmp_path, source)
    assert result.stopped_early and result.epochs == 2  # no epoch improves by 100
    assert len(result.history["loss"]) == 2


def test_model_checkpoint_keeps_the_best_epochs_weights(tmp_path):
    # the first epoch has the largest loss: with mode "max" it stays the best, so the file
    # holds the weights after epoch 1, which a 1-epoch run reproduces exactly
    best = tmp_path / "best.npz"
    source = MLP.replace(
        "seed = 5",
        f'seed = 5\n    callbacks = [model_checkpoint(path="{best}", monitor="loss", mode="max")]',
    )
    fit(tmp_path, source.replace("epochs = 2", "epochs = 3"))
    one = fit(tmp_path, source.replace("epochs = 2", "epochs = 1"))
    saved = load_weights(best)
    for name, value in one.weights.items():
        np.testing.assert_array_equal(saved[name], value)


def test_reduce_lr_on_plateau_lowers_the_rate(tmp_path):
    source = MLP.replace("epochs = 2", "epochs = 3").replace(
        "seed = 5",
        'seed = 5\n    callbacks = [reduce_lr_on_plateau(monitor="loss", min_delta=100, '
        "patience=0, factor=0.5)]",
    )
    result = fit(tmp_path, source)
    # Keras logs the rate an epoch trained with, then halves it from the second epoch on (the
    # first sets the best value to improve on)
    np.testing.assert_allclose(result.history["learning_rate"], [0.05, 0.05, 0.025], rtol=1e-6)
    assert np.isclose(float(result.keras_model.optimizer.learning_rate), 0.0125)


def test_class_weights_scale_each_samples_loss(tmp_path):
    # plain SGD: weighing every class by 2 doubles every gradient, which is doubling the rate
    weighted = MLP.replace(
        "seed = 5", "seed = 5\n    class_weight = [2, 2, 2, 2, 2, 2, 2, 2, 2, 2]"
    )
    doubled = fit(tmp_path, weighted).weights
    faster = fit(tmp_path, MLP.replace("learning_rate=0.05", "learning_rate=0.1")).weights
    plain = fit(tmp_path, MLP).weights
    for name in plain:
        np.testing.assert_allclose(doubled[name], faster[name], rtol=1e-5, atol=1e-7)
        assert not np.allclose(doubled[name], plain[name], rtol=1e-3, atol=1e-5)
    # one class weighed up: only its samples pull harder
    skewed = fit(tmp_path, weighted.replace("[2, 2, 2,", "[50, 1, 1,").replace(" 2, 2]", " 1, 1]"))
    assert not np.allclose(skewed.weights["dense_1.bias"], plain["dense_1.bias"])
    assert skewed.weights["dense_1.bias"][0] - plain["dense_1.bias"][0] > 0.05


def test_a_schedule_and_clipping_reach_the_keras_optimizer(tmp_path):
    source = MLP.replace(
        "sgd(learning_rate=0.05)",
        "adam(learning_rate=exponential_decay(0.1, 10, 0.5, staircase=true), clipnorm=2.0)",
    )
    result = fit(tmp_path, source)
    optimizer = result.keras_model.optimizer
    schedule = optimizer._learning_rate
    assert type(schedule).__name__ == "ExponentialDecay"
    assert schedule.get_config() | {"name": None} == {
        "initial_learning_rate": 0.1,
        "decay_steps": 10,
        "decay_rate": 0.5,
        "staircase": True,
        "name": None,
    }
    assert optimizer.clipnorm == 2.0
    assert np.isclose(float(optimizer.learning_rate), 0.1 * 0.5 ** (20 // 10))  # 20 steps


def test_per_output_trains_the_named_outputs_with_netcs_names_in_the_logs(tmp_path):
    source = """
    model two(x: f32[N, 64]) -> (logits: f32[N, 10], size: f32[N, 1]) {
        h = x |> dense(16) |> relu
        logits = h |> dense(10)
        size = h |> dense(1)
    }
    train {
        loss = per_output(logits=sparse_categorical_crossentropy(from_logits=true), size=mse)
        loss_weights = per_output(logits=1, size=0.5)
        metrics = per_output(logits=[accuracy], size=[mae])
        validation_split = 0.25
        epochs = 2
        callbacks = [early_stopping(monitor="val_logits_accuracy", patience=5)]
    }
    """
    model = netc.compile(write(tmp_path, source))
    x, y = digits(200)
    data = train_data.Data(
        {"x": x.reshape(200, 64), "logits": y, "size": (y / 10.0)[:, None]}, "arrays"
    )
    result = training.train(model, data, verbose=0)
    logged = model.train.log_names()
    assert logged == ("loss", "logits_loss", "size_loss", "logits_accuracy", "size_mae")
    assert set(result.history) == {*logged, *(f"val_{k}" for k in logged)}
    keras_names = result.keras_model.output_names
    assert keras_names != ["logits", "size"]  # Keras names outputs after their layers


def test_an_output_per_output_leaves_out_is_not_trained(tmp_path):
    source = """
    model two(x: f32[N, 64]) -> (logits: f32[N, 10], size: f32[N, 1]) {
        h = x |> dense(16) |> relu
        logits = h |> dense(10)
        size = h |> dense(1)
    }
    train {
        loss = per_output(logits=sparse_categorical_crossentropy(from_logits=true))
        optimizer = sgd(learning_rate=0.1)
        epochs = 2
    }
    """
    model = netc.compile(write(tmp_path, source))
    x, y = digits(200)
    data = train_data.Data({"x": x.reshape(200, 64), "logits": y}, "arrays")
    result = training.train(model, data, verbose=0)
    assert set(result.history) == {"loss"}
    initial = initial_weights(model.graph, model.train.seed)
    for name in ("dense_2.kernel", "dense_2.bias"):  # the `size` head
        np.testing.assert_array_equal(result.weights[name], initial[name])
    for name in ("dense.kernel", "dense_1.kernel"):
        assert not np.allclose(result.weights[name], initial[name])


# --- errors before training -----------------------------------------------------------------------


def cli_error(*args: str) -> str:
    out = CliRunner().invoke(cli, list(args))
    assert out.exit_code == 1, out.output
    assert "Traceback" not in out.output
    return out.stderr


def test_errors_come_before_training(tmp_path):
    data = str(flat_npz(tmp_path))
    bare = write(tmp_path, MLP.split("train {")[0], "bare.net")
    assert "error: " + f"{bare} has no train section" in cli_error(
        "train", str(bare), "--data", data
    )
    source = str(write(tmp_path, MLP))
    assert "-o w.h5: the file must end in .safetensors or .npz" in cli_error(
        "train", source, "--data", data, "-o", "w.h5"
    )
    assert "there is no folder" in cli_error("train", source, "--data", data, "-o", "no/w.npz")
    assert f"no training state in {tmp_path / 'model.ckpt'} to resume from" in cli_error(
        "train", source, "--data", data, "--resume"
    )
    val = write(
        tmp_path,
        MLP.replace("seed = 5", "seed = 5\n    callbacks = [early_stopping]"),
        "val.net",
    )
    assert (
        "callback `early_stopping` monitors `val_loss`, but there is no validation data"
        in cli_error("train", str(val), "--data", data)
    )
    piecewise = write(
        tmp_path,
        MLP.replace("sgd(learning_rate=0.05)", "sgd(piecewise_constant_decay([10], [0.1, 0.01]))"),
        "pw.net",
    )
    assert "--lr: the learning rate is a `piecewise_constant_decay` schedule" in cli_error(
        "train", str(piecewise), "--data", data, "--lr", "0.1"
    )


def test_json_errors_are_one_line(tmp_path):
    source = str(write(tmp_path, MLP))
    out = CliRunner().invoke(cli, ["train", source, "--data", str(tmp_path / "none.npz"), "--json"])
    assert out.exit_code == 1
    (line,) = out.stdout.splitlines()
    assert json.loads(line)["diagnostics"][0]["message"] == (
        f"no such data file: {tmp_path / 'none.npz'}"
    )


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(netc.NetcError, match="reads the cluster from TF_CONFIG, which is not set"):
        training.make_strategy("multi-worker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps"}}')
    with pytest.raises(netc.NetcError, match="TF_CONFIG does not name this task"):
        training.make_strategy("multi-worker")


def test_netc_train_help_never_imports_tensorflow():
    code = (
        "import sys\nfrom netc.cli import main\n"
        "main(['train', '--help'], standalone_mode=False)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "--resume" in done.stdout and "--strategy [mirrored|multi-worker]" in done.stdout
