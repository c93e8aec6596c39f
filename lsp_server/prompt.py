"""Fill-in-the-middle prompts at the token level, within a token budget, with stable windows.

CodeLlama formats (Meta's reference generation code):
  PSM: [BOS, <PRE>] + enc(prefix) + [<SUF>] + enc_infill(suffix) + [<MID>]
  SPM: [BOS, <PRE>, <SUF>] + enc_infill(suffix) + [<MID>] + enc(prefix)
SPM is the default: typing appends to the very end of the prompt, so the KV of everything
before it is reused. For that the window over the prefix must not slide with every keystroke:
its start is a line start that stays put until the prefix outgrows the budget, then jumps
forward by a quarter of the budget at once. The draft gets a FIM-free view, [BOS] + the tail of
the prefix ids, whose start also moves only in jumps.

Building a prompt costs in proportion to the window, never to the document: a window of n
tokens can use at most 8n characters (a token is rarely longer), so no more than that is ever
handed to the tokenizer in one piece, and the window's start is remembered as an offset with the
text just before it (found again nearby after an edit above it), so nothing scans from the top.

When the device cannot prefill all of a prompt's new tokens in time, `fit` cuts the prompt so that
later requests fill in the rest of the same window instead of moving it.

The prefix's last token(s) are left out of every view (token healing, healing.py): the prompt ends
at a token boundary before the cursor and the first generated tokens must spell the text left out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Protocol

from .engine.api import Healing
from .healing import Vocabulary, heal, piece_bytes

SUFFIX_SHARE = 0.25  # of contextTokens, at most; unused suffix budget goes to the prefix
GROWTH_ROOM = 0.75  # a re-placed window fills this share of its budget, leaving room to type
CHARS_PER_TOKEN = 8  # the most characters a token stands for, near enough: bounds the text a window can use
TYPICAL_CHARS_PER_TOKEN = 4  # code, for a first guess at where to place a window
ANCHOR_CHARS = 64  # text remembered before a window's start, to find the start again after edits above
PLACE_TRIES = 4  # encodes to place a window, each of at most CHARS_PER_TOKEN characters per budget token
PLACED_FILL = (0.5, 0.9)  # a placed window is this full: room to type on, and to delete back


class Codec(Protocol):
    bos: int
    fim: object | None

    def encode(self, text: str) -> list[int]: ...
    def encode_infill(self, text: str) -> list[int]: ...
    def decode_continuation(self, ids: list[int]) -> str: ...
    def pieces(self) -> tuple[list[str], set[int]]: ...


@dataclass
class CursorContext:
    prefix: str  # document text before the cursor
    suffix: str  # document text after the cursor

    @property
    def line_prefix(self) -> str:
        """The cursor line's text before the cursor (lines end at \n, \r\n or \r, as in LSP)."""
        return self.prefix[max(self.prefix.rfind("\n"), self.prefix.rfind("\r")) + 1:]

    @property
    def line_suffix(self) -> str:
        ends = [i for i in (self.suffix.find("\n"), self.suffix.find("\r")) if i >= 0]
        return self.suffix[:min(ends)] if ends else self.suffix


@dataclass
class Prompt:
    target_ids: list[int]
    draft_ids: list[int]
    context_ids: list[int]  # suffix then prefix: what the copy drafter may copy from
    prefix_ids: list[int]  # the window over the prefix, less the healed tokens
    suffix_ids: list[int]
    healing: Healing | None = None  # what the first generated tokens must spell (healing.py)
    healed: str = ""  # the text of the prefix's tokens left out: the completion starts with it


@dataclass
class WindowState:
    """Per document: where the prefix window starts, kept across requests."""

    start: int = 0  # offset in the prefix: a line start, or a cut in a line too long for the window
    anchor: str = ""  # the prefix's text just before `start` when it was placed
    draft_skip: int = 0  # prefix ids left out of the draft's view


