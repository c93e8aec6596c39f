"""Frames from a byte stream: every well-formed frame after a malformed one is still read."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsp_server.lsp.framing import MAX_FRAME_BYTES, MAX_HEADER_BYTES, FrameReader, Refused


def frame(body: bytes, header: bytes = b"Content-Length") -> bytes:
    return header + b": " + str(len(body)).encode() + b"\r\n\r\n" + body


GOOD = [json.dumps({"jsonrpc": "2.0", "id": i, "method": "m"}).encode() for i in range(3)]


def read_chunks(chunks: list[bytes], held: list[int] | None = None) -> list:
    """Every frame from a stream arriving in these chunks; `held` gets the buffer size after each."""
    async def read_chunk() -> bytes:
        return chunks.pop(0) if chunks else b""

    async def run():
        reader, out = FrameReader(read_chunk), []
        while (f := await reader.next_frame()) is not None:
            out.append(f)
            if held is not None:
                held.append(len(reader.buffer))
        return out

    return asyncio.run(run())


def read_all(data: bytes, chunk: int = 7) -> list:
    return read_chunks([data[i:i + chunk] for i in range(0, len(data), chunk)])


def test_plain_frames():
    assert read_all(b"".join(frame(b) for b in GOOD)) == GOOD


@pytest.mark.parametrize("bad", [
    b'Content-Length: 5\r\n\r\n{"a": 1, "b": 2}',  # body longer than announced
    b"Content-Length: 10\r\n\r\n" + "é".encode() * 10,  # length counted in characters
    b"Content-Length: -5\r\n\r\n{}",  # negative
    b"Content-Length: abc\r\n\r\n{}",  # not a number
    b"\r\n\r\nnot a frame at all\r\n",
])
def test_a_bad_frame_loses_nothing_after_it(bad):
    frames = read_all(bad + b"".join(frame(b) for b in GOOD))
    assert frames[-3:] == GOOD


def test_header_names_ignore_case():
    assert read_all(frame(GOOD[0], b"content-length") + frame(GOOD[1], b"CONTENT-LENGTH")) == GOOD[:2]


def test_an_overlong_header_line_is_dropped_without_buffering_it():
    data = b"X-Junk: " + b"a" * (10 * MAX_HEADER_BYTES) + b"\r\n" + frame(GOOD[0])
    assert read_all(data, chunk=4096) == [GOOD[0]]


def test_an_oversized_body_is_refused_and_never_buffered():
    big = MAX_FRAME_BYTES + 10
    reader_data = b"Content-Length: %d\r\n\r\n" % big

    pieces = [reader_data] + [b" " * (1 << 20)] * (big >> 20) + [b" " * (big % (1 << 20))] + [frame(GOOD[1])]
    held: list[int] = []
    out = read_chunks(pieces, held)
    assert isinstance(out[0], Refused) and out[0].size == big and out[1:] == [GOOD[1]]
    assert max(held) < 2 << 20  # never more than a chunk or so in memory


@settings(max_examples=60, deadline=None)
@given(chunk=st.integers(1, 64), junk=st.binary(max_size=40).filter(lambda b: b"ength" not in b.lower()))
def test_any_chunking_and_junk_between_frames(chunk, junk):
    data = frame(GOOD[0]) + junk + b"\r\n" + frame(GOOD[1]) + frame(GOOD[2])
    assert read_all(data, chunk)[-2:] == GOOD[1:]
