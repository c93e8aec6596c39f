"""The remote backend against a fake inference server: what goes over the wire, when the stream is
closed, and what the user is told when the server fails."""

from __future__ import annotations

import threading

import pytest

from lsp_server.backends.remote import ROUTING_HEADER, RemoteBackend
from lsp_server.config import Settings
from lsp_server.engine.api import Cancelled, GenerationRequest, ModelError, Unavailable
from tests.remote_fake import FakeServer

PROMPT = [1, 32007, 400, 401, 32008, 402, 32009]  # ids as the prompt builder makes them, specials included


class Codec:
    """Only what the backend reads of a tokenizer when it is handed one."""

    fim = None
    eos = 2


@pytest.fixture
def server():
    fake = FakeServer()
    yield fake
    fake.stop()


def backend(server, **settings) -> RemoteBackend:
    s = Settings(backend="remote", remote_url=server.url, remote_timeout_ms=2000).replace(**settings)
    return RemoteBackend(s, codec=Codec())


def request(**kw) -> GenerationRequest:
    return GenerationRequest(target_ids=list(PROMPT), max_new_tokens=kw.pop("max_new_tokens", 16),
                             cache_key="file:///a.py", **kw)


def hung_up(seen) -> bool:
    assert seen.done.wait(5)
    return seen.hung_up


def test_llama_server_gets_the_prompt_ids_exactly_and_its_tokens_come_back(server):
    server.tokens = [500, 501, 502]
    b = backend(server)
    result = b.generate(request())
    assert b.kind == "llama.cpp" and result.tokens == [500, 501, 502] and result.stats.finish_reason == "length"
    body = server.streams()[0].body
    assert server.streams()[0].path == "/completion"
    assert body["prompt"] == PROMPT and body["n_predict"] == 16 and body["stream"] is True
    assert body["cache_prompt"] is True and body["return_tokens"] is True and body["temperature"] == 0.0
    assert body["id_slot"] == b.slot("file:///a.py") and 0 <= body["id_slot"] < server.slots


def test_each_document_keeps_its_slot(server):
    b = backend(server)
    slots = {key: b.slot(key) for key in (f"file:///{i}.py" for i in range(20))}
    assert all(b.slot(key) == slot for key, slot in slots.items()) and len(set(slots.values())) > 1


def test_a_stop_rule_closes_the_stream_early(server):
    server.tokens, server.delay_s = list(range(100, 300)), 0.005
    result = backend(server).generate(request(max_new_tokens=200, stop=lambda gen: len(gen) == 3))
    assert result.tokens == [100, 101, 102] and result.stats.finish_reason == "stop"
    seen = server.streams()[0]
    assert hung_up(seen) and seen.sent < 200


def test_a_stop_id_ends_the_completion_without_it(server):
    server.tokens, server.delay_s = [100, 101, 2, 103, 104] + list(range(200, 300)), 0.005
    result = backend(server).generate(request(max_new_tokens=200, stop_ids=frozenset({2})))
    assert result.tokens == [100, 101] and result.stats.finish_reason == "eot"
    assert hung_up(server.streams()[0])


def test_cancelling_closes_the_stream_even_while_the_server_is_silent(server):
    server.first_delay_s, server.tokens = 1.0, list(range(100, 300))
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    with pytest.raises(Cancelled):
        backend(server).generate(request(cancel=cancel))
    assert hung_up(server.streams()[0])


def test_out_of_time_ends_with_what_came(server):
    import time

    server.tokens, server.delay_s = list(range(100, 300)), 0.02
    result = backend(server).generate(request(max_new_tokens=200, deadline=time.monotonic() + 0.2))
    assert result.stats.finish_reason == "time" and 0 < len(result.tokens) < 200


