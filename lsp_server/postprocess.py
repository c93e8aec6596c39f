"""Line rules and the ordered pure filters applied to generated text.

The same `cut_point` decides when decoding stops (engine stop check, token by token) and where
the text is cut afterwards, so the two can never disagree.

- Single line: when the cursor has text after it on its line, complete only that line.
- Block: otherwise complete until the block ends: a line indented less than where it started
  (or, when the cursor line has code before the cursor, not more than that line), or two blank
  lines in a row. A line's indentation is known as soon as it has any code, so decoding stops
  there without waiting for the line to end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .prompt import CursorContext


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def single_line(ctx: CursorContext) -> bool:
    return bool(ctx.line_suffix.strip())


def cut_point(text: str, ctx: CursorContext) -> int | None:
    """Index where the completion must end, or None while it may go on."""
    first_nl = text.find("\n")
    if first_nl < 0:
        return None
    if single_line(ctx):
        return first_nl
    line_prefix = ctx.line_prefix
    mid_line = bool(line_prefix.strip())
    base = _indent(line_prefix)
    offset, blank_run = first_nl + 1, 0
    lines = text[first_nl + 1:].split("\n")
    for i, line in enumerate(lines):
        complete = i < len(lines) - 1
        if not line.strip():  # blank (or not yet known): only whole blank lines count
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


def make_stop(decode: Callable[[Sequence[int]], str], ctx: CursorContext) -> Callable[[Sequence[int]], bool]:
    """The engine's stop check: decode the ids so far and apply the line rules."""
    return lambda ids: cut_point(decode(ids), ctx) is not None


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


def trim_trailing_space(text: str, ctx: CursorContext) -> str:
    return text.rstrip() if "\n" in text else text.rstrip("\n")


FILTERS = (apply_line_rules, drop_broken_tail, drop_suffix_overlap, trim_trailing_space)
CUT_SHORT_FILTERS = (apply_line_rules, drop_broken_tail, drop_unfinished_tail, drop_suffix_overlap,
                     trim_trailing_space)


def postprocess(text: str, ctx: CursorContext, cut_by_time: bool = False) -> str:
    """The text to show. `cut_by_time`: decoding stopped at the deadline (Stats.finish_reason
    "time"), not at a stop rule, so the text may end inside a word."""
    for step in CUT_SHORT_FILTERS if cut_by_time else FILTERS:
        text = step(text, ctx)
    return text
