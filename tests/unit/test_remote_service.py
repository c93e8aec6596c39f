"""A completion through the whole pipeline (CompletionService) with the remote backend and a fake
llama-server: the prompt built here arrives as ids, and the streamed ids become the suggestion."""

from __future__ import annotations

import pytest

from lsp_server.config import Settings
from lsp_server.engine.api import Unavailable
from lsp_server.engine.sources import demo_paths
from lsp_server.prompt import CursorContext
from lsp_server.service import CompletionService
from tests.remote_fake import FakeServer


@pytest.fixture
def server():
    fake = FakeServer()
    yield fake
    fake.stop()


def test_a_completion_appears_and_a_dead_server_is_an_error_then_recovers(server):
    settings = Settings(backend="remote", remote_url=server.url, target=str(demo_paths()[0]))
    service = CompletionService(settings)
    service.load()
    codec = service.backend.codec
    ctx = CursorContext("def area(width, height):\n    return ", "\n")
    healed = service.prompt(ctx, "file:///a.py").healed  # text before the cursor the answer must spell again
    server.tokens = codec.encode_infill(healed + "width * height") + [codec.fim.end]
    completion = service.complete(ctx, "file:///a.py")
    assert completion.text == "width * height"
    sent = server.streams()[-1].body["prompt"]
    assert sent == service.prompt(ctx, "file:///a.py").target_ids
    server.fault = "500"
    with pytest.raises(Unavailable, match="HTTP 500"):
        service.complete(CursorContext("x = ", "\n"), "file:///b.py")
    server.fault = None
    assert service.complete(ctx, "file:///c.py").text == "width * height"
