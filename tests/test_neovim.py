"""The Neovim setups of docs/editors.md, run as written in a headless Neovim: `.net` files get
the filetype `netc` from grammar/editors/vim, and Neovim's own LSP client, started by the
snippet, shows netc's diagnostic for a typo and a hover with a value's shape.

Debian's Neovim is 0.7.2 (.ci/run installs it): the 0.7+ snippet runs there. The 0.11+ one
(`vim.lsp.config` is new in 0.11) is not run: no Neovim 0.11 installs here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "editors.md"
VIM = ROOT / "grammar" / "editors" / "vim"
NVIM = shutil.which("nvim")


MISSING = "install Debian's neovim: bash tests/editor/debian-packages.sh"


def snippet(heading: str) -> str:
    """The lua block under `heading` in docs/editors.md."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```lua\n", 1)[1].split("```", 1)[0]


# After the snippet: open the example with a typo, wait for the diagnostics, ask for a hover
# over `maxpool`, and write what Neovim has as JSON.
PROBE = """
local out = { filetype = "", diagnostics = {}, hover = "" }
vim.cmd("edit " .. vim.fn.fnameescape(os.getenv("NETC_FILE")))
out.filetype = vim.bo.filetype
vim.wait(60000, function() return #vim.diagnostic.get(0) > 0 end, 50)
for _, d in ipairs(vim.diagnostic.get(0)) do
  table.insert(out.diagnostics, { lnum = d.lnum, col = d.col, message = d.message })
end
local params = {
  textDocument = { uri = vim.uri_from_bufnr(0) },
  position = {
    line = tonumber(os.getenv("NETC_LINE")),
    character = tonumber(os.getenv("NETC_COL")),
  },
}
local replies = vim.lsp.buf_request_sync(0, "textDocument/hover", params, 30000) or {}
for _, reply in pairs(replies) do
  if reply.result and reply.result.contents then
    out.hover = out.hover .. vim.fn.json_encode(reply.result.contents)
  end
end
vim.fn.writefile({ vim.fn.json_encode(out) }, os.getenv("NETC_OUT"))
vim.cmd("qa!")
"""


def run_neovim(setup: str, tmp_path: Path) -> dict:
    text = (ROOT / "examples" / "resnet50.net").read_text(encoding="utf-8")
    assert text.count("|> softmax") == 1
    net = tmp_path / "resnet50.net"
    net.write_text(text.replace("|> softmax", "|> sofmax"), encoding="utf-8")
    lines = text.splitlines()
    line = next(i for i, s in enumerate(lines) if "|> maxpool(3, stride=2)" in s)
    init = tmp_path / "init.lua"
    init.write_text(setup.replace("/path/to/netc/grammar/editors/vim", str(VIM)), encoding="utf-8")
    probe = tmp_path / "probe.lua"
    probe.write_text(PROBE, encoding="utf-8")
    out = tmp_path / "seen.json"
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        NETC_FILE=str(net),
        NETC_OUT=str(out),
        NETC_LINE=str(line),
        NETC_COL=str(lines[line].index("maxpool") + 2),
        XDG_CONFIG_HOME=str(tmp_path / "config"),  # no user configuration
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_STATE_HOME=str(tmp_path / "state"),
    )
    assert NVIM is not None, MISSING
    r = subprocess.run(
        [NVIM, "--headless", "-n", "-i", "NONE", "-u", str(init), "-c", f"luafile {probe}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.is_file(), f"Neovim wrote nothing (exit {r.returncode}):\n{r.stdout}\n{r.stderr}"
    return json.loads(out.read_text(encoding="utf-8"))


def check(seen: dict) -> None:
    assert seen["filetype"] == "netc"
    typo = [d for d in seen["diagnostics"] if "sofmax" in d["message"]]
    assert typo, seen["diagnostics"]
    assert typo[0]["message"].startswith("unknown op or block `sofmax`")
    text = (ROOT / "examples" / "resnet50.net").read_text(encoding="utf-8").splitlines()
    row = next(i for i, s in enumerate(text) if "|> softmax" in s)
    assert (typo[0]["lnum"], typo[0]["col"]) == (row, text[row].index("softmax"))
    assert "f32[N, 56, 56, 64]" in seen["hover"], seen["hover"]
    assert "maxpool" in seen["hover"]


def test_the_neovim_07_setup_shows_diagnostics_and_hover(tmp_path):
    check(run_neovim(snippet("## Neovim 0.7+"), tmp_path))


def test_vim_files_make_net_files_netc_and_not_conf(tmp_path):
    assert NVIM is not None, MISSING
    # without the files Neovim takes a `.net` file starting with `#` for `conf`
    net = tmp_path / "m.net"
    net.write_text("# a comment\nmodel m(x: f32[N, 4]) -> (y: tensor) {\n    y = x\n}\n")
    for rtp, want in (("", "conf"), (f"set runtimepath+={VIM}", "netc")):
        out = tmp_path / "ft.txt"
        init = tmp_path / "init.vim"
        init.write_text(rtp + "\n")
        subprocess.run(
            [
                NVIM or "nvim",
                "--headless",
                "-n",
                "-i",
                "NONE",
                "-u",
                str(init),
                str(net),
                "-c",
                f"call writefile([&filetype], '{out}')",
                "-c",
                "qa!",
            ],
            env=dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config")),
            capture_output=True,
            timeout=60,
        )
        assert out.read_text().strip() == want