@dataclass
class PromptBuilder:
    codec: Codec
    context_tokens: int = 2048
    fim_order: str = "spm"
    draft_positions: int = 0  # the draft's position limit; 0 = no draft view
    reserve: int = 80  # positions kept free for generation and drafts
    heal: bool = True  # token healing (healing.py)

    def build(self, ctx: CursorContext, window: WindowState | None = None) -> Prompt:
        """The prompt at the cursor. `window` is the document's, kept by the caller across requests
        (the builder moves it); without one, the window is placed afresh."""
        window = window if window is not None else WindowState()
        suffix_ids = self._suffix_ids(ctx.suffix)
        prefix_ids = self._prefix_ids(ctx.prefix, self.context_tokens - len(suffix_ids), window)
        prefix_ids, healing, healed = heal(prefix_ids, self._vocabulary if self.heal else None)
        return Prompt(self._target(prefix_ids, suffix_ids), self._draft(prefix_ids, window),
                      suffix_ids + prefix_ids, prefix_ids, suffix_ids, healing, healed)

    @cached_property
    def _vocabulary(self) -> Vocabulary | None:
        """The target's vocabulary as bytes, read once (None: not one healing can read)."""
        pieces = piece_bytes(*self.codec.pieces())
        return Vocabulary(pieces) if pieces is not None else None

    def fit(self, prompt: Prompt, cached: int, allowed: int) -> Prompt:
        """The prompt, or a shorter one whose ids past the first `cached` (already in the KV cache)
        number at most `allowed`: what the device can prefill in time.

        SPM (and no FIM): [what the cache holds] + [the next ids of the full prompt] + [the prefix's
        last ids]. It ends at the cursor and keeps the full prompt's start, so each request feeds
        the full prompt a little further (the next one reuses that, rewinding the tail) until the
        whole window fits; the window never moves for it, so typing then costs a keystroke's ids
        again. When the cut falls inside the suffix, <MID> closes it. A gap in the prefix is the
        price of a prompt that arrives in time; half the allowance goes to the text at the cursor.
        PSM re-reads the suffix on every keystroke anyway: its suffix is shortened first, and when
        even the prefix is too much it keeps the prefix's last ids and the suffix's first.
        The draft's view is cut to the same text at the cursor: its own prefill counts too."""
        if len(prompt.target_ids) - cached <= allowed:
            return prompt
        psm = self.codec.fim is not None and self.fim_order == "psm"
        fitted = self._fit_psm(prompt, cached, allowed) if psm else self._fit_tail_last(prompt, cached, allowed)
        n = min(allowed // 2, len(prompt.draft_ids) - 1)
        draft = [self.codec.bos] + prompt.prefix_ids[len(prompt.prefix_ids) - n:] if n > 0 else []
        return replace(prompt, target_ids=fitted, draft_ids=draft)

    def _fit_tail_last(self, prompt: Prompt, cached: int, allowed: int) -> list[int]:
        ids, window = prompt.target_ids, prompt.prefix_ids
        tail = min(len(window), allowed // 2)
        cut = cached + allowed - tail  # the full prompt is read this far, then jumps to the tail
        head = len(ids) - len(window)  # [BOS, <PRE>, <SUF>] + suffix + [<MID>], or [BOS]
        if cut >= head:
            return ids[:cut] + window[len(window) - tail:]
        return ids[:max(cut - 1, 3)] + [self.codec.fim.middle] + window[len(window) - tail:]

    def _fit_psm(self, prompt: Prompt, cached: int, allowed: int) -> list[int]:
        fim, ids, window = self.codec.fim, prompt.target_ids, prompt.prefix_ids
        before_suffix = 2 + len(window)  # [BOS, <PRE>] + prefix
        fed_before_suffix = before_suffix - min(cached, before_suffix)
        if fed_before_suffix + 2 <= allowed:
            kept = allowed - 2 - fed_before_suffix
            return ids[:before_suffix] + [fim.suffix] + prompt.suffix_ids[:kept] + [fim.middle]
        tail = (allowed - 4) * 3 // 4
        return (ids[:2] + window[len(window) - tail:] + [fim.suffix]
                + prompt.suffix_ids[:allowed - 4 - tail] + [fim.middle])

    def _target(self, prefix_ids: list[int], suffix_ids: list[int]) -> list[int]:
        fim, bos = self.codec.fim, self.codec.bos
        if fim is None:  # a model without infilling: continue the prefix
            return [bos] + prefix_ids
        if self.fim_order == "psm":
            return [bos, fim.prefix] + prefix_ids + [fim.suffix] + suffix_ids + [fim.middle]
        return [bos, fim.prefix, fim.suffix] + suffix_ids + [fim.middle] + prefix_ids

    def _suffix_ids(self, suffix: str) -> list[int]:
        if self.codec.fim is None or not suffix:
            return []
        budget = int(self.context_tokens * SUFFIX_SHARE)
        head = suffix[: budget * CHARS_PER_TOKEN]
        cut = head.rfind("\n")
        if len(head) < len(suffix) and cut > 0:
            head = head[: cut + 1]  # end on a whole line, so the suffix's ids stay stable while typing
        ids = self.codec.encode_infill(head)
        if len(ids) <= budget:
            return ids
        # Cut on a whole line too: the model was trained (as Meta's reference prompts it) on
        # suffixes that end at a line's end; one cut inside a line it continues after <MID>,
        # writing the suffix's next line (a newline and indentation) instead of the middle.
        text = self.codec.decode_continuation(ids[:budget])
        cut = text.rfind("\n")
        return self.codec.encode_infill(text[: cut + 1])[:budget] if cut >= 0 else ids[:budget]

    def _prefix_ids(self, prefix: str, budget: int, window: WindowState) -> list[int]:
        budget = max(budget, 16)
        room = budget * CHARS_PER_TOKEN  # the most text the window can use
        start = _kept_start(prefix, window, room)
        if start is not None:
            ids = self.codec.encode(prefix[start:])
            if len(ids) <= budget and (start == 0 or _fill(ids, prefix, start, budget) > 1 - GROWTH_ROOM):
                window.start = start
                return ids
        return self._place(prefix, budget, room, window)

    def _place(self, prefix: str, budget: int, room: int, window: WindowState) -> list[int]:
        """Re-place the window so it fills about GROWTH_ROOM of its budget, from a line start where
        one is near. Each try encodes at most `room` characters, guided by the last try's density."""
        want = budget * GROWTH_ROOM
        chars = want * TYPICAL_CHARS_PER_TOKEN
        fitted = None
        for _ in range(PLACE_TRIES):
            start = _start_near(prefix, int(min(chars, room * GROWTH_ROOM)))
            ids = self.codec.encode(prefix[start:])
            if len(ids) <= budget:
                fitted = start, ids
                if start == 0 or PLACED_FILL[0] <= _fill(ids, prefix, start, budget) <= PLACED_FILL[1]:
                    break
            chars = want * (len(prefix) - start) / max(len(ids), 1)
        start, ids = fitted or (start, ids[-budget:])  # nothing fitted: the nearest tokens, still bounded
        window.start, window.anchor = start, prefix[max(0, start - ANCHOR_CHARS):start]
        return ids

    def _draft(self, prefix_ids: list[int], window: WindowState) -> list[int]:
        if self.draft_positions <= 0:
            return []
        budget = self.draft_positions - self.reserve - 1
        if budget <= 0:
            return []
        quantum = max(16, budget // 4)
        skip = window.draft_skip
        if not (len(prefix_ids) - budget <= skip <= max(0, len(prefix_ids) - quantum)):
            over = len(prefix_ids) - budget
            skip = 0 if over <= 0 else -(-over // quantum) * quantum  # round up: jump, not slide
        window.draft_skip = skip
        return [self.codec.bos] + prefix_ids[skip:]


def _fill(ids: list[int], prefix: str, start: int, budget: int) -> float:
    """How full a window is, by tokens or by characters, whichever binds."""
    return max(len(ids) / budget, (len(prefix) - start) / (budget * CHARS_PER_TOKEN))


def _kept_start(prefix: str, window: WindowState, room: int) -> int | None:
    """The window's start in this prefix, if it still starts after the same text and the cursor is
    no more than `room` characters past it; else None (the window must be placed again)."""
    start, anchor = window.start, window.anchor
    if start > len(prefix) or prefix[start - len(anchor):start] != anchor:
        start = _find_anchor(prefix, anchor, start, room)  # text above the window changed length
    if start is None or len(prefix) - start > room:
        return None
    return start


def _find_anchor(prefix: str, anchor: str, old: int, room: int) -> int | None:
    """The end of the occurrence of `anchor` nearest to `old`, within `room` characters of it."""
    if not anchor:
        return None
    before = prefix.rfind(anchor, max(0, old - room), min(old, len(prefix)))
    after = prefix.find(anchor, max(0, old - len(anchor) + 1), old + room)
    ends = [p + len(anchor) for p in (before, after) if p >= 0]
    return min(ends, key=lambda e: abs(e - old)) if ends else None


def _start_near(prefix: str, chars: int) -> int:
    """Where a window of about `chars` characters before the cursor starts: the first line start
    at or after that point, unless the line is so long that the window would lose a quarter."""
    at = len(prefix) - chars
    if at <= 0:
        return 0
    line = prefix.find("\n", at, at + chars // 4) + 1
    return line if line > 0 else at
