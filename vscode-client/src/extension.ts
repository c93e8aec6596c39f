// Entry point: start the language client, keep the status bar current, register commands.

import * as vscode from "vscode";
import { State, type LanguageClient } from "vscode-languageclient/node";
import { config, createClient, SECTION } from "./client";
import { RESTART_SECTIONS, serverKeys } from "./settings";
import { StatusBar } from "./statusBar";

let client: LanguageClient | undefined;
let clientSubscriptions: vscode.Disposable[] = [];
let log: vscode.LogOutputChannel;
let status: StatusBar;
/** The server's settings, as package.json contributes them. */
let keys: string[] = [];
/** Start/stop/restart run one after another, so two clients never register the same server commands. */
let queue: Promise<void> = Promise.resolve();

const serialize = (job: () => Promise<void>): Promise<void> => (queue = queue.then(job, job));

async function start(): Promise<void> {
  try {
    const c = createClient(log, { onInlineRequest: () => status.scheduleStats() }, keys);
    client = c;
    clientSubscriptions = [
      status.attach(c),
      c.onDidChangeState((e) => {
        if (e.newState === State.Starting) {
          status.setState("starting"); // also after the library restarts a crashed server
        } else if (e.newState === State.Stopped) {
          status.setState("stopped", 'the server is not running; use "speclsp: Restart Server"');
        }
      }),
    ];
    await c.start();
  } catch (err) {
    // Typically the executable is missing: say what to configure.
    const reason = err instanceof Error ? err.message : String(err);
    const message = `could not start the server (${reason}); set speclsp.server.pythonPath or speclsp.server.command`;
    log.error(message);
    status.setState("error", message);
  }
}

async function stop(): Promise<void> {
  const c = client;
  client = undefined;
  clientSubscriptions.forEach((d) => d.dispose());
  clientSubscriptions = [];
  // dispose() stops the server and unregisters its commands; it rejects when the client
  // never got running (start failed), which needs no cleanup.
  await c?.dispose().catch((err: unknown) => log.debug(`dispose: ${String(err)}`));
}

const restart = (): Promise<void> => serialize(async () => {
  await stop();
  await start();
});

/** Flip `speclsp.enable` where it is set (workspace folder, workspace or user settings). */
async function toggleCompletions(): Promise<void> {
  const cfg = config();
  const info = cfg.inspect<boolean>("enable");
  const target =
    info?.workspaceFolderValue !== undefined
      ? vscode.ConfigurationTarget.WorkspaceFolder
      : info?.workspaceValue !== undefined
        ? vscode.ConfigurationTarget.Workspace
        : vscode.ConfigurationTarget.Global;
  const enabled = cfg.get<boolean>("enable") !== false;
  await cfg.update("enable", !enabled, target);
  vscode.window.setStatusBarMessage(`speclsp: completions ${enabled ? "off" : "on"}`, 3000);
}

export function activate(context: vscode.ExtensionContext): void {
  log = vscode.window.createOutputChannel("speclsp", { log: true });
  status = new StatusBar(log);
  keys = serverKeys(context.extension.packageJSON.contributes.configuration.properties);
  context.subscriptions.push(
    log,
    status,
    vscode.commands.registerCommand("speclsp.restartServer", restart),
    vscode.commands.registerCommand("speclsp.showLog", () => log.show(true)),
    vscode.commands.registerCommand("speclsp.toggleCompletions", toggleCompletions),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration(SECTION)) {
        return;
      }
      // Server settings are forwarded by the client (see createClient); a new server
      // command, or a setting read only at start, needs a new process.
      const changed = RESTART_SECTIONS.find((key) => e.affectsConfiguration(`${SECTION}.${key}`));
      if (changed !== undefined) {
        log.info(`speclsp.${changed} changed: restarting the server`);
        void restart();
      }
      status.refresh();
    }),
    vscode.window.onDidChangeActiveTextEditor(() => status.refresh()),
  );
  void serialize(start);
}

export function deactivate(): Promise<void> {
  return serialize(stop);
}
