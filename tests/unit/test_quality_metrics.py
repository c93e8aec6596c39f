"""The quality suite's measures of one suggestion, on tables of cases (non-ASCII included)."""

from __future__ import annotations

import pytest

from lsp_server.bench import quality_metrics as m
from lsp_server.bench.holes import Hole


@pytest.mark.parametrize("suggestion, expected, want", [
    ("foo(x)", "foo(x)", True),
    ("foo(x)\n    bar()", "foo(x)", True),  # only the first line is the hole's
    ("foo(x)  ", "foo(x)", True),  # trailing spaces do not count
    (" foo(x)", "foo(x)", False),  # leading ones do
    ("foo", "foo(x)", False),
    ("", "foo(x)", False),
    ("名前 = '🙂'", "名前 = '🙂'", True),
])
def test_exact(suggestion, expected, want):
    assert m.exact(suggestion, expected) is want


@pytest.mark.parametrize("suggestion, expected, want", [
    ("foo", "foo(x)", True),
    ("foo(x)", "foo(x)", True),  # the whole is a prefix too
    ("foo(x)\nbar", "foo(x)", True),
    ("foo(x) + 1", "foo(x)", False),
    ("fox", "foo(x)", False),
    ("", "foo(x)", False),  # empty is no match
    ("   ", "   foo", False),  # nor white space alone
    ("print('🙂", "print('🙂')", True),
    ("名", "名前", True),
])
def test_prefix_match(suggestion, expected, want):
    assert m.prefix_match(suggestion, expected) is want


@pytest.mark.parametrize("a, b, distance", [
    ("", "", 0), ("abc", "", 3), ("", "abc", 3), ("kitten", "sitting", 3), ("flaw", "lawn", 2),
    ("名前", "名字", 1), ("🙂a", "a", 1), ("abc", "abc", 0),
])
def test_levenshtein(a, b, distance):
    assert m.levenshtein(a, b) == distance == m.levenshtein(b, a)


@pytest.mark.parametrize("suggestion, expected, similarity", [
    ("abc", "abc", 1.0),
    ("", "", 1.0),
    ("", "abc", 0.0),
    ("kitten", "sitting", 1 - 3 / 7),
    ("kitten\nmore lines", "sitting", 1 - 3 / 7),  # the first line only
    ("名前 = 1", "名字 = 1", 1 - 1 / 6),
])
def test_edit_similarity(suggestion, expected, similarity):
    assert m.edit_similarity(suggestion, expected) == pytest.approx(similarity)


@pytest.mark.parametrize("suggestion, want", [("", True), ("  \n\t", True), ("x", False), ("\n名", False)])
def test_empty(suggestion, want):
    assert m.empty(suggestion) is want


@pytest.mark.parametrize("suggestion, expected, want", [
    (" x", "x", True),
    ("\nx", "x", True),
    ("\u3000名", "名", True),  # an ideographic space is white space too
    (" x", " x", False),  # the line goes on after a space
    ("x", " x", False),  # missing white space is a wrong first character, not this error
    ("", "x", False),
])
def test_leading_whitespace_error(suggestion, expected, want):
    assert m.leading_whitespace_error(suggestion, expected) is want


@pytest.mark.parametrize("code, want", [
    ("f(a, [b], {c: d})", True),
    ("f(a", False),
    ("f(a))", False),
    ("(]", False),
    ("s = '('", True),  # brackets in strings do not count
    ('s = "a', False),  # an unterminated string
    ("x = 1  # (", True),  # nor in comments
    ("x = '#' + f(", False),  # a # in a string starts no comment
    ('"""doc (', False),
    ('"""it\'s (', False),
    ('"""doc"""', True),
    ("'\\''", True),  # an escaped quote does not end the string
    ("'a\nb'", False),  # a one-quote string ends at its line
    ("[1,\n 2]", True),
    ("f'{x}' + g(y)", True),
    ("名前('🙂', [1])", True),
    ("名前('🙂'", False),
])
def test_balanced(code, want):
    assert m.balanced(code) is want


@pytest.mark.parametrize("line_prefix, suggestion, expected, want", [
    ("x = f(", "a, b", "a, b)", True),
    ("x = f(", "a, b)", "a, b)", False),
    ("x = f(", "a,\n      b)", "a, b)", False),  # closed on a later line of the suggestion
    ("x = f(", "", "a, b)", None),  # empty: not counted
    ("x = f(", "a, b", "a,", None),  # the true line is unbalanced itself: not counted
    ("s = '", "名前", "名前'", True),
    ("s = '", "名前'", "名前'", False),
])
def test_bracket_imbalance(line_prefix, suggestion, expected, want):
    assert m.bracket_imbalance(line_prefix, suggestion, "", expected) is want


@pytest.mark.parametrize("line_before, line_prefix, suggestion, expected, want", [
    ("", "x = ", "file'file'file'", "open(f)", True),
    ("", "x = ", "self.self.self.", "self.a", True),
    ("", "x = self.", "self.self.", "a", True),  # the run starts in the typed text
    ("", "x = ", "名前名前名前", "名前", True),
    ("", "x = ", "open(f)", "open(f)", False),
    ("", "# ", "======", "heading", False),  # one character repeated is a rule, not a loop
    ("", "x = ", "        y", "y", False),  # so is indentation
    ("", "x = ", "b'\\x00\\x00\\x00'", "b'\\x00\\x00\\x00'", False),  # the true text repeats too
    ("    a = 1", "    ", "a = 1", "b = 2", True),  # the line above written again
    ("    a = 1", "    ", "a = 1", "a = 1", False),  # ... as the true line is
    ("", "    ", "foo()\n    foo()", "foo()", True),  # a line written twice
    ("", "    ", "foo()\nfoo()", "foo()", False),  # other indentation: another line
    ("", "    ", "pass\n\n\n", "pass", False),  # blank lines repeat freely
])
def test_degenerate_repetition(line_before, line_prefix, suggestion, expected, want):
    assert m.degenerate_repetition(line_before, line_prefix, suggestion, expected) is want


@pytest.mark.parametrize("text, part", [("abc(d", "abc"), ("é_1+x", "é_1"), ("(x", ""), ("名前.x", "名前"),
                                        ("", ""), ("🙂x", "")])
def test_word_part(text, part):
    assert m.word_part(text) == part


@pytest.mark.parametrize("suggestion, expected, want", [
    ("ength(x)", "ength(x)", True),
    ("ength", "ength(x)", True),  # the word finished the right way, then stopped
    ("ength(y)", "ength(x)", True),  # the word is right; what follows is the other measures' business
    ("ength_of(x)", "ength(x)", False),  # a longer word
    ("eng", "ength(x)", True),
    ("(x)", "ength(x)", False),  # no word at all
    ("", "ength(x)", False),
    ("字 = 1", "前 = 1", False),
    ("前", "前 = 1", True),
])
def test_mid_word_correct(suggestion, expected, want):
    assert m.mid_word_correct(suggestion, expected) is want


def test_score_counts_mid_word_only_at_mid_word_holes():
    mid = Hole("a.py", 0, 6, "mid_line", "x = fo", "\n", "o(1)")
    start = Hole("a.py", 0, 0, "line_start", "", "\n", "x = foo(1)")
    assert m.score(mid, "o(1)")["mid_word_correct"] is True
    assert m.score(start, "x = foo(1)")["mid_word_correct"] is None
    assert m.score(start, "x = foo(1)") == {
        "exact": True, "prefix_match": True, "edit_similarity": 1.0, "empty": False, "bracket_imbalance": False,
        "repetition": False, "mid_word_correct": None, "leading_whitespace_error": False}
