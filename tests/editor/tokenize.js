// Tokenizes .net text with the VS Code plugin's TextMate grammar in VS Code's own engine:
// vscode-textmate running the grammar's regexes in Oniguruma (vscode-oniguruma's WebAssembly
// build), as the editor does. tests/test_editor_plugin.py drives it.
//
//   node tokenize.js FILE.net...   print {"FILE.net": {"lines": [...], "open": n}} as JSON
//   node tokenize.js --serve       answer one JSON request per stdin line, one JSON line each:
//     {"text": "..."}                      -> {"lines": [[[start, end, [scope...]], ...], ...],
//                                              "open": regions left open at the end}
//     {"oniguruma": "regex"}               -> {"error": null} or {"error": "why it does not compile"}
//     {"javascript": "regex", "text": "."} -> {"error": null, "match": bool} (VS Code's
//                                              language-configuration regexes are JavaScript's)
// A token's scopes leave out the grammar's root scope (source.netc), which every token has.

"use strict";

const fs = require("fs");
const path = require("path");
const readline = require("readline");
const oniguruma = require("vscode-oniguruma");
const textmate = require("vscode-textmate");

const GRAMMAR = path.join(
  __dirname, "..", "..", "grammar", "editors", "vscode", "syntaxes", "netc.tmLanguage.json"
);

async function engine() {
  const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm"));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.length));
  const onigLib = {
    createOnigScanner: (sources) => new oniguruma.OnigScanner(sources),
    createOnigString: (text) => new oniguruma.OnigString(text),
  };
  const registry = new textmate.Registry({
    onigLib: Promise.resolve(onigLib),
    loadGrammar: async () =>
      textmate.parseRawGrammar(fs.readFileSync(GRAMMAR, "utf8"), GRAMMAR),
  });
  const root = JSON.parse(fs.readFileSync(GRAMMAR, "utf8")).scopeName;
  const grammar = await registry.loadGrammar(root);
  if (!grammar) throw new Error(`cannot load ${GRAMMAR}`);
  return { grammar, root };
}

function tokenize({ grammar, root }, text) {
  let stack = textmate.INITIAL;
  const lines = text.split("\n").map((line) => {
    const result = grammar.tokenizeLine(line, stack, 10000);
    if (result.stoppedEarly) throw new Error(`tokenizing stopped early on: ${line}`);
    stack = result.ruleStack;
    return result.tokens.map((t) => [
      t.startIndex,
      Math.min(t.endIndex, line.length),
      t.scopes.filter((s, i) => !(i === 0 && s === root)),
    ]);
  });
  return { lines, open: stack.depth - 1 };
}

function answer(eng, request) {
  if ("oniguruma" in request) {
    try {
      new oniguruma.OnigScanner([request.oniguruma]).dispose();
      return { error: null };
    } catch (e) {
      return { error: String(e.message || e) };
    }
  }
  if ("javascript" in request) {
    try {
      return { error: null, match: new RegExp(request.javascript).test(request.text) };
    } catch (e) {
      return { error: String(e.message || e), match: false };
    }
  }
  if ("text" in request) return tokenize(eng, request.text);
  return { error: `unknown request: ${JSON.stringify(request)}` };
}

async function main() {
  const eng = await engine();
  const args = process.argv.slice(2);
  if (args[0] !== "--serve") {
    const out = {};
    for (const file of args) out[file] = tokenize(eng, fs.readFileSync(file, "utf8"));
    process.stdout.write(JSON.stringify(out) + "\n");
    return;
  }
  const input = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of input) {
    if (line.trim()) process.stdout.write(JSON.stringify(answer(eng, JSON.parse(line))) + "\n");
  }
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
