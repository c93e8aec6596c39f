"""The engine boundary: token ids and small dataclasses in, token ids and stats out.

Nothing here imports torch, so the server, the scheduler and the tests can build requests and
read results without the model stack.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

DEFAULT_TARGET = "codellama/CodeLlama-7b-hf"
DEFAULT_DRAFT = "amd/AMD-Llama-135m-code"

StopCheck = Callable[[Sequence[int]], bool]
"""Called with the tokens generated so far; True ends the completion after the last of them.
Both decode paths call it after every token, so they stop at the same token."""


class ModelChoice(Protocol):
    """Which models to load, and where: the settings' model fields, or any object that has them."""

    target: str  # id or directory; empty: the real pair when on this machine, else the demo pair
    draft: str  # id or directory, "none", or empty (automatic)
    device: str
    dtype: str


ForwardHook = Callable[[], None]
"""Called before every model forward (the reliability tests' fault injection; a no-op otherwise)."""


class ModelError(Exception):
    """A model cannot be used; the message is shown to the user as is."""


class Unavailable(Exception):
    """The models cannot answer now (a remote server down, refusing, or answering badly). The
    message says why, for the user's status; the request gets an empty answer and later ones try again."""


class Cancelled(Exception):
    """Raised inside the engine when a request's cancel flag is set; caught at the boundary."""


@dataclass(frozen=True)
class Healing:
    """Token healing: the prompt stops a few bytes before the cursor (at a token boundary), and
    the first generated tokens must spell those bytes again, then may go on. Built outside the
    engine from the tokenizer's vocabulary (healing.py), so the engine sees ids only.

    A state is how many of the left-out bytes are spelled so far. `allowed[i]`: the ids the next
    token may be in state i. `partial[i]`: those of them that spell only part of the rest, with the
    bytes each spells; any other allowed id spells all of the rest, and the constraint ends.
    """

    allowed: tuple[frozenset[int], ...]
    partial: tuple[dict[int, int], ...]

    def allowed_after(self, tokens: Sequence[int]) -> frozenset[int] | None:
        """The ids the token after `tokens` (the generated ones) may be; None: any."""
        at = 0
        for tok in tokens:
            step = self.partial[at].get(tok)
            if step is None:  # it spelled the rest (or more): free from here on
                return None
            at += step
        return self.allowed[at]


@dataclass
class GenerationRequest:
    """One completion to compute.

    `target_ids` is the full prompt in the target's vocabulary (FIM specials included).
    `draft_ids` is the draft's FIM-free view of the same context (ids < draft vocab), or None.
    `context_ids` is text the copy drafter may copy from (prefix and suffix, shared ids).
    `cache_key` names the cache slot (one per document) whose KV may be reused.
    `healing` constrains the first tokens to spell the text the prompt left out before the cursor.
    """

    target_ids: list[int]
    max_new_tokens: int
    draft_ids: list[int] | None = None
    context_ids: list[int] = field(default_factory=list)
    stop_ids: frozenset[int] = frozenset()
    stop: StopCheck | None = None
    temperature: float = 0.0
    seed: int | None = None
    deadline: float | None = None  # time.monotonic() value
    cancel: threading.Event | None = None
    cache_key: str | None = None
    speculative: bool = True
    healing: Healing | None = None

    def allowed_after(self, generated: Sequence[int]) -> frozenset[int] | None:
        """The ids the next token may be, after `generated`; None: any."""
        return None if self.healing is None else self.healing.allowed_after(generated)

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


@dataclass
class Stats:
    """Per-request measurements; the same numbers feed the log, `speclsp.stats` and the benchmarks."""

    prompt_tokens: int = 0
    reused_tokens: int = 0
    prefill_tokens: int = 0
    generated_tokens: int = 0
    target_forwards: int = 0
    rounds: int = 0
    drafted_tokens: int = 0
    accepted_tokens: int = 0
    copy_drafted_tokens: int = 0
    copy_accepted_tokens: int = 0
    draft_reused_tokens: int = 0
    draft_prefill_tokens: int = 0
    prefill_ms: float = 0.0
    draft_ms: float = 0.0
    verify_ms: float = 0.0
    decode_ms: float = 0.0
    engine_ms: float = 0.0
    finish_reason: str = ""

    @property
    def mean_accepted(self) -> float:
        """Tokens emitted per target forward in speculative rounds (1.0 means no gain)."""
        return (self.accepted_tokens + self.rounds) / self.rounds if self.rounds else 0.0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["mean_accepted"] = round(self.mean_accepted, 3)
        for k, v in d.items():
            if isinstance(v, float):
                d[k] = round(v, 3)
        return d


@dataclass
class GenerationResult:
    tokens: list[int]
    stats: Stats
