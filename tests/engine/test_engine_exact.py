"""The fast paths against the reference, token for token, and the cache invariants."""

from __future__ import annotations

import copy
import random
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsp_server.engine.api import Cancelled, GenerationRequest
from lsp_server.engine.reference import reference_generate
from lsp_server.engine.speculative import Engine
from tests.fixtures import tiny_llama

V = 96  # draft vocabulary; the target adds 4 ids above it, like the FIM specials
EOS = 2


@pytest.fixture(scope="module")
def models():
    target = tiny_llama(V + 4, 64, 2, seed=0)
    random_draft = tiny_llama(V, 32, 1, seed=1)
    return target, random_draft


def prompt(seed: int, n: int | None = None) -> list[int]:
    r = random.Random(seed)
    return [1] + [r.randrange(3, V) for _ in range(n or r.randrange(1, 60))]


def request(ids, max_new=24, stop_ids=frozenset({EOS}), **kw) -> GenerationRequest:
    return GenerationRequest(target_ids=list(ids), draft_ids=list(ids), context_ids=list(ids),
                             max_new_tokens=max_new, stop_ids=stop_ids, **kw)


def reference(target, ids, **kw) -> list[int]:
    return reference_generate(target, request(ids, **kw)).tokens


@pytest.mark.parametrize("gamma", [1, 3, 6])
def test_random_draft_matches_reference(models, gamma):
    target, draft = models
    engine = Engine(target, draft, max_gamma=gamma, copy_drafter=False)
    for seed in range(12):
        ids = prompt(seed)
        out = engine.generate(request(ids, cache_key=f"d{seed % 3}"))
        assert out.tokens == reference(target, ids), seed


def test_random_draft_acceptance_is_near_zero(models):
    target, draft = models
    engine = Engine(target, draft, max_gamma=4, copy_drafter=False)
    drafted = accepted = 0
    for seed in range(10):
        stats = engine.generate(request(prompt(seed), max_new=32)).stats
        drafted += stats.drafted_tokens
        accepted += stats.accepted_tokens
    assert drafted > 0 and accepted / drafted < 0.3


@pytest.mark.parametrize("gamma", [2, 5])
def test_draft_equal_to_target_accepts_everything(models, gamma):
    target, _ = models
    engine = Engine(target, target, max_gamma=gamma, copy_drafter=False)
    for seed in range(8):
        ids = prompt(seed)
        out = engine.generate(request(ids, max_new=30, stop_ids=frozenset()))
        assert out.tokens == reference(target, ids, max_new=30, stop_ids=frozenset())
        assert out.stats.rounds > 0
        assert out.stats.accepted_tokens == out.stats.drafted_tokens


def test_copy_drafter_alone_matches_reference(models):
    target, _ = models
    engine = Engine(target, None, max_gamma=4, copy_drafter=True)
    copied = 0
    for seed in range(12):
        base = prompt(seed, 20)
        ids = base + base[1:] + base[1:8]  # repeated text: the copy drafter has something to copy
        out = engine.generate(request(ids))
        assert out.tokens == reference(target, ids), seed
        copied += out.stats.copy_drafted_tokens
    assert copied > 0


def test_plain_path_matches_reference(models):
    target, draft = models
    engine = Engine(target, draft, max_gamma=4)
    for seed in range(8):
        ids = prompt(seed)
        out = engine.generate(request(ids, speculative=False))
        assert out.tokens == reference(target, ids)
        assert out.stats.drafted_tokens == 0


def test_reference_equals_decoding_without_a_cache_and_uses_no_api_due_for_removal(models):
    """transformers announces a removal with a FutureWarning; the reference must outlive it and stay
    exact. The check beneath it is the plainest decoder there is: the whole sequence, every step."""
    target, _ = models
    for seed in range(3):
        ids = prompt(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)
            got = reference(target, ids, max_new=12, stop_ids=frozenset())
        seq = list(ids)
        with torch.inference_mode():
            for _ in range(12):
                seq.append(int(target(input_ids=torch.tensor([seq]), use_cache=False).logits[0, -1].argmax()))
        assert got == seq[len(ids):]


def test_stop_rule_ends_both_paths_on_the_same_token(models):
    target, draft = models
    engine = Engine(target, target, max_gamma=4)
    for seed in range(8):
        ids = prompt(seed)
        stop_at = {random.Random(seed).randrange(3, V) for _ in range(15)}

        def stop(tokens, stop_at=stop_at):
            return tokens[-1] in stop_at

        want = reference_generate(target, request(ids, max_new=40, stop=stop)).tokens
        assert engine.generate(request(ids, max_new=40, stop=stop)).tokens == want


def test_target_only_ids_never_reach_the_draft(models):
    target, draft = models
    with torch.no_grad():
        target.lm_head.weight[V + 1] += 5.0  # make the target emit an id the draft does not have
    try:
        engine = Engine(target, draft, max_gamma=3, copy_drafter=False)
        for seed in range(6):
            ids = prompt(seed)
            out = engine.generate(request(ids))
            assert out.tokens == reference(target, ids)
            assert V + 1 in out.tokens or out.stats.finish_reason != "length"
    finally:
        with torch.no_grad():
            target.lm_head.weight[V + 1] -= 5.0


def test_cache_length_after_each_request(models):
    target, draft = models
    engine = Engine(target, draft, max_gamma=4)
    ids = prompt(3, 30)
    out = engine.generate(request(ids, cache_key="doc", stop_ids=frozenset()))
    slot = engine.slots.slots["doc"]
    # the target holds the prompt and every emitted token but the last (it was never fed)
    assert slot.target.length <= len(ids) + len(out.tokens)
    assert slot.target.tokens[: len(ids)] == ids
    assert slot.target.tokens[len(ids):] == out.tokens[: slot.target.length - len(ids)]


