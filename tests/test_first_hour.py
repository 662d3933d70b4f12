"""What a new user trips over in the first hour (issue 12): every bad keyword of a call at
once, Keras' spellings and habits pointed at netc's, numpy's default dtypes with the cast to
write, a reverse slice of a symbolic dim, and the CLI's messages, help and flags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

import netc
from netc import NetcError
from netc.cli import cli, human_flops
from netc.runtime import reference
from netc.runtime.tolerance import assert_close
from netc.weights import initial_weights


def failure(text: str) -> NetcError:
    """The NetcError that compiling `text` must raise."""
    with pytest.raises(NetcError) as info:
        netc.compile_text(text, path="model.net")
    return info.value


def messages(e: NetcError) -> list[tuple[str, str | None]]:
    return [(d.message, d.hint) for d in e.diagnostics]


# --- the language: Keras habits -----------------------------------------------------------------


def test_every_bad_keyword_of_a_call_is_reported_in_one_run() -> None:
    e = failure(
        "model m(x: f32[N, 28, 28, 1]) -> (y: f32[N, 13, 13, 8]) {\n"
        '    y = x |> conv2d(8, kernel_size=3, strides=2, activation="relu", paddin="valid")\n'
        "}\n"
    )
    assert messages(e) == [
        ("conv2d has no attribute `kernel_size`", "did you mean `kernel`?"),
        ("conv2d has no attribute `strides`", "did you mean `stride`?"),
        ("conv2d has no attribute `paddin`", "did you mean `padding`?"),
    ]


def test_keras_spellings_get_netc_names() -> None:
    e = failure(
        "model m(x: f32[N, T, 8]) -> (y: f32[N, T, 8], z: f32[N, T, 16]) {\n"
        "    y = x |> multi_head_attention(x, num_heads=2, key_dim=4)\n"
        "    z = x |> lstm(16, return_sequences=True)\n"
        "}\n"
    )
    assert messages(e) == [
        ("multi_head_attention has no attribute `num_heads`", "did you mean `heads`?"),
        ("unknown name `True`", "write `true`"),
    ]


def test_an_activation_on_an_op_without_one_is_piped_after_it() -> None:
    e = failure(
        'model m(x: f32[N, 8]) -> (y: f32[N, 8]) {\n    y = x |> layernorm(activation="relu")\n}\n'
    )
    assert messages(e) == [
        (
            "layernorm has no attribute `activation`",
            "apply it after the op: `layernorm(...) |> relu`",
        )
    ]


def test_numpy_default_dtypes_get_the_cast_to_write() -> None:
    model = netc.compile_text(
        "model m(ids: i32[N, T], x: f32[N, 3]) -> (y: f32[N, 3]) {\n    y = x * 2.0\n}\n"
    )
    with pytest.raises(NetcError) as info:
        reference.run(model.graph, {"ids": np.zeros((2, 4), np.int64), "x": np.zeros((2, 3))}, {})
    (d,) = info.value.diagnostics
    assert d.notes == (
        "input `ids` has dtype int64, the model needs i32[N, T]",
        "input `x` has dtype float64, the model needs f32[N, 3]",
    )
    assert d.hint == "cast with `ids.astype(np.int32)`, `x.astype(np.float32)`"


# --- a reverse slice keeps a symbolic dim's size -------------------------------------------------


def test_a_reverse_slice_of_a_symbolic_dim_keeps_its_size() -> None:
    model = netc.compile_text(
        "model m(x: f32[N, T, 4]) -> (y: f32[N, T, 4]) {\n    y = x[:, ::-1]\n}\n"
    )
    x = np.arange(2 * 5 * 4, dtype=np.float32).reshape(2, 5, 4)
    (y,) = reference.run(model.graph, {"x": x}, {}).values()
    np.testing.assert_array_equal(y, x[:, ::-1])


def test_other_slices_of_a_symbolic_dim_stay_refused() -> None:
    e = failure("model m(x: f32[N, T, 4]) -> (y: tensor) {\n    y = x[:, ::-2]\n}\n")
    assert e.diagnostics[0].message == (
        "slice cannot take -1::-2 of symbolic dim `T` (axis 1 of f32[N, T, 4]): its size would "
        "depend on `T`"
    )


# --- the command line ----------------------------------------------------------------------------

MLP = """model mlp(x: f32[N, 6]) -> (y: f32[N, 3]) {
    y = x |> dense(8) |> relu |> dense(3)
}
"""
# per time step: a dense over [N, T, 8], so its FLOPs grow with T
TOKENS = """model tok(tokens: i32[N, T]) -> (y: f32[N, T, 4]) {
    y = tokens |> embedding(50, 8) |> positional_embedding(max_length=20) |> dense(4)
}
"""


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The models as files in the working directory, so that messages name them briefly."""
    (tmp_path / "mlp.net").write_text(MLP)
    (tmp_path / "tok.net").write_text(TOKENS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NETC_DEBUG", raising=False)
    return tmp_path


def netc_cli(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"NO_COLOR": "1"}, catch_exceptions=False)


