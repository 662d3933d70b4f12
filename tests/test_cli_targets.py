"""The CLI's backend commands: writing model.onnx, `run`, `weights`, opt levels and pass flags.

Every value the CLI computes is compared in full with the float64 reference (assert_close, model
tolerance), with randomized weights passed by --weights (no zero bias, batchnorm statistics
drawn, so a dropped one shows) on conformance.py's edge input kinds, at batch 1 and 3."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conformance import INPUT_KINDS, inputs_for

import netc
from netc.cli import cli
from netc.runtime.reference import run as reference_run
from netc.runtime.tolerance import assert_close
from netc.weights import randomized_weights

CNN = """\
model cnn(image: f32[N, 12, 12, 3]) -> (logits: f32[N, 5]) {
    x = image |> conv2d(8, 3, padding="same", bias=false) |> batchnorm |> relu |> maxpool(2)
    logits = x |> flatten |> dense(5)
}
"""
FEEDS = [(kind, batch) for kind in INPUT_KINDS for batch in (1, 3)]


@pytest.fixture
def files(tmp_path, monkeypatch):
    """cnn.net, its randomized weights w.npz, x.npy (normal, batch 3) and x_KIND_BATCH.npy."""
    monkeypatch.chdir(tmp_path)
    Path("cnn.net").write_text(CNN)
    graph = netc.compile(Path("cnn.net")).graph
    np.savez("w.npz", **randomized_weights(graph, seed=5))
    for kind, batch in FEEDS:
        np.save(f"x_{kind}_{batch}.npy", inputs_for(graph, batch, kind, seed=batch)["image"])
    np.save("x.npy", np.load("x_normal_3.npy"))
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def reference(x: np.ndarray) -> np.ndarray:
    """The float64 reference's logits for `x` with the weights in w.npz."""
    graph = netc.compile(Path("cnn.net")).graph
    with np.load("w.npz") as w:
        return reference_run(graph, {"image": x}, dict(w), wide=True)["logits"]


def assert_outputs_match_the_reference(path: str, x: np.ndarray, what: str) -> None:
    with np.load(path) as y:
        assert list(y.files) == ["logits"]
        assert_close(y["logits"], reference(x), scope="model", err_msg=what)


def test_the_default_command_writes_an_onnx_model_next_to_the_source(files):
    r = run("cnn.net", "-q", "--weights", "w.npz")
    assert r.exit_code == 0 and r.stdout.endswith("wrote cnn.onnx\n")
    for kind, batch in FEEDS:
        x = f"x_{kind}_{batch}.npy"
        out = run("run", "cnn.onnx", "-i", x, "-o", "y.npz")
        assert out.exit_code == 0, out.output
        assert_outputs_match_the_reference("y.npz", np.load(x), x)


def test_output_path_and_same_bytes_for_the_same_seed(files):
    assert run("cnn.net", "-o", "a.onnx", "-q").exit_code == 0
    assert run("cnn.net", "-o", "b.onnx", "-q").exit_code == 0
    assert run("cnn.net", "-o", "c.onnx", "-q", "--seed", "1").exit_code == 0
    assert Path("a.onnx").read_bytes() == Path("b.onnx").read_bytes()
    assert Path("a.onnx").read_bytes() != Path("c.onnx").read_bytes()


def test_weights_written_by_netc_weights_load_back_by_name(files):
    r = run("weights", "cnn.net", "-o", "w.safetensors")
    assert (r.exit_code, r.stdout) == (0, "wrote w.safetensors: 7 weights, 1,693 params\n")
    assert run("cnn.net", "-o", "a.onnx", "-q").exit_code == 0
    assert run("cnn.net", "-o", "b.onnx", "-q", "--weights", "w.safetensors").exit_code == 0
    assert Path("a.onnx").read_bytes() == Path("b.onnx").read_bytes()


def test_mismatched_weights_are_one_error_and_leave_no_file(files):
    np.savez(
        "w.npz",
        **{"conv2d.kernel": np.zeros((3, 3, 3, 4), np.float32), "extra": np.zeros(2, np.float32)},
    )
    r = CliRunner().invoke(cli, ["cnn.net", "--weights", "w.npz", "-q"])
    assert r.exit_code == 1
    assert "w.npz does not fit model `cnn` (8 problems)" in r.stderr
    assert (
        "wrong shape: conv2d.kernel is [3, 3, 3, 4] in w.npz, the model needs f32[3, 3, 3, 8]"
        in r.stderr
    )
    assert "missing: dense.kernel f32[288, 5]" in r.stderr and "unexpected: extra [2]" in r.stderr
    assert not Path("cnn.onnx").exists()


@pytest.mark.parametrize("level", ["0", "1", "2"])
def test_run_a_net_file_directly_at_every_opt_level(files, level):
    for kind, batch in FEEDS:
        x = f"x_{kind}_{batch}.npy"
        out = run("run", "cnn.net", "-i", x, "--weights", "w.npz", "-O", level, "-o", "y.npz")
        assert out.exit_code == 0, out.output
        assert_outputs_match_the_reference("y.npz", np.load(x), f"{x} at -O{level}")


