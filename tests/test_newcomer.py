"""A newcomer's first commands, run as written: the README's fresh-machine command (in a temp
folder, so nothing lands in the repository) and every command the docs mark as runnable.

The marker: a fenced block whose info string is `console`. Each of its lines that starts with
`$ ` is a command, run with bash in a temp folder holding a copy of examples/ (the netc of
this environment on PATH); it must exit 0, or N when it ends with `# exit N`. The lines after
a command, up to the next one, are its output: each must appear in what the command printed
(a line `...` stands for lines left out). Plain ``` blocks are illustrations and are not run.

The install steps (`python3 -m venv`, `pip install`) are what CI itself runs before the tests
(.ci/run), so they are skipped here; what the base install pulls is checked from pyproject.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent  # this environment's netc and python


def console_blocks(path: Path) -> list[tuple[int, list[tuple[str, list[str]]]]]:
    """The ```console blocks of a Markdown file: (line, [(command, expected output lines)])."""
    blocks = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```console":
            start, i = i + 1, i + 1
            commands: list[tuple[str, list[str]]] = []
            while i < len(lines) and lines[i].strip() != "```":
                if lines[i].startswith("$ "):
                    commands.append((lines[i][2:], []))
                elif commands:
                    commands[-1][1].append(lines[i])
                i += 1
            blocks.append((start, commands))
        i += 1
    return blocks


RUNNABLE = [
    pytest.param(commands, id=f"{path.relative_to(ROOT)}:{line}")
    for path in DOCS
    for line, commands in console_blocks(path)
]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp folder holding a copy of examples/, with this environment's netc first on PATH."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def sh(command: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "NO_COLOR": "1"}
    env.pop("NETC_DEBUG", None)
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def fresh_machine_steps() -> list[str]:
    """The README's first fresh-machine command, split at `&&`, without the install steps."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands for a fresh machine", 1)[1]
    block = re.search(r"```[a-z]*\n(.*?)\n```", section, re.S)
    assert block, "the README has no fresh-machine command"
    steps = [s.strip() for s in block.group(1).split("&&")]
    assert steps[0] == "python3 -m venv .venv" and "pip install" in steps[1]
    return [s.replace(".venv/bin/", f"{BIN}/") for s in steps[2:]]


def test_the_readmes_fresh_machine_command_runs_in_a_clean_folder(workdir: Path) -> None:
    steps = fresh_machine_steps()
    assert any(s.startswith(f"{BIN}/netc run ") for s in steps)
    for step in steps:
        r = sh(step, workdir)
        assert r.returncode == 0, f"{step}\n{r.stdout}\n{r.stderr}"
    made = {p.name for p in workdir.iterdir()}
    assert made == {"examples"}, made  # only next to the example: nothing left in the folder
    assert (workdir / "examples" / "resnet50.onnx").is_file()


@pytest.mark.parametrize("commands", RUNNABLE)
def test_every_runnable_docs_command_does_what_the_docs_show(
    workdir: Path, commands: list[tuple[str, list[str]]]
) -> None:
    for command, shown in commands:
        r = sh(command, workdir)
        printed = [line.rstrip() for line in (r.stdout + r.stderr).splitlines()]
        code = re.search(r"#\s*exit (\d+)\s*$", command)  # a failure the docs show
        assert r.returncode == (int(code.group(1)) if code else 0), (
            f"$ {command}\n{r.stdout}\n{r.stderr}"
        )
        for line in shown:
            if line.strip() and line.strip() != "...":
                assert line.rstrip() in printed, f"$ {command}: `{line}` not in\n{r.stdout}"


def test_the_readmes_error_example_is_what_netc_prints(workdir: Path) -> None:
    section = (ROOT / "README.md").read_text().split("Mistakes raise `netc.NetcError`", 1)[1]
    source, shown = re.findall(r"^```\n(.*?)^```$", section, re.M | re.S)[:2]
    (workdir / "model.net").write_text(source)
    r = sh("netc check model.net", workdir)
    assert r.returncode == 1
    assert r.stderr.startswith(shown)


def test_there_are_runnable_commands_in_the_readme_and_the_language_docs() -> None:
    assert console_blocks(ROOT / "README.md")
    assert console_blocks(ROOT / "docs" / "language.md")


# --- what the install pulls -------------------------------------------------------------------


def requirements(extra: str | None = None) -> list[str]:
    """The requirement strings of the base install, or of an extra (other extras expanded)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    given = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    out = []
    for r in given:
        nested = re.fullmatch(r"netc\[(.*)\]", r)
        if nested:
            out += [x for e in nested.group(1).split(",") for x in requirements(e.strip())]
        else:
            out.append(r)
    return out


def name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]


def test_the_base_install_takes_the_small_cpu_onnx_runtime_everywhere() -> None:
    base = requirements()
    assert [r for r in base if name(r).startswith("onnxruntime")] == ["onnxruntime>=1.20"]
    assert "onnxruntime-gpu" not in map(name, requirements("test"))  # CI has no GPU


def test_a_gpu_machine_adds_the_cuda_build_with_the_gpu_extra() -> None:
    assert list(map(name, requirements("gpu"))) == ["onnxruntime-gpu"]
    readme = (ROOT / "README.md").read_text()
    # both builds install the module `onnxruntime`: the README says how the CUDA one wins
    assert 'pip install -e ".[gpu]"' in readme
    assert "pip install --force-reinstall --no-deps onnxruntime-gpu" in readme


def test_cuda_asked_of_the_cpu_build_says_how_to_get_the_cuda_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import onnxruntime

    import netc
    import netc.runtime
    from netc import NetcError

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    model = netc.compile_text("model m(x: f32[N, 3]) -> (y: f32[N, 3]) {\n    y = x |> relu\n}\n")
    with pytest.raises(NetcError) as info:
        netc.runtime.load(model, device="cuda")
    (d,) = info.value.diagnostics
    assert d.message == "device cuda: this ONNX Runtime is its CPU build (the package onnxruntime)"
    assert d.hint == (
        'on a GPU machine, install the CUDA build: pip install "netc[gpu]" (README, "On a GPU"); '
        'or use device "cpu"'
    )
