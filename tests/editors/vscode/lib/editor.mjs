// The VS Code workbench in the browser, as a person uses it: keys, the command palette, and what
// is on the screen (read from the DOM). Nothing here calls VS Code's API: a person cannot either.

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class HarnessError extends Error {}

const QUICK_INPUT = ".quick-input-widget input";

const statusItem = (page) => page.locator(".statusbar-item").filter({ hasText: "speclsp" }).first();

/** The extension's state from its status bar icon: ready, busy, loading, error, stopped, off. */
export async function serverState(page) {
  return page.evaluate(() => {
    const item = [...document.querySelectorAll(".statusbar-item")].find((e) => e.textContent.includes("speclsp"));
    if (!item) return "absent";
    const has = (name) => item.querySelector(`.codicon-${name}`) !== null;
    if (has("check")) return "ready";
    if (has("sync")) return "busy";
    if (has("loading")) return "loading";
    if (has("error")) return "error";
    if (has("debug-disconnect")) return "stopped";
    if (has("circle-slash")) return "off";
    return "unknown";
  });
}

export const statusText = async (page) => (await statusItem(page).innerText()).trim();

/** Wait for the status bar's check mark: the server has loaded its models. */
export async function waitForReady(page, ms) {
  await statusItem(page).waitFor({ timeout: 90_000 })
    .catch(() => { throw new HarnessError("no speclsp status bar item: the extension did not activate"); });
  const deadline = Date.now() + ms;
  for (;;) {
    const state = await serverState(page);
    if (state === "ready") return;
    if (state === "error" || state === "stopped") {
      throw new HarnessError(`the status bar reports a server problem: ${await statusItem(page).getAttribute("aria-label")}`);
    }
    if (Date.now() > deadline) throw new HarnessError(`the server was not ready within ${ms / 1000} s (${state})`);
    await sleep(500);
  }
}

async function pick(page, text) {
  await page.locator(".quick-input-list .monaco-list-row", { hasText: text }).first().waitFor({ timeout: 20_000 });
  await page.keyboard.press("Enter");
}

/** F1, the command's title, Enter. */
export async function runCommand(page, title) {
  await page.keyboard.press("F1");
  await page.locator(QUICK_INPUT).waitFor();
  await page.locator(QUICK_INPUT).fill(`>${title}`);
  await pick(page, title);
}

/**
 * "Developer: Set Log Level..." for one output channel. At Trace, vscode-languageclient writes
 * the LSP messages (with `speclsp.trace.server`) into the channel: the run's record of what
 * VS Code asked and what came back. A log level, not a setting: completions behave the same.
 */
export async function setChannelLogLevel(page, channel, level) {
  await runCommand(page, "Developer: Set Log Level");
  await page.locator(QUICK_INPUT).fill(channel);
  await pick(page, channel);
  await page.locator(".quick-input-list .monaco-list-row", { hasText: level }).first().click();
  await page.locator(".quick-input-widget").waitFor({ state: "hidden" });
}

/** Ctrl+P, the file's name, Enter; returns once its editor tab is active. */
export async function openFile(page, name) {
  await page.keyboard.press("Control+P");
  await page.locator(QUICK_INPUT).fill(name);
  await pick(page, name);
  await page.locator(".tab.active", { hasText: name }).waitFor();
  await page.locator(".part.editor .monaco-editor .view-lines").first().waitFor();
}

/** Ctrl+G to a 1-based line, then End, then `left` characters back. */
export async function goTo(page, line, left = 0) {
  await page.keyboard.press("Control+G");
  await page.locator(QUICK_INPUT).fill(`:${line}`);
  await page.keyboard.press("Enter");
  await page.locator(".quick-input-widget").waitFor({ state: "hidden" });
  await page.keyboard.press("End");
  for (let i = 0; i < left; i++) await page.keyboard.press("ArrowLeft");
}

/**
 * The ghost text as one string (its parts joined by U+0001), as the page computes it: the same
 * function feeds the change recorder and `readScreen`, so their strings compare.
 */
const GHOST_KEY = `() => [...document.querySelectorAll(
  ".part.editor .ghost-text-decoration, .part.editor .ghost-text-decoration-preview, .part.editor .suggest-preview-text .ghost-text"
)].map((e) => e.textContent.replace(/\\u00a0/g, " ")).join("\\u0001")`;

/** Record every change of the ghost text with its time, in the page (cheap: no polling). */
export async function recordGhostChanges(page) {
  await page.evaluate(`(() => {
    const key = ${GHOST_KEY};
    const state = (window.__ghost = { changes: [], last: key() });
    new MutationObserver(() => {
      const g = key();
      if (g === state.last) return;
      state.last = g;
      state.changes.push({ t: Date.now(), ghost: g });
      if (state.changes.length > 4000) state.changes.splice(0, 2000);
    }).observe(document.querySelector(".part.editor"), { subtree: true, childList: true, characterData: true });
  })()`);
}

