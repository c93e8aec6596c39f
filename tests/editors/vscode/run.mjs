// Types into a real VS Code the way a person does and checks what the person gets.
//
// code-server 4.100.3 (VS Code 1.100.3) in Debian's chromium, driven by playwright-core, with the
// extension installed from its .vsix and VS Code's default settings: quick suggestions on, ghost
// text asked for by VS Code itself as you type. In workspace/orders.py it types the bursts of
// bursts.mjs at 50 and 150 ms per key, at a dozen places, with Enter into new lines, typing on
// after a ghost text appeared, and Tab to accept. The "speclsp" output channel at log level Trace
// (with `speclsp.trace.server: verbose`) records every LSP message, which the run replays to know
// which text each shown ghost text was computed for.
//
// Must hold (exit 1 when any fails, saying which): no error or traceback in the output channel;
// every burst ends with ghost text made for the final text, or none; Tab never inserts text
// computed for other text; the buffer after Tab is prefix + shown suggestion + suffix; the server
// exits after the editor (code-server) closes. Reported: last key → ghost text latency p50/p95.
// Exit 2: the harness could not do its job (missing set-up, server never ready, misread screen).
//
// Env: SPECLSP_PYTHON (default .venv/bin/python): the Python that runs the server, from this
// checkout (PYTHONPATH=<checkout>); SPECLSP_UPDATE_RUNS=1: also write docs/editor-runs/.
// Output: artifacts/vscode/ (git-ignored): typing.txt, summary.json, speclsp-output.log, PNGs.

import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { BURSTS, FILE } from "./bursts.mjs";
import { analyzeBurst, errorKinds, latencySummary, mustHold, requestCounts } from "./lib/analysis.mjs";
import {
  ghostChanges, goTo, HarnessError, openFile, readScreen, recordGhostChanges, serverState, setChannelLogLevel, sleep,
  typeLikeAPerson, waitForReady, waitForSettle, waitUntil,
} from "./lib/editor.mjs";
import { environmentVariable, freePort, killTree, serverPids, waitForExit, waitForHttp } from "./lib/processes.mjs";
import { formatReport } from "./lib/report.mjs";
import { messageOf, parseLog, replay } from "./lib/trace.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "../../..");
const CODE_SERVER = join(ROOT, ".tools/code-server/node_modules/.bin/code-server");
const PYTHON = process.env.SPECLSP_PYTHON || join(ROOT, ".venv/bin/python");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const EXTENSION = JSON.parse(readFileSync(join(ROOT, "vscode-client/package.json"), "utf8"));
const VSIX = join(ROOT, "vscode-client", `${EXTENSION.name}-${EXTENSION.version}.vsix`);
const ARTIFACTS = join(ROOT, "artifacts/vscode");
const DOCS = join(ROOT, "docs/editor-runs");
const UPDATE_DOCS = process.env.SPECLSP_UPDATE_RUNS === "1";

const SERVER_READY_MS = 240_000; // model load on a busy 2-core CPU
// After the last key: read the screen once the server is idle and the ghost text has not changed
// for QUIET_MS, but never before MIN_MS (VS Code waits a little before asking) nor after MAX_MS.
const SETTLE = { minMs: 3_000, quietMs: 1_500, maxMs: 20_000 };
const GHOST_BEFORE_TYPING_ON_MS = 15_000;
const AFTER_TAB_MS = 1_500;
const SERVER_EXIT_MS = 10_000;

// Settings that keep the screen clean and quiet and have nothing to do with completion, plus
// where the server's Python is and the protocol trace the run is judged by.
const USER_SETTINGS = {
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "telemetry.telemetryLevel": "off",
  "update.mode": "none",
  "extensions.ignoreRecommendations": true,
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "chat.commandCenter.enabled": false,
  "git.enabled": false,
  "editor.minimap.enabled": false,
  "speclsp.server.pythonPath": PYTHON,
  "speclsp.trace.server": "verbose",
};

