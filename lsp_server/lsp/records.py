"""Request records: each completion request's figures, as `speclsp.stats`, the status and the log send them.

The wire format is fixed: the VS Code status bar, the editor harnesses and docs/editors.md read
these JSON keys by name (tests/e2e/test_stats_wire.py pins them). A key whose figure was never taken
is left out rather than sent empty: a request superseded in the queue has no `queue_ms`, one that
failed has no model figures, and `accepted` appears only once the user took the suggestion.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

STATS_KEEP = 100  # records `speclsp.stats` returns: the newest, oldest first
BRIEF = ("latency_ms", "accepted_tokens", "drafted_tokens", "generated_tokens", "cancelled")  # in the status


def cache_hit(measured: dict[str, Any]) -> bool:
    """Whether a cache spared work: typed through a shown suggestion, or a prompt prefix reused."""
    return bool(measured.get("typed_through")) or measured.get("reused_tokens", 0) > 0


@dataclass
class RequestRecord:
    """One completion request, from its arrival to its answer.

    `measured` is the service's figures as it made them (engine/api.py's Stats, `typed_through`,
    `deferred_tokens`); the other fields are what the server itself saw."""

    id: int
    uri: str
    trigger: str  # "automatic" or "invoked" (inline completion), "completion" (the fallback)
    cancelled: bool = False  # superseded by a newer request, or cancelled by the client
    queue_ms: float | None = None  # waiting for the model worker; None when the worker never ran it
    error: str | None = None  # a fault in the worker, as logged
    latency_ms: float | None = None  # arrival to answer; None until answered
    measured: dict[str, Any] = field(default_factory=dict)  # empty when no completion came back
    text_chars: int | None = None  # the suggestion's length, even when the answer was withheld
    accepted: bool = False  # the editor ran the item's command: the user took the suggestion

    @property
    def typed_through(self) -> bool:
        return bool(self.measured.get("typed_through"))

    @property
    def answered(self) -> bool:
        """Finished with the service's figures: the requests the cache figures count."""
        return not self.cancelled and "prompt_tokens" in self.measured

    def to_json(self) -> dict[str, Any]:
        """The record as `speclsp.stats` sends it (see the module docstring for what is left out)."""
        out: dict[str, Any] = {"id": self.id, "uri": self.uri, "trigger": self.trigger, "cancelled": self.cancelled}
        optional = {"queue_ms": self.queue_ms, "error": self.error, "latency_ms": self.latency_ms}
        out.update((key, value) for key, value in optional.items() if value is not None)
        out.update(self.measured)
        if self.text_chars is not None:
            out["text_chars"] = self.text_chars
        if self.accepted:
            out["accepted"] = True
        return out

    def brief(self) -> dict[str, Any]:
        """The few figures `speclsp/status` carries after each request, for a status line."""
        full = self.to_json()
        return {key: full[key] for key in BRIEF if key in full}


def stats_result(records: Iterable[RequestRecord]) -> dict[str, Any]:
    """`speclsp.stats`: the records, oldest first, and how often the caches spared work."""
    requests = list(records)
    answered = [r for r in requests if r.answered]
    hits = sum(cache_hit(r.measured) for r in answered)
    return {"requests": [r.to_json() for r in requests], "cache": {
        "hit_rate": round(hits / len(answered), 3) if answered else None,
        "typed_through": sum(r.typed_through for r in answered), "answered": len(answered)}}
