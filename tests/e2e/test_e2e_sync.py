"""The server's copy of a document, end to end: what a completion is made for is the editor's text.

The inline item carries the cursor line it was made for (items.py), so the line's text in the
answer shows what the server holds."""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.lsp_helpers import SERVER, inline_params, insert, open_doc, wait_for_state, watch_status

pytestmark = pytest.mark.e2e
URI = "file:///work/sync.py"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, pair):
    lsp_client.status = watch_status(lsp_client)
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        initialization_options={"target": str(pair[0]), "draft": str(pair[1]), "device": "cpu", "maxTokens": 4}))
    assert (await wait_for_state(lsp_client.status))["state"] == "ready"
    yield
    await lsp_client.shutdown_session()


async def line_seen(client: LanguageClient, line: int, character: int) -> str:
    result = await client.text_document_inline_completion_async(inline_params(URI, line, character))
    assert result.items, "no suggestion to read the line from"
    item = result.items[0]
    assert item.range.start == types.Position(line, 0)
    return item.insert_text


async def test_a_form_feed_does_not_shift_later_edits(client: LanguageClient):
    open_doc(client, URI, "x = 1\x0cy = 2\nitems = [1, 2]\nfor i in ")
    insert(client, URI, 2, 2, 5, "tem")  # "for item in "
    assert (await line_seen(client, 2, 12)).startswith("for item in ")


async def test_an_edit_that_does_not_fit_is_refused_and_said_once(client: LanguageClient):
    open_doc(client, URI, "abc\ndef\n")
    insert(client, URI, 2, 1, 10, "X")  # past the end of line 1
    for _ in range(3):
        result = await client.text_document_inline_completion_async(inline_params(URI, 2, 0))
        assert not result.items
    await asyncio.sleep(0.2)
    said = [m.message for m in client.messages if "reopen" in m.message]
    assert len(said) == 1 and "sync.py" in said[0]
    # the whole text again (as a reopen does) mends it
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=3),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text="items = [1, 2]\nfor i in ")]))
    assert (await line_seen(client, 1, 9)).startswith("for i in ")