const started = Date.now();
const log = (msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${msg}`);

// ---------------------------------------------------------------- set-up

function checkPrerequisites() {
  const missing = [[CODE_SERVER, "code-server"], [CHROMIUM, "chromium"], [PYTHON, `Python (${PYTHON})`], [VSIX, "the .vsix"]]
    .filter(([path]) => !existsSync(path));
  if (missing.length > 0) {
    throw new HarnessError(`missing ${missing.map(([, what]) => what).join(", ")}: run 'bash tests/editors/vscode/setup.sh' first`);
  }
}

function prepare(tmp) {
  const dirs = { userData: join(tmp, "user-data"), extensions: join(tmp, "extensions"), workspace: join(tmp, "workspace") };
  mkdirSync(join(dirs.userData, "User"), { recursive: true });
  mkdirSync(dirs.workspace, { recursive: true });
  cpSync(join(HERE, "workspace", FILE), join(dirs.workspace, FILE));
  writeFileSync(join(dirs.userData, "User/settings.json"), JSON.stringify(USER_SETTINGS, null, 2));
  const r = spawnSync(CODE_SERVER, ["--user-data-dir", dirs.userData, "--extensions-dir", dirs.extensions,
    "--install-extension", VSIX], { encoding: "utf8" });
  if (r.status !== 0) throw new HarnessError(`code-server --install-extension failed:\n${r.stdout}${r.stderr}`);
  return dirs;
}

/** code-server with our checkout on PYTHONPATH: the extension host passes its environment to the server. */
function startCodeServer(port, dirs, tmp) {
  writeFileSync(join(tmp, "config.yaml"), `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
  const args = ["--config", join(tmp, "config.yaml"), "--bind-addr", `127.0.0.1:${port}`, "--auth", "none",
    "--user-data-dir", dirs.userData, "--extensions-dir", dirs.extensions, "--disable-telemetry",
    "--disable-update-check", "--disable-workspace-trust", dirs.workspace];
  const env = { ...process.env, PYTHONPATH: [ROOT, process.env.PYTHONPATH].filter(Boolean).join(":") };
  const proc = spawn(CODE_SERVER, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  const output = [];
  proc.stdout.on("data", (c) => output.push(c.toString()));
  proc.stderr.on("data", (c) => output.push(c.toString()));
  return { proc, output };
}

/** The output channel's file, written by the extension host under the user-data folder. */
function channelLogFile(userData) {
  const found = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === "speclsp.log") found.push(p);
    }
  };
  if (existsSync(join(userData, "logs"))) walk(join(userData, "logs"));
  return found.sort().at(-1) ?? null;
}

const readChannel = (userData) => {
  const f = channelLogFile(userData);
  return f ? readFileSync(f, "utf8") : "";
};

// ---------------------------------------------------------------- the editor

/** The server must run this checkout's code: PYTHONPATH has come through code-server and the extension. */
function checkServerCode(codeServerPid) {
  const pids = serverPids(codeServerPid);
  if (pids.length !== 1) throw new HarnessError(`expected one server process under code-server, found ${pids.length}`);
  const path = environmentVariable(pids[0], "PYTHONPATH") ?? "";
  if (path.split(":")[0] !== ROOT) {
    throw new HarnessError(`the server (pid ${pids[0]}) runs with PYTHONPATH=${JSON.stringify(path)}, not this checkout first`);
  }
}

