"""`speclsp serve --tcp`: a second connection cannot see the first client's code, a client without
the token gets nothing, and a client that comes later starts from an empty session."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time

import pytest

from tests.engine.test_security import free_port

pytestmark = pytest.mark.e2e
SECRET = "SECRET_CODE_c0ffee"


class TcpClient:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")
        self.next_id = 0

    def send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def read(self) -> dict | None:
        length = 0
        while True:
            line = self.file.readline()
            if not line:
                return None
            if not line.strip():
                break
            if line.lower().startswith(b"content-length"):
                length = int(line.split(b":")[1])
        return json.loads(self.file.read(length))

    def request(self, method: str, params) -> dict:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        while (msg := self.read()) is not None:
            if msg.get("id") == self.next_id and "method" not in msg:
                return msg
            if "method" in msg and "id" in msg:  # the server asks something (progress): answer it
                self.send({"id": msg["id"], "result": None})
        raise ConnectionError("closed")

    def wait_ready(self) -> None:
        while (msg := self.read()) is not None:
            if msg.get("method") == "speclsp/status" and msg["params"]["state"] in ("ready", "error"):
                assert msg["params"]["state"] == "ready", msg
                return
            if "method" in msg and "id" in msg:
                self.send({"id": msg["id"], "result": None})
        raise ConnectionError("closed before ready")

    def close(self) -> None:
        self.file.close()  # the socket stays open while its file is
        self.sock.close()


@pytest.fixture
def tcp_server(tmp_path, pair):
    port, token_file = free_port(), tmp_path / "run" / "token"
    proc = subprocess.Popen([sys.executable, "-m", "lsp_server", "serve", "--tcp", f"127.0.0.1:{port}",
                             "--token-file", str(token_file), "--target", str(pair[0]), "--draft", str(pair[1]),
                             "--device", "cpu", "--log-file", str(tmp_path / "log")],
                            env={k: v for k, v in os.environ.items() if k != "SPECLSP_TCP_TOKEN"})
    log = tmp_path / "log"
    for _ in range(300):  # not probed by connecting: a probe would be a client of its own
        if log.exists() and "listening on" in log.read_text():
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the server did not listen")
    yield port, token_file.read_text().strip(), token_file
    proc.kill()
    proc.wait(5)


def initialize(client: TcpClient, token: str | None) -> dict:
    options = {"maxTokens": 4} | ({"token": token} if token is not None else {})
    return client.request("initialize", {"processId": None, "rootUri": None, "capabilities": {},
                                         "initializationOptions": options})


def connect_when_free(port: int, token: str) -> TcpClient:
    """Connect once the previous client's session has ended (until then connections are closed)."""
    for _ in range(100):
        client = TcpClient(port)
        try:
            if "result" in initialize(client, token):
                return client
        except (ConnectionError, OSError):
            pass
        client.close()
        time.sleep(0.2)
    raise AssertionError("the server never took a new client")


def open_and_complete(client: TcpClient, uri: str) -> dict:
    client.send({"method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": f"key = '{SECRET}'\nvalue = "}}})
    return client.request("textDocument/inlineCompletion", {"textDocument": {"uri": uri},
                                                           "position": {"line": 1, "character": 8},
                                                           "context": {"triggerKind": 1}})


def test_the_token_file_is_private(tcp_server):
    _, token, token_file = tcp_server
    assert len(token) >= 32
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700


def test_a_client_without_the_token_gets_nothing(tcp_server):
    port, token, _ = tcp_server
    for bad in (None, "wrong", token[:-1]):
        intruder = TcpClient(port)
        reply = initialize(intruder, bad)
        assert reply["error"]["code"] == -32600 and "token" in reply["error"]["message"]
        assert intruder.read() is None  # and the connection is closed
        intruder.close()
    intruder = TcpClient(port)  # skipping initialize does not help either
    intruder.send({"id": 5, "method": "workspace/executeCommand", "params": {"command": "speclsp.stats"}})
    assert intruder.read()["error"]["code"] == -32600
    intruder.close()


def test_a_second_connection_sees_nothing_of_the_first(tcp_server):
    port, token, _ = tcp_server
    first = TcpClient(port)
    assert "result" in initialize(first, token)
    first.send({"method": "initialized", "params": {}})
    first.wait_ready()
    second = TcpClient(port)  # while the first is connected
    first_answer = open_and_complete(first, "file:///w/first.py")
    assert "result" in first_answer
    second.sock.settimeout(5)
    assert second.read() is None, "the second connection must be closed, and receive nothing"
    second.close()
    first.close()
    # a later client, with the token, starts from an empty session: the first one's document is gone
    later = connect_when_free(port, token)
    later.send({"method": "initialized", "params": {}})
    stats = later.request("workspace/executeCommand", {"command": "speclsp.stats"})
    assert stats["result"]["requests"] == []
    reply = later.request("textDocument/inlineCompletion", {"textDocument": {"uri": "file:///w/first.py"},
                                                            "position": {"line": 1, "character": 8},
                                                            "context": {"triggerKind": 1}})
    assert SECRET not in json.dumps(reply)
    assert "error" in reply or reply["result"]["items"] == []
    later.close()
