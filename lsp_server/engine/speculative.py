"""The decode loop: prefill what the cache lacks, then draft → verify → accept rounds.

One loop serves every mode. With no proposal a round is a plain decoding step; with a
proposal of k tokens the target scores [pending, d_1..d_k] in one forward and keeps what the
acceptance rule (sampling.py) accepts. Rolling back the rejected tail is moving the cache
position. The same stop rules as the reference path run after every emitted token.
"""

from __future__ import annotations

import time

import torch
from cachetools import LRUCache

from .api import Cancelled, ForwardHook, GenerationRequest, GenerationResult, Stats
from .drafters import CopyDrafter, ModelDrafter, Proposal
from .gamma import GammaController
from .graphs import GraphRunner, can_graph
from .kv_cache import KVCache
from .prefix_cache import Slot, SlotStore
from .runner import ModelRunner
from .sampling import greedy_accept, pick, sample_accept
from .stopping import emit_all

# Prompt tokens per forward, at most. On a GPU one forward over the whole prompt lets attention use
# its flash kernels. On a CPU a forward cannot be interrupted, and a request arriving during a
# background prefill waits for the chunk in flight, so the chunk is sized from the measured prefill
# speed to take about PREEMPT_MS. Demo pair, 2-core CPU, 2048-token prompt (`speclsp bench wait`):
# 512-token chunks take 150-170 ms each, 256 take 78-89 ms at 3-5% less throughput, 32 take 18-24 ms
# at half of it, 16 take 14-19 ms at a third: below CPU_CHUNK_MIN the wait hardly drops.
PREFILL_CHUNK = {"cpu": 512, "cuda": 8192}
PREEMPT_MS = 100
CPU_CHUNK_MIN = 32
CPU_CHUNK_FIRST = 64  # before any prefill has been measured


