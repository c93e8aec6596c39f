"""What the user is told: `speclsp/status`, load progress, and messages, each once; safe from any thread.

A part of SpeclspServer (session.py): the model worker calls these as well as the handlers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types

log = logging.getLogger(__name__)

STATUS = "speclsp/status"
# Notices of models the server picked by itself (no CodeLlama-7b or draft in the local cache) are
# information; any other notice is about a model the settings named and could not be used.
CHOSEN_BY_ITSELF = "is not on this machine"


class Notices:
    """Status, progress, problems and information; see SpeclspServer for the state."""

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

    def state(self) -> str:
        return "ready" if self.service.ready else ("error" if self.load_error else "loading")

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

    def announce(self, notices: list[str]) -> str:
        """Loading notices: which models the server picked goes to the log and, in short, to the
        status; a named model that could not be used is a problem to tell. Returns the short form."""
        picked = [n for n in notices if CHOSEN_BY_ITSELF in n]
        for notice in notices:
            if notice in picked:
                self.note(notice)
            else:
                self.tell(f"speclsp: {notice}")
        return f"ready: {picked[0].split('. ', 1)[0]}" if picked else ""  # its first sentence

    def log_to_client(self, kind: types.MessageType, message: str) -> None:
        """`window/logMessage`, for client_log.ClientLogHandler; dropped before `initialize`."""
        self._from_any_thread(self.window_log_message, types.LogMessageParams(kind, message))

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


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
