"""Waiting benchmark: how long a request waits for the model worker while it does other work.

- prefill chunks: the demo target's prefill of a 2048-token prompt in chunks of 16..512 tokens:
  ms per chunk (the longest a request waits behind it) against tokens per second;
- waits: the server (in-process, demo pair) prefills a long document in the background; at a
  random moment a request for another document arrives (how long until it starts), or the user
  types through a shown suggestion (how long until it is answered).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time

from ..config import Settings
from ..engine.models import demo_paths, load_models
from ..prompt import CursorContext
from .heldout import heldout_file

DOC, OTHER = "file:///bench/long.py", "file:///bench/other.py"
SHOWN = CursorContext("def area(r):\n    return ", "\n")
CHUNKS = (16, 32, 64, 128, 256, 512)


def chunk_costs(reps: int) -> list[dict]:
    """Best of `reps` runs per chunk size, the sizes interleaved so that other load on the machine
    spreads over all of them."""
    from ..engine.runner import ModelRunner

    t, d = demo_paths()
    runner = ModelRunner(load_models(Settings(target=str(t), draft=str(d), device="cpu", dtype="float32")).target)
    ids = [5 + i % 4000 for i in range(2048)]
    best: dict[int, tuple[float, float]] = {}
    for _ in range(reps):
        for chunk in CHUNKS:
            cache, times = runner.new_cache(len(ids)), []
            for start in range(0, len(ids), chunk):
                t0 = time.perf_counter()
                runner.extend(cache, ids[start:start + chunk])
                times.append((time.perf_counter() - t0) * 1e3)
            if chunk not in best or sum(times) < best[chunk][0]:
                best[chunk] = (sum(times), statistics.median(times))
    return [{"chunk": c, "median_chunk_ms": round(best[c][1], 1), "tokens_per_s": round(len(ids) / best[c][0] * 1e3)}
            for c in CHUNKS]


async def waits(trials: int) -> dict:
    from ..engine import speculative
    from ..lsp.server import SpeclspServer

    server = SpeclspServer(Settings(time_budget_ms=60_000))
    server.service.load()
    long = CursorContext(heldout_file(12000).read_text(encoding="utf-8") * 2, "\n")
    foreground, typed = [], []
    for _ in range(trials):
        foreground.append(await _foreground_wait(server, long))
        typed.append(await _typed_through(server, long))
    server.scheduler.close()
    return {"trials": trials, "chunk_chosen": speculative.prefill_chunk(server.service.backend.engine.target),
            "foreground_wait_ms": _summary(foreground), "typed_through_ms": _summary(typed)}


async def _busy(server, long: CursorContext) -> None:
    server.service.forget(DOC)
    server.background(DOC, lambda cancel: server.service.warm(long, DOC, cancel))
    await asyncio.sleep(random.uniform(0.02, 0.4))


async def _foreground_wait(server, long: CursorContext) -> float:
    await _busy(server, long)
    t0, started = time.perf_counter(), []
    job = server.scheduler.submit(OTHER, lambda cancel: started.append(time.perf_counter()))
    await asyncio.wrap_future(job.future)
    await asyncio.sleep(0.3)
    return (started[0] - t0) * 1e3


async def _typed_through(server, long: CursorContext) -> float:
    server.service.documents.remember(OTHER, SHOWN, "3.14 * r ** 2")
    await _busy(server, long)
    t0 = time.perf_counter()
    completion, _ = await server.complete(OTHER, CursorContext(SHOWN.prefix + "3.1", SHOWN.suffix), "automatic")
    ms = (time.perf_counter() - t0) * 1e3
    assert completion is not None and completion.text == "4 * r ** 2", completion
    await asyncio.sleep(0.3)
    return ms


def _summary(ms: list[float]) -> dict:
    cuts = statistics.quantiles(ms, n=20)
    return {"p50": round(statistics.median(ms), 2), "p95": round(cuts[18], 2), "max": round(max(ms), 2)}


def wait_suite(args) -> dict:
    return {"prefill_chunks": chunk_costs(2 if args.quick else 6), "waits": asyncio.run(waits(8 if args.quick else 30))}
