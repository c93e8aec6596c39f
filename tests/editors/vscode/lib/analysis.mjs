// Turns what the harness saw (screen readings, times) and the replayed trace into per-burst
// results and the run's checks. Pure: no browser, no files.

import { diff, itemsOf, offsetAt } from "./textdoc.mjs";
import { errorRecords, isTraceback, ROUTINE_ERROR_CODES, textAt } from "./trace.mjs";
import { checkAccept, displayedDoc, explainGhost, ghostLatency, INLINE, percentile } from "./verdict.mjs";

const COMPLETION = "textDocument/completion";
const EXCEPTION_LINE = /^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b/;

/** Request counts of a time window: how VS Code and the server spent it. */
export function requestCounts(requests, from, to) {
  const inWindow = requests.filter((r) => r.t >= from && r.t < to);
  const count = (method) => {
    const rs = inWindow.filter((r) => r.method === method);
    return {
      sent: rs.length,
      cancelled: rs.filter((r) => r.cancelledAt !== undefined).length,
      failed: rs.filter((r) => r.response?.error && !ROUTINE_ERROR_CODES.has(r.response.error.code)).length,
      answeredEmpty: rs.filter((r) => r.response && !r.response.error && itemsOf(r.response.result).length === 0).length,
      answered: rs.filter((r) => r.response && !r.response.error && itemsOf(r.response.result).length > 0).length,
      unanswered: rs.filter((r) => !r.response).length,
    };
  };
  return { inline: count(INLINE), completion: count(COMPLETION) };
}

/** Error records of a time window, and how many of them start a traceback. */
export function errorCounts(records, from, to) {
  const errors = errorRecords(records).filter((r) => r.t >= from && r.t < to);
  return { lines: errors.length, tracebacks: errors.filter(isTraceback).length };
}

/** What the document looked like on screen at `screen`'s reading, from the document text `text`. */
function shownDoc(text, screen) {
  return screen.ghost ? displayedDoc(text, screen.cursor.line, screen.block) : text;
}

/**
 * A screen reading must agree with the replayed document (same cursor line text), or the harness
 * misread one of them: that is the harness's fault, not the server's, and is reported apart.
 */
function readingProblem(text, screen, when) {
  if (text === null) return `${when}: no document in the trace`;
  if (!screen.cursor || screen.block === null) return `${when}: could not find the cursor's line on screen`;
  const line = text.split("\n")[screen.cursor.line];
  if (line !== screen.realLine) {
    return `${when}: the screen's line ${screen.cursor.line + 1} ${JSON.stringify(screen.realLine)} is not the `
      + `traced document's ${JSON.stringify(line)}`;
  }
  return null;
}

const cursorOffset = (text, screen) => offsetAt(text, { line: screen.cursor.line, character: screen.cursor.col });

/**
 * The newest request VS Code made for exactly the final text, and what became of it: when a
 * burst ends with no ghost text, this says whether the server answered empty, failed, or never
 * answered, and which exceptions the server logged while the request was open.
 */
export function finalRequest(requests, finalText, until, records) {
  const req = requests.filter((r) => r.method === INLINE && r.t <= until && r.text === finalText).at(-1);
  if (!req) return null;
  const res = req.response && req.response.t <= until ? req.response : null;
  let outcome;
  if (!res) outcome = req.cancelledAt ? "cancelled by VS Code, not answered" : "not answered";
  else if (res.error) {
    outcome = res.error.code === -32800 ? "cancelled by VS Code" : `failed: ${res.error.message} (${res.error.code})`;
  } else {
    const n = itemsOf(res.result).length;
    outcome = n === 0 ? "answered empty" : `answered ${n} item${n > 1 ? "s" : ""}`;
  }
  const open = errorRecords(records).filter((r) => r.t >= req.t && r.t <= (res?.t ?? until));
  const serverErrors = [...new Set(open.flatMap((r) => r.text.split("\n"))
    .map((line) => EXCEPTION_LINE.exec(line)?.[0].split(".").at(-1)).filter(Boolean))];
  return { id: req.id, outcome, ms: res?.ms ?? null, serverErrors };
}