def prefill_chunk(runner: ModelRunner | GraphRunner) -> int:
    """Prompt tokens per prefill forward on the runner's device (see PREFILL_CHUNK)."""
    if runner.device.type != "cpu":
        return PREFILL_CHUNK.get(runner.device.type, PREFILL_CHUNK["cpu"])
    rate = runner.prefill_tokens_per_ms
    if rate is None:
        return CPU_CHUNK_FIRST
    return max(CPU_CHUNK_MIN, min(PREFILL_CHUNK["cpu"], int(rate * PREEMPT_MS) // CPU_CHUNK_MIN * CPU_CHUNK_MIN))


class Engine:
    """Target (+ optional draft) resident on one device, with per-document KV slots."""

    def __init__(self, target_model: torch.nn.Module, draft_model: torch.nn.Module | None = None, *,
                 max_gamma: int = 6, cache_budget_bytes: int = 2 << 30, prefix_cache: bool = True,
                 copy_drafter: bool = True, adaptive_gamma: bool = True, graphs: bool = False,
                 graph_capacity: int = 4096, before_forward: ForwardHook | None = None):
        self.target = ModelRunner(target_model, before_forward)
        self.drafter = (ModelDrafter(ModelRunner(draft_model, before_forward), self.target.vocab_size)
                        if draft_model else None)
        self.capture_s = 0.0  # start-up time spent capturing graphs
        working = self._capture(graph_capacity, max_gamma) if graphs and can_graph(self.target.device) else None
        self.slots = SlotStore(self.target, self.drafter.runner if self.drafter else None,
                               cache_budget_bytes, prefix_cache, working)
        self.max_gamma = max_gamma
        self.copy_drafter = copy_drafter
        self.adaptive_gamma = adaptive_gamma
        self.gammas: LRUCache = LRUCache(maxsize=256)  # document -> GammaController

    def _capture(self, capacity: int, max_gamma: int) -> Slot:
        """Swap in graph runners (target: a plain step and every verify width; draft: its step and
        its catch-up feeds) and return their working slot."""
        self.target = GraphRunner(self.target, capacity, range(1, max_gamma + 2))
        self.capture_s += self.target.capture()
        draft_work = None
        if self.drafter is not None:
            # the draft's step, plus catch-up feeds of up to a few rounds' worth of accepted tokens
            runner = GraphRunner(self.drafter.runner, min(capacity, self.drafter.runner.max_positions),
                                 range(1, 2 * max_gamma + 3))
            self.capture_s += runner.capture()
            self.drafter.runner, draft_work = runner, runner.work
        return Slot(self.target.work, draft_work)

    # -- public verbs -------------------------------------------------------------------------

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Compute one completion. Raises Cancelled when the request's flag is set."""
        t0 = time.perf_counter()
        stats = Stats(prompt_tokens=len(request.target_ids))
        room = self.target.max_positions - len(request.target_ids) - self.max_gamma - 1
        if room <= 0:
            raise ValueError(f"prompt of {len(request.target_ids)} tokens leaves no room to generate")
        request.max_new_tokens = min(request.max_new_tokens, room)
        slot = self._acquire(request)
        try:
            generated = self._decode(request, slot, stats)
        except Cancelled:
            self.slots.release(request.cache_key, slot)  # what it holds is consistent: keep it
            raise
        except BaseException:
            self.slots.drop(request.cache_key, slot)  # after a fault (e.g. out of memory) trust nothing
            raise
        self.slots.release(request.cache_key, slot)
        stats.generated_tokens = len(generated)
        stats.engine_ms = (time.perf_counter() - t0) * 1e3
        return GenerationResult(generated, stats)

    def prefill(self, request: GenerationRequest) -> Stats:
        """Warm a document's slot with its prompt before anyone asks (didOpen, idle typing)."""
        stats = Stats(prompt_tokens=len(request.target_ids))
        slot = self._acquire(request)
        try:
            self._prefill(slot.target, request, stats)
            if self._draft_view(request) and slot.draft is not None:
                request.check_cancel()
                self.drafter.sync(slot.draft, request.draft_ids)
        finally:
            self.slots.release(request.cache_key, slot)
        return stats

    def cached_tokens(self, key: str | None, ids: list[int]) -> int:
        """How many leading ids of a prompt the document's cache holds: what a request would not
        have to prefill."""
        cache = self.slots.held(key)
        return 0 if cache is None or not ids else min(cache.common_prefix(ids), len(ids) - 1)

    def shrink(self) -> None:
        """Give memory back after an out-of-memory error: every cached slot goes."""
        self.slots.clear()
        if self.target.device.type == "cuda":
            torch.cuda.empty_cache()

    def forget(self, key: str) -> None:
        """Drop a document's cached state (didClose)."""
        self.slots.drop(key)
        self.gammas.pop(key, None)

    # -- the loop -----------------------------------------------------------------------------

    def _decode(self, request: GenerationRequest, slot: Slot, stats: Stats) -> list[int]:
        generator = torch.Generator().manual_seed(request.seed if request.seed is not None else 0)
        logits = self._prefill(slot.target, request, stats)
        if logits is None:  # out of time before the prompt was read: no suggestion
            stats.finish_reason = "time"
            return []
        pending = pick(logits, request.temperature, generator)  # emitted, not yet in the target cache
        generated: list[int] = []
        reason = emit_all(generated, [pending], request)
        copier = CopyDrafter(request.context_ids + generated) if self._copy_on(request) else None
        gamma = self._gamma(request)
        # the draft model reads the view and every emitted token; an id only the target has (checked
        # once here, then per round on what was emitted) ends its part in this request
        readable = self._draft_view(request) is not None and self.drafter.can_read(request.draft_ids + generated)
        while not reason:
            request.check_cancel()
            if request.out_of_time():
                reason = "time"
                break
            proposal = self._propose(request, slot, generated, gamma, copier, stats, generator, readable)
            accepted, nxt, verify_ms = self._verify(request, slot.target, pending, proposal, generator, stats)
            self._observe(gamma, proposal, accepted, verify_ms, stats)
            emitted = proposal.tokens[:accepted] + [nxt]
            readable = readable and self.drafter.can_read(emitted)
            reason = emit_all(generated, emitted, request)
            if copier is not None:
                copier.extend(emitted)
            pending = nxt
        stats.finish_reason = reason
        return generated

    def _verify(self, request: GenerationRequest, cache: KVCache, pending: int, proposal: Proposal,
                generator: torch.Generator, stats: Stats) -> tuple[int, int, float]:
        """One target forward over [pending, d_1..d_k] → (accepted count, next token, ms)."""
        request.check_cancel()  # drafting may have taken a while
        t = time.perf_counter()
        base = cache.length
        logits = self.target.extend(cache, [pending] + proposal.tokens)  # [k+1, V]
        if request.temperature > 0:
            accepted, nxt = sample_accept(proposal.tokens, proposal.probs, logits, request.temperature, generator)
        else:
            accepted, nxt = greedy_accept(proposal.tokens, logits)
        cache.rewind(base + 1 + accepted)  # keep pending and the accepted drafts; the rest is forgotten
        stats.target_forwards += 1
        ms = (time.perf_counter() - t) * 1e3
        if proposal.tokens:
            stats.verify_ms += ms
        else:
            stats.decode_ms += ms
        return accepted, nxt, ms

    def _propose(self, request: GenerationRequest, slot: Slot, generated: list[int], gamma: GammaController,
                 copier: CopyDrafter | None, stats: Stats, generator: torch.Generator, readable: bool) -> Proposal:
        """Copy from context when it can, else ask the draft model for as many tokens as pays."""
        if copier is not None:
            proposal = copier.propose(self.max_gamma)
            if proposal.tokens:
                return proposal
        if not readable or slot.draft is None:
            return Proposal([])
        view = request.draft_ids + generated
        g = gamma.choose()
        if g == 0 or len(view) + g > slot.draft.capacity:  # past the draft's positions: plain steps
            return Proposal([])
        t = time.perf_counter()
        if stats.rounds == 0 and stats.draft_prefill_tokens == 0:
            stats.draft_reused_tokens = min(slot.draft.common_prefix(view), len(view) - 1)
            stats.draft_prefill_tokens = len(view) - stats.draft_reused_tokens
        proposal = self.drafter.propose(slot.draft, view, g, request.temperature, generator, request.check_cancel)
        proposal.ms = (time.perf_counter() - t) * 1e3
        stats.draft_ms += proposal.ms
        return proposal

    def _observe(self, gamma: GammaController, proposal: Proposal, accepted: int, verify_ms: float,
                 stats: Stats) -> None:
        k = len(proposal.tokens)
        if k == 0:
            gamma.observe_plain(verify_ms)
            return
        stats.rounds += 1
        stats.drafted_tokens += k
        stats.accepted_tokens += accepted
        if proposal.source == "copy":
            stats.copy_drafted_tokens += k
            stats.copy_accepted_tokens += accepted
        else:
            # the per-token draft cost leaves out the catch-up feed, which plain steps caused
            gamma.observe_round(k, accepted, proposal.ms - proposal.sync_ms, verify_ms)

    # -- helpers ------------------------------------------------------------------------------

    def _prefill(self, cache: KVCache, request: GenerationRequest, stats: Stats) -> torch.Tensor | None:
        """Feed the prompt tokens the cache does not hold yet; returns the last position's logits, or
        None when the request's deadline passed first (checked between chunks)."""
        t = time.perf_counter()
        ids = request.target_ids
        common = min(cache.common_prefix(ids), len(ids) - 1)  # the last token is fed for its logits
        cache.rewind(common)
        stats.reused_tokens, stats.prefill_tokens = common, len(ids) - common
        logits = None
        chunk = prefill_chunk(self.target)
        for start in range(common, len(ids), chunk):
            request.check_cancel()
            if request.out_of_time():  # the cache keeps the chunks already fed: the next request goes on
                stats.prefill_tokens, logits = start - common, None
                break
            logits = self.target.extend(cache, ids[start:start + chunk])
            stats.target_forwards += 1
        stats.prefill_ms = (time.perf_counter() - t) * 1e3
        return None if logits is None else logits[-1]

    def _acquire(self, request: GenerationRequest) -> Slot:
        extra = request.max_new_tokens + self.max_gamma + 2
        view = self._draft_view(request)
        return self.slots.acquire(request.cache_key, len(request.target_ids) + extra,
                                  len(view) + extra if view else 0)

    def _draft_view(self, request: GenerationRequest) -> list[int] | None:
        if not (request.speculative and self.drafter is not None and request.draft_ids):
            return None
        return request.draft_ids

    def _copy_on(self, request: GenerationRequest) -> bool:
        return request.speculative and self.copy_drafter

    def _gamma(self, request: GenerationRequest) -> GammaController:
        key = request.cache_key or ""
        ctl = self.gammas.get(key)
        if ctl is None or ctl.max_gamma != self.max_gamma:
            ctl = GammaController(self.max_gamma, fixed=not self.adaptive_gamma)
            self.gammas[key] = ctl
        return ctl
