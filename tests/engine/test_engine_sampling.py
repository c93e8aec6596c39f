"""Speculative sampling keeps the target's distribution (a statistical test on a tiny vocabulary)."""

from __future__ import annotations

import torch

from lsp_server.engine.api import GenerationRequest
from lsp_server.engine.speculative import Engine
from tests.fixtures import tiny_llama

TARGET_V, DRAFT_V = 8, 6  # ids 6 and 7 exist only in the target, like the FIM specials
PROMPT = [1, 3, 5, 4]
T = 1.0
RUNS = 3000
CHI2_LIMIT = 29.9  # 7 degrees of freedom, p = 1e-4: a correct rule fails this once in 10,000 runs


def models():
    target = tiny_llama(TARGET_V, 32, 1, seed=3)
    draft = tiny_llama(DRAFT_V, 32, 1, seed=4)
    with torch.no_grad():  # flatter distributions: every token has mass, so every cell is tested
        target.lm_head.weight.mul_(0.1)
        draft.lm_head.weight.mul_(0.1)
    return target, draft


@torch.no_grad()
def next_probs(model, ids):
    return torch.softmax(model(torch.tensor([ids])).logits[0, -1].float() / T, -1)


def exact_marginals(target, steps=3):
    """P(token at step k) under plain sampling from the target, by enumeration."""
    marg = [torch.zeros(TARGET_V) for _ in range(steps)]

    def walk(ids, p, depth):
        if depth == steps:
            return
        probs = next_probs(target, ids)
        for t in range(TARGET_V):
            marg[depth][t] += p * probs[t]
            walk(ids + [t], p * probs[t], depth + 1)

    walk(PROMPT, 1.0, 0)
    return marg


def chi2(counts: torch.Tensor, probs: torch.Tensor) -> float:
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected.clamp_min(1e-9)).sum())


def sample_marginals(engine, steps=3):
    counts = [torch.zeros(TARGET_V) for _ in range(steps)]
    for seed in range(RUNS):
        out = engine.generate(GenerationRequest(target_ids=PROMPT, draft_ids=PROMPT, max_new_tokens=steps,
                                                temperature=T, seed=seed))
        for k, tok in enumerate(out.tokens):
            counts[k][tok] += 1
    return counts


def test_speculative_sampling_preserves_target_distribution():
    target, draft = models()
    exact = exact_marginals(target)
    engine = Engine(target, draft, max_gamma=2, copy_drafter=False, adaptive_gamma=False)
    counts = sample_marginals(engine)
    assert all(c.sum() == RUNS for c in counts)
    for k in (1, 2):  # step 0 is sampled from the prefill; steps 1 and 2 pass the acceptance rule
        assert chi2(counts[k], exact[k]) < CHI2_LIMIT, (k, counts[k], exact[k] * RUNS)


def test_the_test_can_tell_a_wrong_distribution():
    """Negative control: the draft's own distribution is rejected by the same test."""
    target, draft = models()
    exact = exact_marginals(target, steps=1)[0]
    q = torch.nn.functional.pad(next_probs(draft, PROMPT), (0, TARGET_V - DRAFT_V))
    g = torch.Generator().manual_seed(0)
    counts = torch.bincount(torch.multinomial(q, RUNS, replacement=True, generator=g), minlength=TARGET_V).float()
    assert chi2(counts, exact) > CHI2_LIMIT


def test_rounds_really_speculate():
    target, draft = models()
    engine = Engine(target, draft, max_gamma=2, copy_drafter=False, adaptive_gamma=False)
    stats = [engine.generate(GenerationRequest(target_ids=PROMPT, draft_ids=PROMPT, max_new_tokens=3,
                                               temperature=T, seed=s)).stats for s in range(50)]
    assert sum(s.drafted_tokens for s in stats) > 0
    assert 0 < sum(s.accepted_tokens for s in stats) < sum(s.drafted_tokens for s in stats)


def test_exact_marginals_sum_to_one():
    target, _ = models()
    for m in exact_marginals(target, steps=2):
        assert abs(float(m.sum()) - 1) < 1e-5
