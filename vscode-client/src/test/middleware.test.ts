import assert from "node:assert/strict";
import { test } from "node:test";
import type * as vscode from "vscode";
import { completionGate } from "../middleware";
import type { ConfigReader } from "../settings";

const cfg = (values: Record<string, unknown>): ConfigReader => ({
  get: <T>(key: string) => values[key] as T | undefined,
});
const doc = (languageId: string) => ({ languageId }) as unknown as vscode.TextDocument;
const position = {} as vscode.Position;
const token = {} as vscode.CancellationToken;

/** Runs both providers of the gate for a language and says which reached the server. */
async function asked(values: Record<string, unknown>, languageId: string) {
  const reached: string[] = [];
  let inlineHooks = 0;
  const gate = completionGate(() => cfg(values), () => inlineHooks++);
  const inline = await gate.provideInlineCompletionItems(doc(languageId), position, {} as vscode.InlineCompletionContext,
    token, async () => {
      reached.push("inline");
      return [];
    });
  const items = await gate.provideCompletionItem(doc(languageId), position, {} as vscode.CompletionContext, token,
    async () => {
      reached.push("completion");
      return [];
    });
  return { reached, inline, items, inlineHooks };
}

test("both paths reach the server when completions are on", async () => {
  const r = await asked({}, "python");
  assert.deepEqual(r.reached, ["inline", "completion"]);
  assert.equal(r.inlineHooks, 1);
});

test("speclsp.enable off (Toggle Completions) stops ghost text and the suggestion list", async () => {
  const r = await asked({ enable: false }, "python");
  assert.deepEqual(r.reached, []);
  assert.equal(r.inline, null);
  assert.equal(r.items, null);
});

test("speclsp.languages stops both paths for that language only", async () => {
  const off = { languages: { "*": true, markdown: false } };
  assert.deepEqual((await asked(off, "markdown")).reached, []);
  assert.deepEqual((await asked(off, "python")).reached, ["inline", "completion"]);
});
