// The harness's judgement without an editor: a made-up output channel in the format
// vscode-languageclient writes, replayed and judged. `node --test tests/editors/vscode/test/`.

import assert from "node:assert/strict";
import { test } from "node:test";
import { errorKinds, finalRequest, mustHold } from "../lib/analysis.mjs";
import { applyChange, applyItem, diff, offsetAt } from "../lib/textdoc.mjs";
import { errorRecords, messageOf, parseLog, replay, textAt } from "../lib/trace.mjs";
import { checkAccept, displayedDoc, explainGhost, ghostLatency, percentile } from "../lib/verdict.mjs";

const URI = "file:///w/orders.py";
const T0 = new Date(2026, 11, 3, 21, 0, 0, 0).getTime();

/** One output-channel record at T0 + ms, as the extension host writes it. */
function rec(ms, level, text) {
  const d = new Date(T0 + ms);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  const stamp = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  return `${stamp} [${level}] ${text}`;
}
const json = (x) => JSON.stringify(x, null, 4);
const pos = (line, character) => ({ line, character });
const change = (line, character, text) => ({ range: { start: pos(line, character), end: pos(line, character) }, rangeLength: 0, text });

const OPEN = "def f(x):\n    return x\n";
// didOpen; type "  #" at the end of line 1 in two changes; two inline requests, the first
// cancelled, the second answered with " done"; a server traceback in between.
const LOG = [
  rec(0, "info", "Starting server: python -m lsp_server serve"),
  rec(10, "trace", `Sending notification 'textDocument/didOpen'.\nParams: ${json({ textDocument: { uri: URI, languageId: "python", version: 1, text: OPEN } })}`),
  rec(100, "trace", `Sending notification 'textDocument/didChange'.\nParams: ${json({ textDocument: { uri: URI, version: 2 }, contentChanges: [change(1, 12, "  ")] })}`),
  rec(110, "trace", `Sending request 'textDocument/inlineCompletion - (7)'.\nParams: ${json({ textDocument: { uri: URI }, position: pos(1, 14), context: { triggerKind: 2 } })}`),
  rec(150, "trace", `Sending notification '$/cancelRequest'.\nParams: ${json({ id: 7 })}`),
  rec(151, "trace", `Sending notification 'textDocument/didChange'.\nParams: ${json({ textDocument: { uri: URI, version: 3 }, contentChanges: [change(1, 14, "#")] })}`),
  rec(152, "trace", `Sending request 'textDocument/inlineCompletion - (8)'.\nParams: ${json({ textDocument: { uri: URI }, position: pos(1, 15), context: { triggerKind: 2 } })}`),
  rec(160, "trace", "Received response 'textDocument/inlineCompletion - (7)' in 50ms. Request failed: Request with id \"7\" is canceled (-32800)."),
  rec(170, "error", "2026-12-03 21:00:00,170 ERROR lsp_server.server: completion 4 failed"),
  rec(170, "error", "Traceback (most recent call last):"),
  rec(170, "error", '  File "scheduler.py", line 105, in _supersede'),
  rec(170, "error", "concurrent.futures._base.InvalidStateError: CANCELLED: <Future at 0x7f00 state=cancelled>"),
  rec(171, "error", "2026-12-03 21:00:00,171 INFO lsp_server.server: request {'id': 4}"),
  rec(400, "trace", `Received response 'textDocument/inlineCompletion - (8)' in 248ms.\nResult: ${json({ items: [{ insertText: " done" }] })}`),
].join("\n");

const FINAL = "def f(x):\n    return x  #\n";
const WITH_GHOST = "def f(x):\n    return x  # done\n";

function replayed() {
  const records = parseLog(LOG);
  return { records, ...replay(records.map(messageOf).filter(Boolean), URI) };
}

test("positions are UTF-16 code units, clamped to the line", () => {
  const text = "a😀b\nxy";
  assert.equal(offsetAt(text, pos(0, 3)), 3); // after the emoji's two units
  assert.equal(offsetAt(text, pos(0, 99)), 4);
  assert.equal(offsetAt(text, pos(1, 1)), 6);
  assert.equal(applyChange(text, change(0, 3, "!")), "a😀!b\nxy");
  assert.equal(applyChange(text, { text: "whole" }), "whole");
});

test("an item replaces its range, or inserts at the position without one", () => {
  const range = { start: pos(0, 0), end: pos(0, 3) };
  assert.equal(applyItem("abc def", pos(0, 3), { insertText: "xyz", range }), "xyz def");
  assert.equal(applyItem("abc def", pos(0, 3), { insertText: "!" }), "abc! def");
});

test("diff places an insertion at the cursor when told where it is", () => {
  assert.deepEqual(diff("a\nb", "a\n\nxb"), { at: 2, removed: "", inserted: "\nx" });
  assert.deepEqual(diff("ab", "aXb", 5), { at: 1, removed: "", inserted: "X" }); // the hint does not fit
  assert.equal(diff("x\n", "x\n    y\n", 2).inserted, "    y\n");
  assert.equal(diff("x\n", "x\n    y\n", 1).inserted, "\n    y");
});

