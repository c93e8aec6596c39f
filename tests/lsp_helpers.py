"""Helpers for end-to-end tests through the real server process (pytest-lsp)."""

from __future__ import annotations

import asyncio
import sys

from lsprotocol import types

SERVER = [sys.executable, "-m", "lsp_server", "serve", "--log-level", "DEBUG"]


def watch_status(client) -> list[dict]:
    """Record every speclsp/status notification the server sends."""
    seen: list[dict] = []

    @client.feature("speclsp/status")
    def on_status(params):
        seen.append(params if isinstance(params, dict) else _plain(params))

    return seen


def _plain(obj):
    """pygls hands custom notifications' params over as namedtuples."""
    if hasattr(obj, "_asdict"):
        return {k: _plain(v) for k, v in obj._asdict().items()}
    return obj


async def wait_for_state(seen: list[dict], states=("ready", "error"), timeout=60.0) -> dict:
    for _ in range(int(timeout * 20)):
        for s in reversed(seen):
            if s.get("state") in states:
                return s
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no status in {states}: {seen[-3:]}")


def open_doc(client, uri: str, text: str, version: int = 1) -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)))


def inline_params(uri: str, line: int, character: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
        text_document=types.TextDocumentIdentifier(uri), position=types.Position(line, character))


def insert(client, uri: str, version: int, line: int, character: int, text: str) -> None:
    """An incremental change: insert `text` at (line, character)."""
    pos = types.Position(line, character)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangePartial(range=types.Range(pos, pos), text=text)]))


# -- what real editors send and what they see ---------------------------------------------------------

SERVER_DEFAULT_LOG = [sys.executable, "-m", "lsp_server", "serve"]  # as editors start it: no flags


def editor_capabilities(editor: str) -> types.ClientCapabilities:
    """Capabilities of the editors people use today, from pytest-lsp's recordings.

    The recordings predate inline completion (VS Code 1.65, Neovim 0.11); the clients that show
    ghost text add `textDocument.inlineCompletion`: vscode-languageclient >= 10 (dynamic
    registration) and Neovim 0.12 (`runtime/lua/vim/lsp/protocol.lua`, static)."""
    recorded, inline = {
        "vscode": ("visual-studio-code", types.InlineCompletionClientCapabilities(dynamic_registration=True)),
        "neovim-0.12": ("neovim", types.InlineCompletionClientCapabilities(dynamic_registration=False)),
        "neovim-0.11": ("neovim", None),
    }[editor]
    import pytest_lsp

    caps = pytest_lsp.client_capabilities(recorded)
    caps.text_document.inline_completion = inline
    return caps


class ServerStderr:
    """The server's stderr, line by line, instead of pytest-lsp's forwarding to the test's stderr.

    Editors show every one of these lines as an error, so tests look at them. pytest-lsp keeps the
    server process in `_server` and its forwarding task in `_stderr_forwarder`."""

    def __init__(self, client):
        if client._stderr_forwarder is not None:
            client._stderr_forwarder.cancel()
        self.process = client._server
        self.lines: list[str] = []
        self.done = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while line := await self.process.stderr.readline():
            self.lines.append(line.decode("utf-8", "replace").rstrip("\n"))

    async def until_closed(self, timeout: float = 10.0) -> list[str]:
        await asyncio.wait_for(asyncio.shield(self.done), timeout)
        return self.lines


async def end_session(client) -> None:
    """shutdown + exit, unless the test ended the session itself (and set `client.ended`)."""
    if not getattr(client, "ended", False):
        await client.shutdown_session()


async def request_then_cancel(client, params: types.InlineCompletionParams, msg_id: str, after_s: float) -> None:
    """Send an inline request, cancel it `after_s` later with `$/cancelRequest` (as VS Code does), and
    check that it is answered as cancelled."""
    from pygls.exceptions import JsonRpcRequestCancelled

    pending = asyncio.ensure_future(client.protocol.send_request_async(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id))
    await asyncio.sleep(after_s)
    client.cancel_request(types.CancelParams(id=msg_id))
    try:
        await pending
    except JsonRpcRequestCancelled:
        return
    raise AssertionError(f"request {msg_id} was not answered as cancelled")