def test_verify_passes_says_what_it_checked(files: Path) -> None:
    r = netc_cli("mlp.net", "--no-write", "--verify-passes", "-q")
    assert r.exit_code == 0
    from netc.passes import pipeline

    n = len(pipeline(2))
    assert r.stderr == (
        f"--verify-passes: all {n} passes of -O2 verified: the IR is well formed after each, "
        "and each keeps every output on random inputs\n"
    )
    r = netc_cli("mlp.net", "--no-write", "--verify-passes", "-O0", "-q")
    assert r.stderr == "--verify-passes: -O0 runs no passes, so none was checked\n"
    r = netc_cli("mlp.net", "--no-write", "--verify-passes", "--json")
    assert json.loads(r.stdout)["verified_passes"] == [p.__name__ for p in pipeline(2)]


def test_weights_are_checked_with_no_write(files: Path) -> None:
    r = netc_cli("mlp.net", "--no-write", "--weights", "none.npz")
    assert (r.exit_code, r.stderr) == (
        1,
        "netc: error: no such weights file: none.npz\n\n1 error\n",
    )
    assert netc_cli("weights", "mlp.net", "-o", "w.npz").exit_code == 0
    r = netc_cli("mlp.net", "--no-write", "--weights", "w.npz")
    assert r.exit_code == 0
    assert r.stdout.splitlines()[-1] == "weights w.npz fit the model: 4 weights"
    values = dict(np.load("w.npz"))
    values["dense_1.bias"] = np.zeros(4, np.float32)
    del values["dense.bias"]
    np.savez("bad.npz", **values)
    r = netc_cli("mlp.net", "--no-write", "--weights", "bad.npz")
    assert r.exit_code == 1
    assert "missing: dense.bias" in r.stderr
    assert "wrong shape: dense_1.bias is [4] in bad.npz, the model needs f32[3]" in r.stderr


def test_summary_counts_flops_at_the_dims_given_and_says_what_it_assumed(files: Path) -> None:
    r = netc_cli("summary", "tok.net")
    one = netc.compile("tok.net").flops
    assert r.stdout.splitlines()[-1] == (
        f"FLOPs per sample: {human_flops(one)} ({one:,}); T=1 assumed (--dim T=SIZE sets it)"
    )
    r = netc_cli("summary", "tok.net", "--dim", "T=100")
    hundred = 100 * one  # every op here works per time step
    assert r.stdout.splitlines()[-1] == (
        f"FLOPs per sample: {human_flops(hundred)} ({hundred:,}) at T=100"
    )
    data = json.loads(netc_cli("summary", "tok.net", "--dim", "T=100", "--json").stdout)
    assert (data["flops"], data["dims"], data["assumed_dims"]) == (hundred, {"T": 100}, [])
    r = netc_cli("tok.net", "--no-write")  # the default command's --dim is -t tvm's
    assert r.stdout.splitlines()[-1].endswith("; T=1 assumed (`netc summary --dim T=SIZE` sets it)")
    r = netc_cli("summary", "tok.net", "--dim", "S=3")
    assert r.exit_code == 2
    assert "S is not a symbolic dim of the model's inputs (they have N, T)" in r.stderr