test("the trace replays the document each request was made for", () => {
  const { versions, requests } = replayed();
  assert.equal(versions.length, 3);
  assert.equal(textAt(versions, T0 + 120), "def f(x):\n    return x  \n");
  assert.equal(textAt(versions, T0 + 5), null);
  const [first, second] = requests;
  assert.equal(first.id, 7);
  assert.equal(first.cancelledAt, T0 + 150);
  assert.equal(first.response.error.code, -32800);
  assert.equal(second.text, FINAL);
  assert.deepEqual(second.response.result, { items: [{ insertText: " done" }] });
});

test("errors are the [error] records; a traceback is grouped under its exception", () => {
  const { records } = replayed();
  assert.equal(errorRecords(records).length, 5);
  const kinds = errorKinds(records);
  assert.deepEqual(kinds.find((k) => k.text.startsWith("traceback")),
    { n: 1, text: "traceback → concurrent.futures._base.InvalidStateError: CANCELLED: <Future at 0x… state=cancelled>" });
  assert.ok(kinds.some((k) => k.text === "stderr INFO lsp_server.server: request …"));
});

test("ghost text is fresh, typed-through, stale or none", () => {
  const { requests } = replayed();
  const until = T0 + 1000;
  assert.equal(explainGhost({ requests, finalText: FINAL, shown: FINAL, until }).verdict, "none");
  const fresh = explainGhost({ requests, finalText: FINAL, shown: WITH_GHOST, until });
  assert.equal(fresh.verdict, "fresh");
  assert.equal(fresh.requestId, 8);
  // typed " d" into the suggestion: the answer for the earlier text still explains the screen
  const typedOn = "def f(x):\n    return x  # d\n";
  const through = explainGhost({ requests, finalText: typedOn, shown: WITH_GHOST, until });
  assert.equal(through.verdict, "typed-through");
  // the same suggestion shown after other text was typed: computed for other text
  const other = "def f(x):\n    return x  #!\n";
  const stale = explainGhost({ requests, finalText: other, shown: "def f(x):\n    return x  #! done\n", until });
  assert.equal(stale.verdict, "stale");
  assert.equal(stale.newest.inserted, " done");
  // an answer that came after the screen was read explains nothing
  assert.equal(explainGhost({ requests, finalText: FINAL, shown: WITH_GHOST, until: T0 + 300 }).verdict, "stale");
});

test("the displayed document puts the drawn lines in place of the cursor's line", () => {
  assert.equal(displayedDoc(FINAL, 1, ["    return x  # done"]), WITH_GHOST);
  assert.equal(displayedDoc("a\nb(\nc", 1, ["b(x,", "  y)"]), "a\nb(x,\n  y)\nc");
});

test("Tab must give what was shown, and what an answer computed", () => {
  const { requests } = replayed();
  const until = T0 + 1000;
  const at = FINAL.indexOf("#") + 1;
  const good = checkAccept({ requests, before: FINAL, after: WITH_GHOST, shown: WITH_GHOST, until, at });
  assert.deepEqual([good.inserted, good.asShown, good.computed, good.failures], [" done", true, true, []]);
  const indent = "def f(x):\n    return x  #    \n";
  const bad = checkAccept({ requests, before: FINAL, after: indent, shown: WITH_GHOST, until, at });
  assert.equal(bad.asShown, false);
  assert.equal(bad.computed, false);
  assert.equal(bad.failures.length, 2);
});

test("the last request for the final text says why no ghost text came", () => {
  const { requests } = replayed();
  const { records } = replayed();
  assert.deepEqual(finalRequest(requests, FINAL, T0 + 1000, records),
    { id: 8, outcome: "answered 1 item", ms: 248, serverErrors: ["InvalidStateError"] });
  assert.deepEqual(finalRequest(requests, FINAL, T0 + 160, records),
    { id: 8, outcome: "not answered", ms: null, serverErrors: [] });
  assert.equal(finalRequest(requests, "other", T0 + 1000, records), null);
});

test("latency runs from the last key to the final ghost text's appearance", () => {
  const changes = [{ t: 100, ghost: "a" }, { t: 900, ghost: "" }, { t: 1400, ghost: " done" }];
  assert.equal(ghostLatency(changes, 1000, 5000, " done"), 400);
  assert.equal(ghostLatency(changes, 1000, 1200, " done"), null);
  assert.equal(ghostLatency(changes, 1000, 5000, ""), null);
  assert.equal(ghostLatency([{ t: 900, ghost: "x" }], 1000, 5000, "x"), 0);
  assert.equal(percentile([5, 1, 3, 2, 4], 50), 3);
  assert.equal(percentile([1, 2, 3, 4, 100], 95), 100);
  assert.equal(percentile([], 50), null);
});

test("the must-hold checks fail on errors, stale ghost text, bad Tabs and a surviving server", () => {
  const { records } = replayed();
  const burst = (over) => ({ name: "b", verdict: "fresh", accept: null, failures: [], ...over });
  const checks = mustHold({
    records,
    bursts: [burst({ verdict: "stale" }), burst({ accept: { pressed: true, inserted: "x", asShown: false, computed: false } })],
    serverExit: { pids: [42], exitedMs: null, waitedMs: 10_000 },
  });
  assert.deepEqual(checks.map((c) => c.ok), [false, false, false, false, false]);
  const clean = mustHold({ records: [], bursts: [burst({})], serverExit: { pids: [42], exitedMs: 300, waitedMs: 10_000 } });
  assert.deepEqual(clean.map((c) => c.ok), [true, true, true, true, true]);
});
