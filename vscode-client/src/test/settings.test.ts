import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import {
  type ConfigReader,
  expandVariables,
  isLanguageEnabled,
  RESTART_SECTIONS,
  SERVER_DEFAULTS,
  SERVER_KEYS,
  serverCommand,
  serverSettings,
} from "../settings";

/** A `speclsp` configuration section from a plain object with dotted keys, like VS Code's. */
const cfg = (values: Record<string, unknown>): ConfigReader => ({
  get: <T>(key: string) => values[key] as T | undefined,
});

test("server settings default to the contributed defaults", () => {
  assert.deepEqual(serverSettings(cfg({})), SERVER_DEFAULTS);
});

test("server settings carry user values and only server keys", () => {
  const s = serverSettings(
    cfg({
      target: "/models/codellama",
      draft: "none",
      maxTokens: 128,
      temperature: 0.2,
      enable: false,
      languages: { "*": false },
      "server.command": ["x"],
      "server.pythonPath": "/usr/bin/python3",
      "trace.server": "verbose",
    }),
  );
  assert.equal(s.target, "/models/codellama");
  assert.equal(s.draft, "none");
  assert.equal(s.maxTokens, 128);
  assert.equal(s.temperature, 0.2);
  assert.equal(s.fimOrder, "spm");
  assert.deepEqual(Object.keys(s).sort(), [...SERVER_KEYS].sort());
});

test("server keys match package.json contributions", () => {
  // out/test/*.js → the extension's package.json
  const pkg = readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8");
  const props = JSON.parse(pkg).contributes.configuration.properties as Record<string, { default: unknown }>;
  for (const key of SERVER_KEYS) {
    assert.ok(props[`speclsp.${key}`], `speclsp.${key} is contributed`);
    assert.deepEqual(props[`speclsp.${key}`].default, SERVER_DEFAULTS[key], `default of speclsp.${key}`);
  }
  for (const key of ["server.command", "server.pythonPath", "enable", "languages"]) {
    assert.ok(props[`speclsp.${key}`], `speclsp.${key} is contributed`);
  }
  assert.deepEqual(props["speclsp.server.command"].default, ["speclsp", "serve"]);
  assert.deepEqual(props["speclsp.languages"].default, { "*": true });
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
  assert.ok((SERVER_KEYS as readonly string[]).includes("completionFallback"));
});
