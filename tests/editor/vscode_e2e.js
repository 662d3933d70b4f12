// Drives real VS Code (code-server, already serving URL with the netc extension installed) in
// Debian's Chromium with playwright-core, as a user would: open FILE (which has an error), then
// look at the colours, the squiggle and the Problems count, hover a value, complete after `|>`
// and press F12 on a block call. Prints one JSON object of what it saw; tests/test_vscode.py
// judges it. Screenshots of the hover, the diagnostics and the completion go to SHOTS.
//
//   node vscode_e2e.js URL FILE_NAME SHOTS SPEC_JSON
// SPEC_JSON: {"hover": [line, col], "pipe_line": n, "f12": [line, col], "op": "conv2d",
//             "block": "conv_bn"}; lines and columns 1-based, as VS Code's status bar counts.
"use strict";

const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

const [url, fileName, shots, specJson] = process.argv.slice(2);
const spec = JSON.parse(specJson);
const seen = { steps: [] };
let page = null;
const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function step(name) {
  seen.steps.push(name);
  process.stderr.write(`vscode_e2e: ${name}\n`);
}

async function goTo(page, line, col) {
  await page.keyboard.press("Control+G");
  await page.keyboard.type(`${line}:${col}`);
  await page.keyboard.press("Enter");
  await page.waitForTimeout(300);
}

async function cursor(page) {
  const text = await page.locator("[id='status.editor.selection']").innerText();
  const m = /Ln (\d+), Col (\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

// the computed colour of the first token on screen whose text is `word`
async function colourOf(page, word) {
  return page.evaluate((w) => {
    for (const span of document.querySelectorAll(".monaco-editor .view-lines .view-line span span")) {
      if (span.textContent === w) return getComputedStyle(span).color;
    }
    return null;
  }, word);
}

async function main() {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: FLAGS });
  try {
    page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
    page.setDefaultTimeout(60000);
    step("load the workbench");
    await page.goto(url);
    await page.waitForSelector(".monaco-workbench .part.editor", { timeout: 120000 });
    await page.waitForTimeout(2000);
    step("open the file");
    await page.locator(".explorer-folders-view .monaco-list-row", { hasText: fileName }).first().click();
    await page.waitForSelector(".monaco-editor .view-lines .view-line", { timeout: 15000 });
    step("wait for the diagnostics");
    await page.waitForFunction(() => {
      const s = document.querySelector("[id='status.problems']");
      return s && /[1-9]/.test(s.textContent);
    }, null, { timeout: 120000 });
    await page.waitForTimeout(1500); // semantic tokens and inlay hints arrive after diagnostics
    seen.problems = (await page.locator("[id='status.problems']").getAttribute("aria-label")) || "";
    seen.colours = {
      op: await colourOf(page, spec.op),
      block: await colourOf(page, spec.block),
      keyword: await colourOf(page, "block"),
      comment_start: await colourOf(page, "#"),
    };
    step("hover");
    await goTo(page, spec.hover[0], spec.hover[1]);
    await page.keyboard.press("Control+K");
    await page.keyboard.press("Control+I");
    const hover = page.locator(".monaco-hover-content").first();
    await hover.waitFor({ state: "visible" });
    await page.waitForFunction(() => {
      const h = document.querySelector(".monaco-hover-content");
      return h && /f32\[/.test(h.textContent);
    });
    seen.hover = await hover.innerText();
    await page.waitForTimeout(1000); // the hover fades in
    await page.screenshot({ path: path.join(shots, "hover.png") });
    await page.keyboard.press("Escape");
    step("diagnostics");
    await goTo(page, spec.error[0], spec.error[1]);
    await page.waitForSelector(".monaco-editor .squiggly-error");
    seen.squiggles = await page.locator(".monaco-editor .squiggly-error").count();
    await page.keyboard.press("Control+K");
    await page.keyboard.press("Control+I");
    await page.waitForFunction(() => {
      const h = document.querySelector(".monaco-hover-content");
      return h && /unknown op or block/.test(h.textContent);
    });
    seen.error_hover = await page.locator(".monaco-hover-content").first().innerText();
    await page.keyboard.press("Control+Shift+M"); // the Problems panel
    await page.waitForSelector(".markers-panel .monaco-list-row");
    seen.problem_rows = await page.locator(".markers-panel .monaco-list-row").allInnerTexts();
    await page.screenshot({ path: path.join(shots, "diagnostics.png") });
    await page.keyboard.press("Escape");
    await page.keyboard.press("Control+J"); // close the panel
    step("complete after |>");
    await goTo(page, spec.pipe_line, 1);
    await page.keyboard.press("End");
    await page.keyboard.type(" |> ");
    const suggest = page.locator(".editor-widget.suggest-widget.visible");
    try {
      await suggest.waitFor({ state: "visible", timeout: 8000 });
    } catch (e) {
      await page.keyboard.press("Control+Space"); // the trigger character did not open it
      await suggest.waitFor({ state: "visible" });
    }
    await page.waitForFunction(() => document.querySelectorAll(".suggest-widget .monaco-list-row").length > 3);
    await page.keyboard.type("co");
    await page.waitForTimeout(1200);
    seen.completion = await page.locator(".suggest-widget .monaco-list-row").allInnerTexts();
    await page.screenshot({ path: path.join(shots, "completion.png") });
    await page.keyboard.press("Escape");
    await page.keyboard.press("Control+Z");
    await page.keyboard.press("Control+Z");
    step("F12 on a block call");
    await goTo(page, spec.f12[0], spec.f12[1]);
    await page.keyboard.press("F12");
    await page.waitForFunction(
      (line) => {
        const s = document.querySelector("[id='status.editor.selection']");
        return s && !s.textContent.includes(`Ln ${line},`);
      },
      spec.f12[0],
    );
    seen.after_f12 = await cursor(page);
    step("done");
  } catch (e) {
    if (page) await page.screenshot({ path: path.join(shots, "failure.png") }).catch(() => {});
    throw e;
  } finally {
    await browser.close();
  }
}

main()
  .then(() => process.stdout.write(JSON.stringify(seen) + "\n"))
  .catch((e) => {
    seen.error = String(e.stack || e);
    process.stdout.write(JSON.stringify(seen) + "\n");
    process.exit(1);
  });
