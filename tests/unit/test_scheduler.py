"""One worker, newest request per document wins, background yields to foreground."""

import asyncio
import threading
import time

import pytest

from lsp_server.scheduler import Scheduler, Superseded


def blocking(started: threading.Event, release: threading.Event, out: list, name: str):
    def fn(cancel):
        started.set()
        while not release.is_set() and not cancel.is_set():
            time.sleep(0.001)
        out.append((name, cancel.is_set()))
        return name
    return fn


def occupy(s: Scheduler, key: str, name: str):
    """Submit a job that holds the worker until released (or cancelled); returns once it runs."""
    started, release, out = threading.Event(), threading.Event(), []
    job = s.submit(key, blocking(started, release, out, name))
    started.wait(2)
    return job, release, out


def test_newest_request_per_document_wins():
    s = Scheduler()
    first, release, out = occupy(s, "doc", "first")
    queued = s.submit("doc", lambda c: "second")
    newest = s.submit("doc", lambda c: "third")
    with pytest.raises(Superseded):
        queued.future.result(1)  # answered at once, without running
    assert newest.future.result(2) == "third"
    assert first.future.result(2) == "first" and out == [("first", True)]  # the running one was flagged
    s.close()


def test_other_documents_are_not_superseded():
    s = Scheduler()
    a = s.submit("a", lambda c: (time.sleep(0.05), "a")[1])
    b = s.submit("b", lambda c: "b")
    assert a.future.result(2) == "a" and b.future.result(2) == "b"
    s.close()


def test_foreground_preempts_background_and_runs_first():
    s = Scheduler()
    started, release, out, order = threading.Event(), threading.Event(), [], []
    bg = s.submit("bg", blocking(started, release, out, "bg"), foreground=False)
    started.wait(2)
    later_bg = s.submit("bg2", lambda c: order.append("bg2"), foreground=False)
    fg = s.submit("doc", lambda c: order.append("fg"))
    fg.future.result(2), later_bg.future.result(2), bg.future.result(2)
    assert out == [("bg", True)] and order == ["fg", "bg2"]
    s.close()


def test_worker_survives_exceptions():
    s = Scheduler()
    bad = s.submit("x", lambda c: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        bad.future.result(2)
    assert s.submit("x", lambda c: "ok").future.result(2) == "ok"
    s.close()


async def test_asyncio_cancel_sets_the_flag():
    s = Scheduler()
    started, release, out = threading.Event(), threading.Event(), []
    task = asyncio.ensure_future(s.run("doc", blocking(started, release, out, "job")))
    await asyncio.get_running_loop().run_in_executor(None, started.wait, 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(200):
        if out:
            break
        await asyncio.sleep(0.01)
    assert out == [("job", True)]
    s.close()


def test_a_request_the_client_cancelled_while_queued_does_not_fail_newer_ones():
    """VS Code cancels superseded requests before they start: the queued future is CANCELLED when
    the next request for the document replaces it, and that must not break the next request."""
    s = Scheduler()
    _, release, out = occupy(s, "other", "busy")  # keeps A queued
    a = s.submit("doc", lambda c: "A")
    assert a.future.cancel()  # $/cancelRequest while A waits
    b = s.submit("doc", lambda c: "B")
    c = s.submit("doc", lambda c: "C")
    release.set()
    with pytest.raises(Superseded):
        b.future.result(2)
    assert c.future.result(2) == "C"
    s.close()


def test_close_answers_every_queued_request_even_one_already_cancelled():
    s = Scheduler()
    running, release, out = occupy(s, "x", "running")
    gone = s.submit("doc", lambda c: "gone")
    waiting = s.submit("doc2", lambda c: "waiting")
    gone.future.cancel()
    s.close()  # must not raise on the cancelled future
    assert gone.future.cancelled()
    with pytest.raises(RuntimeError, match="shutting down"):
        waiting.future.result(2)
    assert running.future.result(2) == "running" and out == [("running", True)]
