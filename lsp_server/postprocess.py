"""Stop rules and the ordered pure filters applied to generated text.

The same `cut_point` decides when decoding stops (engine stop check, token by token) and where
the text is cut afterwards, so the two can never disagree. Each of its rules depends only on the
text up to where it fires, so stopping there loses nothing the cut would have kept.

- Single line: when the cursor has text after it on its line, complete only that line.
- Block: otherwise complete until the block ends: a line indented less than where it started
  (or, when the cursor line has code before the cursor, not more than that line), two blank
  lines in a row, or a whole line that is the code after the cursor (the model has reached it).
  A line that starts inside a bracket or a string the suggestion opened continues its
  statement: its indentation ends nothing. A line's indentation is known as soon as it has any
  code, so decoding stops there without waiting for the line to end.
- Broken: a bracket that closes nothing open or the wrong kind, or a line ending inside a
  one-line string (brackets.py reads strings and comments).
- Repeating: a line three times, a block twice, a word's piece glued to itself, a short unit four
  times (repetition.py); the first copy stays when it reads as code on its own.

Then `keep_balanced` cuts back to the last point where the suggestion leaves nothing open that it
opened: the editor line must stay as balanced as it was (single line) and a block must not end
inside its own bracket or string. Cutting was measured against adding the missing closers: the
same exact matches, more text left over from garbage (docs/benchmarks.md, "Suggestion shape").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

from .brackets import State, final, state_at, steps
from .prompt import CursorContext
from .repetition import repetition_cut


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def single_line(ctx: CursorContext) -> bool:
    return bool(ctx.line_suffix.strip())


def cut_point(text: str, ctx: CursorContext, since: int = 0) -> int | None:
    """Index where the completion must end, or None while it may go on. `since`: no rule fired
    on `text[:since]` (the stop check saw it), so repetitions ending there need no new search."""
    broken, continued = read_code(text, ctx)
    cuts = (line_end(text, ctx, continued), broken, repeats_at(text, ctx, since))
    return min((cut for cut in cuts if cut is not None), default=None)


def line_end(text: str, ctx: CursorContext, continued: set[int]) -> int | None:
    """Where the line or the block ends (see the module's docstring). `continued`: offsets of the
    lines that start inside a bracket or a string the text opened."""
    first_nl = text.find("\n")
    if first_nl < 0:
        return None
    if single_line(ctx):
        return first_nl
    line_prefix = ctx.line_prefix
    mid_line = bool(line_prefix.strip())
    base = _indent(line_prefix)
    after = next(iter(_first_code_lines(ctx.suffix, 1)), "").rstrip()
    offset, blank_run = first_nl + 1, 0
    lines = text[first_nl + 1:].split("\n")
    for i, line in enumerate(lines):
        complete = i < len(lines) - 1
        if complete and line.rstrip() == after and after:
            return offset - 1
        if offset in continued:  # inside brackets or a string: the statement goes on
            blank_run = 0
        elif not line.strip():  # blank (or not yet known): only whole blank lines count
            blank_run += complete
            if blank_run >= 2:
                return offset - 1
        else:  # the indentation is known once a line has any code, finished or not
            blank_run = 0
            ind = _indent(line)
            if ind < base or (mid_line and ind <= base):
                return offset - 1
        offset += len(line) + 1
    return None


@lru_cache(maxsize=4)
def opened_before(prefix: str) -> State:
    """What is open at the cursor. Cached: the stop check asks at every token, with the same
    prefix object, whose hash Python keeps; one request is decoded at a time."""
    return state_at(prefix)


def read_code(text: str, ctx: CursorContext) -> tuple[int | None, set[int]]:
    """(index of the first character that closes what is not open or ends a one-line string's
    line, or None; offsets of the lines that start inside a bracket or a string the text opened,
    before that). Not one opened before the cursor: a model that never closes it would never end
    its block."""
    start = opened_before(ctx.prefix)
    continued, fewest = set(), len(_code(start))
    for i, state in steps(text, start):
        if state is None:
            return i, continued
        fewest = min(fewest, len(_code(state)))
        if text.startswith("\n", i) and len(_code(state)) > fewest:
            continued.add(i + 1)
    return None, continued


def repeats_at(text: str, ctx: CursorContext, since: int = 0) -> int | None:
    """Where a degenerate repetition should be cut (the cursor line's own text is not the model's)."""
    lead = len(ctx.line_prefix)
    cut = repetition_cut(ctx.line_prefix + text, lead, lead + since)
    return None if cut is None else cut - lead


def make_stop(decode: Callable[[Sequence[int]], str], ctx: CursorContext) -> Callable[[Sequence[int]], bool]:
    """The engine's stop check: decode the ids so far and apply the stop rules. It is asked once
    per token of one completion, the ids growing by one each time; what it saw before held no
    cut, so only the new end is searched for repetitions (less a few characters: the last ones
    of a character split between tokens change when its last byte comes)."""
    seen = 0

    def stop(ids: Sequence[int]) -> bool:
        nonlocal seen
        text = decode(ids)
        since, seen = max(0, min(seen, len(text)) - 4), len(text)
        return cut_point(text, ctx, since) is not None
    return stop


# --- filters: each takes (text, ctx) and returns text; applied in order -------------------------

def apply_line_rules(text: str, ctx: CursorContext) -> str:
    cut = cut_point(text, ctx)
    return text if cut is None else text[:cut]


def drop_broken_tail(text: str, ctx: CursorContext) -> str:
    """A multi-byte character cut in the middle decodes to U+FFFD: leave it out."""
    return text.rstrip("\ufffd")


def drop_unfinished_tail(text: str, ctx: CursorContext) -> str:
    """For a completion the time budget cut short: its last word may be a piece of a longer one
    ("in" of "invalid") and its last line half a statement. Keep whole lines; on a completion's
    only line, the words a space has closed. Nothing left means nothing is shown."""
    newline = text.rfind("\n")
    if newline >= 0:
        return text[:newline]
    closed = max(text.rfind(" "), text.rfind("\t"))
    return text[:closed] if closed >= 0 else ""


def drop_suffix_overlap(text: str, ctx: CursorContext) -> str:
    """Remove a tail that repeats what already follows the cursor (e.g. a closing bracket)."""
    if single_line(ctx):
        rest = ctx.line_suffix.strip()
        stripped = text.rstrip()
        if rest and stripped.endswith(rest):
            return stripped[: len(stripped) - len(rest)]
        return text
    suffix_lines = _first_code_lines(ctx.suffix, 3)
    lines = text.rstrip().split("\n")
    for n in range(min(len(suffix_lines), len(lines) - 1), 0, -1):
        if [ln.rstrip() for ln in lines[-n:]] == [ln.rstrip() for ln in suffix_lines[:n]]:
            return "\n".join(lines[:-n])
    return text


def _first_code_lines(text: str, n: int) -> list[str]:
    """The first `n` non-blank lines of `text`, read from its start (the suffix can be megabytes)."""
    lines: list[str] = []
    pos = 0
    while len(lines) < n and pos < len(text):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        if text[pos:end].strip():
            lines.append(text[pos:end])
        pos = end + 1
    return lines


def keep_balanced(text: str, ctx: CursorContext) -> str:
    """The text up to the last point where it leaves open nothing it opened itself (a comment
    ends with the line) and the line's rest reads as it did without it; a block cut on a later
    line keeps its whole lines."""
    start = opened_before(ctx.prefix)
    cuts = balanced_cuts(text, start, ctx.line_suffix + "\n")
    if cuts and cuts[-1][0] == len(text):
        return text
    cut = cuts[-1][0] if cuts else 0
    if "\n" in text[:cut].lstrip("\n"):
        cut = max((i for i, at_line_end in cuts if at_line_end and i <= cut), default=cut)
    return text[:cut].rstrip(" \t")


def balanced_cuts(text: str, start: State, rest: str) -> list[tuple[int, bool]]:
    """(index, at a line end) of every point where `text` read from `start` is balanced: the
    text has closed only what was open and left nothing of its own open, and `rest` then reads
    to the same state or closes more (when it read without error from `start`)."""
    goal = final(rest, start)
    ends: dict[State, State | None] = {}

    def balanced(state: State, fewest: int) -> bool:
        if len(_code(state)) != fewest:
            return False  # something the text opened is still open
        if goal is None:
            return True
        if state not in ends:
            ends[state] = final(rest, state)
        end = ends[state]
        return end is not None and end == goal[:len(end)]

    cuts, before, fewest = [], start, len(_code(start))
    for i, state in steps(text, start):
        if balanced(before, fewest):
            cuts.append((i, text.startswith("\n", i)))
        if state is None:
            break
        before, fewest = state, min(fewest, len(_code(state)))
    return cuts


def _code(state: State) -> State:
    """The state without a comment on top: a comment closes itself at the line's end."""
    return state[:-1] if state[-1:] == ("#",) else state


def trim_trailing_space(text: str, ctx: CursorContext) -> str:
    return text.rstrip() if "\n" in text else text.rstrip("\n")


FILTERS = (apply_line_rules, drop_broken_tail, drop_suffix_overlap, keep_balanced, trim_trailing_space)
CUT_SHORT_FILTERS = (apply_line_rules, drop_broken_tail, drop_unfinished_tail, drop_suffix_overlap, keep_balanced,
                     trim_trailing_space)


def postprocess(text: str, ctx: CursorContext, cut_by_time: bool = False) -> str:
    """The text to show. `cut_by_time`: decoding stopped at the deadline (Stats.finish_reason
    "time"), not at a stop rule, so the text may end inside a word."""
    for step in CUT_SHORT_FILTERS if cut_by_time else FILTERS:
        text = step(text, ctx)
    return text
