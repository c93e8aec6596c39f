"""The quality suite's hole cutter: deterministic, both kinds, the answer the rest of the line."""

from __future__ import annotations

import pytest

from lsp_server.bench.holes import KINDS, Hole, cut_holes, eligible, is_word_char

A = """import os

# a comment line that is long enough
def 名前(path):
    \"\"\"Return the name 🙂 of the path.\"\"\"
    return os.path.basename(path)


class Thing:
    def __init__(self, value):
        self.value = value + 1
        x = 1
"""
B = "for item in range(10):\n    print(item, '名前')\n"
TEXTS = [("a.py", A), ("b.py", B)]
ELIGIBLE = [(n, i) for n, t in TEXTS for i, line in enumerate(t.split("\n")) if eligible(line)]


@pytest.mark.parametrize("kind", KINDS)
def test_the_same_seed_cuts_the_same_holes(kind):
    assert cut_holes(TEXTS, 4, kind, seed=3) == cut_holes(TEXTS, 4, kind, seed=3)
    seeds = {tuple(cut_holes(TEXTS, 4, kind, seed=s)) for s in range(6)}
    assert len(seeds) > 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_hole_is_the_rest_of_its_line_missing_from_the_document(kind):
    for hole in cut_holes(TEXTS, 100, kind):
        text = dict(TEXTS)[hole.file]
        line = text.split("\n")[hole.line]
        assert hole.prefix + hole.expected + hole.suffix == text
        assert hole.line_prefix + hole.expected == line and hole.line_suffix == ""
        assert hole.suffix.startswith("\n") and hole.column == len(hole.line_prefix)


def test_line_start_holes_begin_after_the_indentation():
    for hole in cut_holes(TEXTS, 100, "line_start"):
        assert not hole.line_prefix.strip() and not hole.expected[0].isspace()


def test_mid_line_holes_leave_code_on_both_sides():
    holes = cut_holes(TEXTS, 100, "mid_line")
    for hole in holes:
        assert hole.line_prefix.strip() and len(hole.expected.rstrip()) >= 3
    assert len({(h.file, h.column) for h in holes}) > 2


def test_only_eligible_lines_each_at_most_once():
    holes = cut_holes(TEXTS, 100, "mid_line")
    assert sorted((h.file, h.line) for h in holes) == sorted(ELIGIBLE)
    assert all(eligible(dict(TEXTS)[h.file].split("\n")[h.line]) for h in holes)
    assert len(cut_holes(TEXTS, 2, "mid_line")) == 2


@pytest.mark.parametrize("line, want", [
    ("    return os.path.basename(path)", True),
    ("    # a comment line that is long enough", False),
    ("        x = 1", False),  # too short to be worth a hole
    ("", False),
])
def test_eligible(line, want):
    assert eligible(line) is want


@pytest.mark.parametrize("prefix, expected, want", [
    ("x = fo", "o(1)", True),
    ("x = foo", "(1)", False),
    ("x = ", "foo(1)", False),
    ("x = foo(", "a)", False),
    ("", "foo", False),
    ("n = 名", "前", True),
    ("n = 1", "2 + x", True),  # inside a number is inside a word too
    ("s = '🙂", "a'", False),
])
def test_mid_word(prefix, expected, want):
    assert Hole("a.py", 0, len(prefix), "mid_line", prefix, "\n", expected).mid_word is want


@pytest.mark.parametrize("ch, want", [("a", True), ("_", True), ("7", True), ("é", True), ("名", True),
                                      (" ", False), ("(", False), ("🙂", False), ("²", False)])
def test_is_word_char(ch, want):
    assert is_word_char(ch) is want


def test_line_before():
    assert Hole("a.py", 2, 4, "line_start", "one\ntwo\n    ", "\n", "three").line_before == "two"
    assert Hole("a.py", 0, 4, "line_start", "    ", "\n", "three").line_before == ""


def test_describe_has_no_document():
    hole = cut_holes(TEXTS, 1, "mid_line")[0]
    assert set(hole.describe()) == {"file", "line", "column", "kind", "mid_word", "expected"}
