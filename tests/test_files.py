"""Output files: written atomically, with the umask's permissions, and no temporary left once
the next write into the folder finishes, even after a kill -9 in the middle of a write."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from netc import files
from netc.cli import cli

MODEL = "model m(x: f32[N, 4]) -> (y: f32[N, 2]) {\n    y = x |> dense(2)\n}\n"


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".netc-" in p.name)


@pytest.fixture
def umask():
    """Set the process umask for a test, then put it back."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_written_file_has_the_mode_the_umask_gives(tmp_path: Path, umask, mask, mode):
    umask(mask)
    assert files.umask() == mask
    files.write_bytes_atomic(tmp_path / "out.bin", b"data")
    assert stat.S_IMODE((tmp_path / "out.bin").stat().st_mode) == mode

    def write(tmp: Path) -> None:
        (tmp / "inside.txt").write_text("x")

    files.atomic_write_dir(tmp_path / "out.dir", write)
    assert stat.S_IMODE((tmp_path / "out.dir").stat().st_mode) == mode | 0o111 & ~mask
    assert temporaries(tmp_path) == []


def test_a_failed_write_keeps_the_old_output_and_leaves_nothing(tmp_path: Path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def write(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise RuntimeError("the writer failed")

    with pytest.raises(RuntimeError):
        files.atomic_write(target, write)
    assert target.read_bytes() == b"old"
    assert temporaries(tmp_path) == []


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from netc import files

    def write(tmp):
        if sys.argv[2] == "dir":
            tmp = Path(tmp)
            (tmp / "part").write_bytes(b"half" * 1000)
        else:
            Path(tmp).write_bytes(b"half" * 1000)
        print("writing", flush=True)
        time.sleep(120)

    (files.atomic_write_dir if sys.argv[2] == "dir" else files.atomic_write)(sys.argv[1], write)
""")


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_a_kill_during_a_write_keeps_the_old_output_and_the_next_write_cleans_up(
    tmp_path: Path, kind: str
):
    target = tmp_path / "model.out"
    if kind == "dir":
        target.mkdir()
        (target / "old").write_bytes(b"old")
    else:
        target.write_bytes(b"old")
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target), kind], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "writing\n"
        (left,) = temporaries(tmp_path)
        assert left.startswith(".model.out.netc-") and left.endswith(".tmp")
        assert files.sweep(tmp_path) == []  # its writer is alive: not touched
        assert temporaries(tmp_path) == [left]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert temporaries(tmp_path) == [left]  # a kill -9 leaves it...
    old = (target / "old") if kind == "dir" else target
    assert old.read_bytes() == b"old"  # ...and the previous output whole

    def write(tmp: Path) -> None:
        if kind == "dir":
            (tmp / "new").write_bytes(b"new")
        else:
            tmp.write_bytes(b"new")

    (files.atomic_write_dir if kind == "dir" else files.atomic_write)(target, write)
    assert temporaries(tmp_path) == []  # ...until the next write into the folder
    assert ((target / "new") if kind == "dir" else target).read_bytes() == b"new"


def test_a_folder_set_aside_by_an_interrupted_swap_is_put_back(tmp_path: Path):
    # the two-rename fallback moved the previous output aside, then the process died
    aside = tmp_path / ".model.savedmodel.netc-0a1b2c3d.old"
    (aside / "previous").mkdir(parents=True)
    (aside / "previous" / "saved_model.pb").write_bytes(b"previous")
    assert files.sweep(tmp_path) == [aside]
    assert (tmp_path / "model.savedmodel" / "saved_model.pb").read_bytes() == b"previous"
    assert temporaries(tmp_path) == []


def test_only_netcs_own_temporaries_are_removed(tmp_path: Path):
    keep = [".model.onnx.abc123.tmp", ".x.netc-zzzzzzzz.tmp", "model.netc-0a1b2c3d.tmp"]
    for name in keep:
        (tmp_path / name).write_bytes(b"someone else's")
    (tmp_path / ".m.onnx.netc-0a1b2c3d.tmp").symlink_to(tmp_path / keep[0])
    assert files.sweep(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*keep, ".m.onnx.netc-0a1b2c3d.tmp"]
    )


def test_the_compiler_cleans_up_after_a_killed_run(tmp_path: Path, umask):
    (tmp_path / "m.net").write_text(MODEL)
    stale = tmp_path / ".m.onnx.netc-deadbeef.tmp"
    stale.write_bytes(b"left by a killed netc")
    r = CliRunner().invoke(cli, [str(tmp_path / "m.net")])
    assert r.exit_code == 0, r.output
    assert temporaries(tmp_path) == []
    assert stat.S_IMODE((tmp_path / "m.onnx").stat().st_mode) == 0o644
