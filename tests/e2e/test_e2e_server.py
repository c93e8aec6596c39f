"""End to end through the real server process: `python -m lsp_server serve` over stdio."""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.lsp_helpers import (
    SERVER,
    inline_params,
    insert,
    open_doc,
    request_then_cancel,
    wait_for_state,
    watch_status,
)

pytestmark = pytest.mark.e2e
URI = "file:///work/example.py"
OTHER = "file:///work/other.py"
TEXT = "import os\n\n\ndef greet(name):\n    return 'héllo 😀 ' + name\n\n\nprint(greet('中文'))\n"


async def start(lsp_client: LanguageClient, pair, **options):
    lsp_client.status = watch_status(lsp_client)
    lsp_client.init_result = await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        initialization_options={"target": str(pair[0]), "draft": str(pair[1]), "device": "cpu", **options}))
    state = await wait_for_state(lsp_client.status)
    assert state["state"] == "ready", state


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, pair):
    await start(lsp_client, pair, maxTokens=12, bogusKey=1)
    yield
    await lsp_client.shutdown_session()


# every model forward takes 150 ms here, so a request is still running when the next one comes
@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env={"SPECLSP_FAULTS": "slow_step_ms=150"}))
async def slow_client(lsp_client: LanguageClient, pair):
    await start(lsp_client, pair, maxTokens=8, timeBudgetMs=30000)
    yield
    await lsp_client.shutdown_session()


async def test_capabilities_and_status(client: LanguageClient):
    caps = client.init_result.capabilities
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    assert caps.text_document_sync.change == types.TextDocumentSyncKind.Incremental
    assert {"speclsp.stats", "speclsp.accepted"} <= set(caps.execute_command_provider.commands)
    assert caps.position_encoding == types.PositionEncodingKind.Utf16
    states = [s["state"] for s in client.status]
    assert states[0] == "loading" and "ready" in states
    # the client's progress bar: begin, reports, end
    loads = [r for token, r in client.progress_reports.items() if str(token).startswith("speclsp-load")]
    assert loads and loads[0][0].kind == "begin" and loads[0][-1].kind == "end"
    # the unknown setting was reported once, as a message
    assert any("bogusKey" in m.message for m in client.messages)


async def test_inline_completion_and_stats(client: LanguageClient):
    open_doc(client, URI, TEXT)
    result = await client.text_document_inline_completion_async(inline_params(URI, 5, 0))
    assert isinstance(result, types.InlineCompletionList)
    assert len(result.items) <= 1
    stats = await client.workspace_execute_command_async(types.ExecuteCommandParams("speclsp.stats"))
    last = stats["requests"][-1]
    assert last["uri"] == URI and last["cancelled"] is False and last["trigger"] == "automatic"
    for key in ("prompt_tokens", "reused_tokens", "prefill_tokens", "generated_tokens", "target_forwards",
                "drafted_tokens", "accepted_tokens", "latency_ms"):
        assert key in last, key
    assert last["prompt_tokens"] > 10 and last["generated_tokens"] >= 1
    if result.items:
        item = result.items[0]
        assert item.insert_text and item.command.command == "speclsp.accepted"
        await client.workspace_execute_command_async(types.ExecuteCommandParams("speclsp.accepted", item.command.arguments))
        stats = await client.workspace_execute_command_async(types.ExecuteCommandParams("speclsp.stats"))
        assert stats["requests"][-1].get("accepted") is True


async def test_completion_fallback(client: LanguageClient):
    open_doc(client, URI, TEXT)
    result = await client.text_document_completion_async(types.CompletionParams(
        types.TextDocumentIdentifier(URI), types.Position(4, 11)))
    assert isinstance(result, types.CompletionList)
    stats = await client.workspace_execute_command_async(types.ExecuteCommandParams("speclsp.stats"))
    assert stats["requests"][-1]["trigger"] == "completion"
    for item in result.items:  # the tiny model may have nothing to say; when it does, the item is whole
        assert item.insert_text_format == types.InsertTextFormat.Snippet  # VS Code takes snippets
        assert item.text_edit.range.start == item.text_edit.range.end == types.Position(4, 11)
        assert item.text_edit.new_text and item.command.command == "speclsp.accepted"


async def test_utf16_positions_after_emoji(client: LanguageClient):
    text = "s = '😀😀'\nt = '中文"
    open_doc(client, URI, text)
    # after the two emoji and the closing quote: 4 + 2*2 + 1 = 9 UTF-16 units
    await client.text_document_inline_completion_async(inline_params(URI, 0, 9))
    with pytest.raises(JsonRpcException, match="inside a multi-unit"):
        await client.text_document_inline_completion_async(inline_params(URI, 0, 6))
    insert(client, URI, 2, 1, 7, "x")  # incremental edit after CJK text, in UTF-16 units
    await client.text_document_inline_completion_async(inline_params(URI, 1, 8))


@pytest.mark.parametrize("uri,line,char,match", [
    ("file:///never-opened.py", 0, 0, "not open"),
    (URI, 99, 0, "past the end"),
    (URI, 0, 500, "past the end"),
])
async def test_bad_params_give_errors_and_server_keeps_serving(client: LanguageClient, uri, line, char, match):
    open_doc(client, URI, TEXT)
    with pytest.raises(JsonRpcException, match=match):
        await client.text_document_inline_completion_async(inline_params(uri, line, char))
    ok = await client.text_document_inline_completion_async(inline_params(URI, 1, 0))
    assert isinstance(ok, types.InlineCompletionList)


