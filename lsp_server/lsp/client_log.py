"""The server's ordinary log goes to the editor as `window/logMessage`; stderr keeps warnings and errors.

Editors show every line a server writes on stderr as an error (`[error]` in VS Code's output
channel, ERROR in Neovim's lsp.log), so INFO and DEBUG records travel as `window/logMessage`
with their type instead, and the editor files them at their level. The records carry
measurements and model names, never document or completion text.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the benchmarks log through here on machines without lsprotocol
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
            from lsprotocol import types

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


PLAIN_ARG = re.compile(r"^[\w$/.:\-]{1,80}$")  # ids and method names, never a document's text


def withhold_pygls_details(record: logging.LogRecord) -> bool:
    """Filter for every handler: pygls' own records keep their wording but lose what may be code.

    pygls logs a failed request with its whole params (a didOpen's text) and parse failures with a
    traceback of the values. Its arguments stay only when they are plain ids or method names, and
    a traceback becomes the exception's type."""
    if not record.name.startswith("pygls"):
        return True
    if record.args:
        args = record.args if isinstance(record.args, tuple) else (record.args,)
        record.args = tuple(a if isinstance(a, (int, float)) or (isinstance(a, str) and PLAIN_ARG.match(a))
                            else "<withheld>" for a in args)
    if record.exc_info and record.exc_info[0] is not None:
        record.msg = f"{record.msg} ({record.exc_info[0].__name__})"
        record.exc_info, record.exc_text = None, None
    if "\n" in str(record.msg):  # a traceback formatted into the message itself
        record.msg, record.args = str(record.msg).split("\n", 1)[0] + " <details withheld>", ()
    return True
