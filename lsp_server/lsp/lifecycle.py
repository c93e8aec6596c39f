"""Lifecycle handlers: initialize → settings → the models loaded (progress, status) → shutdown.

The work lives in SpeclspServer's parts: Loading (loading.py) applies settings and loads the models,
Notices (notices.py) reports on it.
"""

from __future__ import annotations

import asyncio
import logging

from lsprotocol import types

from .completion_handlers import COMPLETION_OPTIONS, completion_fallback, fallback_wanted
from .documents import SyncedWorkspace
from .session import SpeclspServer

log = logging.getLogger(__name__)


def on_initialize(ls: SpeclspServer, params: types.InitializeParams) -> None:
    """Settings come first from initializationOptions; loading starts once initialized."""
    ls.loop = asyncio.get_running_loop()
    ls.protocol._workspace = SyncedWorkspace.like(ls.workspace)  # edits applied by LSP's line rule
    ls.client_name = params.client_info.name if params.client_info else ""
    ls.configure(params.initialization_options or {})
    if params.process_id:
        ls.watch_editor(params.process_id)
    # capabilities are built after this handler; a later TCP session decides afresh for its client
    ls.protocol.fm.features.pop(types.TEXT_DOCUMENT_COMPLETION, None)
    ls.protocol.fm.feature_options.pop(types.TEXT_DOCUMENT_COMPLETION, None)
    if fallback_wanted(ls):
        ls.feature(types.TEXT_DOCUMENT_COMPLETION, COMPLETION_OPTIONS)(completion_fallback)


async def on_initialized(ls: SpeclspServer, params: types.InitializedParams) -> None:
    """Start loading, with window/workDoneProgress when the client supports it. A later TCP
    session finds the models loaded: it is told so at once."""
    if ls.service.ready:
        ls.status("ready", f"ready: {ls.service.backend.info['target']}", models=ls.service.backend.info)
        return
    caps = ls.client_capabilities.window
    if caps and caps.work_done_progress:
        token = f"speclsp-load-{id(ls)}"
        try:
            await asyncio.wait_for(ls.work_done_progress.create_async(token), 5)
            ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(title="speclsp", message="loading models",
                                                                          percentage=0))
            ls.progress_token = token
        except Exception:
            log.info("the client did not accept a progress token; status notifications only")
    ls.start_loading()


def on_configuration(ls: SpeclspServer, params: types.DidChangeConfigurationParams) -> None:
    """New settings, whole or under a `speclsp` key (clients send either)."""
    settings = params.settings
    if isinstance(settings, dict) and isinstance(settings.get("speclsp"), dict):
        settings = settings["speclsp"]
    ls.configure(settings)


def on_shutdown(ls: SpeclspServer, *args) -> None:
    """Stop model work without waiting for a forward in progress: the answer goes out at once."""
    ls.scheduler.close(timeout=0)


FEATURES = [  # (method, options, handler)
    (types.INITIALIZE, None, on_initialize),
    (types.INITIALIZED, None, on_initialized),
    (types.WORKSPACE_DID_CHANGE_CONFIGURATION, None, on_configuration),
    (types.SHUTDOWN, None, on_shutdown),
]
