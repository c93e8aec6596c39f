"""Prefix reuse across keystrokes: warm output equals cold output, and only new tokens are fed.

Every test runs in both modes of the slot store: a slot per document, and one working slot that
documents are copied in and out of (as under graphs on a GPU, here on the CPU).
"""

from __future__ import annotations

from functools import partial

import pytest

from lsp_server.config import Settings
from lsp_server.engine import speculative
from lsp_server.prompt import CursorContext
from lsp_server.service import CompletionService
from tests.fixtures import common_prefix, corpus_text

TEXT = corpus_text()[:6000]


def service(pair, **kw) -> CompletionService:
    s = CompletionService(Settings(target=str(pair[0]), draft=str(pair[1]), device="cpu", dtype="float32",
                                   max_tokens=12, context_tokens=512, time_budget_ms=60_000, **kw))
    s.load()
    return s


@pytest.fixture(autouse=True, params=["own slots", "working slot"])
def store_mode(request, monkeypatch):
    if request.param == "working slot":  # the services below build their engine with a working slot
        monkeypatch.setattr(speculative, "Engine", partial(speculative.Engine, working_slot=True))
    return request.param


# Fresh services per test: the prompt window of a document depends on its history (that is what
# keeps it stable while typing), so warm and cold must see the same sequence of requests.
@pytest.fixture
def warm(pair):
    return service(pair)


@pytest.fixture
def cold(pair):
    return service(pair, prefix_cache=False)


def edits():
    """(document key, text, cursor) after insert, delete, paste, cursor jump, undo and a document switch."""
    at = TEXT.index("def ", 3000)
    doc = TEXT
    steps = [("a", doc, at)]
    for ch in "x = 1":  # typing
        doc = doc[:at] + ch + doc[at:]
        at += 1
        steps.append(("a", doc, at))
    doc, at = doc[:at - 2] + doc[at:], at - 2  # delete two characters
    steps.append(("a", doc, at))
    paste = "value = compute(a, b)\n    "
    doc, at = doc[:at] + paste + doc[at:], at + len(paste)  # paste
    steps.append(("a", doc, at))
    steps.append(("a", doc, 1500))  # cursor jump
    steps.append(("b", TEXT[2000:], 900))  # another document
    doc, at = doc[:at - len(paste)] + doc[at:], at - len(paste)  # undo the paste
    steps.append(("a", doc, at))
    steps.append(("b", TEXT[2000:], 905))  # back to the other document
    return steps


def ctx(text, at):
    return CursorContext(text[:at], text[at:])


def test_warm_equals_cold_across_edits(warm, cold):
    reused = 0
    for key, text, at in edits():
        w = warm.compute(ctx(text, at), key)
        c = cold.compute(ctx(text, at), key)
        assert w.text == c.text, (key, at)
        assert c.stats["reused_tokens"] == 0
        reused += w.stats["reused_tokens"]
    assert reused > 0


def test_a_document_switch_keeps_each_documents_kv(warm, cold):
    a, b = TEXT, TEXT[2000:]
    first = warm.compute(ctx(a, 3000), "a")
    warm.compute(ctx(b, 900), "b")  # under a working slot, "a" is copied out here
    back = warm.compute(ctx(a[:3000] + "x" + a[3000:], 3001), "a")  # ... and back in here
    assert back.stats["reused_tokens"] > first.stats["prompt_tokens"] // 2
    assert back.text == cold.compute(ctx(a[:3000] + "x" + a[3000:], 3001), "a").text
    assert warm.compute(ctx(b, 901), "b").stats["reused_tokens"] > 0


