"""The LSP server: capabilities and thin handlers.

Each completion handler reads like the pipeline — cursor context → schedule → engine (prompt,
decode) → post-process → items — and the work lives in the modules it calls. Handlers are
`async` and never run model code: that happens on the scheduler's one worker thread.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import sys
import threading
import time
from collections import deque
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.io_ import StdoutWriter, run_async
from pygls.lsp.server import LanguageServer

from . import __version__
from .config import Settings, SettingsMessages, settings_from_lsp
from .documents import PositionError, cursor_context
from .engine.api import Cancelled
from .prompt import CursorContext
from .protocol import MAX_FRAME_BYTES, GuardedReader, SpeclspProtocol, parse_error_response
from .scheduler import Scheduler, Superseded
from .service import Completion, CompletionService

log = logging.getLogger(__name__)

STATUS = "speclsp/status"
STATS_KEEP = 100
WORD_RE = re.compile(r"[\w$]*$")
WARM_AFTER_S = 0.3  # typing pause after which a document's prompt is prefilled in the background


class SpeclspServer(LanguageServer):
    """Holds the session: settings, the model worker, the completion service and recent stats."""

    def __init__(self, settings: Settings | None = None):
        super().__init__("speclsp", __version__, protocol_cls=SpeclspProtocol)
        self.settings = settings or Settings()
        self.service = CompletionService(self.settings)
        self.scheduler = Scheduler()
        self.messages = SettingsMessages()
        self.stats: deque[dict] = deque(maxlen=STATS_KEEP)
        self.request_ids = itertools.count(1)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.load_error: str | None = None
        self.warm_timers: dict[str, asyncio.TimerHandle] = {}
        self.client_name = ""
        self.progress_token: str | None = None  # the client's progress bar while models load

    # -- transport ---------------------------------------------------------------------------------

    def start_io(self, stdin=None, stdout=None) -> None:
        """pygls' stdio loop with a reader that refuses oversized frames. Returns when the client
        closes the stream, with or without `shutdown`, so the process exits and frees the GPU."""
        self._stop_event = threading.Event()
        reader = GuardedReader(stdin or sys.stdin.buffer, self.thread_pool, self._refused)
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        try:
            asyncio.run(run_async(stop_event=self._stop_event, reader=reader, protocol=self.protocol,
                                  logger=log, error_handler=self.report_server_error))
        except (BrokenPipeError, KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()

    def _refused(self, size: int) -> None:
        self.tell(f"speclsp: ignored a message of {size} bytes (over the {MAX_FRAME_BYTES >> 20} MiB limit)")

    def report_server_error(self, error: Exception, source) -> None:
        """A body that is not JSON gets JSON-RPC's parse error; anything else is logged."""
        if isinstance(error, (json.JSONDecodeError, UnicodeDecodeError)):
            self.protocol._send_data(parse_error_response())
        log.warning("protocol error: %s: %s", type(error).__name__, str(error)[:200])

    # -- status and messages (safe to call from the worker thread) -------------------------------

    def status(self, state: str, message: str = "", **extra: Any) -> None:
        """`speclsp/status` for clients that show state; while models load, also workDoneProgress."""
        self._from_any_thread(self.protocol.notify, STATUS, {"state": state, "message": message, **extra})
        token = self.progress_token
        if token is not None and state == "loading":
            self._from_any_thread(self.work_done_progress.report, token, types.WorkDoneProgressReport(
                message=message, percentage=int(extra.get("progress", 0))))
        elif token is not None and state in ("ready", "error"):
            self.progress_token = None
            self._from_any_thread(self.work_done_progress.end, token, types.WorkDoneProgressEnd(message=message))

    def tell(self, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
        log.warning("%s", message)
        self._from_any_thread(self.window_show_message, types.ShowMessageParams(kind, message))

    def _from_any_thread(self, fn, *args) -> None:
        if self.loop is None:
            return
        try:
            if _in_loop(self.loop):
                fn(*args)
            else:
                self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop closed during shutdown
            pass

    # -- settings and models ---------------------------------------------------------------------

    def configure(self, options: Any) -> None:
        settings, problems = settings_from_lsp(options, self.settings)
        for problem in self.messages.fresh(problems):
            self.tell(problem)
        reload = self.service.apply(settings)
        self.settings = settings
        if reload and (self.service.models is not None or self.load_error):  # loaded, or failed to
            self.start_loading()

    def start_loading(self) -> None:
        """Load (or reload) the models on the worker, reporting progress and status."""
        self.status("loading", "loading models", progress=0)

        def load(cancel) -> None:
            t0 = time.monotonic()
            try:
                info = self.service.load(lambda msg, pct: self.status("loading", msg, progress=pct))
            except Exception as e:  # ModelError and anything unexpected: the server stays up
                self.load_error = str(e)
                log.exception("model loading failed")
                self.status("error", str(e))
                self.tell(f"speclsp: {e}", types.MessageType.Error)
                return
            self.load_error = None
            for notice in self.service.notices:
                self.tell(f"speclsp: {notice}", types.MessageType.Info)
            info["startup_ms"] = round((time.monotonic() - t0) * 1e3)
            log.info("models ready: %s", info)
            self.status("ready", f"ready: {info['target']}", models=info)

        self.scheduler.submit("__models__", load)

    # -- the completion pipeline -------------------------------------------------------------------

    def cursor(self, uri: str, position: types.Position) -> CursorContext:
        """The text around the cursor of an open document; bad params are the client's error."""
        doc = self.workspace.text_documents.get(uri)
        if doc is None:
            raise JsonRpcInvalidParams(f"document {uri} is not open")
        source = doc.source
        if len(source) > self.settings.max_document_chars:
            raise JsonRpcInvalidParams(f"document has {len(source)} characters, over the limit of "
                                       f"{self.settings.max_document_chars} (speclsp.maxDocumentChars)")
        try:
            return cursor_context(source, position.line, position.character, self.encoding)
        except PositionError as e:
            raise JsonRpcInvalidParams(str(e)) from e

    def snippets_welcome(self) -> bool:
        """Completion items go as snippets where the client expands them, since some clients insert
        a plain-text item only up to its first space (Neovim 0.11). Not to Helix, which indents a
        multi-line snippet's later lines a second time, nor to clients without snippet support
        (eglot without yasnippet), which would show the escapes."""
        caps = self.client_capabilities.text_document
        item = caps.completion.completion_item if caps and caps.completion else None
        return bool(item and item.snippet_support) and "helix" not in self.client_name.lower()

    @property
    def encoding(self) -> str:
        return str(self.workspace.position_encoding or "utf-16")

    async def complete(self, uri: str, ctx: CursorContext, trigger: str) -> tuple[Completion | None, int]:
        """Schedule one completion; None when superseded, cancelled, not ready or failed."""
        rid = next(self.request_ids)
        record: dict[str, Any] = {"id": rid, "uri": uri, "trigger": trigger, "cancelled": False}
        t0 = time.monotonic()
        self.status("busy")

        def job(cancel):
            if not self.service.ready:
                return None
            record["queue_ms"] = round((time.monotonic() - t0) * 1e3, 3)
            return self.service.complete(ctx, uri, cancel)

        completion = None
        try:
            completion = self.typed_through(uri, ctx) or await self.scheduler.run(uri, job)
        except (Superseded, Cancelled):
            record["cancelled"] = True
        except asyncio.CancelledError:
            record["cancelled"] = True
            raise
        except Exception as e:  # a fault in the model worker: log it, answer empty, keep serving
            log.exception("completion %d failed", rid)
            record["error"] = f"{type(e).__name__}: {e}"[:300]
            if "OutOfMemory" in type(e).__name__:
                self.scheduler.submit("__models__", lambda cancel: self.tell(self.service.recover_from_oom()),
                                      supersede=False)
        finally:
            record["latency_ms"] = round((time.monotonic() - t0) * 1e3, 3)
            if completion is not None:
                record.update(completion.stats, text_chars=len(completion.text))
            self.stats.append(record)
            log.info("request %s", {k: v for k, v in record.items() if k != "uri"})
            self.status("ready" if self.service.ready else ("error" if self.load_error else "loading"),
                        self.load_error or "", last=_brief(record))
        if completion is not None and completion.text:
            self.background(uri, lambda cancel: self.service.prefetch(ctx, uri, completion.text, cancel))
        return completion, rid

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
            self.background(uri, lambda cancel: self.service.warm(ctx, uri, cancel))

        self.warm_timers[uri] = self.loop.call_later(WARM_AFTER_S, fire)


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _brief(record: dict) -> dict:
    keys = ("latency_ms", "accepted_tokens", "drafted_tokens", "generated_tokens", "cancelled")
    return {k: record[k] for k in keys if k in record}


def _accept_command(rid: int) -> types.Command:
    return types.Command(title="speclsp: accepted", command="speclsp.accepted", arguments=[rid])


def create_server(settings: Settings | None = None) -> SpeclspServer:
    server = SpeclspServer(settings)

    @server.feature(types.INITIALIZE)
    def on_initialize(ls: SpeclspServer, params: types.InitializeParams) -> None:
        """Settings come first from initializationOptions; loading starts once initialized."""
        ls.loop = asyncio.get_running_loop()
        ls.client_name = params.client_info.name if params.client_info else ""
        ls.configure(params.initialization_options or {})

    @server.feature(types.INITIALIZED)
    async def on_initialized(ls: SpeclspServer, params: types.InitializedParams) -> None:
        await _progress_while_loading(ls)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def on_configuration(ls: SpeclspServer, params: types.DidChangeConfigurationParams) -> None:
        settings = params.settings
        if isinstance(settings, dict) and isinstance(settings.get("speclsp"), dict):
            settings = settings["speclsp"]
        ls.configure(settings)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def on_open(ls: SpeclspServer, params: types.DidOpenTextDocumentParams) -> None:
        """Warm the cache for a cursor at the end of the file, where new code is usually typed."""
        doc = params.text_document
        lines = doc.text.split("\n")
        ls.warm_later(doc.uri, types.Position(len(lines) - 1, _units(lines[-1], ls.encoding)))

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def on_change(ls: SpeclspServer, params: types.DidChangeTextDocumentParams) -> None:
        """After an edit the cursor is usually right after the inserted text: warm the cache there."""
        change = params.content_changes[-1] if params.content_changes else None
        if isinstance(change, types.TextDocumentContentChangePartial):
            inserted = change.text.split("\n")
            start = change.range.start
            line = start.line + len(inserted) - 1
            column = (start.character if len(inserted) == 1 else 0) + _units(inserted[-1], ls.encoding)
            ls.warm_later(params.text_document.uri, types.Position(line, column))

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def on_close(ls: SpeclspServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        timer = ls.warm_timers.pop(uri, None)
        if timer is not None:
            timer.cancel()
        ls.scheduler.submit(uri, lambda cancel: ls.service.forget(uri), foreground=False)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls: SpeclspServer, params: types.InlineCompletionParams) -> types.InlineCompletionList:
        """Ghost text at the cursor: context → schedule → engine → post-process → one item."""
        ctx = ls.cursor(params.text_document.uri, params.position)
        trigger = "invoked" if params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked else "automatic"
        completion, rid = await ls.complete(params.text_document.uri, ctx, trigger)
        if completion is None or not completion.text:
            return types.InlineCompletionList(items=[])
        here = types.Range(params.position, params.position)
        return types.InlineCompletionList(items=[types.InlineCompletionItem(
            insert_text=completion.text, range=here, command=_accept_command(rid))])

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", " "]))
    async def completion(ls: SpeclspServer, params: types.CompletionParams) -> types.CompletionList:
        """The fallback for editors without inline completion: one item whose text is the completion."""
        ctx = ls.cursor(params.text_document.uri, params.position)
        completion, rid = await ls.complete(params.text_document.uri, ctx, "completion")
        if completion is None or not completion.text:
            return types.CompletionList(is_incomplete=True, items=[])
        item = _completion_item(ctx, params.position, completion.text, rid, ls.encoding, ls.snippets_welcome())
        return types.CompletionList(is_incomplete=True, items=[item])

    @server.command("speclsp.stats")
    def stats(ls: SpeclspServer, *args) -> dict:
        """The last requests' measurements, oldest first, and how often the caches spared work."""
        requests = list(ls.stats)
        answered = [r for r in requests if not r.get("cancelled") and "prompt_tokens" in r]
        hits = [r for r in answered if r.get("typed_through") or r.get("reused_tokens", 0) > 0]
        return {"requests": requests, "cache": {
            "hit_rate": round(len(hits) / len(answered), 3) if answered else None,
            "typed_through": sum(bool(r.get("typed_through")) for r in answered), "answered": len(answered)}}

    @server.command("speclsp.accepted")
    def accepted(ls: SpeclspServer, *args) -> None:
        """The editor reports that the user took a suggestion."""
        rid = args[0] if args else None
        for record in ls.stats:
            if record["id"] == rid:
                record["accepted"] = True
        return None

    @server.feature(types.SHUTDOWN)
    def on_shutdown(ls: SpeclspServer, *args) -> None:
        ls.scheduler.close()

    return server


def _units(text: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == "utf-32":
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _completion_item(ctx: CursorContext, position: types.Position, text: str, rid: int,
                     encoding: str, snippet: bool) -> types.CompletionItem:
    """Replace the word being typed with word + completion, so clients' own filtering keeps it.

    As a snippet with nothing to expand where the client takes snippets (see snippets_welcome)."""
    word = WORD_RE.search(ctx.line_prefix).group(0)
    start = types.Position(position.line, position.character - _units(word, encoding))
    label = (word + text).split("\n", 1)[0].strip() or text.strip()[:60]
    new_text = re.sub(r"([\\$}])", r"\\\1", word + text) if snippet else word + text
    return types.CompletionItem(
        label=label[:80], kind=types.CompletionItemKind.Text, detail="speclsp",
        filter_text=word + text.split("\n", 1)[0], sort_text="0",
        text_edit=types.TextEdit(types.Range(start, position), new_text),
        insert_text_format=types.InsertTextFormat.Snippet if snippet else types.InsertTextFormat.PlainText,
        command=_accept_command(rid))


async def _progress_while_loading(ls: SpeclspServer) -> None:
    """Start loading, with window/workDoneProgress when the client supports it."""
    caps = ls.client_capabilities.window
    if caps and caps.work_done_progress:
        token = f"speclsp-load-{id(ls)}"
        try:
            await asyncio.wait_for(ls.work_done_progress.create_async(token), 5)
            ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(title="speclsp", message="loading models",
                                                                          percentage=0))
            ls.progress_token = token
        except Exception:
            log.info("the client did not accept a progress token; status notifications only")
    ls.start_loading()
