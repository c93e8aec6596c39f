"""Every message that carries an id gets an answer, through the real server process, and no
document text reaches the log at the default level."""

from __future__ import annotations

import json

import pytest

from tests.raw_lsp import RawServer

pytestmark = pytest.mark.e2e
MARKER = "SECRET_CODE_MARKER_7d1f"


@pytest.fixture(scope="module")
def server(pair, tmp_path_factory):
    log_file = tmp_path_factory.mktemp("log") / "server.log"
    s = RawServer(args=["--log-file", str(log_file)])
    s.log_file = log_file
    s.initialize({"target": str(pair[0]), "draft": str(pair[1]), "device": "cpu", "maxTokens": 2})
    assert s.wait_status()["state"] == "ready"
    yield s
    s.close()


def stats_request(msg_id) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": "workspace/executeCommand",
                       "params": {"command": "speclsp.stats"}}).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def answered(server: RawServer, msg_id) -> dict:
    reply = server.wait_response(msg_id, timeout=15)
    assert "result" in reply or isinstance(reply["error"]["code"], int)
    return reply


@pytest.mark.parametrize("bad", [
    b'Content-Length: 5\r\n\r\n{"a": 1, "b": 2}',  # body longer than announced
    b"content-length: 2\r\n\r\n[]",  # lower-case header name (a valid frame, then the request)
    b"Content-Length: -5\r\n\r\n{}",
    b"Content-Length: 99999999999\r\n\r\n{}",  # announced far over the limit
])
def test_a_bad_frame_loses_no_later_request(server, bad):
    msg_id = f"after-{bad[:20]!r}"
    server.write_raw(bad + stats_request(msg_id))
    assert "result" in answered(server, msg_id)


def test_length_counted_in_characters_loses_only_that_message(server):
    body = json.dumps({"jsonrpc": "2.0", "method": "$/noop", "params": {"t": "é" * 20}}, ensure_ascii=False)
    server.write_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body.encode() + stats_request("after-chars"))
    server.write_raw(stats_request("after-chars-2"))
    assert "result" in answered(server, "after-chars-2")


def test_deep_nesting_is_answered_with_its_id(server):
    deep = "[" * 100_000 + "]" * 100_000
    body = ('{"jsonrpc": "2.0", "id": 77, "method": "workspace/executeCommand", "params": ' + deep + "}").encode()
    server.write_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    assert answered(server, 77)["error"]["code"] == -32600


def test_a_notification_sent_with_an_id_is_answered(server):
    server.send({"jsonrpc": "2.0", "id": 78, "method": "textDocument/didClose",
                 "params": {"textDocument": {"uri": "file:///w/none.py"}}})
    assert answered(server, 78)["error"]["code"] == -32600


def test_not_json_rpc_2_is_answered_and_its_text_not_logged(server):
    server.send({"jsonrpc": "1.0", "id": 79, "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": "file:///w/m.py", "languageId": "python", "version": 1, "text": f"x = '{MARKER}'\n"}}})
    assert answered(server, 79)["error"]["code"] == -32600
    server.send({"jsonrpc": "1.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": "file:///w/m.py", "languageId": "python", "version": 1, "text": f"y = '{MARKER}'\n"}}})
    assert "result" in server.request("workspace/executeCommand", {"command": "speclsp.stats"})
    assert MARKER not in server.log_file.read_text()


def test_requests_after_shutdown_get_invalid_request(pair):
    s = RawServer()
    try:
        s.initialize({"target": str(pair[0]), "draft": "none", "device": "cpu"})
        assert "result" in s.request("shutdown", None)
        reply = s.request("workspace/executeCommand", {"command": "speclsp.stats"}, timeout=10)
        assert reply["error"]["code"] == -32600
        s.notify("exit", None)
        assert s.proc.wait(10) == 0
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
