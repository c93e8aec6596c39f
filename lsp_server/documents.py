"""Cursor context from an open document, with LSP positions in the negotiated encoding.

LSP counts a position's `character` in UTF-16 code units unless the client and server agree on
UTF-8 or UTF-32 (`general.positionEncodings`). Python strings index code points, so an emoji is
one index but two UTF-16 units and four UTF-8 units. Positions outside the document are an
error the client is told about, never silently clamped: a clamped position would complete at
the wrong place.
"""

from __future__ import annotations

from .prompt import CursorContext


class PositionError(ValueError):
    """The position does not exist in the document."""


def _units(char: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(char.encode("utf-8", "surrogatepass"))
    if encoding == "utf-32":
        return 1
    return 2 if ord(char) > 0xFFFF else 1


def text_units(text: str, encoding: str = "utf-16") -> int:
    """The length of `text` in the units LSP positions count in."""
    return sum(_units(ch, encoding) for ch in text)


def line_start(source: str, line: int) -> int:
    """Offset of the first character of `line` (0-based)."""
    if line < 0:
        raise PositionError(f"line {line} is negative")
    pos = 0
    for _ in range(line):
        nl = source.find("\n", pos)
        if nl < 0:
            raise PositionError(f"line {line} is past the end of the document ({source.count(chr(10)) + 1} lines)")
        pos = nl + 1
    return pos


def offset_at(source: str, line: int, character: int, encoding: str = "utf-16") -> int:
    """Code-point offset of an LSP position."""
    if character < 0:
        raise PositionError(f"character {character} is negative")
    start = line_start(source, line)
    end = source.find("\n", start)
    text = source[start:] if end < 0 else source[start:end]
    text = text.removesuffix("\r")
    units = 0
    for i, ch in enumerate(text):
        if units >= character:
            if units > character:
                raise PositionError(f"character {character} falls inside a multi-unit character on line {line}")
            return start + i
        units += _units(ch, encoding)
    if units == character:
        return start + len(text)
    raise PositionError(f"character {character} is past the end of line {line} ({units} {encoding} units)")


def position_at(source: str, offset: int, encoding: str = "utf-16") -> tuple[int, int]:
    """The LSP (line, character) of a code-point offset."""
    line = source.count("\n", 0, offset)
    start = source.rfind("\n", 0, offset) + 1
    return line, text_units(source[start:offset], encoding)


def cursor_context(source: str, line: int, character: int, encoding: str = "utf-16") -> CursorContext:
    offset = offset_at(source, line, character, encoding)
    return CursorContext(prefix=source[:offset], suffix=source[offset:])