async def test_config_change_applies_and_bad_values_are_reported(client: LanguageClient):
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        {"speclsp": {"maxTokens": 3, "fimOrder": "sideways"}}))
    open_doc(client, URI, TEXT)
    await client.text_document_inline_completion_async(inline_params(URI, 5, 0))
    stats = await client.workspace_execute_command_async(types.ExecuteCommandParams("speclsp.stats"))
    assert stats["requests"][-1]["generated_tokens"] <= 3
    await asyncio.sleep(0.1)
    assert sum("fimOrder" in m.message for m in client.messages) == 1


async def test_cancel_request(slow_client: LanguageClient):
    client = slow_client
    open_doc(client, URI, TEXT)
    await request_then_cancel(client, inline_params(URI, 6, 0), "r7", after_s=0.3)
    stats = await client.workspace_execute_command_async(types.ExecuteCommandParams("speclsp.stats"))
    assert stats["requests"][-1]["cancelled"] is True
    ok = await client.text_document_inline_completion_async(inline_params(URI, 1, 0))
    assert isinstance(ok, types.InlineCompletionList)


async def test_newest_request_wins_without_cancel(slow_client: LanguageClient):
    """Neovim 0.12 never cancels: older requests for a document must be answered at once, empty."""
    client = slow_client
    open_doc(client, URI, TEXT)
    old = [asyncio.ensure_future(client.text_document_inline_completion_async(inline_params(URI, 6, 0)))
           for _ in range(3)]
    await asyncio.sleep(0.3)
    newest = asyncio.ensure_future(client.text_document_inline_completion_async(inline_params(URI, 5, 0)))
    older = await asyncio.wait_for(asyncio.gather(*old), 1.0)  # answered before the newest is done
    assert all(len(r.items) == 0 for r in older)
    assert not newest.done()
    assert isinstance(await newest, types.InlineCompletionList)
    stats = await client.workspace_execute_command_async(types.ExecuteCommandParams("speclsp.stats"))
    flags = sorted((r["id"], r["cancelled"]) for r in stats["requests"][-4:])
    assert [f for _, f in flags] == [True, True, True, False]


CANDIDATES = [(6, 0), (5, 0), (4, 4), (4, 29), (1, 0)]  # places in TEXT: line ends, an empty line, mid-line


async def first_answer(client: LanguageClient, uri: str) -> tuple[tuple[int, int], types.InlineCompletionItem]:
    """The first candidate place where the tiny model has something to say (greedy: it always will)."""
    for line, char in CANDIDATES:
        result = await client.text_document_inline_completion_async(inline_params(uri, line, char))
        if result.items:
            return (line, char), result.items[0]
    pytest.fail(f"the tiny model suggested nothing at any of {CANDIDATES}")


async def test_inline_item_replaces_the_cursor_line(client: LanguageClient):
    """An item carries the line it was made for: it replaces the whole cursor line with that line
    plus the suggestion, so a client can tell whether it still fits after more typing."""
    open_doc(client, URI, TEXT)
    for line, char in CANDIDATES:
        result = await client.text_document_inline_completion_async(inline_params(URI, line, char))
        if not result.items:
            continue
        item, text = result.items[0], TEXT.split("\n")[line]
        cut = len(text.encode("utf-16-le")[:2 * char].decode("utf-16-le"))  # UTF-16 units to characters
        before, after = text[:cut], text[cut:]
        assert item.range == types.Range(types.Position(line, 0),
                                         types.Position(line, len(text.encode("utf-16-le")) // 2))
        assert item.insert_text.startswith(before) and item.insert_text.endswith(after)
        assert len(item.insert_text) > len(text), "the item suggests nothing"


async def test_answer_for_a_document_that_changed_meanwhile_is_empty(slow_client: LanguageClient):
    """Neovim shows an answer that arrives after the user typed on, and Tab would insert it: an
    answer computed for a document version that changed while it ran is answered empty."""
    client = slow_client
    other = "file:///work/other.py"
    open_doc(client, other, TEXT)
    (line, char), _ = await first_answer(client, other)  # the same text elsewhere: a non-empty answer
    open_doc(client, URI, TEXT)
    pending = asyncio.ensure_future(client.text_document_inline_completion_async(inline_params(URI, line, char)))
    await asyncio.sleep(0.3)  # the request is running (150 ms per model forward)
    insert(client, URI, 2, 0, 0, "#")  # the user types on, above the cursor
    result = await pending
    assert not result.items
    stats = await client.workspace_execute_command_async(types.ExecuteCommandParams("speclsp.stats"))
    assert stats["requests"][-1]["text_chars"] > 0, "the model had a suggestion: it was withheld, not empty"


async def test_newest_request_after_a_cancelled_queued_one_is_answered(slow_client: LanguageClient, capfd):
    """VS Code cancels a superseded request while it still waits behind model work, then sends the
    next: that next one (the newest) gets a result, and nothing is logged as an exception."""
    client = slow_client
    open_doc(client, URI, TEXT)
    open_doc(client, OTHER, TEXT)
    busy = asyncio.ensure_future(client.text_document_inline_completion_async(inline_params(OTHER, 6, 0)))
    await asyncio.sleep(0.3)  # the worker is on OTHER: the next request for URI waits in the queue
    await request_then_cancel(client, inline_params(URI, 6, 0), "queued", after_s=0.1)
    newest = await client.text_document_inline_completion_async(inline_params(URI, 5, 0))
    assert isinstance(newest, types.InlineCompletionList)
    assert isinstance(await busy, types.InlineCompletionList)
    stats = await client.workspace_execute_command_async(types.ExecuteCommandParams("speclsp.stats"))
    last = [r for r in stats["requests"] if r["uri"] == URI][-1]
    assert last["cancelled"] is False and "error" not in last
    assert last["generated_tokens"] >= 1  # computed by the model, not an empty answer
    logged = capfd.readouterr().err + "\n".join(m.message for m in client.log_messages)
    assert "Traceback" not in logged and "InvalidStateError" not in logged
