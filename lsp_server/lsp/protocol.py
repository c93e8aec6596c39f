"""JSON-RPC edge cases pygls leaves unanswered, and the message loop.

Every message that carries an id gets an answer, and the server goes on:
- a request that cannot be read gets "invalid params" (-32602) with its id (pygls only logs);
- a body that is not JSON gets a parse error (-32700, id null); one nested too deep to parse,
  or too large to read, gets "invalid request" (-32600) with the id found at its start;
- a message that is not JSON-RPC 2.0, a notification method sent with an id, and any request
  after `shutdown` get "invalid request" (-32600).
The log names the method and the problem, never the message's content: a document's text must
not reach the log.
`exit` ends the message loop instead of raising SystemExit from inside it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from typing import Any

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcInvalidRequest
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from .framing import MAX_FRAME_BYTES, FrameReader, Refused

log = logging.getLogger(__name__)


class _Answered:
    """Stands in for a message that was already answered with an error."""

    jsonrpc = None


ID_AT_START = re.compile(rb'"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\]|\\.){0,200}")')


class SpeclspProtocol(LanguageServerProtocol):
    required_token: str | None = None  # over TCP: what `initialize` must carry before anything else
    authenticated = False
    rejected = False  # the TCP client failed to authenticate: its connection ends

    def handle_frame(self, body: bytes | Refused) -> None:
        """Parse one frame's body and handle it; whatever goes wrong is answered, not raised."""
        if isinstance(body, Refused):
            log.warning("refused a message of %d bytes (over the %d MiB limit)", body.size, MAX_FRAME_BYTES >> 20)
            self._refuse(_sniff_id(body.head), "the message is over the size limit")
            return
        try:
            message = json.loads(body, object_hook=self.structure_message)
        except (json.JSONDecodeError, UnicodeDecodeError):
            log.warning("a message that is not JSON (%d bytes)", len(body))
            self._send_data(parse_error_response())
            return
        except RecursionError:
            log.warning("a message nested too deep to read (%d bytes)", len(body))
            self._refuse(_sniff_id(body[:4096]), "the message is nested too deep")
            return
        except JsonRpcException as e:
            log.warning("an unreadable message: %s", type(e).__name__)
            return
        try:
            self.handle_message(message)
        except Exception as e:  # a handler fault must not end the loop; its text may hold code
            log.error("handling a message failed: %s", type(e).__name__)

    def _authenticate(self, message, method: str) -> bool:
        """Over TCP the first message must be `initialize` with the token; else the connection ends."""
        from .tcp import token_matches

        params = getattr(message, "params", None)
        if method == "initialize" and token_matches(self.required_token, getattr(params, "initialization_options", None)):
            self.authenticated = True
            return True
        log.warning("refused a TCP client: %s without the token", method[:100] or "a message")
        self._refuse(getattr(message, "id", None), "authentication required: send initializationOptions.token "
                                                   "(the secret in the server's token file)")
        self.rejected = True
        return False

    def _refuse(self, msg_id, why: str) -> None:
        if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool):
            self._send_response(msg_id, error=JsonRpcInvalidRequest(why).to_response_error())

    def structure_message(self, data: dict[str, Any]):
        if "jsonrpc" in data and "id" in data and "method" in data and _is_notification(self.get_message_type(
                data["method"])):
            log.warning("notification %s sent with an id", str(data["method"])[:100])
            self._refuse(data["id"], f"{str(data['method'])[:100]} is a notification: it takes no id")
            return _Answered()
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
        msg_id = message.get("id") if isinstance(message, dict) else getattr(message, "id", None)
        method = str(message.get("method") if isinstance(message, dict) else getattr(message, "method", ""))
        if isinstance(message, dict) or message.jsonrpc != self.VERSION:
            log.warning("a message to %s that is not JSON-RPC 2.0", method[:100])
            return self._refuse(msg_id, "not a JSON-RPC 2.0 message")
        if self.required_token is not None and not self.authenticated and not self._authenticate(message, method):
            return
        if self._shutdown and method != "exit":
            if method and msg_id is not None:
                log.info("request %s after shutdown", method[:100])
                return self._refuse(msg_id, "the server is shutting down")
            return
        super().handle_message(message)

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args) -> None:
        """End the session; the server ends the process once the loop has stopped.

        pygls' own handler raises SystemExit inside the event loop: a traceback in the editor's
        log, and the process then waits for threads still reading stdin or running a model forward.
        The exit code is LSP's: 0 after `shutdown`, else 1."""
        self._server.end_session(0 if self._shutdown else 1)


def _is_notification(message_type) -> bool:
    return message_type is not None and attrs.has(message_type) and "id" not in attrs.fields_dict(message_type)


def _sniff_id(head: bytes):
    """The id of a message that cannot be parsed, read from its first bytes, or None. Only bytes
    before any next header count: after a lying length they belong to the next message."""
    end = head.lower().find(b"content-length")
    match = ID_AT_START.search(head if end < 0 else head[:end])
    if match is None:
        return None
    try:
        return json.loads(match.group(1))
    except ValueError:
        return None


async def serve_frames(frames: FrameReader, protocol: SpeclspProtocol, stop: threading.Event) -> None:
    """Handle frames until the stream ends or `stop` is set."""
    while not stop.is_set():
        body = await frames.next_frame()
        if body is None:
            return
        protocol.handle_frame(body)


def stdin_chunks(stdin, executor):
    """`read_chunk` for a FrameReader over a binary file, read by a thread (stdin blocks)."""
    read = getattr(stdin, "read1", stdin.read)
    return lambda: asyncio.get_running_loop().run_in_executor(executor, read, 1 << 16)


def parse_error_response() -> dict:
    """JSON-RPC's answer to a body that is not JSON: id null, code -32700."""
    return {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error: the body is not JSON"}}
