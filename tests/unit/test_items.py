"""Item shaping (lsp_server/items.py): inline items replace the cursor line with the line plus the
suggestion; completion items replace the word being typed, as a snippet or plain text; both carry
the accept command."""

import pytest
from lsprotocol import types

from lsp_server.lsp.documents import cursor_context
from lsp_server.lsp.items import accept_command, completion_item, inline_item, inserted_text, snippets_welcome

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


def test_the_accept_command_names_the_request():
    assert accept_command(7) == ACCEPTED
    assert accept_command(8).arguments == [8]


PLAIN, SNIPPET = types.InsertTextFormat.PlainText, types.InsertTextFormat.Snippet


@pytest.mark.parametrize("source,char,encoding,text,snippet,start,new_text,label,filter_text", [
    # the word being typed is replaced with the word plus the suggestion
    ("    return na", 13, "utf-16", "me + 1", False, 11, "name + 1", "name + 1", "name + 1"),
    ("    return na", 13, "utf-16", "me + 1", True, 11, "name + 1", "name + 1", "name + 1"),
    # a snippet escapes $, } and backslash so they mean themselves; plain text leaves them alone
    ("x = ", 4, "utf-16", "f'${a}' \\ 1", True, 4, "f'\\${a\\}' \\\\ 1", "f'${a}' \\ 1", "f'${a}' \\ 1"),
    ("x = ", 4, "utf-16", "f'${a}' \\ 1", False, 4, "f'${a}' \\ 1", "f'${a}' \\ 1", "f'${a}' \\ 1"),
    # $ belongs to the word (JavaScript, PHP)
    ("let $fo", 7, "utf-16", "o = 1", True, 4, "\\$foo = 1", "$foo = 1", "$foo = 1"),
    # a suggestion that starts a new line: labelled by its first words, filtered by the empty word
    ("def f():", 8, "utf-16", "\n    return 1", False, 8, "\n    return 1", "return 1", ""),
    # the word's start counts the session's units: CJK is one UTF-16 unit, three UTF-8 bytes
    ("x = 中文", 6, "utf-16", "字", False, 4, "中文字", "中文字", "中文字"),
    ("x = 中文", 10, "utf-8", "字", False, 4, "中文字", "中文字", "中文字"),
    # a long line: the label is cut, the edit is whole
    ("", 0, "utf-16", "a" * 100, False, 0, "a" * 100, "a" * 80, "a" * 100),
])
def test_completion_item_replaces_the_word_being_typed(source, char, encoding, text, snippet, start, new_text,
                                                       label, filter_text):
    ctx = cursor_context(source, 0, char, encoding)
    item = completion_item(ctx, types.Position(0, char), text, ACCEPTED, encoding, snippet)
    assert item.text_edit == types.TextEdit(types.Range(types.Position(0, start), types.Position(0, char)), new_text)
    assert (item.label, item.filter_text) == (label, filter_text)
    assert item.insert_text_format == (SNIPPET if snippet else PLAIN)
    assert (item.kind, item.detail, item.sort_text) == (types.CompletionItemKind.Text, "speclsp", "0")
    assert item.command is ACCEPTED


def capabilities(snippet_support: bool | None) -> types.ClientCapabilities:
    if snippet_support is None:
        return types.ClientCapabilities(text_document=types.TextDocumentClientCapabilities())
    return types.ClientCapabilities(text_document=types.TextDocumentClientCapabilities(
        completion=types.CompletionClientCapabilities(
            completion_item=types.ClientCompletionItemOptions(snippet_support=snippet_support))))


@pytest.mark.parametrize("snippet_support,client,welcome", [
    (True, "Visual Studio Code", True),
    (True, "Neovim", True),
    (True, "helix", False),  # indents a multi-line snippet's later lines twice
    (True, "Helix", False),
    (False, "Emacs", False),  # eglot without yasnippet would show the escapes
    (None, "Emacs", False),  # no completion capabilities at all
])
def test_snippets_go_where_the_client_expands_them(snippet_support, client, welcome):
    assert snippets_welcome(capabilities(snippet_support), client) is welcome
    assert snippets_welcome(types.ClientCapabilities(), client) is False
