// The run's log as a person reads it: the set-up, one block per burst, the must-hold checks with
// PASS/FAIL, then the figures that are reported but not asserted.

const q = (s) => JSON.stringify(s);
const clip = (s, n = 90) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
const tail = (s, n) => (s.length > n ? `…${s.slice(-(n - 1))}` : s);
const visible = (s) => s.replace(/\n/g, "⏎");

function requestsLine({ inline, completion }) {
  const part = (name, c) => `${name} ${c.sent} (answered ${c.answered}, empty ${c.answeredEmpty}, cancelled ${c.cancelled}`
    + `${c.failed ? `, FAILED ${c.failed}` : ""}${c.unanswered ? `, unanswered ${c.unanswered}` : ""})`;
  return `${part("inline", inline)}; ${part("completion", completion)}`;
}

function burstBlock(b, i) {
  const out = [];
  const speed = `${b.msPerKey} ms/key (measured ${b.measuredMsPerKey})`;
  out.push(`${String(i + 1).padStart(2)}. ${b.name} — ${speed}, cursor on line ${b.line ?? "?"}`);
  out.push(`    typed:    ${q(visible(b.typed))}`);
  if (b.textBeforeCursor !== null) out.push(`    at end:   ${q(tail(b.textBeforeCursor.trimStart(), 70))}|`);
  const shown = b.ghost ? q(clip(visible(b.ghost))) : "(no ghost text)";
  const madeFor = b.madeFor ? `, request ${b.madeFor.requestId} for ${q(tail(visible(b.madeFor.textBefore), 40))}` : "";
  const latency = b.latencyMs !== null ? `, ${b.latencyMs} ms after the last key` : "";
  out.push(`    ghost:    ${shown} — ${b.verdict.toUpperCase()}${madeFor}${latency}`);
  const fr = b.finalRequest;
  out.push(fr
    ? `    last ask: request ${fr.id} for the final text: ${fr.outcome}${fr.ms !== null ? ` (${fr.ms} ms)` : ""}`
      + (fr.serverErrors.length ? `; the server logged ${fr.serverErrors.join(", ")} meanwhile` : "")
    : "    last ask: VS Code sent no inline request for the final text");
  const notes = [];
  if (b.ghostBeforeTypingOn === false) notes.push("no ghost text appeared before typing on (waited 15 s)");
  if (!b.settled) notes.push("screen still changing when read");
  if (b.suggestList) notes.push("suggestion list open at the end");
  if (b.listsClosedForEnter) notes.push(`${b.listsClosedForEnter} suggestion list(s) closed with Escape before Enter`);
  if (notes.length) out.push(`    note:     ${notes.join("; ")}`);
  if (b.accept) {
    const a = b.accept;
    out.push(a.pressed
      ? `    Tab:      inserted ${q(clip(visible(a.inserted ?? "?")))}${a.asShown === false ? ` — NOT what was shown (${q(clip(visible(a.shown)))})` : ""}`
      : `    Tab:      not pressed (${a.why})`);
  }
  out.push(`    requests: ${requestsLine(b.requests)}`);
  out.push(`    output:   ${b.errors.lines} error lines, ${b.errors.tracebacks} tracebacks`);
  for (const f of b.failures) out.push(`    FAIL:     ${f}`);
  for (const h of b.harness) out.push(`    HARNESS:  ${h}`);
  return out.join("\n");
}

/** The whole log. `run` is the summary object that also goes to JSON. */
export function formatReport(run) {
  const lines = [
    "# VS Code typing run (make e2e-vscode: tests/editors/vscode/run.mjs)",
    `date:       ${run.date}`,
    `machine:    ${run.machine}`,
    `editor:     ${run.editor}, headless chromium ${run.browser} via playwright-core`,
    `extension:  ${run.extension}, installed with code-server --install-extension`,
    `server:     ${run.python} -m lsp_server serve, PYTHONPATH=${run.pythonPath}`,
    `models:     ${run.models}`,
    `settings:   VS Code defaults; user settings only ${run.settingsNote}`,
    `file:       ${run.file} (not the packaged sample), ${run.bursts.length} bursts, bottom of the file first`,
    `ready:      ${(run.readyMs / 1000).toFixed(1)} s after the page opened (status bar check mark)`,
    "",
    "## Bursts",
    "",
    ...run.bursts.map((b, i) => `${burstBlock(b, i)}\n`),
    "## Must hold (asserted)",
    "",
    ...run.checks.map((c) => `${c.ok ? "PASS" : "FAIL"}  ${c.name}: ${c.detail}`),
    "",
  ];
  if (run.errorKinds.length) {
    lines.push("Output channel errors, most frequent first (numbers blanked):");
    for (const e of run.errorKinds) lines.push(`  ${String(e.n).padStart(4)} × ${clip(e.text, 150)}`);
    lines.push("");
  }
  if (run.harness.length) {
    lines.push("## Harness problems (the run itself misread something; not a verdict on the server)", "");
    for (const h of run.harness) lines.push(`- ${h}`);
    lines.push("");
  }
  const l = run.latency;
  const totals = run.totals;
  lines.push(
    "## Reported, not asserted",
    "",
    `last key → ghost text: p50 ${l.p50 ?? "-"} ms, p95 ${l.p95 ?? "-"} ms over ${l.n} bursts that ended with ghost text`
      + (l.n ? ` (${l.values.join(", ")} ms)` : ""),
    `requests over the run: ${requestsLine(totals)}`,
    `notifications seen (toasts): ${run.toasts.length ? run.toasts.map((t) => q(clip(t, 100))).join("; ") : "none"}`,
    `server exit: ${run.serverExit.exitedMs !== null ? `${run.serverExit.exitedMs} ms after code-server got SIGTERM` : "did not exit"}`,
    `screenshots: ${run.screenshots.join(", ") || "none"}`,
    `run time:   ${(run.runMs / 1000).toFixed(0)} s`,
    "",
    `RESULT: ${run.result}`,
    "",
  );
  return lines.join("\n");
}
