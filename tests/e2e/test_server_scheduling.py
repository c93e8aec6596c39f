"""How the server's requests share the one model worker: answers that need no model do not wait
for it, and background work gives the worker up within one model forward."""

from __future__ import annotations

import asyncio
import itertools
import threading

import pytest

from lsp_server import faults
from lsp_server.config import Settings
from lsp_server.engine.api import Cancelled
from lsp_server.lsp.server import SpeclspServer
from lsp_server.prompt import CursorContext
from lsp_server.scheduler import Superseded
from lsp_server.service import Completion
from tests.fixtures import corpus_text

URI = "file:///work/typing.py"
SHOWN = CursorContext("def area(r):\n    return ", "\n\nprint('中文 😀')\n")
OTHER = "file:///work/other.py"
LONG = CursorContext(corpus_text()[:20000], "\n\nprint('中文 😀')\n")  # a prompt of several prefill chunks


async def test_typed_through_answer_does_not_wait_for_the_worker():
    """The worker is stuck in a model forward for this document, with an older request queued; the
    user types the first characters of the shown suggestion. The rest is answered at once, and the
    older work is still superseded and told to stop."""
    server = SpeclspServer(Settings())
    server.service.documents.remember(URI, SHOWN, "3.14 * r ** 2")
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
        assert record.typed_through is True and record.cancelled is False
    finally:
        release.set()
        server.scheduler.close()


@pytest.fixture(scope="module")
def server(pair):
    """A server with the tiny pair loaded, driven in-process (no editor: the worker and the engine)."""
    s = SpeclspServer(Settings(target=str(pair[0]), draft=str(pair[1]), device="cpu", dtype="float32",
                               max_tokens=12, time_budget_ms=60_000))
    s.service.load()
    yield s
    s.scheduler.close()


class Forwards:
    """Counts model forwards (target and draft); before forward number `at`, a foreground request
    for another document arrives. `after` counts the forwards from then until that request starts."""

    def __init__(self, server: SpeclspServer, at: int):
        self.server, self.at, self.n, self.after = server, at, 0, 0
        self.foreground = None
        self.started = threading.Event()

    def __call__(self) -> None:
        self.n += 1
        if self.n == self.at:
            self.foreground = self.server.scheduler.submit(OTHER, lambda cancel: self.started.set())
        if self.foreground is not None and not self.started.is_set():
            self.after += 1


def run_background(server: SpeclspServer, work, at: int, monkeypatch) -> Forwards:
    server.service.forget(URI)  # the same work from scratch every time
    forwards = Forwards(server, at)
    monkeypatch.setattr(faults, "before_forward", forwards)
    finished = threading.Event()
    server.background(URI, work)
    server.scheduler.submit("last", lambda cancel: finished.set(), foreground=False)
    assert finished.wait(60)
    return forwards


BACKGROUND = {
    "prefill": lambda s: lambda cancel: s.service.warm(LONG, URI, cancel),
    "prefetch": lambda s: lambda cancel: s.service.prefetch(LONG, URI, "    return x\n", cancel),
}


@pytest.mark.parametrize("kind", BACKGROUND)
def test_background_work_yields_within_one_model_forward(server, kind, monkeypatch):
    """Whichever forward of the background work the request arrives before, the background runs
    at most that one forward more before the request starts."""
    work = BACKGROUND[kind](server)
    total = run_background(server, work, 0, monkeypatch).n  # uninterrupted
    assert total >= 3
    late = {at: f.after for at in range(1, total + 1) if (f := run_background(server, work, at, monkeypatch)).after > 1}
    assert late == {}, f"forwards run by background work after the request arrived (of {total}): {late}"


@pytest.mark.parametrize("rate,widest", [(1.0, 100), (0.01, 32)])
def test_cpu_prefill_chunks_follow_the_measured_speed(server, rate, widest, monkeypatch):
    """A forward cannot be interrupted, so on a CPU a prefill chunk is as wide as the measured
    speed allows in about 100 ms (at least a small floor); the first request waits no longer."""
    engine = server.service.backend.engine
    widths: list[int] = []
    extend = engine.target.extend
    monkeypatch.setattr(engine.target, "extend", lambda cache, ids: (widths.append(len(ids)), extend(cache, ids))[1])
    server.service.forget(URI)
    engine.target.prefill_tokens_per_ms = rate
    stats = server.service.warm(LONG, URI)
    assert sum(widths) == stats["prefill_tokens"] and len(widths) > 1
    assert max(widths) <= widest


def test_fast_cpu_prefill_keeps_wide_chunks(server, monkeypatch):
    engine = server.service.backend.engine
    widths: list[int] = []
    extend = engine.target.extend
    monkeypatch.setattr(engine.target, "extend", lambda cache, ids: (widths.append(len(ids)), extend(cache, ids))[1])
    server.service.forget(URI)
    engine.target.prefill_tokens_per_ms = 1e6
    server.service.warm(LONG, URI)
    assert max(widths) >= 256  # narrow chunks cost throughput; a fast CPU does not need them


def test_a_cancelled_background_prefill_keeps_what_it_computed(server, monkeypatch):
    server.service.forget(URI)
    server.service.backend.engine.target.prefill_tokens_per_ms = 1.0
    cancel, forwards = threading.Event(), itertools.count(1)
    monkeypatch.setattr(faults, "before_forward", lambda: next(forwards) == 2 and cancel.set())
    with pytest.raises(Cancelled):
        server.service.warm(LONG, URI, cancel)
    monkeypatch.setattr(faults, "before_forward", lambda: None)
    stats = server.service.warm(LONG, URI)
    assert 0 < stats["reused_tokens"] < stats["prompt_tokens"] - 1  # the two chunks computed are kept


async def test_an_older_request_finishing_after_a_typed_through_answer_answers_empty(monkeypatch):
    """The older request is past its last cancel check when the typed-through answer goes out: its
    late result must not reach the editor after the newer answer."""
    server = SpeclspServer(Settings())
    server.service.documents.remember(URI, SHOWN, "3.14 * r ** 2")
    running, release = threading.Event(), threading.Event()

    def slow_complete(ctx, key, cancel, arrived=None):
        running.set()
        release.wait(30)
        return Completion("stale text")

    monkeypatch.setattr(server.service, "backend", object())  # ready
    monkeypatch.setattr(server.service, "complete", slow_complete)
    monkeypatch.setattr(server.service, "prefetch", lambda *args: None)
    try:
        older = asyncio.ensure_future(server.complete(URI, CursorContext("x = ", "\n"), "automatic"))
        await asyncio.get_running_loop().run_in_executor(None, running.wait, 5)
        newer, _ = await server.complete(URI, CursorContext(SHOWN.prefix + "3.1", SHOWN.suffix), "automatic")
        assert newer.text == "4 * r ** 2"
        release.set()
        late, _ = await asyncio.wait_for(older, 10)
        assert late is None
        assert [r.cancelled for r in server.stats] == [False, True]  # typed through, then the older one
    finally:
        release.set()
        server.scheduler.close()


async def test_a_result_that_arrives_after_the_request_was_superseded_is_not_an_answer():
    from lsp_server.scheduler import Scheduler

    s = Scheduler()
    running, release = threading.Event(), threading.Event()
    task = asyncio.ensure_future(s.run("doc", lambda cancel: (running.set(), release.wait(30), "late")[-1]))
    await asyncio.get_running_loop().run_in_executor(None, running.wait, 5)
    s.supersede("doc")
    release.set()
    with pytest.raises(Superseded):
        await asyncio.wait_for(task, 10)
    s.close()