async function openEditor(page, port, dirs) {
  const t0 = Date.now();
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(dirs.workspace)}`);
  await page.locator(".monaco-workbench").waitFor({ timeout: 90_000 });
  log("workbench loaded");
  // The language client follows the channel's log level only once the server has answered
  // `initialize`: set it when the server is ready, before the file is opened, so the trace
  // holds the file's didOpen (its whole text) and every change after it.
  await waitForReady(page, SERVER_READY_MS);
  const readyMs = Date.now() - t0;
  log(`server ready after ${(readyMs / 1000).toFixed(1)} s; setting the speclsp channel to Trace`);
  await setChannelLogLevel(page, "speclsp", "Trace");
  const tracing = await waitUntil(() => / \[trace\] /.test(readChannel(dirs.userData)), 20_000, 500);
  if (!tracing) throw new HarnessError("the speclsp output channel shows no LSP trace after setting its level to Trace");
  await openFile(page, FILE);
  await recordGhostChanges(page);
  await waitForReady(page, SERVER_READY_MS);
  log(`${FILE} open`);
  return readyMs;
}

/** Types one burst and reads the screen at its end (and around Tab). Raw observations only. */
async function typeBurst(page, burst, shot) {
  const startedAt = Date.now();
  await goTo(page, burst.line, burst.left ?? 0);
  let typed = `${burst.newLine ? "\n" : ""}${burst.text}`;
  let keys = await typeLikeAPerson(page, typed, burst.msPerKey);
  const measuredMsPerKey = Math.round((keys.lastKeyAt - keys.firstKeyAt) / Math.max(1, [...typed].length - 1));
  let closedLists = keys.closedLists;
  let ghostBeforeTypingOn;
  if (burst.thenGhost) {
    const appeared = await waitUntil(async () => (await readScreen(page)).ghost !== "", GHOST_BEFORE_TYPING_ON_MS);
    const ghost = (await readScreen(page)).ghost.split("\u0001").join("");
    const more = burst.thenGhost.chars !== undefined ? ghost.slice(0, burst.thenGhost.chars) : burst.thenGhost.text;
    ghostBeforeTypingOn = appeared;
    if (more) {
      keys = await typeLikeAPerson(page, more, burst.msPerKey);
      closedLists += keys.closedLists;
      typed += more;
    }
  }
  const settle = await waitForSettle(page, keys.lastKeyAt, SETTLE);
  const screen = await readScreen(page);
  const readAt = Date.now(); // answers and ghost changes up to here are what the screen shows
  const changes = (await ghostChanges(page, keys.lastKeyAt)).filter((c) => c.t <= readAt);
  await page.screenshot({ path: shot("end") });
  const obs = {
    burst, typed, startedAt, lastKeyAt: keys.lastKeyAt, settledAt: readAt, settled: settle.settled, screen,
    changes, closedLists, measuredMsPerKey, ghostBeforeTypingOn, shots: [shot("end")],
  };
  if (burst.accept) obs.accept = await accept(page, screen, shot);
  obs.endedAt = Date.now();
  return obs;
}

/** Tab on the ghost text, as a person does: the suggestion list, when open, is closed first. */
async function accept(page, screen, shot) {
  let seen = screen;
  if (seen.ghost && seen.suggestWidget) {
    await page.keyboard.press("Escape");
    await sleep(300);
    seen = await readScreen(page);
  }
  if (!seen.ghost) return { pressed: false, why: screen.ghost ? "the ghost text went with the suggestion list" : "no ghost text" };
  const pressedAt = Date.now();
  await page.keyboard.press("Tab");
  await sleep(AFTER_TAB_MS);
  await page.screenshot({ path: shot("accepted") });
  return { pressed: true, pressedAt, checkedAt: Date.now(), screen: seen, shot: shot("accepted") };
}

/** Stop code-server as a person closes the editor, and see whether the server goes too. */
async function closeEditor(browser, server) {
  const pids = serverPids(server.proc.pid);
  await browser.close().catch(() => {});
  server.proc.kill("SIGTERM");
  const exitedMs = await waitForExit(pids, SERVER_EXIT_MS);
  return { pids, exitedMs, waitedMs: SERVER_EXIT_MS };
}

// ---------------------------------------------------------------- the run

function modelsOf(records) {
  const ready = records.find((r) => /models ready: /.test(r.text));
  if (!ready) return "unknown (no 'models ready' line in the output channel)";
  const field = (k) => new RegExp(`'${k}': '([^']*)'`).exec(ready.text)?.[1] ?? "?";
  return `target ${field("target").replace(`${ROOT}/`, "")}, draft ${field("draft").replace(`${ROOT}/`, "")}, `
    + `${field("device")} ${field("dtype")} (the server's defaults)`;
}

function codeServerVersion() {
  const out = spawnSync(CODE_SERVER, ["--version"], { encoding: "utf8" }).stdout ?? "";
  const m = out.match(/^(\S+) \S+ with Code (\S+)/);
  return m ? `code-server ${m[1]} (VS Code ${m[2]})` : `code-server ${out.trim()}`;
}

function summarize({ observations, channel, dirs, serverExit, readyMs, browserVersion, toasts, harness }) {
  const records = parseLog(channel);
  const messages = records.map(messageOf).filter(Boolean);
  const uri = `file://${join(dirs.workspace, FILE)}`;
  const { versions, requests } = replay(messages, uri);
  if (versions.length === 0) harness.push("the trace holds no didOpen of the file: the run cannot be judged");
  const bursts = observations.map((o) => analyzeBurst(o, { records, versions, requests }));
  for (const b of bursts) harness.push(...b.harness.map((h) => `${b.name}: ${h}`));
  const checks = mustHold({ bursts, records, serverExit });
  const result = harness.length > 0 ? "HARNESS PROBLEM" : checks.every((c) => c.ok) ? "PASS" : "FAIL";
  return {
    date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
    machine: `${cpus().length} CPU cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, shared`,
    editor: codeServerVersion(),
    browser: browserVersion,
    extension: basename(VSIX),
    python: PYTHON,
    pythonPath: ROOT,
    models: modelsOf(records),
    settingsNote: "for a clean screen (telemetry, tips, update checks, minimap off), speclsp.server.pythonPath, "
      + "speclsp.trace.server=verbose; the channel's log level set to Trace",
    file: `tests/editors/vscode/workspace/${FILE}`,
    readyMs,
    bursts,
    checks,
    errorKinds: errorKinds(records),
    harness,
    latency: latencySummary(bursts),
    totals: requestCounts(requests, 0, Infinity),
    toasts,
    serverExit,
    screenshots: [],
    runMs: Date.now() - started,
    result,
  };
}

