"""JSON-RPC edge cases pygls leaves unanswered.

pygls drops a request whose params do not match the method's type (it only logs), so a client
waits for an answer that never comes. Every request must get an answer: here a request that
cannot be read gets an "invalid params" error (-32602) with its id, and the server goes on.
"""

from __future__ import annotations

import logging
from typing import Any

from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol

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
