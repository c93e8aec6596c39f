// Pure functions that turn the `speclsp.*` configuration into what the server gets.
// No `vscode` import here, so `node --test` can exercise them without an editor.

/** The part of `vscode.WorkspaceConfiguration` these functions use (scoped to `speclsp`). */
export interface ConfigReader {
  get<T>(key: string): T | undefined;
}

/** Where a setting has a value: the scopes of `vscode.WorkspaceConfiguration.inspect` used here. */
export interface Inspection<T> {
  defaultValue?: T;
  globalValue?: T;
  workspaceValue?: T;
  workspaceFolderValue?: T;
}

/** A `ConfigReader` that can also tell a value the user set from the contributed default. */
export interface SettingsReader extends ConfigReader {
  inspect<T>(key: string): Inspection<T> | undefined;
}

/**
 * Sections of `speclsp.*` that are the client's own. Every other contributed setting is the
 * server's: package.json declares them (a Python test keeps them equal to the server's list), and
 * they are not repeated here; the server reports unknown keys, so the client's own stay here.
 */
export const CLIENT_SECTIONS: readonly string[] = ["server", "enable", "languages", "trace"];

/** The server's settings among package.json's `contributes.configuration.properties`. */
export function serverKeys(contributed: Record<string, unknown>): string[] {
  const prefix = "speclsp.";
  return Object.keys(contributed)
    .filter((name) => name.startsWith(prefix))
    .map((name) => name.slice(prefix.length))
    .filter((key) => !CLIENT_SECTIONS.includes(key.split(".")[0]));
}

/**
 * Settings the server reads only when it starts (`initialize`): changing one restarts it.
 * `completionFallback` decides the capabilities the server announces.
 */
export const RESTART_SECTIONS: readonly string[] = ["server", "completionFallback"];

/** Whether the user set `key` in user, workspace or folder settings, rather than leaving the default. */
export function isSet(cfg: SettingsReader, key: string): boolean {
  const where = cfg.inspect(key);
  return [where?.globalValue, where?.workspaceValue, where?.workspaceFolderValue].some((v) => v !== undefined);
}

/**
 * The flat camelCase object used both as `initializationOptions` and as the `speclsp` section
 * of `workspace/didChangeConfiguration`: only the settings the user set, so the server's own
 * defaults (and its command line flags) apply to the rest. The server merges a change into what
 * it has, so a setting in `before` (sent earlier) that the user has since removed is sent as its
 * contributed default. Values are the effective ones (`get`: in an untrusted workspace the
 * restricted settings come from user settings only), passed through unchecked: the server
 * validates them and tells the user about bad ones.
 */
export function serverSettings(
  cfg: SettingsReader,
  keys: readonly string[],
  before: Readonly<Record<string, unknown>> = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    if (isSet(cfg, key)) {
      out[key] = cfg.get(key);
    } else if (Object.prototype.hasOwnProperty.call(before, key)) {
      out[key] = cfg.inspect(key)?.defaultValue;
    }
  }
  return out;
}

/** What one server process was sent, so a change goes out once and only when it changes something. */
export class SentSettings {
  private last: Record<string, unknown> = {};

  constructor(private readonly keys: readonly string[]) {}

  /** For `initializationOptions`: a new server process starts from its own defaults. */
  atStart(cfg: SettingsReader): Record<string, unknown> {
    this.last = serverSettings(cfg, this.keys);
    return this.last;
  }

  /** For `workspace/didChangeConfiguration`; undefined when the server already has these values. */
  afterChange(cfg: SettingsReader): Record<string, unknown> | undefined {
    const next = serverSettings(cfg, this.keys, this.last);
    if (JSON.stringify(next) === JSON.stringify(this.last)) {
      return undefined;
    }
    this.last = next;
    return next;
  }
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
