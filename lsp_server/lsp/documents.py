"""The server's copy of each open document, and cursor context at LSP positions.

Two rules keep the server's text equal to the editor's:
- Lines end at "\\n", "\\r\\n" or "\\r" and nowhere else (LSP 3.17). Python's `str.splitlines`, which
  pygls uses to apply edits, also breaks at form feeds, U+2028 and other separators, so one form
  feed would shift every later edit; edits here are applied by offsets computed with LSP's rule.
- A position is counted in the negotiated encoding's units (UTF-16 unless the client and server
  agree on UTF-8 or UTF-32). Python strings index code points, so an emoji is one index but two
  UTF-16 units and four UTF-8 units.
A position that does not exist (past a line's end, past the last line, inside a character or a
line break) or a reversed range is an error, never clamped: a guessed edit would silently make the
server's copy differ from the editor's, and a guessed cursor would complete at the wrong place.
"""

from __future__ import annotations

import re

from lsprotocol import types
from pygls.workspace import TextDocument, Workspace

from ..prompt import CursorContext

LINE_BREAK = re.compile(r"\r\n|\r|\n")
LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")  # each line with its break
LINE_BLOCK = 1 << 16  # characters whose newlines are counted at once when looking for a line


class PositionError(ValueError):
    """The position does not exist in the document."""


def text_units(text: str, encoding: str = "utf-16") -> int:
    """Length of `text` in the encoding's code units: the one rule for every position and range."""
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == "utf-32":
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _chars_in_units(text: str, units: int, encoding: str) -> int | None:
    """How many characters of `text` make exactly `units` code units; None where those units end
    inside a character. A binary search over prefixes, since every character has at least one unit:
    a long minified line costs a few encodes at C speed, not a Python step per character."""
    lo, hi = 0, len(text)
    while lo < hi:  # the shortest prefix with at least `units` units
        mid = (lo + hi) // 2
        if text_units(text[:mid], encoding) < units:
            lo = mid + 1
        else:
            hi = mid
    return lo if text_units(text[:lo], encoding) == units else None


def encoding_name(kind) -> str:
    """'utf-8', 'utf-16' or 'utf-32' from what pygls negotiated (a PositionEncodingKind or a string)."""
    return str(getattr(kind, "value", kind) or "utf-16")


def line_count(source: str) -> int:
    return len(LINE_BREAK.findall(source)) + 1


def line_start(source: str, line: int) -> int:
    """Offset of the first character of `line` (0-based). In a file with only \\n line ends, whole
    blocks of lines are skipped by counting their newlines (a C-speed scan), so a line far down a
    big file is found quickly."""
    if line < 0:
        raise PositionError(f"line {line} is negative")
    if line and "\r" in source:  # CR or CRLF line ends: the general rule
        for i, brk in enumerate(LINE_BREAK.finditer(source), 1):
            if i == line:
                return brk.end()
        raise PositionError(f"line {line} is past the end of the document ({line_count(source)} lines)")
    pos, left = 0, line
    while left and pos + LINE_BLOCK < len(source):
        n = source.count("\n", pos, pos + LINE_BLOCK)
        if n >= left:
            break
        pos, left = pos + LINE_BLOCK, left - n
    for _ in range(left):
        nl = source.find("\n", pos)
        if nl < 0:
            raise PositionError(f"line {line} is past the end of the document ({line_count(source)} lines)")
        pos = nl + 1
    return pos


def offset_at(source: str, line: int, character: int, encoding: str = "utf-16") -> int:
    """Code-point offset of an LSP position."""
    if character < 0:
        raise PositionError(f"character {character} is negative")
    start = line_start(source, line)
    brk = LINE_BREAK.search(source, start)
    text = source[start:brk.start() if brk else len(source)]
    units = text_units(text, encoding)
    if character > units:
        raise PositionError(f"character {character} is past the end of line {line} ({units} {encoding} units)")
    chars = _chars_in_units(text, character, encoding)
    if chars is None:
        raise PositionError(f"character {character} falls inside a multi-unit character on line {line}")
    return start + chars


def position_at(source: str, offset: int, encoding: str = "utf-16") -> tuple[int, int]:
    """The LSP (line, character) of a code-point offset."""
    line, start = 0, 0
    for brk in LINE_BREAK.finditer(source, 0, offset):
        line, start = line + 1, brk.end()
    return line, text_units(source[start:offset], encoding)


def end_position(text: str, encoding: str) -> types.Position:
    """Where the cursor is after `text` is typed at the start of a document."""
    line, character = position_at(text, len(text), encoding)
    return types.Position(line, character)


def cursor_context(source: str, line: int, character: int, encoding: str = "utf-16") -> CursorContext:
    offset = offset_at(source, line, character, encoding)
    return CursorContext(prefix=source[:offset], suffix=source[offset:])


def apply_edit(source: str, edit: types.Range, text: str, encoding: str) -> str:
    """`source` with the range replaced by `text`; PositionError for a range that does not exist."""
    start = offset_at(source, edit.start.line, edit.start.character, encoding)
    end = offset_at(source, edit.end.line, edit.end.character, encoding)
    if end < start:
        raise PositionError(f"range end {edit.end.line}:{edit.end.character} is before its start "
                            f"{edit.start.line}:{edit.start.character}")
    return source[:start] + text + source[end:]


class SyncedDocument(TextDocument):
    """pygls' document with edits applied by LSP's line rule, and refused when their range does not
    exist. A refused edit leaves the text as it was and marks the document out of sync: its text no
    longer matches the editor's, so no completion is made for it until the editor sends the whole
    text again (a full change or a reopen)."""

    def __init__(self, *args, encoding: str = "utf-16", **kwargs):
        super().__init__(*args, **kwargs)
        self.encoding = encoding
        self.sync_error: str | None = None

    @property
    def lines(self):
        return tuple(LINE_RE.findall(self.source))

    def _apply_incremental_change(self, change: types.TextDocumentContentChangePartial) -> None:
        if self.sync_error is not None:
            return  # the text is already wrong: later edits would be placed by guesswork
        try:
            self._source = apply_edit(self.source, change.range, change.text, self.encoding)
        except PositionError as e:
            self.sync_error = f"an edit's range does not exist in the document ({e})"

    def _apply_full_change(self, change: types.TextDocumentContentChangeEvent) -> None:
        super()._apply_full_change(change)
        self.sync_error = None


class SyncedWorkspace(Workspace):
    """pygls' workspace whose text documents are SyncedDocuments."""

    @classmethod
    def like(cls, workspace: Workspace) -> SyncedWorkspace:
        """The same (still empty) workspace pygls made at `initialize`, with our documents."""
        return cls(workspace.root_uri, workspace._sync_kind, list(workspace.folders.values()),
                   workspace.position_encoding)

    def _create_text_document(self, doc_uri, source=None, version=None, language_id=None) -> TextDocument:
        return SyncedDocument(doc_uri, source=source, version=version, language_id=language_id,
                              sync_kind=self._sync_kind, position_codec=self._position_codec,
                              encoding=encoding_name(self.position_encoding))
