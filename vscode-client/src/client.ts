// Builds the LanguageClient. Everything about completions lives in the server; the client
// only starts it, forwards settings, filters by language and reports status.

import * as os from "node:os";
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
} from "vscode-languageclient/node";
import { completionGate } from "./middleware";
import { SentSettings, serverCommand } from "./settings";

export const SECTION = "speclsp";

export const config = (): vscode.WorkspaceConfiguration => vscode.workspace.getConfiguration(SECTION);

export interface ClientHooks {
  /** Called after every inline completion request, answered or not. */
  onInlineRequest(): void;
}

/** `serverKeys`: the server's settings, from package.json (settings.serverKeys). */
export function createClient(log: vscode.LogOutputChannel, hooks: ClientHooks, serverKeys: readonly string[]): LanguageClient {
  const cfg = config();
  const { command, args } = serverCommand(cfg, {
    workspaceFolder: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
    userHome: os.homedir(),
  });
  log.info(`Starting server: ${[command, ...args].join(" ")}`);
  // The same executable for run and debug; stdio is the default transport for executables.
  const serverOptions: ServerOptions = { command, args };

  // What the server process has: initializationOptions first, then each forwarded change. Only
  // settings the user set are sent, so the server's defaults apply to the rest; a change of
  // client-only keys (enable, languages, ...) sends nothing.
  const sent = new SentSettings(serverKeys);

  const clientOptions: LanguageClientOptions = {
    // All files and unsaved buffers; per-language enablement is applied in the middleware
    // below (not here) so that toggling it needs no restart.
    documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
    initializationOptions: () => sent.atStart(config()),
    // Lets the library watch `speclsp.*`; the middleware sends the filtered section instead
    // of the whole one, because the server reports keys it does not know.
    synchronize: { configurationSection: SECTION },
    outputChannel: log,
    traceOutputChannel: log,
    middleware: {
      workspace: {
        didChangeConfiguration: async () => {
          const settings = sent.afterChange(config());
          if (settings === undefined) {
            return;
          }
          await client.sendNotification(DidChangeConfigurationNotification.type, {
            settings: { [SECTION]: settings },
          });
        },
      },
      ...completionGate(config, hooks.onInlineRequest),
    },
  };

  // Inline items carry `command: speclsp.accepted`; the library's ExecuteCommandFeature
  // registers every command the server lists in `executeCommandProvider` as a VS Code
  // command that forwards to the server, so no client-side command of that name exists.
  const client = new LanguageClient(SECTION, "speclsp", serverOptions, clientOptions);
  return client;
}
