"""Plain decoding through transformers' own forward: the slow ground truth.

Kept forever on purpose. It shares nothing with the fast path but the model weights and the
stop rules: no cache of ours, no runner of ours. Every fast path (speculative rounds, prefix
reuse, graphs) is tested against it token for token.
"""

from __future__ import annotations

import time

import torch

from .api import GenerationRequest, GenerationResult, Stats
from .sampling import pick
from .stopping import finish_reason


@torch.inference_mode()
def reference_generate(model: torch.nn.Module, request: GenerationRequest) -> GenerationResult:
    """Greedy (or plainly sampled) decoding with transformers' dynamic cache, one token per forward."""
    t0 = time.perf_counter()
    device = next(model.parameters()).device
    generator = _generator(request.seed)
    stats = Stats(prompt_tokens=len(request.target_ids), prefill_tokens=len(request.target_ids))
    out = model(input_ids=torch.tensor([request.target_ids], device=device), use_cache=True)
    stats.target_forwards = 1
    generated: list[int] = []
    while True:
        tok = pick(out.logits[0, -1].float(), request.temperature, generator)
        generated.append(tok)
        reason = finish_reason(generated, request)
        if reason:
            break
        request.check_cancel()
        if request.out_of_time():
            reason = "time"
            break
        out = model(input_ids=torch.tensor([[tok]], device=device),
                    past_key_values=out.past_key_values, use_cache=True)
        stats.target_forwards += 1
    stats.generated_tokens = len(generated)
    stats.finish_reason = reason
    stats.engine_ms = (time.perf_counter() - t0) * 1e3
    return GenerationResult(generated, stats)


def _generator(seed: int | None) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed if seed is not None else 0)
    return g
