"""A fake inference server in a thread: llama-server's streamed /completion and the OpenAI /v1/completions.

It records every request (path, headers, JSON body) and, for streams, how many tokens it sent and
whether the client hung up before the end, so tests can see a stream closed early. A test picks
its behaviour by setting attributes: the tokens to stream, a delay between them, a fault.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    path: str
    headers: dict
    body: dict | None
    sent: int = 0
    hung_up: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class FakeServer:
    """Serve until stop(); `url` is its base URL on 127.0.0.1."""

    def __init__(self, kind: str = "llama.cpp"):
        self.kind = kind
        self.tokens: list[int] = [10, 11, 12]
        self.delay_s = 0.0
        self.first_delay_s = 0.0
        self.fault: str | None = None  # "500", "401", "malformed", "truncated", "no_ids"
        self.models = ["codellama"]
        self.slots = 4
        self.seen: list[Seen] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def streams(self) -> list[Seen]:
        return [s for s in self.seen if s.body and s.body.get("stream")]

    def event(self, tok: int | None, last: bool) -> dict:
        ids = [] if tok is None else [tok]
        if self.kind == "llama.cpp":
            event = {"content": "x", "stop": last}
            if self.fault != "no_ids":
                event["tokens"] = ids
            return event | ({"stop_type": "limit"} if last else {})
        choice = {"index": 0, "text": "x", "finish_reason": "length" if last else None}
        if self.fault != "no_ids":
            choice["token_ids"] = ids
        return {"id": "c", "object": "text_completion", "choices": [choice]}


def _handler(fake: FakeServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            fake.seen.append(Seen(self.path, dict(self.headers), None))
            if self.path == "/props" and fake.kind == "llama.cpp":
                return self._json(200, {"total_slots": fake.slots, "model_path": "demo.gguf"})
            if self.path == "/v1/models" and fake.kind != "llama.cpp":
                return self._json(200, {"data": [{"id": m, "owned_by": fake.kind} for m in fake.models]})
            self._json(404, {"error": {"message": "File Not Found"}})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen = Seen(self.path, dict(self.headers), body)
            fake.seen.append(seen)
            try:
                if fake.fault in ("500", "401"):
                    return self._json(int(fake.fault), {"error": {"message": f"fault {fake.fault}"}})
                if not body.get("stream"):
                    return self._json(200, {"content": "", "tokens": [], "stop": True})
                self._stream(seen)
            finally:
                seen.done.set()

        def _stream(self, seen: Seen):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            time.sleep(fake.first_delay_s)
            try:
                for i, tok in enumerate(fake.tokens):
                    if fake.fault == "truncated" and i == 1:
                        return
                    line = b"data: {not json\n\n" if fake.fault == "malformed" else \
                        b"data: " + json.dumps(fake.event(tok, i == len(fake.tokens) - 1)).encode() + b"\n\n"
                    self.wfile.write(line)
                    self.wfile.flush()
                    seen.sent += 1
                    time.sleep(fake.delay_s)
                if fake.kind != "llama.cpp":
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
            except OSError:
                seen.hung_up = True

        def _json(self, status: int, body: dict):
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    return Handler
