"""Imports read only where they may: inside the folder of the file being compiled, the
--include folders and NETC_PATH, resolved through symlinks; anything else is a located error
that never opens the target. Sources are regular files only."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

import netc
from netc import lsp
from netc.cli import cli
from netc.imports import ImportPaths

LAYERS = "block twice(x) {\n    return x + x\n}\n"
SECRET = "TOPSECRET line that must never be shown"


def model(import_path: str) -> str:
    return (
        f'import "{import_path}"\n'
        "model m(x: f32[N, 4]) -> (y: f32[N, 4]) {\n"
        "    y = x |> twice\n"
        "}\n"
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """project/ holds the model, project/lib/ a library; outside/ is beside the project."""
    (tmp_path / "project" / "lib").mkdir(parents=True)
    (tmp_path / "project" / "lib" / "layers.net").write_text(LAYERS)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "layers.net").write_text(f"# {SECRET}\n" + LAYERS)
    (tmp_path / "outside" / "secret.txt").write_text(SECRET + "\n")
    return tmp_path


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path netc opens with os.open (how it reads sources)."""
    paths: list[str] = []
    real_open = os.open

    def spy(path, *args, **kwargs):
        paths.append(os.path.realpath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    return paths


def errors(path: Path, **kw) -> list[tuple[int | None, int | None, str, str | None]]:
    with pytest.raises(netc.NetcError) as info:
        netc.compile(path, **kw)
    return [
        (d.span.line if d.span else None, d.span.col if d.span else None, d.message, d.hint)
        for d in info.value.diagnostics
    ]


def test_an_import_below_the_model_is_read(tree: Path):
    main = tree / "project" / "m.net"
    main.write_text(model("lib/layers.net"))
    assert [n.op for n in netc.compile(main).graph.nodes] == ["input", "add"]


def test_an_import_that_leaves_the_folder_is_refused_without_opening_it(tree, opened):
    main = tree / "project" / "m.net"
    main.write_text(model("../outside/layers.net"))
    with pytest.raises(netc.NetcError) as info:
        netc.compile(main)
    (d,) = info.value.diagnostics
    assert (d.span.line, d.span.col, d.message) == (
        1,
        1,
        'cannot import "../outside/layers.net": it is outside the folders imports may read',
    )
    assert d.notes == (f"imports may read inside {os.path.realpath(tree / 'project')}",)
    assert d.hint and "--include DIR" in d.hint
    assert SECRET not in info.value.render()
    assert not any(p.startswith(str(os.path.realpath(tree / "outside"))) for p in opened)


@pytest.mark.parametrize("target", ["../../../../../../etc/passwd", "../outside/secret.txt"])
def test_the_classic_escapes_name_no_file_and_show_no_line_of_it(tree, target, opened):
    main = tree / "project" / "m.net"
    main.write_text(model(target))
    r = CliRunner().invoke(cli, ["check", str(main)])
    assert r.exit_code == 1
    assert "it is outside the folders imports may read" in r.output
    assert "root:" not in r.output and SECRET not in r.output
    assert os.path.realpath("/etc/passwd") not in opened


def test_an_absolute_import_is_refused(tree, opened):
    main = tree / "project" / "m.net"
    absolute = tree / "project" / "lib" / "layers.net"  # inside the folder, and still refused
    main.write_text(model(str(absolute)))
    assert errors(main) == [
        (
            1,
            1,
            f'cannot import "{absolute}": an import path must be relative',
            "write it relative to the importing file",
        )
    ]
    assert str(os.path.realpath(absolute)) not in opened


def test_a_symlink_is_judged_by_where_it_leads(tree: Path):
    project = tree / "project"
    (project / "out.net").symlink_to(tree / "outside" / "layers.net")
    (project / "in.net").symlink_to(project / "lib" / "layers.net")
    main = project / "m.net"
    main.write_text(model("out.net"))
    assert (
        errors(main)[0][2] == 'cannot import "out.net": it is outside the folders imports may read'
    )
    main.write_text(model("in.net"))
    assert netc.compile(main).graph.outputs == (("y", "twice_0.add"),)


def test_a_symlinked_folder_leading_out_is_refused(tree: Path):
    (tree / "project" / "shared").symlink_to(tree / "outside")
    main = tree / "project" / "m.net"
    main.write_text(model("shared/layers.net"))
    assert "outside the folders" in errors(main)[0][2]


def test_include_folders_widen_what_imports_may_read_and_are_searched(tree, monkeypatch):
    main = tree / "project" / "m.net"
    main.write_text(model("layers.net"))  # not beside the model: found in the include folder
    monkeypatch.delenv("NETC_PATH", raising=False)
    m = netc.compile(main, include=[tree / "outside"])
    assert m.sources.texts[str(tree / "outside" / "layers.net")].startswith("# TOPSECRET")
    main.write_text(model("../outside/layers.net"))  # and a relative path may reach it
    assert netc.compile(main, include=[tree / "outside"]).graph.outputs == (("y", "twice_0.add"),)


def test_netc_path_adds_include_folders(tree, monkeypatch):
    main = tree / "project" / "m.net"
    main.write_text(model("layers.net"))
    monkeypatch.setenv("NETC_PATH", os.pathsep.join(["/nonexistent", str(tree / "outside")]))
    assert netc.compile(main).graph.outputs == (("y", "twice_0.add"),)
    r = CliRunner().invoke(cli, ["check", str(main)])
    assert r.exit_code == 0, r.output


def test_the_importing_folder_comes_before_the_include_folders(tree, monkeypatch):
    (tree / "project" / "layers.net").write_text(LAYERS.replace("x + x", "x * x"))
    main = tree / "project" / "m.net"
    main.write_text(model("layers.net"))
    m = netc.compile(main, include=[tree / "outside"])
    assert [n.op for n in m.graph.nodes] == ["input", "mul"]


def test_a_missing_import_names_the_include_folders_it_was_not_in(tree):
    main = tree / "project" / "m.net"
    main.write_text(model("nope.net"))
    with pytest.raises(netc.NetcError) as info:
        netc.compile(main, include=[tree / "outside"])
    (d,) = info.value.diagnostics
    assert d.message == f'cannot import "nope.net": no such file {tree / "project" / "nope.net"}'
    assert d.notes == (f"not in the include folder {tree / 'outside'}",)


def test_the_cli_takes_include_folders(tree):
    main = tree / "project" / "m.net"
    main.write_text(model("layers.net"))
    r = CliRunner().invoke(cli, ["check", str(main), "--include", str(tree / "outside")])
    assert (r.exit_code, r.output) == (0, "ok: model `m`: 1 layer, 0 params\n")
    r = CliRunner().invoke(cli, ["check", str(main)])
    assert r.exit_code == 1 and 'cannot import "layers.net": no such file' in r.output


def test_only_regular_net_files_are_imported(tree: Path):
    project = tree / "project"
    (project / "notes.txt").write_text(SECRET + "\n")
    main = project / "m.net"
    main.write_text(model("notes.txt"))
    with pytest.raises(netc.NetcError) as info:
        netc.compile(main)
    assert [d.message for d in info.value.diagnostics] == [
        'cannot import "notes.txt": only .net files can be imported'
    ]
    assert SECRET not in info.value.render()
    os.mkfifo(project / "pipe.net")
    main.write_text(model("pipe.net"))
    assert errors(main)[0][2] == 'cannot import "pipe.net": it is not a regular file'


def test_source_text_imports_relative_to_the_current_folder(tree, monkeypatch):
    monkeypatch.chdir(tree / "project")
    assert netc.compile(model("lib/layers.net")).graph.outputs == (("y", "twice_0.add"),)
    with pytest.raises(netc.NetcError) as info:
        netc.compile(model("../outside/layers.net"))
    assert "outside the folders" in info.value.diagnostics[0].message
    assert ImportPaths.for_text().roots[0] == os.path.realpath(tree / "project")


def test_the_language_server_confines_imports_the_same_way(tree: Path):
    main = tree / "project" / "m.net"
    text = model("../outside/layers.net")
    main.write_text(text)
    analysis = lsp.analyze(text, str(main))
    messages = [d.message for d in analysis.diagnostics]
    assert 'cannot import "../outside/layers.net": it is outside the folders imports may read' in (
        messages
    )
    assert SECRET not in str(analysis.sources)
    assert not any("outside" in p for p in analysis.sources)
    from lsprotocol import types

    where = lsp.definition(analysis, types.Position(line=0, character=10))
    assert where is None  # go-to-definition does not lead out either
    text = model("lib/layers.net")
    inside = lsp.definition(lsp.analyze(text, str(main)), types.Position(line=0, character=10))
    assert inside is not None and inside.uri.endswith("project/lib/layers.net")


def run_with_timeout(fn, seconds: float = 10.0):
    """fn() in a thread; fails the test instead of hanging when fn blocks."""
    result: dict = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as e:  # noqa: BLE001 (handed back to the test)
            result["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "netc blocked reading a source"
    if "error" in result:
        raise result["error"]
    return result.get("value")


@pytest.mark.skipif(not os.path.exists("/dev/urandom"), reason="needs /dev/urandom")
def test_a_device_is_not_read_as_a_source():
    r = run_with_timeout(lambda: CliRunner().invoke(cli, ["check", "/dev/urandom"]))
    assert r.exit_code == 1
    assert "/dev/urandom is a character device, not a .net file" in r.output


def test_a_pipe_is_not_read_as_a_source(tmp_path: Path):
    fifo = tmp_path / "model.net"
    os.mkfifo(fifo)  # nobody writes to it: reading would block forever
    r = run_with_timeout(lambda: CliRunner().invoke(cli, ["check", str(fifo)]))
    assert r.exit_code == 1
    assert f"{fifo} is a pipe, not a .net file" in r.output
