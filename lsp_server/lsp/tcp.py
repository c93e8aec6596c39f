"""`speclsp serve --tcp`: one client at a time, and only one that knows the secret.

A TCP port on loopback can be reached by every local user and process, and what passes through it
is the user's code. So:
- one connection at a time: a second one is closed at once while the first is open (pygls would
  hand it the first client's answers);
- the first message must be `initialize` carrying `initializationOptions.token`, the secret in a
  file only the launching user can read (0600, in a 0700 folder), or the value of
  SPECLSP_TCP_TOKEN when the launcher sets it; anything else is refused and the connection closed;
- when a client goes, its session goes with it: documents, suggestions, cached KV, stats and
  settings; the models stay loaded for the next client.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import secrets
import threading
from pathlib import Path

from .framing import FrameReader

log = logging.getLogger(__name__)
TOKEN_ENV = "SPECLSP_TCP_TOKEN"


def default_token_file(port: int) -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or Path.home() / ".cache"
    return Path(base) / "speclsp" / f"tcp-{port}.token"


def make_token(path: Path) -> str:
    """The secret for this server: SPECLSP_TCP_TOKEN, else a new one written to `path` (0600)."""
    token = os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(32)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.parent.stat().st_uid != os.getuid():
        raise PermissionError(f"{path.parent} belongs to another user")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(token + "\n")
    return token


def token_matches(expected: str, options) -> bool:
    given = options.get("token") if isinstance(options, dict) else None
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def serve_tcp(server, host: str, port: int, token: str) -> None:
    """Listen until the server stops; see the module docstring for the rules."""
    busy = asyncio.Lock()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if busy.locked():
            log.warning("refused a second TCP connection while a client is connected")
            writer.close()
            return
        async with busy:
            server.begin_session(token)
            server.protocol.set_writer(writer)
            frames = server.reader = FrameReader(lambda: reader.read(1 << 16))
            try:
                while not server.protocol.rejected and (body := await frames.next_frame()) is not None:
                    server.protocol.handle_frame(body)
            except ConnectionError:
                pass
            finally:
                server.forget_session()
        writer.close()  # after the lock is free: a client that sees the close may connect again at once
        if server.exit_code is not None:  # `exit`: the process ends (cli.cmd_serve)
            done.set()

    done = asyncio.Event()

    async def listen() -> None:
        listener = await asyncio.start_server(connection, host, port)
        log.warning("listening on %s:%d; clients must send the token (initializationOptions.token)", host, port)
        async with listener:
            await done.wait()

    server._stop_event = threading.Event()
    try:
        asyncio.run(listen())
    finally:
        server.shutdown()

