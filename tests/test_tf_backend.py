"""The TF backend end to end: every example at -O2 against the float64 reference (traced and
XLA), the SavedModel folder (read back by TensorFlow and saved_model_cli, written atomically,
the same bytes for the same source and seed), the frozen GraphDef, the TF session's errors,
`netc verify -t tf`, and the CLI (`netc MODEL.net -t tf`, `netc run MODEL.savedmodel`)."""

from __future__ import annotations

import os
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
from netc import driver, files
from netc.backends import tensorflow, to_tf
from netc.cli import cli
from netc.runtime import reference
from netc.runtime import tf as tf_runtime
from netc.runtime.tolerance import assert_close
from netc.weights import randomized_weights

tf = tensorflow()
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.net"))
CLI_BIN = Path(sys.executable).parent
# Examples above this many FLOPs per sample (224 x 224 networks, a video clip) take their
# batch-1 reference from the first sample of the batch-3 one (the reference computes each
# sample alone) and run XLA at batch 3 only: the float64 reference and XLA's compile, once per
# input shape, cost CI tens of seconds each for them.
HEAVY_FLOPS = 500e6

CNN = """\
model cnn(image: f32[N, 12, 12, 3]) -> (logits: f32[N, 5]) {
    x = image |> conv2d(8, 3, padding="same", bias=false) |> batchnorm |> relu |> maxpool(2)
    logits = x |> flatten |> dense(5)
}
"""

TWO_WAY = """\
model two_way(x: f32[N, T, 6], ids: i32[N, T]) -> (a: tensor, b: tensor, c: tensor) {
    a = x |> multi_head_attention(heads=2, key_dim=3, causal=true) |> layernorm
    b, h, cell = x |> lstm(4, return_sequences=true, return_state=true, go_backwards=true)
    c = ids |> embedding(20, 6) |> gru(3)
}
"""


