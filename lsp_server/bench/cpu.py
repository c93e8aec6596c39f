"""CPU benchmark: the embedded demo pair on held-out code, and the copy drafter on repeated code.

- demo pair: left-to-right continuations of held-out standard-library code, 64 tokens, greedy;
  plain decoding against speculative decoding (model drafter + copy drafter, adaptive draft
  length), same engine, same prompts: ms per token, acceptance, and whether outputs are identical;
- copy drafter: a block of held-out code is being written again right below itself (a duplicated
  function being adapted, a second similar test): the copy drafter alone against plain decoding.
"""

from __future__ import annotations

import random

from ..config import Settings
from ..engine.api import GenerationRequest
from ..engine.models import demo_paths, load_models
from ..engine.speculative import Engine
from .heldout import heldout_file


def _prompts(codec, count: int, length: int, seed: int = 0) -> list[list[int]]:
    ids = codec.encode(heldout_file(12000).read_text(encoding="utf-8"))
    rng = random.Random(seed)
    cuts = [rng.randrange(length, len(ids) - 64) for _ in range(count)]
    return [[codec.bos] + ids[c - length:c] for c in cuts]


def _run(engine: Engine, prompts, speculative: bool, new: int = 64, key: str = "bench") -> dict:
    ms, tokens, drafted, accepted, rounds, outputs = 0.0, 0, 0, 0, 0, []
    for i, p in enumerate(prompts):
        r = engine.generate(GenerationRequest(target_ids=p, draft_ids=p, context_ids=p[1:], max_new_tokens=new,
                                              speculative=speculative, cache_key=f"{key}{i}"))
        s = r.stats
        ms += s.engine_ms - s.prefill_ms
        tokens += max(len(r.tokens) - 1, 1)
        drafted, accepted, rounds = drafted + s.drafted_tokens, accepted + s.accepted_tokens, rounds + s.rounds
        outputs.append(r.tokens)
    return {"ms_per_token": round(ms / tokens, 3), "drafted": drafted, "accepted": accepted,
            "acceptance": round(accepted / max(drafted, 1), 3),
            "tokens_per_target_forward": round((accepted + rounds) / max(rounds, 1), 3), "outputs": outputs}


def _compare(engine: Engine, prompts, key: str) -> dict:
    _run(engine, prompts[:2], False, key="warm")  # warm-up
    plain = _run(engine, prompts, False, key=key + "p")
    spec = _run(engine, prompts, True, key=key + "s")
    identical = plain.pop("outputs") == spec.pop("outputs")
    return {"plain": plain, "speculative": spec, "identical_outputs": identical,
            "speedup": round(plain["ms_per_token"] / spec["ms_per_token"], 2)}


def repeated_code_prompts(codec, count: int) -> list[list[int]]:
    """A function of held-out code, then the same function being typed again below it."""
    text = heldout_file(12000).read_text(encoding="utf-8")
    blocks = [b for b in text.split("\n\n") if 200 < len(b) < 1500 and b.lstrip().startswith("def ")]
    rng = random.Random(1)
    out = []
    for _ in range(count):
        block = rng.choice(blocks)
        typed = block[: rng.randrange(20, len(block) // 2)]
        out.append([codec.bos] + codec.encode(block + "\n\n" + typed))
    return out


def cpu_suite(args) -> dict:
    t, d = demo_paths()
    models = load_models(Settings(target=str(t), draft=str(d), device="cpu", dtype="float32"))
    count = 6 if args.quick else 20
    demo = Engine(models.target, models.draft, max_gamma=6)
    copy_only = Engine(models.target, None, max_gamma=6)
    return {"models": models.info, "new_tokens": 64,
            "demo_pair_heldout": _compare(demo, _prompts(models.codec, count, 384), "h"),
            "copy_drafter_repeated_code": _compare(copy_only, repeated_code_prompts(models.codec, count), "c")}
