"""Fill-in-the-middle prompts at the token level, within a token budget, with stable windows.

CodeLlama formats (Meta's reference generation code):
  PSM: [BOS, <PRE>] + enc(prefix) + [<SUF>] + enc_infill(suffix) + [<MID>]
  SPM: [BOS, <PRE>, <SUF>] + enc_infill(suffix) + [<MID>] + enc(prefix)
SPM is the default: typing appends to the very end of the prompt, so the KV of everything
before it is reused. For that the window over the prefix must not slide with every keystroke:
its start is a line start that stays put until the prefix outgrows the budget, then jumps
forward by a quarter of the budget at once. The draft gets a FIM-free view, [BOS] + the tail of
the prefix ids, whose start also moves only in jumps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

SUFFIX_SHARE = 0.25  # of contextTokens, at most; unused suffix budget goes to the prefix
GROWTH_ROOM = 0.75  # a re-placed window fills this share of its budget, leaving room to type


class Codec(Protocol):
    bos: int
    fim: object | None

    def encode(self, text: str) -> list[int]: ...
    def encode_infill(self, text: str) -> list[int]: ...


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
    prefix_ids: list[int]
    suffix_ids: list[int]


@dataclass
class WindowState:
    """Per document: where the prefix window starts (a line number), kept across requests."""

    start_line: int = 0
    draft_skip: int = 0  # prefix ids left out of the draft's view


@dataclass
class PromptBuilder:
    codec: Codec
    context_tokens: int = 2048
    fim_order: str = "spm"
    draft_positions: int = 0  # the draft's position limit; 0 = no draft view
    reserve: int = 80  # positions kept free for generation and drafts
    windows: dict[str, WindowState] = field(default_factory=dict)

    def build(self, ctx: CursorContext, key: str = "") -> Prompt:
        window = self.windows.setdefault(key, WindowState())
        suffix_ids = self._suffix_ids(ctx.suffix)
        prefix_ids = self._prefix_ids(ctx.prefix, self.context_tokens - len(suffix_ids), window)
        return Prompt(self._target(prefix_ids, suffix_ids), self._draft(prefix_ids, window),
                      suffix_ids + prefix_ids, prefix_ids, suffix_ids)

    def forget(self, key: str) -> None:
        self.windows.pop(key, None)

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
        head = suffix[: budget * 8]  # generous: a token is rarely over 8 characters
        cut = head.rfind("\n")
        if len(head) < len(suffix) and cut > 0:
            head = head[: cut + 1]  # end on a whole line, so the suffix's ids stay stable while typing
        return self.codec.encode_infill(head)[:budget]

    def _prefix_ids(self, prefix: str, budget: int, window: WindowState) -> list[int]:
        budget = max(budget, 16)
        line_starts = _line_starts(prefix)
        if window.start_line >= len(line_starts):
            window.start_line = 0
        ids = self.codec.encode(prefix[line_starts[window.start_line]:])
        if len(ids) <= budget and (window.start_line == 0 or len(ids) > budget * (1 - GROWTH_ROOM)):
            return ids
        # re-place the window: the latest line start whose text fills GROWTH_ROOM of the budget
        chars_per_token = max(len(prefix) - line_starts[window.start_line], 1) / max(len(ids), 1)
        want = int(budget * GROWTH_ROOM * chars_per_token)
        line = _first_line_at_or_after(line_starts, len(prefix) - want)
        ids = self.codec.encode(prefix[line_starts[line]:])
        while len(ids) > budget and line + 1 < len(line_starts):
            line += 1
            ids = self.codec.encode(prefix[line_starts[line]:])
        window.start_line = line
        return ids[-budget:]

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


def _line_starts(text: str) -> list[int]:
    starts = [0]
    pos = text.find("\n")
    while pos >= 0:
        starts.append(pos + 1)
        pos = text.find("\n", pos + 1)
    return starts


def _first_line_at_or_after(line_starts: list[int], offset: int) -> int:
    for i, start in enumerate(line_starts):
        if start >= offset:
            return i
    return len(line_starts) - 1
