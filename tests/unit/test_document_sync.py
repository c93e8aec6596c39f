"""The server's copy of a document never drifts from the editor's.

A reference model of the client keeps the document as a list of lines with their line breaks
(as editors do) and turns random edits into LSP ranges in each position encoding; the server's
SyncedDocument applies the same changes. After every edit both texts must be equal. The
alphabet holds every character `str.splitlines` treats as a line break but LSP does not, CRLF,
lone CR, surrogate pairs and emoji. A range that does not exist is refused and reported.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsprotocol import types

from lsp_server.lsp.documents import SyncedDocument, SyncedWorkspace, cursor_context

ENCODINGS = ("utf-16", "utf-8", "utf-32")
PIECES = ["a", "bc", " ", "\t", "\x0c", "\x0b", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029",
          "\r\n", "\r", "\n", "😀", "中", "é", "𝕏y"]
EDITS_PER_EXAMPLE = 25
EXAMPLES = 45  # x 3 encodings x 25 edits = 3,375 edits per run


class ClientModel:
    """How an editor holds a document: lines and their breaks, split character by character."""

    def __init__(self, text: str):
        self.lines = self._split(text)

    @staticmethod
    def _split(text: str) -> list[tuple[str, str]]:
        lines, current, i = [], [], 0
        while i < len(text):
            ch = text[i]
            if ch == "\r" and text[i + 1:i + 2] == "\n":
                lines.append(("".join(current), "\r\n"))
                current, i = [], i + 2
                continue
            if ch in "\r\n":
                lines.append(("".join(current), ch))
                current = []
            else:
                current.append(ch)
            i += 1
        lines.append(("".join(current), ""))
        return lines

    @property
    def text(self) -> str:
        return "".join(body + brk for body, brk in self.lines)

    def offset(self, line: int, column: int) -> int:
        return sum(len(b) + len(k) for b, k in self.lines[:line]) + column

    def position(self, line: int, column: int, encoding: str) -> types.Position:
        head = self.lines[line][0][:column]
        units = {"utf-8": len(head.encode("utf-8")), "utf-32": len(head),
                 "utf-16": len(head.encode("utf-16-le")) // 2}[encoding]
        return types.Position(line, units)

    def edit(self, start: tuple[int, int], end: tuple[int, int], new: str) -> None:
        text = self.text
        self.lines = self._split(text[:self.offset(*start)] + new + text[self.offset(*end):])


def _change(rng: types.Range, text: str) -> types.TextDocumentContentChangePartial:
    return types.TextDocumentContentChangePartial(range=rng, text=text)


@st.composite
def spots(draw, model: ClientModel) -> tuple[int, int]:
    line = draw(st.integers(0, len(model.lines) - 1))
    return line, draw(st.integers(0, len(model.lines[line][0])))


texts = st.lists(st.sampled_from(PIECES), max_size=6).map("".join)


@pytest.mark.parametrize("encoding", ENCODINGS)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), initial=st.lists(st.sampled_from(PIECES), max_size=30).map("".join))
def test_random_edits_keep_the_texts_equal(encoding, data, initial):
    model = ClientModel(initial)
    doc = SyncedDocument("file:///doc.py", source=initial, encoding=encoding)
    for _ in range(EDITS_PER_EXAMPLE):
        a, b = sorted([data.draw(spots(model)), data.draw(spots(model))])
        new = data.draw(texts)
        doc.apply_change(_change(types.Range(model.position(*a, encoding), model.position(*b, encoding)), new))
        model.edit(a, b, new)
        assert doc.sync_error is None
        assert doc.source == model.text
        assert "".join(doc.lines) == doc.source and len(doc.lines) == len(model.lines) - (model.lines[-1] == ("", ""))


BASE = "abc\ndef"


@pytest.mark.parametrize("rng", [
    ((1, 10), (1, 10)),  # past the end of a line
    ((5, 0), (5, 0)),  # past the last line
    ((1, 2), (0, 1)),  # reversed
    ((0, 1), (0, 0)),  # reversed on one line
])
def test_a_range_that_does_not_exist_is_refused(rng):
    (sl, sc), (el, ec) = rng
    doc = SyncedDocument("file:///doc.py", source=BASE, encoding="utf-16")
    doc.apply_change(_change(types.Range(types.Position(sl, sc), types.Position(el, ec)), "X"))
    assert doc.source == BASE and doc.sync_error and "does not exist" in doc.sync_error
    # later edits are not guessed onto the wrong text; the whole text brings the copy back
    doc.apply_change(_change(types.Range(types.Position(0, 0), types.Position(0, 0)), "Y"))
    assert doc.source == BASE
    doc.apply_change(types.TextDocumentContentChangeWholeDocument(text="fresh"))
    assert doc.source == "fresh" and doc.sync_error is None


def test_inside_a_surrogate_pair_is_refused():
    doc = SyncedDocument("file:///doc.py", source="a😀b", encoding="utf-16")
    doc.apply_change(_change(types.Range(types.Position(0, 2), types.Position(0, 2)), "X"))
    assert doc.source == "a😀b" and doc.sync_error


def test_form_feed_does_not_shift_later_edits():
    doc = SyncedDocument("file:///doc.py", source="x = 1\x0cy = 2\nz = 3\n", encoding="utf-16")
    doc.apply_change(_change(types.Range(types.Position(1, 0), types.Position(1, 1)), "w"))
    assert doc.source == "x = 1\x0cy = 2\nw = 3\n"


def test_lone_cr_files_have_lines():
    source = "def f():\r    return 1\r"
    doc = SyncedDocument("file:///doc.py", source=source, encoding="utf-16")
    assert len(doc.lines) == 2
    assert cursor_context(source, 1, 4).line_prefix == "    "


def test_workspace_makes_synced_documents():
    from pygls.workspace import Workspace

    ws = SyncedWorkspace.like(Workspace("file:///w", position_encoding=types.PositionEncodingKind.Utf8))
    ws.put_text_document(types.TextDocumentItem(uri="file:///w/a.py", language_id="python", version=1, text="é"))
    doc = ws.get_text_document("file:///w/a.py")
    assert isinstance(doc, SyncedDocument) and doc.encoding == "utf-8"
