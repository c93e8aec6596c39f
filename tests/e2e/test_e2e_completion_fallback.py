"""Who gets the `textDocument/completion` fallback, end to end through the real server process.

A client that shows ghost text must not also get the same suggestion in its suggestion list:
in VS Code each of those requests ran the model a second time, competed with the ghost-text
request and showed the text twice. The fallback is for editors without inline completion.
"""

from __future__ import annotations

import os

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.lsp_helpers import (
    SERVER,
    editor_capabilities,
    inline_params,
    open_doc,
    wait_for_state,
    watch_status,
)

pytestmark = pytest.mark.e2e
URI = "file:///work/shop.py"
TEXT = "def total(prices):\n    return sum(prices)\n\n\nprint(tot"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env={**os.environ}))
async def client(lsp_client: LanguageClient):
    """A started server, not yet initialized: each test says which editor it is."""
    yield
    await lsp_client.shutdown_session()


async def initialize(client: LanguageClient, pair, editor: str, **options) -> types.ServerCapabilities:
    client.status = watch_status(client)
    result = await client.initialize_session(types.InitializeParams(
        capabilities=editor_capabilities(editor),
        initialization_options={"target": str(pair[0]), "draft": str(pair[1]), "device": "cpu", "maxTokens": 6,
                                **options}))
    return result.capabilities


@pytest.mark.parametrize("editor,setting,fallback", [
    ("vscode", None, False),
    ("neovim-0.12", None, False),
    ("neovim-0.11", None, True),
    ("vscode", "auto", False),
    ("vscode", "always", True),
    ("neovim-0.11", "never", False),
])
async def test_completion_provider_only_where_wanted(client: LanguageClient, pair, editor, setting, fallback):
    options = {} if setting is None else {"completionFallback": setting}
    caps = await initialize(client, pair, editor, **options)
    assert caps.inline_completion_provider is not None
    assert (caps.completion_provider is not None) == fallback


async def test_neovim_011_gets_the_suggestion_as_a_completion_item(client: LanguageClient, pair):
    await initialize(client, pair, "neovim-0.11")
    assert (await wait_for_state(client.status))["state"] == "ready"
    open_doc(client, URI, TEXT)
    result = await client.text_document_completion_async(types.CompletionParams(
        types.TextDocumentIdentifier(URI), types.Position(4, 9)))
    assert isinstance(result, types.CompletionList)
    stats = await client.workspace_execute_command_async(types.ExecuteCommandParams("speclsp.stats"))
    assert [r["trigger"] for r in stats["requests"]] == ["completion"]


async def test_vscode_runs_the_model_for_ghost_text_only(client: LanguageClient, pair):
    """VS Code never asks for completion items here, and the ghost text still comes."""
    caps = await initialize(client, pair, "vscode")
    assert caps.completion_provider is None
    assert (await wait_for_state(client.status))["state"] == "ready"
    open_doc(client, URI, TEXT)
    result = await client.text_document_inline_completion_async(inline_params(URI, 4, 9))
    assert isinstance(result, types.InlineCompletionList)
    stats = await client.workspace_execute_command_async(types.ExecuteCommandParams("speclsp.stats"))
    assert [r["trigger"] for r in stats["requests"]] == ["automatic"]


async def test_fallback_turned_off_later_answers_empty_without_the_model(client: LanguageClient, pair):
    """A capability cannot be taken back, but its answers can stop costing anything."""
    caps = await initialize(client, pair, "neovim-0.11")
    assert caps.completion_provider is not None
    assert (await wait_for_state(client.status))["state"] == "ready"
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        {"speclsp": {"completionFallback": "never"}}))
    open_doc(client, URI, TEXT)
    result = await client.text_document_completion_async(types.CompletionParams(
        types.TextDocumentIdentifier(URI), types.Position(4, 9)))
    assert len(result.items) == 0
    stats = await client.workspace_execute_command_async(types.ExecuteCommandParams("speclsp.stats"))
    assert stats["requests"] == []  # the model was not asked
