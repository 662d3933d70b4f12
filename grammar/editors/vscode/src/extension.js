// The netc extension: starts `netc lsp --stdio` for .net files with vscode-languageclient, and
// offers "netc: Restart Language Server" and "netc: Show Language Server Output". Settings:
// netc.server.path / netc.server.args / netc.server.env (the command), netc.trace.server.
"use strict";

const childProcess = require("child_process");
const path = require("path");
const vscode = require("vscode");
const { LanguageClient, RevealOutputChannelOn, TransportKind } = require("vscode-languageclient/node");

const INSTALL = "pip install 'netc[lsp]'";
let client = null;
let output = null;
let trace = null;

function settings() {
  const config = vscode.workspace.getConfiguration("netc");
  let command = config.get("server.path") || "netc";
  // a relative path is relative to the (first) workspace folder, as a venv's .venv/bin/netc
  const folder = vscode.workspace.workspaceFolders && vscode.workspace.workspaceFolders[0];
  if (folder && command.includes("/") && !path.isAbsolute(command)) {
    command = path.join(folder.uri.fsPath, command);
  }
  return {
    command,
    args: config.get("server.args") || ["lsp"],
    env: Object.assign({}, process.env, config.get("server.env") || {}),
  };
}

// Whether `command --version` runs: a missing netc is told plainly, not as a client error.
function probe({ command, env }) {
  return new Promise((resolve) => {
    childProcess.execFile(command, ["--version"], { env, timeout: 20000 }, (error, stdout, stderr) => {
      if (!error) resolve({ ok: true, version: stdout.trim() });
      else if (error.code === "ENOENT") resolve({ ok: false, why: "missing" });
      else resolve({ ok: false, why: String(stderr || error.message).trim() });
    });
  });
}

async function explainMissing(command, why) {
  const message =
    why === "missing"
      ? `netc was not found (\`${command}\`): install it with \`${INSTALL}\`, or set "netc.server.path" to the netc of your environment.`
      : `netc (\`${command}\`) does not run: ${why}`;
  const choice = await vscode.window.showErrorMessage(message, "Open Settings", "Show Output");
  if (choice === "Open Settings") {
    vscode.commands.executeCommand("workbench.action.openSettings", "netc.server");
  } else if (choice === "Show Output") {
    output.show(true);
  }
}

async function start() {
  const server = settings();
  const found = await probe(server);
  if (!found.ok) {
    output.appendLine(`netc: cannot start the language server: ${found.why} (${server.command})`);
    await explainMissing(server.command, found.why);
    return;
  }
  output.appendLine(`netc: starting ${server.command} ${server.args.join(" ")} --stdio (${found.version})`);
  const executable = {
    command: server.command,
    args: server.args,
    transport: TransportKind.stdio,
    options: { env: server.env },
  };
  client = new LanguageClient(
    "netc",
    "netc Language Server",
    { run: executable, debug: executable },
    {
      documentSelector: [
        { scheme: "file", language: "netc" },
        { scheme: "untitled", language: "netc" },
      ],
      outputChannel: output,
      traceOutputChannel: trace,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      initializationFailedHandler: (error) => {
        output.appendLine(`netc: the language server failed to start: ${error}`);
        vscode.window.showErrorMessage(
          `The netc language server failed to start (${error.message || error}). Does your netc have pygls? ${INSTALL}`,
        );
        return false;
      },
    },
  );
  try {
    await client.start();
  } catch (error) {
    output.appendLine(`netc: the language server failed to start: ${error}`);
    client = null;
  }
}

async function stop() {
  if (client) {
    const old = client;
    client = null;
    try {
      await old.stop(5000);
    } catch (error) {
      output.appendLine(`netc: stopping the server: ${error}`);
    }
  }
}

async function restart() {
  await stop();
  await start();
  if (client) vscode.window.setStatusBarMessage("netc: language server restarted", 3000);
}

async function activate(context) {
  output = vscode.window.createOutputChannel("netc");
  trace = vscode.window.createOutputChannel("netc Language Server Trace");
  context.subscriptions.push(
    output,
    trace,
    vscode.commands.registerCommand("netc.restartServer", restart),
    vscode.commands.registerCommand("netc.showOutput", () => output.show(true)),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration("netc.server")) restart();
    }),
  );
  await start();
}

function deactivate() {
  return stop();
}

module.exports = { activate, deactivate };
