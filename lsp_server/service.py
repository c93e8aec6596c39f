"""The completion pipeline without the protocol: cursor context → prompt → engine → text.

Shared by the LSP server, `speclsp complete` and the benchmarks. Everything here runs on the
model worker thread. Model code is imported lazily, so the server answers `initialize` at once
and reports loading progress while torch and the weights come in.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field

from . import faults
from .config import Settings
from .postprocess import make_stop, postprocess
from .prompt import CursorContext, PromptBuilder

log = logging.getLogger(__name__)

MODEL_KEYS = ("target", "draft", "device", "dtype")  # changing one of these reloads the models


@dataclass
class Completion:
    text: str
    stats: dict = field(default_factory=dict)


class CompletionService:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.models = None
        self.engine = None
        self.builder: PromptBuilder | None = None
        self.notices: list[str] = []

    @property
    def ready(self) -> bool:
        return self.engine is not None

    def load(self, progress=lambda message, percent: None) -> dict:
        """Load the models named by the settings (slow: run it on the worker). Raises ModelError."""
        from .engine.models import load_models

        self.engine = None
        self.models = load_models(self.settings, progress)
        self.notices = list(self.models.notices)
        self._build_engine()
        return self.models.info

    def apply(self, settings: Settings) -> bool:
        """Take new settings; True when the models must be reloaded to honour them."""
        old, self.settings = self.settings, settings
        if any(getattr(old, k) != getattr(settings, k) for k in MODEL_KEYS):
            return True
        if self.models is not None and (old.cache_budget_mb, old.prefix_cache) != (settings.cache_budget_mb,
                                                                                   settings.prefix_cache):
            self._build_engine()
        elif self.engine is not None:
            self.engine.max_gamma = settings.draft_length
            self._build_builder()
        return False

    def complete(self, ctx: CursorContext, key: str, cancel: threading.Event | None = None) -> Completion:
        """One completion at the cursor. Raises engine Cancelled when `cancel` is set."""
        from .engine.api import GenerationRequest

        assert self.engine is not None and self.builder is not None, "models not loaded"
        s, codec = self.settings, self.models.codec
        prompt = self.builder.build(ctx, key)
        request = GenerationRequest(
            target_ids=prompt.target_ids, draft_ids=prompt.draft_ids or None, context_ids=prompt.context_ids,
            max_new_tokens=s.max_tokens, stop_ids=self._stop_ids(),
            stop=make_stop(codec.decode_continuation, ctx), temperature=s.temperature,
            seed=random.getrandbits(31) if s.temperature > 0 else None,
            deadline=time.monotonic() + s.time_budget_ms / 1e3, cancel=cancel, cache_key=key,
            speculative=s.speculative)
        faults.before_request()
        result = self.engine.generate(request)
        text = postprocess(codec.decode_continuation(result.tokens), ctx)
        return Completion(text, result.stats.as_dict())

    def warm(self, ctx: CursorContext, key: str, cancel: threading.Event | None = None) -> dict:
        """Prefill a document's prompt ahead of a request (background work)."""
        from .engine.api import GenerationRequest

        prompt = self.builder.build(ctx, key)
        request = GenerationRequest(target_ids=prompt.target_ids, draft_ids=prompt.draft_ids or None,
                                    max_new_tokens=self.settings.max_tokens, cancel=cancel, cache_key=key,
                                    speculative=self.settings.speculative)
        return self.engine.prefill(request).as_dict()

    def forget(self, key: str) -> None:
        if self.engine is not None:
            self.engine.forget(key)
        if self.builder is not None:
            self.builder.forget(key)

    def _stop_ids(self) -> frozenset[int]:
        codec = self.models.codec
        ids = {codec.eos} if codec.eos is not None else set()
        if codec.fim is not None:
            ids.add(codec.fim.end)
        return frozenset(ids)

    def _build_engine(self) -> None:
        from .engine.speculative import Engine

        s, m = self.settings, self.models
        self.engine = Engine(m.target, m.draft, max_gamma=s.draft_length,
                             cache_budget_bytes=s.cache_budget_mb << 20, prefix_cache=s.prefix_cache)
        self._build_builder()

    def _build_builder(self) -> None:
        draft_positions = self.engine.drafter.runner.max_positions if self.engine.drafter else 0
        old = self.builder.windows if self.builder is not None else {}
        self.builder = PromptBuilder(self.models.codec, self.settings.context_tokens, self.settings.fim_order,
                                     draft_positions, reserve=self.settings.max_tokens + self.settings.draft_length + 2,
                                     windows=old)