def test_generate_leaves_the_request_as_it_was(models):
    target, draft = models
    engine = Engine(target, draft, max_gamma=4)
    ids = prompt(4, 1010)  # 1011 of the target's 1024 positions: room for 1024 - 1011 - 4 - 1 = 8 tokens
    req = request(ids, max_new=100, cache_key="doc", stop_ids=frozenset())
    before = copy.deepcopy(req)
    out = engine.generate(req)
    assert len(out.tokens) == 8 and out.stats.finish_reason == "length"  # the engine's own limit applied
    assert req == before  # ... without writing it into the caller's request


def test_cancel_flag_stops_between_steps(models):
    import threading

    target, draft = models
    engine = Engine(target, draft, max_gamma=4)
    flag = threading.Event()
    calls = []

    def stop(tokens):
        calls.append(len(tokens))
        if len(tokens) == 3:
            flag.set()
        return False

    with pytest.raises(Cancelled):
        engine.generate(request(prompt(1), max_new=200, stop=stop, cancel=flag, stop_ids=frozenset()))
    assert max(calls) < 3 + 8  # at most one more round after the flag


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), length=st.integers(1, 80), gamma=st.integers(1, 8),
       max_new=st.integers(1, 40), stop_token=st.integers(3, V - 1), same=st.booleans())
def test_property_speculative_equals_reference(models, seed, length, gamma, max_new, stop_token, same):
    target, draft = models
    engine = Engine(target, target if same else draft, max_gamma=gamma)
    ids = prompt(seed, length)
    stops = frozenset({EOS, stop_token})
    out = engine.generate(request(ids, max_new=max_new, stop_ids=stops))
    assert out.tokens == reference(target, ids, max_new=max_new, stop_ids=stops)
    assert len(out.tokens) <= max_new


# -- token healing: the first tokens are kept to a set of ids per state, by every path ------------

def healing_world(seed: int, longest: int = 3, text: tuple[int, int] = (1, 5)):
    """A made-up spelling of the tiny vocabulary over "ab", pieces of up to `longest` letters (ids
    above V spell nothing, like the FIM specials), and a text to heal of `text` letters: the
    constraint the prompt builder would build for it."""
    from lsp_server.healing import Vocabulary, constraint

    r = random.Random(seed)
    pieces = [None] * 3 + ["".join(r.choice("ab") for _ in range(r.randint(1, longest))).encode() for _ in range(3, V)]
    vocab = Vocabulary(pieces + [None] * 4)
    text = "".join(r.choice("ab") for _ in range(r.randint(*text))).encode()
    return vocab, text, constraint(vocab, text)


def keeps_to(healing, tokens) -> bool:
    return all((ids := healing.allowed_after(tokens[:j])) is None or tokens[j] in ids for j in range(len(tokens)))


@pytest.mark.parametrize("gamma", [1, 3, 6])
def test_healing_speculative_equals_reference(models, gamma):
    target, draft = models
    for same in (False, True):
        engine = Engine(target, target if same else draft, max_gamma=gamma)
        changed = 0
        for seed in range(10):
            vocab, text, healing = healing_world(seed)
            ids = prompt(seed)
            want = reference(target, ids, healing=healing)
            out = engine.generate(request(ids, healing=healing, cache_key=f"d{seed % 3}"))
            assert out.tokens == want, (seed, same)
            assert keeps_to(healing, want)
            spelled = b"".join(vocab.pieces[t] or b"" for t in want)  # ids past the constraint may spell nothing
            assert spelled.startswith(text) or (text.startswith(spelled) and out.stats.finish_reason != "length")
            changed += want != reference(target, ids)
        assert changed >= 5  # the mask decided the output, not the models' own choice


def test_the_draft_proposes_within_the_healing_constraint(models):
    """A draft equal to the target has every proposal accepted only if it drafts under the same mask
    (one-letter pieces: the constraint lasts several tokens, past the first, which the target picks)."""
    target, _ = models
    engine = Engine(target, target, max_gamma=4, copy_drafter=False)
    for seed in range(8):
        _, _, healing = healing_world(seed, longest=1, text=(6, 8))
        out = engine.generate(request(prompt(seed), healing=healing, stop_ids=frozenset()))
        assert out.stats.drafted_tokens > 0 and out.stats.accepted_tokens == out.stats.drafted_tokens, seed


def test_healing_to_a_target_only_id(models):
    """The draft cannot spell what only the target has: it proposes nothing there, the target goes on."""
    from lsp_server.engine.api import Healing

    target, draft = models
    healing = Healing((frozenset({V + 1}),), ({},))
    engine = Engine(target, draft, max_gamma=4)
    for seed in range(4):
        ids = prompt(seed)
        out = engine.generate(request(ids, healing=healing))
        assert out.tokens[0] == V + 1 and out.tokens == reference(target, ids, healing=healing)


def test_sampling_keeps_to_the_healing_constraint(models):
    target, draft = models
    engine = Engine(target, draft, max_gamma=4)
    for seed in range(10):
        _, _, healing = healing_world(seed)
        kw = {"healing": healing, "temperature": 1.5, "seed": seed}
        assert keeps_to(healing, engine.generate(request(prompt(seed), **kw)).tokens)
        assert keeps_to(healing, reference(target, prompt(seed), **kw))
