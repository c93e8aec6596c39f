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
