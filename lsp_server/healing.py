"""Token healing: the prompt stops at a token boundary before the cursor, and the first generated
tokens must spell the text left out, so a completion inside a word continues the word.

A prompt that ends inside a word ends with the tokens of a partial word ("self.ite" → "self", ".",
"ite"), a split the model rarely saw in training ("items" is one token there), so it continues
badly: a space, or the word again. Backed up to "self.", the model may choose "items" itself; the
constraint (engine/api.py Healing, sets of ids) keeps its first tokens to those spelling "ite"
(a token starting with "ite", or "i" / "it" followed by the rest), and the service cuts "ite" off
the decoded text, so the suggestion starts at the cursor. Matching is on bytes, so a character
written as byte-fallback tokens (CJK, emoji in a small vocabulary) heals whole. Torch-free.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, field

from .engine.api import Healing

WORD_BYTES = 12  # the tokens of the word at the cursor are backed up while the text left out is this short
HEALINGS_KEPT = 1024  # constraints remembered per vocabulary
_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


def piece_bytes(pieces: list[str], specials: set[int]) -> list[bytes | None] | None:
    """The bytes each id spells in a SentencePiece vocabulary ('▁' a space, '<0x41>' byte 0x41);
    None for `specials`, which no text spells. None for a vocabulary of another kind (no
    byte-fallback pieces): healing is then left off rather than guessed."""
    if "<0x41>" not in pieces:
        return None
    out: list[bytes | None] = []
    for i, piece in enumerate(pieces):
        byte = _BYTE_PIECE.match(piece)
        out.append(None if i in specials else bytes([int(byte[1], 16)]) if byte else piece.replace("▁", " ").encode())
    return out


@dataclass
class Vocabulary:
    """Every id's bytes, indexed to find the ids consistent with a text without reading them all."""

    pieces: list[bytes | None]
    _sorted: list[bytes] = field(init=False, repr=False)
    _ids: list[int] = field(init=False, repr=False)
    _by_bytes: dict[bytes, list[int]] = field(init=False, repr=False)
    healings: dict[bytes, Healing | None] = field(default_factory=dict, repr=False)  # constraint()'s

    def __post_init__(self) -> None:
        pairs = sorted((b, i) for i, b in enumerate(self.pieces) if b)
        self._sorted, self._ids = [b for b, _ in pairs], [i for _, i in pairs]
        self._by_bytes = {}
        for b, i in pairs:  # a byte piece and a text piece can spell the same bytes
            self._by_bytes.setdefault(b, []).append(i)

    def starting_with(self, text: bytes) -> list[int]:
        """Ids whose bytes start with `text` (spell all of it, maybe more): one run of the sorted
        pieces, which for a lone space is a third of the vocabulary."""
        past = _past(text)
        end = bisect_left(self._sorted, past) if past is not None else len(self._sorted)
        return self._ids[bisect_left(self._sorted, text):end]

    def spelling_part(self, text: bytes) -> list[tuple[int, int]]:
        """(id, bytes) of the ids that spell a proper beginning of `text`."""
        return [(i, n) for n in range(1, len(text)) for i in self._by_bytes.get(text[:n], ())]


def _past(text: bytes) -> bytes | None:
    """The least byte string after every one starting with `text` (None: there is none)."""
    stem = text.rstrip(b"\xff")
    return stem[:-1] + bytes([stem[-1] + 1]) if stem else None


def back_up(ids: list[int], vocab: Vocabulary) -> int:
    """How many of the prefix's last ids to leave out: the last token, and the tokens before it in
    the same word while the text left out stays within WORD_BYTES, and always whole characters.
    Never a line break (the line rules read the text after it), never a special, and never the
    window's first token (its dummy-prefix space is not the document's text): 0 where that leaves
    nothing to heal."""
    k, text = 0, b""
    while k < len(ids) - 1:
        piece = vocab.pieces[ids[-1 - k]]
        if not piece or b"\n" in piece or b"\r" in piece:
            break
        if k and not _inside_char(text) and not (_joins_word(piece, text) and len(piece + text) <= WORD_BYTES):
            break
        k, text = k + 1, piece + text
    return 0 if _inside_char(text) else k


def _inside_char(text: bytes) -> bool:
    """Whether `text` starts inside a UTF-8 sequence (with a continuation byte)."""
    return bool(text) and 0x80 <= text[0] < 0xC0


def _joins_word(before: bytes, text: bytes) -> bool:
    """Whether `before` and `text` meet inside a word: a word byte on both sides (non-ASCII counts)."""
    return _word_byte(before[-1]) and _word_byte(text[0])


def _word_byte(b: int) -> bool:
    return b >= 0x80 or chr(b).isalnum() or b == ord("_")


def constraint(vocab: Vocabulary, text: bytes) -> Healing | None:
    """The ids the first tokens may be so that together they spell `text`, then anything.
    Remembered per text: the same few recur (a lone space, the word being typed), and the engine
    then finds its mask for the same set again at once."""
    if text not in vocab.healings:
        if len(vocab.healings) >= HEALINGS_KEPT:
            vocab.healings.clear()
        vocab.healings[text] = _constraint(vocab, text)
    return vocab.healings[text]


def _constraint(vocab: Vocabulary, text: bytes) -> Healing | None:
    """State i (bytes spelled) allows the ids starting with the rest, and the ids spelling a part
    of it that leads to a state with a way on. None when no id can start it."""
    allowed: list[frozenset[int]] = [frozenset()] * len(text)
    partial: list[dict[int, int]] = [{}] * len(text)
    for at in range(len(text) - 1, -1, -1):
        rest = text[at:]
        partial[at] = {i: n for i, n in vocab.spelling_part(rest) if allowed[at + n]}
        allowed[at] = frozenset(vocab.starting_with(rest)).union(partial[at])
    return Healing(tuple(allowed), tuple(partial)) if text and allowed[0] else None


def heal(ids: list[int], vocab: Vocabulary | None) -> tuple[list[int], Healing | None, str]:
    """(the prefix's ids to keep, the constraint on what follows, the text left out)."""
    k = back_up(ids, vocab) if vocab is not None else 0
    text = b"".join(vocab.pieces[i] for i in ids[len(ids) - k:]) if k else b""
    healing = constraint(vocab, text) if k else None
    if healing is None:
        return ids, None, ""
    return ids[:len(ids) - k], healing, text.decode("utf-8")


def strip_healed(text: str, healed: str) -> str:
    """The completion after the cursor: `text` less the healed text it starts with. Empty when it
    does not spell all of it (decoding ended first, at the time limit or a cancel)."""
    return text[len(healed):] if text.startswith(healed) else ""
