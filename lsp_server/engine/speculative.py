"""The decode loop: prefill what the cache lacks, then draft → verify → accept rounds.

One loop serves every mode. With no proposal a round is a plain decoding step; with a
proposal of k tokens the target scores [pending, d_1..d_k] in one forward and keeps what the
acceptance rule (sampling.py) accepts. Rolling back the rejected tail is moving the cache
position. The same stop rules as the reference path run after every emitted token, and the same
token-healing mask (api.Healing) applies to every choice: the first token, each verified row and
each drafted token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .api import Cancelled, ForwardHook, GenerationRequest, GenerationResult, Stats
from .drafters import CopyDrafter, ModelDrafter, Proposal
from .gamma import GammaController
from .graphs import GraphRunner, can_graph
from .kv_cache import KVCache
from .prefix_cache import Slot, SlotStore
from .runner import ModelRunner
from .sampling import constrain, greedy_accept, pick, sample_accept
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


@dataclass
class Decoding:
    """One request's state through its rounds."""

    request: GenerationRequest
    slot: Slot  # the document's caches and draft-length controller
    stats: Stats
    generator: torch.Generator
    copier: CopyDrafter | None  # prompt lookup, when copying is on
    readable: bool  # whether the draft model can read every token so far (see _start)
    limit: int  # tokens to generate at most: max_new_tokens, or fewer where positions run out
    pending: int = 0  # emitted, not yet in the target cache
    generated: list[int] = field(default_factory=list)


