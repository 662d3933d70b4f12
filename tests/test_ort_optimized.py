"""Session start: ONNX Runtime's optimized graph saved by netc (`.ort` ORT format, or an
optimized `.onnx`) and loaded without running the optimizer again. A saved graph carries ONNX
Runtime's own fusions, so every conformance case (among them the pad -> maxpool edge ONNX
Runtime's PadFusion gets wrong) is checked after the round trip against the float64
reference, at batch 1 and 3, on every input kind.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from conformance import CASES, INPUT_KINDS, build, compare, inputs_for

import netc
import netc.runtime
import netc.weights
from netc.backends import onnx_deploy, to_onnx
from netc.cli import cli as main
from netc.runtime import reference
from netc.source import NetcError

MLP = """model mlp(x: f32[N, 8]) -> (y: tensor) {
  y = x |> dense(16) |> relu |> dense(4)
}
"""


@pytest.mark.parametrize(
    ("op", "name", "inputs", "body"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_saved_optimized_graph_matches_the_reference(op, name, inputs, body, tmp_path):
    graph, weights = build(op, inputs, body)
    model = to_onnx.emit(graph, weights)
    # the optimized ONNX netc writes for every case; ONNX Runtime's ORT format (which netc
    # loads, and writes only in the library) shares the code path: every 8th case
    sample = CASES.index((op, name, inputs, body)) % 8 == 0
    suffixes = (".onnx", ".ort") if sample else (".onnx",)
    sessions = {}
    for suffix in suffixes:
        onnx_deploy.save_optimized(model, tmp_path / f"m{suffix}", "all")
        sessions[suffix] = netc.runtime.load(tmp_path / f"m{suffix}", device="cpu")
        assert sessions[suffix].graph_optimization == "disable"
    for batch in (1, 3):
        for kind in INPUT_KINDS:
            feed = inputs_for(graph, batch, kind)
            want = reference.run(graph, feed, weights, wide=True)
            for suffix, session in sessions.items():
                try:
                    compare(session.run(feed), want)
                except AssertionError as e:
                    raise AssertionError(f"{suffix}, {kind} inputs, batch {batch}: {e}") from None


CNN = """model cnn(image: f32[N, 10, 10, 3]) -> (y: tensor) {
  x = image |> conv2d(8, 3, padding="same") |> relu
  y = x |> pad([(0, 0), (1, 1), (1, 1), (0, 0)]) |> maxpool(2) |> flatten |> dense(4)
}
"""


@pytest.fixture(scope="module")
def cnn():
    """A conv + relu (a FusedConv at ONNX Runtime's extended level), a zero pad before a
    maxpool (the PadFusion edge), a dense: the graph, randomized weights and the model."""
    graph = netc.compile(CNN).graph
    weights = netc.weights.randomized_weights(graph)
    return graph, weights, to_onnx.emit(graph, weights)


def test_the_saved_graph_is_ort_s_and_marked_with_its_level_and_version(cnn, tmp_path):
    graph, weights, model = cnn
    onnx_deploy.save_optimized(model, tmp_path / "all.onnx", "all")
    onnx_deploy.save_optimized(model, tmp_path / "basic.onnx", "basic")
    saved = {level: onnx.load(str(tmp_path / f"{level}.onnx")) for level in ("all", "basic")}
    for level, m in saved.items():
        onnx.checker.check_model(m)
        meta = {p.key: p.value for p in m.metadata_props}
        assert meta == {"netc.ort_optimized": level, "netc.onnxruntime": ort.__version__}
    ops = {level: {(n.domain, n.op_type) for n in m.graph.node} for level, m in saved.items()}
    # at all: ONNX Runtime's NCHWc layout nodes; at basic none, and the conv + relu unfused
    assert any(domain == "com.microsoft.nchwc" for domain, _ in ops["all"])
    assert not any(domain.startswith("com.microsoft") for domain, _ in ops["basic"])
    # the zero pad before the maxpool stays a Pad (with its axes) in the saved graph
    assert ("", "Pad") in ops["basic"]
    session = netc.runtime.load(tmp_path / "all.onnx")
    assert (session.device, session.graph_optimization) == ("cpu", "disable")
    for kind in INPUT_KINDS:
        feed = inputs_for(graph, 3, kind)
        compare(session.run(feed), reference.run(graph, feed, weights, wide=True))


def test_the_same_model_saves_to_the_same_bytes(cnn, tmp_path):
    _, _, model = cnn
    onnx_deploy.save_optimized(model, tmp_path / "a.onnx", "all")
    onnx_deploy.save_optimized(model, tmp_path / "b.onnx", "all")
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


def test_another_onnx_runtime_s_saved_graph_is_refused(cnn, tmp_path):
    _, _, model = cnn
    onnx_deploy.save_optimized(model, tmp_path / "m.onnx", "extended")
    m = onnx.load(str(tmp_path / "m.onnx"))
    next(p for p in m.metadata_props if p.key == "netc.onnxruntime").value = "1.2.3"
    onnx.save(m, str(tmp_path / "old.onnx"))
    with pytest.raises(NetcError) as e:
        netc.runtime.load(tmp_path / "old.onnx")
    assert e.value.diagnostics[0].message == (
        f"model `cnn` holds ONNX Runtime 1.2.3's optimized graph (level extended); "
        f"this is ONNX Runtime {ort.__version__}"
    )


def test_a_saved_graph_is_the_cpu_s_and_the_optimizer_stays_off_unless_asked(cnn, tmp_path):
    graph, weights, model = cnn
    onnx_deploy.save_optimized(model, tmp_path / "m.onnx", "all")
    with pytest.raises(NetcError, match="holds ONNX Runtime's graph optimized for the CPU"):
        netc.runtime.load(tmp_path / "m.onnx", device="cuda")
    again = netc.runtime.load(tmp_path / "m.onnx", graph_optimization="all")
    assert again.graph_optimization == "all"
    feed = inputs_for(graph, 1, "negative")
    compare(again.run(feed), reference.run(graph, feed, weights, wide=True))
    # a model netc did not save optimized keeps ONNX Runtime's optimizer at all
    assert netc.runtime.load(model).graph_optimization == "all"


def test_the_cli_writes_the_optimized_graph_and_run_loads_it(cnn, tmp_path, monkeypatch):
    graph, _, _ = cnn
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cnn.net").write_text(CNN)
    weights = netc.weights.randomized_weights(graph, seed=3)
    np.savez("w.npz", **weights)
    runner = CliRunner()
    done = runner.invoke(
        main, ["cnn.net", "--weights", "w.npz", "--ort-optimize", "all", "-o", "cnn.onnx"]
    )
    assert done.exit_code == 0, done.output
    assert done.output.endswith("wrote cnn.onnx\n")
    meta = {p.key: p.value for p in onnx.load("cnn.onnx").metadata_props}
    assert meta["netc.ort_optimized"] == "all"
    for kind in INPUT_KINDS:
        feed = inputs_for(graph, 3, kind)
        np.save("x.npy", feed["image"])
        ran = runner.invoke(main, ["run", "cnn.onnx", "-i", "x.npy", "-o", "y.npz"])
        assert ran.exit_code == 0, ran.output
        with np.load("y.npz") as got:
            compare(dict(got), reference.run(graph, feed, weights, wide=True))


def test_the_cli_refuses_the_ort_format_and_other_targets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlp.net").write_text(MLP)
    runner = CliRunner()
    done = runner.invoke(main, ["mlp.net", "-o", "mlp.ort"])
    assert done.exit_code == 1
    assert "error: netc does not write ONNX Runtime's ORT format (mlp.ort)" in done.output
    assert "help: write mlp.onnx with --ort-optimize all" in done.output
    assert not (tmp_path / "mlp.ort").exists()
    done = runner.invoke(main, ["mlp.net", "-t", "tvm", "--ort-optimize", "all"])
    assert done.exit_code == 1
    assert "error: --ort-optimize applies to -t onnx, not to -t tvm" in done.output


def test_an_ort_format_file_loads_with_its_signature(tmp_path):
    graph = netc.compile(MLP).graph
    weights = netc.weights.randomized_weights(graph)
    onnx_deploy.save_optimized(to_onnx.emit(graph, weights), tmp_path / "mlp.ort", "all")
    session = netc.runtime.load(tmp_path / "mlp.ort")
    assert [(s.name, s.dtype, s.shape) for s in session.inputs] == [("x", "f32", ("N", 8))]
    assert [(s.name, s.dtype, s.shape) for s in session.outputs] == [("y", "f32", ("N", 4))]
    with pytest.raises(NetcError, match="has dtype float64, the model needs f32"):
        session.run({"x": np.zeros((2, 8))})
    with pytest.raises(NetcError, match="no such model file: .*missing.ort"):
        netc.runtime.load(tmp_path / "missing.ort")


ENCODER = """model encoder(x: f32[N, 6, 16]) -> (y: tensor) {
  x = layernorm(x + (x |> multi_head_attention(heads=2, key_dim=8)), epsilon=1e-6)
  y = layernorm(x + (x |> dense(32) |> gelu |> dense(16)), epsilon=1e-6)
}
"""


def test_the_slow_cpu_fusion_stays_out_of_saved_graphs_and_cpu_sessions(tmp_path, monkeypatch):
    # ONNX Runtime fuses a residual Add and its LayerNormalization into SkipLayerNormalization,
    # whose CPU kernel is several times slower than the two (docs/onnx.md): netc leaves it out
    graph = netc.compile(ENCODER).graph
    weights = netc.weights.randomized_weights(graph)
    model = to_onnx.emit(graph, weights)
    ops = {}
    for name, disabled in (("ort's own", []), ("netc's", list(onnx_deploy.CPU_SLOW_FUSIONS))):
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(tmp_path / f"{len(disabled)}.onnx")
        ort.InferenceSession(
            model.SerializeToString(),
            options,
            ["CPUExecutionProvider"],
            disabled_optimizers=disabled,
        )
        ops[name] = {n.op_type for n in onnx.load(tmp_path / f"{len(disabled)}.onnx").graph.node}
    assert "SkipLayerNormalization" in ops["ort's own"]  # what it would do: the test has teeth
    assert "SkipLayerNormalization" not in ops["netc's"]
    assert "LayerNormalization" in ops["netc's"] and "BiasGelu" in ops["netc's"]

    onnx_deploy.save_optimized(model, tmp_path / "saved.onnx", "all")
    saved = {n.op_type for n in onnx.load(tmp_path / "saved.onnx").graph.node}
    assert "SkipLayerNormalization" not in saved and "LayerNormalization" in saved
    feed = inputs_for(graph, 3, "normal")
    want = reference.run(graph, feed, weights, wide=True)
    compare(netc.runtime.load(tmp_path / "saved.onnx").run(feed), want)

    # netc's CPU sessions are made without it; a CUDA session would keep it
    made = []
    real = ort.InferenceSession

    def recording(*args, **kwargs):
        made.append(kwargs.get("disabled_optimizers"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", recording)
    compare(netc.runtime.load(model, device="cpu").run(feed), want)
    assert made == [list(onnx_deploy.CPU_SLOW_FUSIONS)]
