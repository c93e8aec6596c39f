"""Document sync handlers: warm the cache where typing goes next, forget a closed document.

pygls keeps the documents themselves (documents.py applies the edits); these handlers only add
what completions need: a prompt prefilled before the editor asks, and nothing kept once closed.
"""

from __future__ import annotations

from lsprotocol import types

from .documents import end_position
from .session import SpeclspServer


def on_open(ls: SpeclspServer, params: types.DidOpenTextDocumentParams) -> None:
    """Warm the cache for a cursor at the end of the file, where new code is usually typed."""
    doc = params.text_document
    ls.warm_later(doc.uri, end_position(doc.text, ls.encoding))


def on_change(ls: SpeclspServer, params: types.DidChangeTextDocumentParams) -> None:
    """After an edit the cursor is usually right after the inserted text: warm the cache there."""
    change = params.content_changes[-1] if params.content_changes else None
    if isinstance(change, types.TextDocumentContentChangePartial):
        start, end = change.range.start, end_position(change.text, ls.encoding)
        column = (start.character if end.line == 0 else 0) + end.character
        ls.warm_later(params.text_document.uri, types.Position(start.line + end.line, column))


def on_close(ls: SpeclspServer, params: types.DidCloseTextDocumentParams) -> None:
    """Forget the document: its notices, its pending warm-up, and (on the worker) its cached KV."""
    uri = params.text_document.uri
    ls.oversized.discard(uri)
    ls.out_of_sync.discard(uri)
    timer = ls.warm_timers.pop(uri, None)
    if timer is not None:
        timer.cancel()
    ls.scheduler.submit(uri, lambda cancel: ls.service.forget(uri), foreground=False)


FEATURES = [  # (method, options, handler)
    (types.TEXT_DOCUMENT_DID_OPEN, None, on_open),
    (types.TEXT_DOCUMENT_DID_CHANGE, None, on_change),
    (types.TEXT_DOCUMENT_DID_CLOSE, None, on_close),
]
