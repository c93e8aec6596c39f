"""How good one suggestion is for one hole, measured apart from the product's own post-processing.

Each function takes plain text, so the measures can be checked by hand (tests/unit/test_quality_metrics.py).
The first line of a suggestion is what the hole asks for; a suggestion may go on past it, and the
bracket and repetition checks look at all of it, since all of it would be inserted. Torch-free.
"""

from __future__ import annotations

import re
from itertools import pairwise

from .holes import is_word_char

OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = set(OPENERS.values())
# a unit of 2-20 characters written three or more times in a row ("file'file'file'", "_test_test_test"),
# looked for at every position (a lookahead), so one run cannot hide another that overlaps it
REPEATED_UNIT = re.compile(r"(?=(.{2,20}?)\1{2,})", re.DOTALL)


def first_line(text: str) -> str:
    return text.split("\n", 1)[0]


def exact(suggestion: str, expected: str) -> bool:
    """The first line is the expected text (trailing spaces aside; leading ones count)."""
    return first_line(suggestion).rstrip() == expected.rstrip()


def prefix_match(suggestion: str, expected: str) -> bool:
    """The first line is a non-empty start of the expected text (the whole of it included)."""
    line = first_line(suggestion).rstrip()
    return bool(line.strip()) and expected.startswith(line)


def levenshtein(a: str, b: str) -> int:
    """Edits (insert, delete, replace one character) that turn `a` into `b`."""
    if len(a) < len(b):
        a, b = b, a
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def edit_similarity(suggestion: str, expected: str) -> float:
    """1 - edit distance / the longer length, between the first line and the expected text."""
    a, b = first_line(suggestion).rstrip(), expected.rstrip()
    longest = max(len(a), len(b))
    return 1.0 - levenshtein(a, b) / longest if longest else 1.0


def empty(suggestion: str) -> bool:
    return not suggestion.strip()


def leading_whitespace_error(suggestion: str, expected: str) -> bool:
    """The suggestion starts with white space (a newline too) where the expected text does not."""
    return suggestion[:1].isspace() and not expected[:1].isspace()


def balanced(code: str) -> bool:
    """Whether every bracket opened in `code` is closed, in order, and every string literal ends.
    Brackets inside strings and comments do not count; a backslash escapes the next character in a
    string; a single-quoted string may not run past its line."""
    stack, i, n = [], 0, len(code)
    while i < n:
        ch = code[i]
        if ch == "#":
            end = code.find("\n", i)
            i = n if end < 0 else end
        elif ch in "'\"":
            i = _string_end(code, i)
            if i < 0:
                return False
        elif ch in OPENERS:
            stack.append(OPENERS[ch])
        elif ch in CLOSERS and (not stack or stack.pop() != ch):
            return False
        i += 1
    return not stack


def _string_end(code: str, start: int) -> int:
    """Index of the last quote of the string literal opening at `start`; -1 if it never ends."""
    quote = code[start] * 3 if code.startswith(code[start] * 3, start) else code[start]
    i = start + len(quote)
    while i < len(code):
        if code[i] == "\\":
            i += 2
        elif code.startswith(quote, i):
            return i + len(quote) - 1
        elif code[i] == "\n" and len(quote) == 1:
            return -1
        else:
            i += 1
    return -1


def bracket_imbalance(line_prefix: str, suggestion: str, line_suffix: str, expected: str) -> bool | None:
    """Whether the line with the suggestion leaves brackets or quotes open that the true line
    closes. None (not counted) for an empty suggestion, or a true line that is itself unbalanced
    (a call spread over lines, a line inside a docstring)."""
    if empty(suggestion) or not balanced(line_prefix + expected + line_suffix):
        return None
    return not balanced(line_prefix + suggestion + line_suffix)


def degenerate_repetition(line_before: str, line_prefix: str, suggestion: str, expected: str) -> bool:
    """A short unit written three or more times back to back, or a line written twice in a row,
    that the true text (the line above and the true line) does not have itself."""
    written = line_prefix + suggestion
    truth = line_before + "\n" + line_prefix + expected
    for match in REPEATED_UNIT.finditer(written):
        unit = match.group(1)
        if len(set(unit)) > 1 and unit * 3 not in truth:
            return True
    lines = [line_before, *written.split("\n")]
    return any(a == b and a.strip() and f"{a}\n{b}" not in truth for a, b in pairwise(lines))


def word_part(text: str) -> str:
    """The identifier characters `text` starts with."""
    end = 0
    while end < len(text) and is_word_char(text[end]):
        end += 1
    return text[:end]


def mid_word_correct(suggestion: str, expected: str) -> bool:
    """At a cursor inside a word: the suggestion finishes the word the right way (the expected
    text starts with the suggestion's first word-part), or it is exact."""
    word = word_part(suggestion)
    return exact(suggestion, expected) or (bool(word) and expected.startswith(word))


def score(hole, suggestion: str) -> dict:
    """Every measure of one suggestion for one hole (a holes.Hole)."""
    e = hole.expected
    return {
        "exact": exact(suggestion, e), "prefix_match": prefix_match(suggestion, e),
        "edit_similarity": edit_similarity(suggestion, e), "empty": empty(suggestion),
        "bracket_imbalance": bracket_imbalance(hole.line_prefix, suggestion, hole.line_suffix, e),
        "repetition": degenerate_repetition(hole.line_before, hole.line_prefix, suggestion, e),
        "mid_word_correct": mid_word_correct(suggestion, e) if hole.mid_word else None,
        "leading_whitespace_error": leading_whitespace_error(suggestion, e),
    }
