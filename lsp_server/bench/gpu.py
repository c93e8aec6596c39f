"""Real-shape GPU benchmark: CodeLlama-7b-shaped target, AMD-135m-shaped draft, controlled acceptance.

Everything is measured twice, eager and with graphs, in one process on one GPU, so the ratios
come from one run. Outputs are checked, not assumed: the bigram wiring makes the expected
continuation known, and every path must produce it; where the embedded demo pair is present the
graphed speculative path is also compared with the transformers reference token for token.
"""

from __future__ import annotations

import statistics

import torch

from ..engine.api import GenerationRequest
from ..engine.speculative import Engine
from ..prompt import CursorContext
from .common import timed
from .heldout import heldout_file, heldout_text
from .synthetic import (
    AMD_135M,
    CODELLAMA_7B,
    bigram_model,
    cycle_map,
    cycle_prompt,
    follow,
    noisy_map,
    rewire,
    scaled,
)

ALPHAS = (0.0, 0.5, 0.7, 0.8, 0.9)
PROMPT, NEW = 1024, 128


def gpu_suite(small: bool = False, quick: bool = False, checkpoint=lambda partial: None) -> dict:
    """`checkpoint(out)` is called after each part, so a run cut short still leaves its numbers."""
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
        # the copy rate counts bytes read plus written; a decode step only reads its weights
        out["roofline_ms_per_token"] = round(weights / (out["copy_TBps_rw"] * 1e12) * 1e3, 2)
    modes = ["eager", "graphs"] if cuda else ["eager"]
    for mode in modes:
        out[mode] = section = {}
        try:  # a failure in one part is recorded and the rest still runs
            measure_mode(section, mode, target, draft, nxt, reps, quick)
        except Exception as e:
            section["error"] = f"{type(e).__name__}: {e}"[:500]
        checkpoint(out)
        if cuda:
            torch.cuda.empty_cache()
    if cuda:
        try:
            out["exactness_demo_pair"] = demo_exactness()
        except Exception as e:
            out["exactness_demo_pair"] = {"error": f"{type(e).__name__}: {e}"[:500]}
    kv = 2 * tshape.layers * tshape.hidden * 2 * 4352 + 2 * dshape.layers * dshape.hidden * 2 * 2048
    out["weights_plus_kv_GB"] = round((weights + sum(p.numel() * p.element_size() for p in draft.parameters())
                                       + kv) / 1e9, 2)
    return out


def measure_mode(section: dict, mode: str, target, draft, nxt, reps: int, quick: bool) -> None:
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    engine = Engine(target, draft, max_gamma=8, cache_budget_bytes=8 << 30, graphs=(mode == "graphs"),
                    graph_capacity=4352)
    section["capture_s"] = round(engine.capture_s, 2)
    section["steps"] = step_times(engine, nxt)
    section["decode"] = decode_table(engine, draft, nxt, reps)
    section["prefill_ms"] = prefill_table(engine, nxt, quick)
    section["completion"] = completion_latency(engine, nxt, reps)
    if mode == "graphs" or not cuda:
        rewire(draft, noisy_map(nxt, 0.7))
        section["replay_alpha_0.7"] = replay_real_shapes(engine, quick)
        rewire(draft, nxt)
    if cuda:
        section["peak_memory_GB"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)


