"""CUDA/HIP graphs for the decode-time forwards: the plain step, each verify width, the draft step.

Eager, a 7B decode step is launch-bound far above its memory-bandwidth floor, and a 135M draft
step costs nearly as much as the target's. A captured graph replays all of a step's kernels in
one launch. Graphs bind tensor addresses, so they run on one static "working" cache per model
(the slot store swaps a document's KV in and out of it, copying only valid rows when the
document changes) and attend over a fixed span: the cache length rounded up to a bucket, with
a mask hiding the rows past each token's own position. One graph per (tokens, bucket) pair is
captured at start-up; any other shape (prefill, long catch-up feeds) runs eagerly.
Only `torch.cuda` graph APIs are used, which ROCm provides as HIP graphs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import torch

from .kv_cache import KVCache
from .runner import ModelRunner

BUCKET = 512  # attention span granularity: the cost of attending to unused rows stays below ~10%


class GraphRunner:
    """A ModelRunner whose `extend` replays captured graphs on its working cache when it can."""

    def __init__(self, runner: ModelRunner, capacity: int, widths: Iterable[int], bucket: int = BUCKET):
        self.runner = runner
        self.bucket = bucket
        self.work = runner.new_cache(capacity)
        self.widths = sorted(set(widths))
        self.graphs: dict[tuple[int, int], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self.pool = torch.cuda.graph_pool_handle()
        self.capture_s = 0.0
        self.replays = 0

    def __getattr__(self, name):  # everything else is the plain runner's
        return getattr(self.runner, name)

    @torch.inference_mode()
    def capture(self) -> float:
        """Capture every (width, span) graph; returns seconds spent. Done once, at start-up."""
        t0 = time.perf_counter()
        spans = range(self.bucket, self.work.capacity + 1, self.bucket)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        for width in self.widths:
            for span in spans:
                if span >= width:
                    self.graphs[(width, span)] = self._capture_one(width, span, stream)
        torch.cuda.current_stream().wait_stream(stream)
        torch.cuda.synchronize()
        self.work.reset()  # capture wrote scratch rows; nothing is held
        self.capture_s = time.perf_counter() - t0
        return self.capture_s

    def _capture_one(self, width: int, span: int, stream: torch.cuda.Stream):
        ids = torch.zeros((1, width), dtype=torch.long, device=self.runner.device)
        positions = torch.arange(width, device=self.runner.device)
        with torch.cuda.stream(stream):
            for _ in range(2):  # warm-up: lazy initialisation must not happen during capture
                self.runner._forward(self.work, ids, positions, span, masked=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool, stream=stream):
            logits = self.runner._forward(self.work, ids, positions, span, masked=True)
        return graph, ids, positions, logits

    @torch.inference_mode()
    def extend(self, cache: KVCache, ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
        tokens = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        start, width = cache.length, len(tokens)
        span = -(-(start + width) // self.bucket) * self.bucket
        entry = self.graphs.get((width, span)) if cache is self.work else None
        if entry is None:
            return self.runner.extend(cache, ids)
        graph, static_ids, static_pos, logits = entry
        static_ids.copy_(torch.as_tensor(tokens).view(1, -1), non_blocking=True)
        static_pos.copy_(torch.arange(start, start + width), non_blocking=True)
        graph.replay()
        self.replays += 1
        cache.append(tokens)
        return logits  # valid until the next replay of any graph in this pool


def can_graph(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_available()