def test_run_without_inputs_runs_on_seeded_random_ones(files: Path) -> None:
    from netc.cli.inputs import Sizes, random_feed
    from netc.runtime.api import graph_signature

    r = netc_cli("run", "tok.net")
    assert r.exit_code == 0
    assert r.stdout.splitlines()[0] == (
        "random inputs (seed 0): tokens int32[1, 16]; T=16 assumed (--dim T=SIZE sets it)"
    )
    r = netc_cli("run", "tok.net", "--batch", "3", "--dim", "T=7", "--seed", "2", "-o", "y.npz")
    lines = r.stdout.splitlines()
    assert lines[0] == "random inputs (seed 2): tokens int32[3, 7]"
    assert lines[1].startswith("y: float32[3, 7, 4]  min ") and lines[2:] == ["wrote y.npz"]
    model = netc.compile("tok.net")
    sizes = Sizes({"N": 3, "T": 7}, {})
    feed = random_feed(graph_signature(model.graph)[0], sizes, seed=2, int_high=50)
    assert feed["tokens"].max() < 50  # ids below the embedding's vocabulary
    want = reference.run(model.graph, feed, initial_weights(model.graph, 2), wide=True)
    assert_close(np.load("y.npz")["y"], want["y"], scope="model")
    assert netc_cli("run", "tok.net", "-i", "y.npz", "--dim", "T=3").exit_code == 2


def test_a_sequence_past_max_length_is_refused_before_onnx_runtime(files: Path) -> None:
    r = netc_cli("run", "tok.net", "--dim", "T=21")
    assert r.exit_code == 1
    assert r.stderr.splitlines()[0] == (
        "tok.net:2:39: error: the inputs have T = 21, but positional_embedding "
        "`positional_embedding` has max_length=20: it cannot take more than 20 steps"
    )
    assert netc_cli("tok.net", "-q").exit_code == 0
    np.save("long.npy", np.zeros((2, 30), np.int32))
    r = netc_cli("run", "tok.onnx", "-i", "long.npy")
    assert (r.exit_code, r.stderr) == (
        1,
        "netc: error: the inputs have T = 30, but `positional_embedding` (tok.net:2:39) has "
        "max_length=20: it cannot take more than 20 steps\n"
        "  = help: pass at most 20 steps, or raise max_length\n\n1 error\n",
    )
    assert netc_cli("run", "tok.onnx", "--dim", "T=20").exit_code == 0  # at the bound: fine
    r = netc_cli("verify", "tok.net", "--dim", "T=25")
    assert (r.exit_code, r.stderr.splitlines()[0]) == (
        1,
        "tok.net:2:39: error: the inputs have T = 25, but positional_embedding "
        "`positional_embedding` has max_length=20: it cannot take more than 20 steps",
    )


def test_int64_ids_from_a_file_get_the_cast_to_write(files: Path) -> None:
    np.save("ids.npy", np.zeros((2, 5), np.int64))
    r = netc_cli("run", "tok.net", "-i", "ids.npy")
    assert r.exit_code == 1
    assert "  = help: cast with `tokens.astype(np.int32)`" in r.stderr.splitlines()


def test_verify_takes_dims_and_the_auto_device_it_offers(files: Path) -> None:
    r = netc_cli("verify", "tok.net", "--dim", "T=9", "--device", "auto")
    assert r.exit_code == 0
    assert "N=2, T=9, " in r.stdout
    r = netc_cli("verify", "tok.net")
    assert "N=2, T=5 (T assumed: --dim T=SIZE sets it), " in r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["mlp", "--no-write"],
            "Error: no command `mlp`; for the model mlp.net, write `netc mlp.net`",
        ),
        (
            ["mlp.net", "--print-after", "fuse_activations"],
            "Error: Invalid value for '--print-after': unknown pass `fuse_activations`; did you "
            "mean `fuse_activation`?",
        ),
        (
            ["mlp.net", "-o", "out.h5"],
            "Error: Invalid value for -o: out.h5: -t onnx writes .onnx, not .h5; netc writes "
            "Keras models as .keras: -t keras -o MODEL.keras",
        ),
        (
            ["mlp.net", "-o", "out.keras"],
            "Error: Invalid value for -o: out.keras: -t onnx writes .onnx, not .keras; for "
            ".keras, use -t keras",
        ),
    ],
)
def test_usage_mistakes_exit_2_and_say_what_to_write(
    files: Path, args: list[str], message: str
) -> None:
    r = netc_cli(*args)
    assert (r.exit_code, r.stderr.splitlines()[-1]) == (2, message)
    assert not list(files.glob("out.*"))


