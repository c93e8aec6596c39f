// Pure status-bar logic: what the `speclsp/status` notification and the `speclsp.stats`
// command result look like as status bar text. No `vscode` import (unit-tested with node).

/** Params of the server's `speclsp/status` notification. */
export interface StatusParams {
  state: "loading" | "ready" | "busy" | "error";
  message: string;
  /** 0-100, while loading. */
  progress?: number;
}

/** Client-side states on top of the server's: before the first notification, after a stop. */
export type State = StatusParams["state"] | "starting" | "stopped";

/** One entry of `speclsp.stats` → `requests` (only the fields used here). */
export interface RequestStats {
  latency_ms?: number;
  cancelled?: boolean;
  drafted_tokens?: number;
  accepted_tokens?: number;
}

export interface StatsSummary {
  /** Latency of the newest completed (not cancelled) request. */
  lastLatencyMs?: number;
  /** accepted / drafted tokens over the window; undefined when nothing was drafted. */
  acceptance?: number;
  accepted: number;
  drafted: number;
  /** How many requests the window held. */
  window: number;
}

/** Acceptance is averaged over this many recent requests: long enough to be stable, short enough to follow edits. */
export const STATS_WINDOW = 20;

const finite = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

/** Summarise a `speclsp.stats` result (`{requests: [...]}`, newest last); tolerant of odd shapes. */
export function summarizeStats(result: unknown, window = STATS_WINDOW): StatsSummary | undefined {
  const requests = (result as { requests?: unknown } | null | undefined)?.requests;
  if (!Array.isArray(requests)) {
    return undefined;
  }
  const recent = requests
    .slice(-window)
    .filter((r): r is RequestStats => r !== null && typeof r === "object");
  let accepted = 0;
  let drafted = 0;
  for (const r of recent) {
    // Cancelled requests count too: their drafted tokens were verified before the cancel.
    if (finite(r.drafted_tokens) && finite(r.accepted_tokens)) {
      drafted += r.drafted_tokens;
      accepted += r.accepted_tokens;
    }
  }
  const done = recent.filter((r) => !r.cancelled && finite(r.latency_ms));
  return {
    lastLatencyMs: done.length > 0 ? done[done.length - 1].latency_ms : undefined,
    acceptance: drafted > 0 ? accepted / drafted : undefined,
    accepted,
    drafted,
    window: recent.length,
  };
}

export interface StatusView {
  state: State;
  message?: string;
  progress?: number;
  stats?: StatsSummary;
  /** `speclsp.enable` */
  enabled: boolean;
  /** Set when the active editor's language is switched off in `speclsp.languages`. */
  disabledLanguage?: string;
}

export interface Rendered {
  text: string;
  tooltip: string;
  /** Show with the error background. */
  error: boolean;
}

const ICONS: Record<State, string> = {
  starting: "$(loading~spin)",
  loading: "$(loading~spin)",
  busy: "$(sync~spin)",
  ready: "$(check)",
  error: "$(error)",
  stopped: "$(debug-disconnect)",
};

function statsText(stats: StatsSummary | undefined): string {
  const parts: string[] = [];
  if (stats?.lastLatencyMs !== undefined) {
    parts.push(`${Math.round(stats.lastLatencyMs)} ms`);
  }
  if (stats?.acceptance !== undefined) {
    parts.push(`${Math.round(stats.acceptance * 100)}%`);
  }
  return parts.join(" · ");
}

/** The status bar item's text (with codicons) and tooltip for a state. */
export function renderStatus(v: StatusView): Rendered {
  const lines: string[] = [];
  let text = `${ICONS[v.state]} speclsp`;
  if (v.state === "loading" && finite(v.progress)) {
    text += ` ${Math.max(0, Math.min(100, Math.round(v.progress)))}%`;
  }
  // Keep the numbers while busy so the item does not change width on every keystroke.
  if (v.state === "ready" || v.state === "busy") {
    const s = statsText(v.stats);
    if (s) {
      text += ` ${s}`;
    }
  }
  if (!v.enabled || v.disabledLanguage !== undefined) {
    text = `$(circle-slash) speclsp${v.state === "error" ? " $(error)" : ""}`;
    lines.push(
      v.enabled
        ? `Inline completions are off for ${v.disabledLanguage} (speclsp.languages).`
        : "Inline completions are off (speclsp.enable).",
    );
  }
  lines.push(`Server: ${v.state}${v.message ? ` — ${v.message}` : ""}`);
  const st = v.stats;
  if (st?.lastLatencyMs !== undefined) {
    lines.push(`Last completion: ${Math.round(st.lastLatencyMs)} ms`);
  }
  if (st?.acceptance !== undefined) {
    lines.push(
      `Draft acceptance: ${Math.round(st.acceptance * 100)}% (${st.accepted}/${st.drafted} tokens over the last ${st.window} requests)`,
    );
  }
  lines.push("Click to show the log.");
  return { text, tooltip: lines.join("\n"), error: v.state === "error" };
}
