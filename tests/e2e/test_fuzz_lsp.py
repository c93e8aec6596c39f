"""Fuzz the LSP surface through the real server process, with hypothesis.

Two kinds of batches are sent to one long-lived server:
- well-framed JSON-RPC with arbitrary content: wrong parameter types, unknown methods, positions
  outside the document, huge and negative numbers, lone surrogates, NUL bytes, binary text,
  open/close storms, requests for closed or never-opened documents, duplicate ids. Every request
  must get a well-formed answer (a result, or an error with an integer code);
- malformed frames: bad or missing Content-Length, truncated bodies, invalid JSON, bytes that are
  not UTF-8, oversized lengths. Nothing can be answered there, but the process must live and the
  next valid request must work.
After every batch a probe request must be answered. The total message count is printed.
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.raw_lsp import RawServer

pytestmark = pytest.mark.e2e
URIS = ["file:///w/a.py", "file:///w/b.py", "file:///w/never.py", "untitled:c"]
MARKER = "FUZZ_CODE_MARKER_9e3b"  # sent as document text, settings and params: must never reach the log
EXAMPLES = int(os.environ.get("SPECLSP_FUZZ_EXAMPLES", "180"))  # about 10,500 messages in all (the examples follow the module name)
SENT = {"messages": 0}

texts = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=100).map(lambda s: "def f():\n    " + s),
    st.binary(max_size=100).map(lambda b: b.decode("latin-1")),
    st.sampled_from([f"x = '{MARKER}'\n", MARKER, "\ud800", "a\x00b", "😀中文\n" * 30, "\udfff\ud800x", "x" * 5000]),
)
numbers = st.one_of(st.integers(-5, 40), st.sampled_from([-(2**31), 2**31 - 1, 2**53, 10**30]))
anything = st.recursive(st.none() | st.booleans() | numbers | st.text(max_size=20) | st.just(MARKER),
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                    max_size=3), max_leaves=8)


@st.composite
def message(draw):
    """One JSON-RPC message: (dict, is_request)."""
    uri = draw(st.sampled_from(URIS))
    pos = {"line": draw(numbers), "character": draw(numbers)}
    kind = draw(st.sampled_from(["open", "change", "close", "inline", "completion", "wrong", "unknown",
                                 "command", "unknown_note", "garbage_params"]))
    if kind == "open":
        return {"method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "python", "version": draw(numbers), "text": draw(texts)}}}, False
    if kind == "change":
        rng = {"start": pos, "end": {"line": draw(numbers), "character": draw(numbers)}}
        return {"method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": draw(numbers)},
            "contentChanges": [{"range": rng, "text": draw(texts)}]}}, False
    if kind == "close":
        return {"method": "textDocument/didClose", "params": {"textDocument": {"uri": uri}}}, False
    if kind in ("inline", "completion"):
        method = "textDocument/inlineCompletion" if kind == "inline" else "textDocument/completion"
        params = {"textDocument": {"uri": uri}, "position": pos, "context": {"triggerKind": draw(st.integers(0, 3))}}
        return {"method": method, "params": params}, True
    if kind == "wrong":
        return {"method": draw(st.sampled_from(["textDocument/inlineCompletion", "textDocument/completion",
                                                "workspace/executeCommand"])), "params": draw(anything)}, True
    if kind == "unknown":
        return {"method": draw(st.text(min_size=1, max_size=30)), "params": draw(anything)}, True
    if kind == "command":
        return {"method": "workspace/executeCommand", "params": {
            "command": draw(st.sampled_from(["speclsp.stats", "speclsp.accepted", "nope"])),
            "arguments": draw(st.lists(anything, max_size=2))}}, True
    if kind == "unknown_note":
        return {"method": "$/" + draw(st.text(max_size=10)), "params": draw(anything)}, False
    return {"method": "workspace/didChangeConfiguration", "params": {"settings": draw(anything)}}, False


malformed = st.one_of(
    st.binary(max_size=60).map(lambda b: b"Content-Length: " + str(len(b)).encode() + b"\r\n\r\n" + b),
    st.sampled_from([b"Content-Length: abc\r\n\r\n{}", b"Content-Length: -5\r\n\r\n",
                     b"Content-Length: 10\r\n\r\n{\"json", b"\r\n\r\n\r\n", b"garbage without headers\n",
                     b"Content-Length: 99999999999\r\n\r\n{}", b"Content-Length: 4\r\n\r\n\xff\xfe\xfd\xfc",
                     b"Content-Length: 2\r\n\r\n[]", b"Content-Length: 4\r\n\r\nnull",
                     b'Content-Length: 17\r\n\r\n{"jsonrpc":"2.0"}']),
)


@pytest.fixture(scope="module")
def server(pair, tmp_path_factory):
    log_file = tmp_path_factory.mktemp("fuzzlog") / "server.log"
    s = RawServer(args=["--log-file", str(log_file)])  # the default level
    s.initialize({"target": str(pair[0]), "draft": str(pair[1]), "device": "cpu", "maxTokens": 2,
                  "maxDocumentChars": 200_000})
    assert s.wait_status()["state"] == "ready"
    yield s
    print(f"\nfuzz: {SENT['messages']} messages sent to one server process; it answered every probe")
    assert s.proc.poll() is None, "the server died"
    if "SPECLSP_FUZZ_EXAMPLES" not in os.environ:
        assert SENT["messages"] >= 10_000
    assert s.close() in (0, 1)
    log = log_file.read_text()
    assert "request" in log and MARKER not in log, "code reached the log"


def probe(s: RawServer) -> None:
    """The next valid request works (after malformed frames the stream may need a few tries)."""
    for _ in range(4):
        s.write_raw(b"\r\n")
        try:
            reply = s.request("workspace/executeCommand", {"command": "speclsp.stats"}, timeout=8)
            assert "result" in reply and isinstance(reply["result"]["requests"], list)
            SENT["messages"] += 1
            return
        except TimeoutError:
            SENT["messages"] += 1
    raise AssertionError("the server stopped answering")


def is_well_formed(reply: dict) -> bool:
    if "error" in reply:
        return isinstance(reply["error"], dict) and isinstance(reply["error"].get("code"), int)
    return "result" in reply


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(batch=st.lists(message(), min_size=40, max_size=80), dup=st.booleans())
def test_well_framed_messages_all_get_answers(server, batch, dup):
    assert server.proc.poll() is None
    ids = []
    for msg, is_request in batch:
        body = {"jsonrpc": "2.0", **msg}
        if is_request:
            body["id"] = server._id() if not (dup and ids) else ids[-1]  # a duplicate id now and then
            if body["id"] not in ids:
                ids.append(body["id"])
        server.send(body)
    SENT["messages"] += len(batch)
    for msg_id in ids:
        assert is_well_formed(server.wait_response(msg_id, timeout=30)), msg_id
    probe(server)


@settings(max_examples=max(EXAMPLES // 2, 10), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(frames=st.lists(malformed, min_size=1, max_size=10))
def test_malformed_frames_never_kill_the_server(server, frames):
    for frame in frames:
        server.write_raw(frame)
    SENT["messages"] += len(frames)
    probe(server)
    assert server.proc.poll() is None


def test_parse_error_is_answered_with_null_id(server):
    probe(server)
    server.write_raw(b"Content-Length: 9\r\n\r\n{not json")
    while True:
        msg = server.inbox.get(timeout=10)
        if "error" in msg:
            break
    assert msg["id"] is None and msg["error"]["code"] == -32700
    probe(server)


def test_document_over_the_size_limit_is_answered_empty_and_named(server):
    big = "x = 1\n" * 40_000  # 240,000 characters, over the 200,000 configured
    server.notify("textDocument/didOpen", {"textDocument": {"uri": "file:///w/big.py", "languageId": "python",
                                                            "version": 1, "text": big}})
    reply = server.request("textDocument/inlineCompletion", {
        "textDocument": {"uri": "file:///w/big.py"}, "position": {"line": 1, "character": 0},
        "context": {"triggerKind": 1}})
    assert reply["result"]["items"] == []  # an error would be a toast per keystroke in VS Code
    said = [m["params"]["message"] for m in server.notifications if m["method"] == "speclsp/status"]
    assert any("maxDocumentChars" in m for m in said)
    probe(server)


def test_duplicate_request_ids_are_each_answered(server):
    server.notify("textDocument/didOpen", {"textDocument": {"uri": URIS[0], "languageId": "python", "version": 1,
                                                            "text": "x = 1\n"}})
    for _ in range(2):
        server.send({"jsonrpc": "2.0", "id": "same", "method": "workspace/executeCommand",
                     "params": {"command": "speclsp.stats"}})
    assert is_well_formed(server.wait_response("same"))
    assert is_well_formed(server.wait_response("same"))
    assert json.dumps(SENT)  # counts are reported at module teardown
