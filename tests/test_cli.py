"""The `netc` command line: summary, check, --json, --emit ir, --model, diagnostics, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import netc
from netc.cli import cli, human_flops

MLP = """\
# a two-layer perceptron
model mlp(x: f32[N, 784]) -> (logits: f32[N, 10]) {
    h = x |> dense(128) |> relu
    logits = h |> dense(10)
}
"""

TWO_MODELS = (
    MLP
    + """
model tiny(x: f32[batch, 4]) -> (y: f32[batch, 2]) {
    y = x |> dense(2) |> softmax
}
"""
)

UNUSED = """\
model net(x: f32[N, 8], z: f32[N, 8]) -> (y: f32[N, 4]) {
    y = x |> dense(4)
}
"""

BAD = """\
model m(x: f32[N, 4]) -> (y: f32[N, 2]) {
    y = x |> densse(2)
}
"""

BAD_RENDERED = """\
bad.net:2:14: error: unknown op or block `densse`
2 |     y = x |> densse(2)
  |              ^^^^^^^^^
  = help: did you mean `dense`?

1 error
"""

HEAVY = {"tensorflow", "keras", "tvm", "onnx", "onnxruntime", "torch"}


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fixtures as files in the working directory, so diagnostics name them briefly."""
    for name, text in [
        ("mlp.net", MLP),
        ("two.net", TWO_MODELS),
        ("unused.net", UNUSED),
        ("bad.net", BAD),
    ]:
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NETC_DEBUG", raising=False)
    return tmp_path


def run(*args: str, **env: str) -> Result:
    return CliRunner().invoke(
        cli, list(args), env={"NO_COLOR": None, "FORCE_COLOR": None, **env}, catch_exceptions=False
    )


def netc_script() -> str:
    script = Path(sys.executable).parent / "netc"
    if not script.exists():
        pytest.skip("the netc console script is not installed next to this python")
    return str(script)


def test_summary_lists_each_layer_with_its_shape_params_and_line(files: Path) -> None:
    r = run("summary", "mlp.net")
    assert r.exit_code == 0, r.output
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in r.stdout.splitlines()
        if line.startswith("│")
    }
    assert rows == {
        "x": ["input", "f32[N, 784]", "0", "2"],
        "dense": ["dense", "f32[N, 128]", "100,480", "3"],
        "relu": ["relu", "f32[N, 128]", "0", "3"],
        "dense_1": ["dense", "f32[N, 10]", "1,290", "4"],
    }
    for header in ("Layer", "Op", "Output shape", "Param #", "Line"):
        assert header in r.stdout
    assert 'Model: "mlp" (mlp.net)' in r.stdout
    assert "Total params: 101,770\n" in r.stdout
    assert "Trainable params: 101,770\n" in r.stdout
    assert "Non-trainable params: 0\n" in r.stdout
    assert "FLOPs per sample: 203.5 kFLOPs (203,530)\n" in r.stdout
    assert r.stderr == ""
    assert "\x1b[" not in r.output  # no colour when not on a terminal


def test_a_bare_path_runs_the_default_command_which_prints_the_summary(files: Path) -> None:
    summary = run("summary", "mlp.net").stdout
    written = summary + "wrote mlp.onnx\n"  # the default command also writes the model
    assert run("mlp.net").stdout == written
    assert run("compile", "mlp.net").stdout == written
    assert run("-q", "mlp.net").stdout == written  # options may come before the path
    assert run("mlp.net", "--no-write").stdout == summary


def test_lowercase_dims_are_printed_as_written(files: Path) -> None:
    r = run("two.net", "--model", "tiny")
    assert r.exit_code == 0, r.output
    assert "f32[batch, 2]" in r.stdout  # not eaten as console markup


def test_check_prints_one_ok_line(files: Path) -> None:
    r = run("check", "mlp.net")
    assert (r.exit_code, r.stdout, r.stderr) == (
        0,
        "ok: model `mlp`: 3 layers, 101,770 params\n",
        "",
    )


def test_warnings_go_to_stderr_and_quiet_drops_them(files: Path) -> None:
    r = run("check", "unused.net")
    assert r.exit_code == 0
    assert r.stdout == "ok: model `net`: 1 layer, 36 params\n"
    assert r.stderr == (
        "unused.net:1:25: warning: input `z` is never used\n"
        "1 | model net(x: f32[N, 8], z: f32[N, 8]) -> (y: f32[N, 4]) {\n"
        "  |                         ^^^^^^^^^^^^\n"
    )
    quiet = run("check", "-q", "unused.net")
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, r.stdout, "")
    assert run("unused.net").stderr == r.stderr
    assert run("unused.net", "--quiet").stderr == ""


@pytest.mark.parametrize("command", [[], ["summary"], ["check"]])
def test_json_is_the_model_summary_and_nothing_else(files: Path, command: list[str]) -> None:
    r = run(*command, "unused.net", "--json")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert data["ok"] is True
    written = {"output": "unused.onnx"} if command == [] else {}
    assert data == {"ok": True, **netc.compile(Path("unused.net")).to_json(), **written}
    assert (data["total_params"], data["trainable_params"], data["non_trainable_params"]) == (
        36,
        36,
        0,
    )
    assert [w["message"] for w in data["warnings"]] == ["input `z` is never used"]
    assert r.stderr == ""


def test_json_totals_of_the_mlp(files: Path) -> None:
    data = json.loads(run("mlp.net", "--json").stdout)
    assert [layer["name"] for layer in data["layers"]] == ["dense", "relu", "dense_1"]
    assert (data["total_params"], data["flops"]) == (101_770, 203_530)


