"""How the server's requests share the one model worker: answers that need no model do not wait
for it, and background work gives the worker up within one model forward."""

from __future__ import annotations

import asyncio
import threading

import pytest

from lsp_server.config import Settings
from lsp_server.prompt import CursorContext
from lsp_server.scheduler import Superseded
from lsp_server.server import SpeclspServer

URI = "file:///work/typing.py"
SHOWN = CursorContext("def area(r):\n    return ", "\n\nprint('中文 😀')\n")


async def test_typed_through_answer_does_not_wait_for_the_worker():
    """The worker is stuck in a model forward for this document, with an older request queued; the
    user types the first characters of the shown suggestion. The rest is answered at once, and the
    older work is still superseded and told to stop."""
    server = SpeclspServer(Settings())
    server.service.suggestions.remember(URI, SHOWN, "3.14 * r ** 2")
    running, release = threading.Event(), threading.Event()
    stuck = server.scheduler.submit(URI, lambda cancel: (running.set(), release.wait(30)))
    try:
        await asyncio.get_running_loop().run_in_executor(None, running.wait, 5)
        older = server.scheduler.submit(URI, lambda cancel: "older")
        typing = asyncio.ensure_future(server.complete(URI, CursorContext(SHOWN.prefix + "3.1", SHOWN.suffix), "automatic"))
        done, _ = await asyncio.wait({typing}, timeout=10)  # a hang guard, not a speed limit
        assert typing in done, "the typed-through answer waited for the model worker"
        completion, _ = typing.result()
        assert completion.text == "4 * r ** 2"
        assert not stuck.future.done()  # answered while the worker was still busy
        assert stuck.cancel.is_set()
        with pytest.raises(Superseded):
            older.future.result(0)
        record = server.stats[-1]
        assert record["typed_through"] is True and record["cancelled"] is False
    finally:
        release.set()
        server.scheduler.close()