/** One burst's result: what was shown for which text, what Tab did, requests, errors, failures. */
export function analyzeBurst(obs, { records, versions, requests }) {
  const finalText = textAt(versions, obs.settledAt);
  const harness = [];
  const problem = readingProblem(finalText, obs.screen, "after the burst");
  if (problem) harness.push(problem);
  const failures = [];
  let ghost = { verdict: "unknown" };
  let shownText = "";
  if (!problem) {
    shownText = diff(finalText, shownDoc(finalText, obs.screen), cursorOffset(finalText, obs.screen)).inserted;
    ghost = explainGhost({ requests, finalText, shown: shownDoc(finalText, obs.screen), until: obs.settledAt });
    if (ghost.verdict === "stale") {
      failures.push(`ghost text ${JSON.stringify(obs.screen.ghost)} was not computed for the text on screen`
        + (ghost.newest ? ` (newest answer, request ${ghost.newest.requestId}, inserts ${JSON.stringify(ghost.newest.inserted)})` : ""));
    }
  }
  const result = {
    name: obs.burst.name,
    msPerKey: obs.burst.msPerKey,
    measuredMsPerKey: obs.measuredMsPerKey,
    typed: obs.typed,
    line: obs.screen.cursor ? obs.screen.cursor.line + 1 : null,
    textBeforeCursor: finalText && obs.screen.cursor ? lineBefore(finalText, obs.screen.cursor) : null,
    ghost: shownText,
    verdict: ghost.verdict,
    finalRequest: finalText === null ? null : finalRequest(requests, finalText, obs.settledAt, records),
    ghostBeforeTypingOn: obs.ghostBeforeTypingOn,
    madeFor: ghost.requestId !== undefined ? { requestId: ghost.requestId, textBefore: ghost.forText } : null,
    latencyMs: ghostLatency(obs.changes, obs.lastKeyAt, obs.settledAt, obs.screen.ghost),
    settled: obs.settled,
    suggestList: obs.screen.suggestWidget,
    listsClosedForEnter: obs.closedLists,
    requests: requestCounts(requests, obs.startedAt, obs.endedAt),
    errors: errorCounts(records, obs.startedAt, obs.endedAt),
    accept: null,
    failures,
    harness,
  };
  if (obs.accept) result.accept = analyzeAccept(obs.accept, { versions, requests }, failures, harness);
  return result;
}

function analyzeAccept(acc, { versions, requests }, failures, harness) {
  if (!acc.pressed) return { pressed: false, why: acc.why };
  const before = textAt(versions, acc.pressedAt);
  const after = textAt(versions, acc.checkedAt);
  const problem = readingProblem(before, acc.screen, "before Tab");
  if (problem) {
    harness.push(problem);
    return { pressed: true, inserted: null };
  }
  const shown = shownDoc(before, acc.screen);
  const at = cursorOffset(before, acc.screen);
  const check = checkAccept({ requests, before, after, shown, until: acc.pressedAt, at });
  failures.push(...check.failures);
  return {
    pressed: true,
    shown: diff(before, shown, at).inserted,
    inserted: check.inserted,
    asShown: check.asShown,
    computed: check.computed,
  };
}

function lineBefore(text, cursor) {
  return (text.split("\n")[cursor.line] ?? "").slice(0, cursor.col);
}

/** Latency figures over the bursts that ended with ghost text. */
export function latencySummary(bursts) {
  const values = bursts.map((b) => b.latencyMs).filter((v) => v !== null);
  return { n: values.length, p50: percentile(values, 50), p95: percentile(values, 95), values };
}

const PYTHON_LOG_LINE = /^\d{4}-\d\d-\d\d [\d:,]+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ([\w.]+): (.*)$/;

