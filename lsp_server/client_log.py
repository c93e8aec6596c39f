"""The server's ordinary log goes to the editor as `window/logMessage`; stderr keeps warnings and errors.

Editors show every line a server writes on stderr as an error (`[error]` in VS Code's output
channel, ERROR in Neovim's lsp.log), so INFO and DEBUG records travel as `window/logMessage`
with their type instead, and the editor files them at their level. The records carry
measurements and model names, never document or completion text.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from lsprotocol import types


class LogSink(Protocol):
    def log_to_client(self, kind: types.MessageType, message: str) -> None: ...


class ClientLogHandler(logging.Handler):
    """Sends records below WARNING to the client; the stderr handler takes the rest."""

    def __init__(self, sink: LogSink):
        super().__init__(logging.DEBUG)
        self.sink = sink
        self.addFilter(lambda record: record.levelno < logging.WARNING)
        self.setFormatter(logging.Formatter("%(message)s"))  # the editor adds time and level
        self._sending = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._sending, "active", False):
            return  # logged while sending a record: sending it too would loop
        self._sending.active = True
        try:
            kind = types.MessageType.Info if record.levelno >= logging.INFO else types.MessageType.Log
            self.sink.log_to_client(kind, self.format(record))
        except Exception:
            self.handleError(record)
        finally:
            self._sending.active = False


def not_a_stale_cancel(record: logging.LogRecord) -> bool:
    """Filter for pygls' logger: drop its warning about `$/cancelRequest` for a request already
    answered. VS Code's cancels often cross the answer; each would be an error line in the editor."""
    return not record.getMessage().startswith("Cancel notification for unknown message id")
