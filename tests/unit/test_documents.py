"""LSP positions in UTF-16 (default), UTF-8 and UTF-32, on emoji and CJK text."""

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lsp_server.lsp.documents import PositionError, cursor_context, offset_at, position_at

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
    from lsp_server.lsp import documents

    monkeypatch.setattr(documents, "LINE_BLOCK", block)
    text = "a\n\n中文😀\nlonger line here\n\n\nx"
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    assert [documents.line_start(text, n) for n in range(len(starts))] == starts
    with pytest.raises(PositionError):
        documents.line_start(text, len(starts))


def units_of(ch: str, encoding: str) -> int:
    """The slow reference: one character's code units, by its code point."""
    if encoding == "utf-8":
        return len(ch.encode("utf-8", "surrogatepass"))
    return 1 if encoding == "utf-32" or ord(ch) <= 0xFFFF else 2


def reference_offset(line: str, character: int, encoding: str) -> int | str:
    """Walk the line a character at a time: the offset, or which error the position is."""
    units = 0
    for i, ch in enumerate(line + "\n"):
        if units >= character:
            return i if units == character else "inside"
        units += units_of(ch, encoding)
    return "past the end"


@given(line=st.text(st.sampled_from("ab é中文😀🀄\t\ud83d\udc00\x00"), max_size=12),
       character=st.integers(0, 40), encoding=st.sampled_from(["utf-8", "utf-16", "utf-32"]))
@example(line="😀x", character=1, encoding="utf-16")  # between the halves of a surrogate pair
@example(line="é", character=1, encoding="utf-8")  # inside the line's last character
@example(line="\ud83d\udc00", character=1, encoding="utf-16")  # two lone surrogates are two characters
@example(line="中", character=4, encoding="utf-8")  # one past the end
@settings(max_examples=300)
def test_offsets_agree_with_walking_the_line(line, character, encoding):
    expected = reference_offset(line, character, encoding)
    source = "first 😀\n" + line + "\nlast"
    if isinstance(expected, int):
        assert offset_at(source, 1, character, encoding) == len("first 😀\n") + expected
    else:
        with pytest.raises(PositionError, match=expected):
            offset_at(source, 1, character, encoding)
