"""Replay a typing session: a held-out file typed character by character, asking as an editor would.

The typist types a stretch of a real file back in; an editor debounces keystrokes and asks for a
completion once typing pauses for 150 ms, which happens after words, punctuation and line ends.
Each request is timed and its reused / prefilled tokens recorded, with the prefix cache off and on.
On the CPU the whole pipeline runs (service: prompt, engine, post-processing, typing-through) with
the embedded demo pair; on a GPU the real shapes run through the engine (see gpu.py).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from ..lsp.records import cache_hit
from ..prompt import CursorContext
from .heldout import heldout_file

PAUSE_AFTER = set(" \n.,:;()[]{}=")  # a 150 ms pause follows these: the editor's debounce fires


def typing_events(text: str, start: int, length: int):
    """(document, cursor) each time the debounce fires while `text[start:start+length]` is typed."""
    region = text[start:start + length]
    rest = text[:start] + text[start + length:]
    for i, ch in enumerate(region, 1):
        if ch in PAUSE_AFTER or i == len(region):
            doc = rest[:start] + region[:i] + rest[start:]
            yield doc, start + i


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else 0.0


def summarize(rows: list[dict]) -> dict:
    model = [r for r in rows if not r.get("typed_through")]
    through = [r for r in rows if r.get("typed_through")]
    lat = [r["latency_ms"] for r in rows]
    return {
        "requests": len(rows),
        "latency_ms_p50": round(percentile(lat, 0.5), 2), "latency_ms_p95": round(percentile(lat, 0.95), 2),
        "model_latency_ms_p50": round(percentile([r["latency_ms"] for r in model], 0.5), 2),
        "prefill_tokens_median": statistics.median([r["prefill_tokens"] for r in model]) if model else 0,
        "prefill_tokens_mean": round(statistics.mean([r["prefill_tokens"] for r in model]), 1) if model else 0,
        "prompt_tokens_mean": round(statistics.mean([r["prompt_tokens"] for r in model]), 1) if model else 0,
        "hit_rate": round(sum(cache_hit(r) for r in rows) / max(len(rows), 1), 3),
        "typed_through": len(through),
        "typed_through_latency_ms_p50": round(percentile([r["latency_ms"] for r in through], 0.5), 3),
    }


def replay_service(service, text: str, start: int, length: int, key: str = "replay") -> list[dict]:
    rows = []
    for doc, at in typing_events(text, start, length):
        t = time.perf_counter()
        completion = service.complete(CursorContext(doc[:at], doc[at:]), key)
        rows.append({**completion.stats, "latency_ms": (time.perf_counter() - t) * 1e3})
    return rows


def replay_suite(args) -> dict:
    """CPU: the demo pair (or the models given) through the whole service, cache off and on."""
    from ..config import settings_from_args
    from ..service import CompletionService

    path = Path(args.file) if getattr(args, "file", None) else heldout_file()
    text = path.read_text(encoding="utf-8")
    start, length = len(text) // 2, 300 if args.quick else 900
    start = text.index("\n", start) + 1
    out = {"file": str(path), "typed_chars": length, "debounce_ms": 150}
    for name, cache in (("cache_off", False), ("cache_on", True)):
        service = CompletionService(settings_from_args(args).replace(prefix_cache=cache))
        service.load()
        if not cache:
            service.complete = service.compute  # no typing-through either: every request runs the model
        rows = replay_service(service, text, start, length)
        out[name] = summarize(rows)
        out["models"] = service.backend.info
    off, on = out["cache_off"], out["cache_on"]
    out["warm_over_cold_p50"] = round(on["latency_ms_p50"] / max(off["latency_ms_p50"], 1e-9), 3)
    return out
