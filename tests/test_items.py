"""Inline items replace the cursor line with the line plus the suggestion (see lsp_server/items.py)."""

import pytest
from lsprotocol import types

from lsp_server.documents import cursor_context
from lsp_server.items import inline_item, inserted_text

ACCEPTED = types.Command(title="speclsp: accepted", command="speclsp.accepted", arguments=[7])


@pytest.mark.parametrize("source,line,char,encoding,text,insert,end", [
    # at the end of a line: the line, then the suggestion
    ("def f(n):\n    return n", 1, 12, "utf-16", " + 1", "    return n + 1", 12),
    # mid-line: the rest of the line follows the suggestion and the range covers it
    ("print(greet(name))\n", 0, 12, "utf-16", "'x', ", "print(greet('x', name))", 18),
    # an empty line: nothing before or after
    ("x = 1\n\ny = 2", 1, 0, "utf-16", "z = 3", "z = 3", 0),
    # a multi-line suggestion at the end of a line
    ("if n:\n    ", 1, 4, "utf-16", "return 1\nreturn 2", "    return 1\nreturn 2", 4),
    # positions count UTF-16 units: the emoji before and after the cursor are two each
    ("s = '😀😀'", 0, 7, "utf-16", "中", "s = '😀中😀'", 10),
    # ... or bytes when the session negotiated UTF-8
    ("é = 'é'", 0, 8, "utf-8", "x", "é = 'éx'", 9),
    # ... or code points with UTF-32
    ("a = '😀'", 0, 6, "utf-32", "b", "a = '😀b'", 7),
    # CRLF: the line ends before the carriage return, which the item leaves alone
    ("a = 1\r\nb = (\r\n", 1, 5, "utf-16", "2", "b = (2", 5),
    ("f()\r\n", 0, 2, "utf-16", "x", "f(x)", 3),
])
def test_inline_item_replaces_the_cursor_line(source, line, char, encoding, text, insert, end):
    ctx = cursor_context(source, line, char, encoding)
    item = inline_item(ctx, types.Position(line, char), text, ACCEPTED, encoding)
    assert item.insert_text == insert
    assert item.range == types.Range(types.Position(line, 0), types.Position(line, end))
    assert item.command is ACCEPTED


def test_inserted_text_is_what_the_item_adds_at_the_cursor():
    ctx = cursor_context("print(greet(name))\n", 0, 12)
    item = inline_item(ctx, types.Position(0, 12), "'x', ", ACCEPTED, "utf-16")
    assert inserted_text(item, "print(greet(", "name))") == "'x', "
    with pytest.raises(AssertionError, match="another line"):
        inserted_text(item, "x = (", "")