def test_json_reports_errors_as_diagnostics(files: Path) -> None:
    r = run("check", "bad.net", "--json")
    assert r.exit_code == 1
    assert json.loads(r.stdout) == {
        "ok": False,
        "diagnostics": [
            {
                "severity": "error",
                "message": "unknown op or block `densse`",
                "path": "bad.net",
                "line": 2,
                "col": 14,
                "end_line": 2,
                "end_col": 23,
                "hint": "did you mean `dense`?",
            }
        ],
    }
    assert r.stderr == ""


@pytest.mark.parametrize("command", [[], ["summary"], ["check"]])
def test_emit_ir_prints_the_graph_instead(files: Path, command: list[str]) -> None:
    r = run(*command, "mlp.net", "--emit", "ir")
    assert r.exit_code == 0
    assert r.stdout == netc.print_graph(netc.compile(Path("mlp.net")).graph) + "\n"
    assert r.stdout.startswith("graph mlp(x: f32[N, 784]) -> (logits: f32[N, 10]) {\n")
    assert "  dense: f32[N, 128] = dense(x, dense.kernel, dense.bias" in r.stdout
    assert "  relu: f32[N, 128] = relu(dense)" in r.stdout
    assert "  return logits=dense_1\n}\n" in r.stdout
    assert "Total params" not in r.stdout


def test_emit_ir_with_json_adds_the_ir(files: Path) -> None:
    data = json.loads(run("mlp.net", "--emit", "ir", "--json").stdout)
    assert data["ir"].startswith("graph mlp(")


def test_model_picks_one_of_several(files: Path) -> None:
    r = run("two.net")
    assert r.exit_code == 1
    assert "error: two.net defines 2 models (mlp, tiny); choose one" in r.stderr
    assert r.stdout == ""
    assert run("check", "two.net", "--model", "tiny").stdout == (
        "ok: model `tiny`: 2 layers, 10 params\n"
    )
    assert 'Model: "mlp"' in run("two.net", "--model", "mlp").stdout


def test_a_mistake_renders_the_located_diagnostic_and_exits_1(files: Path) -> None:
    for command in ([], ["check"], ["summary"]):
        r = run(*command, "bad.net")
        assert (r.exit_code, r.stdout, r.stderr) == (1, "", BAD_RENDERED)


def test_diagnostics_are_coloured_on_a_terminal_only(files: Path) -> None:
    coloured = run("bad.net", FORCE_COLOR="1").stderr
    assert "\x1b[1;31merror\x1b[0m" in coloured
    assert "\x1b[1;31m^^^^^^^^^\x1b[0m" in coloured
    assert "\x1b[" not in run("bad.net", FORCE_COLOR="1", NO_COLOR="1").stderr
    assert "\x1b[33mwarning\x1b[0m" in run("unused.net", FORCE_COLOR="1").stderr


def test_a_missing_file_is_a_diagnostic_and_exit_1(files: Path) -> None:
    r = run("check", "x.net")
    assert (r.exit_code, r.stderr) == (1, "netc: error: no such file: x.net\n\n1 error\n")
    assert run("x.net").exit_code == 1


@pytest.mark.parametrize(
    "args",
    [
        ["check", "mlp.net", "--bogus"],  # unknown flag
        ["--bogus", "mlp.net"],  # unknown flag of the default command
        ["check"],  # missing file argument
        ["chek", "mlp.net"],  # unknown subcommand
        ["mlp.net", "--emit", "png"],  # bad choice
        [],  # nothing at all
    ],
)
def test_bad_usage_exits_2(files: Path, args: list[str]) -> None:
    assert run(*args).exit_code == 2


def test_a_compiler_bug_exits_3_without_a_traceback(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(netc, "compile", boom)
    r = run("check", "mlp.net")
    assert (r.exit_code, r.stdout) == (3, "")
    assert r.stderr == (
        "netc: internal compiler error: ZeroDivisionError: division by zero\n"
        "this is a bug in netc, not in your model; please report it with the file\n"
    )
    debug = run("check", "mlp.net", NETC_DEBUG="1")
    assert debug.exit_code == 3
    assert debug.stderr.startswith("Traceback (most recent call last):")
    assert debug.stderr.endswith(r.stderr)


def test_version_and_help(files: Path) -> None:
    assert run("--version").stdout == f"netc {netc.__version__}\n"
    r = run("--help")
    assert r.exit_code == 0
    for command in ("check", "compile", "summary"):
        assert command in r.stdout


def test_human_flops() -> None:
    assert human_flops(0) == "0 FLOPs"
    assert human_flops(999) == "999 FLOPs"
    assert human_flops(203_530) == "203.5 kFLOPs"
    assert human_flops(999_999) == "1.0 MFLOPs"
    assert human_flops(4_100_000_000) == "4.1 GFLOPs"


def test_check_and_help_import_no_backend(files: Path) -> None:
    code = (
        "import sys\n"
        "from netc.cli import main\n"
        "for args in (['--help'], ['check', 'mlp.net'], ['mlp.net', '--no-write']):\n"
        "    main(args, standalone_mode=False)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[]"


def test_the_installed_script_exits_with_the_right_codes(files: Path) -> None:
    script = netc_script()
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NETC_DEBUG")}
    ok = subprocess.run([script, "check", "mlp.net"], capture_output=True, text=True, env=env)
    assert (ok.returncode, ok.stdout) == (0, "ok: model `mlp`: 3 layers, 101,770 params\n")
    bad = subprocess.run([script, "bad.net"], capture_output=True, text=True, env=env)
    assert (bad.returncode, bad.stdout, bad.stderr) == (1, "", BAD_RENDERED)
    usage = subprocess.run([script, "--nope"], capture_output=True, text=True, env=env)
    assert usage.returncode == 2
    assert "No such option" in usage.stderr


def test_python_dash_m_netc_is_the_netc_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "netc", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout == "netc 0.1.0\n"
