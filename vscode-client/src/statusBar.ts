// The status bar item: fed by `speclsp/status` notifications and by `speclsp.stats`,
// fetched shortly after each inline completion request.

import * as vscode from "vscode";
import { ExecuteCommandRequest, type LanguageClient } from "vscode-languageclient/node";
import { config } from "./client";
import { isLanguageEnabled } from "./settings";
import { renderStatus, summarizeStats, type StatusParams, type StatusView } from "./status";

/** Wait this long after a request before asking for stats, so a burst of keystrokes costs one call. */
const STATS_DEBOUNCE_MS = 300;

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem("speclsp.status", vscode.StatusBarAlignment.Right, 100);
  private view: StatusView = { state: "starting", enabled: true };
  private client: LanguageClient | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly log: vscode.LogOutputChannel) {
    this.item.name = "speclsp";
    this.item.command = "speclsp.showLog";
    this.refresh();
    this.item.show();
  }

  /** Follow a (new) client: its status notifications and, for stats, its connection. */
  attach(client: LanguageClient): vscode.Disposable {
    this.client = client;
    this.view = { ...this.view, state: "starting", message: undefined, progress: undefined, stats: undefined };
    this.refresh();
    return client.onNotification("speclsp/status", (params: StatusParams) => {
      this.view = { ...this.view, state: params.state, message: params.message, progress: params.progress };
      this.refresh();
      if (params.state === "ready") {
        this.scheduleStats();
      }
    });
  }

  setState(state: StatusView["state"], message?: string): void {
    this.view = { ...this.view, state, message, progress: undefined };
    this.refresh();
  }

  /** Ask the server for `speclsp.stats` soon (debounced). */
  scheduleStats(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.fetchStats(), STATS_DEBOUNCE_MS);
  }

  private async fetchStats(): Promise<void> {
    const client = this.client;
    if (!client?.isRunning()) {
      return;
    }
    try {
      const result = await client.sendRequest(ExecuteCommandRequest.type, { command: "speclsp.stats", arguments: [] });
      if (client === this.client) {
        this.view = { ...this.view, stats: summarizeStats(result) ?? this.view.stats };
        this.refresh();
      }
    } catch (err) {
      this.log.debug(`speclsp.stats failed: ${String(err)}`);
    }
  }

  /** Re-render; also called when settings or the active editor change. */
  refresh(): void {
    const cfg = config();
    const languageId = vscode.window.activeTextEditor?.document.languageId;
    const enabled = cfg.get<boolean>("enable") !== false;
    const disabledLanguage =
      enabled && languageId !== undefined && !isLanguageEnabled(cfg, languageId) ? languageId : undefined;
    const r = renderStatus({ ...this.view, enabled, disabledLanguage });
    this.item.text = r.text;
    this.item.tooltip = r.tooltip;
    this.item.backgroundColor = r.error ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.item.dispose();
  }
}
