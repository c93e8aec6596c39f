"""What the editor shows the user, end to end through the real server process.

`window/showMessage` interrupts: VS Code raises a toast, Neovim prints it and, past one line,
stops for Press-ENTER, swallowing the next key. It is kept for problems the user must act on.
Everything else goes to the status notification and the log, and the log does not go to stderr,
which editors mark as errors line by line.
"""

from __future__ import annotations

import asyncio
import os
import re

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.lsp_helpers import (
    SERVER_DEFAULT_LOG,
    ServerStderr,
    editor_capabilities,
    end_session,
    inline_params,
    insert,
    open_doc,
    wait_for_state,
    watch_status,
)

pytestmark = pytest.mark.e2e
SMALL, BIG = "file:///work/small.py", "file:///work/big.py"
MARKER = "zebra_quokka_ledger"  # document text that must never reach a log


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_DEFAULT_LOG, server_env=env()))
async def client(lsp_client: LanguageClient):
    """A started server at its default log level, not yet initialized."""
    lsp_client.stderr = ServerStderr(lsp_client)
    yield
    await end_session(lsp_client)


async def initialize(client: LanguageClient, editor: str, options: dict) -> dict:
    client.status = watch_status(client)
    await client.initialize_session(types.InitializeParams(
        capabilities=editor_capabilities(editor), initialization_options={"device": "cpu", **options}))
    return await wait_for_state(client.status, timeout=120)


def tiny(pair, **options) -> dict:
    return {"target": str(pair[0]), "draft": str(pair[1]), "maxTokens": 6, **options}


async def test_documents_over_the_limit_answer_empty_and_say_so_once(client: LanguageClient, pair):
    assert (await initialize(client, "vscode", tiny(pair, maxDocumentChars=200, completionFallback="always")))["state"] == "ready"
    open_doc(client, BIG, "x = 1\n" * 50)  # 300 characters
    open_doc(client, SMALL, "x = 1\n")
    for version in range(2, 5):  # keystrokes in the big document
        insert(client, BIG, version, 50, 0, "y")
        result = await client.text_document_inline_completion_async(inline_params(BIG, 50, 1))
        assert len(result.items) == 0
    await client.text_document_completion_async(types.CompletionParams(
        types.TextDocumentIdentifier(BIG), types.Position(50, 1)))  # the fallback path says nothing more
    await client.text_document_inline_completion_async(inline_params(SMALL, 1, 0))
    await asyncio.sleep(0.2)  # let the last notifications arrive
    said = [m.message for m in client.log_messages if "maxDocumentChars" in m.message]
    assert len(said) == 1 and "big.py" in said[0], said
    assert any("maxDocumentChars" in s.get("message", "") for s in client.status)
    assert client.messages == []  # no toast, let alone one per keystroke
    stats = await client.workspace_execute_command_async(types.ExecuteCommandParams("speclsp.stats"))
    assert [r["uri"] for r in stats["requests"]] == [SMALL]  # the model never saw the big document


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_DEFAULT_LOG, server_env=env(
    HF_HUB_CACHE="/nonexistent/speclsp-test-hf-cache", HF_HUB_OFFLINE="1")))
async def demo_client(lsp_client: LanguageClient):
    """No CodeLlama-7b in the (empty) Hugging Face cache: the server falls back to the demo models."""
    yield
    await end_session(lsp_client)


async def test_demo_model_notice_is_logged_once_and_never_a_prompt(demo_client: LanguageClient):
    client = demo_client
    ready = await initialize(client, "neovim-0.12", {})
    assert ready["state"] == "ready"
    assert "\n" not in ready["message"] and "demo" in ready["message"]
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        {"speclsp": {"dtype": "float32"}}))  # reloads the models, and with them the notice
    client.status.clear()
    assert (await wait_for_state(client.status, timeout=120))["state"] == "ready"
    await asyncio.sleep(0.2)
    notices = [m for m in client.log_messages if "not on this machine" in m.message]
    assert len(notices) == 1 and notices[0].type == types.MessageType.Info
    assert client.messages == []


async def test_info_goes_to_the_client_log_and_stderr_stays_quiet(client: LanguageClient, pair):
    assert (await initialize(client, "neovim-0.12", tiny(pair)))["state"] == "ready"
    open_doc(client, SMALL, f"def {MARKER}(x):\n    return x\n\n\n{MARKER}(")
    result = await client.protocol.send_request_async(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(SMALL, 4, len(MARKER) + 1), msg_id="answered")
    shown = result.items[0].insert_text if result.items else ""
    client.cancel_request(types.CancelParams(id="answered"))  # VS Code's cancel often crosses the answer
    await client.workspace_execute_command_async(types.ExecuteCommandParams("speclsp.stats"))  # after the cancel
    client.ended = True
    await client.shutdown_async(None)
    client.exit(None)
    stderr = await client.stderr.until_closed()
    info = [m.message for m in client.log_messages if m.type == types.MessageType.Info]
    assert any("models ready" in m for m in info) and any("latency_ms" in m for m in info), info
    assert not [line for line in stderr if re.search(r"\b(INFO|DEBUG)\b|it/s\]|[Cc]ancel", line)], stderr
    logged = "\n".join([m.message for m in client.log_messages] + stderr)
    assert MARKER not in logged
    if len(shown.strip()) >= 6:  # long enough not to occur by chance (the tiny model's text is noise)
        assert shown.strip() not in logged


def test_pygls_records_lose_what_may_be_code():
    import logging

    from lsp_server.lsp.client_log import withhold_pygls_details

    marker = "CODE MARKER 5a1"
    params = {"textDocument": {"text": f"x = '{marker}'"}}
    record = logging.LogRecord("pygls.protocol.json_rpc", logging.ERROR, __file__, 1,
                               "Failed to handle request %s %s %s", (7, "textDocument/didOpen", params), None)
    try:
        raise ValueError(marker)
    except ValueError:
        import sys
        record.exc_info = sys.exc_info()
    assert withhold_pygls_details(record)
    text = logging.Formatter().format(record)
    assert marker not in text and "textDocument/didOpen" in text and "ValueError" in text
    record = logging.LogRecord("pygls.protocol.json_rpc", logging.ERROR, __file__, 1,
                               "Unable to deserialize message\n%s", (f"Traceback ... {marker}",), None)
    withhold_pygls_details(record)
    assert marker not in logging.Formatter().format(record)


def test_a_setting_changed_while_loading_is_applied(pair):
    """A model setting changed while the first load runs starts a new load once it ends."""
    from tests.raw_lsp import RawServer

    s = RawServer()
    try:
        s.initialize({"target": str(pair[0]), "draft": str(pair[1]), "device": "cpu"})
        s.notify("workspace/didChangeConfiguration", {"settings": {"speclsp": {"draft": "none"}}})
        for _ in range(3):  # the first ready may be skipped, never the last one
            status = s.wait_status(timeout=120)
            if status.get("models", {}).get("draft", "x") is None:
                break
        assert status["state"] == "ready" and status["models"]["draft"] is None, status
    finally:
        s.close()
