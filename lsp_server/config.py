"""Typed settings, their defaults and their validation: the one place that knows every knob.

Editors speak camelCase JSON (`initializationOptions`, the `speclsp` section of
`workspace/didChangeConfiguration`); the code speaks snake_case attributes. The conversion
happens once, here. A bad value never stops the server: it keeps the default and the caller
gets a message to show once.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
DTYPES = ("auto", "float16", "bfloat16", "float32")
FALLBACKS = ("auto", "always", "never")


@dataclass(frozen=True)
class Settings:
    """Everything a user can set. Field docstrings are the user documentation (docs/configuration.md)."""

    target: str = ""
    """Target model: a local directory, or a Hugging Face id already in the local cache (`speclsp pull
    ID` downloads it; the server never does). Empty: the real CodeLlama-7b when found locally, else the
    embedded demo model."""
    draft: str = ""
    """Draft model: id or directory; "none" disables the draft. Empty: automatic, as for target."""
    device: str = "auto"
    """"auto" (CUDA/ROCm when present, else CPU), "cpu", "cuda" or "cuda:N"."""
    dtype: str = "auto"
    """"auto" (float16 on GPUs, bfloat16 or float32 on CPUs), "float16", "bfloat16", "float32"."""
    max_tokens: int = 64
    """Most tokens generated for one completion."""
    temperature: float = 0.0
    """0 is greedy (deterministic); above 0 samples, with speculative sampling keeping the target's distribution."""
    context_tokens: int = 2048
    """Token budget for prefix plus suffix in the prompt (a slow device may read fewer at first: see timeBudgetMs)."""
    fim_order: str = "spm"
    """Fill-in-the-middle order: "spm" (suffix first: typing only appends, best for the prefix cache) or "psm"."""
    speculative: bool = True
    """Use the draft model (and the copy-from-context drafter) to propose tokens the target verifies."""
    draft_length: int = 6
    """Most tokens the drafter proposes per round (gamma); the engine adapts below this."""
    prefix_cache: bool = True
    """Keep each document's KV cache between requests so a keystroke costs only its new tokens."""
    cache_budget_mb: int = 2048
    """Memory for cached KV across documents, per device, in MiB; least recently used documents are dropped."""
    time_budget_ms: int = 2000
    """The most time one completion may take, from its arrival at the server (queue wait included).
    Its new prompt tokens are cut to what the device, at its measured prefill speed, reads in half
    the time left (later requests fill in the rest); a completion cut short by time is shown up to
    its last whole line or word, or not at all."""
    max_document_chars: int = 2_000_000
    """Documents larger than this get no completions; the status and the log say so once per document."""
    completion_fallback: str = "auto"
    """The suggestion also as a `textDocument/completion` item: "auto" (only for editors without
    inline completion), "always" or "never". Read when the server starts."""

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


# (camelCase key, attribute, type, validator) — the protocol edge's view of Settings.
class _Range:
    """A closed range that can say itself, so the command line can tell what a flag expects."""

    def __init__(self, lo: float, hi: float):
        self.lo, self.hi = lo, hi

    def __call__(self, value: float) -> bool:
        return self.lo <= value <= self.hi

    def __str__(self) -> str:
        return f"from {self.lo} to {self.hi}"


def _in(lo: float, hi: float) -> _Range:
    return _Range(lo, hi)


_FIELDS: dict[str, tuple[str, type, Any]] = {
    "target": ("target", str, None),
    "draft": ("draft", str, None),
    "device": ("device", str, lambda v: bool(DEVICE_RE.match(v))),
    "dtype": ("dtype", str, lambda v: v in DTYPES),
    "maxTokens": ("max_tokens", int, _in(1, 1024)),
    "temperature": ("temperature", float, _in(0.0, 2.0)),
    "contextTokens": ("context_tokens", int, _in(64, 16384)),
    "fimOrder": ("fim_order", str, lambda v: v in ("spm", "psm")),
    "speculative": ("speculative", bool, None),
    "draftLength": ("draft_length", int, _in(1, 16)),
    "prefixCache": ("prefix_cache", bool, None),
    "cacheBudgetMB": ("cache_budget_mb", int, _in(0, 1 << 20)),
    "timeBudgetMs": ("time_budget_ms", int, _in(10, 60_000)),
    "maxDocumentChars": ("max_document_chars", int, _in(1, 1 << 30)),
    "completionFallback": ("completion_fallback", str, lambda v: v in FALLBACKS),
}
CAMEL_KEYS = tuple(_FIELDS)
_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "text"}
_EXPECTED = {"device": "auto, cpu, cuda or cuda:N", "dtype": "one of " + ", ".join(DTYPES), "fimOrder": "spm or psm"}
CLIENT_KEYS = frozenset({"server", "enable", "languages", "trace", "token"})  # editor-side, or the TCP secret