def run_cli(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


# --- every example, as deployed --------------------------------------------------------------


@cache
def example(stem: str):
    """The example, its randomized weights, feeds and their float64 reference: batch 3 holds
    a normal, an all-negative and a large sample, batch 1 one with small values and zeros (a
    heavy example's batch 1 is the normal sample)."""
    model = netc.compile(ROOT / "examples" / f"{stem}.net")
    weights = randomized_weights(model.graph, seed=3)
    three = [inputs_for(model.graph, 1, kind, seed=i) for i, kind in enumerate(INPUT_KINDS[:3])]
    feeds = {3: {n: np.concatenate([f[n] for f in three]) for n in model.graph.inputs}}
    wants = {3: reference.run(model.graph, feeds[3], weights, wide=True)}
    if heavy(model):
        feeds[1] = {n: v[:1] for n, v in feeds[3].items()}
        wants[1] = {n: v[:1] for n, v in wants[3].items()}
    else:
        feeds[1] = inputs_for(model.graph, 1, INPUT_KINDS[3], seed=3)
        wants[1] = reference.run(model.graph, feeds[1], weights, wide=True)
    return model, weights, feeds, wants


def heavy(model: netc.Model) -> bool:
    return model.flops > HEAVY_FLOPS


@cache
def artifact(stem: str, xla: bool):
    model, weights, _, _ = example(stem)
    return driver.emit(model, "tf", weights=weights, xla=xla)


def check_example(stem: str, session, batches=(1, 3)) -> None:
    _, _, feeds, wants = example(stem)
    for batch in batches:
        got = session.run(feeds[batch])
        assert set(got) == set(wants[batch])
        for name, want in wants[batch].items():
            assert_close(got[name], want, scope="model", err_msg=f"{stem}, {name}, batch {batch}")


@pytest.mark.parametrize("xla", [False, True], ids=["graph", "xla"])
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_matches_the_reference(path, xla):
    session = netc.runtime.load(artifact(path.stem, xla))
    assert session.xla == xla
    model, *_ = example(path.stem)
    check_example(path.stem, session, (3,) if xla and heavy(model) else (1, 3))


def test_the_examples_feed_every_input_kind_at_batch_1_and_3():
    _, _, feeds, _ = example("lenet")
    x3, x1 = feeds[3]["image"], feeds[1]["image"]
    assert x3.shape[0] == 3 and x1.shape[0] == 1
    assert (x3[1] < 0).all() and np.abs(x3[2]).max() > 20 and np.abs(x3[0]).max() < 6
    assert (x1 == 0).any() and np.abs(x1).max() < 0.01


@pytest.mark.parametrize("stem", ["lstm_forecaster", "transformer_classifier", "resnet18"])
def test_an_example_round_trips_through_a_saved_model(stem, tmp_path):
    to_tf.save(artifact(stem, False), tmp_path / f"{stem}.savedmodel")
    session = netc.runtime.load(tmp_path / f"{stem}.savedmodel")
    model, *_ = example(stem)
    assert (session.inputs, session.outputs) == netc.runtime.api.graph_signature(model.graph)
    check_example(stem, session)


# --- the SavedModel folder -------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_way(tmp_path_factory):
    """TWO_WAY's graph, weights and SavedModel folder."""
    graph = netc.compile(TWO_WAY).graph
    weights = randomized_weights(graph, 1)
    path = tmp_path_factory.mktemp("saved") / "two_way.savedmodel"
    to_tf.save(to_tf.emit(graph, weights), path)
    return graph, weights, path


def test_saved_model_cli_shows_the_serving_signature_with_netcs_names(two_way):
    _, _, path = two_way
    shown = subprocess.run(
        [str(CLI_BIN / "saved_model_cli"), "show", "--all", "--dir", str(path)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    ).stdout
    signature = shown[shown.index("signature_def['serving_default']") :]
    signature = signature[: signature.index("Method name is")]
    for text in (
        "inputs['x'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, -1, 6)",
        "inputs['ids'] tensor_info:\n        dtype: DT_INT32\n        shape: (-1, -1)",
        "outputs['a'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, -1, 6)",
        "outputs['b'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, -1, 4)",
        "outputs['c'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 3)",
    ):
        assert text in signature, text
    assert signature.count("tensor_info") == 5
    assert "Method name is: tensorflow/serving/predict" in shown


def test_tensorflow_serves_the_folder_as_it_is(two_way):
    """What TF Serving does: tf.saved_model.load, the serving_default signature called by
    input names; the outputs by netc's names, equal to the reference."""
    graph, weights, path = two_way
    loaded = tf.saved_model.load(str(path))
    serve = loaded.signatures["serving_default"]
    assert sorted(serve.structured_input_signature[1]) == ["ids", "x"]
    assert sorted(serve.structured_outputs) == ["a", "b", "c"]
    for batch in (1, 3):
        for kind in INPUT_KINDS:
            feed = inputs_for(graph, batch, kind)
            got = serve(**{k: tf.constant(v) for k, v in feed.items()})
            want = reference.run(graph, feed, weights, wide=True)
            for name, value in want.items():
                assert_close(got[name].numpy(), value, err_msg=f"{name}, {kind}, batch {batch}")


def test_the_session_checks_symbols_from_netcs_signature(two_way):
    """A SavedModel's own signature says None for N and T; netc's, which the folder carries,
    says N and T, so the session refuses inputs that disagree on them."""
    _, _, path = two_way
    session = netc.runtime.load(path)
    assert [str(s) for s in session.inputs] == ["f32[N, T, 6]", "i32[N, T]"]
    with pytest.raises(netc.NetcError) as info:
        session.run({"x": np.zeros((2, 5, 6), np.float32), "ids": np.zeros((2, 4), np.int32)})
    assert info.value.diagnostics[0].notes == (
        "input `ids` axis 1 is 4, but T = 5 from another input",
    )


def test_an_xla_saved_model_keeps_jit_compile(tmp_path):
    graph = netc.compile(CNN).graph
    path = tmp_path / "cnn.savedmodel"
    to_tf.save(to_tf.emit(graph, randomized_weights(graph), xla=True), path)
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((path / "saved_model.pb").read_bytes())
    serving = [
        f
        for f in saved.meta_graphs[0].graph_def.library.function
        if f.signature.name.startswith("__inference_serving")
    ]
    assert len(serving) == 1  # saved once: the constants are not stored twice
    assert serving[0].attr["_XlaMustCompile"].b
    assert netc.runtime.load(path).xla


def test_the_graph_has_the_forms_grappler_fuses():
    """Conv2D + BiasAdd + Relu (batchnorm folded at -O2), MatMul + BiasAdd, and
    FusedBatchNormV3 for a batchnorm that survives on an image."""
    text = (
        "model m(image: f32[N, 12, 12, 3]) -> (y: tensor) {\n"
        '  x = image |> batchnorm |> conv2d(8, 3, padding="same") |> batchnorm |> relu\n'
        "  y = x |> global_avgpool |> dense(5) |> relu6\n"
        "}\n"
    )
    graph_def = to_tf.graph_def(driver.emit(netc.compile(text), "tf"))
    ops = {n.name: n for n in graph_def.node}

    def op(name: str) -> str:
        return ops[name.split(":")[0].lstrip("^")].op

    by_op: dict[str, list] = {}
    for n in graph_def.node:
        by_op.setdefault(n.op, []).append(n)
    assert len(by_op["FusedBatchNormV3"]) == 1  # the input's; the conv's folded into it
    (relu,) = by_op["Relu"]
    (bias,) = [op(i) for i in relu.input]
    assert bias == "BiasAdd"
    conv_bias = ops[relu.input[0]]
    assert op(conv_bias.input[0]) == "Conv2D"
    (relu6,) = by_op["Relu6"]
    dense_bias = ops[relu6.input[0]]
    assert (dense_bias.op, op(dense_bias.input[0])) == ("BiasAdd", "MatMul")


def test_tensors_are_named_after_the_ir_values():
    """Each value's ops sit in a name scope named after it; the model's inputs and outputs keep
    their own names (a placeholder and an Identity), so a value named like an output is
    scoped `NAME_value`."""
    model = netc.compile(CNN.replace("dense(5)", 'dense(5, name="logits")'))
    graph = model.graph
    result = tf_runtime.run_values(
        graph, randomized_weights(graph), inputs_for(graph, 2), device="cpu"
    )
    assert result.failed_at is None
    assert result.tensors[("conv2d", None)] == "conv2d/Conv2D:0"
    assert result.tensors[("maxpool", None)] == "maxpool/MaxPool2d:0"
    assert result.tensors[("logits", None)] == "logits_value/BiasAdd:0"
    graph_def = to_tf.graph_def(driver.emit(model, "tf", level=0))
    kinds = {n.name: n.op for n in graph_def.node}
    assert (kinds["image"], kinds["logits"]) == ("Placeholder", "Identity")


# --- atomic writes and determinism -----------------------------------------------------------


@pytest.fixture(scope="module")
def cnn_artifacts():
    graph = netc.compile(CNN).graph
    return graph, [to_tf.emit(graph, randomized_weights(graph, seed)) for seed in (0, 1)]


def folder_bytes(path: Path) -> dict[str, bytes]:
    return {
        str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()
    }


def test_saving_replaces_the_folder_and_leaves_nothing_beside_it(cnn_artifacts, tmp_path):
    graph, (first, second) = cnn_artifacts
    path = tmp_path / "cnn.savedmodel"
    to_tf.save(first, path)
    (path / "stale.txt").write_text("from an earlier write")
    to_tf.save(second, path)
    assert not (path / "stale.txt").exists()
    assert sorted(os.listdir(tmp_path)) == ["cnn.savedmodel"]
    session = netc.runtime.load(path)
    feed = inputs_for(graph, 3)
    assert_close(
        session.run(feed)["logits"],
        reference.run(graph, feed, randomized_weights(graph, 1), wide=True)["logits"],
    )


@pytest.mark.parametrize("swap", ["exchange", "two_renames"])
@pytest.mark.parametrize("failure", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_previous_folder(
    cnn_artifacts, tmp_path, monkeypatch, swap, failure
):
    _, (first, second) = cnn_artifacts
    path = tmp_path / "cnn.savedmodel"
    to_tf.save(first, path)
    before = folder_bytes(path)
    if swap == "two_renames":  # where renameat2 is missing
        monkeypatch.setattr(files, "_exchange", lambda a, b: False)
        to_tf.save(second, path)
        assert folder_bytes(path)["saved_model.pb"] != before["saved_model.pb"]
        before = folder_bytes(path)
    real_save = tf.saved_model.save

    def save_then_fail(obj, export_dir, **kw):
        real_save(obj, export_dir, **kw)  # a complete folder, then the failure (a kill)
        raise failure

    monkeypatch.setattr(tf.saved_model, "save", save_then_fail)
    with pytest.raises(type(failure)):
        to_tf.save(second, path)
    assert folder_bytes(path) == before
    assert sorted(os.listdir(tmp_path)) == ["cnn.savedmodel"]


def test_a_folder_that_is_not_a_saved_model_is_not_replaced(cnn_artifacts, tmp_path):
    _, (first, _) = cnn_artifacts
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(netc.NetcError, match="is a folder that is not a SavedModel"):
        to_tf.save(first, tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["notes"]


def test_the_same_source_and_seed_give_the_same_bytes(tmp_path):
    """Two processes compiling the same source: identical folders (TF's random fingerprint UUID
    is replaced by a digest). Within one process TensorFlow numbers its functions by a global
    counter, so only separate processes compare bytes (another seed: the GraphDef test)."""
    (tmp_path / "cnn.net").write_text(CNN)
    netc_cmd = [sys.executable, "-m", "netc", "cnn.net", "-t", "tf", "-q", "-o"]
    runs = [
        subprocess.Popen([*netc_cmd, out], cwd=tmp_path, stdout=subprocess.DEVNULL)
        for out in ("a.savedmodel", "b.savedmodel")
    ]
    assert [r.wait(timeout=300) for r in runs] == [0, 0]
    a, b = (folder_bytes(tmp_path / f"{x}.savedmodel") for x in "ab")
    assert sorted(a) == [
        "fingerprint.pb",
        "saved_model.pb",
        "variables/variables.data-00000-of-00001",
        "variables/variables.index",
    ]
    assert a == b


def test_the_graphdef_is_the_same_for_the_same_weights(cnn_artifacts):
    graph, (first, second) = cnn_artifacts
    again = to_tf.emit(graph, randomized_weights(graph, 0))
    data = [
        to_tf.graph_def(a).SerializeToString(deterministic=True) for a in (first, again, second)
    ]
    assert data[0] == data[1] != data[2]


# --- the frozen GraphDef ---------------------------------------------------------------------


@pytest.mark.parametrize("stem", ["lenet", "lstm_forecaster"])
def test_emit_graphdef_writes_a_graph_tensorflow_parses_and_runs(stem, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / f"{stem}.net").write_text((ROOT / "examples" / f"{stem}.net").read_text())
    model, weights, feeds, wants = example(stem)
    np.savez("w.npz", **weights)
    r = run_cli(f"{stem}.net", "-t", "tf", "--emit", "graphdef", "--weights", "w.npz", "-q")
    assert r.exit_code == 0 and r.stdout.endswith(f"wrote {stem}.pb\n")
    assert not Path(f"{stem}.savedmodel").exists()
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(Path(f"{stem}.pb").read_bytes())
    inputs = [f"{n}:0" for n in model.graph.inputs]
    outputs = [f"{o}:0" for o, _ in model.graph.outputs]
    wrapped = tf.compat.v1.wrap_function(
        lambda: tf.graph_util.import_graph_def(graph_def, name=""), []
    )
    run = wrapped.prune(inputs, outputs)
    for batch, feed in feeds.items():
        got = run(*[tf.constant(feed[n]) for n in model.graph.inputs])
        for (name, _), value in zip(model.graph.outputs, got, strict=True):
            assert_close(value.numpy(), wants[batch][name], scope="model", err_msg=name)


def test_emit_graphdef_is_for_the_tf_target_without_xla(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("cnn.net").write_text(CNN)
    onnx = CliRunner().invoke(cli, ["cnn.net", "--emit", "graphdef"])
    assert onnx.exit_code == 1
    assert "error: --emit graphdef applies to -t tf, not to -t onnx" in onnx.stderr
    xla = CliRunner().invoke(cli, ["cnn.net", "-t", "tf", "--xla", "--emit", "graphdef"])
    assert xla.exit_code == 1
    assert "error: --xla does not apply to --emit graphdef" in xla.stderr
    assert sorted(os.listdir(tmp_path)) == ["cnn.net"]


# --- the CLI and the library -----------------------------------------------------------------


def test_netc_writes_a_saved_model_that_netc_run_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("cnn.net").write_text(CNN)
    graph = netc.compile(CNN).graph
    weights = randomized_weights(graph, 2)
    np.savez("w.npz", **weights)
    r = run_cli("cnn.net", "-t", "tf", "--xla", "--weights", "w.npz", "-q")
    assert r.exit_code == 0 and r.stdout.endswith("wrote cnn.savedmodel\n")
    for batch in (1, 3):
        for kind in INPUT_KINDS:
            feed = inputs_for(graph, batch, kind)
            np.savez("x.npz", **feed)
            out = run_cli("run", "cnn.savedmodel", "-i", "x.npz", "-o", "y.npz")
            assert out.exit_code == 0, out.output
            with np.load("y.npz") as y:
                assert_close(
                    y["logits"],
                    reference.run(graph, feed, weights, wide=True)["logits"],
                    scope="model",
                    err_msg=f"{kind}, batch {batch}",
                )


def test_load_compiles_a_net_file_for_tf(tmp_path):
    (tmp_path / "cnn.net").write_text(CNN)
    graph = netc.compile(CNN).graph
    feed = inputs_for(graph, 3, "negative")
    want = reference.run(graph, feed, randomized_weights(graph, 4), wide=True)["logits"]
    for xla in (False, True):
        session = netc.runtime.load(
            tmp_path / "cnn.net", target="tf", xla=xla, weights=randomized_weights(graph, 4)
        )
        assert isinstance(session, tf_runtime.TfSession) and session.xla == xla
        assert_close(session.run(feed)["logits"], want, scope="model")


def test_verify_agrees_and_points_at_a_broken_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("lenet.net").write_text((ROOT / "examples" / "lenet.net").read_text())
    ok = run_cli("verify", "lenet.net", "-t", "tf")
    assert ok.exit_code == 0, ok.output
    assert "lenet.net: the tf backend agrees with the reference" in ok.stdout

    def wrong_pool(ctx, node):  # a broken lowering: max where netc means the average
        a = node.attrs
        return ctx.tf.nn.max_pool(ctx.get(node.inputs[0]), a["size"], a["stride"], "VALID")

    monkeypatch.setitem(to_tf.RULES.table, "avgpool", wrong_pool)
    bad = CliRunner().invoke(cli, ["verify", "lenet.net", "-t", "tf"])
    assert bad.exit_code == 1
    assert bad.stderr.startswith(
        "lenet.net:14:64: error: the tf backend differs from the reference here"
    ), bad.stderr
    assert "IR value `conv_pool_0.avgpool` (avgpool), emitted as tf tensor" in bad.stderr
    assert "Traceback" not in bad.output


def test_verify_bisects_to_a_value_tensorflow_cannot_compute(monkeypatch):
    model = netc.compile(CNN)

    def wrong_flatten(ctx, node):  # a broken lowering that fails only at run time
        tf_ = ctx.tf
        flat = tf_.reshape(ctx.get(node.inputs[0]), [-1, 288])
        return tf_.gather(flat, tf_.range(288) + 1, axis=1)  # index 288 is out of range

    monkeypatch.setitem(to_tf.RULES.table, "flatten", wrong_flatten)
    from netc.runtime.verify import verify

    report = verify(model, target="tf", level=0, device="cpu")
    d = report.first
    assert (d.node, d.op, d.span.line, d.span.col) == ("flatten", "flatten", 3, 19)
    assert "288 is not in [0, 288)" in d.failure
    assert report.diagnostic().message.startswith("the tf backend fails to compute this value")


def test_a_rule_tensorflow_refuses_while_tracing_is_a_located_error(monkeypatch, tmp_path):
    def wrong_flatten(ctx, node):  # a broken lowering: the wrong shape
        return ctx.tf.reshape(ctx.get(node.inputs[0]), [-1, 7])

    monkeypatch.setitem(to_tf.RULES.table, "flatten", wrong_flatten)
    with pytest.raises(netc.NetcError) as info:
        driver.emit(netc.compile(CNN), "tf")
    (d,) = info.value.diagnostics
    assert d.message.startswith("the tf backend cannot lower `flatten`: its rule made a float32 ")
    assert (d.span.line, d.span.col) == (3, 19)

    def wrong_dense(ctx, node):  # TF's own check refuses it
        return ctx.tf.linalg.matmul(ctx.get(node.inputs[0]), ctx.tf.ones([7, 5]))

    monkeypatch.setitem(to_tf.RULES.table, "dense", wrong_dense)
    monkeypatch.setitem(to_tf.RULES.table, "flatten", to_tf._flatten)
    monkeypatch.chdir(tmp_path)
    Path("cnn.net").write_text(CNN)
    r = CliRunner().invoke(cli, ["verify", "cnn.net", "-t", "tf", "-O", "0"])
    assert r.exit_code == 1
    assert r.stderr.startswith(
        "cnn.net:3:30: error: the tf backend cannot lower `dense`: TensorFlow refuses it: "
    ), r.stderr
    assert "Traceback" not in r.output


# --- errors ----------------------------------------------------------------------------------


def test_without_tensorflow_the_error_names_the_extra(monkeypatch, tmp_path):
    class NoTensorFlow:
        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow" or name.startswith("tensorflow."):
                raise ModuleNotFoundError(f"No module named '{name}'")
            return None

    monkeypatch.delitem(sys.modules, "tensorflow")
    monkeypatch.setattr(sys, "meta_path", [NoTensorFlow(), *sys.meta_path])
    model = netc.compile(CNN)
    for attempt in (
        lambda: driver.emit(model, "tf"),
        lambda: netc.runtime.load(model, target="tf"),
        lambda: to_tf.emit(model.graph, randomized_weights(model.graph)),
    ):
        with pytest.raises(netc.NetcError) as info:
            attempt()
        (d,) = info.value.diagnostics
        assert d.message == "the tf target needs TensorFlow, which is not installed"
        assert d.hint == "pip install 'netc[tf]'"
    monkeypatch.chdir(tmp_path)
    Path("cnn.net").write_text(CNN)
    r = CliRunner().invoke(cli, ["cnn.net", "-t", "tf", "-q"])
    assert r.exit_code == 1 and "pip install 'netc[tf]'" in r.stderr
    assert "Traceback" not in r.output and not Path("cnn.savedmodel").exists()


def test_bad_inputs_are_one_error_listing_every_problem(two_way):
    _, _, path = two_way
    session = netc.runtime.load(path)
    with pytest.raises(netc.NetcError) as info:
        session.run({"x": np.zeros((2, 5, 7), np.float64), "extra": np.zeros(1)})
    (d,) = info.value.diagnostics
    assert d.message == "the inputs do not fit model `two_way`"
    assert d.notes == (
        "input `x` has dtype float64, the model needs f32[N, T, 6]",
        "input `x` has shape [2, 5, 7], the model needs f32[N, T, 6] (axis 2 must be 6)",
        "missing input `ids` i32[N, T]",
        "unexpected input `extra`; the model takes x, ids",
    )


def test_a_run_time_failure_is_a_netc_error(two_way):
    _, _, path = two_way
    session = netc.runtime.load(path)
    ids = np.full((1, 3), 25, np.int32)  # beyond the vocabulary of 20
    with pytest.raises(netc.NetcError) as info:
        session.run({"x": np.zeros((1, 3, 6), np.float32), "ids": ids})
    message = info.value.diagnostics[0].message
    assert message.startswith("TensorFlow failed to run model `two_way`: ")
    assert "25 is not in [0, 20)" in message


def test_what_is_not_a_netc_saved_model_is_refused(tmp_path):
    (tmp_path / "empty.savedmodel").mkdir()
    junk = tmp_path / "junk.savedmodel"
    junk.mkdir()
    (junk / "saved_model.pb").write_bytes(b"\x08\x01garbage")
    foreign = tmp_path / "foreign.savedmodel"
    module = tf.Module()
    module.f = tf.function(
        lambda x: {"y": x * 2}, input_signature=[tf.TensorSpec([None], tf.float32)]
    )
    tf.saved_model.save(module, str(foreign), signatures=module.f.get_concrete_function())
    cases = {
        tmp_path / "missing.savedmodel": "no such SavedModel: ",
        tmp_path / "empty.savedmodel": "is not a SavedModel (it has no saved_model.pb)",
        junk: "is not a valid SavedModel: ",
        foreign: "is a SavedModel, but not one netc wrote",
    }
    for path, message in cases.items():
        with pytest.raises(netc.NetcError) as info:
            netc.runtime.load(path)
        assert message in info.value.diagnostics[0].message, path
    r = CliRunner().invoke(cli, ["run", str(junk), "-i", "x.npz"])
    assert r.exit_code == 1 and "is not a valid SavedModel" in r.stderr
    assert "Traceback" not in r.output


def test_an_input_named_like_a_python_keyword_is_a_located_error():
    graph = netc.compile(
        "model m(lambda: f32[N, 4]) -> (y: tensor) {\n  y = lambda |> relu\n}"
    ).graph
    with pytest.raises(netc.NetcError) as info:
        to_tf.emit(graph, {})
    (d,) = info.value.diagnostics
    assert d.message.startswith("the tf backend cannot name input `lambda`")
    assert (d.span.line, d.span.col) == (1, 9)


def test_weights_beyond_what_one_graphdef_holds_are_an_error(monkeypatch):
    graph = netc.compile(CNN).graph
    monkeypatch.setattr(to_tf, "MAX_CONSTANT_BYTES", 5_000)  # CNN's weights: 6,772 bytes
    with pytest.raises(netc.NetcError) as info:
        to_tf.emit(graph, randomized_weights(graph))
    (d,) = info.value.diagnostics
    assert d.message.startswith("the tf backend embeds weights as constants in one GraphDef")
    assert d.hint == "use -t onnx or -t keras for a model this size"


def test_a_missing_rule_is_a_located_error(monkeypatch):
    graph = netc.compile(
        "model m(x: f32[N, T, 4]) -> (y: tensor) {\n    y = x |> gru(3)\n}\n"
    ).graph
    monkeypatch.delitem(to_tf.RULES.table, "gru")
    with pytest.raises(netc.NetcError) as info:
        to_tf.emit(graph, randomized_weights(graph))
    (d,) = info.value.diagnostics
    assert d.message == "the tf backend cannot lower `gru`"
    assert (d.span.line, d.span.col) == (2, 14)


@pytest.mark.skipif(
    tf_runtime.gpu_available(), reason="a GPU is here: this checks the error without one"
)
def test_device_cuda_without_a_gpu_is_an_error(two_way):
    _, _, path = two_way
    with pytest.raises(netc.NetcError, match="device cuda: TensorFlow sees no GPU here"):
        netc.runtime.load(path, device="cuda")
    assert netc.runtime.load(path, device="auto").device == "cpu"


@pytest.mark.skipif(not tf_runtime.gpu_available(), reason="no GPU for TensorFlow")
def test_a_saved_model_runs_on_the_gpu(two_way):
    graph, weights, path = two_way
    session = netc.runtime.load(path, device="cuda")
    assert session.device == "cuda"
    feed = inputs_for(graph, 3)
    want = reference.run(graph, feed, weights, wide=True)
    for name, value in session.run(feed).items():
        assert_close(value, want[name], device="cuda", err_msg=name)
