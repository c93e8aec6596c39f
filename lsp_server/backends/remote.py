"""The remote backend: a shared inference server (llama-server, vLLM, SGLang) completes the prompts built here.

The prompt is sent as token ids, so the fill-in-the-middle prompt is exactly the local engine's (no
specials spelled as text, no leading-space drift). Tokens stream back and the request's own stop
rules run on each; the stream is closed the moment they end the completion or the request is
cancelled, which stops the server's generation too. The server owns its cache: each document goes
to one llama-server slot, so its prompt, which only grows while typing, is reused there.
"""

from __future__ import annotations

import contextlib
import os
import time
import zlib

from ..config import Settings, insecure_url
from ..engine.api import GenerationRequest, GenerationResult, ModelError, Stats
from ..engine.sources import model_dir, resolve_sources
from ..engine.stopping import finish_reason
from ..engine.tokenizer import TokenCodec, load_tokenizer
from .wire import RemoteError, Unreachable, Wire

LLAMA = "llama.cpp"


class RemoteBackend:
    """A Backend over HTTP; the tokenizer is the target's, loaded here (the `target` setting)."""

    draft_positions = 0  # no draft on this side: the server runs whatever speculation it was started with
    notices: list[str]

    def __init__(self, settings: Settings, progress=lambda message, percent: None, codec=None):
        self.settings = settings
        self.wire = open_wire(settings)
        progress("loading the tokenizer", 10)
        self.codec = codec or load_codec(settings)
        self.kind, self.model, self.slots = settings.remote_kind, settings.remote_model, 0
        self.notices = []
        progress(f"asking {self.wire.where}", 60)
        try:
            self._probe()
        except Unreachable as e:  # not a setting to fix: the first request tries again
            self.notices.append(f"{e}; completions start when it answers")
        except RemoteError as e:
            raise ModelError(str(e)) from e
        self.info = {"target": f"{self.kind or 'remote'} at {self.wire.where}", "draft": None,
                     "device": "remote", "model": self.model, "fim": self.codec.fim is not None}

    def configure(self, settings: Settings) -> None:
        self.settings = settings
        self.wire.timeout_s = settings.remote_timeout_ms / 1e3

    def generate(self, request: GenerationRequest) -> GenerationResult:
        self._probe_once()
        t0 = time.monotonic()
        stats = Stats(prompt_tokens=len(request.target_ids), prefill_tokens=len(request.target_ids))
        generated: list[int] = []
        cut = lambda: _cancelled(request) or request.out_of_time()  # noqa: E731
        events = self.wire.stream(*self._body(request), cut, routing_header(request.cache_key))
        with contextlib.closing(events):  # leaving the loop closes the stream: the server stops
            for event in events:
                request.check_cancel()
                reason = _emit(generated, _tokens(event, self.kind), request)
                if reason is None and _finished(event, self.kind):
                    reason = "eot" if _stopped_on_eos(event) else "length"
                if reason:
                    stats.finish_reason = reason
                    break
            request.check_cancel()
        if not stats.finish_reason:
            if not request.out_of_time():  # the stream ended with no end of the completion in it
                raise RemoteError(f"the answer from {self.wire.where} stopped before the completion ended")
            stats.finish_reason = "time"
        stats.generated_tokens = len(generated)
        stats.decode_ms = stats.engine_ms = (time.monotonic() - t0) * 1e3
        return GenerationResult(generated, stats)

    def prefill(self, request: GenerationRequest) -> Stats:
        """llama-server: a request for no tokens, which fills the document's slot (cheap); elsewhere nothing."""
        if self.kind != LLAMA or request.cache_key is None:
            return Stats()
        body = {"prompt": request.target_ids, "n_predict": 0, "cache_prompt": True,
                "id_slot": self.slot(request.cache_key), "stream": False}
        self.wire.post("/completion", body, routing_header(request.cache_key))
        return Stats(prompt_tokens=len(request.target_ids))

    def cached_tokens(self, key: str, ids: list[int]) -> int:
        return 0  # the server's cache is its own; the prompt is never cut to fit a device here

    def forget(self, key: str) -> None:
        pass  # the server's slot is overwritten by the next document sent there

    def forget_all(self) -> None:
        pass

    def shrink(self, drop_draft: bool) -> bool:
        return False

    def slot(self, key: str) -> int:
        """The document's llama-server slot: the same one every time (crc32 is stable across runs), -1 if unknown."""
        return zlib.crc32(key.encode("utf-8")) % self.slots if self.slots else -1

    def _body(self, request: GenerationRequest) -> tuple[str, dict]:
        if self.kind == LLAMA:
            return "/completion", {
                "prompt": request.target_ids, "n_predict": request.max_new_tokens, "stream": True,
                "cache_prompt": True, "id_slot": self.slot(request.cache_key or ""),
                "temperature": request.temperature, "return_tokens": True,
                **({"seed": request.seed} if request.seed is not None else {})}
        body = {"prompt": request.target_ids, "max_tokens": request.max_new_tokens, "stream": True,
                "temperature": request.temperature, "stop_token_ids": sorted(request.stop_ids)}
        if self.model:
            body["model"] = self.model
        if request.seed is not None:
            body["seed"] = request.seed
        if self.kind == "vllm":
            body["return_token_ids"] = True  # vLLM: each chunk's new token ids
        return "/v1/completions", body

    def _probe_once(self) -> None:
        if self.kind == "auto":
            self._probe()

    def _probe(self) -> None:
        """What the server is (when remoteKind is auto), its slots, and that it serves the model asked for."""
        if self.kind in ("auto", LLAMA):
            with contextlib.suppress(RemoteError):
                props = self.wire.get("/props")
                self.slots = int(props.get("total_slots") or 0)
                self.kind = LLAMA
                return
            if self.kind == LLAMA:
                self.wire.get("/props")  # again, for its error
        models = self.wire.get("/v1/models").get("data") or []
        ids = [m.get("id") for m in models if isinstance(m, dict)]
        if self.model and self.model not in ids:
            raise RemoteError(f"the server has no model {self.model!r} (it has {', '.join(map(str, ids[:5])) or 'none'}); "
                              "set speclsp.remoteModel")
        self.model = self.model or (ids[0] if ids else "")
        if self.kind == "auto":
            owner = str(models[0].get("owned_by", "")).lower() if models else ""
            self.kind = "vllm" if owner == "vllm" else "sglang" if "sglang" in owner else "openai"


