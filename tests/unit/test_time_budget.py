"""The time budget covers the whole request: its deadline reaches the prompt's prefill, the prompt
shrinks to what the device can prefill in time, and a completion cut by time ends cleanly."""

from __future__ import annotations

import random
import time

import pytest

from lsp_server.config import Settings
from lsp_server.engine.api import GenerationRequest
from lsp_server.engine.reference import reference_generate
from lsp_server.engine.speculative import Engine
from lsp_server.prompt import CursorContext, PromptBuilder
from lsp_server.service import CompletionService
from tests.fixtures import common_prefix, corpus_text, tiny_llama

V = 96


# -- the deadline reaches prefill -------------------------------------------------------------------

@pytest.fixture(scope="module")
def target():
    return tiny_llama(V + 4, 64, 2, seed=0, max_positions=2048)


def long_request(**kw) -> GenerationRequest:
    r = random.Random(5)
    ids = [1] + [r.randrange(3, V) for _ in range(1500)]  # several prefill chunks, whatever their size
    return GenerationRequest(target_ids=ids, max_new_tokens=8, stop_ids=frozenset({2}), cache_key="doc", **kw)


def test_a_deadline_passing_during_prefill_stops_it_between_chunks_and_keeps_the_kv(target, monkeypatch):
    engine = Engine(target, None)
    late = long_request(deadline=time.monotonic() + 3600)
    extend, chunks = engine.target.extend, []

    def extend_then_pass_the_deadline(cache, ids):
        chunks.append(len(ids))
        late.deadline = 0.0  # the deadline passes while the first chunk is computed
        return extend(cache, ids)

    monkeypatch.setattr(engine.target, "extend", extend_then_pass_the_deadline)
    out = engine.generate(late)
    monkeypatch.undo()
    assert out.tokens == [] and out.stats.finish_reason == "time"  # no suggestion from a cut prompt
    assert len(chunks) == 1 and out.stats.prefill_tokens == chunks[0] < len(late.target_ids) - 1
    again = engine.generate(long_request())  # the next request continues from the kept KV
    assert again.stats.reused_tokens == chunks[0]
    assert again.tokens == reference_generate(target, long_request()).tokens


def test_a_request_already_past_its_deadline_prefills_nothing(target):
    engine = Engine(target, None)
    out = engine.generate(long_request(deadline=time.monotonic() - 1))
    assert out.tokens == [] and out.stats.finish_reason == "time" and out.stats.prefill_tokens == 0


# -- the deadline starts when the request arrives ----------------------------------------------------

TEXT = corpus_text()


def service(pair, **kw) -> CompletionService:
    s = CompletionService(Settings(target=str(pair[0]), draft=str(pair[1]), device="cpu", dtype="float32",
                                   max_tokens=12, context_tokens=512, **kw))
    s.load()
    return s


def ctx(text, at):
    return CursorContext(text[:at], text[at:])


def test_time_spent_waiting_counts_against_the_budget(pair):
    s = service(pair, time_budget_ms=2000)
    at = TEXT.index("def ", 5000)
    waited = s.complete(ctx(TEXT, at), "w", arrived=time.monotonic() - 2.5)  # queued past its budget
    assert waited.text == "" and waited.stats["finish_reason"] == "time" and waited.stats["prefill_tokens"] == 0


# -- the prompt fits the measured prefill speed --------------------------------------------------------

def test_prefill_rate_learns_from_large_prefills_only():
    from lsp_server.timing import PrefillRate

    rate = PrefillRate()
    assert rate.tokens_within(1000) is None  # nothing measured yet: no bound
    rate.observe(400, 1000)
    assert rate.tokens_within(1000) == 400
    rate.observe(3, 500)  # a keystroke's few tokens are mostly fixed cost: not a speed sample
    assert rate.tokens_within(1000) == 400
    for _ in range(20):
        rate.observe(800, 1000)  # the device got faster (or warmed up)
    assert 700 < rate.tokens_within(1000) <= 800
    rate.observe(200, 1000)  # the machine got busy: one slow prefill halves the speed at once
    assert rate.tokens_within(1000) <= 400
    assert rate.tokens_within(-5) == 0


@pytest.fixture(scope="module")
def codec(loaded):
    return loaded.codec


@pytest.mark.parametrize("order", ["spm", "psm"])
@pytest.mark.parametrize("cached", [0, 3, 40, 150, 300])
@pytest.mark.parametrize("allowed", [40, 120, 1000])
def test_a_fitted_prompt_feeds_at_most_the_allowed_tokens(codec, order, cached, allowed):
    at = TEXT.index("def ", 9000)
    builder = PromptBuilder(codec, context_tokens=512, fim_order=order, draft_positions=300, reserve=40)
    full = builder.build(ctx(TEXT, at))
    held = full.target_ids[:cached]  # what the document's KV cache holds
    fitted = builder.fit(full, cached, allowed)
    fed = len(fitted.target_ids) - common_prefix(held, fitted.target_ids)
    if len(full.target_ids) - cached <= allowed:
        assert fitted.target_ids == full.target_ids
    else:
        assert fed <= allowed
        tail = full.prefix_ids[-min(20, allowed // 4):]
        ids = fitted.target_ids
        if order == "spm":  # it still ends at the cursor, and keeps what the cache holds
            assert ids[-len(tail):] == tail and ids[:cached] == full.target_ids[:cached]
        else:
            assert ids[-1] == codec.fim.middle and any(ids[i:i + len(tail)] == tail for i in range(len(ids)))
        draft = fitted.draft_ids  # the draft model's own prefill is cut to the same text at the cursor
        assert draft[0] == codec.bos and len(draft) - 1 <= allowed // 2 and draft[-len(tail):] == tail
        header = 3 if order == "spm" else 2  # [BOS, <PRE>, <SUF>] or [BOS, <PRE>]
        assert ids.count(codec.fim.middle) == 1 and ids[:header] == full.target_ids[:header]


class FixedRate:
    """A device that prefills `per_s` tokens a second, whatever it is asked."""

    def __init__(self, per_s: float):
        self.per_s = per_s

    def observe(self, tokens: int, ms: float) -> None:
        pass

    def tokens_within(self, ms: float) -> int:
        return int(self.per_s * max(ms, 0) / 1e3)


def test_a_slow_device_gets_a_prompt_it_can_prefill_and_fills_the_window_over_the_next_keystrokes(pair):
    s = service(pair, time_budget_ms=2000, prefix_cache=True)
    s.prefill_rate = FixedRate(150)  # about 150 new prompt tokens fit in the prefill share of the budget
    at = TEXT.index("def ", 9000)
    doc, fed, deferred = TEXT, [], []
    for ch in "result = compute(alpha, beta) + offset":
        stats = s.compute(ctx(doc, at), "slow").stats
        fed.append(stats["prefill_tokens"])
        deferred.append(stats["deferred_tokens"])
        doc, at = doc[:at] + ch + doc[at:], at + 1
    full = len(s.prompt(ctx(doc, at), "slow").target_ids)
    assert full > 2 * 150 and deferred[0] > 0  # the cold prompt was too big for the device
    assert max(fed) <= 150
    assert deferred[-10:] == [0] * 10  # the full window is back: the shrink was temporary...
    assert sorted(fed[-10:])[5] <= 3  # ...and typing costs a few tokens again (its start did not move)
