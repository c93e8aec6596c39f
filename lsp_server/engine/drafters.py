"""Drafters propose the next few tokens; the target verifies them in one forward.

Two kinds:
- ModelDrafter runs the small draft model on its own FIM-free view of the context (the prefix's
  tail plus the tokens accepted so far). It only ever proposes ids of its own vocabulary, so
  target-only ids (FIM specials, <EOT>) can only come from the target.
- CopyDrafter (prompt lookup) copies what followed the latest earlier occurrence of the last
  few tokens, from the prefix, the suffix or the completion itself. Code repeats nearby text
  (argument lists, similar lines, closing of a block), and a copy costs no model step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .kv_cache import KVCache
from .runner import ModelRunner
from .sampling import constrain, probabilities

Allowed = Callable[[list[int]], frozenset[int] | None]
"""The ids the next drafted token may be, given those drafted so far (token healing); None: any."""


@dataclass
class Proposal:
    tokens: list[int]
    probs: torch.Tensor | None = None  # [k, V_target] draft distribution when sampling; None = one-hot
    source: str = "model"
    ms: float = 0.0  # time spent drafting it
    sync_ms: float = 0.0  # of which feeding the draft the tokens accepted since its last round


class ModelDrafter:
    def __init__(self, runner: ModelRunner, target_vocab: int):
        self.runner = runner
        self.target_vocab = target_vocab

    def sync(self, cache: KVCache, view: list[int]) -> tuple[torch.Tensor, int]:
        """Make `cache` hold `view`, reusing the common prefix. Returns (last logits, tokens fed)."""
        fed = view[cache.reuse(view):]  # at least the last token: its logits are the next draft
        return self.runner.extend(cache, fed)[-1], len(fed)

    def can_read(self, tokens: list[int]) -> bool:
        """Whether every id is one of the draft's own (target-only ids, such as FIM specials, are not)."""
        return not tokens or max(tokens) < self.runner.vocab_size

    def propose(self, cache: KVCache, view: list[int], gamma: int, temperature: float,
                generator: torch.Generator, check_cancel: Callable[[], None] = lambda: None,
                allowed: Allowed = lambda drafted: None) -> Proposal:
        """`check_cancel` runs before every draft step, so cancelled work stops within one forward
        (a partly drafted cache is fine: the next sync rewinds to what is shared). `allowed`: the
        drafts keep within token healing's constraint, as the target's choices will."""
        t = time.perf_counter()
        logits, _ = self.sync(cache, view)
        sync_ms = (time.perf_counter() - t) * 1e3
        tokens: list[int] = []
        rows: list[torch.Tensor] = []
        for i in range(gamma):
            ids = allowed(tokens)
            if ids is not None and min(ids, default=self.runner.vocab_size) >= self.runner.vocab_size:
                break  # only target-only ids would do: the target goes on alone
            logits = constrain(logits, ids)
            if temperature > 0:
                probs = probabilities(logits, temperature)
                rows.append(probs)
                tok = int(torch.multinomial(probs.cpu(), 1, generator=generator))
            else:
                tok = int(torch.argmax(logits))
            tokens.append(tok)
            if i + 1 < gamma:
                check_cancel()
                logits = self.runner.extend(cache, [tok])[-1]
        return Proposal(tokens, self._pad(rows) if rows else None, sync_ms=sync_ms)

    def _pad(self, rows: list[torch.Tensor]) -> torch.Tensor:
        """Draft probabilities in the target's vocabulary: zero for ids the draft does not have."""
        q = torch.stack(rows).cpu()
        extra = self.target_vocab - q.shape[-1]
        return torch.nn.functional.pad(q, (0, extra)) if extra > 0 else q[:, : self.target_vocab]


class CopyDrafter:
    """Prompt lookup over the request's context and the tokens generated so far.

    `context` must end with the tokens right before the cursor (suffix first, then prefix), so the
    tail of the haystack is always the text the next token continues.
    """

    def __init__(self, context: list[int], min_ngram: int = 2, max_ngram: int = 4):
        self.hay: list[int] = list(context)
        self.min_ngram, self.max_ngram = min_ngram, max_ngram
        self.index: dict[tuple[int, ...], int] = {}  # n-gram -> position just after its latest occurrence
        for end in range(1, len(self.hay)):
            self._index_at(end)

    def _index_at(self, end: int) -> None:
        for n in range(self.min_ngram, self.max_ngram + 1):
            if end >= n:
                self.index[tuple(self.hay[end - n:end])] = end

    def extend(self, tokens: list[int]) -> None:
        """Add emitted tokens, so the completion can copy from itself too."""
        for tok in tokens:
            self.hay.append(tok)
            self._index_at(len(self.hay) - 1)  # index up to the previous token: a key never finds itself

    def propose(self, gamma: int) -> Proposal:
        """Continue the longest tail n-gram seen before; empty when there is none."""
        for n in range(self.max_ngram, self.min_ngram - 1, -1):
            if len(self.hay) < n:
                continue
            after = self.index.get(tuple(self.hay[-n:]))
            if after is not None:
                return Proposal(self.hay[after:after + gamma], None, "copy")
        return Proposal([], None, "copy")
