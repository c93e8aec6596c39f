"""Adaptive draft length per document, so speculation never loses.

With per-token acceptance a and draft length g, a round emits (1 - a^(g+1)) / (1 - a) tokens on
average (Leviathan et al.) and costs g draft steps plus one verify forward. We keep running
estimates of a and of both costs (measured, relative to a plain target step) and pick the g
with the best tokens per unit of time. When no g beats plain decoding we draft nothing, but
probe with g=1 every few rounds so a document whose text becomes predictable wins it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def expected_tokens(alpha: float, gamma: int) -> float:
    if alpha >= 1.0:
        return gamma + 1.0
    return (1.0 - alpha ** (gamma + 1)) / (1.0 - alpha)


@dataclass
class GammaController:
    max_gamma: int
    alpha: float = 0.6  # optimistic start: the first rounds measure it
    draft_cost: float = 0.2  # one draft step / one plain target step
    verify_cost: dict[int, float] = field(default_factory=dict)  # gamma -> verify forward / plain step
    plain_ms: float = 0.0
    rounds_without_draft: int = 0
    decay: float = 0.8
    # doubles after each probe that finds nothing worth drafting, up to 16: a probe must first feed
    # the draft every token accepted since its last round, and up to 2 * max_gamma + 2 tokens that
    # feed is a captured graph on GPUs; longer ones run eagerly and cost several draft steps
    probe_every: int = 8
    fixed: bool = False  # always draft max_gamma (benchmarks at a chosen length, tests of the rule)

    def choose(self) -> int:
        if self.fixed:
            return self.max_gamma
        if self.plain_ms == 0:  # calibrate: one plain step first, so costs are measured, not assumed
            return 0
        best, best_speed = 0, 1.0
        for g in range(1, self.max_gamma + 1):
            cost = g * self.draft_cost + self.verify_cost.get(g, 1.0 + 0.05 * g)
            speed = expected_tokens(self.alpha, g) / cost
            if speed > best_speed * 1.02:
                best, best_speed = g, speed
        if best == 0:
            self.rounds_without_draft += 1
            if self.rounds_without_draft >= self.probe_every:
                self.rounds_without_draft = 0
                self.probe_every = min(self.probe_every * 2, 16)
                return 1
        else:
            self.probe_every = 8
        return best

    def observe_round(self, drafted: int, accepted: int, draft_ms: float, verify_ms: float) -> None:
        """Fold one speculative round into the estimates."""
        if drafted <= 0:
            return
        # a run of `accepted` hits then a miss (or all hits) is evidence for a per-token rate
        rate = accepted / drafted if accepted == drafted else accepted / (accepted + 1)
        self.alpha = self.decay * self.alpha + (1 - self.decay) * rate
        if self.plain_ms > 0:
            self.draft_cost = self._ema(self.draft_cost, draft_ms / drafted / self.plain_ms)
            self.verify_cost[drafted] = self._ema(self.verify_cost.get(drafted, verify_ms / self.plain_ms),
                                                  verify_ms / self.plain_ms)

    def observe_plain(self, step_ms: float) -> None:
        self.plain_ms = step_ms if self.plain_ms == 0 else self._ema(self.plain_ms, step_ms)

    def _ema(self, old: float, new: float) -> float:
        return self.decay * old + (1 - self.decay) * new
