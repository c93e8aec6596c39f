"""LSP positions in UTF-16 (default), UTF-8 and UTF-32, on emoji and CJK text."""

import pytest

from lsp_server.documents import PositionError, cursor_context, offset_at, position_at

TEXT = "a😀b\n中文x\r\nlast"


@pytest.mark.parametrize("encoding,line,char,expected_prefix", [
    ("utf-16", 0, 0, ""), ("utf-16", 0, 1, "a"), ("utf-16", 0, 3, "a😀"), ("utf-16", 0, 4, "a😀b"),
    ("utf-8", 0, 5, "a😀"), ("utf-32", 0, 2, "a😀"),
    ("utf-16", 1, 2, "a😀b\n中文"), ("utf-8", 1, 6, "a😀b\n中文"), ("utf-32", 1, 3, "a😀b\n中文x"),
    ("utf-16", 2, 4, "a😀b\n中文x\r\nlast"),
])
def test_positions(encoding, line, char, expected_prefix):
    ctx = cursor_context(TEXT, line, char, encoding)
    assert ctx.prefix == expected_prefix
    assert ctx.prefix + ctx.suffix == TEXT
    assert position_at(TEXT, len(expected_prefix), encoding) == (line, char)


@pytest.mark.parametrize("line,char,encoding", [
    (0, 2, "utf-16"),  # inside the emoji's surrogate pair
    (0, 3, "utf-8"),  # inside the emoji's UTF-8 bytes
    (0, 5, "utf-16"),  # past the end of the line
    (1, 4, "utf-16"),  # the \r is not a column
    (3, 0, "utf-16"),  # past the last line
    (-1, 0, "utf-16"), (0, -1, "utf-16"), (10**9, 0, "utf-16"), (0, 10**9, "utf-32"),
])
def test_bad_positions_are_errors(line, char, encoding):
    with pytest.raises(PositionError):
        offset_at(TEXT, line, char, encoding)


def test_end_of_document_after_newline():
    assert cursor_context("x\n", 1, 0).prefix == "x\n"


def test_line_rules_context():
    ctx = cursor_context("def f(x):\n    return x\n", 1, 4)
    assert ctx.line_prefix == "    " and ctx.line_suffix == "return x"


@pytest.mark.parametrize("block", [1, 2, 3, 7, 1 << 16])
def test_line_starts_across_counted_blocks(monkeypatch, block):
    from lsp_server import documents

    monkeypatch.setattr(documents, "LINE_BLOCK", block)
    text = "a\n\n中文😀\nlonger line here\n\n\nx"
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    assert [documents.line_start(text, n) for n in range(len(starts))] == starts
    with pytest.raises(PositionError):
        documents.line_start(text, len(starts))
