"""One model's forward step over our own position-indexed KV cache.

We run the layers of a transformers `LlamaForCausalLM` ourselves instead of calling its
`forward`, for three reasons: the cache must be ours (rolled back by position, reused across
requests, budgeted), the step must have static shapes so GPUs can capture it as a graph, and
the transformers cache API changes between minor versions while the layer modules do not.
The plain reference path (reference.py) uses transformers' own forward, so every test of the
fast path against it also checks this file against transformers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .. import faults
from .kv_cache import KVCache


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class ModelRunner:
    """Wraps a loaded Llama model: allocate caches, extend them with tokens, return logits."""

    def __init__(self, model: torch.nn.Module):
        self.model = model.eval()
        cfg = model.config
        self.config = cfg
        self.vocab_size = int(cfg.vocab_size)
        self.layers = list(model.model.layers)
        self.heads = int(cfg.num_attention_heads)
        self.kv_heads = int(getattr(cfg, "num_key_value_heads", None) or self.heads)
        self.head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads)
        self.max_positions = int(cfg.max_position_embeddings)
        p = next(model.parameters())
        self.device, self.dtype = p.device, p.dtype

    def new_cache(self, capacity: int) -> KVCache:
        capacity = min(capacity, self.max_positions)
        return KVCache(len(self.layers), self.kv_heads, self.head_dim, capacity, self.dtype, self.device)

    def cache_bytes_per_token(self) -> int:
        return 2 * len(self.layers) * self.kv_heads * self.head_dim * torch.finfo(self.dtype).bits // 8

    @torch.inference_mode()
    def extend(self, cache: KVCache, ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Feed `ids` at positions cache.length.. ; returns float32 logits [len(ids), vocab]."""
        tokens = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        start, n = cache.length, len(tokens)
        assert n > 0 and start + n <= cache.capacity, (start, n, cache.capacity)
        ids_t = ids.view(1, n) if isinstance(ids, torch.Tensor) else torch.tensor([tokens], device=self.device)
        positions = torch.arange(start, start + n, device=self.device)
        faults.before_forward()
        logits = self._forward(cache, ids_t.to(self.device), positions, start + n)
        cache.tokens.extend(tokens)
        return logits

    def _forward(self, cache: KVCache, ids: torch.Tensor, positions: torch.Tensor, end: int,
                 masked: bool = False) -> torch.Tensor:
        """`end`: attend to cache rows [0, end). `masked`: always build the position mask (graphs,
        whose span runs past the real length); otherwise it is built only when needed."""
        model = self.model.model
        T = ids.shape[1]
        h = model.embed_tokens(ids)  # [1, T, hidden]
        cos, sin = model.rotary_emb(h, positions.view(1, -1))  # [1, T, head_dim]
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        # key j is visible to query t when j <= position(t); one mask serves every layer.
        # A fresh prompt (end == T) is plain causal attention, which lets SDPA pick flash kernels.
        mask: torch.Tensor | bool | None = None
        if masked or (T > 1 and end > T):
            mask = torch.arange(end, device=self.device).view(1, -1) <= positions.view(-1, 1)
        elif T > 1:
            mask = True  # is_causal
        for i, layer in enumerate(self.layers):
            h = h + self._attention(layer, i, layer.input_layernorm(h), cache, positions, end, cos, sin, mask)
            h = h + layer.mlp(layer.post_attention_layernorm(h))
        h = model.norm(h)
        return self.model.lm_head(h)[0].float()

    def _attention(self, layer, i: int, x: torch.Tensor, cache: KVCache, positions: torch.Tensor,
                   end: int, cos: torch.Tensor, sin: torch.Tensor, mask) -> torch.Tensor:
        attn = layer.self_attn
        T = x.shape[1]
        q = attn.q_proj(x).view(1, T, self.heads, self.head_dim).transpose(1, 2)  # [1, H, T, D]
        k = attn.k_proj(x).view(1, T, self.kv_heads, self.head_dim).transpose(1, 2)  # [1, KV, T, D]
        v = attn.v_proj(x).view(1, T, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        cache.k[i].index_copy_(2, positions, k)
        cache.v[i].index_copy_(2, positions, v)
        keys, values = cache.k[i][:, :, :end], cache.v[i][:, :, :end]  # [1, KV, end, D]
        if self.kv_heads != self.heads:
            rep = self.heads // self.kv_heads
            keys, values = keys.repeat_interleave(rep, dim=1), values.repeat_interleave(rep, dim=1)
        if mask is True:
            out = F.scaled_dot_product_attention(q, keys, values, is_causal=True)  # [1, H, T, D]
        else:
            out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        return attn.o_proj(out.transpose(1, 2).reshape(1, T, self.heads * self.head_dim))
