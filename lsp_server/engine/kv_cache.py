"""Preallocated key/value caches indexed by position.

A cache holds K/V for positions 0..length-1 and remembers which token ids produced them, so a
later prompt can be checked against real ids (never a hash) before its prefix is reused.
Rolling back — a rejected draft, an edit before the cursor — only moves the position: the
stale rows beyond it are overwritten by the next forward and are never attended to, because
attention only reads positions below the writer's own.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class KVCache:
    """K/V for one model and one context: tensors [layers, 1, kv_heads, capacity, head_dim]."""

    def __init__(self, layers: int, kv_heads: int, head_dim: int, capacity: int,
                 dtype: torch.dtype, device: torch.device | str):
        shape = (layers, 1, kv_heads, capacity, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.capacity = capacity
        self.tokens: list[int] = []  # ids held at positions 0..length-1

    @property
    def length(self) -> int:
        return len(self.tokens)

    @property
    def nbytes(self) -> int:
        return self.k.numel() * self.k.element_size() * 2

    def common_prefix(self, ids: Sequence[int]) -> int:
        """How many leading ids of `ids` this cache already holds."""
        n = min(len(ids), self.length)
        held = self.tokens
        i = 0
        while i < n and held[i] == ids[i]:
            i += 1
        return i

    def reusable(self, ids: Sequence[int]) -> int:
        """How much of a prompt `ids` a forward can skip: the common prefix, short of the last id,
        which is always fed again because its logits are what the forward is for."""
        return min(self.common_prefix(ids), len(ids) - 1)

    def reuse(self, ids: Sequence[int]) -> int:
        """Rewind to the reusable part of `ids` (see reusable); returns its length."""
        n = self.reusable(ids)
        self.rewind(n)
        return n

    def append(self, tokens: Sequence[int]) -> None:
        """Record the ids whose K/V a forward just wrote at positions length.. (the rows are
        written by the forward itself, layer by layer)."""
        assert self.length + len(tokens) <= self.capacity, (self.length, len(tokens), self.capacity)
        self.tokens.extend(tokens)

    def rewind(self, length: int) -> None:
        """Forget everything from `length` on. Only the position moves; no tensor is touched."""
        assert 0 <= length <= self.length, (length, self.length)
        del self.tokens[length:]

    def reset(self) -> None:
        """Hold nothing (the rows stay as they are: nothing reads them)."""
        self.rewind(0)

    def load(self, src: KVCache | None) -> None:
        """Hold what `src` holds (or nothing): its valid rows are copied, as many as fit."""
        if src is None:
            self.reset()
            return
        n = min(src.length, self.capacity)
        self.k[:, :, :, :n].copy_(src.k[:, :, :, :n])
        self.v[:, :, :, :n].copy_(src.v[:, :, :, :n])
        self.tokens = list(src.tokens[:n])
