"""Fill-in-the-middle holes cut from held-out files: where the cursor is, and what belongs there.

Two kinds, as an editor meets them:
- ``mid_line``: the cursor at a random point inside a line's code (at least one character of it
  typed, at least three to go); the answer is the rest of the line;
- ``line_start``: the cursor right after a line's indentation; the answer is the line's code.
Either way the rest of the line is missing from the document (its suffix starts at the line's
end), as when the user is writing that line. Lines are drawn uniformly from every eligible line of
the files (code of 12 or more characters, not a comment), without repeats, by a seeded generator:
the same files and seed give the same holes on any machine. Torch-free.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

KINDS = ("mid_line", "line_start")
MIN_CODE_CHARS = 12
MIN_ANSWER_CHARS = 3


def is_word_char(ch: str) -> bool:
    """Whether `ch` can continue a Python identifier (letters and digits of any script, `_`)."""
    return len(ch) == 1 and ("a" + ch).isidentifier()


@dataclass(frozen=True)
class Hole:
    """One cursor in a held-out file, with the text missing after it on its line."""

    file: str
    line: int  # 0-based
    column: int  # characters (code points) from the line's start
    kind: str
    prefix: str  # the document before the cursor
    suffix: str  # the document after the cursor: the next line's break onwards
    expected: str  # the rest of the line, as written

    @property
    def line_prefix(self) -> str:
        return self.prefix.rsplit("\n", 1)[-1]

    @property
    def line_suffix(self) -> str:
        return self.suffix.split("\n", 1)[0]

    @property
    def line_before(self) -> str:
        """The line above the cursor's line ("" on the first line)."""
        lines = self.prefix.rsplit("\n", 2)
        return lines[-2] if len(lines) > 1 else ""

    @property
    def mid_word(self) -> bool:
        """The cursor between two identifier characters: the model must finish a word."""
        return bool(self.prefix) and is_word_char(self.prefix[-1]) and is_word_char(self.expected[0])

    def describe(self) -> dict:
        """The hole without its document, for the results (file, place, kind, answer)."""
        return {"file": self.file, "line": self.line, "column": self.column, "kind": self.kind,
                "mid_word": self.mid_word, "expected": self.expected}


def eligible(line: str) -> bool:
    code = line.strip()
    return len(code) >= MIN_CODE_CHARS and not code.startswith("#")


def _cut(name: str, text: str, lines: list[str], i: int, kind: str, rng: random.Random) -> Hole:
    line = lines[i]
    indent = len(line) - len(line.lstrip())
    column = indent if kind == "line_start" else rng.randint(indent + 1, len(line.rstrip()) - MIN_ANSWER_CHARS)
    offset = sum(len(x) + 1 for x in lines[:i]) + column
    return Hole(name, i, column, kind, text[:offset], text[offset + len(line) - column:], line[column:])


def cut_holes(texts: list[tuple[str, str]], count: int, kind: str, seed: int = 0) -> list[Hole]:
    """`count` holes of `kind` from (name, text) files (fewer when the files have fewer lines)."""
    assert kind in KINDS, kind
    rng = random.Random(f"{seed}-{kind}")
    split = [text.split("\n") for _, text in texts]
    places = [(f, i) for f, lines in enumerate(split) for i, line in enumerate(lines) if eligible(line)]
    chosen = rng.sample(places, min(count, len(places)))
    return [_cut(texts[f][0], texts[f][1], split[f], i, kind, rng) for f, i in chosen]