def test_vllm_gets_token_ids_and_the_model_and_sends_ids_back():
    server = FakeServer(kind="vllm")
    try:
        server.tokens = [600, 601]
        b = backend(server, remote_model="codellama")
        result = b.generate(request(stop_ids=frozenset({2, 32010})))
        seen = server.streams()[0]
        assert b.kind == "vllm" and seen.path == "/v1/completions" and result.tokens == [600, 601]
        assert seen.body["prompt"] == PROMPT and seen.body["max_tokens"] == 16 and seen.body["model"] == "codellama"
        assert seen.body["return_token_ids"] is True and seen.body["stop_token_ids"] == [2, 32010]
    finally:
        server.stop()


def test_a_model_the_server_does_not_have_is_a_load_error():
    server = FakeServer(kind="vllm")
    try:
        with pytest.raises(ModelError, match="no model 'starcoder'.*codellama"):
            backend(server, remote_model="starcoder")
    finally:
        server.stop()


@pytest.mark.parametrize("fault,message", [
    ("500", r"failed \(HTTP 500: fault 500\)"), ("401", "refused the API key"),
    ("malformed", "not the stream expected"), ("truncated", "stopped before the completion ended"),
    ("no_ids", "does not send token ids"),
])
def test_each_fault_is_one_clear_error(server, fault, message):
    b = backend(server)
    server.fault = fault
    with pytest.raises(Unavailable, match=message):
        b.generate(request())


def test_a_slow_server_times_out(server):
    b = backend(server, remote_timeout_ms=200)
    server.first_delay_s = 1.0
    with pytest.raises(Unavailable, match="no answer in time"):
        b.generate(request())


def test_a_server_that_is_down_is_retried_later_not_hammered(server):
    url = server.url
    b = backend(server)
    server.stop()
    with pytest.raises(Unavailable, match="connection refused"):
        b.generate(request())
    with pytest.raises(Unavailable, match="trying again in"):
        b.generate(request())  # within the backoff: no connection attempted
    assert b.wire.failures == 1
    b.wire.retry_at = 0  # the pause is over
    revived = FakeServer()
    try:
        b.wire.port = revived.httpd.server_address[1]  # (a new port: the old one may not be free again)
        assert b.generate(request()).tokens == revived.tokens and b.wire.failures == 0
    finally:
        revived.stop()
    assert url


def test_the_key_comes_from_the_named_variable_and_goes_to_the_server(server, monkeypatch):
    monkeypatch.setenv("SPECLSP_TEST_KEY", "sekret-123")
    backend(server, remote_api_key_env="SPECLSP_TEST_KEY").generate(request())
    assert all(s.headers.get("Authorization") == "Bearer sekret-123" for s in server.seen)
    backend(server).generate(request())
    assert "Authorization" not in server.seen[-1].headers


def test_a_named_key_variable_that_is_not_set_is_a_load_error(server, monkeypatch):
    monkeypatch.delenv("SPECLSP_TEST_KEY", raising=False)
    with pytest.raises(ModelError, match="SPECLSP_TEST_KEY"):
        backend(server, remote_api_key_env="SPECLSP_TEST_KEY")
    assert server.seen == []


def test_plain_http_to_another_machine_is_refused_before_any_connection():
    with pytest.raises(ModelError, match="unencrypted"):
        RemoteBackend(Settings(backend="remote", remote_url="http://192.0.2.1:8080"), codec=Codec())


def test_warm_up_fills_the_document_s_slot_for_nothing(server):
    b = backend(server)
    b.prefill(request())
    body = server.seen[-1].body
    assert body["n_predict"] == 0 and body["prompt"] == PROMPT and body["id_slot"] == b.slot("file:///a.py")


def test_each_document_sends_one_routing_key_and_no_file_name(server):
    """A router with session affinity (e.g. vLLM's production-stack router, --session-key) keeps a
    document on one replica by this header; it is a hash, so the file's name stays here."""
    b = backend(server)
    b.generate(request(max_new_tokens=2))
    b.prefill(request())
    keys = {seen.headers.get(ROUTING_HEADER) for seen in server.seen if seen.body is not None}
    assert len(keys) == 1 and None not in keys
    assert "a.py" not in next(iter(keys))
