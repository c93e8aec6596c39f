"""Shaping of inline completion items: what text an item replaces, and with what.

An item replaces the whole cursor line with that line plus the suggestion at the cursor, instead of
inserting the suggestion at an empty range. The edit is the same, but the item now says which line
it was made for, so a client that keeps it on screen while the user types on can tell whether it
still fits the text:

- Neovim 0.12 keeps showing an old item and, on Tab, applies it at the range it came with. It draws
  the item against the current line (skipping what the user typed that agrees with it), and the
  Tab mapping in the README accepts it only while the line still reads as the item's text with the
  suggestion missing at the cursor (docs/editors.md says why).
- VS Code drops an item whose replaced text no longer agrees with what is typed, and keeps one the
  user is typing through ("prefer replacements over insertions", in its API docs).

The line's text after the cursor is part of the item too: Neovim draws a non-empty range as an
overlay from the cursor on, so the ghost text covers that text and must repeat it to show the line
as it will read once accepted.
"""

from __future__ import annotations

from lsprotocol import types

from .documents import text_units
from .prompt import CursorContext


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
