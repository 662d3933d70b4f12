"""`netc train --strategy`: tf.distribute's MirroredStrategy on one machine (tested on the CPU
split into two logical devices) and MultiWorkerMirroredStrategy across processes (two workers
on localhost, from TF_CONFIG). Each splits every batch across the replicas and sums their
gradients, so it ends with the weights a single device reaches, up to the rounding of the sum.

Each run is a fresh process (TensorFlow's devices and collective ops are set up once per
process), bounded by a timeout that kills it: a hung worker fails the test, never CI.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest

import netc
from netc.runtime import train as training
from netc.runtime import train_data
from netc.runtime.tolerance import assert_close
from netc.weights import initial_weights, load_weights

TIMEOUT = 240  # seconds a run may take in all (they take 20-60 s on a busy 2-core machine)

# no batchnorm or dropout: each replica would normalize and drop on its own share of a batch
MLP = """\
model mlp(x: f32[N, 64]) -> (logits: f32[N, 10]) {
    logits = x |> dense(16) |> relu |> dense(10)
}

train {
    loss = sparse_categorical_crossentropy(from_logits=true)
    optimizer = sgd(learning_rate=0.1, momentum=0.9)
    metrics = [accuracy]
    epochs = 2
    batch_size = 20
    validation_split = 0.2
    seed = 1
    callbacks = [model_checkpoint(monitor="val_accuracy")]
}
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """mlp.net and 270 samples of the flat digits: 216 train in 10 batches of 20 and one of 16,
    which splits evenly over two replicas (Keras averages the replicas' mean losses, which is
    the mean over the batch only when their shares are equal)."""
    from sklearn.datasets import load_digits

    d = tmp_path_factory.mktemp("distributed")
    (d / "mlp.net").write_text(MLP)
    digits = load_digits()
    x = (digits.data[:270] / 16.0).astype(np.float32)
    np.savez(d / "flat.npz", x=x, logits=digits.target[:270].astype(np.int32))
    return d


@cache
def single_device(folder: Path) -> dict[str, np.ndarray]:
    """The weights one device reaches (in this process)."""
    model = netc.compile(folder / "mlp.net")
    data = train_data.read_data([folder / "flat.npz"], model, model.train)
    return training.train(model, data, best_path=folder / "single.best.npz", verbose=0).weights


def netc_train(folder: Path, output: str, *extra: str) -> list[str]:
    return [
        "train", str(folder / "mlp.net"), "--data", str(folder / "flat.npz"),
        "-o", str(folder / output), "--json", "--no-plot", *extra,
    ]  # fmt: skip


def run(commands: list[list[str]], envs: list[dict[str, str]]) -> list[tuple[int, str, str]]:
    """Start every command at once; wait for all, killing every one at the timeout."""
    procs = [
        subprocess.Popen(c, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c, e in zip(commands, envs, strict=True)
    ]
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=TIMEOUT)
            results.append((p.returncode, out, err))
    except subprocess.TimeoutExpired:
        pytest.fail(f"a training process ran past {TIMEOUT} s")
    finally:
        for p in procs:
            p.kill()
    return results


def check_weights(folder: Path, output: str) -> None:
    got = load_weights(folder / output)
    want = single_device(folder)
    assert set(got) == set(want)
    initial = initial_weights(netc.compile(folder / "mlp.net").graph, seed=1)
    for name in want:
        assert not np.allclose(got[name], initial[name])  # trained, not merely loaded
        assert_close(got[name], want[name], scope="model", err_msg=name)


# Two logical CPU devices must be set before TensorFlow starts its runtime, so the command runs
# in a process of its own that sets them, then calls netc's command line.
MIRRORED = """
import sys
from netc.backends import tensorflow
tf = tensorflow()
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from netc.cli import main
main(sys.argv[1:])
"""


def test_mirrored_splits_each_batch_over_two_devices_and_reaches_the_same_weights(folder):
    command = [
        sys.executable,
        "-c",
        MIRRORED,
        *netc_train(folder, "mirrored.safetensors", "--strategy", "mirrored"),
    ]
    ((code, out, err),) = run([command], [dict(os.environ)])
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["epoch"] for line in lines[:-1]] == [1, 2]
    assert lines[-1]["ok"] and lines[-1]["replicas"] == 2
    check_weights(folder, "mirrored.safetensors")


def free_ports(n: int) -> list[int]:
    """`n` distinct ports free on localhost now (held open together, so none repeats)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_two_workers_on_localhost_train_as_one_device_and_the_chief_writes(folder):
    workers = [f"localhost:{port}" for port in free_ports(2)]
    commands, envs = [], []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        envs.append(dict(os.environ, TF_CONFIG=json.dumps(config)))
        output = f"worker{index}.safetensors"
        commands.append(
            [
                sys.executable,
                "-m",
                "netc",
                *netc_train(folder, output, "--strategy", "multi-worker"),
            ]
        )
    (chief, chief_out, chief_err), (other, other_out, other_err) = run(commands, envs)
    assert chief == 0, chief_err
    assert other == 0, other_err
    summary = json.loads(chief_out.splitlines()[-1])
    assert summary["ok"] and summary["replicas"] == 2 and summary["epochs"] == 2
    assert other_out == ""  # worker 1 trains in step and writes nothing
    for written in ("worker1.safetensors", "worker1.ckpt", "worker1.best.safetensors"):
        assert not (folder / written).exists()
    assert (folder / "worker0.best.safetensors").exists()
    assert (folder / "worker0.ckpt" / "state.json").exists()
    check_weights(folder, "worker0.safetensors")
