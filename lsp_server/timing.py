"""The time budget of one request: how many new prompt tokens the device can prefill within it.

The budget runs from the request's arrival at the server, so time spent queued counts. Prefill
speed differs by a factor of a thousand between a 7B model on a laptop CPU and on a data-centre
GPU, so it is measured, not configured: every prefill of a real size updates the estimate, and a
request may newly feed only as many prompt tokens as fit in PREFILL_SHARE of the time it has left
(the rest is for decoding). The prompt tokens left out are filled in by later requests and by
background warm-up (prompt.PromptBuilder.fit).
"""

from __future__ import annotations

PREFILL_SHARE = 0.5  # of the time a request has left, for feeding its new prompt tokens
MIN_PREFILL_TOKENS = 32  # fed even when time is short: less makes no useful prompt
MIN_SAMPLE_TOKENS = 32  # smaller prefills are mostly fixed cost per forward, not a speed sample
# weight of the newest sample, so the estimate follows a device that warms up or gets busy; a slower
# sample weighs more, since overestimating the speed costs a suggestion and underestimating it only
# leaves some context for the next request
SMOOTHING_SLOWER, SMOOTHING_FASTER = 0.5, 0.2
CALIBRATION_TOKENS = 64  # prefilled at start-up, so the first request already has an estimate


class PrefillRate:
    """Measured prompt-prefill speed of the loaded models on their device."""

    def __init__(self) -> None:
        self.ms_per_token: float | None = None

    def observe(self, tokens: int, ms: float) -> None:
        """One prefill of `tokens` tokens that took `ms` milliseconds."""
        if tokens < MIN_SAMPLE_TOKENS or ms <= 0:
            return
        sample = ms / tokens
        old = self.ms_per_token
        if old is None:
            self.ms_per_token = sample
        else:
            weight = SMOOTHING_SLOWER if sample > old else SMOOTHING_FASTER
            self.ms_per_token = (1 - weight) * old + weight * sample

    def tokens_within(self, ms: float) -> int | None:
        """How many prompt tokens can be prefilled in `ms`; None while nothing is measured."""
        if self.ms_per_token is None:
            return None
        return int(max(ms, 0.0) / self.ms_per_token)


def prefill_allowance(rate: PrefillRate, ms_left: float) -> int | None:
    """New prompt tokens a request with `ms_left` may feed; None: no bound (nothing measured)."""
    tokens = rate.tokens_within(PREFILL_SHARE * ms_left)
    return None if tokens is None else max(tokens, MIN_PREFILL_TOKENS)
