"""Degenerate repetition in generated text, and where to cut it.

A small model that loses its way repeats itself: a line over and over, a block of lines twice, a
piece of a word glued to itself (`_LOCAL_REQUE_LOCAL_REQUE`), a short unit back to back
(`a.a.a.a.`). `repetition_cut` finds the repetition that is complete earliest and says where the
text should end: after the first copy when that copy is a plausible piece of code on its own,
before the word it starts in otherwise. It depends only on the text up to where that repetition is
complete, so decoding can stop there (postprocess.cut_point) and cut the same way afterwards.
"""

from __future__ import annotations

import re

# A piece of a word written twice back to back; a piece of a line three times; a short unit four
# times. Lookaheads find one at every start (the shortest unit there); a unit starts with a
# non-space (one of its rotations does), which keeps runs of indentation from being tried.
GLUED_TWICE = re.compile(r"(?=((\w{4,40}?)\2))")
THRICE = re.compile(r"(?=((\S[^\n]{3,39}?)\2\2))")
SHORT_FOUR_TIMES = re.compile(r"(?=((\S[^\n]{1,2}?)\2\2\2))")
WORD = re.compile(r"\w")
WORDLIKE = re.compile(r"[^\W\d_]{3}")  # three letters in a row: text, not a table of numbers or bytes
MAX_BLOCK = 4  # lines in a repeated block
MAX_SPAN = 3 * 40  # characters a repeated unit spans at most


def repetition_cut(text: str, start: int = 0, since: int = 0) -> int | None:
    """Where `text` should end because of a repetition complete inside `text[start:]` (the part
    before `start` is the user's; a repetition it holds alone is not the model's), or None.
    `since`: no repetition is complete in `text[:since]` (checked already, as the stop check
    knows of the text it saw before), so only those ending later are looked for."""
    bound = max(start, since)
    found = [c for c in (_repeated_lines(text, bound), _repeated_unit(text, bound)) if c is not None]
    if not found:
        return None
    return max(start, min(found)[1])  # the one complete first


def _repeated_lines(text: str, bound: int) -> tuple[int, int] | None:
    """(end, cut) of the first block of 1..MAX_BLOCK whole lines repeated back to back, ending
    after `bound`: three copies of one line, two of a longer block. The first copy stays."""
    lines = text.split("\n")[:-1]  # whole lines only: the last one may still grow
    ends = [0]
    for line in lines:
        ends.append(ends[-1] + len(line) + 1)
    for last in range(len(lines)):  # the first complete repetition: the one ending on the earliest line
        if ends[last + 1] <= bound:
            continue
        for size in range(1, MAX_BLOCK + 1):
            copies = 3 if size == 1 else 2
            first = last + 1 - copies * size
            if first >= 0 and _same_blocks(lines, first, size, copies):
                return ends[last + 1], ends[first + size] - 1
    return None


def _same_blocks(lines: list[str], first: int, size: int, copies: int) -> bool:
    block = [ln.rstrip() for ln in lines[first:first + size]]
    if not any(block):
        return False  # blank lines are the block rule's business
    return all([ln.rstrip() for ln in lines[first + k * size:first + (k + 1) * size]] == block
               for k in range(1, copies))


def _repeated_unit(text: str, bound: int) -> tuple[int, int] | None:
    """(end, cut) of the first unit repeated inside a line, ending after `bound`."""
    best: tuple[int, int] | None = None
    for pattern, copies in ((GLUED_TWICE, 2), (THRICE, 3), (SHORT_FOUR_TIMES, 4)):
        for m in pattern.finditer(text, max(0, bound - MAX_SPAN)):
            at, unit = m.start(), m.group(2)
            end = at + copies * len(unit)
            if end <= bound or (best and end >= best[0]) or not _degenerate(text, at, unit, copies):
                continue
            best = (end, _unit_cut(text, at, unit))
    return best


def _degenerate(text: str, at: int, unit: str, copies: int) -> bool:
    if len(set(unit)) < 2:
        return False  # "xxxx", "----": filler people write on purpose
    if copies == 4:
        return bool(re.search(r"[^\W\d_]", unit))
    return bool(WORDLIKE.search(unit + unit))


def _glued(text: str, i: int) -> bool:
    """Is `i` inside a word (a word character on both sides)?"""
    return 0 < i < len(text) and bool(WORD.match(text[i - 1])) and bool(WORD.match(text[i]))


def _unit_cut(text: str, at: int, unit: str) -> int:
    """After the first copy when it ends at a word's edge; else before the word the repetition starts in."""
    end_first = at + len(unit)
    if not _glued(text, end_first) and not _glued(text, at):
        return end_first
    while at > 0 and WORD.match(text[at - 1]):
        at -= 1
    return at
