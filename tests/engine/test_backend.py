"""The local backend on the tiny pair: what it reports, when new settings rebuild its engine, and
that forgetting and shrinking reach the engine's per-document state."""

from __future__ import annotations

import pytest

from lsp_server.backends import open_backend
from lsp_server.config import Settings
from lsp_server.engine.api import GenerationRequest


@pytest.fixture
def settings(pair) -> Settings:
    return Settings(target=str(pair[0]), draft=str(pair[1]), device="cpu", dtype="float32")


@pytest.fixture
def backend(settings):
    return open_backend(settings)


def warmed(backend, key: str) -> list[int]:
    ids = [backend.codec.bos] + backend.codec.encode("def area(width, height):\n    return width * height\n")
    backend.prefill(GenerationRequest(target_ids=ids, max_new_tokens=4, cache_key=key))
    assert backend.cached_tokens(key, ids) == len(ids) - 1
    return ids


def test_it_reports_what_was_loaded(backend, pair):
    assert backend.info["target"] == str(pair[0]) and backend.info["draft"] == str(pair[1])
    assert backend.info["graph_capture_s"] == 0.0  # no graphs on the CPU
    assert backend.draft_positions == backend.models.draft.config.max_position_embeddings


def test_only_the_engine_s_own_settings_rebuild_it(backend, settings):
    engine = backend.engine
    backend.configure(settings.replace(context_tokens=1024, temperature=0.5))
    assert backend.engine is engine
    backend.configure(settings.replace(context_tokens=1024, temperature=0.5, draft_length=3))
    assert backend.engine is not engine and backend.engine.max_gamma == 3


def test_forget_reaches_the_engine(backend):
    a, b = warmed(backend, "a"), warmed(backend, "b")
    backend.forget("a")
    assert backend.cached_tokens("a", a) == 0 and backend.cached_tokens("b", b) == len(b) - 1
    backend.forget_all()
    assert backend.cached_tokens("b", b) == 0


def test_shrinking_empties_the_caches_then_drops_the_draft(backend):
    ids = warmed(backend, "a")
    assert backend.shrink(drop_draft=False) is False and backend.draft_positions > 0
    assert backend.cached_tokens("a", ids) == 0
    assert backend.shrink(drop_draft=True) is True and backend.draft_positions == 0
    assert backend.shrink(drop_draft=True) is False  # nothing more to drop
