"""Per-document engine state kept across requests: KV caches and the draft-length controller.

Each open document owns one slot: a target KV cache (the FIM view), a draft KV cache (the
FIM-free view) and the controller that picks its draft length (gamma.py). A new request reuses
the longest common prefix of its prompt with the ids the slot holds — compared on real token ids
— and feeds only the rest. One eviction rule bounds the store: least recently used first, while
the caches exceed the byte budget or more than MAX_DOCUMENTS documents are kept. A dropped slot
only costs a prefill and a fresh controller later, never a different greedy output, because
reuse never changes what is computed, only where it starts. With prefix caching off a slot keeps
its controller but no KV.
"""

from __future__ import annotations

from dataclasses import dataclass

from cachetools import LRUCache

from .gamma import GammaController
from .kv_cache import KVCache
from .runner import ModelRunner

ROUND_TO = 256  # capacity grows in steps, so a growing prompt does not reallocate every keystroke
MAX_DOCUMENTS = 256  # slots kept at most, whatever their size (one without KV is still a record)


@dataclass
class Slot:
    """One document's engine state; caches are None where none is held."""

    target: KVCache | None
    draft: KVCache | None
    gamma: GammaController | None = None  # made by the engine at the document's first decode

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in (self.target, self.draft) if c is not None)

    def without_kv(self) -> Slot:
        return Slot(None, None, self.gamma)


class SlotStore:
    """With `working` set (graphs), a request that fits runs in that one static slot: a document's
    state is copied in when it becomes the active one and copied out when another takes its place."""

    def __init__(self, target: ModelRunner, draft: ModelRunner | None, budget_bytes: int, enabled: bool = True,
                 working: Slot | None = None):
        self.target, self.draft = target, draft
        self.enabled = enabled and budget_bytes > 0  # whether KV is kept between requests
        self.slots: LRUCache = LRUCache(maxsize=max(budget_bytes, 1), getsizeof=lambda s: s.nbytes)
        self.evictions = 0
        self.working = working
        self.owner: str | None = None  # whose KV the working slot holds between requests

    def acquire(self, key: str | None, target_len: int, draft_len: int) -> Slot:
        """The slot for `key`, grown to fit; fresh caches when caching is off or the key is new."""
        if self.working is not None and target_len <= self.working.target.capacity:
            return self._swap_in(key)
        if key is not None and key == self.owner:
            self._swap_out()  # too long for the working slot: the document takes its KV back
        saved = self.slots.pop(key, None) or Slot(None, None)
        return Slot(self._fit(self.target, saved.target, target_len), self._fit(self.draft, saved.draft, draft_len),
                    saved.gamma)

    def release(self, key: str | None, slot: Slot) -> None:
        """Give the slot back after a request; it may evict others (or its own KV) to meet the bounds."""
        if slot is self.working:
            if key is not None and self.enabled:
                self.owner = key  # stays in place until another document needs the working slot
                return
            slot = slot.without_kv()
        self._keep(key, slot)

    def held(self, key: str | None) -> KVCache | None:
        """The target cache a request for `key` would start from, without taking it."""
        if not self.enabled or key is None:
            return None
        if self.working is not None and key == self.owner:
            return self.working.target
        slot = self.slots.get(key)
        return slot.target if slot is not None else None

    def drop(self, key: str | None, slot: Slot | None = None) -> None:
        """Forget a document's state (closed, or a request on it failed)."""
        if key is not None:
            self.slots.pop(key, None)
        if self.working is not None and (slot is self.working or (key is not None and self.owner == key)):
            self._empty_working()

    def clear(self) -> None:
        self.slots.clear()
        if self.working is not None:
            self._empty_working()

    @property
    def nbytes(self) -> int:
        return int(self.slots.currsize)

    def _keep(self, key: str | None, slot: Slot) -> None:
        """Requests without a key share one slot, which never keeps KV (nothing says two of them
        continue the same text) but keeps the controller."""
        if key is None or not self.enabled or slot.nbytes > self.slots.maxsize:
            self.evictions += key is not None and self.enabled  # its own KV exceeds the budget
            slot = slot.without_kv()  # the controller outlives the KV
        before = len(self.slots)
        self.slots[key] = slot  # evicts the least recently used beyond the byte budget
        while len(self.slots) > MAX_DOCUMENTS:
            self.slots.popitem()
        self.evictions += max(0, before + 1 - len(self.slots))

    def _swap_in(self, key: str | None) -> Slot:
        w = self.working
        if key is not None and key == self.owner:
            return w  # typing on in the same document: nothing moves
        self._swap_out()
        saved = self.slots.pop(key, None)
        w.target.load(saved.target if saved else None)
        if w.draft is not None:
            w.draft.load(saved.draft if saved else None)
        w.gamma = saved.gamma if saved else None
        return w

    def _swap_out(self) -> None:
        """The working slot's owner gets a right-sized copy of its state back in the store."""
        w = self.working
        if self.owner is not None:
            self._keep(self.owner, Slot(_copy_valid(self.target, w.target), _copy_valid(self.draft, w.draft), w.gamma))
        self.owner = None

    def _empty_working(self) -> None:
        self.working.target.reset()
        if self.working.draft is not None:
            self.working.draft.reset()
        self.working.gamma = None
        self.owner = None

    def _fit(self, runner: ModelRunner | None, cache: KVCache | None, length: int) -> KVCache | None:
        if runner is None:
            return None
        if cache is not None and cache.capacity >= min(length, runner.max_positions):
            return cache
        grown = runner.new_cache(_rounded(length))
        grown.load(cache)
        return grown


def _copy_valid(runner: ModelRunner | None, cache: KVCache | None) -> KVCache | None:
    """A right-sized copy of the rows a cache holds."""
    if runner is None or cache is None:
        return None
    copy = runner.new_cache(_rounded(max(cache.length, 1)))
    copy.load(cache)
    return copy


def _rounded(n: int) -> int:
    return (n + ROUND_TO - 1) // ROUND_TO * ROUND_TO
