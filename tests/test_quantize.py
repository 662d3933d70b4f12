"""int8 quantization (`--quantize int8`, netc.quantize): dynamic for dense/LSTM models, static
QDQ calibrated on sample data for convnets, weights per channel. The accuracy report is
recomputed here from the written models (run by netc.runtime) on the samples it names, and
the bound on top-1 agreement refuses a model (no file written) or, by flag, only warns.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

import netc
import netc.runtime
from netc import quantize as q
from netc.backends import to_onnx
from netc.cli import cli
from netc.source import NetcError
from netc.weights import randomized_weights

MLP = """model mlp(x: f32[N, 16]) -> (y: tensor) {
  y = x |> dense(64) |> relu |> dense(100)
}
"""
CNN = """model cnn(image: f32[N, 8, 8, 3]) -> (y: tensor) {
  x = image |> conv2d(8, 3, padding="same") |> relu |> maxpool(2)
  y = x |> conv2d(8, 3) |> relu |> flatten |> dense(5)
}
"""
LSTM = """model seq(x: f32[N, 5, 4]) -> (y: tensor) {
  y = x |> lstm(8) |> dense(3)
}
"""


def _model(source: str, seed: int = 0):
    """The graph, its randomized weights and its emitted ONNX model."""
    graph = netc.compile(source).graph
    weights = randomized_weights(graph, seed)
    return graph, weights, to_onnx.emit(graph, weights)


def _samples(graph, count: int, seed: int = 1) -> dict[str, np.ndarray]:
    return q.random_inputs(graph, count, seed)


def _agreement(model, int8, feed) -> tuple[float, float]:
    """(top-1 agreement %, max |int8 - float|) recomputed with netc.runtime's sessions, one
    sample at a time (dynamic int8's activation scale spans the batch: the report is per
    sample, as requests are served)."""
    sessions = [netc.runtime.load(m, device="cpu") for m in (model, int8)]
    count = len(next(iter(feed.values())))
    want, got = (
        np.concatenate(
            [s.run({k: v[i : i + 1] for k, v in feed.items()})["y"] for i in range(count)]
        )
        for s in sessions
    )
    same = np.argmax(got, axis=-1) == np.argmax(want, axis=-1)
    return 100.0 * float(np.mean(same)), float(np.max(np.abs(got - want)))


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    """The MLP, its weights, model, and 200 samples saved as calibration data."""
    graph, weights, model = _model(MLP)
    path = tmp_path_factory.mktemp("mlp") / "data.npz"
    data = _samples(graph, 200)
    np.savez(path, **data)
    return graph, weights, model, data, path


def test_dynamic_int8_of_an_mlp_and_its_report(mlp):
    graph, _, model, data, path = mlp
    int8, report = q.quantize(model, graph, q.QuantizeOptions(calib=path, min_top1_agreement=0.0))
    onnx.checker.check_model(int8)
    ops = [n.op_type for n in int8.graph.node]
    # both dense layers (a Gemm each) quantized: netc turns Gemm into MatMul + Add first
    assert ops.count("MatMulInteger") == 2 and "Gemm" not in ops
    assert report.scheme == "dynamic" and report.quantized_nodes == 2
    assert report.measured_on == f"the 200 samples of {path}"
    (cost,) = report.outputs
    agreement, max_error = _agreement(model, int8, data)
    assert cost.rows == 200
    assert cost.top1_agreement == pytest.approx(agreement, abs=1e-9)
    assert cost.max_error == pytest.approx(max_error, rel=1e-6)
    assert 0 < cost.max_error < 0.1 * np.max(np.abs(netc.runtime.load(model).run(data)["y"]))
    assert 90.0 <= cost.top1_agreement < 100.0  # this model and data: some rows flip


def test_static_qdq_int8_of_a_convnet_calibrated_per_channel(tmp_path):
    graph, _, model = _model(CNN)
    data = _samples(graph, 40)
    np.savez(tmp_path / "calib.npz", **data)
    reports = {}
    for method in ("percentile", "entropy", "minmax"):
        options = q.QuantizeOptions(
            calib=tmp_path / "calib.npz", method=method, min_top1_agreement=0.0
        )
        int8, reports[method] = q.quantize(model, graph, options)
        onnx.checker.check_model(int8)
        producers = {o: n for n in int8.graph.node for o in n.output}
        inits = {i.name: onnx.numpy_helper.to_array(i) for i in int8.graph.initializer}
        convs = [n for n in int8.graph.node if n.op_type == "Conv"]
        assert len(convs) == 2
        for conv in convs:
            x, w = (producers[i] for i in conv.input[:2])
            assert x.op_type == w.op_type == "DequantizeLinear"
            # the weight's scale has one entry per output channel (per-channel quantization)
            assert inits[w.input[1]].shape == (8,)
            assert inits[w.input[0]].dtype == np.int8 and inits[x.input[2]].dtype == np.uint8
        if method == "percentile":
            percentile = int8
    # the held-out part is the last 20 %: the report's agreement is computed on it
    report = reports["percentile"]
    assert report.scheme == "static QDQ"
    assert report.calibration == "percentile calibration on 32 samples, weights per channel"
    assert report.measured_on == "the held-out 8 of 40 calibration samples"
    held_out = {k: v[32:] for k, v in data.items()}
    agreement, max_error = _agreement(model, percentile, held_out)
    assert report.outputs[0].top1_agreement == pytest.approx(agreement, abs=1e-9)
    assert report.outputs[0].max_error == pytest.approx(max_error, rel=1e-6)
    # each method sets its own activation ranges: the int8 outputs differ
    errors = {m: r.outputs[0].max_error for m, r in reports.items()}
    assert len(set(errors.values())) == 3, errors
    assert reports["entropy"].calibration.startswith("entropy calibration on 32 samples")


def test_dynamic_int8_of_an_lstm(tmp_path):
    graph, _, model = _model(LSTM)
    int8, report = q.quantize(model, graph, q.QuantizeOptions(min_top1_agreement=0.0))
    ops = [n.op_type for n in int8.graph.node]
    assert "DynamicQuantizeLSTM" in ops and "MatMulInteger" in ops
    assert report.measured_on == "64 seeded random inputs (pass --calib for real data)"
    agreement, _ = _agreement(model, int8, q.random_inputs(graph, 64))
    assert report.outputs[0].top1_agreement == pytest.approx(agreement, abs=1e-9)


def test_a_convnet_without_calibration_data_is_an_error():
    graph, _, model = _model(CNN)
    with pytest.raises(NetcError) as e:
        q.quantize(model, graph, q.QuantizeOptions())
    d = e.value.diagnostics[0]
    assert d.message == (
        "model `cnn` has convolutions: its int8 form is calibrated on sample inputs "
        "(static quantization)"
    )
    assert d.hint == "pass --calib data.npz: one array per input, samples along axis 0"


def test_calibration_data_that_does_not_fit_is_an_error(tmp_path):
    graph, _, model = _model(CNN)
    np.savez(tmp_path / "bad.npz", images=np.zeros((4, 8, 8, 3), np.float32))
    with pytest.raises(NetcError) as e:
        q.quantize(model, graph, q.QuantizeOptions(calib=tmp_path / "bad.npz"))
    d = e.value.diagnostics[0]
    assert d.message == f"{tmp_path / 'bad.npz'} does not fit model `cnn` as calibration data"
    assert d.notes == ("missing input `image`", "unexpected array `images`")


def test_the_cli_refuses_past_the_bound_and_warns_by_flag(mlp, tmp_path, monkeypatch):
    graph, weights, _, _, data_path = mlp
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlp.net").write_text(MLP)
    np.savez("w.npz", **weights)
    base = ["mlp.net", "--weights", "w.npz", "--quantize", "int8", "--calib", str(data_path)]
    runner = CliRunner()
    refused = runner.invoke(cli, [*base, "--min-top1-agreement", "99.5", "-o", "a.onnx"])
    assert refused.exit_code == 1
    assert "error: int8 quantization of model `mlp` keeps the top-1 result of 9" in refused.output
    assert "below the bound of 99.5 % (--min-top1-agreement)" in refused.output
    assert "help: calibrate on more or more typical data" in refused.output
    assert not (tmp_path / "a.onnx").exists()
    warned = runner.invoke(
        cli, [*base, "--min-top1-agreement", "99.5", "--warn-accuracy", "-o", "b.onnx", "--json"]
    )
    assert warned.exit_code == 0, warned.output
    report = json.loads(warned.stdout)["quantization"]
    assert report["warnings"][0].startswith("int8 quantization of model `mlp` keeps")
    int8 = onnx.load("b.onnx")
    assert "MatMulInteger" in {n.op_type for n in int8.graph.node}
    with np.load(data_path) as z:
        agreement, _ = _agreement(to_onnx.emit(graph, weights), int8, dict(z))
    assert report["outputs"][0]["top1_agreement"] == pytest.approx(agreement, abs=1e-9)
    passed = runner.invoke(cli, [*base, "--min-top1-agreement", "50", "-o", "c.onnx"])
    assert passed.exit_code == 0, passed.output
    assert "int8 (dynamic, activation scales at run time, weights per channel): 2 nodes" in (
        passed.output
    )
    assert "y: max error" in passed.output and "top-1 agreement" in passed.output


def test_quantize_flags_need_quantize_and_the_onnx_target(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlp.net").write_text(MLP)
    runner = CliRunner()
    for args, message in (
        (["--calib", "x.npz"], "error: --calib applies with --quantize int8"),
        (["--warn-accuracy"], "error: --warn-accuracy applies with --quantize int8"),
        (
            ["--quantize", "int8", "-t", "tvm"],
            "error: --quantize applies to -t onnx, not to -t tvm",
        ),
    ):
        done = runner.invoke(cli, ["mlp.net", *args])
        assert done.exit_code == 1, done.output
        assert message in done.output


def test_the_held_out_part_is_the_last_fifth():
    data = {"x": np.arange(10)[:, None], "z": np.arange(10, 20)[:, None]}
    calibration, held_out = q.split(data)
    assert calibration["x"].ravel().tolist() == list(range(8))
    assert held_out["z"].ravel().tolist() == [18, 19]
    assert q.split({"x": np.arange(3)})[1]["x"].tolist() == [2]


@pytest.mark.parametrize("method", ["percentile", "entropy", "minmax"])
def test_any_number_of_calibration_samples_calibrates(tmp_path, method):
    # 16 samples: 13 calibrate (a prime), 3 held out. ONNX Runtime's histogram calibrators
    # stack every run's outputs into one array and failed on runs of 8 and 5 samples
    graph, _, model = _model(CNN)
    np.savez(tmp_path / "calib.npz", **_samples(graph, 16))
    options = q.QuantizeOptions(calib=tmp_path / "calib.npz", method=method, min_top1_agreement=0)
    int8, report = q.quantize(model, graph, options)
    onnx.checker.check_model(int8)
    assert report.calibration.startswith(f"{method} calibration on 13 samples")
    assert report.measured_on == "the held-out 3 of 16 calibration samples"
    assert [q.calibration_batch(n) for n in (1, 8, 13, 20, 40, 397, 399)] == [1, 8, 1, 5, 8, 1, 7]


def test_the_int8_model_saved_optimized_runs_as_the_report_says(tmp_path, monkeypatch):
    # --quantize with --ort-optimize: the QDQ pairs saved fused into ONNX Runtime's int8
    # kernels, loaded with the optimizer off, compute what the report measured
    monkeypatch.chdir(tmp_path)
    graph, weights, model = _model(CNN)
    (tmp_path / "cnn.net").write_text(CNN)
    np.savez("w.npz", **weights)
    data = _samples(graph, 20)
    np.savez("calib.npz", **data)
    args = ["cnn.net", "--weights", "w.npz", "--quantize", "int8", "--calib", "calib.npz"]
    done = CliRunner().invoke(
        cli, [*args, "--min-top1-agreement", "0", "--ort-optimize", "all", "--json", "-o", "q.onnx"]
    )
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)["quantization"]
    saved = onnx.load("q.onnx")
    assert "QLinearConv" in {n.op_type for n in saved.graph.node}
    session = netc.runtime.load("q.onnx")
    assert session.graph_optimization == "disable"
    held_out = {k: v[16:] for k, v in data.items()}
    want = netc.runtime.load(model).run(held_out)["y"]
    got = session.run(held_out)["y"]
    same = np.argmax(got, -1) == np.argmax(want, -1)
    assert report["outputs"][0]["top1_agreement"] == pytest.approx(100 * np.mean(same))
    assert report["outputs"][0]["max_error"] == pytest.approx(np.max(np.abs(got - want)), rel=1e-5)


def test_calibration_arrays_of_the_wrong_dtype_or_shape_are_named(tmp_path):
    graph, _, model = _model(CNN)
    np.savez(tmp_path / "c.npz", image=np.zeros((4, 8, 9, 3)))  # numpy's float64, a wrong W
    with pytest.raises(NetcError) as e:
        q.quantize(model, graph, q.QuantizeOptions(calib=tmp_path / "c.npz"))
    assert e.value.diagnostics[0].notes == (
        "`image` has dtype float64, the model needs f32 (`.astype(np.float32)`)",
        "`image` has shape [4, 8, 9, 3], the model needs f32[N, 8, 8, 3] (samples along axis 0)",
    )


def test_a_model_that_is_not_float32_is_refused():
    graph, _, model = _model(MLP.replace("f32[N, 16]", "f16[N, 16]"))
    with pytest.raises(NetcError) as e:
        q.quantize(model, graph, q.QuantizeOptions())
    assert e.value.diagnostics[0].message == (
        "int8 quantization takes a float32 model; model `mlp` computes in f16"
    )
