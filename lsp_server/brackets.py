"""What is open where in Python code: brackets and strings, read left to right from a known state.

The post-processing asks it whether a suggestion closes what it opens (postprocess.py). A state
is a tuple, innermost last, of "(", "[", "{", a string's quote (one or three quote characters,
after an "f" for an f-string, whose replacement fields are "{" again) and "#" for a comment.
Brackets inside strings and comments do not count; a backslash escapes the next character in
strings and joins lines in code. Written by hand rather than with tokenize or tree-sitter: it must
read partial code, from any state, and say at which character each change happened; it agrees
with tokenize at every line start of the held-out files (docs/benchmarks.md, "Suggestion shape").
"""

from __future__ import annotations

import re
from collections.abc import Iterator

State = tuple[str, ...]
CLOSES = {")": "(", "]": "[", "}": "{"}
QUOTES = ("'''", '"""', "'", '"')
STRING_PREFIX = re.compile(r"(?<![\w])(?:[rRbBuU]|[fF]|[rR][bBfF]|[bBfF][rR])$")
SPECIAL = re.compile(r"""[()\[\]{}'"#\\\n]""")
SAFE_START = re.compile(r"^[ \t]*(?:async[ \t]+def|def|class)[ \t]+\w", re.M)  # a statement, not text
SAFE_SCAN = 100_000  # characters read back at most when no def or class is near


def in_string(state: State) -> bool:
    return any(item[-1] in "'\"" for item in state)


def _quote_at(text: str, i: int) -> str:
    return next(q for q in QUOTES if text.startswith(q, i))


def steps(text: str, state: State = (), strict: bool = True) -> Iterator[tuple[int, State]]:
    """(i, state) at each character `i` of `text` that changes the state, and at each line end,
    with the state after it (a string's opening is reported at its prefix letters, `f` of `f"`);
    then (len(text), the final state). Strict: a closer that matches no opener, or a line ending inside a one-line
    string, is an error, reported as (i, None) and the end. Lenient: such a character is skipped
    (for text read from an arbitrary point of a document)."""
    stack = list(state)
    pos = 0
    while True:
        m = SPECIAL.search(text, pos)
        if m is None:
            break
        i, ch = m.start(), m.group()
        top = stack[-1] if stack else ""
        pos = i + 1
        if top == "#":
            if ch == "\n":
                stack.pop()
                yield i, tuple(stack)
        elif top[-1:] in ("'", '"'):
            pos, report, error = _in_string(text, i, ch, stack, top)
            if error and strict:
                yield i, None
                return
            if report:
                yield i, tuple(stack)
        else:
            pos, start, report, error = _in_code(text, i, ch, stack)
            if error and strict:
                yield i, None
                return
            if report:
                yield start, tuple(stack)
    yield len(text), tuple(stack)


def _in_string(text: str, i: int, ch: str, stack: list[str], top: str) -> tuple[int, bool, bool]:
    """(next position, reported, error) for a special character inside a string."""
    quote = top.lstrip("f")
    if ch == "\\":
        return i + 2, False, False
    if ch == "\n" and len(quote) == 1:
        stack.pop()  # a one-line string cannot span lines
        return i + 1, True, True
    if ch == "\n":
        return i + 1, True, False
    if ch in "'\"" and text.startswith(quote, i):
        stack.pop()
        return i + len(quote), True, False
    if top[0] == "f" and ch in "{}":
        if text.startswith(ch * 2, i):
            return i + 2, False, False  # an escaped brace: "{{" is text
        if ch == "{":
            stack.append("{")  # a replacement field: code until its "}"
            return i + 1, True, False
    return i + 1, False, False


def _in_code(text: str, i: int, ch: str, stack: list[str]) -> tuple[int, int, bool, bool]:
    """(next position, where the change starts, reported, error) for a special character in code."""
    if ch == "\\":
        return i + 2, i, False, False  # a line continuation
    if ch == "\n":
        return i + 1, i, True, False  # no change, but a line end is worth reporting
    if ch == "#":
        if in_string(stack):  # no comments inside an f-string's field
            return i + 1, i, False, False
        stack.append("#")
        return i + 1, i, True, False
    if ch in "([{":
        stack.append(ch)
        return i + 1, i, True, False
    if ch in CLOSES:
        if stack and stack[-1] == CLOSES[ch]:
            stack.pop()
            return i + 1, i, True, False
        return i + 1, i, False, True
    quote = _quote_at(text, i)
    prefix = STRING_PREFIX.search(text, max(0, i - 2), i)
    start = prefix.start() if prefix else i
    stack.append(("f" if "f" in text[start:i].lower() else "") + quote)
    return i + len(quote), start, True, False


def final(text: str, state: State = (), strict: bool = True) -> State | None:
    """The state after `text` (None: an error, when strict)."""
    *_, (_, last) = steps(text, state, strict)
    return last


def state_at(prefix: str) -> State:
    """The state at the end of a document's `prefix`, read from the nearest line before it that
    starts a def or class (a statement, so nothing is open there), at most SAFE_SCAN characters
    back when none is near. Lenient: a stray closer is skipped."""
    return final(prefix[_safe_start(prefix):], (), strict=False) or ()


def _safe_start(prefix: str) -> int:
    for back in (4_000, 32_000, SAFE_SCAN):  # near first: most cursors have a def close above them
        window = prefix.find("\n", len(prefix) - back) + 1 if len(prefix) > back else 0
        last = max((m.start() for m in SAFE_START.finditer(prefix, window)), default=None)
        if last is not None or window == 0:
            return last or 0
    return window
