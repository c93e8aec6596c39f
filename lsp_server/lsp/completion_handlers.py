"""Completion handlers: inline completion, the fallback, and the `speclsp.stats`/`speclsp.accepted` commands.

Each handler reads like the pipeline: cursor context → complete (schedule → service) → an item.
Handlers are `async` and never run model code: that happens on the scheduler's one worker thread.
"""

from __future__ import annotations

from lsprotocol import types

from .items import ACCEPTED, accept_command, completion_item, inline_item, snippets_welcome
from .records import stats_result
from .session import SpeclspServer

COMPLETION_OPTIONS = types.CompletionOptions(trigger_characters=[".", "(", " "])


async def inline_completion(ls: SpeclspServer, params: types.InlineCompletionParams) -> types.InlineCompletionList:
    """Ghost text at the cursor: context → schedule → engine → post-process → one item.

    Nothing is answered for a document that changed while the request ran: the answer was made
    for text the user no longer has, and a client that keeps old answers (Neovim) would show it."""
    uri = params.text_document.uri
    ctx, asked = ls.cursor(uri, params.position), _version(ls, uri)
    if ctx is None:
        return types.InlineCompletionList(items=[])
    trigger = "invoked" if params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked else "automatic"
    completion, rid = await ls.complete(uri, ctx, trigger)
    if completion is None or not completion.text or _version(ls, uri) != asked:
        return types.InlineCompletionList(items=[])
    return types.InlineCompletionList(items=[
        inline_item(ctx, params.position, completion.text, accept_command(rid), ls.encoding)])


async def completion_fallback(ls: SpeclspServer, params: types.CompletionParams) -> types.CompletionList:
    """The fallback for editors without inline completion: one item whose text is the completion.
    Registered at `initialize` only where wanted (see fallback_wanted); answered empty, without
    the model, when a later setting turned it off."""
    ctx = ls.cursor(params.text_document.uri, params.position) if fallback_wanted(ls) else None
    if ctx is None:
        return types.CompletionList(is_incomplete=False, items=[])
    completion, rid = await ls.complete(params.text_document.uri, ctx, "completion")
    if completion is None or not completion.text:
        return types.CompletionList(is_incomplete=True, items=[])
    snippet = snippets_welcome(ls.client_capabilities, ls.client_name)
    item = completion_item(ctx, params.position, completion.text, accept_command(rid), ls.encoding, snippet)
    return types.CompletionList(is_incomplete=True, items=[item])


def fallback_wanted(ls: SpeclspServer) -> bool:
    """Whether `textDocument/completion` carries the suggestion too. Not for clients that show
    ghost text: VS Code asks for both on every keystroke, runs the model twice and shows the
    same text twice. Editors without inline completion (Neovim 0.11, eglot, Helix) need it."""
    mode = ls.settings.completion_fallback
    if mode != "auto":
        return mode == "always"
    caps = ls.client_capabilities.text_document
    return not (caps and caps.inline_completion)


def stats(ls: SpeclspServer, *args) -> dict:
    """The last requests' measurements, oldest first, and how often the caches spared work."""
    return stats_result(ls.stats)


def accepted(ls: SpeclspServer, *args) -> None:
    """The editor reports that the user took a suggestion."""
    rid = args[0] if args else None
    for record in ls.stats:
        if record.id == rid:
            record.accepted = True
    return None


def _version(ls: SpeclspServer, uri: str) -> int | None:
    doc = ls.workspace.text_documents.get(uri)
    return None if doc is None else doc.version


# (method, options, handler); the fallback is registered at `initialize`, where wanted (lifecycle.py)
FEATURES = [(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions(), inline_completion)]
COMMANDS = [("speclsp.stats", stats), (ACCEPTED, accepted)]