def test_run_summarizes_the_outputs(files):
    """The text line and the JSON give min, max and mean: 6 significant digits in the text."""
    ref = reference(np.load("x_negative_3.npy")).astype(np.float64)
    want = np.array([ref.min(), ref.max(), ref.mean()])
    r = run("run", "cnn.net", "-i", "x_negative_3.npy", "--weights", "w.npz")
    assert r.exit_code == 0
    m = re.fullmatch(r"logits: float32\[3, 5\]  min (\S+)  max (\S+)  mean (\S+)\n", r.stdout)
    assert m, r.stdout
    assert_close(np.array([float(v) for v in m.groups()]), want, scope="model")
    data = json.loads(
        run("run", "cnn.net", "-i", "x_negative_3.npy", "--weights", "w.npz", "--json").stdout
    )
    (out,) = data["outputs"]
    assert (out["name"], out["dtype"], out["shape"]) == ("logits", "float32", [3, 5])
    assert_close(np.array([out["min"], out["max"], out["mean"]]), want, scope="model")


def test_run_rejects_wrong_inputs_and_corrupt_models(files):
    np.save("bad.npy", np.zeros((3, 12, 12, 4), np.float32))
    r = CliRunner().invoke(cli, ["run", "cnn.net", "-i", "bad.npy"])
    assert r.exit_code == 1 and "the model needs f32[N, 12, 12, 3]" in r.stderr
    Path("junk.onnx").write_text("not a model")
    r = CliRunner().invoke(cli, ["run", "junk.onnx", "-i", "x.npy"])
    assert r.exit_code == 1 and "junk.onnx is not a valid ONNX model" in r.stderr
    assert "Traceback" not in r.output


def test_opt_levels_change_the_emitted_ir(files):
    o0 = run("cnn.net", "--emit", "ir").stdout
    o2 = run("cnn.net", "--emit", "ir", "-O", "2").stdout
    assert "batchnorm(" in o0 and "fused_conv(" not in o0
    assert "batchnorm(" not in o2 and "fused_conv(" in o2


def test_print_after_and_stats_go_to_stderr(files):
    r = run("cnn.net", "-q", "--print-after", "fold_batchnorm", "--stats", "--no-write")
    assert r.exit_code == 0
    assert "// after fold_batchnorm\ngraph cnn(" in r.stderr
    assert "what each pass did" in r.stderr and "fuse_activation" in r.stderr
    bad = CliRunner().invoke(cli, ["cnn.net", "--print-after", "fold_everything"])
    assert bad.exit_code == 2 and "unknown pass `fold_everything`" in bad.stderr  # bad usage


def test_verify_passes_checks_every_pass(files):
    r = run("cnn.net", "-q", "--verify-passes", "-o", "v.onnx")
    assert r.exit_code == 0 and Path("v.onnx").exists()


def test_channels_first_io_layout(files):
    r = run("cnn.net", "-q", "--io-layout", "channels-first", "-o", "cf.onnx", "--weights", "w.npz")
    assert r.exit_code == 0
    for kind, batch in FEEDS:
        x = np.load(f"x_{kind}_{batch}.npy")
        np.save("x_cf.npy", x.transpose(0, 3, 1, 2))
        r = run("run", "cf.onnx", "-i", "x_cf.npy", "-o", "y.npz")
        assert r.exit_code == 0, r.output
        assert_outputs_match_the_reference("y.npz", x, f"{kind} inputs, batch {batch}")


def test_random_inputs_bind_the_batch_and_other_symbols():
    from netc.runtime.api import Signature
    from netc.runtime.bench import random_inputs

    feeds = random_inputs(
        (Signature("x", "f32", ("N", "T", 3)), Signature("ids", "i64", (None, 4))),
        batch=5,
        symbols={"T": 7},
    )
    assert (feeds["x"].shape, feeds["x"].dtype) == ((5, 7, 3), np.float32)
    assert (feeds["ids"].shape, feeds["ids"].dtype) == ((5, 4), np.int64)


def test_fused_onnx_nodes_name_every_source_line_they_came_from(files):
    import onnx

    assert run("cnn.net", "-q", "-o", "o2.onnx").exit_code == 0
    conv = next(n for n in onnx.load("o2.onnx").graph.node if n.op_type == "Conv")
    # the conv at 2:18, its batchnorm at 2:62 and relu at 2:75 are one node now
    assert conv.doc_string == "cnn.net:2:18; fused with cnn.net:2:62, cnn.net:2:75"


def test_verify_agrees_or_points_at_the_first_diverging_line(files, monkeypatch):
    from netc.backends import to_onnx

    ok = run("verify", "cnn.net", "-O", "0")
    assert ok.exit_code == 0 and "the onnx backend agrees with the reference" in ok.stdout

    def leaky_relu(ctx, node):  # a broken lowering: negative values leak through
        x = ctx.get(node.inputs[0])
        return to_onnx.Value(ctx.add("LeakyRelu", [x.name], alpha=0.5), x.cf)

    monkeypatch.setitem(to_onnx.RULES.table, "relu", leaky_relu)
    bad = CliRunner().invoke(cli, ["verify", "cnn.net", "-O", "0"])
    assert bad.exit_code == 1
    assert bad.stderr.startswith(
        "cnn.net:2:75: error: the onnx backend differs from the reference here"
    )
    assert "Traceback" not in bad.output
