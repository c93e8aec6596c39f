"""Typed settings, their defaults and their validation: the one place that knows every knob.

Editors speak camelCase JSON (`initializationOptions`, the `speclsp` section of
`workspace/didChangeConfiguration`); the code speaks snake_case attributes. The conversion
happens once, here. A bad value never stops the server: it keeps the default and the caller
gets a message to show once. Each setting is declared once, as a field of `Settings` with its
default, its rule and its documentation; `FIELDS` is derived from there for the edges (the
command line, the LSP edge, the VS Code extension's package.json and docs/configuration.md,
which tests compare with it).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
DTYPES = ("auto", "float16", "bfloat16", "float32")
FIM_ORDERS = ("spm", "psm")
FALLBACKS = ("auto", "always", "never")
BACKENDS = ("local", "remote")
REMOTE_KINDS = ("auto", "llama.cpp", "vllm", "sglang", "openai")
URL_RE = re.compile(r"^(https?://[^\s/?#]+(/\S*)?)?$")
ENV_NAME_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)?$")


def _setting(default: Any, doc: str, **rule: Any) -> Any:
    """A Settings field: its default, its user documentation and the rule its values keep (`within`
    a closed range, `choices`, or a `pattern` with the `expected` words a message uses); `key` only
    where the camelCase key is not the field's name in camelCase."""
    return field(default=default, metadata={"doc": doc, **rule})


@dataclass(frozen=True)
class Settings:
    """Everything a user can set; each field's documentation is the user documentation (docs/configuration.md)."""

    target: str = _setting("", (
        "Target model: a local directory, or a Hugging Face id already in the local cache (`speclsp pull "
        "ID` downloads it; the server never does). Empty: the real CodeLlama-7b when found locally, else the "
        "embedded demo model."))
    draft: str = _setting("", 'Draft model: id or directory; "none" disables the draft. Empty: automatic, as for target.')
    device: str = _setting("auto", '"auto" (CUDA/ROCm when present, else CPU), "cpu", "cuda" or "cuda:N".',
                           pattern=DEVICE_RE, expected="auto, cpu, cuda or cuda:N")
    dtype: str = _setting("auto", '"auto" (float16 on GPUs, bfloat16 or float32 on CPUs), "float16", "bfloat16", '
                          '"float32".', choices=DTYPES)
    max_tokens: int = _setting(64, "Most tokens generated for one completion.", within=(1, 1024))
    temperature: float = _setting(0.0, "0 is greedy (deterministic); above 0 samples, with speculative sampling "
                                  "keeping the target's distribution.", within=(0.0, 2.0))
    context_tokens: int = _setting(2048, "Token budget for prefix plus suffix in the prompt (a slow device may "
                                   "read fewer at first: see timeBudgetMs).", within=(64, 16384))
    fim_order: str = _setting("spm", 'Fill-in-the-middle order: "spm" (suffix first: typing only appends, best '
                              'for the prefix cache) or "psm".', choices=FIM_ORDERS)
    speculative: bool = _setting(True, "Use the draft model (and the copy-from-context drafter) to propose tokens "
                                 "the target verifies.")
    draft_length: int = _setting(6, "Most tokens the drafter proposes per round (gamma); the engine adapts below "
                                 "this.", within=(1, 16))
    prefix_cache: bool = _setting(True, "Keep each document's KV cache between requests so a keystroke costs only "
                                  "its new tokens.")
    cache_budget_mb: int = _setting(2048, "Memory for cached KV across documents, per device, in MiB; least "
                                    "recently used documents are dropped; 0 disables caching across requests.",
                                    within=(0, 1 << 20), key="cacheBudgetMB")
    time_budget_ms: int = _setting(2000, (
        "The most time one completion may take, from its arrival at the server (queue wait included). Its new "
        "prompt tokens are cut to what the device, at its measured prefill speed, reads in half the time left "
        "(later requests fill in the rest); a completion cut short by time is shown up to its last whole line "
        "or word, or not at all."), within=(10, 60_000))
    max_document_chars: int = _setting(2_000_000, "Documents larger than this get no completions; the status and "
                                       "the log say so once per document.", within=(1, 1 << 30))
    completion_fallback: str = _setting("auto", (
        'The suggestion also as a `textDocument/completion` item: "auto" (only for editors without inline '
        'completion), "always" or "never". Read when the server starts.'), choices=FALLBACKS)
    backend: str = _setting("local", '"local" runs the models in this process; "remote" sends the prompts (as token '
                            "ids) to a shared inference server at remoteUrl.", choices=BACKENDS)
    remote_url: str = _setting("", (
        "The shared inference server's base URL (e.g. https://llm.example.com), for backend \"remote\". Plain "
        "http:// is taken only to this machine (localhost, 127.0.0.1, ::1) unless remoteAllowInsecure is true."),
        pattern=URL_RE, expected="an http:// or https:// URL")
    remote_kind: str = _setting("auto", (
        'The server\'s kind: "llama.cpp" (llama-server\'s /completion), "vllm", "sglang", "openai" (their '
        '/v1/completions), or "auto" (asked of the server when the backend opens).'), choices=REMOTE_KINDS)
    remote_model: str = _setting("", "The model name the server is asked for (vLLM, SGLang, OpenAI-compatible "
                                 "servers); empty: the server's first model.")
    remote_api_key_env: str = _setting("", (
        "The NAME of an environment variable holding the server's API key (sent as a bearer token, to remoteUrl "
        "only); the key itself never goes in the settings. Empty: no key."),
        pattern=ENV_NAME_RE, expected="an environment variable's name", quoted=False)
    remote_timeout_ms: int = _setting(10_000, "How long the remote server may take to accept a connection or to "
                                      "send the next part of an answer before the request fails.",
                                      within=(100, 600_000))
    remote_allow_insecure: bool = _setting(False, "Allow plain http:// to a remoteUrl that is not this machine "
                                           "(your code then crosses the network unencrypted).")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "text"}


