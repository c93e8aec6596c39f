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
from .prompt import CursorContext, Prompt, PromptBuilder
from .suggestions import SuggestionStore
from .timing import CALIBRATION_TOKENS, PrefillRate, prefill_allowance

log = logging.getLogger(__name__)

MODEL_KEYS = ("target", "draft", "device", "dtype")  # changing one of these reloads the models
CALIBRATION_TEXT = "def area(width, height):\n    return width * height\n\n" * 16


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
        self.suggestions = SuggestionStore()
        self.oom_count = 0
        self.prefill_rate = PrefillRate()

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
        self._calibrate()
        return self.models.info

    def apply(self, settings: Settings) -> bool:
        """Take new settings; True when the models must be reloaded to honour them."""
        old, self.settings = self.settings, settings
        self.suggestions = SuggestionStore()  # made under the old settings
        if any(getattr(old, k) != getattr(settings, k) for k in MODEL_KEYS):
            return True
        if self.models is not None and (old.cache_budget_mb, old.prefix_cache) != (settings.cache_budget_mb,
                                                                                   settings.prefix_cache):
            self._build_engine()
        elif self.engine is not None and old.draft_length != settings.draft_length:
            self._build_engine()  # graphs are captured per draft length
        elif self.engine is not None:
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
        self.suggestions.remember(key, ctx, completion.text)
        return completion

    def typed_through(self, ctx: CursorContext, key: str) -> Completion | None:
        """The rest of a suggestion the user is typing through, with no model call; None when
        there is none. Safe on any thread: the server calls it on the event loop."""
        rest = self.suggestions.lookup(key, ctx)
        if rest is None:
            return None
        from .engine.api import Stats

        return Completion(rest, {**Stats(finish_reason="typed_through").as_dict(), "typed_through": True})

    def prefetch(self, ctx: CursorContext, key: str, text: str, cancel: threading.Event | None = None) -> None:
        """Background: compute what comes after `text`, as if the user accepted it, so that request
        is answered at once (and its prompt's KV is already in the cache)."""
        after = CursorContext(ctx.prefix + text, ctx.suffix)
        if self.suggestions.lookup(key, after) is None:
            self.suggestions.remember(key, after, self.compute(after, key, cancel).text)

    def compute(self, ctx: CursorContext, key: str, cancel: threading.Event | None = None,
                arrived: float | None = None) -> Completion:
        """Run the model for a completion at the cursor, within the time budget from `arrived`
        (default: now): the prompt is cut to what the device can prefill in time (see fit)."""
        from .engine.api import GenerationRequest

        assert self.engine is not None and self.builder is not None, "models not loaded"
        s, codec = self.settings, self.models.codec
        deadline = (time.monotonic() if arrived is None else arrived) + s.time_budget_ms / 1e3
        full = self.builder.build(ctx, key)
        prompt = self._in_time(full, key, deadline)
        request = GenerationRequest(
            target_ids=prompt.target_ids, draft_ids=prompt.draft_ids or None, context_ids=prompt.context_ids,
            max_new_tokens=s.max_tokens, stop_ids=self._stop_ids(),
            stop=make_stop(codec.decode_continuation, ctx), temperature=s.temperature,
            seed=random.getrandbits(31) if s.temperature > 0 else None,
            deadline=deadline, cancel=cancel, cache_key=key, speculative=s.speculative)
        result = self.engine.generate(request)
        self.prefill_rate.observe(result.stats.prefill_tokens, result.stats.prefill_ms)
        text = postprocess(codec.decode_continuation(result.tokens), ctx, result.stats.finish_reason == "time")
        return Completion(text, {**result.stats.as_dict(), "typed_through": False,
                                 "deferred_tokens": len(full.target_ids) - len(prompt.target_ids)})

    def _in_time(self, prompt: Prompt, key: str, deadline: float) -> Prompt:
        """The prompt, cut to the new tokens the device can prefill in its share of the time left."""
        allowed = prefill_allowance(self.prefill_rate, (deadline - time.monotonic()) * 1e3)
        if allowed is None:
            return prompt
        return self.builder.fit(prompt, self.engine.cached_tokens(key, prompt.target_ids), allowed)

    def warm(self, ctx: CursorContext, key: str, cancel: threading.Event | None = None) -> dict:
        """Prefill a document's prompt ahead of a request (background work)."""
        from .engine.api import GenerationRequest

        prompt = self.builder.build(ctx, key)
        request = GenerationRequest(target_ids=prompt.target_ids, draft_ids=prompt.draft_ids or None,
                                    max_new_tokens=self.settings.max_tokens, cancel=cancel, cache_key=key,
                                    speculative=self.settings.speculative)
        stats = self.engine.prefill(request)
        self.prefill_rate.observe(stats.prefill_tokens, stats.prefill_ms)
        return stats.as_dict()

    def _calibrate(self) -> None:
        """Time a short prefill, so the first request's prompt is already sized to the device.
        The first run pays one-off start-up costs, so the second is the one measured."""
        from .engine.api import GenerationRequest

        codec = self.models.codec
        ids = [codec.bos] + codec.encode(CALIBRATION_TEXT)[:CALIBRATION_TOKENS - 1]
        self.prefill_rate = PrefillRate()
        for _ in range(2):
            stats = self.engine.prefill(GenerationRequest(target_ids=ids, max_new_tokens=1, speculative=False))
        self.prefill_rate.observe(stats.prefill_tokens, stats.prefill_ms)

    def recover_from_oom(self) -> str:
        """After running out of memory: drop every cached KV; the second time, drop the draft too."""
        self.oom_count += 1
        self.engine.shrink()
        if self.oom_count >= 2 and self.models.draft is not None:
            self.models.draft = None
            self._build_engine()
            return "speclsp: out of memory again; caches emptied and the draft model unloaded (no speculation)"
        return "speclsp: out of memory during a completion; cached state was dropped to make room"

    def forget_all(self) -> None:
        """Drop every document's state (a TCP client left: nothing of its code stays)."""
        self.suggestions = SuggestionStore()
        if self.engine is not None:
            self.engine.shrink()
        if self.builder is not None:
            self.builder.windows.clear()

    def forget(self, key: str) -> None:
        self.suggestions.forget(key)
        if self.engine is not None:
            self.engine.forget(key)
        if self.builder is not None:
            self.builder.forget(key)

    def _stop_ids(self) -> frozenset[int]:
        codec = self.models.codec
        ids = {codec.eos} if codec.eos is not None else set()
        if codec.fim is not None:  # <EOT> ends a fill; the other specials can only mean the model is lost
            ids.update((codec.fim.end, codec.fim.prefix, codec.fim.suffix, codec.fim.middle))
        return frozenset(ids)

    def _build_engine(self) -> None:
        from .engine.speculative import Engine

        s, m = self.settings, self.models
        # on a GPU the decode-time forwards run as captured graphs over a working cache this long
        capacity = -(-(s.context_tokens + s.max_tokens + 2 * s.draft_length + 64) // 512) * 512
        self.engine = Engine(m.target, m.draft, max_gamma=s.draft_length,
                             cache_budget_bytes=s.cache_budget_mb << 20, prefix_cache=s.prefix_cache,
                             graphs=m.device.type == "cuda", graph_capacity=capacity,
                             before_forward=lambda: faults.before_forward())  # looked up per call
        m.info["graph_capture_s"] = round(self.engine.capture_s, 2)
        self._build_builder()

    def _build_builder(self) -> None:
        draft_positions = self.engine.drafter.runner.max_positions if self.engine.drafter else 0
        old = self.builder
        self.builder = PromptBuilder(self.models.codec, self.settings.context_tokens, self.settings.fim_order,
                                     draft_positions, reserve=self.settings.max_tokens + self.settings.draft_length + 2)
        if old is not None:
            self.builder.windows = old.windows  # the windows stay put across a rebuild