class Engine:
    """Target (+ optional draft) resident on one device, with per-document slots (prefix_cache.py)."""

    def __init__(self, target_model: torch.nn.Module, draft_model: torch.nn.Module | None = None, *,
                 max_gamma: int = 6, cache_budget_bytes: int = 2 << 30, prefix_cache: bool = True,
                 copy_drafter: bool = True, adaptive_gamma: bool = True, graphs: bool = False,
                 graph_capacity: int = 4096, working_slot: bool = False, before_forward: ForwardHook | None = None):
        """`graphs`: capture the decode-time forwards where the device can (CUDA/ROCm); they run in one
        working slot of `graph_capacity` positions. `working_slot`: that slot even without graphs,
        so a CPU runs (and tests) the slot store's mode that graphs use."""
        self.target = ModelRunner(target_model, before_forward)
        self.drafter = (ModelDrafter(ModelRunner(draft_model, before_forward), self.target.vocab_size)
                        if draft_model else None)
        self.capture_s = 0.0  # start-up time spent capturing graphs
        working = None
        if graphs and can_graph(self.target.device):
            working = self._capture(graph_capacity, max_gamma)
        elif working_slot:
            working = self._working_slot(graph_capacity)
        self.slots = SlotStore(self.target, self.drafter.runner if self.drafter else None,
                               cache_budget_bytes, prefix_cache, working)
        self.max_gamma = max_gamma
        self.copy_drafter = copy_drafter
        self.adaptive_gamma = adaptive_gamma

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

    def _working_slot(self, capacity: int) -> Slot:
        draft = self.drafter.runner.new_cache(capacity) if self.drafter is not None else None
        return Slot(self.target.new_cache(capacity), draft)

    # -- public verbs -------------------------------------------------------------------------

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Compute one completion. Raises Cancelled when the request's flag is set."""
        t0 = time.perf_counter()
        stats = Stats(prompt_tokens=len(request.target_ids))
        room = self.target.max_positions - len(request.target_ids) - self.max_gamma - 1
        if room <= 0:
            raise ValueError(f"prompt of {len(request.target_ids)} tokens leaves no room to generate")
        limit = min(request.max_new_tokens, room)
        slot = self._acquire(request, limit)
        try:
            generated = self._decode(request, slot, stats, limit)
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
        slot = self._acquire(request, request.max_new_tokens)
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
        return 0 if cache is None or not ids else cache.reusable(ids)

    def shrink(self) -> None:
        """Give memory back after an out-of-memory error: every document's slot goes."""
        self.slots.clear()
        if self.target.device.type == "cuda":
            torch.cuda.empty_cache()

    def forget(self, key: str) -> None:
        """Drop a document's state (didClose): its slot, with its caches and its controller."""
        self.slots.drop(key)

    # -- the loop -----------------------------------------------------------------------------

    def _decode(self, request: GenerationRequest, slot: Slot, stats: Stats, limit: int) -> list[int]:
        logits = self._prefill(slot.target, request, stats)
        if logits is None:  # out of time before the prompt was read: no suggestion
            stats.finish_reason = "time"
            return []
        d = self._start(request, slot, stats, limit)
        first = pick(constrain(logits, request.allowed_after([])), request.temperature, d.generator)
        reason = self._emit(d, [first])  # the prompt's next token
        while not reason:
            request.check_cancel()
            if request.out_of_time():
                reason = "time"
                break
            proposal = self._propose(d)  # d_1..d_k, k >= 0 (k = 0: a plain decoding step)
            # Acceptance (sampling.py): keep the longest run of drafts the target agrees with (greedy:
            # equal to its argmax; sampling: each kept with probability min(1, p/q)), then one token
            # of the target's own after that run, so a round emits 1..k+1 tokens.
            accepted, nxt, verify_ms = self._verify(d, proposal)
            self._observe(d, proposal, accepted, verify_ms)
            reason = self._emit(d, proposal.tokens[:accepted] + [nxt])
        stats.finish_reason = reason
        return d.generated

    def _start(self, request: GenerationRequest, slot: Slot, stats: Stats, limit: int) -> Decoding:
        """The state before the first token, with the document's controller ready."""
        generator = torch.Generator().manual_seed(request.seed if request.seed is not None else 0)
        if slot.gamma is None:  # a new document starts with a fresh controller
            slot.gamma = GammaController(self.max_gamma, fixed=not self.adaptive_gamma)
        copier = CopyDrafter(request.context_ids) if self._copy_on(request) else None
        # the draft model reads the view and every emitted token; an id only the target has (checked
        # once here, then on every emitted token) ends its part in this request
        readable = self._draft_view(request) is not None and self.drafter.can_read(request.draft_ids)
        return Decoding(request, slot, stats, generator, copier, readable, limit)

    def _emit(self, d: Decoding, tokens: list[int]) -> str | None:
        """Emit a round's tokens; the last becomes pending. Returns why decoding ends, if it does."""
        d.readable = d.readable and self.drafter.can_read(tokens)
        if d.copier is not None:
            d.copier.extend(tokens)
        d.pending = tokens[-1]
        return emit_all(d.generated, tokens, d.request, d.limit)

    def _verify(self, d: Decoding, proposal: Proposal) -> tuple[int, int, float]:
        """One target forward over [pending, d_1..d_k] → (accepted count, next token, ms)."""
        d.request.check_cancel()  # drafting may have taken a while
        t = time.perf_counter()
        cache = d.slot.target
        base = cache.length
        logits = self.target.extend(cache, [d.pending] + proposal.tokens)  # [k+1, V]
        logits = self._healed(d, proposal.tokens, logits)
        if d.request.temperature > 0:
            accepted, nxt = sample_accept(proposal.tokens, proposal.probs, logits, d.request.temperature, d.generator)
        else:
            accepted, nxt = greedy_accept(proposal.tokens, logits)
        cache.rewind(base + 1 + accepted)  # keep pending and the accepted drafts; the rest is forgotten
        d.stats.target_forwards += 1
        ms = (time.perf_counter() - t) * 1e3
        if proposal.tokens:
            d.stats.verify_ms += ms
        else:
            d.stats.decode_ms += ms
        return accepted, nxt, ms

    def _healed(self, d: Decoding, drafts: list[int], logits: torch.Tensor) -> torch.Tensor:
        """The verify rows with token healing's mask: row j follows the emitted tokens and d_1..d_j."""
        if d.request.healing is None:
            return logits
        masked = logits
        for j in range(len(drafts) + 1):
            allowed = d.request.allowed_after(d.generated + drafts[:j])
            if allowed is None:  # the healed text is spelled on this path: the later rows are free
                break
            masked = logits.clone() if masked is logits else masked  # never write into a runner's buffer
            masked[j] = constrain(logits[j], allowed)
        return masked

    def _propose(self, d: Decoding) -> Proposal:
        """Copy from context when it can, else ask the draft model for as many tokens as pays."""
        if d.copier is not None:
            proposal = d.copier.propose(self.max_gamma)
            if proposal.tokens:
                return proposal
        draft = d.slot.draft
        if not d.readable or draft is None:
            return Proposal([])
        view = d.request.draft_ids + d.generated
        g = d.slot.gamma.choose()
        if g == 0 or len(view) + g > draft.capacity:  # past the draft's positions: plain steps
            return Proposal([])
        t = time.perf_counter()
        stats = d.stats
        if stats.rounds == 0 and stats.draft_prefill_tokens == 0:
            stats.draft_reused_tokens = draft.reusable(view)
            stats.draft_prefill_tokens = len(view) - stats.draft_reused_tokens
        proposal = self.drafter.propose(draft, view, g, d.request.temperature, d.generator, d.request.check_cancel,
                                        lambda drafted: d.request.allowed_after(d.generated + drafted))
        proposal.ms = (time.perf_counter() - t) * 1e3
        stats.draft_ms += proposal.ms
        return proposal

    def _observe(self, d: Decoding, proposal: Proposal, accepted: int, verify_ms: float) -> None:
        """Fold a round into the request's stats and the document's draft-length controller."""
        k, stats, gamma = len(proposal.tokens), d.stats, d.slot.gamma
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
        common = cache.reuse(ids)
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

    def _acquire(self, request: GenerationRequest, limit: int) -> Slot:
        extra = limit + self.max_gamma + 2
        view = self._draft_view(request)
        return self.slots.acquire(request.cache_key, len(request.target_ids) + extra,
                                  len(view) + extra if view else 0)

    def _draft_view(self, request: GenerationRequest) -> list[int] | None:
        if not (request.speculative and self.drafter is not None and request.draft_ids):
            return None
        return request.draft_ids

    def _copy_on(self, request: GenerationRequest) -> bool:
        return request.speculative and self.copy_drafter