@dataclass(frozen=True)
class SettingField:
    """One setting as the edges see it, derived from its `Settings` field."""

    key: str  # camelCase, as editors and the command line's flag destinations name it
    attr: str
    kind: type
    default: Any
    doc: str
    within: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None
    pattern: re.Pattern[str] | None = None
    expected: str | None = None
    quoted: bool = True  # False: a message never repeats the value (it may be a secret put in the wrong place)

    def accepts(self, value: Any) -> bool:
        """Whether a value already of the field's type keeps the field's rule."""
        if self.within is not None:
            return self.within[0] <= value <= self.within[1]
        if self.choices is not None:
            return value in self.choices
        return self.pattern is None or bool(self.pattern.match(value))

    def expects(self) -> str:
        """What a message says the field takes."""
        if self.within is not None:
            return f"{_KINDS[self.kind]} from {self.within[0]} to {self.within[1]}"
        if self.choices is not None:
            return ", ".join(self.choices[:-1]) + f" or {self.choices[-1]}"
        return self.expected or _KINDS[self.kind]


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def _fields() -> dict[str, SettingField]:
    kinds = typing.get_type_hints(Settings)
    table = {}
    for f in dataclasses.fields(Settings):
        rule = dict(f.metadata)
        key = rule.pop("key", _camel(f.name))
        table[key] = SettingField(key, f.name, kinds[f.name], f.default, **rule)
    return table


FIELDS: dict[str, SettingField] = _fields()  # camelCase key → field: the protocol edge's view of Settings
CAMEL_KEYS = tuple(FIELDS)
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
    f = FIELDS[key]
    try:
        value = _coerce(raw, f.kind)
    except TypeError:
        return f"expected {_KINDS[f.kind]}"
    return None if f.accepts(value) else f"expected {f.expects()}"


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
        f = FIELDS.get(key)
        if f is None:
            problems.append(f"unknown setting speclsp.{_quote(key, repr_=False)} ignored")
            continue
        if raw is None:
            continue
        try:
            value = _coerce(raw, f.kind)
            if not f.accepts(value):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            shown = _quote(raw) if f.quoted else f"(not shown; expected {f.expects()})"
            problems.append(f"invalid speclsp.{key}={shown}; keeping {_quote(getattr(settings, f.attr))}")
            continue
        changes[f.attr] = value
    merged = settings.replace(**changes)
    problem = insecure_url(merged.remote_url, merged.remote_allow_insecure)
    if problem:  # the other field of the pair decides too, so this is checked after both are merged
        kept = settings.remote_url if not insecure_url(settings.remote_url, merged.remote_allow_insecure) else ""
        problems.append(f"refused speclsp.remoteUrl={_quote(merged.remote_url)}: {problem}; keeping {_quote(kept)}")
        merged = merged.replace(remote_url=kept)
    return merged, problems


def insecure_url(url: str, allowed: bool) -> str | None:
    """Why `url` may not carry the user's code, or None: plain http:// only to this machine unless
    `allowed`, since anyone on the path could read or change what goes over it."""
    if not url.startswith("http://") or allowed:
        return None
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return ("plain http:// to another machine sends your code unencrypted; use https:// or set "
            "speclsp.remoteAllowInsecure to true")


QUOTE_CHARS = 40  # a message quotes at most this much of a value: values can be megabytes


def _quote(value: Any, repr_: bool = True) -> str:
    """A short quotation of a value for a message: its start, and its size when cut."""
    text = repr(value) if repr_ else str(value)
    if len(text) <= QUOTE_CHARS:
        return text
    return f"{text[:QUOTE_CHARS]}… ({len(text):,} characters)"


def settings_to_lsp(settings: Settings) -> dict[str, Any]:
    """The camelCase view, for `speclsp doctor` and docs."""
    return {key: getattr(settings, f.attr) for key, f in FIELDS.items()}


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
    options = {k: getattr(args, k) for k in CAMEL_KEYS if getattr(args, k, None) is not None}
    settings, problems = settings_from_lsp(options)
    for problem in problems:
        print(f"speclsp: {problem}", file=sys.stderr)
    return settings
