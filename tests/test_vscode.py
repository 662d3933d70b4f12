"""The VS Code extension packaged as users get it: its `.vsix` is built from the npm registry
alone (esbuild) and packaged by vsce without a warning, with the bundled language client inside.
The same `.vsix` in real VS Code (code-server driven by Chromium) is tests/editor/vscode_check.py,
run on demand."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "grammar" / "editors" / "vscode"
EDITOR_TOOLS = ROOT / "tests" / "editor"
CODE_SERVER = EDITOR_TOOLS / "code-server"
CHROMIUM = Path("/usr/bin/chromium")


def npm_ci(folder: Path) -> None:
    """`npm ci` in `folder` unless its node_modules already holds what package-lock.json pins."""
    npm = shutil.which("npm")
    assert npm, "the editor tests need Node.js and npm"
    lock = hashlib.sha256((folder / "package-lock.json").read_bytes()).hexdigest()
    stamp = folder / "node_modules" / ".installed-from-lock"
    if stamp.is_file() and stamp.read_text() == lock:
        return
    r = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, f"npm ci in {folder} failed:\n{r.stdout}{r.stderr}"
    stamp.write_text(lock)


@pytest.fixture(scope="module")
def vsix(tmp_path_factory) -> Path:
    """The extension built (esbuild) and packaged (vsce) from the repository's sources."""
    npm_ci(PLUGIN)
    out = tmp_path_factory.mktemp("vsix") / "netc.vsix"
    build = subprocess.run(
        ["node", "build.js"], cwd=PLUGIN, capture_output=True, text=True, timeout=300
    )
    assert build.returncode == 0, build.stdout + build.stderr
    vsce = PLUGIN / "node_modules" / ".bin" / "vsce"
    r = subprocess.run(
        [str(vsce), "package", "--no-dependencies", "-o", str(out)],
        cwd=PLUGIN,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    r.check_output = r.stdout + r.stderr  # type: ignore[attr-defined]
    out.with_suffix(".log").write_text(r.stdout + r.stderr)
    return out


def test_vsce_packages_the_extension_without_a_warning(vsix):
    log = vsix.with_suffix(".log").read_text()
    assert "WARNING" not in log.upper().replace("WARNINGS", ""), log
    assert "DONE  Packaged" in log
    import zipfile

    names = set(zipfile.ZipFile(vsix).namelist())
    assert {
        "extension/dist/extension.js",
        "extension/package.json",
        "extension/syntaxes/netc.tmLanguage.json",
        "extension/snippets/netc.json",
        "extension/language-configuration.json",
        "extension/LICENSE.txt",
    } <= names
    assert not any(n.startswith(("extension/src/", "extension/node_modules/")) for n in names)
    bundle = zipfile.ZipFile(vsix).read("extension/dist/extension.js").decode()
    assert "vscode-languageclient" in bundle or "LanguageClient" in bundle
