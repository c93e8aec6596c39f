"""Stop rules shared by every decode path, so all of them end on the same token."""

from __future__ import annotations

from .api import GenerationRequest


def finish_reason(generated: list[int], request: GenerationRequest, limit: int | None = None) -> str | None:
    """Check the token just appended to `generated`. May pop it (a stop id is not part of the text).
    `limit`: tokens allowed, when the engine allows fewer than the request's max_new_tokens."""
    if generated[-1] in request.stop_ids:
        generated.pop()
        return "eot"
    if request.stop is not None and request.stop(generated):
        return "stop"
    if len(generated) >= (request.max_new_tokens if limit is None else limit):
        return "length"
    return None


def emit_all(generated: list[int], tokens: list[int], request: GenerationRequest,
             limit: int | None = None) -> str | None:
    """Append tokens one by one, stopping at the first that ends the completion."""
    for tok in tokens:
        generated.append(tok)
        reason = finish_reason(generated, request, limit)
        if reason:
            return reason
    return None
