"""Where the models run, behind one small protocol: the service hands token ids in and gets tokens and stats back.

The completion service builds prompts and reads completions; a backend runs the models. `local`
runs the engine in this process, on this machine's device; `remote` sends the same prompts to a
shared inference server. Nothing here or in the service needs torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..config import Settings
from ..engine.api import GenerationRequest, GenerationResult, Stats
from ..prompt import Codec as PromptCodec

Progress = Callable[[str, int], None]
"""Called with a message and a percentage while models load."""


class Codec(PromptCodec, Protocol):
    """The target's tokenizer, as the service uses it: prompts in, continuations out."""

    eos: int | None

    def decode_continuation(self, ids: list[int]) -> str: ...


class Backend(Protocol):
    """Loaded models that complete requests, keeping per-document state (KV) by `cache_key`."""

    codec: Codec  # the target's tokenizer: the prompt is built in its ids
    info: dict  # what was loaded (models, device, dtype, timings): the status bar and `speclsp doctor` show it
    notices: list[str]  # what the user should hear about the loading (a model not used, and why)

    @property
    def draft_positions(self) -> int:
        """The draft model's position limit (0: no draft), so the prompt's draft view fits it."""

    def configure(self, settings: Settings) -> None:
        """Take settings that need no reload (cache budget, draft length); the models stay."""

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Compute one completion. Raises engine.api.Cancelled when the request's flag is set."""

    def prefill(self, request: GenerationRequest) -> Stats:
        """Warm a document's cached state with a prompt, ahead of a request."""

    def cached_tokens(self, key: str, ids: list[int]) -> int:
        """How many leading ids of a prompt the document's cached state holds already."""

    def forget(self, key: str) -> None:
        """Drop a document's cached state."""

    def forget_all(self) -> None:
        """Drop every document's cached state."""

    def shrink(self, drop_draft: bool) -> bool:
        """Give memory back after an out-of-memory error: every cached state goes, and with
        `drop_draft` the draft model too. True when the draft went (completions go on without it)."""


def open_backend(settings: Settings, progress: Progress = lambda message, percent: None) -> Backend:
    """The backend the settings name, with its models loaded (slow). Raises engine.api.ModelError."""
    if settings.backend == "remote":
        from .remote import RemoteBackend

        return RemoteBackend(settings, progress)
    from .local import LocalBackend

    return LocalBackend(settings, progress)
