// End-to-end check of the speclsp extension in a real VS Code (code-server 4.100.3, VS Code 1.100.3),
// driven headless through Debian's chromium with playwright-core.
//
// It opens a Python file, types inside a function body, triggers an inline suggestion, waits for
// the ghost text, accepts it with Tab, saves, and checks that the file on disk now holds it and
// that the status bar item reports the server ready. Screenshots and a log go to docs/editor-runs/.
// Needs `bash e2e/vscode/setup.sh` first. Exits non-zero with a message on any failure; code-server
// and everything it started (the extension host, our server) are killed by PID at the end.

import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const CODE_SERVER = join(ROOT, ".tools/code-server/node_modules/.bin/code-server");
const PYTHON = join(ROOT, ".venv/bin/python");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const OUT_DIR = join(ROOT, "docs/editor-runs");
const EXTENSION_ID = "speclsp.speclsp-0.1.0"; // publisher.name-version, as code-server expects
const DEMO_TARGET = join(ROOT, "lsp_server/models/demo/target/config.json");

const SERVER_READY_MS = 180_000; // model load on a busy CPU
const GHOST_TEXT_MS = 60_000;

// The file the check edits. The cursor goes to the end of LINE (1-based, inside `mean`'s body),
// then Enter and TYPED are typed, so the suggestion continues the function.
const SAMPLE = `"""Small numeric helpers."""


def mean(values):
    """Return the arithmetic mean of a non-empty list of numbers."""
    total = 0
    return total / len(values)


def clamp(value, low, high):
    """Limit value to the range [low, high]."""
    return max(low, min(value, high))
`;
const LINE = 6;
const TYPED = "for ";

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
const log = (msg) => console.log(`[${elapsed()}] ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class CheckFailed extends Error {}
const fail = (msg) => {
  throw new CheckFailed(msg);
};

// ---------------------------------------------------------------- processes

/** Every descendant of `pid`, children before grandchildren, read from /proc. */
function descendants(pid) {
  const children = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after the last ')'.
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(name));
    } catch {
      // the process ended while we looked
    }
  }
  const out = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** SIGTERM `pid` and its whole tree (collected first, so no orphan escapes), then SIGKILL what is left. */
async function killTree(pid) {
  const pids = [pid, ...descendants(pid)];
  for (const p of pids.reverse()) {
    try {
      process.kill(p, "SIGTERM");
    } catch {
      // already gone
    }
  }
  for (let i = 0; i < 50 && pids.some(alive); i++) await sleep(100);
  for (const p of pids.filter(alive)) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // already gone
    }
  }
  return pids.length;
}

function freePort() {
  return new Promise((ok, err) => {
    const srv = createServer();
    srv.once("error", err);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

async function waitForHttp(url, ms, proc) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) fail(`code-server exited with code ${proc.exitCode} before it answered`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  fail(`code-server did not answer ${url} within ${ms / 1000} s`);
}

// ---------------------------------------------------------------- setup of the run

function checkPrerequisites() {
  const missing = [
    [CODE_SERVER, "code-server"],
    [CHROMIUM, "chromium"],
    [PYTHON, "the Python venv (.venv)"],
    [join(ROOT, "vscode-client/out/extension.js"), "the extension bundle"],
  ].filter(([path]) => !existsSync(path));
  if (missing.length > 0) {
    fail(`missing ${missing.map(([, what]) => what).join(", ")}: run 'bash e2e/vscode/setup.sh' first`);
  }
}

/** The embedded demo pair when it is there (the server's default); else a tiny random pair. */
function modelSettings(tmp) {
  if (existsSync(DEMO_TARGET)) {
    return { description: "embedded demo pair (server default)", settings: {} };
  }
  const dir = join(tmp, "models");
  const code = [
    "import sys",
    "from pathlib import Path",
    "from tests.fixtures import build_pair",
    "target, draft = build_pair(Path(sys.argv[1]))",
    "print(target); print(draft)",
  ].join("\n");
  const r = spawnSync(PYTHON, ["-c", code, dir], { cwd: ROOT, encoding: "utf8" });
  if (r.status !== 0) fail(`building the tiny model pair failed:\n${r.stderr}`);
  const [target, draft] = r.stdout.trim().split("\n").slice(-2);
  return {
    description: "tiny random pair from tests/fixtures.py (noise text: proves the plumbing)",
    settings: { "speclsp.target": target, "speclsp.draft": draft, "speclsp.device": "cpu" },
  };
}

function writeUserSettings(userDataDir, models) {
  const settings = {
    // clean screenshots, nothing else popping up
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": false,
    "workbench.enableExperiments": false,
    "workbench.welcomePage.walkthroughs.openOnInstall": false,
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "extensions.ignoreRecommendations": true,
    "extensions.autoCheckUpdates": false,
    "security.workspace.trust.enabled": false,
    "chat.commandCenter.enabled": false,
    "git.enabled": false,
    "editor.minimap.enabled": false,
    "editor.hover.enabled": false,
    "editor.parameterHints.enabled": false,
    "editor.quickSuggestions": { other: false, comments: false, strings: false },
    "editor.suggestOnTriggerCharacters": false,
    "editor.inlineSuggest.enabled": true,
    // our extension: the repo's venv, fast settings for a CPU
    "speclsp.server.command": [PYTHON, "-m", "lsp_server", "serve"],
    "speclsp.maxTokens": 24,
    ...models.settings,
  };
  mkdirSync(join(userDataDir, "User"), { recursive: true });
  writeFileSync(join(userDataDir, "User/settings.json"), JSON.stringify(settings, null, 2));
}

/** An unpacked extension folder: code-server loads EXTS/publisher.name-version without a .vsix. */
function installExtension(extensionsDir) {
  const dest = join(extensionsDir, EXTENSION_ID);
  mkdirSync(dest, { recursive: true });
  for (const f of ["package.json", "README.md"]) cpSync(join(ROOT, "vscode-client", f), join(dest, f));
  // The bundle inlines vscode-languageclient, so out/extension.js is all the code it needs.
  mkdirSync(join(dest, "out"));
  cpSync(join(ROOT, "vscode-client/out/extension.js"), join(dest, "out/extension.js"));
}

function startCodeServer({ port, userDataDir, extensionsDir, workspace, tmp }) {
  writeFileSync(join(tmp, "config.yaml"), `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
  const args = [
    "--config", join(tmp, "config.yaml"),
    "--bind-addr", `127.0.0.1:${port}`,
    "--auth", "none",
    "--user-data-dir", userDataDir,
    "--extensions-dir", extensionsDir,
    "--disable-telemetry",
    "--disable-update-check",
    "--disable-workspace-trust",
    workspace,
  ];
  // PYTHONPATH: `python -m lsp_server` works from the checkout even without `pip install -e .`.
  const env = { ...process.env, PYTHONPATH: [ROOT, process.env.PYTHONPATH].filter(Boolean).join(":") };
  const proc = spawn(CODE_SERVER, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  const output = [];
  const keep = (chunk) => output.push(chunk.toString());
  proc.stdout.on("data", keep);
  proc.stderr.on("data", keep);
  return { proc, output };
}

// ---------------------------------------------------------------- the editor

const statusItem = (page) => page.locator(".statusbar-item").filter({ hasText: "speclsp" }).first();

/** Wait for the status bar item's check icon (state "ready"); fail on its error icon. */
async function waitForServerReady(page) {
  const item = statusItem(page);
  await item.waitFor({ timeout: 60_000 }).catch(() => fail("no speclsp status bar item: the extension did not activate"));
  const deadline = Date.now() + SERVER_READY_MS;
  while (Date.now() < deadline) {
    if ((await item.locator(".codicon-check").count()) > 0) return (await item.innerText()).trim();
    if ((await item.locator(".codicon-error, .codicon-debug-disconnect").count()) > 0) {
      fail(`the status bar reports a server problem: ${await item.getAttribute("aria-label")}`);
    }
    await sleep(500);
  }
  fail(`the server was not ready within ${SERVER_READY_MS / 1000} s (status: ${await item.innerText()})`);
}

async function runCommand(page, title) {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor();
  await input.fill(`>${title}`);
  await page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first().waitFor();
  await page.keyboard.press("Enter");
}

async function openFileAtLineEnd(page, name, line) {
  await page.keyboard.press("Control+P");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor();
  await input.fill(name);
  await page.locator(".quick-input-list .monaco-list-row", { hasText: name }).first().waitFor();
  await page.keyboard.press("Enter");
  await page.locator(".editor-instance .monaco-editor .view-lines").first().waitFor();
  await page.locator(".tab.active", { hasText: name }).waitFor();
  await page.keyboard.press("Control+G");
  await input.fill(`:${line}`);
  await page.keyboard.press("Enter");
  await page.keyboard.press("End");
}

/**
 * Ghost text as VS Code renders it: the part on the cursor's line (decorations) plus the extra
 * lines of a multi-line suggestion (a view zone), joined with newlines.
 */
async function readGhostText(page) {
  return page.evaluate(() => {
    const inline = [...document.querySelectorAll(".monaco-editor .ghost-text-decoration")].map((e) => e.textContent);
    const lines = [...document.querySelectorAll(".monaco-editor .suggest-preview-text .view-line")].map((e) => e.textContent);
    return [inline.join(""), ...lines].join("\n").replace(/\u00a0/g, " ");
  });
}

/**
 * For comparing rendered text with file text: the editor draws control characters as symbols
 * (U+2400...) and the file holds the characters themselves, so both are dropped. Only the random
 * test models produce them.
 */
const comparable = (text) => text.replace(/[\u0000-\u0009\u000b-\u001f\u007f\u2400-\u2421]/g, "");

async function waitForGhostText(page) {
  const ghost = page.locator(".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text");
  const deadline = Date.now() + GHOST_TEXT_MS;
  let tries = 0;
  while (Date.now() < deadline) {
    // Typing triggers automatically; the explicit trigger covers a request cancelled by the typing.
    if (tries++ % 10 === 0) await runCommand(page, "Trigger Inline Suggestion");
    if ((await ghost.count()) > 0 && (await readGhostText(page)).trim() !== "") return readGhostText(page);
    await sleep(500);
  }
  fail(`no ghost text within ${GHOST_TEXT_MS / 1000} s`);
}

/**
 * Accepting edits the document, which asks the server for the next suggestion: wait for it (or a
 * few seconds), then hide it, so the "accepted" screenshot shows only what was inserted.
 */
async function dismissNextSuggestion(page) {
  const ghost = page.locator(".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text").first();
  await ghost.waitFor({ timeout: 8_000 }).catch(() => {});
  await page.keyboard.press("Escape");
  await ghost.waitFor({ state: "detached", timeout: 3_000 }).catch(() => {});
  await sleep(1_000); // the status bar fetches stats 300 ms after a request: let it settle
}

/** The tail of the extension's "speclsp" output channel, from code-server's log folder. */
function extensionLog(userDataDir) {
  const found = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/speclsp/i.test(e.name) && e.name.endsWith(".log")) found.push(p);
    }
  };
  try {
    walk(join(userDataDir, "logs"));
  } catch {
    return "";
  }
  return found.map((p) => `--- ${p}\n${readFileSync(p, "utf8").split("\n").slice(-60).join("\n")}`).join("\n");
}