export const ghostChanges = (page, since) =>
  page.evaluate((t) => window.__ghost.changes.filter((c) => c.t >= t), since);

/**
 * What is on the screen now. `block`: the cursor's line as drawn (ghost text in, hidden text out)
 * plus the extra lines of a multi-line suggestion; `realLine`: the cursor's line without the ghost
 * text (the document's line); `cursor`: 0-based line and UTF-16 column from the status bar.
 */
export async function readScreen(page) {
  return page.evaluate(`(() => {
    const ghostKey = (${GHOST_KEY})();
    const nb = (s) => s.replace(/\\u00a0/g, " ");
    const editor = document.querySelector(".part.editor .monaco-editor");
    const cursor = editor?.querySelector(".cursors-layer .cursor");
    const lines = editor ? [...editor.querySelectorAll(".view-lines .view-line")] : [];
    const lineEl = cursor && lines.find((e) => e.style.top === cursor.style.top);
    const textOf = (el, drop) => {
      const copy = el.cloneNode(true);
      copy.querySelectorAll(drop).forEach((n) => n.remove());
      return nb(copy.textContent);
    };
    const zone = editor?.querySelector(".view-zones .suggest-preview-text");
    const extra = zone ? [...zone.querySelectorAll(".view-line")].map((e) => nb(e.textContent)) : [];
    const sel = document.getElementById("status.editor.selection")?.textContent ?? "";
    const m = /Ln (\\d+), Col (\\d+)/.exec(sel);
    return {
      ghost: ghostKey,
      block: lineEl ? [textOf(lineEl, ".ghost-text-hidden"), ...extra] : null,
      realLine: lineEl ? textOf(lineEl, ".ghost-text-decoration, .ghost-text-decoration-preview") : null,
      cursor: m ? { line: Number(m[1]) - 1, col: Number(m[2]) - 1 } : null,
      suggestWidget: document.querySelector(".suggest-widget.visible") !== null,
      toasts: [...document.querySelectorAll(".notifications-toasts .notification-toast .notification-list-item-message")]
        .map((e) => e.textContent),
    };
  })()`);
}

/**
 * Types `text` one key at a time, `msPerKey` apart (key start to key start). A newline is Enter;
 * when VS Code's suggestion list is open it would take Enter, so Escape closes it first, as a
 * person wanting a new line does. Returns the times of the first and last key and how many lists
 * were closed.
 */
export async function typeLikeAPerson(page, text, msPerKey) {
  let closedLists = 0;
  let firstKeyAt = null;
  let lastKeyAt = Date.now() - msPerKey;
  for (const ch of text) {
    const wait = lastKeyAt + msPerKey - Date.now();
    if (wait > 0) await sleep(wait);
    if (ch === "\n") {
      if (await page.locator(".suggest-widget.visible").count()) {
        await page.keyboard.press("Escape");
        closedLists++;
      }
      lastKeyAt = Date.now();
      await page.keyboard.press("Enter");
    } else {
      lastKeyAt = Date.now();
      await page.keyboard.type(ch);
    }
    firstKeyAt ??= lastKeyAt;
  }
  return { firstKeyAt, lastKeyAt, closedLists };
}

/**
 * Waits for the screen to settle after the last key: at least `minMs`, then the server seen idle
 * and the ghost text unchanged for `quietMs` (VS Code draws an answer a moment after the server
 * says it is ready again, so idle must have lasted too); gives up after `maxMs` (reported).
 */
export async function waitForSettle(page, lastKeyAt, { minMs, quietMs, maxMs }) {
  let lastBusyAt = lastKeyAt;
  for (;;) {
    const changes = await ghostChanges(page, lastKeyAt);
    const lastChange = changes.at(-1)?.t ?? lastKeyAt;
    if ((await serverState(page)) === "busy") lastBusyAt = Date.now();
    const now = Date.now();
    if (now - lastKeyAt >= minMs && now - lastBusyAt >= quietMs && now - lastChange >= quietMs) {
      return { settled: true, at: now };
    }
    if (now - lastKeyAt >= maxMs) return { settled: false, at: now };
    await sleep(200);
  }
}

/** Wait until `predicate()` holds (polled), or `ms` passed; returns whether it held. */
export async function waitUntil(predicate, ms, every = 200) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await predicate()) return true;
    await sleep(every);
  }
  return false;
}
