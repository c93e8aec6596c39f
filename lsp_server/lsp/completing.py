"""A completion request in the server: cursor context → the model worker (or typed through) → its record.

Completing, a part of SpeclspServer (session.py): what the completion and document handlers call.
Background work (warming a document's prompt, prefetching what follows a suggestion) goes through
here too, so that any real request preempts it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from ..engine.api import Cancelled, Unavailable
from ..prompt import CursorContext
from ..scheduler import Superseded
from ..service import Completion
from .documents import PositionError, cursor_context, encoding_name
from .records import RequestRecord

log = logging.getLogger(__name__)

WARM_AFTER_S = 0.3  # typing pause after which a document's prompt is prefilled in the background


class Completing:
    """Cursor context, scheduling with a record per request, and background work."""

    @property
    def encoding(self) -> str:
        return encoding_name(self.workspace.position_encoding)

    def cursor(self, uri: str, position: types.Position) -> CursorContext | None:
        """The text around the cursor of an open document; bad params are the client's error.
        None for a document over maxDocumentChars or out of sync with the editor (an edit's range
        did not exist in it): no completions there, and it is said once."""
        doc = self.workspace.text_documents.get(uri)
        if doc is None:
            raise JsonRpcInvalidParams(f"document {uri} is not open")
        if getattr(doc, "sync_error", None):
            self._out_of_sync(uri, doc.sync_error)
            return None
        source = doc.source
        if len(source) > self.settings.max_document_chars:
            self._too_large(uri, len(source))
            return None
        self.out_of_sync.discard(uri)
        self.oversized.discard(uri)  # fits again: say so again if it grows past the limit
        try:
            return cursor_context(source, position.line, position.character, self.encoding)
        except PositionError as e:
            raise JsonRpcInvalidParams(str(e)) from e

    def _out_of_sync(self, uri: str, error: str) -> None:
        """Once per document: its copy here no longer matches the editor's, so completions would
        be made for text that does not exist. Reopening the file (or a full sync) mends it."""
        if uri in self.out_of_sync:
            return
        self.out_of_sync.add(uri)
        self.tell(f"speclsp: lost track of {uri.rsplit('/', 1)[-1]}: {error[:120]}; reopen the file")

    def _too_large(self, uri: str, size: int) -> None:
        if uri in self.oversized:
            return
        self.oversized.add(uri)
        message = (f"no completions in {uri.rsplit('/', 1)[-1]}: {size:,} characters, over "
                   f"speclsp.maxDocumentChars ({self.settings.max_document_chars:,})")
        log.info("%s (%s)", message, uri)
        self.status(self.state(), message)

    async def complete(self, uri: str, ctx: CursorContext,
                       trigger: str) -> tuple[Completion | None, int]:
        """Schedule one completion; None when superseded, cancelled, not ready or failed."""
        record = RequestRecord(id=next(self.request_ids), uri=uri, trigger=trigger)
        t0 = time.monotonic()
        self.status("busy")

        def job(cancel):
            if not self.service.ready:
                return None
            record.queue_ms = round((time.monotonic() - t0) * 1e3, 3)
            return self.service.complete(ctx, uri, cancel, arrived=t0)  # the budget counts the queue

        completion = None
        try:
            completion = self.typed_through(uri, ctx) or await self.scheduler.run(uri, job)
        except (Superseded, Cancelled):
            record.cancelled = True
        except asyncio.CancelledError:
            record.cancelled = True
            raise
        except Unavailable as e:  # the inference server failed: one line in the status, an empty answer
            log.warning("completion %d: %s", record.id, e)
            record.error = self.unavailable = str(e)[:300]
        except Exception as e:  # a fault in the model worker: log it, answer empty, keep serving
            log.exception("completion %d failed", record.id)
            record.error = f"{type(e).__name__}: {e}"[:300]
            if "OutOfMemory" in type(e).__name__:
                self.scheduler.submit("__models__", lambda cancel: self.tell(self.service.recover_from_oom()),
                                      supersede=False)
        finally:
            if completion is not None:
                self.unavailable = None  # the server answered again: the status says so
            self._finish(record, completion, t0)
        if completion is not None and completion.text:
            self.background(uri, lambda cancel: self.service.prefetch(ctx, uri, completion.text, cancel))
        return completion, record.id

    def _finish(self, record: RequestRecord, completion: Completion | None, t0: float) -> None:
        """Keep the request's record for `speclsp.stats`, log it, and show its figures in the status."""
        record.latency_ms = round((time.monotonic() - t0) * 1e3, 3)
        if completion is not None:
            record.measured, record.text_chars = dict(completion.stats), len(completion.text)
        self.stats.append(record)
        log.info("request %s", {k: v for k, v in record.to_json().items() if k != "uri"})
        problem = self.unavailable
        self.status("error" if problem else self.state(), problem or self.load_error or "", last=record.brief())

    def typed_through(self, uri: str, ctx: CursorContext) -> Completion | None:
        """The rest of a shown suggestion the user is typing through, answered here on the event
        loop: a lookup in memory must not queue behind model work. Older work for the document
        is superseded as it would be by a scheduled request."""
        completion = self.service.typed_through(ctx, uri)
        if completion is not None:
            self.scheduler.supersede(uri)
        return completion

    def background(self, uri: str, fn) -> None:
        """Low-priority model work; any real request preempts it, and its failures are only logged."""
        def job(cancel):
            if not self.service.ready:
                return
            try:
                fn(cancel)
            except Cancelled:
                pass
            except Unavailable as e:  # said by the next completion's status; no traceback per keystroke
                log.info("background work on %s: %s", uri, e)
            except Exception:
                log.exception("background work on %s failed", uri)

        self.scheduler.submit(uri, job, foreground=False)

    def warm_later(self, uri: str, position: types.Position) -> None:
        """Prefill the document's prompt once typing pauses, before the editor asks."""
        old = self.warm_timers.pop(uri, None)
        if old is not None:
            old.cancel()
        if self.loop is None or not self.settings.prefix_cache:
            return

        def fire():
            self.warm_timers.pop(uri, None)
            try:
                ctx = self.cursor(uri, position)
            except Exception:
                return  # the document moved on or closed: nothing to warm
            if ctx is not None:  # None: too large to complete
                self.background(uri, lambda cancel: self.service.warm(ctx, uri, cancel))

        self.warm_timers[uri] = self.loop.call_later(WARM_AFTER_S, fire)
