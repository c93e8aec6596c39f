"""The bracket and string reader: a table of code and what is open after it, checked against
Python's own tokenize on whole files."""

import io
import tokenize

import pytest

from lsp_server.brackets import final, state_at, steps

# (code, state before it, state after it; None: an error)
CASES = [
    ("foo(a, [b", (), ("(", "[")),
    ("foo(a, b)", (), ()),
    ("a, b)", ("(",), ()),
    ("a]", ("(",), None),  # the wrong kind of closer
    (")", (), None),  # nothing to close
    ("x = '(' + \"[\"", (), ()),  # brackets in strings do not count
    ("x = 1  # (", (), ("#",)),  # nor in a comment, which lasts to the line's end
    ("x = 1  # (\ny = [", (), ("[",)),
    ("s = 'it\\'s'", (), ()),  # an escaped quote
    ("s = r'\\''", (), ()),  # in a raw string too, for where the string ends
    ('s = """a\n(b\'', (), ('"""',)),  # a triple-quoted string spans lines
    ('c"""\n', ('"""',), ()),  # closing one opened before
    ("s = 'abc\n", (), None),  # a one-line string cannot span lines
    ("s = 'abc\\\ndef'", (), ()),  # unless the line ends in a backslash
    ("f'{x['k']}'", (), ()),  # an f-string's field is code, with its own strings
    ("f'{x[\"k\"]:>{w}}{{'", (), ()),
    ("f'{{not a field'", (), ()),
    ("rb'(' + Rf\"{(a)}\"", (), ()),
    ("f'{", (), ("f'", "{")),
    ("x = [1,\n     2", (), ("[",)),
    ("x = (1 + \\\n     2)", (), ()),
    ("'中文 (😀'", (), ()),  # non-ASCII text inside a string
    ("变量 = [数据, 😀", (), ("[",)),
    ("don't", ('"""',), ('"""',)),  # inside a docstring, a quote of the other kind is text
]


@pytest.mark.parametrize("code,before,after", CASES)
def test_what_is_open_after_code(code, before, after):
    assert final(code, before) == after


def test_a_string_opening_is_reported_at_its_prefix():
    assert [i for i, _ in steps("x = rb'a'")] == [4, 8, 9]  # opened at "r", closed at 8, the end
    assert [i for i, _ in steps("x = f(a)")] == [5, 7, 8]


def test_lenient_reading_skips_stray_closers():
    assert final("a)\nb = [1", (), strict=False) == ("[",)
    assert final("s = 'abc\nx = (", (), strict=False) == ("(",)


def test_state_at_starts_from_the_nearest_def():
    prefix = 'x = """\n' + "text (\n" * 3 + 'not closed here\n"""\ndef f(a,\n      b'
    assert state_at(prefix) == ("(",)
    assert state_at('def f():\n    """Return the') == ('"""',)
    assert state_at("") == ()


def tokenize_states(text):
    """(bracket depth, inside a string) at each line's start, from Python's tokenize."""
    events, string_lines = [], set()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.OP and tok.string in "([{)]}":
            events.append((tok.start[0], 1 if tok.string in "([{" else -1))
        elif tok.type == tokenize.STRING and tok.end[0] > tok.start[0]:
            string_lines.update(range(tok.start[0] + 1, tok.end[0] + 1))
    out = []
    for line in range(1, text.count("\n") + 2):
        out.append((sum(d for row, d in events if row < line), line in string_lines))
    return out


def our_states(text):
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    events = list(steps(text, (), strict=False))
    out, state, k = [], (), 0
    for start in starts:
        while k < len(events) and events[k][0] < start:
            state = events[k][1]
            k += 1
        out.append((sum(item in "([{" for item in state), any(item[-1] in "'\"" for item in state)))
    return out


def test_agrees_with_tokenize_at_every_line_start():
    text = '''"""Module (docstring) with 'quotes' and [brackets."""
import os  # a comment with (

TABLE = {
    "a": [1, 2,
          3],
    'b': f"{os.sep!r:>{4}}",
}


def f(x,
      y="it's"):
    s = """
    ( not a bracket
    """
    return (x +
            y) + r'\\d' + '\\''
'''
    assert our_states(text) == tokenize_states(text)
