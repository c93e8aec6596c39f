// Reads the extension's "speclsp" output channel as code-server writes it to disk
// (user-data/logs/<session>/exthost*/speclsp.speclsp/speclsp.log). With the channel at log level
// Trace and `speclsp.trace.server: "verbose"`, vscode-languageclient writes every LSP message there,
// so the run can be replayed: the document VS Code had at each request, and what came back.

import { applyChange } from "./textdoc.mjs";

const RECORD_START = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{3}) \[(\w+)\] ?/;

/**
 * The log as records: `{t, level, text}`, `t` in epoch ms. A record's text runs over the lines
 * that follow it until the next time stamp (traced messages are multi-line JSON). The time stamps
 * are local time, as is `new Date(y, m, d, ...)`: the harness and code-server share the clock and TZ.
 */
export function parseLog(content) {
  const records = [];
  for (const line of content.split("\n")) {
    const m = RECORD_START.exec(line);
    if (m) {
      const [, y, mo, d, h, mi, s, ms, level] = m;
      const t = new Date(+y, +mo - 1, +d, +h, +mi, +s, +ms).getTime();
      records.push({ t, level, text: line.slice(m[0].length) });
    } else if (records.length > 0) {
      records[records.length - 1].text += `\n${line}`;
    }
  }
  for (const r of records) r.text = r.text.replace(/\n+$/, "");
  return records;
}

const HEADS = [
  [/^Sending request '(.+) - \((\d+)\)'\./, "request"],
  [/^Received response '(.+) - \((\d+)\)' in (\d+)ms\.(?: Request failed: (.*) \((-?\d+)\)\.)?/, "response"],
  [/^Sending notification '([^']+)'\./, "notification"],
  [/^Received notification '([^']+)'\./, "server-notification"],
  [/^Received request '(.+) - \((\d+)\)'\./, "server-request"],
];

/** The JSON after "Params: " or "Result: " in a traced message, or undefined. */
function payload(text) {
  const m = /\n(Params|Result): ([\s\S]*)$/.exec(text);
  if (!m) return undefined;
  try {
    return JSON.parse(m[2]);
  } catch {
    return undefined;
  }
}

/** One traced LSP message as `{t, kind, method, id?, data?, ms?, error?}`; null for other records. */
export function messageOf(record) {
  if (record.level !== "trace") return null;
  const head = record.text.split("\n", 1)[0];
  for (const [re, kind] of HEADS) {
    const m = re.exec(head);
    if (!m) continue;
    const msg = { t: record.t, kind, method: m[1], data: payload(record.text) };
    if (kind === "request" || kind === "server-request") msg.id = Number(m[2]);
    if (kind === "response") {
      msg.id = Number(m[2]);
      msg.ms = Number(m[3]);
      if (m[5] !== undefined) msg.error = { message: m[4], code: Number(m[5]) };
    }
    return msg;
  }
  return null;
}

/** JSON-RPC codes that are the protocol working, not failing: cancelled, content modified. */
export const ROUTINE_ERROR_CODES = new Set([-32800, -32801]);

/**
 * Replays the traced messages for one document. Returns
 * - `versions`: `[{t, text}]`, the document after didOpen and after each didChange, in order;
 * - `requests`: every request to the server, `{id, method, t, params, text (the document when it
 *   was sent), cancelledAt?, response?: {t, ms, result, error}}`, in order.
 */
export function replay(messages, uri) {
  const versions = [];
  const requests = [];
  const byId = new Map();
  let text = null;
  for (const msg of messages) {
    const params = msg.data;
    if (msg.kind === "notification" && params?.textDocument?.uri === uri) {
      if (msg.method === "textDocument/didOpen") text = params.textDocument.text;
      else if (msg.method === "textDocument/didChange" && text !== null) {
        for (const change of params.contentChanges) text = applyChange(text, change);
      } else continue;
      versions.push({ t: msg.t, text });
    } else if (msg.kind === "notification" && msg.method === "$/cancelRequest") {
      const req = byId.get(params?.id);
      if (req) req.cancelledAt = msg.t;
    } else if (msg.kind === "request") {
      const onDoc = params?.textDocument?.uri === uri;
      const req = { id: msg.id, method: msg.method, t: msg.t, params, text: onDoc ? text : null };
      requests.push(req);
      byId.set(msg.id, req);
    } else if (msg.kind === "response") {
      const req = byId.get(msg.id);
      if (req) req.response = { t: msg.t, ms: msg.ms, result: msg.data, error: msg.error };
    }
  }
  return { versions, requests };
}

/** The document as it was at time `t` (after every change logged at or before `t`). */
export function textAt(versions, t) {
  let text = null;
  for (const v of versions) {
    if (v.t > t) break;
    text = v.text;
  }
  return text;
}

/**
 * What a person reading the output channel would call an error: every `[error]` record and
 * any record holding a Python traceback, except the traced protocol messages themselves
 * (their JSON may quote error strings, e.g. in `speclsp.stats`).
 */
export function errorRecords(records) {
  return records.filter((r) => r.level === "error"
    || (r.level !== "trace" && /Traceback \(most recent call last\)/.test(r.text)));
}

/** Records whose text starts a Python traceback, counted once per traceback. */
export const isTraceback = (r) => /Traceback \(most recent call last\)/.test(r.text);
