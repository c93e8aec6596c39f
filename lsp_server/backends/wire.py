"""HTTP to a shared inference server: JSON requests and server-sent-event streams that can be cut off mid-answer.

The standard library's http.client, not an HTTP package: requests run on the model worker thread,
where blocking is fine, and a stream is closed by closing its socket, which is all the servers need
to stop generating. A request that must end early (cancelled, out of time) is cut from a small
watcher thread that shuts the socket down, so a read blocked on a slow server returns at once.
Every failure becomes a RemoteError whose message is the user's.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from ..engine.api import Unavailable

WATCH_S = 0.01  # how often a streaming request checks whether it must be cut off
BACKOFF_S = (0.5, 30.0)  # after a connection failure, requests fail fast for this long, doubling up to the max


class RemoteError(Unavailable):
    """The server cannot be used for this request; the message says why, in the user's words."""


class Unreachable(RemoteError):
    """No connection (refused, down, timed out, TLS): worth trying again later, not a setting to fix."""


class Wire:
    """One server at one base URL; the API key, if any, goes in every request to it and nowhere else."""

    def __init__(self, url: str, timeout_s: float, api_key: str = ""):
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname or "", parts.port
        self.base = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self.headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.failures = 0
        self.retry_at = 0.0
        self.where = f"{parts.scheme}://{parts.netloc}"

    def get(self, path: str) -> dict:
        with self._exchange("GET", path, None) as response:
            return _json(response.read(), self.where + path)

    def post(self, path: str, body: dict, headers: dict | None = None) -> dict:
        with self._exchange("POST", path, body, headers) as response:
            return _json(response.read(), self.where + path)

    def stream(self, path: str, body: dict, cut: Callable[[], bool], headers: dict | None = None) -> Iterator[dict]:
        """The events of a streamed answer, as they arrive. Leaving the loop (or `cut()` turning
        true, checked every few milliseconds while a read waits) closes the connection."""
        with self._exchange("POST", path, body, headers) as response:
            done = threading.Event()
            watcher = threading.Thread(target=_watch, args=(response, cut, done), daemon=True)
            watcher.start()
            try:
                yield from _events(response, self.where + path, cut)
            finally:
                done.set()
                watcher.join()

    @contextlib.contextmanager
    def _exchange(self, method: str, path: str, body: dict | None, headers: dict | None = None):
        self._check_backoff()
        conn = self._connect()
        try:
            try:
                conn.request(method, self.base + path, body=None if body is None else json.dumps(body),
                             headers={**self.headers, **(headers or {})})
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                raise self._down(e) from e
            self.failures = 0
            _check_status(response, self.where + path)
            yield response
        finally:
            conn.close()  # a stream left early is aborted: the server sees the disconnect

    def _connect(self) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout_s,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)

    def _check_backoff(self) -> None:
        wait = self.retry_at - time.monotonic()
        if wait > 0:
            raise Unreachable(f"{self.where} did not answer; trying again in {wait:.0f} s")

    def _down(self, error: Exception) -> Unreachable:
        """Remember a connection failure: the next requests fail fast for a while (no hammering)."""
        self.failures += 1
        pause = min(BACKOFF_S[0] * 2 ** (self.failures - 1), BACKOFF_S[1])
        self.retry_at = time.monotonic() + pause
        return Unreachable(f"cannot reach the inference server at {self.where} ({_why(error)}); "
                           f"trying again in {pause:g} s")


def _why(error: Exception) -> str:
    if isinstance(error, TimeoutError | socket.timeout):
        return "no answer in time"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused: is the server running?"
    if isinstance(error, ssl.SSLError):
        return f"TLS: {error.reason or error}"
    return f"{type(error).__name__}: {str(error)[:120]}"


def _check_status(response: http.client.HTTPResponse, where: str) -> None:
    """A status other than 200 is the user's message, with the server's own words when it gave some."""
    status = response.status
    if status == 200:
        return
    said = _server_message(response.read(4096))
    if status in (401, 403):
        raise RemoteError(f"{where} refused the API key (HTTP {status}{said}): check the variable "
                          "speclsp.remoteApiKeyEnv names")
    if 300 <= status < 400:
        raise RemoteError(f"{where} redirects (HTTP {status}); redirects are not followed: set "
                          "speclsp.remoteUrl to the server's own address")
    if status == 404:
        raise RemoteError(f"{where}: not found (HTTP 404{said}); check speclsp.remoteUrl, remoteKind and remoteModel")
    kind = "rejected the request" if status < 500 else "failed"
    raise RemoteError(f"the inference server {kind} (HTTP {status}{said})")


def _server_message(raw: bytes) -> str:
    """The error message a server put in its JSON body (OpenAI and llama-server shapes), briefly."""
    try:
        body = json.loads(raw)
        error = body.get("error", body) if isinstance(body, dict) else body
        text = error.get("message") if isinstance(error, dict) else error
    except ValueError:
        text = raw.decode("utf-8", "replace")
    text = " ".join(str(text or "").split())[:200]
    return f": {text}" if text else ""


def _json(raw: bytes, where: str) -> dict:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise RemoteError(f"{where} answered something that is not a JSON object; is speclsp.remoteUrl "
                          "an inference server?")
    return body


def _events(response: http.client.HTTPResponse, where: str, cut: Callable[[], bool]) -> Iterator[dict]:
    """Server-sent events (`data: {...}` lines) as JSON objects; `data: [DONE]` or the end of the
    body ends them. A line that is not JSON, or a connection lost mid-answer, is an error unless
    the request was being cut."""
    while True:
        try:
            line = response.readline()
        except (OSError, http.client.HTTPException, ValueError) as e:
            if cut():
                return
            raise RemoteError(f"the answer from {where} broke off ({_why(e)})") from e
        if not line:
            return
        line = line.strip()
        if not line.startswith(b"data:"):
            continue  # blank separators, comments, `event:` names
        data = line[5:].strip()
        if data == b"[DONE]":
            return
        try:
            event = json.loads(data)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            raise RemoteError(f"the answer from {where} is not the stream expected (a line: {data[:80]!r})")
        if "error" in event:
            raise RemoteError(f"the inference server failed mid-answer{_server_message(data)}")
        yield event


def _watch(response: http.client.HTTPResponse, cut: Callable[[], bool], done: threading.Event) -> None:
    """Shut the socket down when the request must end, so a read waiting on the server returns."""
    while not done.wait(WATCH_S):
        if cut():
            sock = getattr(response.fp, "raw", None)
            sock = getattr(sock, "_sock", None)
            with contextlib.suppress(OSError):
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
            return
