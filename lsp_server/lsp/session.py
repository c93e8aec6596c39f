"""The session: SpeclspServer's state, assembled from its parts, and its life (stdio or TCP, ending).

The parts, by responsibility: Notices (notices.py) says what the user is told, Loading (loading.py)
applies settings and loads the models, Completing (completing.py) takes a completion request
through the model worker. The handlers (server.py registers them) call these.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sys
import threading
from collections import deque

from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer

from .. import __version__
from ..config import Settings, SettingsMessages
from ..scheduler import Scheduler
from ..service import CompletionService
from .completing import Completing
from .framing import FrameReader
from .loading import Loading
from .notices import Notices
from .protocol import SpeclspProtocol, serve_frames, stdin_chunks
from .records import STATS_KEEP, RequestRecord

log = logging.getLogger(__name__)

EDITOR_CHECK_S = 1.0  # how often the editor's process is looked for


class SpeclspServer(Notices, Loading, Completing, LanguageServer):
    """Holds the session: settings, the model worker, the completion service and recent stats."""

    def __init__(self, settings: Settings | None = None):
        super().__init__("speclsp", __version__, protocol_cls=SpeclspProtocol)
        self.settings = settings or Settings()
        self.base_settings = self.settings  # from the command line; a new TCP session starts here
        self.service = CompletionService(self.settings)
        self.scheduler = Scheduler()
        self.messages = SettingsMessages()
        self.stats: deque[RequestRecord] = deque(maxlen=STATS_KEEP)
        self.request_ids = itertools.count(1)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.load_error: str | None = None
        self.unavailable: str | None = None  # why the last completion got no answer from a remote server
        self.warm_timers: dict[str, asyncio.TimerHandle] = {}
        self.client_name = ""
        self.progress_token: str | None = None  # the client's progress bar while models load
        self.told: set[str] = set()  # messages already shown or logged: each goes out once
        self.oversized: set[str] = set()  # documents over maxDocumentChars, already said so
        self.loads_pending = 0  # model loads submitted and not yet finished
        self.out_of_sync: set[str] = set()  # documents whose edits could not be applied
        self.reader: FrameReader | None = None
        self.exit_code: int | None = None  # set by `exit`; else decided when the input ends

    # -- the session's life ----------------------------------------------------------------------

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
