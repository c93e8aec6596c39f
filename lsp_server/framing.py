"""JSON-RPC frames from a byte stream (stdio or a socket), tolerant of clients that get them wrong.

A frame is headers, a blank line, then a body of `Content-Length` bytes. pygls' own reader trusts
every frame; one wrong frame then loses every later one. Here:
- header names are matched without regard to case, and a `Content-Length` that is not a
  non-negative integer is ignored (the frame is skipped);
- after a body, anything up to the next header is skipped, and a header glued to the end of a
  longer-than-announced body is still found: the reader resynchronises on the next frame;
- a header line longer than MAX_HEADER_BYTES is dropped in pieces, never buffered whole;
- a body over MAX_FRAME_BYTES is read past in pieces and refused, never buffered.
The stream is read in chunks through `read_chunk` (b"" at its end), so the same code serves the
standard input (a thread reads it) and a socket.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

MAX_FRAME_BYTES = 64 << 20  # a larger JSON-RPC body is refused rather than buffered
MAX_HEADER_BYTES = 8 << 10
CONTENT_LENGTH = re.compile(rb"content-length[ \t]*:[ \t]*(\S*)[ \t]*\r?$", re.IGNORECASE)


@dataclass
class Refused:
    """A frame whose body was skipped: its announced size was over the limit."""

    size: int


class FrameReader:
    def __init__(self, read_chunk: Callable[[], Awaitable[bytes]]):
        self.read_chunk = read_chunk
        self.buffer = bytearray()
        self.eof = False

    async def next_frame(self) -> bytes | Refused | None:
        """The next body (bytes), a Refused marker, or None at the end of the stream."""
        while True:
            length = await self._headers()
            if length is None:
                return None
            if length > MAX_FRAME_BYTES:
                await self._skip(length)
                return Refused(length)
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
        """One line without its \\n; an over-long line comes back as a harmless stub."""
        while True:
            nl = self.buffer.find(b"\n")
            if 0 <= nl <= MAX_HEADER_BYTES:
                line = bytes(self.buffer[:nl])
                del self.buffer[:nl + 1]
                return line
            if nl > MAX_HEADER_BYTES or len(self.buffer) > MAX_HEADER_BYTES:
                await self._drop_line()
                return b"x"
            if not await self._fill():
                return None

    async def _drop_line(self) -> None:
        """Discard up to and including the next \\n, reading as needed, buffering nothing big."""
        while True:
            nl = self.buffer.find(b"\n")
            if nl >= 0:
                del self.buffer[:nl + 1]
                return
            self.buffer.clear()
            if not await self._fill():
                return

    async def _take(self, n: int) -> bytes | None:
        while len(self.buffer) < n:
            if not await self._fill():
                return None
        body = bytes(self.buffer[:n])
        del self.buffer[:n]
        return body

    async def _skip(self, n: int) -> None:
        while n > 0:
            if not self.buffer and not await self._fill():
                return
            k = min(n, len(self.buffer))
            del self.buffer[:k]
            n -= k

    async def _fill(self) -> bool:
        if self.eof:
            return False
        chunk = await self.read_chunk()
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
