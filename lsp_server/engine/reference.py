"""Plain decoding through transformers' own forward: the slow ground truth.

Kept forever on purpose. It shares nothing with the fast path but the model weights and the
stop rules: no cache of ours, no runner of ours. Every fast path (speculative rounds, prefix
reuse, graphs) is tested against it token for token.
"""

from __future__ import annotations

import inspect
import time

import torch

from .api import GenerationRequest, GenerationResult, Stats
from .sampling import constrain, pick
from .stopping import finish_reason


@torch.inference_mode()
def reference_generate(model: torch.nn.Module, request: GenerationRequest) -> GenerationResult:
    """Greedy (or plainly sampled) decoding with transformers' dynamic cache, one token per forward."""
    from transformers import DynamicCache

    t0 = time.perf_counter()
    device = next(model.parameters()).device
    generator = _generator(request.seed)
    stats = Stats(prompt_tokens=len(request.target_ids), prefill_tokens=len(request.target_ids))
    cache = {_cache_argument(model): DynamicCache(config=model.config)}  # filled in place by each forward
    out = model(input_ids=torch.tensor([request.target_ids], device=device), use_cache=True, **cache)
    stats.target_forwards = 1
    generated: list[int] = []
    while True:
        logits = constrain(out.logits[0, -1].float(), request.allowed_after(generated))  # token healing
        tok = pick(logits, request.temperature, generator)
        generated.append(tok)
        reason = finish_reason(generated, request)
        if reason:
            break
        request.check_cancel()
        if request.out_of_time():
            reason = "time"
            break
        out = model(input_ids=torch.tensor([[tok]], device=device), use_cache=True, **cache)
        stats.target_forwards += 1
    stats.generated_tokens = len(generated)
    stats.finish_reason = reason
    stats.engine_ms = (time.perf_counter() - t0) * 1e3
    return GenerationResult(generated, stats)


def _cache_argument(model: torch.nn.Module) -> str:
    """The name under which this transformers' forward takes the KV cache.

    transformers 5.x renamed `past_key_values` to `cache` (the old name warns and is removed in
    5.40) and pyproject allows versions on both sides of the rename, so ask the signature.
    """
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _generator(seed: int | None) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed if seed is not None else 0)
    return g
