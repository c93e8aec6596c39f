"""The JSON keys of `speclsp.stats` and of `speclsp/status`'s `last`: the VS Code status bar, the
editor harnesses and docs/editors.md read them by name, so they are pinned here, per kind of request."""

from __future__ import annotations

import asyncio
import threading

import pytest

from lsp_server.config import Settings
from lsp_server.lsp.server import create_server
from lsp_server.prompt import CursorContext
from lsp_server.service import Completion

URI = "file:///work/wire.py"
SHOWN = CursorContext("def area(r):\n    return ", "\n\nprint('中文 😀')\n")
TYPING = CursorContext(SHOWN.prefix + "3.1", SHOWN.suffix)

ENGINE = {"prompt_tokens", "reused_tokens", "prefill_tokens", "generated_tokens", "target_forwards", "rounds",
          "drafted_tokens", "accepted_tokens", "copy_drafted_tokens", "copy_accepted_tokens",
          "draft_reused_tokens", "draft_prefill_tokens", "prefill_ms", "draft_ms", "verify_ms", "decode_ms",
          "engine_ms", "finish_reason", "mean_accepted"}
REQUEST = {"id", "uri", "trigger", "cancelled", "latency_ms"}
COMPUTED = REQUEST | ENGINE | {"queue_ms", "typed_through", "deferred_tokens", "text_chars"}
TYPED_THROUGH = REQUEST | ENGINE | {"typed_through", "text_chars"}
FAILED = REQUEST | {"queue_ms", "error"}
BRIEF = {"latency_ms", "accepted_tokens", "drafted_tokens", "generated_tokens", "cancelled"}


class Wire:
    """A server driven in-process, with what its commands and status notifications would send."""

    def __init__(self, settings: Settings):
        self.server = create_server(settings)
        self.statuses: list[dict] = []
        self.server.status = lambda state, message="", **extra: self.statuses.append(
            {"state": state, "message": message, **extra})

    def command(self, name: str, *args):
        return self.server.protocol.fm.commands[name](*args)

    def requests(self) -> list[dict]:
        return self.command("speclsp.stats")["requests"]


@pytest.fixture
def wire():
    w = Wire(Settings())
    yield w
    w.server.scheduler.close()


@pytest.fixture(scope="module")
def loaded_wire(pair):
    w = Wire(Settings(target=str(pair[0]), draft=str(pair[1]), device="cpu", dtype="float32", max_tokens=6))
    w.server.service.load()
    yield w
    w.server.scheduler.close()


async def test_a_computed_request(loaded_wire):
    completion, rid = await loaded_wire.server.complete(URI, SHOWN, "invoked")
    assert completion is not None
    record = loaded_wire.requests()[-1]
    assert set(record) == COMPUTED
    assert (record["id"], record["uri"], record["trigger"], record["cancelled"]) == (rid, URI, "invoked", False)
    assert record["typed_through"] is False and record["text_chars"] == len(completion.text)
    status = loaded_wire.statuses[-1]
    assert set(status) == {"state", "message", "last"} and status["state"] == "ready"
    assert set(status["last"]) == BRIEF
    assert status["last"]["generated_tokens"] == record["generated_tokens"]


async def test_a_typed_through_request_then_accepted(wire):
    wire.server.service.documents.remember(URI, SHOWN, "3.14 * r ** 2")
    completion, rid = await wire.server.complete(URI, TYPING, "automatic")
    assert completion.text == "4 * r ** 2"
    assert set(wire.requests()[-1]) == TYPED_THROUGH
    assert wire.command("speclsp.accepted", rid) is None
    record = wire.requests()[-1]
    assert set(record) == TYPED_THROUGH | {"accepted"} and record["accepted"] is True
    assert record["typed_through"] is True
    result = wire.command("speclsp.stats")
    assert set(result) == {"requests", "cache"}
    assert result["cache"] == {"hit_rate": 1.0, "typed_through": 1, "answered": 1}
    assert set(wire.statuses[-1]["last"]) == BRIEF


async def test_a_superseded_request(wire, monkeypatch):
    wire.server.service.documents.remember(URI, SHOWN, "3.14 * r ** 2")
    running, release = threading.Event(), threading.Event()
    monkeypatch.setattr(wire.server.service, "backend", object())  # ready
    monkeypatch.setattr(wire.server.service, "prefetch", lambda *args: None)
    monkeypatch.setattr(wire.server.service, "complete",
                        lambda *args, **kw: (running.set(), release.wait(30), Completion("late"))[-1])
    try:
        older = asyncio.ensure_future(wire.server.complete(URI, CursorContext("x = ", "\n"), "automatic"))
        await asyncio.get_running_loop().run_in_executor(None, running.wait, 5)
        queued = asyncio.ensure_future(wire.server.complete(URI, CursorContext("x = 1", "\n"), "automatic"))
        await asyncio.sleep(0)
        await wire.server.complete(URI, TYPING, "automatic")  # supersedes both
        release.set()
        assert (await asyncio.wait_for(queued, 10))[0] is None
        assert (await asyncio.wait_for(older, 10))[0] is None
    finally:
        release.set()
    started, waited, typed = sorted(wire.requests(), key=lambda r: r["id"])
    assert set(started) == REQUEST | {"queue_ms"} and started["cancelled"] is True
    assert set(waited) == REQUEST and waited["cancelled"] is True
    assert set(typed) == TYPED_THROUGH
    assert set(wire.statuses[-1]["last"]) == {"latency_ms", "cancelled"}
    assert wire.command("speclsp.stats")["cache"] == {"hit_rate": 1.0, "typed_through": 1, "answered": 1}


async def test_a_failed_request(wire, monkeypatch):
    def fail(*args, **kw):
        raise RuntimeError("a fault in the worker")

    monkeypatch.setattr(wire.server.service, "backend", object())  # ready
    monkeypatch.setattr(wire.server.service, "complete", fail)
    completion, _ = await wire.server.complete(URI, SHOWN, "automatic")
    assert completion is None
    record = wire.requests()[-1]
    assert set(record) == FAILED and record["error"] == "RuntimeError: a fault in the worker"
    assert wire.command("speclsp.stats")["cache"] == {"hit_rate": None, "typed_through": 0, "answered": 0}
