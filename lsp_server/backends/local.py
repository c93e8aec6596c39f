"""The local backend: the engine in this process, on this machine's device (see backends/__init__.py).

Model code is imported when the backend is made, not with this module, so the server answers
`initialize` at once and reports loading progress while torch and the weights come in.
"""

from __future__ import annotations

from .. import faults
from ..config import Settings
from ..engine.api import GenerationRequest, GenerationResult, Stats


class LocalBackend:
    """Target (+ draft) loaded from the settings' model fields, run by engine.speculative.Engine."""

    def __init__(self, settings: Settings, progress=lambda message, percent: None):
        from ..engine.models import load_models

        self.models = load_models(settings, progress)  # raises ModelError
        self.codec = self.models.codec
        self.info = self.models.info
        self.notices = list(self.models.notices)
        self.settings = settings
        self._build_engine()

    @property
    def draft_positions(self) -> int:
        drafter = self.engine.drafter
        return drafter.runner.max_positions if drafter is not None else 0

    def configure(self, settings: Settings) -> None:
        old, self.settings = self.settings, settings
        if _engine_fields(old) != _engine_fields(settings):
            self._build_engine()

    def generate(self, request: GenerationRequest) -> GenerationResult:
        return self.engine.generate(request)

    def prefill(self, request: GenerationRequest) -> Stats:
        return self.engine.prefill(request)

    def cached_tokens(self, key: str, ids: list[int]) -> int:
        return self.engine.cached_tokens(key, ids)

    def forget(self, key: str) -> None:
        self.engine.forget(key)

    def forget_all(self) -> None:
        self.engine.shrink()  # every slot goes, its draft-length controller with it

    def shrink(self, drop_draft: bool) -> bool:
        self.engine.shrink()
        if not drop_draft or self.models.draft is None:
            return False
        self.models.draft = None
        self._build_engine()
        return True

    def _build_engine(self) -> None:
        from ..engine.graphs import BUCKET
        from ..engine.speculative import Engine

        s, m = self.settings, self.models
        # On a GPU the decode-time forwards run as graphs captured over one working cache, which
        # holds a prompt, its completion and the drafts of a round, with some slack. A graph is
        # captured per attention span of BUCKET rows up to the capacity: rounded up to whole spans,
        # the last rows get a graph too instead of running eagerly.
        needed = s.context_tokens + s.max_tokens + 2 * s.draft_length + 64
        capacity = -(-needed // BUCKET) * BUCKET
        self.engine = Engine(m.target, m.draft, max_gamma=s.draft_length,
                             cache_budget_bytes=s.cache_budget_mb << 20, prefix_cache=s.prefix_cache,
                             graphs=m.device.type == "cuda", graph_capacity=capacity,
                             before_forward=lambda: faults.before_forward())  # looked up per call
        self.info["graph_capture_s"] = round(self.engine.capture_s, 2)


def _engine_fields(s: Settings) -> tuple:
    """The settings the engine is built with (graphs are captured per draft length)."""
    return s.cache_budget_mb, s.prefix_cache, s.draft_length