// ---------------------------------------------------------------- the check

async function check({ page, port, workspace, sampleFile }) {
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
  await page.locator(".monaco-workbench").waitFor({ timeout: 60_000 });
  log("workbench loaded");

  await openFileAtLineEnd(page, "sample.py", LINE);
  log(`sample.py open, cursor at the end of line ${LINE}`);
  const status = await waitForServerReady(page);
  const readyAt = elapsed();
  log(`server ready; status bar: "${status}"`);

  await page.keyboard.press("Enter");
  await page.keyboard.type(TYPED, { delay: 50 });
  const typedAt = Date.now();
  const ghost = await waitForGhostText(page);
  const ghostAfter = `${((Date.now() - typedAt) / 1000).toFixed(1)} s`;
  log(`ghost text after ${ghostAfter}: ${JSON.stringify(ghost)}`);
  await page.screenshot({ path: join(OUT_DIR, "vscode-ghost.png") });

  await page.keyboard.press("Tab");
  await page.keyboard.press("Control+S");
  // The file must hold, right after the original line, the typed characters and then the suggestion.
  const before = `${SAMPLE.split("\n").slice(0, LINE).join("\n")}\n`;
  const expected = comparable(`    ${TYPED}${ghost}`);
  let saved = "";
  for (let i = 0; i < 40 && !comparable(saved).startsWith(before + expected); i++) {
    await sleep(250);
    saved = readFileSync(sampleFile, "utf8");
  }
  if (!comparable(saved).startsWith(before + expected)) {
    const after = saved.startsWith(before) ? saved.slice(before.length) : saved;
    fail(`after Tab and save, the file does not hold the suggestion.\nexpected after line ${LINE}: ${JSON.stringify(expected)}\nfound: ${JSON.stringify(after.slice(0, 300))}`);
  }
  log(`accepted; line ${LINE + 1} is now ${JSON.stringify(saved.split("\n")[LINE])}`);

  const finalStatus = (await statusItem(page).innerText()).trim();
  const ready = (await statusItem(page).locator(".codicon-check, .codicon-sync").count()) > 0;
  if (!finalStatus.includes("speclsp") || !ready) fail(`status bar item not ready after the completion: "${finalStatus}"`);
  await dismissNextSuggestion(page);
  await page.screenshot({ path: join(OUT_DIR, "vscode-accepted.png") });
  await statusItem(page).screenshot({ path: join(OUT_DIR, "vscode-statusbar.png") });
  return { readyAt, ghostAfter, ghost, saved, status: (await statusItem(page).innerText()).trim() };
}

