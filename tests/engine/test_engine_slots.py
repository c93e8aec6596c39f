"""One record per document: its KV caches and its draft-length controller live and go together."""

from __future__ import annotations

import random

import pytest

from lsp_server.engine import prefix_cache
from lsp_server.engine.api import GenerationRequest
from lsp_server.engine.speculative import Engine
from tests.fixtures import tiny_llama

V = 96


@pytest.fixture(scope="module")
def models():
    return tiny_llama(V + 4, 64, 2, seed=0), tiny_llama(V, 32, 1, seed=1)


def request(key: str | None, seed: int = 0, n: int = 40) -> GenerationRequest:
    r = random.Random(seed)
    ids = [1] + [r.randrange(3, V) for _ in range(n)]
    return GenerationRequest(target_ids=ids, draft_ids=ids, context_ids=ids, max_new_tokens=6, cache_key=key)


def controller(engine: Engine, key: str | None):
    store = engine.slots
    if store.working is not None and key is not None and store.owner == key:
        return store.working.gamma
    slot = store.slots.get(key)
    return slot.gamma if slot is not None else None


@pytest.fixture(params=["own slots", "working slot"])
def engine(request, models):
    return Engine(*models, max_gamma=3, working_slot=request.param == "working slot", graph_capacity=256)


def test_each_document_keeps_its_own_controller(engine):
    engine.generate(request("a"))
    a = controller(engine, "a")
    engine.generate(request("b", seed=1))
    b = controller(engine, "b")
    assert a is not None and b is not None and a is not b  # a new document starts with a fresh one
    assert controller(engine, "a") is a  # under a working slot, "a" was copied out with its controller
    engine.generate(request("a"))
    assert controller(engine, "a") is a and a.plain_ms > 0  # it goes on learning


def test_forget_drops_the_kv_and_the_controller_together(engine):
    engine.generate(request("a"))
    old = controller(engine, "a")
    assert engine.cached_tokens("a", request("a").target_ids) > 0
    engine.forget("a")
    assert controller(engine, "a") is None and engine.cached_tokens("a", request("a").target_ids) == 0
    engine.generate(request("a"))
    assert controller(engine, "a") is not old


def test_shrink_drops_every_record(engine):
    for key in "abc":
        engine.generate(request(key))
    engine.shrink()
    assert all(controller(engine, key) is None for key in "abc") and engine.slots.nbytes == 0


def test_with_prefix_caching_off_the_controller_outlives_the_kv(models):
    engine = Engine(*models, max_gamma=3, prefix_cache=False)
    engine.generate(request("a"))
    ctl = controller(engine, "a")
    assert ctl is not None and engine.slots.slots["a"].nbytes == 0
    again = engine.generate(request("a"))
    assert again.stats.reused_tokens == 0 and controller(engine, "a") is ctl


def test_requests_without_a_key_share_a_controller_but_no_kv(engine):
    engine.generate(request(None))
    ctl = controller(engine, None)
    again = engine.generate(request(None))
    assert ctl is not None and controller(engine, None) is ctl
    assert again.stats.reused_tokens == 0 and engine.cached_tokens(None, request(None).target_ids) == 0


def test_the_store_keeps_a_bounded_number_of_documents(engine, monkeypatch):
    monkeypatch.setattr(prefix_cache, "MAX_DOCUMENTS", 3)
    for i in range(6):
        engine.generate(request(f"doc{i}", seed=i))
    kept = [f"doc{i}" for i in range(6) if controller(engine, f"doc{i}") is not None]
    assert len(engine.slots.slots) == 3
    if engine.slots.working is None:  # the least recently used went first
        assert kept == ["doc3", "doc4", "doc5"] and engine.slots.evictions == 3
    else:  # the last document is in the working slot, the store holds the three before it
        assert kept == ["doc2", "doc3", "doc4", "doc5"] and engine.slots.evictions == 2
