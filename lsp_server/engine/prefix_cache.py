"""Per-document cache slots, kept across requests under a memory budget.

Each open document owns one slot: a target KV cache (the FIM view) and a draft KV cache (the
FIM-free view). A new request reuses the longest common prefix of its prompt with the ids the
slot holds — compared on real token ids — and feeds only the rest. Slots are dropped least
recently used first when the budget is exceeded; a dropped slot only costs a prefill later,
never a different output, because reuse never changes what is computed, only where it starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from cachetools import LRUCache

from .kv_cache import KVCache
from .runner import ModelRunner

ROUND_TO = 256  # capacity grows in steps, so a growing prompt does not reallocate every keystroke


@dataclass
class Slot:
    target: KVCache
    draft: KVCache | None

    @property
    def nbytes(self) -> int:
        return self.target.nbytes + (self.draft.nbytes if self.draft is not None else 0)


class SlotStore:
    def __init__(self, target: ModelRunner, draft: ModelRunner | None, budget_bytes: int, enabled: bool = True):
        self.target, self.draft = target, draft
        self.enabled = enabled and budget_bytes > 0
        self.slots: LRUCache = LRUCache(maxsize=max(budget_bytes, 1), getsizeof=lambda s: s.nbytes)
        self.evictions = 0

    def acquire(self, key: str | None, target_len: int, draft_len: int) -> Slot:
        """The slot for `key`, grown to fit; a fresh one when caching is off or the key is new."""
        slot = self.slots.pop(key, None) if (self.enabled and key is not None) else None
        if slot is None:
            slot = Slot(self._new(self.target, target_len), self._new(self.draft, draft_len))
        else:
            slot = Slot(self._fit(self.target, slot.target, target_len), self._fit(self.draft, slot.draft, draft_len))
        return slot

    def release(self, key: str | None, slot: Slot) -> None:
        """Give the slot back after a request; it may evict others (or itself) to meet the budget."""
        if not self.enabled or key is None:
            return
        before = len(self.slots)
        if slot.nbytes <= self.slots.maxsize:
            self.slots[key] = slot
        self.evictions += max(0, before + 1 - len(self.slots))

    def drop(self, key: str) -> None:
        self.slots.pop(key, None)

    def clear(self) -> None:
        self.slots.clear()

    @property
    def nbytes(self) -> int:
        return int(self.slots.currsize)

    def _new(self, runner: ModelRunner | None, length: int) -> KVCache | None:
        if runner is None:
            return None
        return runner.new_cache(_rounded(length))

    def _fit(self, runner: ModelRunner | None, cache: KVCache | None, length: int) -> KVCache | None:
        if runner is None:
            return None
        if cache is None:
            return self._new(runner, length)
        if cache.capacity >= min(length, runner.max_positions):
            return cache
        grown = runner.new_cache(_rounded(length))
        n = cache.length
        grown.k[:, :, :, :n] = cache.k[:, :, :, :n]
        grown.v[:, :, :, :n] = cache.v[:, :, :, :n]
        grown.tokens = list(cache.tokens)
        return grown


def _rounded(n: int) -> int:
    return (n + ROUND_TO - 1) // ROUND_TO * ROUND_TO
