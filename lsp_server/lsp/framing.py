"""JSON-RPC frames from a byte stream (stdio or a socket), tolerant of clients that get them wrong.

A frame is headers, a blank line, then a body of `Content-Length` bytes. pygls' own reader trusts
every frame; one wrong frame then loses every later one. Here:
- header names are matched without regard to case, and a `Content-Length` that is not a
  non-negative integer is ignored (the frame is skipped);
- after a body, anything up to the next header is skipped, and a header glued to the end of a
  longer-than-announced body is still found: the reader resynchronises on the next frame;
- a header line longer than MAX_HEADER_BYTES is dropped in pieces, never buffered whole;
- a body over MAX_FRAME_BYTES is refused, and read past in pieces (as noise before the next
  header, since an absurd length is more likely a lie than a real body), never buffered.
The stream is read in chunks through `read_chunk` (b"" at its end), so the same code serves the
standard input (a thread reads it) and a socket.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

MAX_FRAME_BYTES = 64 << 20  # a larger JSON-RPC body is refused rather than buffered
MAX_HEADER_BYTES = 8 << 10
LINE_TAIL = 64  # bytes kept of an over-long line: room for a Content-Length header at its end
CONTENT_LENGTH = re.compile(rb"content-length[ \t]*:[ \t]*(\S*)[ \t]*\r?$", re.IGNORECASE)


@dataclass
class Refused:
    """A frame whose body was skipped: its announced size was over the limit."""

    size: int
    head: bytes = b""  # its first bytes, where a request's id usually is


class FrameReader:
    def __init__(self, read_chunk: Callable[[], Awaitable[bytes]]):
        self.read_chunk = read_chunk
        self.buffer = bytearray()
        self.eof = False
        self._pending: asyncio.Future | None = None

    def close(self) -> None:
        """End the stream now (`exit`): the read in flight is abandoned, not waited for; a thread
        blocked reading stdin stays blocked until the process ends, and nothing waits for it."""
        self.eof = True
        if self._pending is not None:
            self._pending.cancel()

    async def next_frame(self) -> bytes | Refused | None:
        """The next body (bytes), a Refused marker, or None at the end of the stream."""
        while True:
            length = await self._headers()
            if length is None:
                return None
            if length > MAX_FRAME_BYTES:
                # not skipped by its length, which may be a lie: the next header is searched for,
                # and the body's bytes on the way are dropped like any other noise
                return Refused(length, bytes(self.buffer[:1024]))
            body = await self._take(length)
            if body is None:
                return None
            return body

    async def _headers(self) -> int | None:
        """Read header lines up to the blank line that ends them; the announced length."""
        length: int | None = None
        while True:
            line = await self._line()
            if line is None:
                return None
            if not line.strip(b"\r"):
                if length is not None:
                    return length
                continue  # a blank line with no length before it: noise between frames
            found = _content_length(line)
            if found is not None:
                length = found if found >= 0 else None

    async def _line(self) -> bytes | None:
        """One line without its \\n. Of a line longer than MAX_HEADER_BYTES only the end is kept,
        where a header glued to a body's leftovers would be; the rest is dropped as it comes."""
        while True:
            nl = self.buffer.find(b"\n")
            if 0 <= nl <= MAX_HEADER_BYTES:
                line = bytes(self.buffer[:nl])
                del self.buffer[:nl + 1]
                return line
            if nl > MAX_HEADER_BYTES:
                del self.buffer[:nl - LINE_TAIL]
            elif len(self.buffer) > MAX_HEADER_BYTES:
                del self.buffer[:len(self.buffer) - LINE_TAIL]
            elif not await self._fill():
                return None

    async def _take(self, n: int) -> bytes | None:
        while len(self.buffer) < n:
            if not await self._fill():
                return None
        body = bytes(self.buffer[:n])
        del self.buffer[:n]
        return body

    async def _fill(self) -> bool:
        if self.eof:
            return False
        self._pending = asyncio.ensure_future(self.read_chunk())
        try:
            chunk = await self._pending
        except asyncio.CancelledError:
            if not self.eof:  # not our close(): someone cancelled the loop itself
                raise
            return False
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        return True


def _content_length(line: bytes) -> int | None:
    """The length a header line announces: -1 for a malformed value, None for another header.

    The header may be glued to the end of the previous frame's overlong body, so it is searched
    for anywhere in the line."""
    at = line.lower().rfind(b"content-length")
    if at < 0:
        return None
    match = CONTENT_LENGTH.match(line, at)
    if match is None:
        return None
    value = match.group(1)
    return int(value) if value.isdigit() and len(value) <= 12 else -1
