"""One record per document on the service side: bounded by one rule, forgotten in one call that
reaches the backend too. The service runs here over a fake backend: the protocol is all it needs."""

from __future__ import annotations

import pytest

from lsp_server.config import Settings
from lsp_server.document_state import DocumentStore
from lsp_server.engine.api import GenerationRequest, GenerationResult, Stats
from lsp_server.prompt import CursorContext
from lsp_server.service import CompletionService

SHOWN = CursorContext("def area(r):\n    return ", "\n\nprint('中文 😀')\n")


def test_records_are_bounded_in_number_least_recently_used_first():
    store = DocumentStore(max_documents=3)
    windows = {key: store.window(key) for key in ("a", "b", "c")}
    store.window("a")  # used again: "b" is now the least recently used
    store.remember("d", SHOWN, "3.14 * r ** 2")
    assert len(store) == 3 and set(store.records) == {"a", "c", "d"}
    assert store.window("a") is windows["a"] and store.window("c") is windows["c"]
    assert store.window("b") is not windows["b"]  # placed afresh


def test_records_are_bounded_in_characters_and_the_count_is_true():
    store = DocumentStore(budget_chars=10_000)
    doc = "x" * 3000
    for i in range(10):
        store.remember(f"doc{i}", CursorContext(doc, ""), f"text{i}")
        assert store.chars == sum(r.chars for r in store.records.values()) <= 10_000
    assert list(store.records) == ["doc7", "doc8", "doc9"]  # whole records go, windows with them


def test_new_settings_drop_the_suggestions_and_keep_the_windows():
    store = DocumentStore()
    window = store.window("a")
    store.remember("a", SHOWN, "3.14 * r ** 2")
    store.forget_suggestions()
    assert store.lookup("a", SHOWN) is None and store.chars == 0
    assert store.window("a") is window


class FakeCodec:
    """Characters as ids: enough of a tokenizer for the prompt builder and the service."""

    bos, eos, fim = 1, 2, None

    def encode(self, text: str) -> list[int]:
        return [ord(c) + 10 for c in text]

    encode_infill = encode

    def decode_continuation(self, ids: list[int]) -> str:
        return "".join(chr(i - 10) for i in ids)

    def pieces(self) -> tuple[list[str], set[int]]:
        return [], set()  # no SentencePiece vocabulary: no token healing


class FakeBackend:
    """Answers every request with `3.14 * r ** 2` and records what the service asked of it."""

    def __init__(self, settings: Settings, progress):
        self.codec, self.info, self.notices = FakeCodec(), {"target": "fake"}, []
        self.draft_positions = 300
        self.calls: list[tuple] = []

    def configure(self, settings: Settings) -> None:
        self.calls.append(("configure", settings.draft_length))

    def generate(self, request: GenerationRequest) -> GenerationResult:
        self.calls.append(("generate", request.cache_key))
        return GenerationResult(self.codec.encode("3.14 * r ** 2"), Stats(finish_reason="length"))

    def prefill(self, request: GenerationRequest) -> Stats:
        return Stats(prompt_tokens=len(request.target_ids))

    def cached_tokens(self, key: str, ids: list[int]) -> int:
        return 0

    def forget(self, key: str) -> None:
        self.calls.append(("forget", key))

    def forget_all(self) -> None:
        self.calls.append(("forget_all",))

    def shrink(self, drop_draft: bool) -> bool:
        self.calls.append(("shrink", drop_draft))
        if drop_draft:
            self.draft_positions = 0
        return drop_draft


@pytest.fixture
def service() -> CompletionService:
    s = CompletionService(Settings(time_budget_ms=60_000), open_backend=FakeBackend)
    assert s.load() == {"target": "fake"}
    return s


def test_the_service_completes_over_the_backend_protocol(service):
    assert service.complete(SHOWN, "a").text == "3.14 * r ** 2"
    typed = service.complete(CursorContext(SHOWN.prefix + "3.1", SHOWN.suffix), "a")
    assert typed.text == "4 * r ** 2" and typed.stats["typed_through"] is True
    assert service.backend.calls == [("generate", "a")]  # the second answer needed no model


def test_forget_drops_the_record_and_reaches_the_backend(service):
    service.complete(SHOWN, "a")
    service.complete(SHOWN, "b")
    window = service.documents.window("a")
    service.forget("a")
    assert set(service.documents.records) == {"b"} and service.documents.lookup("a", SHOWN) is None
    assert service.documents.lookup("b", SHOWN) == "3.14 * r ** 2"  # the other document keeps its own
    assert service.backend.calls[-1] == ("forget", "a")
    assert service.documents.window("a") is not window
    service.forget_all()
    assert len(service.documents) == 0 and service.documents.chars == 0
    assert service.backend.calls[-1] == ("forget_all",)


def test_settings_that_need_no_reload_go_to_the_backend_and_keep_the_windows(service):
    service.complete(SHOWN, "a")
    window = service.documents.window("a")
    assert service.apply(service.settings.replace(draft_length=3)) is False
    assert service.backend.calls[-1] == ("configure", 3)
    assert service.documents.window("a") is window  # the prompt's window stays put
    assert service.typed_through(CursorContext(SHOWN.prefix + "3", SHOWN.suffix), "a") is None  # made under old settings
    assert service.builder.reserve == service.settings.max_tokens + 3 + 2
    assert service.apply(service.settings.replace(target="other")) is True


def test_a_second_out_of_memory_drops_the_draft_view(service):
    assert service.builder.draft_positions == 300
    assert "dropped" in service.recover_from_oom() and service.builder.draft_positions == 300
    assert "unloaded" in service.recover_from_oom() and service.builder.draft_positions == 0
    assert [c for c in service.backend.calls if c[0] == "shrink"] == [("shrink", False), ("shrink", True)]


def test_a_remote_server_setting_reloads_only_while_the_remote_backend_is_chosen(service):
    """Typing a server address while the local engine runs must not reload the local models."""
    local = service.settings
    assert service.apply(local.replace(remote_url="https://llm.example:8080")) is False
    assert service.apply(service.settings.replace(backend="remote")) is True
    assert service.apply(service.settings.replace(remote_url="https://other.example")) is True
