"""Typed settings, their defaults and their validation: the one place that knows every knob.

Editors speak camelCase JSON (`initializationOptions`, the `speclsp` section of
`workspace/didChangeConfiguration`); the code speaks snake_case attributes. The conversion
happens once, here. A bad value never stops the server: it keeps the default and the caller
gets a message to show once.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TARGET = "codellama/CodeLlama-7b-hf"
DEFAULT_DRAFT = "amd/AMD-Llama-135m-code"
DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
DTYPES = ("auto", "float16", "bfloat16", "float32")
FALLBACKS = ("auto", "always", "never")


@dataclass(frozen=True)
class Settings:
    """Everything a user can set. Field docstrings are the user documentation (docs/configuration.md)."""

    target: str = ""
    """Target model: Hugging Face id or local directory. Empty: the real CodeLlama-7b when found
    locally, else the embedded demo model."""
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
    """Token budget for prefix plus suffix in the prompt."""
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
    """A completion stops after this long and returns what it has."""
    max_document_chars: int = 2_000_000
    """Documents larger than this get no completions; the status and the log say so once per document."""
    completion_fallback: str = "auto"
    """The suggestion also as a `textDocument/completion` item: "auto" (only for editors without
    inline completion), "always" or "never". Read when the server starts."""

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


# (camelCase key, attribute, type, validator) — the protocol edge's view of Settings.
def _in(lo: float, hi: float):
    return lambda v: lo <= v <= hi


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
CLIENT_KEYS = frozenset({"server", "enable", "languages", "trace"})  # editor-side settings, not ours


def _coerce(value: Any, kind: type) -> Any:
    """Accept what JSON can carry for the type; bool is not an int and strings are not numbers."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise TypeError
        return int(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError
        return float(value)
    if not isinstance(value, str):
        raise TypeError
    return value.strip()


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
            problems.append(f"unknown setting speclsp.{key} ignored")
            continue
        attr, kind, valid = _FIELDS[key]
        if raw is None:
            continue
        try:
            value = _coerce(raw, kind)
            if valid is not None and not valid(value):
                raise ValueError
        except (TypeError, ValueError):
            default = getattr(Settings(), attr)
            problems.append(f"invalid speclsp.{key}={raw!r}; keeping {getattr(settings, attr, default)!r}")
            continue
        changes[attr] = value
    return settings.replace(**changes), problems


def settings_to_lsp(settings: Settings) -> dict[str, Any]:
    """The camelCase view, for `speclsp doctor` and docs."""
    return {key: getattr(settings, attr) for key, (attr, _, _) in _FIELDS.items()}


@dataclass
class SettingsMessages:
    """Remembers which messages were already shown, so each bad value is reported once."""

    seen: set[str] = field(default_factory=set)

    def fresh(self, messages: list[str]) -> list[str]:
        new = [m for m in messages if m not in self.seen]
        self.seen.update(new)
        return new
