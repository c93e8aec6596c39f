"""Real-shape GPU benchmark: CodeLlama-7b-shaped target, AMD-135m-shaped draft, controlled acceptance.

Everything is measured twice, eager and with graphs, in one process on one GPU, so the ratios
come from one run. Outputs are checked, not assumed: the bigram wiring makes the expected
continuation known, and every path must produce it; where the embedded demo pair is present the
graphed speculative path is also compared with the transformers reference token for token.
"""

from __future__ import annotations

import statistics

import torch

from .bench import timed
from .engine.api import GenerationRequest
from .engine.speculative import Engine
from .engine.synthetic import (AMD_135M, CODELLAMA_7B, bigram_model, cycle_map, cycle_prompt, follow, noisy_map,
                               rewire, scaled)

ALPHAS = (0.0, 0.5, 0.7, 0.8, 0.9)
PROMPT, NEW = 1024, 128


def gpu_suite(small: bool = False, quick: bool = False) -> dict:
    cuda = torch.cuda.is_available()
    device, dtype = ("cuda", torch.float16) if cuda else ("cpu", torch.float32)
    tshape, dshape = (CODELLAMA_7B, AMD_135M) if not small else (scaled(CODELLAMA_7B, 16), scaled(AMD_135M, 4))
    reps = 1 if quick else 3
    out: dict = {"shapes": {"target": vars(tshape), "draft": vars(dshape)}, "prompt": PROMPT, "new": NEW,
                 "device": torch.cuda.get_device_name() if cuda else "cpu", "dtype": str(dtype)}
    if cuda:
        out["copy_TBps_rw"] = copy_bandwidth()
    nxt = cycle_map()
    target = bigram_model(tshape, nxt, device, dtype)
    draft = bigram_model(dshape, nxt, device, dtype)
    weights = sum(p.numel() * p.element_size() for p in target.parameters())
    out["target_weight_GB"] = round(weights / 1e9, 2)
    if cuda:
        out["roofline_ms_per_token"] = round(weights / (out["copy_TBps_rw"] / 2 * 1e12) * 1e3, 2)
    modes = ["eager", "graphs"] if cuda else ["eager"]
    for mode in modes:
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        engine = Engine(target, draft, max_gamma=8, cache_budget_bytes=8 << 30, graphs=(mode == "graphs"),
                        graph_capacity=4352)
        section = {"capture_s": round(engine.capture_s, 2)}
        section["steps"] = step_times(engine, nxt)
        section["decode"] = decode_table(engine, draft, nxt, reps)
        section["prefill_ms"] = prefill_table(engine, nxt, quick)
        section["completion"] = completion_latency(engine, nxt, reps)
        if cuda:
            section["peak_memory_GB"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
        out[mode] = section
        del engine
        if cuda:
            torch.cuda.empty_cache()
    kv = 2 * tshape.layers * tshape.hidden * 2 * 4352 + 2 * dshape.layers * dshape.hidden * 2 * 2048
    out["weights_plus_kv_GB"] = round((weights + sum(p.numel() * p.element_size() for p in draft.parameters())
                                       + kv) / 1e9, 2)
    return out


def copy_bandwidth() -> float:
    x = torch.empty(2 << 30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    ms, _ = timed(lambda: y.copy_(x), reps=5)
    del x, y
    return round(2 * (2 << 30) / (ms / 1e3) / 1e12, 2)


def _request(ids: list[int], new: int, speculative: bool = True, key: str | None = None) -> GenerationRequest:
    return GenerationRequest(target_ids=ids, draft_ids=ids, context_ids=ids, max_new_tokens=new,
                             speculative=speculative, cache_key=key)


def step_times(engine: Engine, nxt) -> dict:
    """One forward of each kind on a 1024-token context, median over repetitions (ms)."""
    ids = cycle_prompt(nxt, PROMPT)
    engine.slots.clear()
    slot = engine.slots.acquire("steps", PROMPT + 64, PROMPT + 64)
    engine.target.extend(slot.target, ids)
    engine.drafter.runner.extend(slot.draft, ids)

    def forward(runner, cache, width):
        def run():
            runner.extend(cache, ids[:width])
            cache.rewind(PROMPT)
        return run

    out = {"plain_ms": round(timed(forward(engine.target, slot.target, 1), 20)[0], 3)}
    for width in (2, 3, 5, 7, 9):
        out[f"verify_{width}_ms"] = round(timed(forward(engine.target, slot.target, width), 20)[0], 3)
    out["draft_step_ms"] = round(timed(forward(engine.drafter.runner, slot.draft, 1), 20)[0], 3)
    engine.slots.release("steps", slot)
    engine.slots.clear()
    return out


def decode_table(engine: Engine, draft, nxt, reps: int) -> dict:
    """ms per generated token (prefill excluded) for plain decoding and speculation at each alpha."""
    ids = cycle_prompt(nxt, PROMPT)
    want = follow(nxt, ids[-1], NEW)
    rows = {}

    def run(speculative: bool) -> dict:
        engine.generate(_request(ids, NEW, speculative))  # warm-up; also lets the adaptive gamma settle
        samples = []
        for _ in range(reps):
            result = engine.generate(_request(ids, NEW, speculative))
            s = result.stats
            samples.append(((s.engine_ms - s.prefill_ms) / (len(result.tokens) - 1), s, result.tokens == want))
        ms = statistics.median(x[0] for x in samples)
        s = samples[-1][1]
        return {"ms_per_token": round(ms, 3), "exact": all(x[2] for x in samples), "rounds": s.rounds,
                "drafted": s.drafted_tokens, "accepted": s.accepted_tokens,
                "mean_accepted": round(s.mean_accepted, 2), "target_forwards": s.target_forwards}

    rows["plain"] = run(False)
    for alpha in ALPHAS:
        rewire(draft, noisy_map(nxt, alpha))
        engine.gammas.clear()
        row = run(True)
        row["speedup_vs_plain"] = round(rows["plain"]["ms_per_token"] / row["ms_per_token"], 2)
        rows[f"alpha_{alpha}"] = row
    rewire(draft, nxt)
    return rows


def prefill_table(engine: Engine, nxt, quick: bool) -> dict:
    out = {}
    for n in (256, 512, 1024) if quick else (256, 512, 1024, 2048, 4096):
        ids = cycle_prompt(nxt, n)
        engine.slots.clear()
        ms, _ = timed(lambda ids=ids: engine.generate(_request(ids, 1, False)), 3)
        out[str(n)] = round(ms, 2)
    return out


def completion_latency(engine: Engine, nxt, reps: int) -> dict:
    """One completion of 48 tokens on a 2k-token context: cold, and after a one-token edit at the end."""
    ids = cycle_prompt(nxt, 2048)
    cold, warm = [], []
    for _ in range(reps + 1):
        engine.slots.clear()
        ms_cold, r1 = timed(lambda: engine.generate(_request(ids[:-1], 48, True, "doc")), 1)
        ms_warm, r2 = timed(lambda: engine.generate(_request(ids, 48, True, "doc")), 1)
        cold.append(ms_cold)
        warm.append(ms_warm)
    return {"cold_ms": round(statistics.median(cold[1:]), 2), "after_one_token_edit_ms": round(statistics.median(warm[1:]), 2),
            "warm_prefill_tokens": r2.stats.prefill_tokens, "exact": r2.tokens == follow(nxt, ids[-1], 48)}
