// The client side of `speclsp.enable` and `speclsp.languages`: both ways a suggestion reaches
// the editor (ghost text, and the suggestion list where the server offers it) ask here first.
// Type-only imports, so `node --test` runs it without an editor.

import type { Middleware } from "vscode-languageclient/node";
import { type ConfigReader, isLanguageEnabled } from "./settings";

export type CompletionGate = Required<Pick<Middleware, "provideInlineCompletionItems" | "provideCompletionItem">>;

/**
 * Middleware that answers nothing, without asking the server, where completions are off.
 * `config` is read on every request, so toggling needs no restart.
 */
export function completionGate(config: () => ConfigReader, onInlineRequest: () => void): CompletionGate {
  return {
    provideInlineCompletionItems: async (document, position, context, token, next) => {
      if (!isLanguageEnabled(config(), document.languageId)) {
        return null;
      }
      try {
        return await next(document, position, context, token);
      } finally {
        onInlineRequest();
      }
    },
    provideCompletionItem: (document, position, context, token, next) =>
      isLanguageEnabled(config(), document.languageId) ? next(document, position, context, token) : null,
  };
}
