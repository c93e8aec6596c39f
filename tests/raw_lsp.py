"""A bare JSON-RPC client over the server's stdio, for sending what a typed client would refuse to."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time


class RawServer:
    def __init__(self, env: dict | None = None, args: list[str] | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lsp_server", "serve", *(args or [])], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
        self.inbox: queue.Queue = queue.Queue()
        self.notifications: list[dict] = []  # every notification, also those the waits skip over
        self.responses: dict = {}  # responses that arrived while waiting for another id
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.next_id = 1000

    def _read(self) -> None:
        try:
            self._read_loop()
        except Exception as e:  # make a broken reader visible instead of a silent hang
            self.inbox.put({"reader_error": repr(e)})
            raise

    def _read_loop(self) -> None:
        out = self.proc.stdout
        while True:
            headers = {}
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                k, _, v = line.decode("ascii", "replace").partition(":")
                headers[k.strip().lower()] = v.strip()
            body = out.read(int(headers.get("content-length", 0)))
            msg = json.loads(body)
            if "method" in msg and "id" not in msg:
                self.notifications.append(msg)
            self.inbox.put(msg)

    def write_raw(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: dict) -> None:
        body = json.dumps(message).encode()
        self.write_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def request(self, method: str, params, timeout: float = 30.0, msg_id=None) -> dict:
        msg_id = msg_id if msg_id is not None else self._id()
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return self.wait_response(msg_id, timeout)

    def notify(self, method: str, params) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait_response(self, msg_id, timeout: float = 30.0) -> dict:
        if msg_id in self.responses:
            return self.responses.pop(msg_id)
        for msg in self._messages(timeout):
            if "result" in msg or "error" in msg:
                if msg.get("id") == msg_id:
                    return msg
                if msg.get("id") is not None:
                    self.responses[msg["id"]] = msg
        raise TimeoutError(f"no response to {msg_id}")

    def wait_status(self, states=("ready", "error"), timeout: float = 60.0) -> dict:
        for msg in self._messages(timeout):
            if msg.get("method") == "speclsp/status" and msg["params"]["state"] in states:
                return msg["params"]
        raise TimeoutError("no status")

    def _messages(self, timeout: float):
        """Messages as they arrive until the timeout; requests from the server are answered here."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            if "reader_error" in msg:
                raise RuntimeError(msg["reader_error"])
            if msg.get("method") and "id" in msg:
                self.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
                continue
            yield msg

    def initialize(self, options: dict) -> dict:
        result = self.request("initialize", {"processId": None, "rootUri": None, "capabilities": {},
                                             "initializationOptions": options})
        self.notify("initialized", {})
        return result

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def close(self) -> int:
        try:
            self.request("shutdown", None, timeout=5)
            self.notify("exit", None)
        except Exception:
            pass
        try:
            return self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -9