function writeReport(models, r) {
  const lines = r.saved.split("\n");
  const shown = lines.slice(3, LINE + 1 + r.ghost.split("\n").length + 1);
  const report = [
    "# VS Code end-to-end run (e2e/vscode/run.mjs)",
    `date:        ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`,
    `editor:      ${codeServerVersion()}, headless chromium via playwright-core`,
    `models:      ${models.description}`,
    `server:      speclsp.server.command = ["${PYTHON}", "-m", "lsp_server", "serve"], speclsp.maxTokens = 24`,
    `typed:       Enter, ${JSON.stringify(TYPED)} at the end of line ${LINE} (inside mean)`,
    `ready:       ${r.readyAt} into the run (status bar shows the check icon)`,
    `ghost text:  ${r.ghostAfter} after typing`,
    `status bar:  ${JSON.stringify(r.status)}`,
    "",
    "ghost text (as shown):",
    `  ${JSON.stringify(r.ghost)}`,
    "",
    "file on disk after Tab and Ctrl+S:",
    ...shown.map((text, i) => `  ${String(i + 4).padStart(2)} | ${text}`),
    "",
    "screenshots: vscode-ghost.png (ghost text), vscode-accepted.png (after Tab), vscode-statusbar.png",
    `run time:    ${elapsed()}`,
    "",
  ];
  writeFileSync(join(OUT_DIR, "vscode.txt"), report.join("\n"));
}

