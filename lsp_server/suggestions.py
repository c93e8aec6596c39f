"""Typing-through: answer from a suggestion already computed, with no model call.

When the user types the characters the ghost text showed, the rest of that suggestion is still
the right answer (greedy decoding would produce it again), so it is returned at once. The same
suggestions hold the continuation prefetched after a suggestion is shown, keyed by the document as
it will read once the suggestion is accepted. Lookups compare real text, never a hash.

A document's suggestions are kept in its record (document_state.py), which bounds them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .prompt import CursorContext

KEEP = 3  # suggestions remembered per document


@dataclass(frozen=True)
class Suggestion:
    prefix: str  # document text before the cursor when it was computed
    suffix: str
    text: str

    @property
    def chars(self) -> int:
        return len(self.prefix) + len(self.suffix) + len(self.text)


Kept = tuple[Suggestion, ...]  # a document's latest suggestions, oldest first


def with_new(kept: Kept, new: Suggestion, budget_chars: int) -> Kept:
    """A document's suggestions once `new` is remembered: the latest KEEP, the oldest dropped first
    to fit `budget_chars` (a suggestion larger than the budget is not kept)."""
    kept = (*kept[-(KEEP - 1):], new)
    while kept and sum(s.chars for s in kept) > budget_chars:
        kept = kept[1:]
    return kept


def rest_of(kept: Kept, ctx: CursorContext) -> str | None:
    """The rest of a remembered suggestion the user is typing through, or None."""
    for s in reversed(kept):
        if len(ctx.prefix) < len(s.prefix) or ctx.suffix != s.suffix or not ctx.prefix.startswith(s.prefix):
            continue
        typed = ctx.prefix[len(s.prefix):]
        if s.text.startswith(typed) and len(typed) < len(s.text):
            return s.text[len(typed):]
    return None