def test_prefilled_tokens_are_what_the_edit_implies(warm):
    at = TEXT.index("def ", 3000)
    doc = TEXT
    warm.compute(ctx(doc, at), "p")
    counts = []
    for ch in "result = 42":
        doc, at = doc[:at] + ch + doc[at:], at + 1
        held = list(warm.backend.engine.slots.held("p").tokens)
        new = warm.prompt(ctx(doc, at), "p").target_ids
        stats = warm.compute(ctx(doc, at), "p").stats
        assert stats["prefill_tokens"] == len(new) - min(common_prefix(held, new), len(new) - 1)
        assert stats["reused_tokens"] + stats["prefill_tokens"] == len(new)
        counts.append(stats["prefill_tokens"])
    counts.sort()
    assert counts[len(counts) // 2] <= 3  # a keystroke costs a few tokens, not the prompt


@pytest.mark.parametrize("store_mode", ["own slots"], indirect=True)
def test_eviction_under_a_tiny_budget_changes_nothing(pair, cold):
    tiny = service(pair, cache_budget_mb=1)  # room for the KV of a few tiny-model documents
    slot_bytes = []
    for round_ in range(2):
        for doc in range(10):  # more documents than fit: the least recently used are evicted
            key, at = f"doc{doc}", 1000 + 300 * doc + round_
            assert tiny.compute(ctx(TEXT, at), key).text == cold.compute(ctx(TEXT, at), key).text
            slot_bytes.append(tiny.backend.engine.slots.slots[key].nbytes if key in tiny.backend.engine.slots.slots else 0)
    assert tiny.backend.engine.slots.evictions > 0
    assert 10 * max(slot_bytes) > 1 << 20  # the ten documents really do not fit together
    assert tiny.backend.engine.slots.nbytes <= 1 << 20


@pytest.mark.parametrize("store_mode", ["working slot"], indirect=True)
def test_documents_swapped_out_of_the_working_slot_are_evicted_under_a_tiny_budget(pair, cold):
    tiny = service(pair, cache_budget_mb=1)
    store = tiny.backend.engine.slots
    for round_ in range(2):
        for doc in range(10):
            key, at = f"doc{doc}", 1000 + 300 * doc + round_
            out = tiny.compute(ctx(TEXT, at), key)
            assert out.text == cold.compute(ctx(TEXT, at), key).text
            assert store.owner == key and store.held(key) is store.working.target  # nothing moved out yet
            if round_ == 1:  # the second time round, earlier documents' KV was evicted: prefilled again
                assert out.stats["reused_tokens"] == 0
    assert store.evictions > 0
    assert 10 * max(s.nbytes for s in store.slots.values()) > 1 << 20  # the ten copies do not fit together
    assert store.nbytes <= 1 << 20


def test_typing_through_needs_no_model_call(warm, monkeypatch):
    at = TEXT.index("return", 3000)
    first = warm.complete(ctx(TEXT, at), "t")
    if len(first.text) < 2:
        pytest.skip("the tiny model stopped at once here; nothing to type through")
    monkeypatch.setattr(warm.backend, "generate", lambda *a, **k: pytest.fail("the model was called"))
    doc = TEXT[:at] + first.text[:1] + TEXT[at:]
    again = warm.complete(ctx(doc, at + 1), "t")
    assert again.text == first.text[1:] and again.stats["typed_through"] is True


def test_typing_something_else_falls_back_to_the_model(warm):
    at = TEXT.index("return", 3000)
    first = warm.complete(ctx(TEXT, at), "u")
    other = "\x00" if not first.text.startswith("\x00") else "\x01"
    doc = TEXT[:at] + other + TEXT[at:]
    assert warm.complete(ctx(doc, at + 1), "u").stats["typed_through"] is False


def test_background_prefill_does_not_change_answers(warm, cold):
    for key, text, at in edits():
        warm.warm(ctx(text, max(at - 7, 0)), key)  # prefilled for a cursor elsewhere, then asked here
        assert warm.compute(ctx(text, at), key).text == cold.compute(ctx(text, at), key).text


def test_prefetch_answers_the_request_after_accepting(warm, monkeypatch):
    at = TEXT.index("return", 3500)
    c = ctx(TEXT, at)
    first = warm.complete(c, "f")
    warm.prefetch(c, "f", first.text)
    monkeypatch.setattr(warm.backend, "generate", lambda *a, **k: pytest.fail("the model was called"))
    accepted = TEXT[:at] + first.text + TEXT[at:]
    nxt = warm.complete(ctx(accepted, at + len(first.text)), "f")
    assert nxt.stats["typed_through"] is True or nxt.text == ""
