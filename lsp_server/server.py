"""The LSP server: capabilities and thin handlers.

Each completion handler reads like the pipeline — cursor context → schedule → engine (prompt,
decode) → post-process → items — and the work lives in the modules it calls. Handlers are
`async` and never run model code: that happens on the scheduler's one worker thread.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import sys
import threading
import time
from collections import deque
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer

from . import __version__
from .config import Settings, SettingsMessages, settings_from_lsp
from .documents import PositionError, SyncedWorkspace, cursor_context, end_position, text_units
from .engine.api import Cancelled
from .framing import FrameReader
from .items import inline_item
from .prompt import CursorContext
from .protocol import SpeclspProtocol, serve_frames, stdin_chunks
from .scheduler import Scheduler, Superseded
from .service import Completion, CompletionService

log = logging.getLogger(__name__)

STATUS = "speclsp/status"
STATS_KEEP = 100
COMPLETION_OPTIONS = types.CompletionOptions(trigger_characters=[".", "(", " "])
# Notices of models the server picked by itself (no CodeLlama-7b or draft in the local cache) are
# information; any other notice is about a model the settings named and could not be used.
CHOSEN_BY_ITSELF = "is not on this machine"
WORD_RE = re.compile(r"[\w$]*$")
EDITOR_CHECK_S = 1.0  # how often the editor's process is looked for
WARM_AFTER_S = 0.3  # typing pause after which a document's prompt is prefilled in the background


class SpeclspServer(LanguageServer):
    """Holds the session: settings, the model worker, the completion service and recent stats."""

    def __init__(self, settings: Settings | None = None):
        super().__init__("speclsp", __version__, protocol_cls=SpeclspProtocol)
        self.settings = settings or Settings()
        self.base_settings = self.settings  # from the command line; a new TCP session starts here
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
        self.told: set[str] = set()  # messages already shown or logged: each goes out once
        self.oversized: set[str] = set()  # documents over maxDocumentChars, already said so
        self.loads_pending = 0  # model loads submitted and not yet finished
        self.out_of_sync: set[str] = set()  # documents whose edits could not be applied
        self.reader: FrameReader | None = None
        self.exit_code: int | None = None  # set by `exit`; else decided when the input ends

    # -- transport ---------------------------------------------------------------------------------

    def start_io(self, stdin=None, stdout=None) -> None:
        """Serve frames from stdin (see protocol.py for what is answered how). Returns on `exit` or
        when the client closes the stream, with or without `shutdown`, so the process exits and frees
        the GPU (the caller ends it: see cli.cmd_serve)."""
        self._stop_event = threading.Event()
        self.reader = FrameReader(stdin_chunks(stdin or sys.stdin.buffer, self.thread_pool))
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))

        async def session() -> None:
            try:
                await serve_frames(self.reader, self.protocol, self._stop_event)
            finally:  # handlers cancelled from here on must not write to a client that is gone
                self.protocol.set_writer(_Discard())

        try:
            asyncio.run(session())
        except (BrokenPipeError, KeyboardInterrupt):
            pass
        finally:
            self.shutdown()

    def begin_session(self, token: str | None) -> None:
        """A TCP client connected: it must authenticate, and it starts from nothing."""
        self.protocol.required_token, self.protocol.authenticated, self.protocol.rejected = token, False, False
        self.protocol._shutdown = False

    def forget_session(self) -> None:
        """A TCP client went: its documents, suggestions, cached KV, stats and settings go too."""
        for timer in self.warm_timers.values():
            timer.cancel()
        self.warm_timers.clear()
        self.stats.clear()
        self.messages = SettingsMessages()
        self.protocol._workspace = None
        reload = self.service.apply(self.base_settings)
        self.settings = self.base_settings
        self.scheduler.submit("__models__", lambda cancel: self.service.forget_all(), supersede=False)
        if reload:
            self.start_loading()

    def end_session(self, exit_code: int) -> None:
        """`exit`: stop reading, so the message loop ends and the process with it."""
        self.exit_code = exit_code
        if self.reader is not None:
            self.reader.close()
        elif self.protocol.writer is not None:
            self.protocol.writer.close()  # over TCP, closing the connection ends its loop

    def watch_editor(self, pid: int) -> None:
        """End the session when the editor's process is gone (LSP's `processId`): something else
        may still hold our stdin open, and a server outliving its editor keeps the GPU busy."""
        def check() -> None:
            if _alive(pid):
                self.loop.call_later(EDITOR_CHECK_S, check)
            else:
                log.warning("the editor (process %d) is gone: ending", pid)
                self.end_session(1)

        self.loop.call_later(EDITOR_CHECK_S, check)

    def shutdown(self) -> None:
        """After the session: stop the model work and the reader without waiting for their threads.

        A model forward cannot be interrupted and the stdin reader blocks until the client closes
        the pipe; the process ends right after this (cli.cmd_serve), which ends them too."""
        if self._stop_event is not None:
            self._stop_event.set()
        if self._thread_pool is not None:
            self._thread_pool.shutdown(wait=False, cancel_futures=True)
        if self._server is not None:
            self._server.close()
        self.scheduler.close(timeout=0)
        if self.exit_code is None:
            self.exit_code = 0 if self.protocol._shutdown else 1

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
        """A problem the user must act on: `window/showMessage`, one line, once per distinct problem.

        VS Code raises a toast for each, and Neovim stops for Press-ENTER on one that wraps, which
        swallows the next key: information goes through `note` instead."""
        line = " ".join(message.split())
        if line in self.told:
            return
        self.told.add(line)
        log.log(logging.ERROR if kind == types.MessageType.Error else logging.WARNING, "%s", line)
        self._from_any_thread(self.window_show_message, types.ShowMessageParams(kind, line))

    def note(self, message: str) -> None:
        """Information: the log (`window/logMessage` in editors), once, never a prompt."""
        if message not in self.told:
            self.told.add(message)
            log.info("%s", message)

    def log_to_client(self, kind: types.MessageType, message: str) -> None:
        """`window/logMessage`, for client_log.ClientLogHandler; dropped before `initialize`."""
        self._from_any_thread(self.window_log_message, types.LogMessageParams(kind, message))

    def state(self) -> str:
        return "ready" if self.service.ready else ("error" if self.load_error else "loading")

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
        if reload and (self.service.backend is not None or self.load_error or self.loads_pending):
            self.start_loading()  # while a load runs, this one is queued behind it and wins

    def start_loading(self) -> None:
        """Load (or reload) the models on the worker, reporting progress and status. A load asked
        for while one runs is queued behind it (the scheduler's newest-wins), so a setting changed
        during loading is applied when the running load ends."""
        self.status("loading", "loading models", progress=0)
        self.loads_pending += 1

        def load(cancel) -> None:
            t0 = time.monotonic()
            try:
                info = self.service.load(lambda msg, pct: self.status("loading", msg, progress=pct))
            except Exception as e:  # ModelError and anything unexpected: the server stays up
                self.loads_pending -= 1
                self.load_error = str(e)
                log.exception("model loading failed")
                self.status("error", str(e))
                self.tell(f"speclsp: {e}", types.MessageType.Error)
                return
            self.loads_pending -= 1
            self.load_error = None
            if self.loads_pending:
                return  # a newer load waits: its settings are the ones to announce
            info["startup_ms"] = round((time.monotonic() - t0) * 1e3)
            log.info("models ready: %s", info)
            self.status("ready", self._announce(self.service.notices) or f"ready: {info['target']}", models=info)

        self.scheduler.submit("__models__", load)

    def _announce(self, notices: list[str]) -> str:
        """Loading notices: which models the server picked goes to the log and, in short, to the
        status; a named model that could not be used is a problem to tell. Returns the short form."""
        picked = [n for n in notices if CHOSEN_BY_ITSELF in n]
        for notice in notices:
            if notice in picked:
                self.note(notice)
            else:
                self.tell(f"speclsp: {notice}")
        return f"ready: {picked[0].split('. ', 1)[0]}" if picked else ""  # its first sentence

    # -- the completion pipeline -------------------------------------------------------------------

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

    def completion_fallback_wanted(self) -> bool:
        """Whether `textDocument/completion` carries the suggestion too. Not for clients that show
        ghost text: VS Code asks for both on every keystroke, runs the model twice and shows the
        same text twice. Editors without inline completion (Neovim 0.11, eglot, Helix) need it."""
        mode = self.settings.completion_fallback
        if mode != "auto":
            return mode == "always"
        caps = self.client_capabilities.text_document
        return not (caps and caps.inline_completion)

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
            return self.service.complete(ctx, uri, cancel, arrived=t0)  # the budget counts the queue

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
            if ctx is not None:  # None: too large to complete
                self.background(uri, lambda cancel: self.service.warm(ctx, uri, cancel))

        self.warm_timers[uri] = self.loop.call_later(WARM_AFTER_S, fire)


class _Discard:
    """The writer once the session is over: nothing more reaches the client."""

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _brief(record: dict) -> dict:
    keys = ("latency_ms", "accepted_tokens", "drafted_tokens", "generated_tokens", "cancelled")
    return {k: record[k] for k in keys if k in record}


def _version(ls: SpeclspServer, uri: str) -> int | None:
    doc = ls.workspace.text_documents.get(uri)
    return None if doc is None else doc.version


def _accept_command(rid: int) -> types.Command:
    return types.Command(title="speclsp: accepted", command="speclsp.accepted", arguments=[rid])


def create_server(settings: Settings | None = None) -> SpeclspServer:
    server = SpeclspServer(settings)

    @server.feature(types.INITIALIZE)
    def on_initialize(ls: SpeclspServer, params: types.InitializeParams) -> None:
        """Settings come first from initializationOptions; loading starts once initialized."""
        ls.loop = asyncio.get_running_loop()
        ls.protocol._workspace = SyncedWorkspace.like(ls.workspace)  # edits applied by LSP's line rule
        ls.client_name = params.client_info.name if params.client_info else ""
        ls.configure(params.initialization_options or {})
        if params.process_id:
            ls.watch_editor(params.process_id)
        # capabilities are built after this handler; a later TCP session decides afresh for its client
        ls.protocol.fm.features.pop(types.TEXT_DOCUMENT_COMPLETION, None)
        ls.protocol.fm.feature_options.pop(types.TEXT_DOCUMENT_COMPLETION, None)
        if ls.completion_fallback_wanted():
            ls.feature(types.TEXT_DOCUMENT_COMPLETION, COMPLETION_OPTIONS)(completion_fallback)

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
        ls.warm_later(doc.uri, end_position(doc.text, ls.encoding))

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def on_change(ls: SpeclspServer, params: types.DidChangeTextDocumentParams) -> None:
        """After an edit the cursor is usually right after the inserted text: warm the cache there."""
        change = params.content_changes[-1] if params.content_changes else None
        if isinstance(change, types.TextDocumentContentChangePartial):
            start, end = change.range.start, end_position(change.text, ls.encoding)
            column = (start.character if end.line == 0 else 0) + end.character
            ls.warm_later(params.text_document.uri, types.Position(start.line + end.line, column))

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def on_close(ls: SpeclspServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.oversized.discard(uri)
        ls.out_of_sync.discard(uri)
        timer = ls.warm_timers.pop(uri, None)
        if timer is not None:
            timer.cancel()
        ls.scheduler.submit(uri, lambda cancel: ls.service.forget(uri), foreground=False)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls: SpeclspServer, params: types.InlineCompletionParams) -> types.InlineCompletionList:
        """Ghost text at the cursor: context → schedule → engine → post-process → one item.

        Nothing is answered for a document that changed while the request ran: the answer was made
        for text the user no longer has, and a client that keeps old answers (Neovim) would show it."""
        uri = params.text_document.uri
        ctx, asked = ls.cursor(uri, params.position), _version(ls, uri)
        if ctx is None:
            return types.InlineCompletionList(items=[])
        trigger = "invoked" if params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked else "automatic"
        completion, rid = await ls.complete(uri, ctx, trigger)
        if completion is None or not completion.text or _version(ls, uri) != asked:
            return types.InlineCompletionList(items=[])
        return types.InlineCompletionList(items=[
            inline_item(ctx, params.position, completion.text, _accept_command(rid), ls.encoding)])

    async def completion_fallback(ls: SpeclspServer, params: types.CompletionParams) -> types.CompletionList:
        """The fallback for editors without inline completion: one item whose text is the completion.
        Registered at `initialize` only where wanted (see completion_fallback_wanted); answered
        empty, without the model, when a later setting turned it off."""
        ctx = ls.cursor(params.text_document.uri, params.position) if ls.completion_fallback_wanted() else None
        if ctx is None:
            return types.CompletionList(is_incomplete=False, items=[])
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
        """Stop model work without waiting for a forward in progress: the answer goes out at once."""
        ls.scheduler.close(timeout=0)

    return server


def _completion_item(ctx: CursorContext, position: types.Position, text: str, rid: int,
                     encoding: str, snippet: bool) -> types.CompletionItem:
    """Replace the word being typed with word + completion, so clients' own filtering keeps it.

    As a snippet with nothing to expand where the client takes snippets (see snippets_welcome)."""
    word = WORD_RE.search(ctx.line_prefix).group(0)
    start = types.Position(position.line, position.character - text_units(word, encoding))
    label = (word + text).split("\n", 1)[0].strip() or text.strip()[:60]
    new_text = re.sub(r"([\\$}])", r"\\\1", word + text) if snippet else word + text
    return types.CompletionItem(
        label=label[:80], kind=types.CompletionItemKind.Text, detail="speclsp",
        filter_text=word + text.split("\n", 1)[0], sort_text="0",
        text_edit=types.TextEdit(types.Range(start, position), new_text),
        insert_text_format=types.InsertTextFormat.Snippet if snippet else types.InsertTextFormat.PlainText,
        command=_accept_command(rid))


async def _progress_while_loading(ls: SpeclspServer) -> None:
    """Start loading, with window/workDoneProgress when the client supports it. A later TCP
    session finds the models loaded: it is told so at once."""
    if ls.service.ready:
        ls.status("ready", f"ready: {ls.service.backend.info['target']}", models=ls.service.backend.info)
        return
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
