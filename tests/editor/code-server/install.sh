#!/usr/bin/env bash
# Installs code-server (VS Code in the browser) into DEST from the npm registry and Debian
# alone: `bash install.sh DEST`. code-server's own postinstall would fetch ripgrep and prebuilt
# native modules from GitHub, which CI cannot reach; instead the packages are installed without
# their scripts, Debian's ripgrep is put where VS Code looks for it, and the native modules are
# built from source against Debian's Node.js headers (needs: build-essential, pkg-config,
# libkrb5-dev, ripgrep). DEST/.complete marks a finished install; the test reuses it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:?usage: install.sh DEST}"
export npm_config_nodedir=/usr npm_config_yes=true npm_config_build_from_source=true
export npm_config_audit=false npm_config_fund=false npm_config_loglevel=error
rm -rf "$dest"
mkdir -p "$dest"
cp "$here/package.json" "$here/package-lock.json" "$dest/"
cd "$dest"
npm ci --ignore-scripts
npm rebuild argon2  # code-server's own native module
cd node_modules/code-server/lib/vscode  # VS Code, pinned by its npm-shrinkwrap.json
npm install --omit=dev --ignore-scripts
mkdir -p node_modules/@vscode/ripgrep/bin
cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg  # its postinstall then does nothing
npm rebuild --omit=dev
ln -sfn node_modules node_modules.asar
cd extensions  # the built-in extensions' dependencies
npm install --omit=dev --ignore-scripts
touch "$dest/.complete"
