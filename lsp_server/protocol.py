"""JSON-RPC edge cases pygls leaves unanswered.

pygls drops a request whose params do not match the method's type (it only logs), so a client
waits for an answer that never comes. Every request must get an answer: here a request that
cannot be read gets an "invalid params" error (-32602) with its id, and the server goes on.
A body that is not JSON gets a parse error (-32700, id null), and a frame too large to be
reasonable is refused without reading it. `exit` ends the message loop instead of raising
SystemExit from inside it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

log = logging.getLogger(__name__)


class _Answered:
    """Stands in for a message that was already answered with an error."""

    jsonrpc = None


class SpeclspProtocol(LanguageServerProtocol):
    def structure_message(self, data: dict[str, Any]):
        try:
            return super().structure_message(data)
        except JsonRpcException:
            msg_id = data.get("id") if isinstance(data, dict) else None
            if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool) and "method" in data:
                method = str(data.get("method"))[:100]
                log.warning("request %r to %s has invalid params", msg_id, method)
                self._send_response(msg_id, error=JsonRpcInvalidParams(
                    f"invalid params for {method}").to_response_error())
                return _Answered()
            raise

    def handle_message(self, message):
        if isinstance(message, _Answered):
            return
        super().handle_message(message)

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args) -> None:
        """End the session; the server ends the process once the loop has stopped.

        pygls' own handler raises SystemExit inside the event loop: a traceback in the editor's
        log, and the process then waits for threads still reading stdin or running a model forward.
        The exit code is LSP's: 0 after `shutdown`, else 1."""
        self._server.end_session(0 if self._shutdown else 1)


MAX_FRAME_BYTES = 64 << 20  # a larger JSON-RPC frame is refused rather than buffered


class GuardedReader:
    """stdin for pygls' message loop, refusing frames whose Content-Length is over the limit.

    Reading an absurd Content-Length would block for bytes that never come, or buffer gigabytes.
    Instead the body is not read: the loop sees `null`, logs it, and resynchronises on the next
    valid header (the refused body's bytes are skipped as non-header lines).

    `close()` (on `exit`) hands the loop an end of input at once, although the thread reading
    stdin stays blocked until the client closes the pipe: nothing waits for that thread.
    """

    def __init__(self, stdin, executor, refused):
        self.stdin, self.executor, self.refused = stdin, executor, refused
        self.closed = False
        self._pending: asyncio.Future | None = None

    def readline(self) -> asyncio.Future:
        return self._read(self.stdin.readline)

    def readexactly(self, n: int) -> asyncio.Future:
        if n > MAX_FRAME_BYTES:
            self.refused(n)
            return self._answer(b"null")
        return self._read(self.stdin.read, n)

    def close(self) -> None:
        self.closed = True
        if self._pending is not None and not self._pending.done():
            self._pending.set_result(b"")

    def _read(self, fn, *args) -> asyncio.Future:
        if self.closed:
            return self._answer(b"")
        answer = self._pending = asyncio.get_running_loop().create_future()
        read = asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
        read.add_done_callback(lambda done: _pass_on(done, answer))
        return answer

    @staticmethod
    def _answer(data: bytes) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        future.set_result(data)
        return future


def _pass_on(read: asyncio.Future, answer: asyncio.Future) -> None:
    """What the read returned, unless `close()` answered first."""
    if answer.done():
        return
    if read.cancelled():
        answer.cancel()
    elif read.exception() is not None:
        answer.set_exception(read.exception())
    else:
        answer.set_result(read.result())


def parse_error_response() -> dict:
    """JSON-RPC's answer to a body that is not JSON: id null, code -32700."""
    return {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error: the body is not JSON"}}
