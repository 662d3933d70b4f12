"""The suite cannot go green by skipping: a missing dependency fails it.

skip_guard (loaded by conftest.py) fails a run with any skip whose reason does not name a GPU;
these tests run pytest on planted skips to show that it does, and check that no test file
skips itself when a dependency of the project or of its `test` extra is missing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

PLANTED = {
    "test_planted.py": """
        import pytest

        def test_runs():
            assert True

        def test_skips_for_a_missing_file():
            pytest.skip("compiler/cli.py does not exist yet")

        @pytest.mark.skipif(True, reason="no CUDA GPU for ONNX Runtime")
        def test_needs_a_gpu():
            pass
    """,
    "test_planted_module.py": """
        import pytest

        pytest.importorskip("a_package_that_is_not_installed")

        def test_never_collected():
            pass
    """,
}


def run_pytest(tmp_path: Path, files: dict[str, str]) -> subprocess.CompletedProcess:
    """pytest with skip_guard on `files` written to tmp_path (outside this project's config)."""
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "skip_guard", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )


def test_a_skip_for_any_reason_but_a_gpu_fails_the_run(tmp_path):
    r = run_pytest(tmp_path, PLANTED)
    assert r.returncode == 1, r.stdout + r.stderr
    summary = r.stdout.split("skips that are not GPU skips (they fail the run)")[1]
    assert "test_planted.py::test_skips_for_a_missing_file: compiler/cli.py does not exist yet" in (
        summary
    )
    assert "test_planted_module.py: could not import 'a_package_that_is_not_installed'" in summary
    assert "test_needs_a_gpu" not in summary
    assert re.search(r"1 passed, 3 skipped", r.stdout), r.stdout


def test_a_gpu_skip_alone_passes(tmp_path):
    files = {"test_planted.py": PLANTED["test_planted.py"].replace("pytest.skip(", "print(")}
    r = run_pytest(tmp_path, files)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 passed, 1 skipped" in r.stdout and "not GPU skips" not in r.stdout


def _requirement_names() -> set[str]:
    """The import names of the project's dependencies and of its `test` extra."""
    text = (ROOT / "pyproject.toml").read_text()
    names = set(re.findall(r'^\s*"([A-Za-z0-9_.-]+)[^"]*",', text, re.M))
    imports = {name.lower().replace("-", "_") for name in names}
    imports |= {"onnxruntime", "keras", "lsprotocol", "tensorflow", "pygls"}  # -gpu, via extras
    return imports


def test_no_test_file_skips_itself_when_a_dependency_is_missing():
    deps = _requirement_names()
    assert {"onnx", "onnxruntime", "pygls", "tensorflow", "numpy", "hypothesis"} <= deps
    found = [
        f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: {m[0]}"
        for path in sorted(TESTS.rglob("*.py"))
        for text in [path.read_text()]
        for m in re.finditer(r"importorskip\(\s*['\"]([\w.]+)['\"]", text)
        if m[1].split(".")[0] in deps
    ]
    assert not found, "import these instead (they are installed with the test extra):\n" + (
        "\n".join(found)
    )
