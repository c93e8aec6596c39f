import assert from "node:assert/strict";
import { test } from "node:test";
import { renderStatus, STATS_WINDOW, summarizeStats } from "../status";

const req = (latency_ms: number, drafted_tokens: number, accepted_tokens: number, cancelled = false) => ({
  uri: "file:///a.py",
  trigger: "automatic",
  cancelled,
  latency_ms,
  prompt_tokens: 100,
  reused_tokens: 90,
  prefill_tokens: 10,
  generated_tokens: 20,
  target_forwards: 5,
  drafted_tokens,
  accepted_tokens,
});

test("summary: newest completed latency and acceptance over the window", () => {
  const s = summarizeStats({ requests: [req(100, 10, 5), req(50, 10, 9), req(7, 4, 0, true)] });
  assert.deepEqual(s, { lastLatencyMs: 50, acceptance: 14 / 24, accepted: 14, drafted: 24, window: 3 });
});

test("summary: window keeps only recent requests", () => {
  const old = Array.from({ length: 30 }, () => req(10, 10, 0));
  const recent = Array.from({ length: STATS_WINDOW }, () => req(20, 10, 10));
  const s = summarizeStats({ requests: [...old, ...recent] });
  assert.equal(s?.acceptance, 1);
  assert.equal(s?.window, STATS_WINDOW);
});

test("summary: odd or empty results", () => {
  assert.equal(summarizeStats(undefined), undefined);
  assert.equal(summarizeStats(null), undefined);
  assert.equal(summarizeStats({}), undefined);
  assert.deepEqual(summarizeStats({ requests: [] }), { lastLatencyMs: undefined, acceptance: undefined, accepted: 0, drafted: 0, window: 0 });
  const s = summarizeStats({ requests: [null, 3, { latency_ms: "x" }, req(12, 0, 0)] });
  assert.equal(s?.lastLatencyMs, 12);
  assert.equal(s?.acceptance, undefined); // nothing drafted: no rate rather than 0%
});

test("render: loading shows progress, clamped", () => {
  assert.equal(renderStatus({ state: "loading", message: "target", progress: 41.6, enabled: true }).text, "$(loading~spin) speclsp 42%");
  assert.equal(renderStatus({ state: "loading", message: "", progress: 140, enabled: true }).text, "$(loading~spin) speclsp 100%");
  assert.equal(renderStatus({ state: "loading", message: "", enabled: true }).text, "$(loading~spin) speclsp");
});

test("render: ready and busy show latency and acceptance", () => {
  const stats = summarizeStats({ requests: [req(83.4, 10, 7)] });
  const ready = renderStatus({ state: "ready", message: "CodeLlama-7b", stats, enabled: true });
  assert.equal(ready.text, "$(check) speclsp 83 ms · 70%");
  assert.match(ready.tooltip, /Last completion: 83 ms/);
  assert.match(ready.tooltip, /Draft acceptance: 70% \(7\/10 tokens over the last 1 requests\)/);
  assert.match(ready.tooltip, /Server: ready — CodeLlama-7b/);
  assert.equal(ready.error, false);
  assert.equal(renderStatus({ state: "busy", message: "", stats, enabled: true }).text, "$(sync~spin) speclsp 83 ms · 70%");
  assert.equal(renderStatus({ state: "ready", message: "", enabled: true }).text, "$(check) speclsp");
});

test("render: error and disabled", () => {
  const err = renderStatus({ state: "error", message: "CUDA out of memory", enabled: true });
  assert.equal(err.text, "$(error) speclsp");
  assert.equal(err.error, true);
  assert.match(err.tooltip, /CUDA out of memory/);
  const off = renderStatus({ state: "ready", message: "", enabled: false });
  assert.equal(off.text, "$(circle-slash) speclsp");
  assert.match(off.tooltip, /speclsp\.enable/);
  const lang = renderStatus({ state: "ready", message: "", enabled: true, disabledLanguage: "markdown" });
  assert.match(lang.tooltip, /off for markdown/);
});
