"""The completion pipeline without the protocol: cursor context → prompt → backend → text.

Shared by the LSP server, `speclsp complete` and the benchmarks. Everything here runs on the
model worker thread. The models run behind a Backend (backends/), which
takes token ids and gives tokens and stats back; what is remembered per document on this side
(suggestions, prompt windows) is in one record per document (document_state.py).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import faults
from .backends import Backend, Progress, open_backend
from .config import Settings
from .document_state import DocumentStore
from .engine.api import GenerationRequest, Stats
from .healing import strip_healed
from .postprocess import make_stop, postprocess
from .prompt import CursorContext, Prompt, PromptBuilder
from .timing import CALIBRATION_TOKENS, PrefillRate, prefill_allowance

log = logging.getLogger(__name__)

# changing one of these reloads the models (or, for a remote server, reconnects and reloads the tokenizer)
MODEL_KEYS = ("target", "draft", "device", "dtype", "backend")
# and these only while the remote backend is chosen: the local models do not depend on them
REMOTE_KEYS = ("remote_url", "remote_kind", "remote_model", "remote_api_key_env")
CALIBRATION_TEXT = "def area(width, height):\n    return width * height\n\n" * 16


@dataclass
class Completion:
    text: str
    stats: dict = field(default_factory=dict)


class CompletionService:
    def __init__(self, settings: Settings, open_backend: Callable[[Settings, Progress], Backend] = open_backend):
        self.settings = settings
        self.open_backend = open_backend
        self.backend: Backend | None = None
        self.builder: PromptBuilder | None = None
        self.notices: list[str] = []
        self.documents = DocumentStore()  # kept across loads and new settings
        self.oom_count = 0
        self.prefill_rate = PrefillRate()

    @property
    def ready(self) -> bool:
        return self.backend is not None

    def load(self, progress: Progress = lambda message, percent: None) -> dict:
        """Load the models named by the settings (slow: run it on the worker). Raises ModelError."""
        self.backend = None  # not ready while the models load
        self.backend = self.open_backend(self.settings, progress)
        self.notices = list(self.backend.notices)
        self._build_builder()
        self._calibrate()
        return self.backend.info

    def apply(self, settings: Settings) -> bool:
        """Take new settings; True when the models must be reloaded to honour them."""
        old, self.settings = self.settings, settings
        self.documents.forget_suggestions()  # made under the old settings
        keys = MODEL_KEYS + (REMOTE_KEYS if settings.backend == "remote" else ())
        if any(getattr(old, k) != getattr(settings, k) for k in keys):
            return True
        if self.backend is not None:
            self.backend.configure(settings)
            self._build_builder()
        return False

    def complete(self, ctx: CursorContext, key: str, cancel: threading.Event | None = None,
                 arrived: float | None = None) -> Completion:
        """One completion at the cursor: typed through from a suggestion already made when the
        user is typing what it showed, else computed. Raises engine Cancelled when `cancel` is set.
        `arrived`: time.monotonic() when the request reached the server, where its time budget starts."""
        faults.before_request()
        typed = self.typed_through(ctx, key)
        if typed is not None:
            return typed
        completion = self.compute(ctx, key, cancel, arrived)
        self.documents.remember(key, ctx, completion.text)
        return completion

    def typed_through(self, ctx: CursorContext, key: str) -> Completion | None:
        """The rest of a suggestion the user is typing through, with no model call; None when
        there is none. Safe on any thread: the server calls it on the event loop."""
        rest = self.documents.lookup(key, ctx)
        if rest is None:
            return None
        return Completion(rest, {**Stats(finish_reason="typed_through").as_dict(), "typed_through": True})

    def prefetch(self, ctx: CursorContext, key: str, text: str, cancel: threading.Event | None = None) -> None:
        """Background: compute what comes after `text`, as if the user accepted it, so that request
        is answered at once (and its prompt's KV is already in the cache)."""
        after = CursorContext(ctx.prefix + text, ctx.suffix)
        if self.documents.lookup(key, after) is None:
            self.documents.remember(key, after, self.compute(after, key, cancel).text)

    def compute(self, ctx: CursorContext, key: str, cancel: threading.Event | None = None,
                arrived: float | None = None) -> Completion:
        """Run the model for a completion at the cursor, within the time budget from `arrived`
        (default: now): the prompt is cut to what the device can prefill in time (see fit)."""
        assert self.backend is not None and self.builder is not None, "models not loaded"
        s, codec = self.settings, self.backend.codec
        deadline = (time.monotonic() if arrived is None else arrived) + s.time_budget_ms / 1e3
        full = self.prompt(ctx, key)
        prompt = self._in_time(full, key, deadline)
        # The stop rules read the text after the cursor, as the filters do: the healed tokens spell
        # text the line already holds (a "(" counted twice would unbalance the bracket rule).
        def after_cursor(ids):
            return strip_healed(codec.decode_continuation(ids), prompt.healed)
        request = GenerationRequest(
            target_ids=prompt.target_ids, draft_ids=prompt.draft_ids or None, context_ids=prompt.context_ids,
            max_new_tokens=s.max_tokens, stop_ids=self._stop_ids(),
            stop=make_stop(after_cursor, ctx), temperature=s.temperature,
            seed=random.getrandbits(31) if s.temperature > 0 else None,
            deadline=deadline, cancel=cancel, cache_key=key, speculative=s.speculative, healing=prompt.healing)
        result = self.backend.generate(request)
        self.prefill_rate.observe(result.stats.prefill_tokens, result.stats.prefill_ms)
        text = postprocess(after_cursor(result.tokens), ctx, result.stats.finish_reason == "time")
        return Completion(text, {**result.stats.as_dict(), "typed_through": False,
                                 "deferred_tokens": len(full.target_ids) - len(prompt.target_ids)})

    def prompt(self, ctx: CursorContext, key: str) -> Prompt:
        """The document's full prompt at the cursor, in its remembered window."""
        return self.builder.build(ctx, self.documents.window(key))

    def _in_time(self, prompt: Prompt, key: str, deadline: float) -> Prompt:
        """The prompt, cut to the new tokens the device can prefill in its share of the time left."""
        allowed = prefill_allowance(self.prefill_rate, (deadline - time.monotonic()) * 1e3)
        if allowed is None:
            return prompt
        return self.builder.fit(prompt, self.backend.cached_tokens(key, prompt.target_ids), allowed)

    def warm(self, ctx: CursorContext, key: str, cancel: threading.Event | None = None) -> dict:
        """Prefill a document's prompt ahead of a request (background work)."""
        prompt = self.prompt(ctx, key)
        request = GenerationRequest(target_ids=prompt.target_ids, draft_ids=prompt.draft_ids or None,
                                    max_new_tokens=self.settings.max_tokens, cancel=cancel, cache_key=key,
                                    speculative=self.settings.speculative)
        stats = self.backend.prefill(request)
        self.prefill_rate.observe(stats.prefill_tokens, stats.prefill_ms)
        return stats.as_dict()

    def _calibrate(self) -> None:
        """Time a short prefill, so the first request's prompt is already sized to the device.
        The first run pays one-off start-up costs, so the second is the one measured."""
        codec = self.backend.codec
        ids = [codec.bos] + codec.encode(CALIBRATION_TEXT)[:CALIBRATION_TOKENS - 1]
        self.prefill_rate = PrefillRate()
        for _ in range(2):
            stats = self.backend.prefill(GenerationRequest(target_ids=ids, max_new_tokens=1, speculative=False))
        self.prefill_rate.observe(stats.prefill_tokens, stats.prefill_ms)

    def recover_from_oom(self) -> str:
        """After running out of memory: drop every cached KV; the second time, drop the draft too."""
        self.oom_count += 1
        if self.backend.shrink(drop_draft=self.oom_count >= 2):
            self._build_builder()  # no draft view for a draft that is gone
            return "speclsp: out of memory again; caches emptied and the draft model unloaded (no speculation)"
        return "speclsp: out of memory during a completion; cached state was dropped to make room"

    def forget_all(self) -> None:
        """Drop every document's state (a TCP client left: nothing of its code stays)."""
        self.documents.clear()
        if self.backend is not None:
            self.backend.forget_all()

    def forget(self, key: str) -> None:
        """Drop a document's state, here and in the backend (the document was closed)."""
        self.documents.forget(key)
        if self.backend is not None:
            self.backend.forget(key)

    def _stop_ids(self) -> frozenset[int]:
        codec = self.backend.codec
        ids = {codec.eos} if codec.eos is not None else set()
        if codec.fim is not None:  # <EOT> ends a fill; the other specials can only mean the model is lost
            ids.update((codec.fim.end, codec.fim.prefix, codec.fim.suffix, codec.fim.middle))
        return frozenset(ids)

    def _build_builder(self) -> None:
        s = self.settings
        self.builder = PromptBuilder(self.backend.codec, s.context_tokens, s.fim_order, self.backend.draft_positions,
                                     reserve=s.max_tokens + s.draft_length + 2)
