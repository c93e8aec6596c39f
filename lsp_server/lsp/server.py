"""The LSP server: the factory that registers every handler on a SpeclspServer (session.py).

The handlers, by part of the protocol: lifecycle.py (initialize, settings, shutdown),
sync_handlers.py (documents opened, changed, closed), completion_handlers.py (inline completion,
the completion fallback, the `speclsp.*` commands). They stay thin: the work lives in the
server's parts and the modules they call.
"""

from __future__ import annotations

from ..config import Settings
from . import completion_handlers, lifecycle, sync_handlers
from .session import SpeclspServer

__all__ = ["SpeclspServer", "create_server"]

FEATURES = lifecycle.FEATURES + sync_handlers.FEATURES + completion_handlers.FEATURES  # (method, options, handler)
COMMANDS = completion_handlers.COMMANDS  # (name, handler)


def create_server(settings: Settings | None = None) -> SpeclspServer:
    """A server with every handler registered, as pygls' decorators would at import time; a
    factory rather than a module-level server, so each test and each `speclsp serve` gets its own."""
    server = SpeclspServer(settings)
    for method, options, handler in FEATURES:
        server.feature(method, options)(handler)
    for name, handler in COMMANDS:
        server.command(name)(handler)
    return server
