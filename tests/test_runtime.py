"""netc.runtime: loading .onnx/.net/models, input checking, devices, threads, bad files."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import netc
import netc.runtime
from netc.backends import to_onnx
from netc.runtime import Signature, reference
from netc.runtime import onnx as onnx_runtime
from netc.runtime.api import read_inputs, write_outputs
from netc.weights import initial_weights, save_weights

TWO_INPUTS = """
model pair(x: f32[N, T, 4], ids: i32[N, T]) -> (y: tensor, z: tensor) {
    y = x |> dense(3) |> relu
    z = ids |> embedding(10, 2)
}
"""
IMAGE = "model img(x: f32[N, 6, 6, 2]) -> (y: tensor) { y = x |> conv2d(3, 3) |> relu }"


def inputs(batch: int = 2, steps: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x": rng.normal(size=(batch, steps, 4)).astype(np.float32),
        "ids": rng.integers(0, 10, (batch, steps)).astype(np.int32),
    }


@pytest.fixture
def net_file(tmp_path):
    path = tmp_path / "pair.net"
    path.write_text(TWO_INPUTS)
    return path


@pytest.fixture
def onnx_file(tmp_path):
    graph = netc.compile(TWO_INPUTS).graph
    path = tmp_path / "pair.onnx"
    to_onnx.write(graph, initial_weights(graph, seed=3), path)
    return path


def expected(seed: int = 3, feed: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    graph = netc.compile(TWO_INPUTS).graph
    return reference.run(graph, feed or inputs(), initial_weights(graph, seed))


def assert_close(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5)


# --- loading ---------------------------------------------------------------------------------


def test_an_onnx_file_runs_and_declares_its_signature(onnx_file):
    session = netc.runtime.load(onnx_file)
    assert session.inputs == (
        Signature("x", "f32", ("N", "T", 4)),
        Signature("ids", "i32", ("N", "T")),
    )
    assert session.outputs == (
        Signature("y", "f32", ("N", "T", 3)),
        Signature("z", "f32", ("N", "T", 2)),
    )
    assert session.device == "cpu"
    assert_close(session.run(inputs()), expected())


def test_a_net_file_is_compiled_and_emitted_with_seeded_weights(net_file):
    assert_close(netc.runtime.load(net_file, seed=3).run(inputs()), expected(3))


def test_a_net_file_runs_with_a_weights_file(net_file, tmp_path):
    graph = netc.compile(TWO_INPUTS).graph
    save_weights(initial_weights(graph, seed=5), tmp_path / "w.safetensors")
    session = netc.runtime.load(net_file, weights=tmp_path / "w.safetensors")
    assert_close(session.run(inputs()), expected(5))


def test_a_model_proto_and_a_compiled_model_load_too():
    model = netc.compile(TWO_INPUTS)
    graph = model.graph
    proto = to_onnx.emit(graph, initial_weights(graph, seed=3))
    assert_close(netc.runtime.load(proto).run(inputs()), expected())
    assert_close(
        netc.runtime.load(model, weights=initial_weights(graph, 3)).run(inputs()), expected()
    )


def test_channels_first_io_declares_nchw_inputs():
    session = netc.runtime.load(netc.compile(IMAGE), io_layout="channels-first")
    assert session.inputs == (Signature("x", "f32", ("N", 2, 6, 6)),)
    assert session.outputs == (Signature("y", "f32", ("N", 3, 4, 4)),)


def test_a_foreign_onnx_model_is_checked_against_its_own_signature(tmp_path):
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("in", TensorProto.FLOAT, ["batch", None, 3])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", None, 3])
    graph = helper.make_graph([helper.make_node("Neg", ["in"], ["out"])], "foreign", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    onnx.save(model, str(tmp_path / "foreign.onnx"))
    session = netc.runtime.load(tmp_path / "foreign.onnx")
    assert session.inputs == (Signature("in", "f32", ("batch", None, 3)),)
    a = np.ones((2, 7, 3), np.float32)
    np.testing.assert_array_equal(session.run({"in": a})["out"], -a)
    with pytest.raises(netc.NetcError) as info:
        session.run({"in": np.ones((2, 7, 4), np.float32)})
    assert info.value.diagnostics[0].notes == (
        "input `in` has shape [2, 7, 4], the model needs f32[batch, ?, 3] (axis 2 must be 3)",
    )


# --- input checking --------------------------------------------------------------------------


def test_inputs_are_checked_before_onnx_runtime_sees_them(onnx_file):
    session = netc.runtime.load(onnx_file)
    bad = {
        "x": np.ones((2, 5, 4), np.float64),
        "ids": np.ones((3, 5), np.int32),
        "extra": np.ones(1),
    }
    with pytest.raises(netc.NetcError) as info:
        session.run(bad)
    d = info.value.diagnostics[0]
    assert d.message == "the inputs do not fit model `pair`"
    assert d.notes == (
        "input `x` has dtype float64, the model needs f32[N, T, 4]",
        "input `ids` axis 0 is 3, but N = 2 from another input",
        "unexpected input `extra`; the model takes x, ids",
    )
    with pytest.raises(netc.NetcError) as info:
        session.run({"x": np.ones((2, 4), np.float32)})
    assert info.value.diagnostics[0].notes == (
        "input `x` has shape [2, 4], the model needs f32[N, T, 4]",
        "missing input `ids` i32[N, T]",
    )


@pytest.mark.parametrize("target", ["tvm", "tf", "keras"])
def test_every_runtime_checks_inputs_as_onnx_does(target, onnx_file):
    """TVM, TensorFlow and Keras sessions run the same input check as ONNX Runtime's (one
    FeedCheck per session): the same errors, word for word, for the same bad inputs, and the
    same answer for arrays a runtime cannot read in place (Fortran order, unaligned)."""
    from netc import driver

    graph = netc.compile(TWO_INPUTS)
    weights = initial_weights(graph.graph, seed=3)
    session = netc.runtime.load(driver.emit(graph, target, weights=weights), device="cpu")
    onnx_session = netc.runtime.load(onnx_file)
    bad_feeds = [
        {"x": np.ones((2, 5, 4), np.float64), "ids": np.ones((3, 5), np.int32), "extra": 1},
        {"x": np.ones((2, 4), np.float32)},
        {"x": np.ones((2, 5, 4), np.float32), "ids": np.ones((2, 6), np.int32)},
        {"x": "text", "ids": np.ones((2, 5), np.int64)},
    ]
    for feed in bad_feeds:
        with pytest.raises(netc.NetcError) as want:
            onnx_session.run(feed)
        with pytest.raises(netc.NetcError) as got:
            session.run(feed)
        assert got.value.diagnostics == want.value.diagnostics, feed
    feed = inputs()
    unaligned = np.empty(feed["x"].size + 1, np.float32)[1:].reshape(feed["x"].shape)
    unaligned[...] = feed["x"]
    for given in ({**feed, "x": np.asfortranarray(feed["x"])}, {**feed, "x": unaligned}):
        assert_close(session.run(given), expected(feed=feed))


def test_a_failure_inside_onnx_runtime_is_a_netc_error(onnx_file):
    session = netc.runtime.load(onnx_file)
    feed = inputs()
    feed["ids"][0, 0] = 99  # outside the vocabulary
    with pytest.raises(netc.NetcError, match="ONNX Runtime failed to run model `pair`"):
        session.run(feed)


# --- bad files -------------------------------------------------------------------------------


def test_a_truncated_onnx_file_is_a_clear_error(onnx_file, tmp_path):
    data = onnx_file.read_bytes()
    bad = tmp_path / "x.onnx"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(netc.NetcError) as info:
        netc.runtime.load(bad)
    assert info.value.diagnostics[0].message.startswith(f"{bad} is not a valid ONNX model: ")


def test_a_text_file_is_not_an_onnx_model(tmp_path):
    bad = tmp_path / "x.onnx"
    bad.write_text("hello, this is not a model\n")
    with pytest.raises(netc.NetcError) as info:
        netc.runtime.load(bad)
    assert info.value.diagnostics[0].message.startswith(f"{bad} is not a valid ONNX model: ")


def test_a_missing_model_file_is_named(tmp_path):
    with pytest.raises(netc.NetcError, match="no such model file: .*nothing.onnx"):
        netc.runtime.load(tmp_path / "nothing.onnx")


# --- devices, threads, quiet -------------------------------------------------------------------


def test_an_unknown_device_is_an_error(onnx_file):
    with pytest.raises(netc.NetcError, match="unknown device `tpu`"):
        netc.runtime.load(onnx_file, device="tpu")


@pytest.mark.skipif(onnx_runtime.cuda_available(), reason="a CUDA GPU is present")
def test_cuda_without_a_gpu_is_a_clear_error(onnx_file):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():  # onnxruntime-gpu, no GPU
        want = r"device cuda: no CUDA GPU is available to ONNX Runtime here\n.*use device \"cpu\""
    else:  # the CPU package: the message names the build and the extra that has CUDA
        want = (
            r"device cuda: this ONNX Runtime is its CPU build \(the package onnxruntime\)\n"
            r'.*pip install "netc\[gpu\]"'
        )
    with pytest.raises(netc.NetcError, match=want):
        netc.runtime.load(onnx_file, device="cuda")


@pytest.mark.skipif(not onnx_runtime.cuda_available(), reason="no CUDA GPU for ONNX Runtime")
def test_cuda_runs_on_the_gpu(onnx_file):
    session = netc.runtime.load(onnx_file, device="cuda")
    assert session.device == "cuda"
    got = session.run(inputs())
    for name, want in expected().items():
        np.testing.assert_allclose(got[name], want, rtol=1e-3, atol=1e-3)


def test_cuda_needs_the_provider_and_a_present_gpu(monkeypatch):
    import onnxruntime as ort

    probe = onnx_runtime.cuda_available.__wrapped__
    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    monkeypatch.setattr(onnx_runtime.os.path, "exists", lambda p: False)
    monkeypatch.setattr(onnx_runtime.shutil, "which", lambda name: None)
    assert probe() is False  # the provider is built in, but no GPU is here
    monkeypatch.setattr(onnx_runtime.os.path, "exists", lambda p: p == "/dev/nvidia0")
    assert probe() is True
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert probe() is False


def test_loading_and_running_print_nothing(onnx_file, capfd):
    session = netc.runtime.load(onnx_file, device="auto")
    session.run(inputs())
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_thread_counts_reach_onnx_runtime(onnx_file):
    session = netc.runtime.load(onnx_file, threads=2, inter_op_threads=3)
    options = session._session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 3)
    assert_close(session.run(inputs()), expected())


# --- input and output files ------------------------------------------------------------------


def test_inputs_read_from_npz_and_npy(onnx_file, tmp_path):
    session = netc.runtime.load(onnx_file)
    np.savez(tmp_path / "in.npz", **inputs())
    feed = read_inputs(tmp_path / "in.npz", session)
    assert_close(session.run(feed), expected())
    np.save(tmp_path / "in.npy", inputs()["x"])
    with pytest.raises(netc.NetcError, match="holds one array, the model takes 2 inputs"):
        read_inputs(tmp_path / "in.npy", session)
    single = netc.runtime.load(netc.compile(IMAGE))
    np.save(tmp_path / "img.npy", np.zeros((1, 6, 6, 2), np.float32))
    assert list(read_inputs(tmp_path / "img.npy", single)) == ["x"]


def test_bad_input_files_are_clear_errors(onnx_file, tmp_path):
    session = netc.runtime.load(onnx_file)
    with pytest.raises(netc.NetcError, match="no such input file"):
        read_inputs(tmp_path / "none.npz", session)
    (tmp_path / "bad.npz").write_text("not a zip")
    with pytest.raises(netc.NetcError, match="cannot read inputs from"):
        read_inputs(tmp_path / "bad.npz", session)
    with pytest.raises(netc.NetcError, match="unknown input format `.csv`"):
        read_inputs(tmp_path / "x.csv", session)


def test_outputs_written_to_npz(tmp_path):
    outputs = {"y": np.arange(6, dtype=np.float32).reshape(2, 3)}
    write_outputs(outputs, tmp_path / "out.npz")
    with np.load(tmp_path / "out.npz") as z:
        np.testing.assert_array_equal(z["y"], outputs["y"])
    with pytest.raises(netc.NetcError, match="unknown output format"):
        write_outputs(outputs, tmp_path / "out.txt")


def test_compile_options_on_a_compiled_artifact_are_an_error_not_ignored(tmp_path):
    """`load("m.onnx", io_layout=...)` would otherwise run the model as it was written."""
    from netc import driver

    path = driver.write(netc.compile(IMAGE), tmp_path / "m.onnx")
    with pytest.raises(netc.NetcError) as e:
        netc.runtime.load(path, io_layout="channels-first")
    assert str(e.value.diagnostics[0].message) == (
        f"io_layout is a compile option, and {path} is compiled already"
    )
    with pytest.raises(netc.NetcError, match="weights is a compile option"):
        netc.runtime.load(path, weights={})
    assert netc.runtime.load(path).run  # without them, it loads
