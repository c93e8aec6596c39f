"""Item shaping: a suggestion as the editor's inline or completion item, with the accept command.

Inline items replace the whole cursor line with that line plus the suggestion at the cursor, instead
of inserting the suggestion at an empty range. The edit is the same, but the item now says which
line it was made for, so a client that keeps it on screen while the user types on can tell whether
it still fits the text:

- Neovim 0.12 keeps showing an old item and, on Tab, applies it at the range it came with. It draws
  the item against the current line (skipping what the user typed that agrees with it), and the
  Tab mapping in the README accepts it only while the line still reads as the item's text with the
  suggestion missing at the cursor (docs/editors.md says why).
- VS Code drops an item whose replaced text no longer agrees with what is typed, and keeps one the
  user is typing through ("prefer replacements over insertions", in its API docs).

The line's text after the cursor is part of the item too: Neovim draws a non-empty range as an
overlay from the cursor on, so the ghost text covers that text and must repeat it to show the line
as it will read once accepted.

Completion items (the fallback for editors without inline completion) replace the word being typed
with the word plus the suggestion, so the client's own filtering keeps them; see completion_item.
"""

from __future__ import annotations

import re

from lsprotocol import types

from ..prompt import CursorContext
from .documents import text_units

ACCEPTED = "speclsp.accepted"  # the command an item runs when the user takes it
WORD_RE = re.compile(r"[\w$]*$")  # the word being typed, at the end of the line before the cursor
SNIPPET_SPECIAL = re.compile(r"([\\$}])")  # what a snippet's text escapes to mean itself


def accept_command(request_id: int) -> types.Command:
    """The command an item carries, so the editor reports which request's suggestion was taken."""
    return types.Command(title="speclsp: accepted", command=ACCEPTED, arguments=[request_id])


def inline_item(ctx: CursorContext, position: types.Position, text: str, command: types.Command,
                encoding: str) -> types.InlineCompletionItem:
    """One item that inserts `text` at `position` by replacing the cursor's line (`ctx` is the
    document around `position`; `encoding` the position encoding of the session)."""
    before, after = ctx.line_prefix, ctx.line_suffix.removesuffix("\r")
    line = types.Range(
        start=types.Position(position.line, 0),
        end=types.Position(position.line, position.character + text_units(after, encoding)))
    return types.InlineCompletionItem(insert_text=before + text + after, range=line, command=command)


def inserted_text(item: types.InlineCompletionItem, line_prefix: str, line_suffix: str) -> str:
    """What `item` inserts at the cursor of the line it was made for (`line_prefix` + cursor +
    `line_suffix`): for our own client, `speclsp demo`, which prints the suggestion."""
    text = item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value
    assert text.startswith(line_prefix) and text.endswith(line_suffix), "the item was made for another line"
    return text[len(line_prefix):len(text) - len(line_suffix)]


def completion_item(ctx: CursorContext, position: types.Position, text: str, command: types.Command,
                    encoding: str, snippet: bool) -> types.CompletionItem:
    """One item that replaces the word being typed with the word plus `text`, so the client's own
    filtering (by the word) keeps it. As a snippet with nothing to expand where `snippet` (see
    snippets_welcome), plain text otherwise."""
    word = WORD_RE.search(ctx.line_prefix).group(0)
    start = types.Position(position.line, position.character - text_units(word, encoding))
    label = (word + text).split("\n", 1)[0].strip() or text.strip()[:60]
    new_text = SNIPPET_SPECIAL.sub(r"\\\1", word + text) if snippet else word + text
    return types.CompletionItem(
        label=label[:80], kind=types.CompletionItemKind.Text, detail="speclsp",
        filter_text=word + text.split("\n", 1)[0], sort_text="0",
        text_edit=types.TextEdit(types.Range(start, position), new_text),
        insert_text_format=types.InsertTextFormat.Snippet if snippet else types.InsertTextFormat.PlainText,
        command=command)


def snippets_welcome(capabilities: types.ClientCapabilities, client_name: str) -> bool:
    """Completion items go as snippets where the client expands them, since some clients insert
    a plain-text item only up to its first space (Neovim 0.11). Not to Helix, which indents a
    multi-line snippet's later lines a second time, nor to clients without snippet support
    (eglot without yasnippet), which would show the escapes."""
    caps = capabilities.text_document
    item = caps.completion.completion_item if caps and caps.completion else None
    return bool(item and item.snippet_support) and "helix" not in client_name.lower()
