"""What a typed client would never send: wrong types, unknown methods. The server answers and goes on."""

from __future__ import annotations

import pytest

from tests.raw_lsp import RawServer

pytestmark = pytest.mark.e2e
URI = "file:///w/a.py"


@pytest.fixture
def server(pair):
    s = RawServer()
    s.initialize({"target": str(pair[0]), "draft": str(pair[1]), "device": "cpu", "maxTokens": 6})
    assert s.wait_status()["state"] == "ready"
    s.notify("textDocument/didOpen", {"textDocument": {"uri": URI, "languageId": "python", "version": 1,
                                                       "text": "def f(x):\n    return x\n"}})
    yield s
    s.close()


def inline(s: RawServer, line=1, character=4, **over) -> dict:
    params = {"textDocument": {"uri": URI}, "position": {"line": line, "character": character},
              "context": {"triggerKind": 1}, **over}
    return s.request("textDocument/inlineCompletion", params)


@pytest.mark.parametrize("params", [
    {"textDocument": {"uri": URI}, "position": {"line": "one", "character": None}, "context": {"triggerKind": 1}},
    {"textDocument": 5, "position": {"line": 0, "character": 0}, "context": {"triggerKind": 1}},
    {"position": {"line": 0, "character": 0}},
    [1, 2, 3],
    None,
])
def test_wrong_types_give_an_error_and_the_server_goes_on(server, params):
    reply = server.request("textDocument/inlineCompletion", params)
    assert "error" in reply and isinstance(reply["error"]["code"], int)
    assert "result" in inline(server)


def test_unknown_method_is_method_not_found(server):
    reply = server.request("speclsp/doesNotExist", {})
    assert reply["error"]["code"] == -32601
    assert "result" in inline(server)


def test_negative_and_huge_positions(server):
    for line, ch in [(-1, 0), (0, -5), (2**31, 0), (0, 2**31)]:
        reply = inline(server, line, ch)
        assert "error" in reply, (line, ch, reply)
    assert "result" in inline(server)
