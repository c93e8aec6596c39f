"""Typing-through: answer from a suggestion already computed, with no model call.

When the user types the characters the ghost text showed, the rest of that suggestion is still
the right answer (greedy decoding would produce it again), so it is returned at once. The same
store holds the continuation prefetched after a suggestion is shown, keyed by the document as it
will read once the suggestion is accepted. Lookups compare real text, never a hash.

The server looks suggestions up on the event loop (a lookup must not wait for model work) while
the model worker remembers new ones, so the store is guarded by a lock.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from .prompt import CursorContext

KEEP = 3  # suggestions remembered per document


@dataclass(frozen=True)
class Suggestion:
    prefix: str  # document text before the cursor when it was computed
    suffix: str
    text: str


class SuggestionStore:
    def __init__(self):
        self.by_doc: dict[str, deque[Suggestion]] = {}
        self.lock = threading.Lock()

    def remember(self, key: str, ctx: CursorContext, text: str) -> None:
        if text:
            with self.lock:
                self.by_doc.setdefault(key, deque(maxlen=KEEP)).append(Suggestion(ctx.prefix, ctx.suffix, text))

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
