"""Request records (lsp_server/records.py): what each kind of request sends, and the cache figures."""

import pytest

from lsp_server.lsp.records import RequestRecord, cache_hit, stats_result

MODEL = {"prompt_tokens": 40, "reused_tokens": 0, "generated_tokens": 5, "drafted_tokens": 4,
         "accepted_tokens": 3, "typed_through": False, "deferred_tokens": 0}
WARM = {**MODEL, "reused_tokens": 32}
TYPED = {"prompt_tokens": 0, "reused_tokens": 0, "generated_tokens": 0, "drafted_tokens": 0,
         "accepted_tokens": 0, "typed_through": True}


def record(**fields) -> RequestRecord:
    return RequestRecord(**{"id": 1, "uri": "file:///a.py", "trigger": "automatic", **fields})


@pytest.mark.parametrize("fields,json", [
    # superseded while queued: no queue wait, no figures
    ({"cancelled": True, "latency_ms": 2.5},
     {"id": 1, "uri": "file:///a.py", "trigger": "automatic", "cancelled": True, "latency_ms": 2.5}),
    # a fault in the worker
    ({"queue_ms": 0.5, "error": "RuntimeError: boom", "latency_ms": 9.0},
     {"id": 1, "uri": "file:///a.py", "trigger": "automatic", "cancelled": False, "queue_ms": 0.5,
      "error": "RuntimeError: boom", "latency_ms": 9.0}),
    # answered by the model, then taken by the user: the service's figures between the server's
    ({"queue_ms": 0.5, "latency_ms": 30.0, "measured": MODEL, "text_chars": 12, "accepted": True},
     {"id": 1, "uri": "file:///a.py", "trigger": "automatic", "cancelled": False, "queue_ms": 0.5,
      "latency_ms": 30.0, **MODEL, "text_chars": 12, "accepted": True}),
])
def test_a_record_sends_what_was_measured_and_leaves_out_the_rest(fields, json):
    sent = record(**fields).to_json()
    assert sent == json
    assert list(sent) == list(json)  # the order the log and the editors have always seen


def test_the_status_line_carries_a_brief():
    full = record(latency_ms=30.0, measured=MODEL)
    assert full.brief() == {"latency_ms": 30.0, "accepted_tokens": 3, "drafted_tokens": 4, "generated_tokens": 5,
                            "cancelled": False}
    assert record(cancelled=True, latency_ms=1.0).brief() == {"latency_ms": 1.0, "cancelled": True}


@pytest.mark.parametrize("measured,hit", [(MODEL, False), (WARM, True), (TYPED, True), ({}, False)])
def test_a_cache_hit_is_a_reused_prefix_or_typing_through(measured, hit):
    assert cache_hit(measured) is hit


def test_cache_figures_count_answered_requests_only():
    records = [record(id=1, measured=MODEL), record(id=2, measured=WARM), record(id=3, measured=TYPED),
               record(id=4, measured=WARM, cancelled=True),  # cancelled: not counted, whatever it holds
               record(id=5, error="RuntimeError: boom")]
    result = stats_result(records)
    assert [r["id"] for r in result["requests"]] == [1, 2, 3, 4, 5]
    assert result["cache"] == {"hit_rate": 0.667, "typed_through": 1, "answered": 3}
    assert stats_result([])["cache"] == {"hit_rate": None, "typed_through": 0, "answered": 0}