def copy_bandwidth() -> float:
    x = torch.empty(2 << 30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    ms, _ = timed(lambda: y.copy_(x), reps=5)
    return round(2 * (2 << 30) / (ms / 1e3) / 1e12, 2)


def _request(ids: list[int], new: int, speculative: bool = True, key: str | None = "bench") -> GenerationRequest:
    # the draft sees the prompt's tail within its own position limit, as the prompt builder gives it
    return GenerationRequest(target_ids=ids, draft_ids=ids[-1536:], context_ids=ids, max_new_tokens=new,
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
                "draft_ms": round(s.draft_ms, 1), "verify_ms": round(s.verify_ms, 1),
                "plain_steps_ms": round(s.decode_ms, 1), "engine_ms": round(s.engine_ms, 1),
                "drafted": s.drafted_tokens, "accepted": s.accepted_tokens,
                "mean_accepted": round(s.mean_accepted, 2), "target_forwards": s.target_forwards}

    engine.slots.clear()
    rows["plain"] = run(False)
    for alpha in ALPHAS:
        engine.slots.clear()
        rewire(draft, noisy_map(nxt, alpha))
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
        ms, _ = timed(lambda ids=ids: engine.generate(_request(ids, 1, False, None)), 3)
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


def demo_exactness(prompts: int = 24, new: int = 48) -> dict:
    """The graphed speculative path against the transformers reference on real code, token for token.

    float32 with TF32 off, so both paths compute the same logits up to summation order: a mismatch
    means a bug, not rounding. Prompts are held-out standard-library code at random cut points."""
    import random

    from ..config import Settings
    from ..engine.models import demo_paths, load_models
    from ..engine.reference import reference_generate

    if not (demo_paths()[0] / "config.json").exists():
        return {"skipped": "no embedded demo models"}
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    t, d = demo_paths()
    models = load_models(Settings(target=str(t), draft=str(d), device="auto", dtype="float32"))
    engine = Engine(models.target, models.draft, max_gamma=6, graphs=True, graph_capacity=1024)
    text = heldout_text()
    rng = random.Random(0)
    same, accepted, drafted = 0, 0, 0
    for i in range(prompts):
        cut = rng.randrange(200, len(text) - 200)
        ids = models.codec.encode(text[max(0, cut - 1500):cut])[-600:]
        request = GenerationRequest(target_ids=[models.codec.bos] + ids, draft_ids=[models.codec.bos] + ids,
                                    context_ids=ids, max_new_tokens=new, cache_key=f"doc{i % 3}")
        ref = reference_generate(models.target, GenerationRequest(target_ids=request.target_ids, max_new_tokens=new))
        got = engine.generate(request)
        same += got.tokens == ref.tokens
        accepted += got.stats.accepted_tokens
        drafted += got.stats.drafted_tokens
    return {"prompts": prompts, "identical": same, "graph_replays": getattr(engine.target, "replays", 0),
            "accepted": accepted, "drafted": drafted}


def replay_real_shapes(engine: Engine, quick: bool) -> dict:
    """The typing replay (replay.py) on the real shapes: prompts are a held-out file's SPM prompts
    built with the demo tokenizer at a 2k-token context, completions are 48 tokens. The models are
    the controlled-acceptance pair, so the text is not meaningful and typing-through (which needs
    text) is measured on the CPU replay instead; latency and prefilled tokens are what is measured."""
    from ..config import Settings
    from ..engine.models import demo_paths, load_models
    from ..prompt import PromptBuilder, WindowState
    from .replay import summarize, typing_events

    codec = load_models(Settings(target=str(demo_paths()[0]), draft="none", device="cpu")).codec
    text = heldout_file(12000).read_text(encoding="utf-8")
    start = text.index("\n", len(text) // 2) + 1
    events = list(typing_events(text, start, 200 if quick else 400))[:60]
    out = {}
    for name, key in (("cache_off", None), ("cache_on", "replay")):
        builder = PromptBuilder(codec, context_tokens=2048, fim_order="spm", draft_positions=2048, reserve=64)
        window = WindowState()
        engine.slots.clear()
        rows = []
        for doc, at in events:
            p = builder.build(CursorContext(doc[:at], doc[at:]), window)
            request = GenerationRequest(target_ids=p.target_ids, draft_ids=p.draft_ids, context_ids=p.context_ids,
                                        max_new_tokens=48, cache_key=key, healing=p.healing)
            ms, result = timed(lambda request=request: engine.generate(request), 1)
            rows.append({**result.stats.as_dict(), "latency_ms": ms})
        out[name] = summarize(rows)
    out["warm_over_cold_p50"] = round(out["cache_on"]["latency_ms_p50"] / out["cache_off"]["latency_ms_p50"], 3)
    return out
