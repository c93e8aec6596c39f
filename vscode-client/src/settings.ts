// Pure functions that turn the `speclsp.*` configuration into what the server gets.
// No `vscode` import here, so `node --test` can exercise them without an editor.

/** The part of `vscode.WorkspaceConfiguration` these functions use (scoped to `speclsp`). */
export interface ConfigReader {
  get<T>(key: string): T | undefined;
}

/**
 * Server-side settings and their defaults; must match package.json and the server's
 * `lsp_server/config.py`. Only these keys are sent: the server reports unknown keys,
 * so the client-only ones (`server.*`, `enable`, `languages`, `trace.*`) stay here.
 */
export const SERVER_DEFAULTS = {
  target: "",
  draft: "",
  device: "auto",
  dtype: "auto",
  maxTokens: 64,
  temperature: 0,
  contextTokens: 2048,
  fimOrder: "spm",
  speculative: true,
  draftLength: 6,
  prefixCache: true,
  cacheBudgetMB: 2048,
  timeBudgetMs: 2000,
  maxDocumentChars: 2_000_000,
  completionFallback: "auto",
};

/**
 * Settings the server reads only when it starts (`initialize`): changing one restarts it.
 * `completionFallback` decides the capabilities the server announces.
 */
export const RESTART_SECTIONS: readonly string[] = ["server", "completionFallback"];

export type ServerSettings = { [K in keyof typeof SERVER_DEFAULTS]: (typeof SERVER_DEFAULTS)[K] };
export const SERVER_KEYS = Object.keys(SERVER_DEFAULTS) as (keyof ServerSettings)[];

/**
 * The flat camelCase object used both as `initializationOptions` and as the `speclsp`
 * section of `workspace/didChangeConfiguration`. Values are passed through unchecked:
 * the server validates them and tells the user about bad ones.
 */
export function serverSettings(cfg: ConfigReader): ServerSettings {
  const out: Record<string, unknown> = {};
  for (const key of SERVER_KEYS) {
    out[key] = cfg.get(key) ?? SERVER_DEFAULTS[key];
  }
  return out as ServerSettings;
}

export const DEFAULT_COMMAND: readonly string[] = ["speclsp", "serve"];

export interface ServerCommand {
  command: string;
  args: string[];
}

/** Values for `${workspaceFolder}`, `${userHome}` and a leading `~` in the server command. */
export interface PathVariables {
  workspaceFolder?: string;
  userHome?: string;
}

export function expandVariables(value: string, vars: PathVariables): string {
  let out = value;
  if (vars.userHome !== undefined) {
    const home = vars.userHome;
    out = out.replace(/^~(?=$|[\\/])/, () => home).split("${userHome}").join(home);
  }
  if (vars.workspaceFolder !== undefined) {
    out = out.split("${workspaceFolder}").join(vars.workspaceFolder);
  }
  return out;
}

/**
 * How to start the server on stdio: `<pythonPath> -m lsp_server serve` when a Python
 * interpreter is configured (e.g. a project's virtual environment), else
 * `speclsp.server.command` (default `speclsp serve`, the console script on PATH).
 */
export function serverCommand(cfg: ConfigReader, vars: PathVariables = {}): ServerCommand {
  const python = cfg.get<string>("server.pythonPath");
  if (typeof python === "string" && python.trim() !== "") {
    return { command: expandVariables(python.trim(), vars), args: ["-m", "lsp_server", "serve"] };
  }
  const raw = cfg.get<unknown>("server.command");
  const parts = Array.isArray(raw) ? raw.filter((p): p is string => typeof p === "string") : [];
  const argv = parts.length > 0 && parts[0].trim() !== "" ? parts : [...DEFAULT_COMMAND];
  const [command, ...args] = argv.map((p) => expandVariables(p, vars));
  return { command: command.trim(), args };
}

/**
 * Whether completions are wanted for a language: `speclsp.enable` is the master switch;
 * then `speclsp.languages[languageId]`, then `speclsp.languages["*"]`, then on.
 */
export function isLanguageEnabled(cfg: ConfigReader, languageId: string): boolean {
  if (cfg.get<boolean>("enable") === false) {
    return false;
  }
  const languages = cfg.get<Record<string, unknown>>("languages");
  if (languages !== null && typeof languages === "object") {
    for (const key of [languageId, "*"]) {
      const value = Object.prototype.hasOwnProperty.call(languages, key) ? languages[key] : undefined;
      if (typeof value === "boolean") {
        return value;
      }
    }
  }
  return true;
}
