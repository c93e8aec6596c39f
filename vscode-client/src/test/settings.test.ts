import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import {
  type ConfigReader,
  expandVariables,
  isLanguageEnabled,
  RESTART_SECTIONS,
  SentSettings,
  serverCommand,
  serverKeys,
  serverSettings,
  type SettingsReader,
} from "../settings";

/** A `speclsp` configuration section from a plain object with dotted keys, like VS Code's. */
const cfg = (values: Record<string, unknown>): ConfigReader => ({
  get: <T>(key: string) => values[key] as T | undefined,
});

// out/test/*.js → the extension's package.json
const CONTRIBUTED = JSON.parse(readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8")).contributes
  .configuration.properties as Record<string, { default: unknown }>;
const KEYS = serverKeys(CONTRIBUTED);
const DEFAULTS = Object.fromEntries(Object.entries(CONTRIBUTED).map(([name, p]) => [name.slice(8), p.default]));

type Scope = Record<string, unknown>;

/** VS Code's configuration over package.json's defaults and the user's scopes (folder wins, then workspace). */
function layered(user: Scope, workspace: Scope = {}, folder: Scope = {}): SettingsReader {
  return {
    get: <T>(key: string) => (folder[key] ?? workspace[key] ?? user[key] ?? DEFAULTS[key]) as T | undefined,
    inspect: <T>(key: string) => ({
      defaultValue: DEFAULTS[key] as T,
      globalValue: user[key] as T | undefined,
      workspaceValue: workspace[key] as T | undefined,
      workspaceFolderValue: folder[key] as T | undefined,
    }),
  };
}

test("the server's settings are the contributed ones outside the client's sections", () => {
  assert.ok(KEYS.includes("timeBudgetMs") && KEYS.includes("maxDocumentChars") && KEYS.includes("cacheBudgetMB"));
  assert.deepEqual(KEYS.filter((k) => /^(server|enable|languages|trace)\b/.test(k)), []);
  assert.equal(KEYS.length, Object.keys(CONTRIBUTED).length - 5); // enable, languages, server.*, trace.server
  assert.deepEqual(serverKeys({ "speclsp.maxTokens": {}, "speclsp.server.command": {}, "other.x": {} }), ["maxTokens"]);
});

test("client settings are contributed with their defaults", () => {
  for (const key of ["server.command", "server.pythonPath", "enable", "languages"]) {
    assert.ok(CONTRIBUTED[`speclsp.${key}`], `speclsp.${key} is contributed`);
  }
  assert.deepEqual(CONTRIBUTED["speclsp.server.command"].default, ["speclsp", "serve"]);
  assert.deepEqual(CONTRIBUTED["speclsp.languages"].default, { "*": true });
});

test("nothing set: nothing sent, so the server's own defaults apply", () => {
  assert.deepEqual(serverSettings(layered({}), KEYS), {});
  assert.deepEqual(new SentSettings(KEYS).atStart(layered({})), {});
});

test("only the settings the user set are sent, with their effective values", () => {
  const s = serverSettings(
    layered(
      {
        target: "/models/codellama",
        maxTokens: 128,
        temperature: 0, // set, though equal to the default: still the user's choice
        enable: false,
        languages: { "*": false },
        "server.command": ["x"],
        "server.pythonPath": "/usr/bin/python3",
        "trace.server": "verbose",
      },
      { maxTokens: 32, timeBudgetMs: 500 },
      { maxTokens: 16 },
    ),
    KEYS,
  );
  assert.deepEqual(s, { target: "/models/codellama", maxTokens: 16, temperature: 0, timeBudgetMs: 500 });
});

test("a change is sent once; a removed setting goes back to its default", () => {
  const sent = new SentSettings(KEYS);
  assert.deepEqual(sent.atStart(layered({ maxTokens: 32 })), { maxTokens: 32 });
  assert.equal(sent.afterChange(layered({ maxTokens: 32, enable: false })), undefined); // client-only
  assert.deepEqual(sent.afterChange(layered({ maxTokens: 32, draftLength: 4 })), { maxTokens: 32, draftLength: 4 });
  assert.deepEqual(sent.afterChange(layered({ draftLength: 4 })), { maxTokens: 64, draftLength: 4 });
  assert.equal(sent.afterChange(layered({ draftLength: 4 })), undefined);
  // a restarted server starts from its own defaults again
  assert.deepEqual(sent.atStart(layered({ draftLength: 4 })), { draftLength: 4 });
});

test("server command: default, custom, python", () => {
  assert.deepEqual(serverCommand(cfg({})), { command: "speclsp", args: ["serve"] });
  assert.deepEqual(serverCommand(cfg({ "server.command": ["/opt/bin/speclsp", "serve", "--log", "debug"] })), {
    command: "/opt/bin/speclsp",
    args: ["serve", "--log", "debug"],
  });
  assert.deepEqual(serverCommand(cfg({ "server.command": [], "server.pythonPath": "  " })), {
    command: "speclsp",
    args: ["serve"],
  });
  assert.deepEqual(serverCommand(cfg({ "server.command": ["my", "cmd"], "server.pythonPath": "/venv/bin/python" })), {
    command: "/venv/bin/python",
    args: ["-m", "lsp_server", "serve"],
  });
});

test("server command expands ${workspaceFolder}, ${userHome} and ~", () => {
  const vars = { workspaceFolder: "/w", userHome: "/home/u" };
  assert.equal(
    serverCommand(cfg({ "server.pythonPath": "${workspaceFolder}/.venv/bin/python" }), vars).command,
    "/w/.venv/bin/python",
  );
  assert.equal(serverCommand(cfg({ "server.command": ["~/bin/speclsp", "serve"] }), vars).command, "/home/u/bin/speclsp");
  assert.equal(expandVariables("${userHome}/x", vars), "/home/u/x");
  assert.equal(expandVariables("a~b", vars), "a~b");
  assert.equal(expandVariables("${workspaceFolder}", {}), "${workspaceFolder}");
  assert.equal(expandVariables("~", { userHome: "C:\\$&" }), "C:\\$&");
});

test("language enablement: master switch, per language, wildcard", () => {
  assert.equal(isLanguageEnabled(cfg({}), "python"), true);
  assert.equal(isLanguageEnabled(cfg({ enable: true, languages: { "*": true } }), "python"), true);
  assert.equal(isLanguageEnabled(cfg({ enable: false, languages: { python: true } }), "python"), false);
  const langs = cfg({ languages: { "*": false, python: true, markdown: false } });
  assert.equal(isLanguageEnabled(langs, "python"), true);
  assert.equal(isLanguageEnabled(langs, "rust"), false);
  assert.equal(isLanguageEnabled(cfg({ languages: { markdown: false } }), "markdown"), false);
  assert.equal(isLanguageEnabled(cfg({ languages: { markdown: false } }), "go"), true);
  assert.equal(isLanguageEnabled(cfg({ languages: { go: "yes" } }), "go"), true);
  assert.equal(isLanguageEnabled(cfg({ languages: { toString: false } }), "constructor"), true);
});

test("settings read only at start restart the server", () => {
  assert.ok(RESTART_SECTIONS.includes("server"));
  assert.ok(RESTART_SECTIONS.includes("completionFallback"));
  assert.ok(KEYS.includes("completionFallback"));
});