def test_an_artifact_given_for_a_source_is_named(files: Path) -> None:
    assert netc_cli("mlp.net", "-q").exit_code == 0
    r = netc_cli("check", "mlp.onnx")
    assert (r.exit_code, r.stderr) == (
        1,
        "netc: error: mlp.onnx is an ONNX model, not a .net source\n"
        "  = help: `netc run mlp.onnx` runs it; `netc check` reads the .net it was compiled "
        "from\n\n1 error\n",
    )


def test_help_says_what_the_default_command_writes_and_cuts_no_command_short(files: Path) -> None:
    r = netc_cli("--help")
    assert "`netc MODEL.net` checks the model, prints its summary and writes MODEL.onnx" in (
        " ".join(r.stdout.split())
    )
    commands = r.stdout.split("Commands:")[1]
    assert "..." not in commands
    assert "bench" in commands and "verify" in commands


def test_run_does_what_its_help_says_of_an_output_file(files: Path) -> None:
    np.save("x.npy", np.ones((2, 6), np.float32))
    assert "Also write the outputs here" in " ".join(netc_cli("run", "--help").stdout.split())
    r = netc_cli("run", "mlp.net", "-i", "x.npy", "-o", "y.npz")
    lines = r.stdout.splitlines()
    assert lines[0].startswith("y: float32[2, 3]  min ") and lines[1:] == ["wrote y.npz"]
    assert list(np.load("y.npz")) == ["y"]


def test_an_assumed_size_stays_within_a_bound_and_ids_within_the_vocabulary(files: Path) -> None:
    Path("short.net").write_text(
        "model short(ids: i32[N, T]) -> (y: f32[N, T, 4]) {\n"
        "    y = ids |> embedding(3, 4) |> positional_embedding(max_length=9)\n"
        "}\n"
    )
    r = netc_cli("run", "short.net", "--json")
    data = json.loads(r.stdout)
    assert (data["inputs"]["sizes"], data["inputs"]["assumed"]) == ({"N": 1, "T": 9}, {"T": 9})
    assert netc_cli("short.net", "-q").exit_code == 0
    r = netc_cli("run", "short.onnx", "--batch", "64")  # ids past 3 would fail in Gather
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == (
        "random inputs (seed 0): ids int32[64, 9]; T=9 assumed (--dim T=SIZE sets it)"
    )


def test_the_editor_hover_says_which_dims_its_flops_took_as_1(tmp_path: Path) -> None:
    from lsprotocol import types as T

    from netc import lsp

    path = tmp_path / "tok.net"
    path.write_text(TOKENS)
    analysis = lsp.analyze(TOKENS, str(path))
    line = TOKENS.split("\n").index(next(s for s in TOKENS.split("\n") if "dense(4)" in s))
    hover = lsp.hover(
        analysis, T.Position(line=line, character=TOKENS.split("\n")[line].index("dense"))
    )
    assert hover is not None and isinstance(hover.contents, T.MarkupContent)
    assert "per sample at T=1" in hover.contents.value


def test_every_bad_keyword_of_a_block_call_is_reported_in_one_run() -> None:
    e = failure(
        "block stage(x, filters: int, stride: int = 1) {\n"
        "    return x |> conv2d(filters, 3, stride=stride)\n"
        "}\n"
        "\n"
        "model m(x: f32[N, 8, 8, 3]) -> (y: tensor) {\n"
        "    y = x |> stage(filter=4, strides=2)\n"
        "}\n"
    )
    assert messages(e) == [
        ("block `stage` has no parameter `filter`", "did you mean `filters`?"),
        ("block `stage` has no parameter `strides`", "did you mean `stride`?"),
    ]
