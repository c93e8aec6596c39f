"""Real-shaped models with controlled acceptance, for benchmarking without real weights.

Random weights make a draft agree with the target by chance only. To time CodeLlama-7b and
AMD-Llama-135m shapes at a chosen per-token acceptance a, both are wired as pure bigram maps
while every matmul still runs: zeroing each layer's o_proj and down_proj leaves the residual
stream holding only the token's embedding, and embed[t] = lm_head[next(t)] with a sharpened
final norm makes greedy decoding follow `next` exactly. The target's map is one big cycle over
the shared ids; the draft's map equals it on a fraction a of the ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SHARED = 32000  # ids both models have; the cycle avoids the target-only ids above


@dataclass(frozen=True)
class Shape:
    vocab: int
    hidden: int
    ffn: int
    layers: int
    heads: int
    max_positions: int
    rope_theta: float


CODELLAMA_7B = Shape(32016, 4096, 11008, 32, 32, 16384, 1e6)
AMD_135M = Shape(32000, 768, 2048, 12, 12, 2048, 1e4)


def scaled(shape: Shape, factor: int) -> Shape:
    """A smaller model of the same family (CPU smoke tests of the benchmark itself)."""
    return Shape(shape.vocab, shape.hidden // factor, shape.ffn // factor, max(1, shape.layers // factor),
                 max(1, shape.heads // factor), shape.max_positions, shape.rope_theta)


def cycle_map(seed: int = 1) -> torch.Tensor:
    """next[t] for t < SHARED: one cycle through every shared id, in a random order."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(SHARED, generator=g)
    nxt = torch.empty(SHARED, dtype=torch.long)
    nxt[perm] = perm.roll(-1)
    return nxt


def noisy_map(nxt: torch.Tensor, alpha: float, seed: int = 2) -> torch.Tensor:
    """Equal to `nxt` on a fraction alpha of the ids, a different random id elsewhere."""
    g = torch.Generator().manual_seed(seed)
    out = nxt.clone()
    flip = torch.rand(SHARED, generator=g) >= alpha
    out[flip] = (nxt[flip] + 1 + torch.randint(0, SHARED - 1, (int(flip.sum()),), generator=g)) % SHARED
    return out


@torch.no_grad()
def bigram_model(shape: Shape, nxt: torch.Tensor, device: str | torch.device, dtype: torch.dtype):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=shape.vocab, hidden_size=shape.hidden, intermediate_size=shape.ffn,
                         num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
                         num_key_value_heads=shape.heads, max_position_embeddings=shape.max_positions,
                         rope_theta=shape.rope_theta, rms_norm_eps=1e-5, tie_word_embeddings=False,
                         bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype).eval()
    for layer in model.model.layers:
        layer.self_attn.o_proj.weight.zero_()
        layer.mlp.down_proj.weight.zero_()
    rewire(model, nxt)
    return model


@torch.no_grad()
def rewire(model, nxt: torch.Tensor) -> None:
    """Point the bigram map at `nxt` (cheap: only the embedding rows change)."""
    head = model.lm_head.weight
    head.normal_(0, 0.02, generator=torch.Generator(head.device).manual_seed(3))
    rows = nxt.to(head.device)
    model.model.embed_tokens.weight[:SHARED].copy_(head[rows])
    model.model.norm.weight.fill_(max(1.0, 30.0 / (0.02 * model.config.hidden_size)))


def cycle_prompt(nxt: torch.Tensor, length: int, start: int = 5) -> list[int]:
    ids = [start]
    for _ in range(length - 1):
        ids.append(int(nxt[ids[-1]]))
    return ids


def follow(nxt: torch.Tensor, last: int, n: int) -> list[int]:
    out = []
    for _ in range(n):
        last = int(nxt[last])
        out.append(last)
    return out