async function main() {
  checkPrerequisites();
  mkdirSync(OUT_DIR, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), "speclsp-e2e-vscode-"));
  const userDataDir = join(tmp, "user-data");
  const extensionsDir = join(tmp, "extensions");
  const workspace = join(tmp, "workspace");
  const sampleFile = join(workspace, "sample.py");
  mkdirSync(workspace, { recursive: true });
  writeFileSync(sampleFile, SAMPLE);

  const models = modelSettings(tmp);
  log(`models: ${models.description}`);
  writeUserSettings(userDataDir, models);
  installExtension(extensionsDir);

  const port = await freePort();
  const server = startCodeServer({ port, userDataDir, extensionsDir, workspace, tmp });
  let browser;
  let ok = false;
  // code-server first, while its tree is intact: closing the page can end the extension host,
  // which would leave our server with a new parent and out of the tree.
  const stopAll = async () => {
    const n = await killTree(server.proc.pid);
    log(`killed code-server (pid ${server.proc.pid}) and its tree: ${n} processes`);
    await browser?.close().catch(() => {});
  };
  for (const sig of ["SIGINT", "SIGTERM"]) {
    process.once(sig, () => void stopAll().finally(() => process.exit(130)));
  }

  try {
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000, server.proc);
    log(`code-server on 127.0.0.1:${port} (pid ${server.proc.pid})`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    const result = await check({ page, port, workspace, sampleFile });
    writeReport(models, result);
    ok = true;
    log(`PASS; log in docs/editor-runs/vscode.txt`);
  } catch (err) {
    console.error(`\nFAIL: ${err instanceof CheckFailed ? err.message : err?.stack ?? err}`);
    console.error(`\n--- speclsp output channel\n${extensionLog(userDataDir) || "(none found)"}`);
    console.error(`\n--- code-server output (last lines)\n${server.output.join("").split("\n").slice(-30).join("\n")}`);
  } finally {
    await stopAll();
  }
  if (ok) {
    rmSync(tmp, { recursive: true, force: true });
  } else {
    console.error(`\nkept for inspection: ${tmp} (code-server logs under user-data/logs)`);
  }
  return ok ? 0 : 1;
}

/** "code-server 4.100.3 (VS Code 1.100.3)" from "4.100.3 <commit> with Code 1.100.3". */
function codeServerVersion() {
  const out = spawnSync(CODE_SERVER, ["--version"], { encoding: "utf8" }).stdout ?? "";
  const m = out.match(/^(\S+) \S+ with Code (\S+)/);
  return m ? `code-server ${m[1]} (VS Code ${m[2]})` : `code-server ${out.trim()}`;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`FAIL: ${err instanceof CheckFailed ? err.message : err?.stack ?? err}`);
    process.exit(1);
  },
);
