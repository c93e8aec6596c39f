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
    """With `working` set (graphs), every request runs in that one static slot: a document's KV is
    copied in when it becomes the active one and copied out when another takes its place."""

    def __init__(self, target: ModelRunner, draft: ModelRunner | None, budget_bytes: int, enabled: bool = True,
                 working: Slot | None = None):
        self.target, self.draft = target, draft
        self.enabled = enabled and budget_bytes > 0
        self.slots: LRUCache = LRUCache(maxsize=max(budget_bytes, 1), getsizeof=lambda s: s.nbytes)
        self.evictions = 0
        self.working = working
        self.owner: str | None = None  # whose KV the working slot holds

    def acquire(self, key: str | None, target_len: int, draft_len: int) -> Slot:
        """The slot for `key`, grown to fit; a fresh one when caching is off or the key is new."""
        if self.working is not None and target_len <= self.working.target.capacity:
            return self._swap_in(key)
        slot = self.slots.pop(key, None) if (self.enabled and key is not None) else None
        if slot is None:
            slot = Slot(self._new(self.target, target_len), self._new(self.draft, draft_len))
        else:
            slot = Slot(self._fit(self.target, slot.target, target_len), self._fit(self.draft, slot.draft, draft_len))
        return slot

    def release(self, key: str | None, slot: Slot) -> None:
        """Give the slot back after a request; it may evict others (or itself) to meet the budget."""
        if slot is self.working:
            self.owner = key if self.enabled else None
            return
        if not self.enabled or key is None:
            return
        before = len(self.slots)
        if slot.nbytes <= self.slots.maxsize:
            self.slots[key] = slot
        self.evictions += max(0, before + 1 - len(self.slots))

    def held(self, key: str | None) -> KVCache | None:
        """The target cache a request for `key` would start from, without taking it."""
        if not self.enabled or key is None:
            return None
        if self.working is not None and key == self.owner:
            return self.working.target
        slot = self.slots.get(key)
        return slot.target if slot is not None else None

    def drop(self, key: str | None, slot: Slot | None = None) -> None:
        """Forget a document's KV (closed, or a request on it failed)."""
        if key is not None:
            self.slots.pop(key, None)
        if self.working is not None and (slot is self.working or (key is not None and self.owner == key)):
            self._empty_working()

    def clear(self) -> None:
        self.slots.clear()
        if self.working is not None:
            self._empty_working()

    def _empty_working(self) -> None:
        self.working.target.rewind(0)
        if self.working.draft is not None:
            self.working.draft.rewind(0)
        self.owner = None

    def _swap_in(self, key: str | None) -> Slot:
        w = self.working
        if self.enabled and key is not None and key == self.owner:
            return w  # typing on in the same document: nothing moves
        if self.enabled and self.owner is not None:  # keep the previous document's KV
            self.release(self.owner, Slot(_copy_valid(self.target, w.target), _copy_valid(self.draft, w.draft)))
        saved = self.slots.pop(key, None) if (self.enabled and key is not None) else None
        _load(w.target, saved.target if saved else None)
        if w.draft is not None:
            _load(w.draft, saved.draft if saved else None)
        self.owner = None
        return w

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
        _load(grown, cache)
        return grown


def _copy_valid(runner: ModelRunner | None, cache: KVCache | None) -> KVCache | None:
    """A right-sized copy of the rows a cache holds."""
    if runner is None or cache is None:
        return None
    copy = runner.new_cache(_rounded(max(cache.length, 1)))
    _load(copy, cache)
    return copy


def _load(dst: KVCache, src: KVCache | None) -> None:
    """Make `dst` hold what `src` holds (or nothing); only the valid rows are copied."""
    if src is None:
        dst.rewind(0)
        return
    n = min(src.length, dst.capacity)
    dst.k[:, :, :, :n].copy_(src.k[:, :, :, :n])
    dst.v[:, :, :, :n].copy_(src.v[:, :, :, :n])
    dst.tokens = list(src.tokens[:n])


def _rounded(n: int) -> int:
    return (n + ROUND_TO - 1) // ROUND_TO * ROUND_TO
