#!/usr/bin/env bash
# The Debian packages the editor tests drive, installed when one is missing: Neovim
# (tests/test_neovim.py), and Chromium with what code-server's native modules build from
# (tests/test_vscode_real.py: build-essential, pkg-config, libkrb5-dev, ripgrep). Run as root, or
# with sudo. Node.js and npm come with the machine (the VS Code extension is built with them).
set -euo pipefail
packages=(neovim chromium build-essential pkg-config libkrb5-dev ripgrep)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
