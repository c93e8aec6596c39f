"""Settings and models: each settings change applied, and model loads queued on the worker.

Loading, a part of SpeclspServer (session.py): the lifecycle handlers (lifecycle.py) call it, and
a TCP session that ends calls it to return to the command line's settings.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from lsprotocol import types

from ..config import settings_from_lsp

log = logging.getLogger(__name__)


class Loading:
    """Settings applied as they come, and model loads queued on the worker."""

    def configure(self, options: Any) -> None:
        """Settings from the client (initializationOptions or didChangeConfiguration): each bad
        value is told once, and a change that needs other models reloads them."""
        settings, problems = settings_from_lsp(options, self.settings)
        for problem in self.messages.fresh(problems):
            self.tell(problem)
        reload = self.service.apply(settings)
        self.settings = settings
        if reload and (self.service.backend is not None or self.load_error or self.loads_pending):
            self.start_loading()  # while a load runs, this one is queued behind it and wins

    def start_loading(self) -> None:
        """Load (or reload) the models on the worker, reporting progress and status. A load asked
        for while one runs is queued behind it (the scheduler's newest-wins), so a setting changed
        during loading is applied when the running load ends."""
        self.status("loading", "loading models", progress=0)
        self.loads_pending += 1

        def load(cancel) -> None:
            t0 = time.monotonic()
            try:
                info = self.service.load(lambda msg, pct: self.status("loading", msg, progress=pct))
            except Exception as e:  # ModelError and anything unexpected: the server stays up
                self.loads_pending -= 1
                self.load_error = str(e)
                log.exception("model loading failed")
                self.status("error", str(e))
                self.tell(f"speclsp: {e}", types.MessageType.Error)
                return
            self.loads_pending -= 1
            self.load_error = None
            if self.loads_pending:
                return  # a newer load waits: its settings are the ones to announce
            info["startup_ms"] = round((time.monotonic() - t0) * 1e3)
            log.info("models ready: %s", info)
            self.status("ready", self.announce(self.service.notices) or f"ready: {info['target']}", models=info)

        self.scheduler.submit("__models__", load)