def open_wire(settings: Settings) -> Wire:
    """The connection the settings describe, refused when it would leak code or the key."""
    url = settings.remote_url
    if not url:
        raise ModelError("speclsp.backend is remote but speclsp.remoteUrl is empty; set it to the server's URL")
    problem = insecure_url(url, settings.remote_allow_insecure)
    if problem:
        raise ModelError(f"refused speclsp.remoteUrl {url}: {problem}")
    key = ""
    if settings.remote_api_key_env:
        key = os.environ.get(settings.remote_api_key_env, "")
        if not key:
            raise ModelError(f"the environment variable {settings.remote_api_key_env} (speclsp.remoteApiKeyEnv) "
                             "is not set in the server's environment")
    return Wire(url, settings.remote_timeout_ms / 1e3, key)


def load_codec(settings: Settings) -> TokenCodec:
    """The target's tokenizer from a directory or the local Hugging Face cache, as the local backend finds it."""
    target, _, _ = resolve_sources(settings)
    return TokenCodec(load_tokenizer(model_dir(target)))


def _cancelled(request: GenerationRequest) -> bool:
    return request.cancel is not None and request.cancel.is_set()


def _emit(generated: list[int], tokens: list[int], request: GenerationRequest) -> str | None:
    for tok in tokens:
        generated.append(tok)
        reason = finish_reason(generated, request)
        if reason:
            return reason
    return None


def _tokens(event: dict, kind: str) -> list[int]:
    """The new token ids in one streamed event: llama-server's `tokens`, vLLM's `token_ids`."""
    if kind == LLAMA:
        ids = event.get("tokens")
    else:
        choices = event.get("choices") or [{}]
        ids = choices[0].get("token_ids") if isinstance(choices[0], dict) else None
    if ids is None and not _finished(event, kind):
        raise RemoteError("the inference server does not send token ids (llama-server's return_tokens, vLLM's "
                          "return_token_ids); update it, or check speclsp.remoteKind")
    if not isinstance(ids, list | None) or not all(isinstance(i, int) for i in ids or []):
        raise RemoteError("the inference server sent token ids that are not integers")
    return ids or []


def _finished(event: dict, kind: str) -> bool:
    if kind == LLAMA:
        return bool(event.get("stop"))
    choices = event.get("choices") or [{}]
    return isinstance(choices[0], dict) and choices[0].get("finish_reason") is not None


def _stopped_on_eos(event: dict) -> bool:
    choices = event.get("choices") or [{}]
    reason = event.get("stop_type") or (choices[0].get("finish_reason") if isinstance(choices[0], dict) else None)
    return reason in ("eos", "stop")


ROUTING_HEADER = "X-Speclsp-Document"


def routing_header(key: str | None) -> dict:
    """A per-document key a router can hash on to keep each document on one replica (and its
    prefix cache hot): a stable hash of the document's URI, so no file name leaves the machine."""
    return {ROUTING_HEADER: f"{zlib.crc32(key.encode('utf-8')):08x}"} if key else {}
