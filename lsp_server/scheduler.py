"""One model worker thread, newest request per document wins, background work yields.

The event loop never runs model code: handlers submit jobs here and await their futures.
Per document only the newest foreground request matters — an older one still queued is answered
at once as superseded, and one already running has its cancel flag set, which the decode loop
checks between model steps. Neovim never cancels superseded requests, so this is what keeps it
responsive. Background jobs (prefill on open, prefetch after an answer) run only when no
foreground job waits, and any new foreground job cancels the one running.

A job's future may already be cancelled when the scheduler answers it: the client's
`$/cancelRequest` cancels the awaiting task, which cancels the future while the job is still
queued. Every answer therefore goes through `_settle`, which leaves a finished future alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


class Superseded(Exception):
    """A newer request for the same document replaced this one."""


@dataclass
class Job:
    key: str
    fn: Callable[[threading.Event], Any]
    foreground: bool = True
    cancel: threading.Event = field(default_factory=threading.Event)
    future: Future = field(default_factory=Future)


class Scheduler:
    def __init__(self, name: str = "speclsp-model"):
        self._cond = threading.Condition()
        self._queue: list[Job] = []
        self._running: Job | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, key: str, fn: Callable[[threading.Event], Any], foreground: bool = True,
               supersede: bool = True) -> Job:
        job = Job(key, fn, foreground)
        with self._cond:
            if self._closed:
                _settle(job.future, RuntimeError("scheduler closed"))
                return job
            if supersede:
                self._supersede(key, foreground)
            if foreground and self._running is not None and not self._running.foreground:
                self._running.cancel.set()  # background work always yields to a real request
            self._queue.append(job)
            self._cond.notify()
        return job

    def supersede(self, key: str) -> None:
        """A request for `key` answered without the worker is still the newest for its document:
        older work for the document is answered as superseded or told to stop."""
        with self._cond:
            self._supersede(key, foreground=True)

    async def run(self, key: str, fn: Callable[[threading.Event], Any], foreground: bool = True) -> Any:
        """Submit and await. An asyncio cancel ($/cancelRequest) sets the job's cancel flag.

        A result that arrives after a newer request replaced this one (the job ran past its last
        check of the flag) is stale: the newer answer may already have gone out, so raise Superseded."""
        job = self.submit(key, fn, foreground)
        try:
            result = await asyncio.wrap_future(job.future)
        except asyncio.CancelledError:
            job.cancel.set()
            raise
        if job.cancel.is_set():
            raise Superseded()
        return result

    def close(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._closed = True
            for job in self._queue:
                job.cancel.set()
                _settle(job.future, RuntimeError("server shutting down"))
            self._queue.clear()
            if self._running is not None:
                self._running.cancel.set()
            self._cond.notify_all()
        self._thread.join(timeout)

    def _supersede(self, key: str, foreground: bool) -> None:
        """A foreground job replaces everything older for its document; a background job only
        older background work (it must never cancel a request someone is waiting for)."""
        def replaced(job: Job) -> bool:
            return job.key == key and (foreground or not job.foreground)

        for job in [j for j in self._queue if replaced(j)]:
            self._queue.remove(job)
            job.cancel.set()
            _settle(job.future, Superseded())
        if self._running is not None and replaced(self._running):
            self._running.cancel.set()

    def _next(self) -> Job | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            job = next((j for j in self._queue if j.foreground), self._queue[0])
            self._queue.remove(job)
            self._running = job
            return job

    def _work(self) -> None:
        while (job := self._next()) is not None:
            try:
                if not job.future.set_running_or_notify_cancel():
                    continue  # cancelled by the client while it waited
                result = job.fn(job.cancel)
            except BaseException as e:  # the worker must outlive any job
                _settle(job.future, e)
            else:
                _settle(job.future, result=result)
            finally:
                with self._cond:
                    self._running = None


def _settle(future: Future, error: BaseException | None = None, *, result: Any = None) -> None:
    """Answer a job's future unless it is already done (cancelled by the client, or answered)."""
    with contextlib.suppress(InvalidStateError):
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