function writeOutputs(run, observations, channel) {
  const firstGhost = observations.find((o) => o.screen.ghost);
  const firstTab = observations.find((o) => o.accept?.pressed);
  const pictures = [[firstGhost?.shots[0], "vscode-typing-ghost.png"], [firstTab?.accept.shot, "vscode-typing-accepted.png"]]
    .filter(([from]) => from);
  run.screenshots = pictures.map(([, name]) => name);
  const text = formatReport(run);
  writeFileSync(join(ARTIFACTS, "typing.txt"), text);
  writeFileSync(join(ARTIFACTS, "summary.json"), `${JSON.stringify(run, null, 2)}\n`);
  writeFileSync(join(ARTIFACTS, "speclsp-output.log"), channel);
  // what the harness itself read, before any judgement: for looking into a surprising verdict
  writeFileSync(join(ARTIFACTS, "observations.json"), `${JSON.stringify(observations, null, 1)}\n`);
  for (const [from, name] of pictures) copyFileSync(from, join(ARTIFACTS, name));
  if (UPDATE_DOCS) {
    mkdirSync(DOCS, { recursive: true });
    writeFileSync(join(DOCS, "vscode-typing.txt"), text);
    for (const [from, name] of pictures) copyFileSync(from, join(DOCS, name));
  }
  return text;
}

async function main() {
  checkPrerequisites();
  rmSync(ARTIFACTS, { recursive: true, force: true });
  mkdirSync(ARTIFACTS, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), "speclsp-e2e-vscode-"));
  const dirs = prepare(tmp);
  const port = await freePort();
  const server = startCodeServer(port, dirs, tmp);
  let browser;
  let serverExit = { pids: [], exitedMs: null, waitedMs: 0 };
  const observations = [];
  const harness = [];
  let readyMs = 0;
  let browserVersion = "";
  const toasts = new Set();
  try {
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000, server.proc);
    log(`code-server on 127.0.0.1:${port} (pid ${server.proc.pid}), extension ${basename(VSIX)}`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"],
    });
    browserVersion = browser.version();
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    readyMs = await openEditor(page, port, dirs);
    checkServerCode(server.proc.pid);
    for (const t of (await readScreen(page)).toasts) toasts.add(t);
    for (const [i, burst] of BURSTS.entries()) {
      const shot = (what) => join(ARTIFACTS, `burst-${String(i + 1).padStart(2, "0")}-${what}.png`);
      const obs = await typeBurst(page, burst, shot);
      observations.push(obs);
      for (const t of obs.screen.toasts) toasts.add(t);
      const ghost = obs.screen.ghost.split("\u0001").join("");
      log(`burst ${i + 1} (${burst.name}): ghost ${ghost ? JSON.stringify(ghost.slice(0, 60)) : "none"}`
        + `${obs.accept?.pressed ? ", Tab pressed" : ""}; server ${await serverState(page)}`);
    }
    await page.keyboard.press("Control+S");
    await sleep(1_500); // the extension host writes its log a little behind
    const saved = readFileSync(join(dirs.workspace, FILE), "utf8");
    writeFileSync(join(ARTIFACTS, FILE), saved);
    serverExit = await closeEditor(browser, server);
    log(`code-server stopped; server ${serverExit.exitedMs !== null ? `exited after ${serverExit.exitedMs} ms` : "still running"}`);
  } catch (err) {
    // Whatever stopped the run (a timeout waiting for the screen included) is the harness's
    // problem to report; what was observed so far is still judged and written.
    harness.push(err instanceof HarnessError ? err.message : String(err?.stack ?? err));
  } finally {
    const left = serverPids(server.proc.pid);
    await killTree(server.proc.pid, [...serverExit.pids, ...left]);
    await browser?.close().catch(() => {});
  }
  const channel = readChannel(dirs.userData);
  const run = summarize({ observations, channel, dirs, serverExit, readyMs, browserVersion, toasts: [...toasts], harness });
  checkSaved(run, dirs, channel);
  console.log(`\n${writeOutputs(run, observations, channel)}`);
  console.log(`artifacts: ${ARTIFACTS}${UPDATE_DOCS ? `; docs: ${DOCS}` : ""}`);
  if (run.result === "HARNESS PROBLEM") {
    console.log(`kept for inspection: ${tmp} (code-server's logs under user-data/logs)\n`
      + `code-server's output, last lines:\n${server.output.join("").split("\n").slice(-20).join("\n")}`);
  } else {
    rmSync(tmp, { recursive: true, force: true });
  }
  return run.result === "PASS" ? 0 : run.result === "FAIL" ? 1 : 2;
}

/** The harness checks itself: the document it replayed from the trace must be the file VS Code saved. */
function checkSaved(run, dirs, channel) {
  const savedPath = join(ARTIFACTS, FILE);
  if (!existsSync(savedPath) || run.harness.length > 0) return;
  const { versions } = replay(parseLog(channel).map(messageOf).filter(Boolean), `file://${join(dirs.workspace, FILE)}`);
  if (versions.at(-1)?.text !== readFileSync(savedPath, "utf8")) {
    run.harness.push("the document replayed from the trace is not the file VS Code saved");
    run.result = "HARNESS PROBLEM";
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`HARNESS PROBLEM: ${err?.stack ?? err}`);
    process.exit(2);
  },
);
