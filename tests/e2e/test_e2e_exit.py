"""The server ends when the editor ends the session, even in the middle of model work.

Editors wait only a moment before killing a server that outlives `exit` (VS Code then logs an
error on every restart), and one that outlives its editor keeps a GPU busy. Here every model
forward takes a minute, so the worker is always busy when the session ends. The bound below is
generous on purpose: it tells "exits" from "hangs", not fast from slow (see docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import os

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
    open_doc,
    wait_for_state,
    watch_status,
)

pytestmark = pytest.mark.e2e
URI = "file:///work/busy.py"
EXITS_WITHIN_S = 10.0


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_DEFAULT_LOG,
                                              server_env={**os.environ, "SPECLSP_FAULTS": "slow_step_ms=60000"}))
async def client(lsp_client: LanguageClient, pair):
    lsp_client.stderr = ServerStderr(lsp_client)
    lsp_client.status = watch_status(lsp_client)
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=editor_capabilities("neovim-0.12"),
        initialization_options={"target": str(pair[0]), "draft": str(pair[1]), "device": "cpu"}))
    assert (await wait_for_state(lsp_client.status))["state"] == "ready"
    open_doc(lsp_client, URI, "def f(x):\n    return x\n")
    lsp_client.pending = asyncio.ensure_future(lsp_client.text_document_inline_completion_async(
        inline_params(URI, 1, 4)))  # starts a forward that would take a minute
    await asyncio.sleep(0.5)
    yield
    lsp_client.pending.cancel()
    await end_session(lsp_client)


async def exit_code(client: LanguageClient) -> int:
    await client.stderr.until_closed(EXITS_WITHIN_S)
    return await asyncio.wait_for(client.stderr.process.wait(), EXITS_WITHIN_S)


async def test_shutdown_and_exit_end_the_process(client: LanguageClient):
    client.ended = True
    await asyncio.wait_for(client.shutdown_async(None), EXITS_WITHIN_S)
    client.exit(None)
    assert await exit_code(client) == 0
    assert not [line for line in client.stderr.lines if "Traceback" in line or "SystemExit" in line]


async def test_exit_without_shutdown_ends_the_process_with_1(client: LanguageClient):
    client.ended = True
    client.exit(None)
    assert await exit_code(client) == 1  # LSP: 1 when no shutdown came first


async def test_closed_stdin_ends_the_process(client: LanguageClient):
    """The editor went away without a word (crashed, or killed)."""
    client.ended = True
    client.stderr.process.stdin.close()
    assert await exit_code(client) == 1


def test_the_server_ends_when_the_editor_process_is_gone(pair):
    """Something else still holds the server's stdin open, but the editor named in `processId` died."""
    import subprocess
    import sys

    from tests.raw_lsp import RawServer

    editor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    server = RawServer()
    try:
        server.request("initialize", {"processId": editor.pid, "rootUri": None, "capabilities": {},
                                      "initializationOptions": {"target": str(pair[0]), "draft": "none",
                                                                "device": "cpu"}})
        server.notify("initialized", {})
        assert server.proc.poll() is None
        editor.kill()
        editor.wait()
        assert server.proc.wait(EXITS_WITHIN_S) == 1
    finally:
        editor.kill()
        if server.proc.poll() is None:
            server.proc.kill()
