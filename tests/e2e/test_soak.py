"""Soak: many documents, typing storms and superseded requests for a while, through the real server.

Checks that no request hangs, memory stays bounded (RSS slope), latency stays bounded, and that no
stale suggestion reaches the editor: per document, the non-empty answers arrive in the order the
requests were sent, so an older suggestion never shows up after a newer one. CI runs it for
SPECLSP_SOAK_SECONDS (default 40); the long run is documented in docs/reliability.md.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from tests.fixtures import corpus_text
from tests.raw_lsp import RawServer

pytestmark = pytest.mark.e2e
SECONDS = float(os.environ.get("SPECLSP_SOAK_SECONDS", "40"))
DOCS = 24


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    n = len(samples)
    mt = sum(t for t, _ in samples) / n
    mm = sum(m for _, m in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples) or 1e-9
    return sum((t - mt) * (m - mm) for t, m in samples) / var * 60


def test_soak(pair):
    rng = random.Random(0)
    text = corpus_text()
    server = RawServer(args=["--log-file", os.environ.get("SPECLSP_SOAK_LOG", os.devnull)])
    server.initialize({"target": str(pair[0]), "draft": str(pair[1]), "device": "cpu", "maxTokens": 8,
                       "contextTokens": 512, "cacheBudgetMB": 4})
    assert server.wait_status()["state"] == "ready"
    docs = {}
    for d in range(DOCS):
        start = rng.randrange(0, len(text) - 3000)
        docs[f"file:///soak/{d}.py"] = {"text": text[start:start + 3000], "version": 1, "seq": -1}
        server.notify("textDocument/didOpen", {"textDocument": {"uri": f"file:///soak/{d}.py",
                                                                "languageId": "python", "version": 1,
                                                                "text": docs[f"file:///soak/{d}.py"]["text"]}})
    sent = answered = 0
    latencies, rss = [], []
    t0 = time.monotonic()
    seq = 0
    try:
        while time.monotonic() - t0 < SECONDS:
            uri = rng.choice(list(docs))
            doc = docs[uri]
            line = rng.randrange(0, doc["text"].count("\n"))
            burst = []
            for _ in range(rng.randrange(1, 5)):  # a typing storm: edits and requests, nothing awaited
                doc["version"] += 1
                ch = rng.choice("abc =().\n")
                server.notify("textDocument/didChange", {
                    "textDocument": {"uri": uri, "version": doc["version"]},
                    "contentChanges": [{"range": {"start": {"line": line, "character": 0},
                                                  "end": {"line": line, "character": 0}}, "text": ch}]})
                if ch == "\n":
                    line += 1
                seq += 1
                msg_id = server._id()
                server.send({"jsonrpc": "2.0", "id": msg_id, "method": "textDocument/inlineCompletion",
                             "params": {"textDocument": {"uri": uri}, "position": {"line": line, "character": 1 if ch != "\n" else 0},
                                        "context": {"triggerKind": 2}}})
                burst.append((msg_id, seq, time.monotonic()))
                sent += 1
            arrivals = []
            for msg_id, s, t in burst:
                reply = server.wait_response(msg_id, timeout=30)  # a hang fails here
                answered += 1
                latencies.append(time.monotonic() - t)
                items = reply.get("result", {}).get("items", []) if isinstance(reply.get("result"), dict) else []
                arrivals.append((time.monotonic(), s, bool(items)))
            for _, s, nonempty in sorted(arrivals):  # in arrival order, non-empty answers only move forward
                if nonempty:
                    assert s > doc["seq"], "an older suggestion arrived after a newer one"
                    doc["seq"] = s
            rss.append((time.monotonic() - t0, rss_mb(server.proc.pid)))
        assert server.proc.poll() is None
    finally:
        server.close()
    latencies.sort()
    later = [r for r in rss if r[0] > SECONDS / 2]  # after start-up allocations settle
    slope = slope_mb_per_min(later) if len(later) > 3 else 0.0
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    print("\nrss samples:", [(round(t), round(m)) for t, m in rss[::max(1, len(rss) // 20)]])
    print(f"\nsoak: {sent} requests over {SECONDS:.0f} s across {DOCS} documents; all answered; "
          f"p50 {latencies[len(latencies) // 2] * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms; "
          f"RSS {later[0][1] if later else 0:.0f} -> {rss[-1][1]:.0f} MB, slope {slope:+.1f} MB/min")
    assert answered == sent
    assert p99 < 10.0
    # MB per minute. A CI-length run is short: steps of the native allocator (KV caches of many sizes
    # come and go under the small budget) show up as tens of MB/min and vary run to run (23 to 60
    # seen). A leak of 30 KB per request at ~80 requests a second would climb ~145 MB/min; the long
    # run in docs/reliability.md is the figure to read for the slope itself.
    assert slope < 120.0