/** A short, stable name for an error line: numbers, addresses and long tails blanked. */
function kindOf(text) {
  const line = text.split("\n")[0];
  const log = PYTHON_LOG_LINE.exec(line);
  // a log line's message up to its first bracket: "request {'id': 4, ...}" is one kind
  const name = log ? `stderr ${log[1]} ${log[2]}: ${log[3].replace(/\s*[{([].*$/, " …").slice(0, 80)}` : line;
  return name.replace(/0x[0-9a-f]+/gi, "\u0000").replace(/\d+([.,:]\d+)*/g, "N").replace(/\u0000/g, "0x…")
    .slice(0, 150) || "(empty line)";
}

/**
 * The output channel's errors grouped, most frequent first: a traceback counts once, under its
 * exception line (the frames above it are the same every time); every other line under its kind.
 */
export function errorKinds(records, top = 10) {
  const counts = new Map();
  const add = (key) => counts.set(key, (counts.get(key) ?? 0) + 1);
  let inTraceback = false;
  for (const line of errorRecords(records).flatMap((r) => r.text.split("\n"))) {
    if (/^Traceback \(most recent call last\)/.test(line)) {
      if (inTraceback) add("traceback → (no exception line)");
      inTraceback = true;
    } else if (inTraceback && EXCEPTION_LINE.test(line)) {
      add(`traceback → ${kindOf(line)}`);
      inTraceback = false;
    } else if (inTraceback && PYTHON_LOG_LINE.test(line)) {
      add("traceback → (no exception line)");
      inTraceback = false;
      add(kindOf(line));
    } else if (!inTraceback) {
      add(kindOf(line));
    }
  }
  if (inTraceback) add("traceback → (no exception line)");
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([text, n]) => ({ n, text }));
}

/** The run's must-hold checks, each `{name, ok, detail}`. */
export function mustHold({ bursts, records, serverExit }) {
  const errors = errorRecords(records);
  const tracebacks = errors.filter(isTraceback).length;
  const verdicts = (v) => bursts.filter((b) => b.verdict === v).length;
  const stale = bursts.filter((b) => b.verdict === "stale");
  const accepted = bursts.filter((b) => b.accept?.pressed && b.accept.inserted !== null);
  const notAsShown = accepted.filter((b) => !b.accept.asShown);
  const notComputed = accepted.filter((b) => !b.accept.computed);
  const names = (bs) => (bs.length ? ` (${bs.map((b) => b.name).join("; ")})` : "");
  return [
    {
      name: "no error or traceback in the output channel",
      ok: errors.length === 0,
      detail: `${errors.length} error lines, ${tracebacks} tracebacks`,
    },
    {
      name: "every burst ends with ghost text made for the final text, or none",
      ok: stale.length === 0,
      detail: `fresh ${verdicts("fresh")}, typed-through ${verdicts("typed-through")}, none ${verdicts("none")}, `
        + `stale ${stale.length}${names(stale)}`,
    },
    {
      name: "Tab never inserts text computed for other text",
      ok: notComputed.length === 0,
      detail: `${accepted.length - notComputed.length} of ${accepted.length} Tabs inserted an answer's text${names(notComputed)}`,
    },
    {
      name: "the buffer after accepting equals prefix + shown suggestion + suffix",
      ok: notAsShown.length === 0,
      detail: `${accepted.length - notAsShown.length} of ${accepted.length} as shown${names(notAsShown)}`,
    },
    {
      name: "the server exits after the editor closes",
      ok: serverExit.pids.length > 0 && serverExit.exitedMs !== null,
      detail: serverExit.pids.length === 0 ? "no server process was found to watch"
        : serverExit.exitedMs !== null
        ? `exited ${serverExit.exitedMs} ms after code-server was stopped`
        : `still running ${serverExit.waitedMs / 1000} s after code-server was stopped (pids ${serverExit.pids.join(", ")})`,
    },
  ];
}