def _coerce(value: Any, kind: type) -> Any:
    """Accept what JSON can carry for the type; bool is not an int and strings are not numbers."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TypeError  # JSON's 1e400 arrives as inf: out of range, not a crash
        if kind is int and int(value) != value:
            raise TypeError
        return kind(value)
    if not isinstance(value, str):
        raise TypeError
    return value.strip()


def value_problem(key: str, raw: Any) -> str | None:
    """What setting `key` expects when `raw` is not a valid value for it, else None.

    The command line refuses such a value (a usage error naming the flag); an editor's bad value
    instead keeps the previous one with a message (settings_from_lsp). Both use these rules.
    """
    _, kind, valid = _FIELDS[key]
    try:
        value = _coerce(raw, kind)
    except TypeError:
        return f"expected {_KINDS[kind]}"
    if valid is None or valid(value):
        return None
    if isinstance(valid, _Range):
        return f"expected {_KINDS[kind]} {valid}"
    return f"expected {_EXPECTED.get(key, 'a value listed in docs/configuration.md')}"


def settings_from_lsp(options: Mapping[str, Any] | None, base: Settings | None = None) -> tuple[Settings, list[str]]:
    """Merge editor options (camelCase) into `base`. Returns the settings and one message per bad value.

    Unknown keys are reported too, so a typo does not pass silently.
    """
    settings = base or Settings()
    if options is None:
        return settings, []
    if not isinstance(options, Mapping):
        return settings, [f"speclsp settings must be an object, got {type(options).__name__}; using defaults"]
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for key, raw in options.items():
        if key in CLIENT_KEYS:
            continue
        if key not in _FIELDS:
            problems.append(f"unknown setting speclsp.{_quote(key, repr_=False)} ignored")
            continue
        attr, kind, valid = _FIELDS[key]
        if raw is None:
            continue
        try:
            value = _coerce(raw, kind)
            if valid is not None and not valid(value):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            problems.append(f"invalid speclsp.{key}={_quote(raw)}; keeping {_quote(getattr(settings, attr))}")
            continue
        changes[attr] = value
    return settings.replace(**changes), problems


QUOTE_CHARS = 40  # a message quotes at most this much of a value: values can be megabytes


def _quote(value: Any, repr_: bool = True) -> str:
    """A short quotation of a value for a message: its start, and its size when cut."""
    text = repr(value) if repr_ else str(value)
    if len(text) <= QUOTE_CHARS:
        return text
    return f"{text[:QUOTE_CHARS]}… ({len(text):,} characters)"


def settings_to_lsp(settings: Settings) -> dict[str, Any]:
    """The camelCase view, for `speclsp doctor` and docs."""
    return {key: getattr(settings, attr) for key, (attr, _, _) in _FIELDS.items()}


MESSAGES_KEPT = 256  # a client sending endless distinct bad values must not grow the server


@dataclass
class SettingsMessages:
    """Remembers which messages were already shown (the latest few hundred), so each bad value is
    reported once."""

    seen: dict[str, None] = field(default_factory=dict)

    def fresh(self, messages: list[str]) -> list[str]:
        new = [m for m in dict.fromkeys(messages) if m not in self.seen]
        for m in new:
            self.seen[m] = None
        while len(self.seen) > MESSAGES_KEPT:
            del self.seen[next(iter(self.seen))]
        return new


def settings_from_args(args: Any) -> Settings:
    """Settings from the command line's flags (an argparse namespace; flags named as the camelCase
    keys). The flags were already checked while parsing, so problems here are only printed."""
    keys = ("target", "draft", "device", "dtype", "maxTokens", "contextTokens", "temperature", "fimOrder",
            "draftLength", "speculative", "prefixCache", "timeBudgetMs")
    options = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    settings, problems = settings_from_lsp(options)
    for problem in problems:
        print(f"speclsp: {problem}", file=sys.stderr)
    return settings
