// Bundles src/extension.js with vscode-languageclient into dist/extension.js (one file, no
// node_modules in the .vsix). Run by `npm run build` and `npm run package`.
"use strict";

require("esbuild")
  .build({
    entryPoints: ["src/extension.js"],
    bundle: true,
    platform: "node",
    target: "node18",
    format: "cjs",
    external: ["vscode"],
    outfile: "dist/extension.js",
    minify: true,
    sourcemap: false,
    logLevel: "warning",
  })
  .catch(() => process.exit(1));
