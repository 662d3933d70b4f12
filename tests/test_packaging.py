"""Packaging: a normal (non-editable) install of the wheel works on its own."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_installs_and_compiles_an_example(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    wheel = next(dist.glob("netc-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "netc/grammar/netc.lark" in names
    assert {"netc/__init__.py", "netc/runtime/reference.py", "netc/ops/registry.py"} <= set(names)
    assert not any(n.startswith(("compiler/", "runtime/", "grammar/", "tests/")) for n in names)
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-compile",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    example = ROOT / "examples" / "mnist_mlp.net"
    code = (
        "import netc, sys; m = netc.compile(sys.argv[1]); "
        "print(netc.__file__); print(m.total_params)"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(example)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    ).stdout.split()
    assert out[0].startswith(str(site)), "the installed copy was not the one imported"
    assert int(out[1]) > 0
