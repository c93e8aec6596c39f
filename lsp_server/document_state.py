"""What the service remembers per document between requests: its suggestions and its prompt window.

One record per document, in one store with one eviction rule: least recently used first, bounded
by the number of documents and by the characters of document text the suggestions hold (each
suggestion keeps the text around it, so large or many documents would otherwise grow the server
with every one ever completed). A dropped record only costs a model call, or a window placed afresh.
The backend keeps its own per-document state (KV) and is told when a document is forgotten.

The server looks suggestions up on the event loop (a lookup must not wait for model work) while
the model worker remembers new ones and builds prompts, so the store is guarded by a lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from .prompt import CursorContext, WindowState
from .suggestions import Kept, Suggestion, rest_of, with_new

DOCUMENTS_KEPT = 1024  # documents remembered
BUDGET_CHARS = 64 << 20  # characters of document text kept across all documents (~64 MB for code)


@dataclass
class DocumentState:
    suggestions: Kept = ()  # replaced whole, so the store can account for their size
    window: WindowState = field(default_factory=WindowState)  # where its prompt's prefix window starts

    @property
    def chars(self) -> int:
        return sum(s.chars for s in self.suggestions)


class DocumentStore:
    """The records by document key (its URI), least recently used first."""

    def __init__(self, max_documents: int = DOCUMENTS_KEPT, budget_chars: int = BUDGET_CHARS):
        self.max_documents, self.budget_chars = max_documents, budget_chars
        self.records: OrderedDict[str, DocumentState] = OrderedDict()  # least recently used first
        self.chars = 0  # held by all the records' suggestions
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.records)

    def window(self, key: str) -> WindowState:
        """The document's prompt window, for the prompt builder to read and move."""
        with self.lock:
            return self._touch(key).window

    def remember(self, key: str, ctx: CursorContext, text: str) -> None:
        if not text:
            return
        with self.lock:
            record = self._touch(key)
            kept = with_new(record.suggestions, Suggestion(ctx.prefix, ctx.suffix, text), self.budget_chars)
            self.chars += sum(s.chars for s in kept) - record.chars
            record.suggestions = kept
            self._evict()

    def lookup(self, key: str, ctx: CursorContext) -> str | None:
        """The rest of a remembered suggestion the user is typing through, or None."""
        with self.lock:
            record = self.records.get(key)
            if record is None:
                return None
            self.records.move_to_end(key)
            kept = record.suggestions
        return rest_of(kept, ctx)

    def forget(self, key: str) -> None:
        with self.lock:
            record = self.records.pop(key, None)
            if record is not None:
                self.chars -= record.chars

    def forget_suggestions(self) -> None:
        """Drop every suggestion, keeping the windows (new settings make new suggestions)."""
        with self.lock:
            for record in self.records.values():
                record.suggestions = ()
            self.chars = 0

    def clear(self) -> None:
        with self.lock:
            self.records.clear()
            self.chars = 0

    def _touch(self, key: str) -> DocumentState:
        """The document's record, made most recently used (made if new)."""
        record = self.records.get(key)
        if record is None:
            record = self.records[key] = DocumentState()
            self._evict()
        self.records.move_to_end(key)
        return record

    def _evict(self) -> None:
        """Least recently used records go until both bounds hold; the newest always stays (its
        suggestions alone fit the budget)."""
        while len(self.records) > 1 and (len(self.records) > self.max_documents or self.chars > self.budget_chars):
            _, record = self.records.popitem(last=False)
            self.chars -= record.chars
