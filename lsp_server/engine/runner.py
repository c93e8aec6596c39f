"""One model's forward step over our own position-indexed KV cache.

We run the layers of a transformers `LlamaForCausalLM` ourselves instead of calling its
`forward`, for three reasons: the cache must be ours (rolled back by position, reused across
requests, budgeted), the step must have static shapes so GPUs can capture it as a graph, and
the transformers cache API changes between minor versions while the layer modules do not.
The plain reference path (reference.py) uses transformers' own forward, so every test of the
fast path against it also checks this file against transformers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from . import fused
from .api import ForwardHook
from .kv_cache import KVCache

PACE_MIN_TOKENS = 32  # forwards at least this wide measure prefill speed; narrower ones are decode steps
PACE_WEIGHT = 0.3  # of the newest measurement in the running average


class ModelRunner:
    """Wraps a loaded Llama model: allocate caches, extend them with tokens, return logits."""

    def __init__(self, model: torch.nn.Module, before_forward: ForwardHook | None = None):
        self.model = model.eval()
        self.before_forward = before_forward or (lambda: None)
        cfg = model.config
        self.vocab_size = int(cfg.vocab_size)
        self.layers = list(model.model.layers)
        self.heads = int(cfg.num_attention_heads)
        self.kv_heads = int(getattr(cfg, "num_key_value_heads", None) or self.heads)
        self.head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads)
        self.max_positions = int(cfg.max_position_embeddings)
        self.silu = getattr(cfg, "hidden_act", None) == "silu"
        self.prefill_tokens_per_ms: float | None = None  # measured on a CPU; sizes preemptible prefill chunks
        p = next(model.parameters())
        self.device, self.dtype = p.device, p.dtype
        self._prepare()

    def new_cache(self, capacity: int) -> KVCache:
        capacity = min(capacity, self.max_positions)
        return KVCache(len(self.layers), self.kv_heads, self.head_dim, capacity, self.dtype, self.device)

    @torch.inference_mode()
    def extend(self, cache: KVCache, ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Feed `ids` at positions cache.length.. ; returns float32 logits [len(ids), vocab]."""
        tokens = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        start, n = cache.length, len(tokens)
        assert n > 0 and start + n <= cache.capacity, (start, n, cache.capacity)
        ids_t = ids.view(1, n) if isinstance(ids, torch.Tensor) else torch.tensor([tokens], device=self.device)
        positions = torch.arange(start, start + n, device=self.device)
        self.before_forward()
        t = time.perf_counter()
        logits = self._forward(cache, ids_t.to(self.device), positions, start + n)
        if n >= PACE_MIN_TOKENS and self.device.type == "cpu":  # elsewhere the forward runs asynchronously
            self._pace(n, time.perf_counter() - t)
        cache.append(tokens)
        return logits

    def _pace(self, tokens: int, seconds: float) -> None:
        """Running average of prefill speed; other processes sharing the CPU slow it, as they should."""
        rate = tokens / max(seconds * 1e3, 1e-3)
        old = self.prefill_tokens_per_ms
        self.prefill_tokens_per_ms = rate if old is None else (1 - PACE_WEIGHT) * old + PACE_WEIGHT * rate

    # -- the forward: one for every device, in few kernels ------------------------------------
    #
    # At batch 1 a GPU decode step's kernels are tiny and each costs a few microseconds even inside
    # a graph, so the step's time tracks kernel count. Per layer: q/k/v and gate/up each run as one
    # GEMV over concatenated weights; the residual add and the next RMSNorm are one kernel; rotary
    # on q and k plus the KV-cache write are one kernel; act(gate) * up is one. Per step, cos/sin
    # come from a table and the mask is built once in the additive form SDPA would convert a
    # boolean mask into in every layer. On CUDA the single kernels are Triton's (fused.py); on
    # other devices the same functions run transformers' own torch code, so the CPU suite tests
    # this very forward, and it differs from transformers' only in summation order.

    def _prepare(self) -> None:
        self.fused_weights = []  # per layer: ((qkv weight, bias), (gate/up weight, bias))
        for layer in self.layers:
            attn, mlp = layer.self_attn, layer.mlp
            self.fused_weights.append((fused.concat_linears(attn.q_proj, attn.k_proj, attn.v_proj),
                                       fused.concat_linears(mlp.gate_proj, mlp.up_proj)))
        # cos/sin for every position: the per-step rotary module is ~9 kernels; the values are the
        # same, as each is one product inv_freq * position. Rope types that rescale with the
        # sequence length (dynamic, longrope) change with it and keep the module.
        rotary = self.model.model.rotary_emb
        self.rope_table = None
        rope_type = str(getattr(rotary, "rope_type", "default"))
        if "dynamic" not in rope_type and "longrope" not in rope_type:
            with torch.inference_mode():
                pos = torch.arange(self.max_positions, device=self.device).view(1, -1)
                cos, sin = rotary(torch.empty(0, dtype=self.dtype, device=self.device), pos)
                self.rope_table = torch.cat((cos[0], sin[0]), dim=-1)  # [positions, 2 * head_dim]

    def _forward(self, cache: KVCache, ids: torch.Tensor, positions: torch.Tensor, end: int,
                 masked: bool = False) -> torch.Tensor:
        """`end`: attend to cache rows [0, end). `masked`: always build the position mask (graphs,
        whose span runs past the real length); otherwise it is built only when needed."""
        model = self.model.model
        h = model.embed_tokens(ids)  # [1, T, hidden]
        cos, sin = self._rope(h, positions)  # [T, D] each
        mask = self._mask(ids.shape[1], positions, end, masked)
        delta = None  # the previous block's output, added to the residual stream by the next norm
        for i, layer in enumerate(self.layers):
            (qkv_w, qkv_b), (gu_w, gu_b) = self.fused_weights[i]
            x, h = fused.add_rms_norm(h, delta, layer.input_layernorm)
            q = fused.rope_to_cache(F.linear(x, qkv_w, qkv_b), cos, sin, positions, cache.k[i], cache.v[i],
                                    self.heads, self.kv_heads)  # [1, H, T, D]
            delta = self._attention(layer, q, cache.k[i][:, :, :end], cache.v[i][:, :, :end], mask)
            x, h = fused.add_rms_norm(h, delta, layer.post_attention_layernorm)
            delta = layer.mlp.down_proj(fused.act_mul(F.linear(x, gu_w, gu_b), layer.mlp.act_fn, self.silu))
        x, _ = fused.add_rms_norm(h, delta, model.norm)
        return self.model.lm_head(x)[0].float()

    def _rope(self, h: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        D = self.head_dim
        if self.rope_table is not None:
            cs = self.rope_table[positions]
            return cs[:, :D], cs[:, D:]
        cos, sin = self.model.model.rotary_emb(h, positions.view(1, -1))
        return cos[0], sin[0]

    def _mask(self, T: int, positions: torch.Tensor, end: int, masked: bool) -> torch.Tensor | bool | None:
        """Key j is visible to query t when j <= position(t); one mask serves every layer. A fresh
        prompt (end == T) is plain causal attention, which lets SDPA pick flash kernels."""
        if masked or (T > 1 and end > T):
            visible = torch.arange(end, device=self.device).view(1, -1) <= positions.view(-1, 1)
            return torch.where(visible, 0.0, float("-inf")).to(self.dtype)
        return True if T > 1 else None  # True: is_causal

    def _attention(self, layer, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask) -> torch.Tensor:
        """q [1, H, T, D] over the cache rows keys/values [1, KV, end, D]; returns the o_proj output."""
        T = q.shape[2]
        if self.kv_heads != self.heads:
            rep = self.heads // self.kv_heads
            keys, values = keys.repeat_interleave(rep, dim=1), values.repeat_interleave(rep, dim=1)
        if mask is True:
            out = F.scaled_dot_product_attention(q, keys, values, is_causal=True)  # [1, H, T, D]
        else:
            out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        # SDPA's output is [1, T, H, D] in memory, so this reshape is a view, not a copy
        return layer.self_attn.o_proj(out.transpose(1, 2).reshape(1, T, self.heads * self.head_dim))
