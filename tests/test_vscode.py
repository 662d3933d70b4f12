"""The VS Code extension packaged as users get it: its `.vsix` is built from the npm registry
alone (esbuild) and packaged by vsce without a warning, with the bundled language client inside.

Then the same `.vsix` in real VS Code: code-server (VS Code in the browser, installed from npm
into a cache folder, two to three minutes the first time) installs it, and Debian's Chromium,
driven by playwright-core (tests/editor/vscode_e2e.js), opens an example with an error and sees
the colours, the squiggle and the Problems count, a hover with a shape, completion after `|>`
and F12 landing on the block. The Debian packages this needs: `bash
tests/editor/debian-packages.sh` (.ci/run runs it). NETC_SCREENSHOTS=1 also writes the
screenshots to docs/editors/ (the pictures of docs/editors.md)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
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


# --- in real VS Code ----------------------------------------------------------------------------


def code_server() -> Path:
    """code-server's entry point, installed once per version into the cache folder."""
    lock = hashlib.sha256((CODE_SERVER / "package-lock.json").read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("NETC_EDITOR_CACHE", Path.home() / ".cache" / "netc"))
    dest = cache / f"code-server-{lock}"
    if not (dest / ".complete").is_file():
        r = subprocess.run(
            ["bash", str(CODE_SERVER / "install.sh"), str(dest)],
            capture_output=True,
            text=True,
            timeout=1500,
        )
        assert r.returncode == 0, (
            f"installing code-server failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}"
        )
    return dest / "node_modules" / "code-server" / "out" / "node" / "entry.js"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# resnet50.net with a typo in its last line, and where to look
TYPO = ("|> softmax", "|> sofmax")


def spec_for(text: str) -> dict:
    lines = text.split("\n")

    def where(needle: str, line_has: str | None = None) -> list[int]:
        n = next(i for i, s in enumerate(lines) if (line_has or needle) in s)
        return [n + 1, lines[n].index(needle) + 1]

    return {
        "hover": where("maxpool", "|> maxpool(3, stride=2)"),
        "error": where("sofmax"),
        "pipe_line": where("|> batchnorm(epsilon=EPSILON) |> relu")[0],
        "f12": where("bottleneck", "x = x |> bottleneck(filters, stride=stride"),
        "op": "conv2d",
        "block": "conv_bn",
        "block_line": where("block bottleneck")[0],
    }


def test_real_vscode_shows_colours_squiggle_hover_completion_and_f12(vsix, tmp_path):
    assert CHROMIUM.is_file(), "install Debian's chromium: bash tests/editor/debian-packages.sh"
    npm_ci(EDITOR_TOOLS)
    entry = code_server()
    data, extensions, workspace, shots = (tmp_path / d for d in ("data", "ext", "ws", "shots"))
    for d in (data / "User", extensions, workspace, shots):
        d.mkdir(parents=True)
    netc_bin = Path(sys.executable).parent / "netc"
    (data / "User" / "settings.json").write_text(
        json.dumps(
            {
                "netc.server.path": str(netc_bin),
                "workbench.startupEditor": "none",
                "security.workspace.trust.enabled": False,
                "telemetry.telemetryLevel": "off",
                "update.mode": "none",
                "extensions.autoCheckUpdates": False,
                "extensions.autoUpdate": False,
                "workbench.tips.enabled": False,
                "workbench.colorTheme": "Default Dark Modern",
                "window.commandCenter": False,
                "editor.minimap.enabled": False,
                "chat.commandCenter.enabled": False,
                "workbench.secondarySideBar.defaultVisibility": "hidden",
            }
        )
    )
    text = (ROOT / "examples" / "resnet50.net").read_text().replace(*TYPO)
    (workspace / "resnet50_typo.net").write_text(text)
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path),
    }
    common = ["--user-data-dir", str(data), "--extensions-dir", str(extensions)]
    r = subprocess.run(
        ["node", str(entry), *common, "--install-extension", str(vsix)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert "successfully installed" in r.stdout, r.stdout + r.stderr
    port = free_port()
    server = subprocess.Popen(
        [
            "node",
            str(entry),
            *common,
            "--auth",
            "none",
            "--bind-addr",
            f"127.0.0.1:{port}",
            "--disable-telemetry",
            "--disable-update-check",
            "--disable-workspace-trust",
            "--disable-getting-started-override",
            str(workspace),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # its helpers (file watcher, extension host) go with it
    )
    try:
        deadline = time.monotonic() + 120
        assert server.stdout is not None
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            if "HTTP server listening" in line or not line:
                break
        spec = spec_for(text)
        url = f"http://127.0.0.1:{port}/?folder={workspace}"
        driver = subprocess.run(
            [
                "node",
                str(EDITOR_TOOLS / "vscode_e2e.js"),
                url,
                "resnet50_typo.net",
                str(shots),
                json.dumps(spec),
            ],
            capture_output=True,
            text=True,
            timeout=420,
            cwd=EDITOR_TOOLS,
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        time.sleep(1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)  # a helper that outlived the server
    seen = json.loads(driver.stdout.strip().split("\n")[-1]) if driver.stdout.strip() else {}
    assert driver.returncode == 0 and "error" not in seen, (seen, driver.stderr[-4000:])
    # the squiggle and the Problems count: one error, at the typo
    assert seen["squiggles"] >= 1
    assert seen["problems"].startswith("Errors: 1"), seen["problems"]
    assert "unknown op or block `sofmax`" in seen["error_hover"]
    assert "did you mean `softmax`?" in seen["error_hover"]
    assert any("unknown op or block `sofmax`" in row for row in seen["problem_rows"])
    # colours: an op, a block and a keyword each their own
    colours = seen["colours"]
    assert None not in (colours["op"], colours["block"], colours["keyword"]), colours
    assert len({colours["op"], colours["block"], colours["keyword"]}) == 3, colours
    # a hover with the shape of the pooled value and its op's signature
    assert "maxpool(3, stride=2)" in seen["hover"] and "f32[N, 56, 56, 64]" in seen["hover"]
    assert 'maxpool(x, size=2, stride=none, padding="valid")' in seen["hover"]
    # completion after `|>`: ops and the file's blocks
    shown = "\n".join(seen["completion"])
    assert "conv2d" in shown and "conv_bn" in shown, shown
    # F12 on the call of `bottleneck` lands on its definition
    assert seen["after_f12"][0] == spec["block_line"], seen
    if os.environ.get("NETC_SCREENSHOTS") == "1":
        target = ROOT / "docs" / "editors"
        target.mkdir(exist_ok=True)
        for name in ("hover.png", "diagnostics.png", "completion.png"):
            shutil.copyfile(shots / name, target / name)
