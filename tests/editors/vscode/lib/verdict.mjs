// The harness's judgements, as pure functions of what it read from the screen and replayed from
// the trace, so they can be tested without an editor (test/verdict.test.mjs).

import { applyItem, diff, itemsOf } from "./textdoc.mjs";

export const INLINE = "textDocument/inlineCompletion";

/**
 * The document as the person sees it: `text` with its line `line` (0-based) replaced by the lines
 * VS Code draws there while it shows ghost text (the cursor's line with the ghost text in it, then
 * the extra lines of a multi-line suggestion, the rest of the cursor's line at the end of the last).
 */
export function displayedDoc(text, line, block) {
  const lines = text.split("\n");
  return [...lines.slice(0, line), ...block, ...lines.slice(line + 1)].join("\n");
}

/** Every (request, item) answered before `until`, each with the document that accepting it gives. */
export function answers(requests, until) {
  const out = [];
  for (const req of requests) {
    if (req.method !== INLINE || req.text === null || !req.response || req.response.t > until) continue;
    for (const item of itemsOf(req.response.result)) {
      out.push({ req, item, accepted: applyItem(req.text, req.params.position, item) });
    }
  }
  return out;
}

/** The last characters of the text before `position`, to say briefly which text a request was for. */
export function textBefore(text, position, chars = 40) {
  const lines = text.split("\n");
  const before = [...lines.slice(0, position.line), lines[position.line].slice(0, position.character)].join("\n");
  return before.slice(-chars);
}

/**
 * Which answer the ghost text on screen came from. `shown` is the displayed document (see
 * `displayedDoc`), `finalText` the document itself. Verdicts:
 * - `none`: no ghost text;
 * - `fresh`: an answer to a request made for exactly this text;
 * - `typed-through`: an answer for an earlier text that the person typed on into (VS Code keeps
 *   showing the rest of it): still text computed for what is on screen;
 * - `stale`: no answer gives what is on screen: text computed for other text.
 */
export function explainGhost({ requests, finalText, shown, until }) {
  if (shown === finalText) return { verdict: "none" };
  const all = answers(requests, until);
  const matches = all.filter((a) => a.accepted === shown);
  if (matches.length === 0) {
    // For the report: what the newest answer would have inserted, next to what was shown.
    const newest = all.at(-1);
    return { verdict: "stale", newest: newest && { requestId: newest.req.id, inserted: diff(newest.req.text, newest.accepted).inserted } };
  }
  const fresh = matches.filter((a) => a.req.text === finalText);
  const best = (fresh.length > 0 ? fresh : matches).at(-1);
  return {
    verdict: fresh.length > 0 ? "fresh" : "typed-through",
    requestId: best.req.id,
    forText: textBefore(best.req.text, best.req.params.position),
    item: best.item,
  };
}

/**
 * Tab's effect: `before` and `after` are the document just before and after it, `shown` the
 * displayed document just before it, `at` the cursor's offset. Tab must give exactly what was on
 * screen (prefix + shown suggestion + suffix), and that must be what some answer computed.
 */
export function checkAccept({ requests, before, after, shown, until, at }) {
  const { inserted, removed } = diff(before, after, at);
  const asShown = after === shown;
  const computed = after === before || answers(requests, until).some((a) => a.accepted === after);
  const failures = [];
  if (!asShown) {
    const want = diff(before, shown, at);
    failures.push(`Tab inserted ${JSON.stringify(inserted)}${removed ? ` over ${JSON.stringify(removed)}` : ""}`
      + ` but the screen showed ${JSON.stringify(want.inserted)}: the buffer is not prefix + shown suggestion + suffix`);
  }
  if (!computed) failures.push(`Tab inserted ${JSON.stringify(inserted)}, which no answer computed for this text`);
  return { inserted, removed, asShown, computed, failures };
}

/** The p-th percentile (0-100) of `values` by nearest rank; null for none. */
export function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

/**
 * Last key to ghost text: when the ghost text the burst ended with first appeared in its final
 * form, after the last key. `changes` are the page's `{t, ghost}` records, in time order.
 */
export function ghostLatency(changes, lastKeyAt, settledAt, finalGhost) {
  if (!finalGhost) return null;
  const seen = changes.filter((c) => c.t <= settledAt);
  const last = seen.at(-1);
  if (!last || last.ghost !== finalGhost) return null;
  return Math.max(0, last.t - lastKeyAt);
}
