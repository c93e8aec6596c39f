"""Typing-through: answer from a suggestion already computed, with no model call.

When the user types the characters the ghost text showed, the rest of that suggestion is still
the right answer (greedy decoding would produce it again), so it is returned at once. The same
store holds the continuation prefetched after a suggestion is shown, keyed by the document as it
will read once the suggestion is accepted. Lookups compare real text, never a hash.

The server looks suggestions up on the event loop (a lookup must not wait for model work) while
the model worker remembers new ones, so the store is guarded by a lock.

A suggestion holds the document's text around it, so the store is bounded in characters
(BUDGET_CHARS), least recently used documents first: with large or many documents it would
otherwise grow with every one ever completed. A dropped suggestion only costs a model call later.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from cachetools import LRUCache

from .prompt import CursorContext

KEEP = 3  # suggestions remembered per document
BUDGET_CHARS = 64 << 20  # characters of document text kept across all documents (~64 MB for code)


@dataclass(frozen=True)
class Suggestion:
    prefix: str  # document text before the cursor when it was computed
    suffix: str
    text: str

    @property
    def chars(self) -> int:
        return len(self.prefix) + len(self.suffix) + len(self.text)


class SuggestionStore:
    def __init__(self, budget_chars: int = BUDGET_CHARS):
        # document -> its latest suggestions (a tuple, replaced whole so the cache re-measures it)
        self.by_doc: LRUCache = LRUCache(maxsize=budget_chars, getsizeof=lambda kept: sum(s.chars for s in kept) or 1)
        self.lock = threading.Lock()

    def remember(self, key: str, ctx: CursorContext, text: str) -> None:
        if not text:
            return
        new = Suggestion(ctx.prefix, ctx.suffix, text)
        with self.lock:
            kept = (*self.by_doc.pop(key, ())[-(KEEP - 1):], new)
            while kept and sum(s.chars for s in kept) > self.by_doc.maxsize:
                kept = kept[1:]  # the oldest first; a suggestion larger than the budget is not kept
            if kept:
                self.by_doc[key] = kept

    def lookup(self, key: str, ctx: CursorContext) -> str | None:
        """The rest of a remembered suggestion the user is typing through, or None."""
        with self.lock:
            remembered = list(self.by_doc.get(key, ()))
        for s in reversed(remembered):
            if len(ctx.prefix) < len(s.prefix) or ctx.suffix != s.suffix or not ctx.prefix.startswith(s.prefix):
                continue
            typed = ctx.prefix[len(s.prefix):]
            if s.text.startswith(typed) and len(typed) < len(s.text):
                return s.text[len(typed):]
        return None

    def forget(self, key: str) -> None:
        with self.lock:
            self.by_doc.pop(key, None)
