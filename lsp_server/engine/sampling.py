"""Token choice and the speculative acceptance rules.

Greedy (temperature 0): accept the longest run of drafted tokens that equals the target's
argmax at each position, then take the target's own argmax after that run. When every drafted
token is accepted this last token is the "bonus" token: a round of k drafts emits 1..k+1 tokens
and the output equals plain greedy decoding token for token.

Sampling (temperature > 0), Leviathan et al. / Chen et al.: with target distribution p and
draft distribution q at each drafted position i, accept draft token d_i with probability
min(1, p_i(d_i) / q_i(d_i)). At the first rejection, sample a replacement from
norm(max(0, p_i - q_i)) and end the round. If all k are accepted, sample the bonus token from
p_{k+1}. The emitted tokens are then distributed exactly as the target's samples would be.
A deterministic drafter (copy-from-context) is the special case q_i = one-hot(d_i).

Token healing (api.Healing) restricts the first tokens to a set of ids: both paths, and the draft
model, mask every other id's logit to -inf before choosing, so the rules above hold unchanged
over the masked distributions (a drafted id outside the set has p = 0 and is rejected).
"""

from __future__ import annotations

from functools import lru_cache

import torch


def probabilities(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return torch.softmax(logits.float() / temperature, dim=-1)


def pick(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> int:
    """One token from one row of logits: argmax at temperature 0, else a sample."""
    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = probabilities(logits, temperature).cpu()
    return int(torch.multinomial(probs, 1, generator=generator))


def constrain(logits: torch.Tensor, allowed: frozenset[int] | None) -> torch.Tensor:
    """One row of logits with every id outside `allowed` at -inf (a new tensor); None: the row as is.
    Ids beyond the row's vocabulary (the draft's is smaller) are left out."""
    if allowed is None:
        return logits
    ids = _allowed_ids(allowed, logits.shape[-1], logits.device)
    out = torch.full_like(logits, float("-inf"))
    out[ids] = logits[ids]
    return out


@lru_cache(maxsize=64)
def _allowed_ids(allowed: frozenset[int], vocab: int, device: torch.device) -> torch.Tensor:
    # a set can hold half the vocabulary (every id starting with a space): built once per request,
    # not once per row; a frozenset caches its hash, and the same object is found by identity
    return torch.tensor(sorted(i for i in allowed if i < vocab), dtype=torch.long, device=device)


def greedy_accept(proposal: list[int], target_logits: torch.Tensor) -> tuple[int, int]:
    """target_logits: [k+1, V] for [pending, d_1..d_k]. Returns (accepted count, next token)."""
    preds = torch.argmax(target_logits, dim=-1).tolist()  # the round's one host sync
    n = 0
    while n < len(proposal) and proposal[n] == preds[n]:
        n += 1
    return n, preds[n]


def sample_accept(proposal: list[int], draft_probs: torch.Tensor | None, target_logits: torch.Tensor,
                  temperature: float, generator: torch.Generator) -> tuple[int, int]:
    """draft_probs: [k, V_target] (zero beyond the draft's vocabulary) or None for one-hot proposals."""
    p = probabilities(target_logits, temperature).cpu()  # [k+1, V]
    k = len(proposal)
    q = draft_probs.cpu() if draft_probs is not None else _one_hot(proposal, p.shape[-1])
    u = torch.rand(k, generator=generator).tolist()
    for i, d in enumerate(proposal):
        ratio = float(p[i, d]) / max(float(q[i, d]), 1e-30)
        if u[i] < min(1.0, ratio):
            continue
        residual = torch.clamp(p[i] - q[i], min=0)
        total = float(residual.sum())
        if total <= 0:  # p == q up to rounding: any sample from p is exact
            residual, total = p[i], 1.0
        return i, int(torch.multinomial(residual / total, 1, generator=generator))
    return k, int(torch.multinomial(p[k], 1, generator=generator))


def _one_hot(tokens: list[int], vocab: int) -> torch.Tensor:
    q = torch.zeros(len(tokens), vocab)
    q[torch.arange(len(tokens)), torch.tensor(tokens, dtype=torch.long)] = 1.0
    return q
